//! A disk that runs full, under the spill directory and under the SQLite ledger (a tmpfs of
//! a few MiB filled up): the query that needs the space fails with a clear error, nothing is
//! left half-written, and service is whole once space is free again.

use std::time::Duration;

use tollgate_catalog::{ByteSize, HumanDuration};
use tollgate_tests::marked::{MarkedQueries, MarkedRecord};
use tollgate_tests::small_disk::SmallDisk;
use tollgate_tests::{TestGateway, message, sqlstate};

/// A sort of 3 M values in 16 MiB of memory: tens of MiB spilled.
const SPILLING_SORT: &str = "SELECT max(r)::bigint FROM (SELECT row_number() OVER (ORDER BY value DESC) AS r FROM generate_series(1, 3000000))";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_spill_disk_fails_the_spilling_query_with_53100_and_leaves_no_file() {
    let disk = SmallDisk::mount(512 << 20);
    let spill = disk.path().join("spill");
    let gateway = TestGateway::start_with(|options| {
        options.engine.spill_directory = Some(spill.clone());
        options.usage.record_sql_text = true;
        let m = options.profiles.get_mut("M").expect("demo profile");
        m.memory_limit = ByteSize(16 << 20);
        m.spill = true;
        // The quota is far above the disk: the disk is what runs out.
        m.spill_quota = ByteSize(1 << 30);
        m.statement_timeout = HumanDuration(Duration::from_secs(120));
    })
    .await;
    let acme = gateway.connect("acme").await;
    let sorted: i64 = acme
        .query_one(SPILLING_SORT, &[])
        .await
        .expect("the sort spills")
        .get(0);
    assert_eq!(sorted, 3_000_000);

    disk.fill(256 << 10);
    let free = disk.free_bytes();
    let error = acme
        .query(SPILLING_SORT, &[])
        .await
        .expect_err("no room to spill");
    assert_eq!(sqlstate(&error), "53100", "{}", message(&error));
    let text = message(&error);
    assert!(text.contains("No space left on device"), "{text}");
    assert!(text.contains("spill"), "{text}");
    assert!(
        !text.contains(&disk.path().display().to_string()),
        "the spill directory is the provider's business: {text}"
    );
    // The failed query's spill files are gone: the space is as it was before it ran.
    assert!(disk.free_bytes() >= free, "spill files left behind");
    gateway.assert_serving().await;
    let records = acme
        .query(
            "SELECT sqlstate FROM tollgate.usage_records \
             WHERE sql_text LIKE '%ORDER BY value DESC%' ORDER BY started_at",
            &[],
        )
        .await
        .expect("usage records");
    let codes: Vec<Option<String>> = records.iter().map(|row| row.get(0)).collect();
    assert_eq!(codes, [None, Some("53100".to_owned())]);

    disk.free();
    let again: i64 = acme
        .query_one(SPILLING_SORT, &[])
        .await
        .expect("spills again once there is room")
        .get(0);
    assert_eq!(again, sorted);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_ledger_disk_refuses_queries_until_it_has_room_and_loses_no_record() {
    let disk = SmallDisk::mount(16 << 20);
    let ledger = disk.path().join("usage.db");
    let gateway = TestGateway::start_with(|options| {
        options.usage.path = ledger.clone();
        options.usage.record_sql_text = true;
    })
    .await;
    let acme = gateway.connect("acme").await;
    let mut queries = MarkedQueries::new("disk");
    for _ in 0..3 {
        queries.served(&acme).await;
    }

    disk.fill(0);
    // Queries run while the ledger's file has room left in its pages; the first whose
    // record cannot be written ends with 58000, and from then on queries are refused.
    let mut attempts = 0;
    let failed = loop {
        attempts += 1;
        match queries.run(&acme).await {
            Ok(()) => assert!(attempts < 200, "the ledger never ran out of room"),
            Err(error) => break error,
        }
    };
    assert_eq!(sqlstate(&failed), "58000", "{failed}");
    for _ in 0..3 {
        let text = queries.refused(&acme).await;
        assert!(text.contains("full"), "{text}");
    }

    disk.free();
    queries.until_served(&acme, Duration::from_secs(15)).await;
    gateway.stop().await;

    // The file is whole, and every query that ran has exactly one record.
    let connection = rusqlite::Connection::open(&ledger).expect("open the ledger");
    let check: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("integrity check");
    assert_eq!(check, "ok");
    let mut select = connection
        .prepare(
            "SELECT json_extract(record, '$.sql_text'), json_extract(record, '$.sqlstate'), \
             json_extract(record, '$.rows_returned') \
             FROM tollgate_usage WHERE tenant = 'acme' \
             AND json_extract(record, '$.sql_text') LIKE '%disk-%'",
        )
        .expect("a query of the ledger");
    let records = select
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .expect("records")
        .collect::<Result<Vec<MarkedRecord>, _>>()
        .expect("records");
    queries.assert_recorded(&records);
    drop(disk);
}
