//! The command line: `tollgate serve`, `tollgate demo`, `tollgate passwd`, `tollgate api-key`,
//! `tollgate usage export`, `tollgate audit verify`.

use std::io::Read;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Parser, Subcommand};
use tollgate_catalog::TollgateOptions;
use tollgate_catalog::scram::{DEFAULT_ITERATIONS, Verifier};
use tollgate_planner::metering::UsageScope;

use crate::audit_chain;
use crate::control::keys;
use crate::demo::{self, DemoOptions};
use crate::error::GatewayError;
use crate::ledger::{self, export::ExportFormat};
use crate::push::nats_jwt;
use crate::reload::ConfigFile;
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
        /// HTTP listener: Prometheus `/metrics` (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        http_listen: SocketAddr,
    },
    /// Read the usage ledger.
    Usage {
        #[command(subcommand)]
        command: UsageCommand,
    },
    /// Check the audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Read a password on standard input and print its SCRAM-SHA-256 verifier.
    Passwd {
        /// PBKDF2 iterations.
        #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
        iterations: NonZeroU32,
    },
    /// Print a new API key, and the `[control] api_keys` entry that accepts it.
    ApiKey {
        /// The tenant the key acts for; without it, an admin (provider) key.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Print new NATS operator and system account keys: the NATS server's configuration
    /// that trusts them, and the `[control.nats_push]` entry of `nats` channels.
    NatsOperator {
        /// Where the NATS server keeps accounts and JetStream data.
        #[arg(long, default_value = "/var/lib/nats")]
        store_dir: String,
        /// The NATS server's URL.
        #[arg(long, default_value = "nats://127.0.0.1:4222")]
        url: String,
    },
}

#[derive(Debug, Subcommand)]
enum UsageCommand {
    /// Export every tenant's usage records that started in [--from, --to).
    Export {
        /// The configuration file whose `[usage]` ledger to read.
        #[arg(long, env = "TOLLGATE_CONFIG")]
        config: PathBuf,
        /// Start, inclusive: `2026-11-01` (UTC midnight) or RFC 3339.
        #[arg(long, value_parser = parse_time)]
        from: Option<DateTime<Utc>>,
        /// End, exclusive: `2026-12-01` (UTC midnight) or RFC 3339.
        #[arg(long, value_parser = parse_time)]
        to: Option<DateTime<Utc>>,
        /// Only this tenant's records.
        #[arg(long)]
        tenant: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Output file (default: standard output).
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Walk an audit log's hash chain: fails at the first line removed, inserted or edited
    /// before it; prints the lines and the last line's hash (keep it elsewhere to detect a
    /// truncated end).
    Verify {
        /// The audit log (`usage.audit_log`).
        file: PathBuf,
    },
}

/// A time given as a date (UTC midnight) or in RFC 3339.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| format!("`{text}` is neither a date (2026-11-01) nor an RFC 3339 time"))
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
                let config = ConfigFile::new(config, move |options| {
                    if let Some(listen) = pg_listen {
                        options.pg.listen = listen;
                    }
                    if let Some(listen) = flight_listen {
                        options.flight.get_or_insert_with(Default::default).listen = listen;
                    }
                });
                let options = config.read()?;
                server::start(&options)
                    .await?
                    .run_until_signal(config)
                    .await
            }
            Command::Demo {
                data_dir,
                scale,
                pg_listen,
                flight_listen,
                http_listen,
            } => {
                demo::run(DemoOptions {
                    data_dir,
                    scale,
                    pg_listen,
                    flight_listen,
                    http_listen,
                })
                .await
            }
            Command::Usage {
                command:
                    UsageCommand::Export {
                        config,
                        from,
                        to,
                        tenant,
                        format,
                        output,
                    },
            } => {
                let options = TollgateOptions::load(&config)?;
                let store = ledger::open_store(&options.usage).await?.ok_or_else(|| {
                    GatewayError::Export(
                        "the configuration keeps no ledger (usage.ledger = \"none\")".to_owned(),
                    )
                })?;
                let records = store.read(&UsageScope { tenant, from, to }).await?;
                match output {
                    Some(path) => {
                        ledger::export::write(&records, format, std::fs::File::create(path)?)
                    }
                    None => ledger::export::write(&records, format, std::io::stdout()),
                }
            }
            Command::Audit {
                command: AuditCommand::Verify { file },
            } => {
                let reader = std::io::BufReader::new(std::fs::File::open(&file)?);
                let verified =
                    audit_chain::verify(reader).map_err(|source| GatewayError::AuditChain {
                        path: file.display().to_string(),
                        source,
                    })?;
                if let Some(prev) = verified.continues {
                    println!("continues a chain whose last line hashed to {prev}");
                }
                println!(
                    "{}: {} lines, chain intact; head {}",
                    file.display(),
                    verified.lines,
                    verified.head
                );
                Ok(())
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
            Command::ApiKey { tenant } => {
                let (id, key, hash) = keys::generate()
                    .map_err(|_| GatewayError::Passwd("cannot draw random bytes".to_owned()))?;
                let tenant = tenant.map_or_else(String::new, |t| format!("tenant = \"{t}\", "));
                println!("key (give it to its holder; it is not stored): {key}");
                println!("entry for [control] api_keys:");
                println!("  {{ id = \"{id}\", {tenant}secret_sha256 = \"{hash}\" }},");
                Ok(())
            }
            Command::NatsOperator { store_dir, url } => {
                let setup = nats_jwt::operator_setup(&store_dir)?;
                println!("# --- the NATS server's configuration ---");
                print!("{}", setup.server_config);
                println!("# --- tollgate.toml ---");
                println!("[control.nats_push]");
                println!("url = \"{url}\"");
                println!("operator_seed = \"{}\"", setup.operator_seed);
                println!("system_account_seed = \"{}\"", setup.system_account_seed);
                Ok(())
            }
        }
    }
}
