//! The command line: `tollgate serve`, `tollgate demo`, `tollgate passwd`.

use std::io::Read;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use tollgate_catalog::TollgateOptions;
use tollgate_catalog::scram::{DEFAULT_ITERATIONS, Verifier};

use crate::demo::{self, DemoOptions};
use crate::error::GatewayError;
use crate::server;

/// Tollgate: a multi-tenant SQL gateway.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the datasets and tenants of a configuration file.
    Serve {
        /// The configuration file (see tollgate.example.toml).
        #[arg(long, env = "TOLLGATE_CONFIG")]
        config: PathBuf,
        /// Overrides `pg.listen` of the file.
        #[arg(long, env = "TOLLGATE_PG_LISTEN")]
        pg_listen: Option<SocketAddr>,
        /// Overrides `flight.listen` of the file (and turns Flight SQL on).
        #[arg(long, env = "TOLLGATE_FLIGHT_LISTEN")]
        flight_listen: Option<SocketAddr>,
    },
    /// Run the bundled demo: TPC-H data and two tenants, nothing else needed.
    Demo {
        /// Where the demo data and configuration are kept (created on first run).
        #[arg(long, default_value = "tollgate-demo")]
        data_dir: PathBuf,
        /// TPC-H scale factor of the generated data.
        #[arg(long, default_value_t = 0.1)]
        scale: f64,
        /// Postgres wire protocol listener (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:6432")]
        pg_listen: SocketAddr,
        /// Arrow Flight SQL listener (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:50051")]
        flight_listen: SocketAddr,
        /// HTTP control API listener (accepted; that front end is not built yet).
        #[arg(long, default_value = "127.0.0.1:8080")]
        http_listen: SocketAddr,
    },
    /// Read a password on standard input and print its SCRAM-SHA-256 verifier.
    Passwd {
        /// PBKDF2 iterations.
        #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
        iterations: NonZeroU32,
    },
}

impl Cli {
    /// Runs the command.
    ///
    /// # Errors
    /// Whatever stops the command, with a message naming the cause.
    pub async fn run(self) -> Result<(), GatewayError> {
        match self.command {
            Command::Serve {
                config,
                pg_listen,
                flight_listen,
            } => {
                let mut options = TollgateOptions::load(&config)?;
                if let Some(listen) = pg_listen {
                    options.pg.listen = listen;
                }
                if let Some(listen) = flight_listen {
                    options.flight.get_or_insert_with(Default::default).listen = listen;
                }
                server::start(&options).await?.run_until_signal().await
            }
            Command::Demo {
                data_dir,
                scale,
                pg_listen,
                flight_listen,
                http_listen: _,
            } => {
                demo::run(DemoOptions {
                    data_dir,
                    scale,
                    pg_listen,
                    flight_listen,
                })
                .await
            }
            Command::Passwd { iterations } => {
                let mut password = String::new();
                std::io::stdin().read_to_string(&mut password)?;
                let password = password.trim_end_matches(['\r', '\n']);
                if password.is_empty() {
                    return Err(GatewayError::Passwd(
                        "no password on standard input".to_owned(),
                    ));
                }
                let verifier = Verifier::derive(password, iterations)
                    .map_err(|e| GatewayError::Passwd(e.to_string()))?;
                println!("{verifier}");
                Ok(())
            }
        }
    }
}
