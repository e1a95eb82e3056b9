//! SIGHUP: `tollgate.toml` and the certificates read again while sessions stay open. A
//! tenant added can log in, changed grants apply to open sessions' next statements, new
//! handshakes get the new certificate (SCRAM channel binding with it); a file that does not
//! check out (bad TOML, a grant of a dataset that does not exist, a key that is not the
//! certificate's) changes nothing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use arrow_flight::sql::client::FlightSqlServiceClient;
use tokio_postgres::{Client, NoTls};
use tollgate_catalog::scram::{DEFAULT_ITERATIONS, Verifier};
use tollgate_catalog::{GrantOptions, PrincipalOptions, TenantOptions, TlsOptions};
use tollgate_tests::process::{self, GatewayProcess};
use tollgate_tests::{TestCertificate, demo_options, install_crypto_provider, sqlstate};
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

async fn connect(conninfo: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A TLS session of `user` trusting only `trusted`.
async fn connect_tls(
    gateway: &GatewayProcess,
    user: &str,
    trusted: &TestCertificate,
) -> Result<Client, tokio_postgres::Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(trusted.cert_der())
        .expect("trust the certificate");
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    let conninfo = format!(
        "host=localhost port={} dbname=tollgate user={user} password={user} sslmode=require",
        gateway.pg_addr().port()
    );
    let (client, connection) = tokio_postgres::connect(&conninfo, tls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// What `psql` prints for `SELECT 1` as `user` over TLS trusting only `trusted`, with
/// channel binding required: the login proves that the certificate the gateway presented is
/// the one its SCRAM hashed.
fn psql_with_channel_binding(
    gateway: &GatewayProcess,
    user: &str,
    trusted: &TestCertificate,
) -> Result<String, String> {
    let conninfo = format!(
        "host=localhost port={} dbname=tollgate user={user} sslmode=verify-full sslrootcert={} channel_binding=require",
        gateway.pg_addr().port(),
        trusted.cert_path().display()
    );
    let output = std::process::Command::new("psql")
        .args(["-X", "-A", "-t", "-c", "SELECT 1", &conninfo])
        .env("PGPASSWORD", user)
        .output()
        .expect("run psql");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Whether a Flight SQL client trusting only `trusted` logs in.
async fn flight_login(gateway: &GatewayProcess, trusted: &TestCertificate) -> bool {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(trusted.cert_pem()))
        .domain_name("localhost");
    let uri = format!("https://localhost:{}", gateway.flight_addr().port());
    let Ok(channel) = Channel::from_shared(uri)
        .expect("uri")
        .tls_config(tls)
        .expect("tls config")
        .connect()
        .await
    else {
        return false;
    };
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake("acme", "acme").await.is_ok()
}

async fn count(client: &Client, sql: &str) -> Result<i64, tokio_postgres::Error> {
    client.query_one(sql, &[]).await.map(|row| row.get(0))
}

/// How many lines of the gateway's log say `what` so far.
fn log_lines(log: &Path, what: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(what)
        .count()
}

/// Sends SIGHUP and waits until the log says the reload ended with `outcome`; that line.
async fn reload(gateway: &GatewayProcess, log: &Path, outcome: &str) -> String {
    let before = log_lines(log, outcome);
    gateway.reload();
    let started = Instant::now();
    while log_lines(log, outcome) == before {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no `{outcome}` in the log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::read_to_string(log)
        .expect("the log")
        .lines()
        .rfind(|line| line.contains(outcome))
        .expect("the line")
        .to_owned()
}

/// The log's words for a reload served, and for one refused.
const RELOADED: &str = "configuration reloaded";
const REFUSED: &str = "configuration not reloaded";

/// `tenant`'s grant of every row and column of `dataset`.
fn grant(tenant: &str, dataset: &str) -> GrantOptions {
    GrantOptions {
        tenant: tenant.to_owned(),
        dataset: dataset.to_owned(),
        columns: None,
        row_filter: None,
        source: None,
    }
}

fn tls_of(certificate: &TestCertificate) -> TlsOptions {
    certificate.tls_options(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_catalog_and_certificates_and_keeps_sessions_open() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let (first, second) = (TestCertificate::generate(), TestCertificate::generate());
    let mut options = demo_options(dir.path());
    options.pg.tls = Some(tls_of(&first));
    options.flight.as_mut().expect("flight").tls = Some(tls_of(&first));
    let config = process::write_config(dir.path(), &options);
    let log = dir.path().join("gateway.log");
    let gateway = GatewayProcess::spawn(&config, &log);

    let acme = connect(&gateway.conninfo("acme")).await.expect("login");
    let globex = connect(&gateway.conninfo("globex")).await.expect("login");
    let acme_tls = connect_tls(&gateway, "acme", &first)
        .await
        .expect("TLS with the first certificate");
    let suppliers = count(&acme, "SELECT count(*) FROM tpch.supplier")
        .await
        .expect("acme reads suppliers");
    let error = count(&globex, "SELECT count(*) FROM tpch.nation")
        .await
        .expect_err("globex has no nations yet");
    assert_eq!(sqlstate(&error), "42P01");
    assert!(flight_login(&gateway, &first).await);
    assert_eq!(
        psql_with_channel_binding(&gateway, "acme", &first).as_deref(),
        Ok("1")
    );

    // A new tenant, a grant added and one removed, and a new certificate at new paths.
    let mut changed = options.clone();
    changed.tenants.push(TenantOptions {
        id: "initech".to_owned(),
        profile: "S".to_owned(),
        attributes: BTreeMap::new(),
        allowed_origins: Vec::new(),
    });
    changed.principals.push(PrincipalOptions {
        user: "initech".to_owned(),
        tenant: "initech".to_owned(),
        scram_verifier: Verifier::derive("initech", DEFAULT_ITERATIONS)
            .expect("verifier")
            .to_string(),
        channel: None,
    });
    for tenant in ["initech", "globex"] {
        changed.grants.push(grant(tenant, "tpch.nation"));
    }
    changed
        .grants
        .retain(|g| !(g.tenant == "acme" && g.dataset == "tpch.supplier"));
    changed.pg.tls = Some(tls_of(&second));
    changed.flight.as_mut().expect("flight").tls = Some(tls_of(&second));
    process::write_config(dir.path(), &changed);
    let reloaded = reload(&gateway, &log, RELOADED).await;
    assert!(reloaded.contains(r#"["pg", "flight"]"#), "{reloaded}");
    let initech = connect(&gateway.conninfo("initech"))
        .await
        .expect("the new tenant logs in");
    assert_eq!(
        count(&initech, "SELECT count(*) FROM tpch.nation")
            .await
            .expect("initech reads nations"),
        25
    );
    // Open sessions stay, and their next statements see the new grants.
    assert_eq!(
        count(&globex, "SELECT count(*) FROM tpch.nation")
            .await
            .expect("globex's open session reads nations now"),
        25
    );
    let error = count(&acme, "SELECT count(*) FROM tpch.supplier")
        .await
        .expect_err("acme's grant of suppliers is gone");
    assert_eq!(sqlstate(&error), "42P01");
    assert!(
        count(&acme_tls, "SELECT count(*) FROM tpch.region")
            .await
            .expect("the TLS session made with the first certificate goes on")
            == 5
    );
    // New handshakes present the second certificate, to pgwire and Flight SQL clients.
    assert!(connect_tls(&gateway, "acme", &first).await.is_err());
    let acme_second = connect_tls(&gateway, "acme", &second)
        .await
        .expect("TLS with the second certificate");
    assert_eq!(
        psql_with_channel_binding(&gateway, "acme", &second).as_deref(),
        Ok("1")
    );
    assert!(psql_with_channel_binding(&gateway, "acme", &first).is_err());
    assert_eq!(
        count(&acme_second, "SELECT count(*) FROM tpch.region")
            .await
            .expect("query"),
        5
    );
    assert!(!flight_login(&gateway, &first).await);
    assert!(flight_login(&gateway, &second).await);

    // Files that do not check out change nothing, whatever else they change.
    let mut without_initech = changed.clone();
    without_initech.tenants.retain(|t| t.id != "initech");
    without_initech.principals.retain(|p| p.tenant != "initech");
    without_initech.grants.retain(|g| g.tenant != "initech");

    std::fs::write(&config, "[[tenants]\nid = ").expect("write a broken file");
    let refusal = reload(&gateway, &log, REFUSED).await;
    assert!(refusal.contains("tollgate.toml"), "{refusal}");

    let mut bad_grant = without_initech.clone();
    bad_grant.grants.push(grant("globex", "tpch.nosuch"));
    process::write_config(dir.path(), &bad_grant);
    let refusal = reload(&gateway, &log, REFUSED).await;
    assert!(refusal.contains("tpch.nosuch"), "{refusal}");

    let mut bad_key = without_initech.clone();
    bad_key.pg.tls = Some(TlsOptions {
        cert: first.cert_path().to_owned(),
        key: tls_of(&second).key,
        require: false,
    });
    process::write_config(dir.path(), &bad_key);
    let refusal = reload(&gateway, &log, REFUSED).await;
    assert!(refusal.contains("do not fit"), "{refusal}");

    let mut new_source = without_initech.clone();
    let (name, source) = new_source
        .sources
        .iter()
        .next()
        .map(|(name, source)| (format!("{name}_copy"), source.clone()))
        .expect("a source");
    new_source.sources.insert(name, source);
    process::write_config(dir.path(), &new_source);
    let refusal = reload(&gateway, &log, REFUSED).await;
    assert!(refusal.contains("restart"), "{refusal}");

    let initech = connect(&gateway.conninfo("initech"))
        .await
        .expect("initech is still served");
    count(&initech, "SELECT count(*) FROM tpch.nation")
        .await
        .expect("with its grant");
    assert!(connect_tls(&gateway, "globex", &second).await.is_ok());
    for session in [&acme, &globex, &acme_tls] {
        session.simple_query("SELECT 1").await.expect("still open");
    }
    assert!(suppliers > 0);

    // Start-up-only settings are named, not applied.
    let mut restart_only = changed.clone();
    restart_only.pg.max_connections += 1;
    process::write_config(dir.path(), &restart_only);
    reload(&gateway, &log, RELOADED).await;
    let warning = std::fs::read_to_string(&log)
        .expect("the log")
        .lines()
        .rfind(|line| line.contains("read only at start-up"))
        .expect("a warning naming the start-up-only sections")
        .to_owned();
    assert!(warning.contains(r#"["pg"]"#), "{warning}");

    gateway.terminate();
    let mut gateway = gateway;
    let status = gateway
        .wait_exit(Duration::from_secs(30))
        .expect("the gateway exits");
    assert!(status.success(), "{status}");
}
