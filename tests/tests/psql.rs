//! The real `psql` binary, as an analyst uses it: meta-commands list only the tenant's grants.

use std::process::Command;

use tollgate_tests::{TestGateway, machine_pg};

/// Runs `psql -c command` as `user` and returns standard output; panics with stderr on failure.
fn psql(gateway: &TestGateway, user: &str, args: &[&str]) -> String {
    psql_at(&gateway.conninfo(user), args)
}

/// Runs `psql` on `conninfo` with unaligned output.
fn psql_at(conninfo: &str, args: &[&str]) -> String {
    let output = Command::new("psql")
        .arg(conninfo)
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

/// `orders` and `lineitem` as acme sees them, with the keys the demo declares, in the
/// machine's PostgreSQL: the other tables they reference hold only their keys.
const KEYED_TABLES_IN_POSTGRESQL: &str = "
    CREATE SCHEMA tpch;
    CREATE TABLE tpch.customer (c_custkey bigint PRIMARY KEY);
    CREATE TABLE tpch.orders (
        o_orderkey bigint PRIMARY KEY, o_custkey bigint NOT NULL REFERENCES tpch.customer,
        o_orderstatus text NOT NULL, o_totalprice numeric(15,2) NOT NULL,
        o_orderdate date NOT NULL, o_orderpriority text NOT NULL, o_clerk text NOT NULL,
        o_shippriority integer NOT NULL, o_comment text NOT NULL);
    CREATE TABLE tpch.partsupp (
        ps_partkey bigint, ps_suppkey bigint, PRIMARY KEY (ps_partkey, ps_suppkey));
    CREATE TABLE tpch.lineitem (
        l_orderkey bigint NOT NULL REFERENCES tpch.orders,
        l_partkey bigint NOT NULL, l_suppkey bigint NOT NULL, l_linenumber integer NOT NULL,
        l_quantity numeric(15,2) NOT NULL, l_extendedprice numeric(15,2) NOT NULL,
        l_discount numeric(15,2) NOT NULL, l_tax numeric(15,2) NOT NULL,
        l_returnflag text NOT NULL, l_linestatus text NOT NULL, l_shipdate date NOT NULL,
        l_commitdate date NOT NULL, l_receiptdate date NOT NULL, l_shipinstruct text NOT NULL,
        l_shipmode text NOT NULL, l_comment text NOT NULL,
        PRIMARY KEY (l_orderkey, l_linenumber),
        FOREIGN KEY (l_partkey, l_suppkey) REFERENCES tpch.partsupp);
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_described_as_postgresql_describes_them() {
    let admin = machine_pg::connect(machine_pg::ADMIN).await;
    machine_pg::recreate_database(&admin, "tollgate_psql_keys").await;
    let reference = machine_pg::conninfo("tollgate_psql_keys");
    machine_pg::connect(&reference)
        .await
        .batch_execute(KEYED_TABLES_IN_POSTGRESQL)
        .await
        .expect("the reference schema");
    let gateway = TestGateway::start().await;

    // Columns, indexes, foreign keys and the keys referencing the table, line for line.
    for table in ["tpch.lineitem", "tpch.orders"] {
        let command = format!("\\d {table}");
        let described = psql_async(&gateway, "acme", &["-c", &command]).await;
        let expected = tokio::task::block_in_place(|| psql_at(&reference, &["-c", &command]));
        assert_eq!(described, expected);
    }
    let described = psql_async(&gateway, "acme", &["-c", "\\d tpch.lineitem"]).await;
    assert!(
        described.contains("\"lineitem_l_partkey_l_suppkey_fkey\" FOREIGN KEY (l_partkey, l_suppkey) REFERENCES tpch.partsupp(ps_partkey, ps_suppkey)"),
        "{described}"
    );
    // globex is not granted customer: orders' key to it is not shown, its primary key is.
    let orders = psql_async(&gateway, "globex", &["-c", "\\d tpch.orders"]).await;
    assert!(
        orders.contains("\"orders_pkey\" PRIMARY KEY, btree (o_orderkey)"),
        "{orders}"
    );
    assert!(!orders.contains("customer"), "{orders}");
    gateway.stop().await;
    machine_pg::drop_database(&admin, "tollgate_psql_keys").await;
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
