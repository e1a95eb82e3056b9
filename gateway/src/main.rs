//! `tollgate`: the multi-tenant SQL gateway.

use std::process::ExitCode;

use clap::Parser;
use tollgate_gateway::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    // The AWS SDK and rustls may both bring a crypto provider; Tollgate uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tollgate_gateway::audit::init();
    match Cli::parse().run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tollgate: {error}");
            ExitCode::FAILURE
        }
    }
}
