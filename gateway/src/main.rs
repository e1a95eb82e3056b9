//! `tollgate`: the multi-tenant SQL gateway.

use std::process::ExitCode;

use clap::Parser;
use tollgate_gateway::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    // The AWS SDK and rustls may both bring a crypto provider; Tollgate uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tollgate: {error}");
            ExitCode::FAILURE
        }
    }
}
