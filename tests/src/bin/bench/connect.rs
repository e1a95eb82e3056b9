//! B7: connect time with SCRAM, and with TLS + SCRAM, gateway vs PostgreSQL configured alike.

use std::time::Instant;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio_postgres::NoTls;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::gateway::{Fixture, Server};
use crate::placement::Placement;
use crate::postgres::PrivateCluster;
use crate::report::{Measurement, Ratio, Report, summarize};

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
            let started = Instant::now();
            if with_tls {
                let (client, connection) = tokio_postgres::connect(&conninfo, tls.clone())
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                let task = tokio::spawn(connection);
                samples.push(started.elapsed().as_secs_f64() * 1e6);
                drop(client);
                let _ = task.await;
            } else {
                let (client, connection) = tokio_postgres::connect(&conninfo, NoTls)
                    .await
                    .map_err(|e| format!("{name}: {e}"))?;
                let task = tokio::spawn(connection);
                samples.push(started.elapsed().as_secs_f64() * 1e6);
                drop(client);
                let _ = task.await;
            }
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
