//! The real `psql` binary, as an analyst uses it: meta-commands list only the tenant's grants.

use std::process::Command;

use tollgate_tests::TestGateway;

/// Runs `psql -c command` as `user` and returns standard output; panics with stderr on failure.
fn psql(gateway: &TestGateway, user: &str, args: &[&str]) -> String {
    let output = Command::new("psql")
        .arg(gateway.conninfo(user))
        .args([
            "-X",
            "--no-psqlrc",
            "-v",
            "ON_ERROR_STOP=1",
            "-A",
            "-F",
            "|",
        ])
        .args(args)
        .output()
        .expect("psql is installed (scripts/test installs postgresql-client)");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "psql {args:?} failed:\n{stderr}\n{stdout}"
    );
    stdout
}

/// `psql` blocks its thread; run it off the runtime the gateway serves on.
async fn psql_async(gateway: &TestGateway, user: &str, args: &[&str]) -> String {
    tokio::task::block_in_place(|| psql(gateway, user, args))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_and_expanded_output() {
    let gateway = TestGateway::start().await;
    let out = psql_async(
        &gateway,
        "globex",
        &["-t", "-c", "SELECT count(*) > 0 FROM tpch.orders"],
    )
    .await;
    assert_eq!(out.trim(), "t");
    let out = psql_async(
        &gateway,
        "acme",
        &[
            "-c",
            "\\x",
            "-c",
            "SELECT r_regionkey, r_name FROM tpch.region WHERE r_regionkey = 3",
        ],
    )
    .await;
    assert!(out.contains("r_name|EUROPE"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_tables_shows_only_grants() {
    let gateway = TestGateway::start().await;
    let out = psql_async(&gateway, "globex", &["-c", "\\dt tpch.*"]).await;
    assert!(out.contains("tpch|orders"), "{out}");
    assert!(out.contains("tpch|lineitem"), "{out}");
    assert!(
        !out.contains("customer") && !out.contains("nation"),
        "{out}"
    );
    // `\dt+`: sizes (views take none) and the datasets' descriptions.
    let described = psql_async(&gateway, "globex", &["-c", "\\dt+ tpch.*"]).await;
    assert!(
        described.contains("tpch|orders|table|")
            && described.contains("|0 bytes|TPC-H orders table"),
        "{described}"
    );
    assert!(!described.contains("customer"), "{described}");
    let all = psql_async(&gateway, "acme", &["-c", "\\dt tpch.*"]).await;
    for table in [
        "customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier",
    ] {
        assert!(
            all.contains(&format!("tpch|{table}")),
            "{table} missing from\n{all}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_schemas_and_databases() {
    let gateway = TestGateway::start().await;
    let schemas = psql_async(&gateway, "globex", &["-c", "\\dn"]).await;
    assert!(schemas.contains("tpch"), "{schemas}");
    let databases = psql_async(&gateway, "globex", &["-c", "\\l"]).await;
    assert!(databases.contains("tollgate"), "{databases}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_a_view_shows_granted_columns_only() {
    let gateway = TestGateway::start().await;
    let out = psql_async(&gateway, "globex", &["-c", "\\d tpch.orders"]).await;
    assert!(out.contains("o_orderkey|bigint"), "{out}");
    assert!(!out.contains("o_comment"), "{out}");
    let hidden = Command::new("psql")
        .arg(gateway.conninfo("globex"))
        .args(["-X", "-c", "\\d tpch.customer"])
        .output()
        .expect("psql");
    let text = String::from_utf8_lossy(&hidden.stderr).into_owned()
        + &String::from_utf8_lossy(&hidden.stdout);
    assert!(text.contains("Did not find any relation named"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn column_descriptions_of_the_catalog_are_shown() {
    let gateway = TestGateway::start().await;
    let globex = psql_async(&gateway, "globex", &["-c", "\\d+ tpch.orders"]).await;
    assert!(
        globex.contains("o_orderkey|bigint||not null||plain|||Order key, unique per order"),
        "{globex}"
    );
    assert!(
        globex.contains("Priority, from 1-URGENT to 5-LOW"),
        "{globex}"
    );
    // globex's grant leaves o_comment out: its description with it.
    assert!(!globex.contains("Free-text comment"), "{globex}");
    let acme = psql_async(&gateway, "acme", &["-c", "\\d+ tpch.orders"]).await;
    assert!(acme.contains("Free-text comment on the order"), "{acme}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conninfo_and_copy_to_stdout() {
    let gateway = TestGateway::start().await;
    let info = psql_async(&gateway, "acme", &["-c", "\\conninfo"]).await;
    assert!(
        info.contains("\"tollgate\"") && info.contains("\"acme\""),
        "{info}"
    );
    let csv = psql_async(
        &gateway,
        "acme",
        &[
            "-c",
            "\\copy (SELECT r_regionkey, r_name FROM tpch.region ORDER BY 1) to stdout csv",
        ],
    )
    .await;
    assert_eq!(csv.lines().next(), Some("0,AFRICA"), "{csv}");
    assert_eq!(csv.lines().count(), 5, "{csv}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_psql_example_runs_as_its_readme_says() {
    let gateway = TestGateway::start().await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../bi-examples/psql/queries.sql"
    );
    let out = psql_async(&gateway, "globex", &["-f", script]).await;
    assert!(out.contains("TPC-H orders table"), "{out}");
    assert!(out.contains("o_orderkey,o_orderdate"), "{out}");
    assert!(out.contains("5-LOW"), "{out}");
    assert!(
        !out.contains("customer") && !out.contains("o_comment"),
        "{out}"
    );
}
