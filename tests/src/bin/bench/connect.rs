//! B7: connect time with SCRAM, and with TLS + SCRAM, gateway vs PostgreSQL configured alike.

use std::time::Instant;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{NoTls, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::gateway::{Fixture, Server};
use crate::placement::Placement;
use crate::report::{Measurement, Ratio, Report, summarize};
use tollgate_tests::pg_cluster::PrivateCluster;

/// Measures `connects` sequential connections per target and records p50 ratios.
pub async fn measure(
    fixture: &Fixture,
    server: &Server,
    cluster: &PrivateCluster,
    placement: Placement,
    connects: usize,
    report: &mut Report,
) -> Result<(), String> {
    let tls = tls_connector(fixture)?;
    let mut p50 = Vec::new();
    for (name, conninfo, with_tls) in [
        ("gateway SCRAM", server.conninfo("acme", false), false),
        ("PostgreSQL SCRAM", cluster.conninfo(false), false),
        ("gateway TLS+SCRAM", server.conninfo("acme", true), true),
        ("PostgreSQL TLS+SCRAM", cluster.conninfo(true), true),
    ] {
        let mut samples = Vec::with_capacity(connects);
        for _ in 0..connects.max(1) {
            let micros = if with_tls {
                connect_once(&conninfo, tls.clone()).await
            } else {
                connect_once(&conninfo, NoTls).await
            };
            samples.push(micros.map_err(|e| format!("{name}: {e}"))?);
        }
        let (median, spread) = summarize(&samples);
        report.add(Measurement {
            id: "B7",
            placement: placement.name(),
            name: format!("{name}: connect p50"),
            value: median,
            spread,
            unit: "µs",
        });
        p50.push(median);
    }
    for (i, label) in [(0, "SCRAM"), (2, "TLS+SCRAM")] {
        report.ratio(Ratio {
            id: "B7",
            placement: placement.name(),
            name: format!("connect p50 {label}: gateway ÷ PostgreSQL"),
            numerator: p50[i],
            denominator: p50[i + 1],
            goal: "≤ 1.0",
        });
    }
    Ok(())
}

/// Microseconds from connecting until the session is ready; the connection is then closed.
async fn connect_once<T>(conninfo: &str, tls: T) -> Result<f64, tokio_postgres::Error>
where
    T: MakeTlsConnect<Socket>,
    T::Stream: Send + 'static,
{
    let started = Instant::now();
    let (client, connection) = tokio_postgres::connect(conninfo, tls).await?;
    let task = tokio::spawn(connection);
    let micros = started.elapsed().as_secs_f64() * 1e6;
    drop(client);
    let _ = task.await;
    Ok(micros)
}

fn tls_connector(fixture: &Fixture) -> Result<MakeRustlsConnect, String> {
    let mut roots = rustls::RootCertStore::empty();
    let cert =
        CertificateDer::from_pem_slice(fixture.cert_pem.as_bytes()).map_err(|e| e.to_string())?;
    roots.add(cert).map_err(|e| e.to_string())?;
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}
