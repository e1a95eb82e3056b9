//! `tollgate`: the multi-tenant SQL gateway.

use std::process::ExitCode;

use clap::Parser;
use tollgate_gateway::cli::Cli;
use tollgate_planner::complexity;

fn main() -> ExitCode {
    // The AWS SDK and rustls may both bring a crypto provider; Tollgate uses ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tollgate_gateway::audit::init();
    // The network runtime parses and rewrites statements: its threads get the stack the
    // complexity bounds are sized for, so that work never needs a fresh stack segment.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(complexity::STACK_SIZE)
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tollgate: cannot start the network runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(Cli::parse().run()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tollgate: {error}");
            ExitCode::FAILURE
        }
    }
}
