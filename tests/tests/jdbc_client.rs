//! pgJDBC (Debian's `libpostgresql-jdbc-java`) against the gateway: `tests/java/JdbcClient.java`
//! is compiled with `javac` and run as the demo tenant globex. It checks DatabaseMetaData
//! (schemas, tables, columns with types, type info), typed prepared statements past the
//! driver's server-prepare threshold, result metadata and fetch-size streaming, and prints
//! `ok`. `scripts/test` installs the JDK and the driver. The JDBC example of `bi-examples/`
//! runs here too, as its README says.

use std::path::Path;
use std::process::Command;

use tollgate_tests::TestGateway;

/// Debian's pgJDBC jar.
const PGJDBC: &str = "/usr/share/java/postgresql.jar";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgjdbc_metadata_prepared_statements_and_streaming() {
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
    let stdout = java_output(run).await;
    assert!(stdout.trim_end().ends_with("ok"), "JdbcClient: {stdout}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jdbc_example_runs_as_its_readme_says() {
    let gateway = TestGateway::start().await;
    let address = gateway.addr();
    let mut run = Command::new("java");
    run.current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["-cp", PGJDBC, "bi-examples/jdbc/TollgateJdbc.java"])
        .args(["--host", &address.ip().to_string()])
        .args(["--port", &address.port().to_string()])
        .args(["--user", "globex", "--password", "globex"]);
    let stdout = java_output(run).await;
    let tables: Vec<&str> = stdout
        .lines()
        .filter(|line| line.starts_with("table tpch."))
        .collect();
    assert_eq!(
        tables,
        [
            "table tpch.lineitem: TPC-H lineitem table",
            "table tpch.orders: TPC-H orders table"
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("column tpch.orders.o_orderkey int8"),
        "{stdout}"
    );
    assert!(!stdout.contains("o_comment"), "{stdout}");
    let priorities = stdout
        .lines()
        .filter(|line| line.starts_with("priority ") && line.contains(" orders="))
        .count();
    assert_eq!(priorities, 5, "{stdout}");
    assert!(stdout.contains("usage queries="), "{stdout}");
    gateway.stop().await;
}

/// Runs `java` to its end and returns what it printed; a failed run fails the test.
async fn java_output(mut command: Command) -> String {
    assert!(
        Path::new(PGJDBC).exists(),
        "{PGJDBC} is missing: install libpostgresql-jdbc-java (scripts/test does)"
    );
    // The JVM blocks its thread; the gateway keeps serving on the runtime's workers.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("the java thread finishes")
        .expect("run java (install a JDK: scripts/test does)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "java failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}
