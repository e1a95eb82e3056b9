//! pgJDBC (Debian's `libpostgresql-jdbc-java`) against the gateway: `tests/java/JdbcClient.java`
//! is compiled with `javac` and run as the demo tenant globex. It checks DatabaseMetaData
//! (schemas, tables, columns with types, type info), typed prepared statements past the
//! driver's server-prepare threshold, result metadata and fetch-size streaming, and prints
//! `ok`. `scripts/test` installs the JDK and the driver.

use std::path::Path;
use std::process::Command;

use tollgate_tests::TestGateway;

/// Debian's pgJDBC jar.
const PGJDBC: &str = "/usr/share/java/postgresql.jar";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgjdbc_metadata_prepared_statements_and_streaming() {
    assert!(
        Path::new(PGJDBC).exists(),
        "{PGJDBC} is missing: install libpostgresql-jdbc-java (scripts/test does)"
    );
    let classes = tempfile::tempdir().expect("a directory for the classes");
    let source = concat!(env!("CARGO_MANIFEST_DIR"), "/java/JdbcClient.java");
    let compiled = Command::new("javac")
        .args(["-cp", PGJDBC, "-d"])
        .arg(classes.path())
        .arg(source)
        .output()
        .expect("run javac (install a JDK: scripts/test does)");
    assert!(
        compiled.status.success(),
        "javac failed: {}",
        String::from_utf8_lossy(&compiled.stderr)
    );

    let gateway = TestGateway::start().await;
    let address = gateway.addr();
    let classpath = format!("{PGJDBC}:{}", classes.path().display());
    let mut run = Command::new("java");
    run.args(["-cp", &classpath, "JdbcClient"])
        .arg(address.ip().to_string())
        .arg(address.port().to_string());
    // The JVM blocks its thread; the gateway keeps serving on the runtime's workers.
    let output = tokio::task::spawn_blocking(move || run.output())
        .await
        .expect("the java thread finishes")
        .expect("run java");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.trim_end().ends_with("ok"),
        "JdbcClient failed:\n{stdout}\n{stderr}"
    );
    gateway.stop().await;
}
