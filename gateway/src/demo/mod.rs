//! The bundled demo: TPC-H data, two tenants, and a ready-to-use configuration.
//!
//! On first run `tollgate demo` generates TPC-H Parquet files into its data directory; later
//! runs reuse them. Each run writes the configuration beside them (with SCRAM verifiers of the
//! demo passwords). The configuration is then served like any other, through the same
//! loading and validation as `tollgate serve`.
//!
//! | tenant | region | grants |
//! | --- | --- | --- |
//! | `acme` (profile M) | EUROPE | all eight tables; `tpch.customer` only for customers in its region |
//! | `globex` (profile S) | AMERICA | `tpch.orders` without `o_comment`, orders from 1995 on; `tpch.lineitem` without `l_comment` |

pub mod tpch;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tollgate_catalog::scram::{DEFAULT_ITERATIONS, Verifier};

use crate::control::keys;
use crate::error::GatewayError;
use crate::reload::ConfigFile;
use crate::server;

/// Demo logins: user name = password = tenant id.
pub const DEMO_TENANTS: [&str; 2] = ["acme", "globex"];

/// Options of `tollgate demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Data and configuration directory.
    pub data_dir: PathBuf,
    /// TPC-H scale factor.
    pub scale: f64,
    /// Postgres wire protocol listener.
    pub pg_listen: SocketAddr,
    /// Arrow Flight SQL listener.
    pub flight_listen: SocketAddr,
    /// HTTP listener (`/metrics`).
    pub http_listen: SocketAddr,
}

/// Prepares the demo's data and configuration in `data_dir` (idempotent) and returns the
/// configuration's path.
///
/// # Errors
/// [`GatewayError::Demo`] if data cannot be generated or the configuration written.
pub fn prepare(data_dir: &Path, scale: f64) -> Result<PathBuf, GatewayError> {
    if !(tpch::MIN_SCALE..=100.0).contains(&scale) {
        return Err(GatewayError::Demo(format!(
            "--scale must be in [{}, 100], got {scale}",
            tpch::MIN_SCALE
        )));
    }
    std::fs::create_dir_all(data_dir)
        .map_err(|e| GatewayError::Demo(format!("cannot create {}: {e}", data_dir.display())))?;
    // One generator at a time per directory, across processes (tests start many at once).
    let lock_path = data_dir.join(".tollgate-demo.lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| GatewayError::Demo(format!("cannot create {}: {e}", lock_path.display())))?;
    lock.lock()
        .map_err(|e| GatewayError::Demo(format!("cannot lock {}: {e}", lock_path.display())))?;
    let scale_dir = data_dir.join(format!("tpch-sf{scale}"));
    tpch::generate_tpch(&scale_dir, scale).map_err(|e| GatewayError::Demo(e.to_string()))?;
    let config = data_dir.join(format!("tollgate-sf{scale}.toml"));
    // Written anew on every start (the data is kept), so the file always matches this
    // version of Tollgate.
    let text = demo_config(&scale_dir)?;
    std::fs::write(&config, text)
        .map_err(|e| GatewayError::Demo(format!("cannot write {}: {e}", config.display())))?;
    Ok(config)
}

/// Runs the demo until Ctrl-C.
///
/// # Errors
/// As [`prepare`] and [`server::start`].
pub async fn run(options: DemoOptions) -> Result<(), GatewayError> {
    std::fs::create_dir_all(&options.data_dir)?;
    let data_dir = options.data_dir.canonicalize()?;
    let (dir, scale) = (data_dir.clone(), options.scale);
    let config = tokio::task::spawn_blocking(move || prepare(&dir, scale))
        .await
        .map_err(|e| GatewayError::Demo(format!("data generation stopped: {e}")))??;
    let (pg_listen, flight_listen, http_listen) = (
        options.pg_listen,
        options.flight_listen,
        options.http_listen,
    );
    let config_file = ConfigFile::new(config.clone(), move |tollgate| {
        tollgate.pg.listen = pg_listen;
        if let Some(flight) = &mut tollgate.flight {
            flight.listen = flight_listen;
        }
        if let Some(http) = &mut tollgate.http {
            http.listen = http_listen;
        }
    });
    let tollgate = config_file.read()?;
    let running = server::start(&tollgate).await?;
    let address = running.pg_addr();
    // One write: a reader that stops after the line it wants does not break the rest.
    let mut lines: Vec<String> = Vec::new();
    lines.push(format!(
        "Tollgate demo is ready (TPC-H scale {scale}, configuration {}).",
        config.display()
    ));
    lines.push("Connect with psql as either tenant:".to_owned());
    for tenant in DEMO_TENANTS {
        lines.push(format!(
            "  psql \"host={} port={} dbname={} user={tenant} password={tenant}\"",
            address.ip(),
            address.port(),
            tollgate.database
        ));
    }
    if let Some(flight) = running.flight_addr() {
        lines.push(format!(
            "Arrow Flight SQL (ADBC, pyarrow, Spark) listens on grpc://{flight} with the same logins; see bi-examples/flight-python."
        ));
    }
    if let Some(http) = running.http_addr() {
        lines.push(format!("Prometheus metrics: http://{http}/metrics"));
        lines.push(format!(
            "Web console: http://{http}/console (sign in with tg_acme.demo-acme, tg_globex.demo-globex, or tg_admin.demo-admin as the provider)"
        ));
        lines.push("Control API: as the provider with key tg_admin.demo-admin,".to_owned());
        for tenant in DEMO_TENANTS {
            lines.push(format!(
                "and as {tenant} with key tg_{tenant}.demo-{tenant}:"
            ));
            let auth = format!("-H 'Authorization: Bearer tg_{tenant}.demo-{tenant}'");
            lines.push(format!("  curl -s {auth} http://{http}/v1/catalog"));
            lines.push(format!(
                "  curl -si {auth} -H 'Content-Type: application/json' -d '{{\"kind\":\"postgres\",\"datasets\":[{{\"dataset\":\"tpch.orders\"}}]}}' http://{http}/v1/channels"
            ));
            lines.push(format!(
                "  curl -s {auth} 'http://{http}/v1/events?wait=10'   # the ready event, with the login and password"
            ));
        }
    }
    lines.push(
        "Each tenant sees its usage and cost in SQL: SELECT * FROM tollgate.usage; SELECT * FROM tollgate.usage_daily;"
            .to_owned(),
    );
    lines.push("Press Ctrl-C to stop.".to_owned());
    println!("{}", lines.join("\n"));
    running.run_until_signal(config_file).await
}

fn verifier(password: &str) -> Result<String, GatewayError> {
    Verifier::derive(password, DEFAULT_ITERATIONS)
        .map(|v| v.to_string())
        .map_err(|e| GatewayError::Demo(e.to_string()))
}

/// What the demo's columns hold, after the TPC-H specification.
fn column_descriptions(table: &str) -> &'static [(&'static str, &'static str)] {
    match table {
        "orders" => &[
            ("o_orderkey", "Order key, unique per order"),
            ("o_custkey", "Customer who placed the order"),
            (
                "o_orderstatus",
                "F (fulfilled), O (open) or P (partly fulfilled)",
            ),
            ("o_totalprice", "Total price of the order"),
            ("o_orderdate", "Date the order was placed"),
            ("o_orderpriority", "Priority, from 1-URGENT to 5-LOW"),
            ("o_clerk", "Clerk who took the order"),
            ("o_shippriority", "Shipping priority"),
            ("o_comment", "Free-text comment on the order"),
        ],
        "lineitem" => &[
            ("l_orderkey", "Order the line belongs to"),
            ("l_quantity", "Quantity ordered"),
            ("l_extendedprice", "Quantity times the part's retail price"),
            ("l_discount", "Discount, from 0.00 to 0.10"),
            ("l_shipdate", "Date the line was shipped"),
        ],
        _ => &[],
    }
}

/// The keys of a demo table, as the TPC-H specification declares them (TOML lines).
fn keys(table: &str) -> &'static str {
    match table {
        "region" => "primary_key = [\"r_regionkey\"]\n",
        "nation" => {
            "primary_key = [\"n_nationkey\"]\nforeign_keys = [{ columns = [\"n_regionkey\"], references = \"tpch.region\" }]\n"
        }
        "supplier" => {
            "primary_key = [\"s_suppkey\"]\nforeign_keys = [{ columns = [\"s_nationkey\"], references = \"tpch.nation\" }]\n"
        }
        "customer" => {
            "primary_key = [\"c_custkey\"]\nforeign_keys = [{ columns = [\"c_nationkey\"], references = \"tpch.nation\" }]\n"
        }
        "part" => "primary_key = [\"p_partkey\"]\n",
        "partsupp" => {
            "primary_key = [\"ps_partkey\", \"ps_suppkey\"]\nforeign_keys = [\n    { columns = [\"ps_partkey\"], references = \"tpch.part\" },\n    { columns = [\"ps_suppkey\"], references = \"tpch.supplier\" },\n]\n"
        }
        "orders" => {
            "primary_key = [\"o_orderkey\"]\nforeign_keys = [{ columns = [\"o_custkey\"], references = \"tpch.customer\" }]\n"
        }
        "lineitem" => {
            "primary_key = [\"l_orderkey\", \"l_linenumber\"]\nforeign_keys = [\n    { columns = [\"l_orderkey\"], references = \"tpch.orders\" },\n    { columns = [\"l_partkey\", \"l_suppkey\"], references = \"tpch.partsupp\" },\n]\n"
        }
        _ => "",
    }
}

/// The demo configuration for data under `scale_dir`.
fn demo_config(scale_dir: &Path) -> Result<String, GatewayError> {
    let lake = scale_dir
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    let datasets: String = tpch::TPCH_TABLES
        .iter()
        .map(|table| {
            let columns: String = column_descriptions(table)
                .iter()
                .map(|(column, text)| format!("{column} = \"{text}\"\n"))
                .collect();
            let columns = if columns.is_empty() {
                columns
            } else {
                format!("[datasets.column_descriptions]\n{columns}")
            };
            format!(
                "[[datasets]]\nid = \"tpch.{table}\"\nsource = \"lake\"\npath = \"{table}\"\ndescription = \"TPC-H {table} table\"\ntags = [\"tpch\", \"demo\"]\nprice_per_gib = 0.05\nprice_per_gib_scanned = 0.01\n{keys}{columns}\n",
                keys = keys(table)
            )
        })
        .collect();
    let acme_grants: String = tpch::TPCH_TABLES
        .iter()
        .filter(|table| **table != "customer")
        .map(|table| format!("[[grants]]\ntenant = \"acme\"\ndataset = \"tpch.{table}\"\n\n"))
        .collect();
    let api_keys: String = std::iter::once(("admin", None))
        .chain(DEMO_TENANTS.iter().map(|tenant| (*tenant, Some(*tenant))))
        .map(|(id, tenant)| {
            let tenant = tenant.map_or_else(String::new, |t| format!("tenant = \"{t}\", "));
            let hash = keys::secret_hash(&format!("demo-{id}"));
            format!("  {{ id = \"{id}\", {tenant}secret_sha256 = \"{hash}\" }},\n")
        })
        .collect();
    Ok(format!(
        r#"# Tollgate demo configuration, written by `tollgate demo`.
database = "tollgate"

[pg]
listen = "127.0.0.1:6432"

[flight]
listen = "127.0.0.1:50051"

[http]
listen = "127.0.0.1:8080"

# Every query's usage record, durable before the query completes.
[usage]
ledger = "sqlite"
path = "usage.db"

# The control plane: tenants order channels through the REST API on the HTTP listener.
# Demo API keys: tg_admin.demo-admin (the provider), tg_<tenant>.demo-<tenant>.
[control]
store = "sqlite"
path = "control.db"
api_keys = [
{api_keys}]

[sources.lake]
kind = "local"
path = "{lake}"

# globex buys the small profile, acme the medium one.
[profiles.S]
memory_limit = "512MiB"
spill = false
statement_timeout = "60s"
parallelism = 1
max_concurrent_queries = 2
queue_length = 16
max_queue_wait = "30s"
max_result_rows = 10000000
max_connections = 50

[profiles.M]
memory_limit = "2GiB"
spill = true
spill_quota = "4GiB"
statement_timeout = "5m"
parallelism = 2
max_concurrent_queries = 4
queue_length = 32
max_queue_wait = "60s"
max_connections = 200

{datasets}[[tenants]]
id = "acme"
profile = "M"
attributes = {{ region = "EUROPE" }}

[[tenants]]
id = "globex"
profile = "S"
attributes = {{ region = "AMERICA" }}

[[principals]]
user = "acme"
tenant = "acme"
scram_verifier = "{acme}"

[[principals]]
user = "globex"
tenant = "globex"
scram_verifier = "{globex}"

{acme_grants}# acme sees only the customers of its own region.
[[grants]]
tenant = "acme"
dataset = "tpch.customer"
row_filter = "c_nationkey IN (SELECT n_nationkey FROM tpch.nation JOIN tpch.region ON n_regionkey = r_regionkey WHERE r_name = $region)"

# globex sees orders from 1995 on, without comments.
[[grants]]
tenant = "globex"
dataset = "tpch.orders"
columns = ["o_orderkey", "o_custkey", "o_orderstatus", "o_totalprice", "o_orderdate", "o_orderpriority", "o_clerk", "o_shippriority"]
row_filter = "o_orderdate >= DATE '1995-01-01'"

[[grants]]
tenant = "globex"
dataset = "tpch.lineitem"
columns = ["l_orderkey", "l_partkey", "l_suppkey", "l_linenumber", "l_quantity", "l_extendedprice", "l_discount", "l_tax", "l_returnflag", "l_linestatus", "l_shipdate", "l_commitdate", "l_receiptdate", "l_shipinstruct", "l_shipmode"]
"#,
        acme = verifier("acme")?,
        globex = verifier("globex")?,
    ))
}
