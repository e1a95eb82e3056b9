//! SIGTERM drains the gateway: new logins get 57P03 and new statements 57P01, a statement
//! running when the signal came finishes within `engine.drain_grace`, one still running
//! when the grace ends is stopped with 57P01 and recorded as cancelled, and the process
//! exits 0 with every record written; sessions still open then get FATAL 57P01 before it
//! exits.

use std::time::Duration;

use futures::{StreamExt, pin_mut};
use tokio_postgres::{Client, NoTls};
use tollgate_catalog::HumanDuration;
use tollgate_tests::process::{self, GatewayProcess};
use tollgate_tests::{demo_options, install_crypto_provider, message, sqlstate};

async fn connect(conninfo: &str) -> Result<Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conninfo, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// A statement that runs far longer than the test waits.
const ENDLESS: &str = "SELECT sum(x) AS drain_endless FROM generate_series(1, 1000000000000) t(x)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_statements_finish_refuses_new_ones_and_exits_zero() {
    install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut options = demo_options(dir.path());
    let grace = Duration::from_secs(6);
    options.engine.drain_grace = HumanDuration(grace);
    options.usage.record_sql_text = true;
    let config = process::write_config(dir.path(), &options);
    let mut gateway = GatewayProcess::spawn(&config, &dir.path().join("gateway.log"));
    let conninfo = gateway.conninfo("acme");

    let idle = connect(&conninfo).await.expect("login");
    // A session that stays idle to the end: its connection's future ends with the FATAL.
    let (_left_open, left_open_connection) = tokio_postgres::connect(&conninfo, NoTls)
        .await
        .expect("login");
    let left_open = tokio::spawn(left_open_connection);
    let expected: i64 = idle
        .query_one("SELECT count(*) FROM tpch.lineitem", &[])
        .await
        .expect("count")
        .get(0);
    // A result read slowly: its statement runs until the client has read it all.
    let reader = connect(&conninfo).await.expect("login");
    let rows = reader
        .query_raw("SELECT * FROM tpch.lineitem", Vec::<i64>::new())
        .await
        .expect("a result");
    pin_mut!(rows);
    rows.next().await.expect("a row").expect("a row");
    let endless_client = connect(&conninfo).await.expect("login");
    let endless = tokio::spawn(async move { endless_client.simple_query(ENDLESS).await });
    tokio::time::sleep(Duration::from_millis(500)).await;

    gateway.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = connect(&conninfo).await.expect_err("a new login refused");
    assert_eq!(sqlstate(&refused), "57P03", "{refused}");
    let refused = idle.simple_query("SELECT 1").await.expect_err("refused");
    assert_eq!(sqlstate(&refused), "57P01", "{refused}");

    // The running statement finishes: every row arrives.
    let mut read = 1_i64;
    while let Some(row) = rows.next().await {
        row.expect("a row");
        read += 1;
    }
    assert_eq!(read, expected);

    // The endless one is stopped when the grace ends.
    let stopped = endless
        .await
        .expect("task")
        .expect_err("stopped at the end of the grace");
    assert_eq!(sqlstate(&stopped), "57P01", "{stopped}");
    let status = gateway
        .wait_exit(Duration::from_secs(30))
        .expect("the gateway exits after its drain");
    assert!(status.success(), "{status}");
    let ended = tokio::time::timeout(Duration::from_secs(5), left_open)
        .await
        .expect("the idle session was closed")
        .expect("task")
        .expect_err("told why it was closed");
    assert_eq!(sqlstate(&ended), "57P01", "{ended}");
    assert!(message(&ended).contains("administrator command"), "{ended}");

    // Every statement has its record: the read one complete, the endless one cancelled.
    let records = process::usage_export(&config, &["--tenant", "acme"]);
    let of = |needle: &str| {
        records
            .iter()
            .filter(|r| {
                r["sql_text"]
                    .as_str()
                    .is_some_and(|sql| sql.contains(needle))
            })
            .cloned()
            .collect::<Vec<_>>()
    };
    let read_records = of("SELECT * FROM tpch.lineitem");
    assert_eq!(read_records.len(), 1, "{records:#?}");
    assert_eq!(read_records[0]["outcome"], "ok");
    assert_eq!(read_records[0]["rows_returned"], expected);
    let endless_records = of("drain_endless");
    assert_eq!(endless_records.len(), 1, "{records:#?}");
    assert_eq!(endless_records[0]["outcome"], "cancelled");
    assert_eq!(endless_records[0]["sqlstate"], "57P01");
}
