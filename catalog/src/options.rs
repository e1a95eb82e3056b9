//! The shape of `tollgate.toml`: plain serde structs with defaults.
//!
//! Every struct rejects unknown keys, so a typo fails at start-up instead of being ignored.
//! `tollgate.example.toml` at the repository root documents each key and is parsed by a test.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::control_options::{ChannelOptions, ControlOptions};
use crate::error::CatalogError;
pub use crate::grant_columns::GrantColumnOptions;
pub use crate::profile_options::ProfileOptions;
pub use crate::shape_options::{DatasetKind, ForeignKeyOptions};
use crate::units::{ByteSize, HumanDuration};

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TollgateOptions {
    /// The name clients use as database (`dbname=`); anything else is refused with 3D000.
    pub database: String,
    /// Where the Postgres wire protocol listens.
    pub pg: PgListenerOptions,
    /// Where Arrow Flight SQL listens; absent means that front end is off.
    pub flight: Option<FlightListenerOptions>,
    /// Login checks shared by every front end.
    pub auth: AuthOptions,
    /// How tenants share the machine.
    pub engine: EngineOptions,
    /// Where usage records go and what they keep.
    pub usage: UsageOptions,
    /// The HTTP listener (Prometheus `/metrics`); absent means it is off.
    pub http: Option<HttpListenerOptions>,
    /// Named places datasets are read from.
    pub sources: BTreeMap<String, SourceOptions>,
    /// Named performance profiles (`S`, `M`, `L`, …).
    pub profiles: BTreeMap<String, ProfileOptions>,
    /// The data catalog.
    pub datasets: Vec<DatasetOptions>,
    /// Client organisations.
    pub tenants: Vec<TenantOptions>,
    /// Logins of tenants.
    pub principals: Vec<PrincipalOptions>,
    /// Which tenant may read what: its entitlements.
    pub grants: Vec<GrantOptions>,
    /// Tenants' channels declared here; most are ordered through the control API.
    pub channels: Vec<ChannelOptions>,
    /// The control plane: its state store and REST API; absent means the catalog is this
    /// file's alone.
    pub control: Option<ControlOptions>,
}

impl Default for TollgateOptions {
    fn default() -> Self {
        Self {
            database: "tollgate".to_owned(),
            pg: PgListenerOptions::default(),
            flight: None,
            auth: AuthOptions::default(),
            engine: EngineOptions::default(),
            usage: UsageOptions::default(),
            http: None,
            sources: BTreeMap::new(),
            profiles: BTreeMap::new(),
            datasets: Vec::new(),
            tenants: Vec::new(),
            principals: Vec::new(),
            grants: Vec::new(),
            channels: Vec::new(),
            control: None,
        }
    }
}

impl TollgateOptions {
    /// Reads a configuration file. Relative `local` source paths are resolved against the
    /// file's directory, so a configuration works from any working directory.
    ///
    /// # Errors
    /// [`CatalogError::Read`] or [`CatalogError::Parse`].
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut options: Self = toml::from_str(&text)?;
        let base = path.parent().unwrap_or_else(|| Path::new("."));
        for source in options.sources.values_mut() {
            let path = match source {
                SourceOptions::Local { path } => Some(path),
                SourceOptions::Postgres { tls: Some(tls), .. } => tls.root_certificate.as_mut(),
                _ => None,
            };
            if let Some(path) = path
                && path.is_relative()
            {
                *path = base.join(&*path);
            }
        }
        let usage = &mut options.usage;
        for path in [Some(&mut usage.path), usage.audit_log.as_mut()]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
        if let Some(control) = options.control.as_mut() {
            for path in [&mut control.path, &mut control.delivery_path] {
                if path.is_relative() {
                    *path = base.join(&*path);
                }
            }
        }
        Ok(options)
    }
}

/// The Postgres wire protocol listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgListenerOptions {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Open connections allowed at once; further ones get 53300.
    pub max_connections: usize,
    /// Largest SQL text accepted in one statement; larger ones get 54000.
    pub max_query_size: ByteSize,
    /// TLS certificate and key; absent means plain TCP only.
    pub tls: Option<TlsOptions>,
}

impl Default for PgListenerOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 6432)),
            max_connections: 1000,
            max_query_size: ByteSize(1 << 20),
            tls: None,
        }
    }
}

/// The Arrow Flight SQL listener and its bearer tokens.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlightListenerOptions {
    /// Address to bind; port 0 picks a free port.
    pub listen: SocketAddr,
    /// TLS certificate and key; with TLS every call is encrypted (`require` is implied).
    pub tls: Option<TlsOptions>,
    /// How long a bearer token from a handshake stays valid.
    pub token_ttl: HumanDuration,
    /// How long the tickets of a `FlightInfo` stay valid.
    pub ticket_ttl: HumanDuration,
    /// Base64 HMAC-SHA256 key (at least 32 bytes) that signs tokens and tickets. Gateways
    /// sharing it accept each other's tokens and tickets; absent, each process draws its own.
    pub signing_key: Option<String>,
}

impl Default for FlightListenerOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            tls: None,
            token_ttl: HumanDuration(Duration::from_secs(3600)),
            ticket_ttl: HumanDuration(Duration::from_secs(600)),
            signing_key: None,
        }
    }
}

/// TLS for a listener (rustls).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// PEM file with the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file with the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Refuse clients that do not negotiate TLS.
    #[serde(default)]
    pub require: bool,
}

/// Throttling of failed logins.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthOptions {
    /// Failed attempts allowed per user and client address within `failure_window`.
    pub max_failures: u32,
    /// The window in which failures are counted.
    pub failure_window: HumanDuration,
    /// How long further attempts are refused once `max_failures` is reached.
    pub lockout: HumanDuration,
}

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            max_failures: 5,
            failure_window: HumanDuration(Duration::from_secs(60)),
            lockout: HumanDuration(Duration::from_secs(60)),
        }
    }
}

/// How tenants share the machine's cores, memory and disk.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// Each tenant runs on executor threads of its own (as many as its profile's
    /// parallelism) and within its profile's concurrency, queue and rate limits. Off, all
    /// tenants share one executor with a thread per core and only memory, timeouts and
    /// result caps stay per tenant (for comparison; see benchmark B4).
    pub isolation: bool,
    /// Where tenants' spill files go, one directory per tenant (default: the system's
    /// temporary directory).
    pub spill_directory: Option<PathBuf>,
    /// On SIGTERM, how long running statements may go on (new logins get 57P03, new
    /// statements 57P01) before they are stopped and the gateway exits.
    pub drain_grace: HumanDuration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            isolation: true,
            spill_directory: None,
            drain_grace: HumanDuration(Duration::from_secs(30)),
        }
    }
}

/// Which store keeps the usage ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LedgerKind {
    /// A SQLite file on the gateway's disk (`usage.path`).
    Sqlite,
    /// A PostgreSQL database (`usage.postgres`), shared by several gateways.
    Postgres,
    /// No ledger: queries are not recorded (for measuring metering's cost; see B5).
    None,
}

/// The usage ledger: one record per query, durable before the query is reported complete.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageOptions {
    /// Which store keeps the records.
    pub ledger: LedgerKind,
    /// The SQLite file, relative to the configuration file.
    pub path: PathBuf,
    /// PostgreSQL connection string (`host=… dbname=… user=…`) when `ledger = "postgres"`.
    pub postgres: Option<String>,
    /// Keep each query's SQL text in its record (its SHA-256 is always kept).
    pub record_sql_text: bool,
    /// Where audit lines (JSON, one per login and refused statement) are appended;
    /// absent means standard error.
    pub audit_log: Option<PathBuf>,
}

impl Default for UsageOptions {
    fn default() -> Self {
        Self {
            ledger: LedgerKind::Sqlite,
            path: PathBuf::from("tollgate-usage.db"),
            postgres: None,
            record_sql_text: false,
            audit_log: None,
        }
    }
}

/// The HTTP listener.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HttpListenerOptions {
    /// Address and port, e.g. `127.0.0.1:9187`.
    pub listen: SocketAddr,
    /// TLS certificate and key; given, the listener speaks HTTPS only.
    #[serde(default)]
    pub tls: Option<TlsOptions>,
    /// How long a Web-API statement waits for its next page to be fetched before it is
    /// cancelled as abandoned.
    #[serde(default = "default_statement_idle")]
    pub statement_idle: HumanDuration,
}

fn default_statement_idle() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

/// A place datasets are read from.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceOptions {
    /// A directory on the local disk; dataset paths are relative to it.
    Local {
        /// The directory; relative paths are resolved against the configuration file.
        path: PathBuf,
    },
    /// An S3 bucket, or a bucket of an S3-compatible store.
    ///
    /// Credentials are the keys given here, else the usual AWS chain: `AWS_ACCESS_KEY_ID` /
    /// `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`, web identity, the container's
    /// credentials endpoint, then the instance metadata service.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix under which dataset paths live.
        #[serde(default)]
        prefix: String,
        /// AWS region (default `us-east-1`, or `AWS_REGION`).
        #[serde(default)]
        region: Option<String>,
        /// Endpoint of an S3-compatible store, e.g. `http://127.0.0.1:9000`; `http://`
        /// endpoints are allowed.
        #[serde(default)]
        endpoint: Option<String>,
        /// Access key id; with `secret_access_key`, overrides the AWS chain.
        #[serde(default)]
        access_key_id: Option<String>,
        /// Secret access key.
        #[serde(default)]
        secret_access_key: Option<String>,
        /// Session token of temporary credentials.
        #[serde(default)]
        session_token: Option<String>,
        /// How long a listing of a dataset's files is reused; new files appear after it.
        #[serde(default = "default_listing_cache_ttl")]
        listing_cache_ttl: HumanDuration,
        /// How long one request to the store may take. A slower request, like one answered
        /// with a 5xx or 429, is retried twice with backoff (within 10 s in all); then the
        /// query fails with 58000 naming the dataset.
        #[serde(default = "default_request_timeout")]
        request_timeout: HumanDuration,
    },
    /// Tables of a PostgreSQL server (an RDS read replica, say), reached through one or more
    /// replicas holding the same tables. Queries go to the first replica that answers; a
    /// replica that fails is skipped for a while, so the next one takes over.
    Postgres {
        /// libpq connection strings of the replicas, in order of preference, e.g.
        /// `host=10.0.0.5 port=5432 dbname=crm user=tollgate password=…`.
        replicas: Vec<String>,
        /// Connections kept to each replica at most; queries beyond wait for one.
        #[serde(default = "default_replica_connections")]
        max_connections: usize,
        /// How long connecting to a replica may take before the next one is tried.
        #[serde(default = "default_connect_timeout")]
        connect_timeout: HumanDuration,
        /// How long a replica may leave a query without an answer: for its first row, then
        /// between rows. A replica silent for longer is taken as hung and skipped for a
        /// while: before the first row the next replica takes the query over, after it the
        /// query fails (58000 naming the dataset).
        #[serde(default = "default_read_timeout")]
        read_timeout: HumanDuration,
        /// TLS to the replicas, their certificates verified; absent means plain TCP.
        #[serde(default)]
        tls: Option<ReplicaTlsOptions>,
    },
    /// Amazon Athena, for datasets too large for one gateway: the part of a query over such
    /// a dataset runs there, in the tenant's workgroup. Its datasets declare their columns.
    Athena(AthenaOptions),
}

/// TLS to a postgres source's replicas.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaTlsOptions {
    /// Certificates (PEM) trusted besides the system's, e.g. Amazon RDS's CA bundle;
    /// relative paths are resolved against the configuration file.
    #[serde(default)]
    pub root_certificate: Option<PathBuf>,
}

/// Where Athena finds a dataset's table and writes results.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AthenaOptions {
    /// AWS region.
    pub region: String,
    /// Endpoint of an Athena-compatible API (tests); absent means AWS's.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The Glue database holding the datasets' tables.
    pub database: String,
    /// Workgroup of tenants whose profile names none.
    #[serde(default = "default_workgroup")]
    pub workgroup: String,
    /// Where Athena writes query results, e.g. `s3://bucket/athena-results/`; absent means
    /// the workgroup's setting.
    #[serde(default)]
    pub output_location: Option<String>,
    /// Access key id; else `AWS_ACCESS_KEY_ID` from the environment.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key; else `AWS_SECRET_ACCESS_KEY`.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Session token; else `AWS_SESSION_TOKEN`.
    #[serde(default)]
    pub session_token: Option<String>,
}

fn default_workgroup() -> String {
    "primary".to_owned()
}

fn default_replica_connections() -> usize {
    8
}

fn default_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(3))
}

fn default_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

fn default_listing_cache_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

/// One dataset of the catalog.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetOptions {
    /// Stable id `domain.name`; tenants query it as `domain.name`.
    pub id: String,
    /// Name of an entry of `sources`.
    pub source: String,
    /// Path (or prefix) of the dataset's files within the source; for a `postgres` source,
    /// the table, as `schema.table`; for an `athena` source, the table in its database.
    pub path: String,
    /// File format; only `parquet` for now.
    #[serde(default = "default_format")]
    pub format: String,
    /// The dataset's columns, in order. Absent means they are inferred from the files when
    /// the gateway starts; given, files are read as this schema (missing columns are null).
    #[serde(default)]
    pub columns: Option<Vec<ColumnOptions>>,
    /// Hive-style partition columns (`year=2024/month=7/…`), outermost directory first.
    #[serde(default)]
    pub partition_columns: Vec<ColumnOptions>,
    /// What the dataset holds, shown to tenants.
    #[serde(default)]
    pub description: String,
    /// What each column holds, by column name, shown to tenants (`col_description`, the
    /// remarks of BI tools' column lists).
    #[serde(default)]
    pub column_descriptions: BTreeMap<String, String>,
    /// Free-form labels for browsing.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Price per GiB returned (Arrow bytes of results), in the provider's currency.
    #[serde(default)]
    pub price_per_gib: f64,
    /// Price per GiB read from the dataset's source, in the provider's currency.
    #[serde(default)]
    pub price_per_gib_scanned: f64,
    /// For a table of a `postgres` source: a column whose value only grows as rows are
    /// added (a serial id, an insertion time), by which push channels find new rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
    /// A table (the default) or a view, as tenants' catalogs list it.
    #[serde(default, skip_serializing_if = "DatasetKind::is_table")]
    pub kind: DatasetKind,
    /// The columns whose values identify a row, in key order; they are NOT NULL. Shown to
    /// a tenant whose grant has all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub primary_key: Vec<String>,
    /// Keys of other datasets this one holds; shown to a tenant that sees both ends.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub foreign_keys: Vec<ForeignKeyOptions>,
}

fn default_format() -> String {
    "parquet".to_owned()
}

/// A column of a dataset's declared schema.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnOptions {
    /// Column name.
    pub name: String,
    /// SQL type, e.g. `bigint`, `double precision`, `varchar`, `date`, `decimal(15,2)`.
    #[serde(rename = "type")]
    pub data_type: String,
    /// Whether the column may hold NULL (`false` is PostgreSQL's NOT NULL).
    #[serde(default = "nullable_by_default", skip_serializing_if = "is_nullable")]
    pub nullable: bool,
}

fn nullable_by_default() -> bool {
    true
}

fn is_nullable(nullable: &bool) -> bool {
    *nullable
}

/// A client organisation.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TenantOptions {
    /// Tenant id.
    pub id: String,
    /// Name of an entry of `profiles`.
    pub profile: String,
    /// Attributes row filters may reference as `$name` (e.g. `region`).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Web origins (`https://app.example.com`) whose pages may call the Web-API with this
    /// tenant's credentials (CORS).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
}

/// A login.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalOptions {
    /// User name given at connect.
    pub user: String,
    /// The tenant the login belongs to.
    pub tenant: String,
    /// SCRAM-SHA-256 verifier in PostgreSQL's format (`tollgate passwd` makes one).
    pub scram_verifier: String,
    /// The channel the login belongs to; absent means it sees all of its tenant's
    /// entitlements.
    #[serde(default)]
    pub channel: Option<String>,
}

/// What one tenant may read of one dataset.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GrantOptions {
    /// Tenant id.
    pub tenant: String,
    /// Dataset id.
    pub dataset: String,
    /// Columns the tenant sees, in order; absent means all columns of the dataset.
    #[serde(default)]
    pub columns: Option<Vec<GrantColumnOptions>>,
    /// SQL predicate over the dataset's columns selecting the rows the tenant sees. It may
    /// name tenant attributes as `$attribute`; they are bound as values, never spliced as text.
    #[serde(default)]
    pub row_filter: Option<String>,
    /// A `postgres` source dedicated to this tenant (its own replicas of the dataset's
    /// table), which its queries on the dataset use instead of the dataset's source.
    #[serde(default)]
    pub source: Option<String>,
}
