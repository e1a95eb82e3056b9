//! The soak's gateway configuration: the demo's TPC-H datasets, ten tenants spread over
//! three profiles, one login each, grants, and every listener on a loopback port.
//!
//! | profile | tenants | slots (queue) | queue wait | timeout | rate |
//! | --- | --- | --- | --- | --- | --- |
//! | S | 0, 3, 6, 9 | 2 (16) | 5 s | 3 s | 30/s |
//! | M | 1, 4, 7 | 4 (32) | 10 s | 5 s | 60/s |
//! | L | 2, 5, 8 | 6 (64) | 20 s | 8 s | none |
//!
//! The statement timeouts are short so that the mix's long query runs past them now and
//! then. Even tenants see `tpch.orders` without comments and only from 1994 on (a row filter
//! behind the security barrier); odd ones see all of it.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

use tollgate_catalog::scram::{DEFAULT_ITERATIONS, Verifier};
use tollgate_catalog::{
    ByteSize, GrantColumnOptions, GrantOptions, HumanDuration, PrincipalOptions, ProfileOptions,
    TenantOptions,
};

/// One tenant of the soak and its login (user name = tenant id).
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Tenant id and login.
    pub id: String,
    /// The login's password.
    pub password: String,
}

/// The gateway's listeners, on ports that were free a moment ago.
#[derive(Debug, Clone, Copy)]
pub struct Listeners {
    /// Postgres wire protocol.
    pub pg: SocketAddr,
    /// Arrow Flight SQL.
    pub flight: SocketAddr,
    /// HTTP: the Web-API and `/metrics`.
    pub http: SocketAddr,
}

impl Listeners {
    /// Three free loopback ports.
    ///
    /// # Errors
    /// If no port can be bound.
    pub fn free() -> Result<Self, String> {
        let port = || {
            TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .map_err(|e| format!("no free port: {e}"))
        };
        Ok(Self {
            pg: port()?,
            flight: port()?,
            http: port()?,
        })
    }
}

/// The soak's tenants: `soak0` … `soak<count - 1>`.
pub fn tenants(count: usize) -> Vec<Tenant> {
    (0..count)
        .map(|i| Tenant {
            id: format!("soak{i}"),
            password: format!("soak-password-{i}"),
        })
        .collect()
}

/// The profile of the tenant at `index`.
fn profile_of(index: usize) -> &'static str {
    ["S", "M", "L"][index % 3]
}

/// Writes the configuration into `dir` (the ledger beside it) and returns its path.
///
/// # Errors
/// If the demo data cannot be prepared, a verifier derived, or the file written.
pub fn write(
    dir: &Path,
    scale: f64,
    tenants: &[Tenant],
    listeners: Listeners,
) -> Result<PathBuf, String> {
    // The demo's datasets over TPC-H data at `scale`, generated once per machine.
    let mut options = tollgate_tests::demo_options_at(scale, dir);
    options.pg.listen = listeners.pg;
    // 200 connections and their reconnects; the tenants' own limits are the profiles'.
    options.pg.max_connections = 1_000;
    if let Some(flight) = &mut options.flight {
        flight.listen = listeners.flight;
    }
    if let Some(http) = &mut options.http {
        http.listen = listeners.http;
    }
    // Queries only: no control plane polling its store beside the load.
    options.control = None;
    options.profiles = [
        ("S", profile(2, 16, 5, 3, Some(30.0))),
        ("M", profile(4, 32, 10, 5, Some(60.0))),
        ("L", profile(6, 64, 20, 8, None)),
    ]
    .into_iter()
    .map(|(name, profile)| (name.to_owned(), profile))
    .collect();
    options.tenants = tenants
        .iter()
        .enumerate()
        .map(|(i, tenant)| TenantOptions {
            id: tenant.id.clone(),
            profile: profile_of(i).to_owned(),
            attributes: Default::default(),
            allowed_origins: Vec::new(),
        })
        .collect();
    options.principals = tenants
        .iter()
        .map(|tenant| {
            let verifier = Verifier::derive(&tenant.password, DEFAULT_ITERATIONS)
                .map_err(|e| format!("a verifier for {}: {e}", tenant.id))?;
            Ok(PrincipalOptions {
                user: tenant.id.clone(),
                tenant: tenant.id.clone(),
                scram_verifier: verifier.to_string(),
                channel: None,
            })
        })
        .collect::<Result<_, String>>()?;
    options.grants = tenants
        .iter()
        .enumerate()
        .flat_map(|(i, tenant)| grants(&tenant.id, i % 2 == 0))
        .collect();
    let path = dir.join("tollgate.toml");
    let text = toml::to_string(&options).map_err(|e| format!("encode the configuration: {e}"))?;
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// A profile with `slots` concurrent queries, a queue of `queue`, waits and timeouts in
/// seconds, and a rate limit (bursts of two seconds' worth).
fn profile(
    slots: usize,
    queue: usize,
    wait: u64,
    timeout: u64,
    rate: Option<f64>,
) -> ProfileOptions {
    ProfileOptions {
        memory_limit: ByteSize(1 << 30),
        statement_timeout: HumanDuration(Duration::from_secs(timeout)),
        parallelism: 2,
        max_concurrent_queries: slots,
        queue_length: queue,
        max_queue_wait: HumanDuration(Duration::from_secs(wait)),
        rate_limit: rate,
        rate_burst: rate.map(|rate| (rate * 2.0) as u32),
        max_connections: 40,
        ..ProfileOptions::default()
    }
}

/// A tenant's grants: `tpch.lineitem` whole, `tpch.orders` whole or (`narrowed`) without
/// comments and from 1994 on.
fn grants(tenant: &str, narrowed: bool) -> [GrantOptions; 2] {
    let grant = |dataset: &str| GrantOptions {
        tenant: tenant.to_owned(),
        dataset: dataset.to_owned(),
        columns: None,
        row_filter: None,
        source: None,
    };
    let mut orders = grant("tpch.orders");
    if narrowed {
        orders.columns = Some(
            [
                "o_orderkey",
                "o_custkey",
                "o_orderstatus",
                "o_totalprice",
                "o_orderdate",
                "o_orderpriority",
            ]
            .map(|column| GrantColumnOptions::Name(column.to_owned()))
            .to_vec(),
        );
        orders.row_filter = Some("o_orderdate >= DATE '1994-01-01'".to_owned());
    }
    [grant("tpch.lineitem"), orders]
}
