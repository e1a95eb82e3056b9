//! A dataset on Athena, against moto's Athena API on loopback: the gateway sends the
//! query with the grant's row filter in the tenant's workgroup, reads the result pages
//! into the declared types, meters the bytes Athena scanned, runs aggregates there, stops the Athena query when the client
//! cancels, and reports an unreachable endpoint as the dataset being unavailable.

use std::time::{Duration, Instant};

use tollgate_catalog::{
    AthenaOptions, DatasetOptions, GrantOptions, SourceOptions, TollgateOptions,
};
use tollgate_tests::moto::{self, MotoServer};
use tollgate_tests::{TestGateway, assert_dataset_unavailable, sqlstate, usage_of};

const WORKGROUP: &str = "acme-analytics";

/// The queries Athena received, as (query, workgroup, database, state), oldest first.
fn executions(moto: &MotoServer) -> Vec<(String, String, String, String)> {
    let listed = moto.python(
        "athena = client('athena')\n\
         out = []\n\
         for wg in ['primary', 'acme-analytics']:\n\
         \x20   for id in athena.list_query_executions(WorkGroup=wg)['QueryExecutionIds']:\n\
         \x20       e = athena.get_query_execution(QueryExecutionId=id)['QueryExecution']\n\
         \x20       out.append([e['Query'], e.get('WorkGroup') or '', \
                             (e.get('QueryExecutionContext') or {}).get('Database', ''), \
                             e['Status']['State']])\n\
         print(json.dumps(out))",
    );
    serde_json::from_str(listed.trim()).expect("executions as JSON")
}

/// Queues one Athena result: a header row of `columns`, then `rows`, all as text.
fn set_result(moto: &MotoServer, columns: &[&str], rows: &[Vec<String>]) {
    let row = |values: Vec<String>| {
        let data: Vec<String> = values
            .iter()
            .map(|value| format!(r#"{{"VarCharValue":"{value}"}}"#))
            .collect();
        format!(r#"{{"Data":[{}]}}"#, data.join(","))
    };
    let mut data = vec![row(columns.iter().map(|c| (*c).to_owned()).collect())];
    data.extend(rows.iter().cloned().map(row));
    moto.python(&format!(
        "import urllib.request\n\
         body = json.dumps({{'results': [{{'rows': json.loads('[{rows}]'), 'column_info': []}}]}}).encode()\n\
         urllib.request.urlopen(urllib.request.Request(endpoint + '/moto-api/static/athena/query-results', data=body, method='POST'))",
        rows = data.join(",")
    ));
}

/// Keeps Athena queries queued (moto advances a query's state only after many polls).
fn hold_queries(moto: &MotoServer) {
    moto.python(
        "import urllib.request\n\
         body = json.dumps({'model_name': 'athena::execution', 'transition': {'progression': 'manual', 'times': 100000}}).encode()\n\
         urllib.request.urlopen(urllib.request.Request(endpoint + '/moto-api/state-manager/set-transition', data=body, method='POST'))",
    );
}

/// Source `athena` on `moto`, dataset `big.trips` on it, acme's profile in workgroup
/// [`WORKGROUP`], and a grant to acme of two columns of its region's trips.
fn add_athena(options: &mut TollgateOptions, moto: &MotoServer) {
    options.sources.insert(
        "athena".to_owned(),
        SourceOptions::Athena(AthenaOptions {
            region: moto::REGION.to_owned(),
            endpoint: Some(moto.endpoint().to_owned()),
            database: "lake".to_owned(),
            workgroup: "primary".to_owned(),
            output_location: Some("s3://athena-results/".to_owned()),
            access_key_id: Some(moto::ACCESS_KEY.to_owned()),
            secret_access_key: Some(moto::SECRET_KEY.to_owned()),
            session_token: None,
        }),
    );
    let dataset: DatasetOptions = toml::from_str(
        r#"
        id = "big.trips"
        source = "athena"
        path = "trips"
        columns = [
            { name = "trip_id", type = "bigint" },
            { name = "region", type = "varchar" },
            { name = "fare", type = "double" },
        ]
        "#,
    )
    .expect("dataset options");
    options.datasets.push(dataset);
    let grant: GrantOptions = toml::from_str(
        r#"
        tenant = "acme"
        dataset = "big.trips"
        columns = ["trip_id", "fare"]
        row_filter = "region = $region"
        "#,
    )
    .expect("grant options");
    options.grants.push(grant);
    for profile in options.profiles.values_mut() {
        profile.athena_workgroup = Some(WORKGROUP.to_owned());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn athena_runs_the_tenants_query_in_its_workgroup_and_stops_on_cancel() {
    let mut moto = MotoServer::start();
    moto.python(&format!(
        "client('athena').create_work_group(Name={WORKGROUP:?}, Configuration={{}})"
    ));
    let trips = [(3, 12.5), (6, 7.25), (9, 30.0)];
    let rows: Vec<Vec<String>> = trips
        .iter()
        .map(|(id, fare)| vec![format!("{id}"), format!("{fare}")])
        .collect();
    set_result(&moto, &["trip_id", "fare"], &rows);
    let gateway = TestGateway::start_with(|options| {
        options.usage.record_sql_text = true;
        add_athena(options, &moto);
    })
    .await;
    let acme = gateway.connect("acme").await;

    // The result pages, in the declared types.
    let rows = acme
        .query(
            "SELECT trip_id, fare FROM big.trips WHERE fare > 5 ORDER BY trip_id",
            &[],
        )
        .await
        .expect("acme reads big.trips");
    let got: Vec<(i64, f64)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    assert_eq!(got, trips);

    // What Athena was asked: the grant's filter and the tenant's, in acme's workgroup.
    let sent = executions(&moto);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (query, workgroup, database, state) = &sent[0];
    assert_eq!(workgroup, WORKGROUP);
    assert_eq!(database, "lake");
    assert_eq!(state, "SUCCEEDED");
    assert!(
        query.starts_with(r#"SELECT "trip_id", "fare" FROM "lake"."trips" WHERE"#),
        "{query}"
    );
    assert!(query.contains(r#""region" = 'EUROPE'"#), "{query}");
    assert!(query.contains(r#""fare" > 5"#), "{query}");

    // Metering: the rows Athena returned.
    let record = acme
        .query_one(
            "SELECT rows_scanned, bytes_scanned, datasets FROM tollgate.usage_records \
             WHERE strpos(sql_text, 'fare > 5') > 0 AND strpos(sql_text, 'tollgate.usage') = 0",
            &[],
        )
        .await
        .expect("the query's record");
    assert_eq!(record.get::<_, i64>(0), 3);
    // Bytes scanned: what Athena reported as DataScannedInBytes.
    assert_eq!(record.get::<_, i64>(1), moto::ATHENA_SCANNED_BYTES);

    // Paging: 2,500 rows come in three pages (the header row is on the first).
    let many: Vec<(i64, f64)> = (0..2500).map(|i| (i, i as f64 / 4.0)).collect();
    let rows: Vec<Vec<String>> = many
        .iter()
        .map(|(id, fare)| vec![format!("{id}"), format!("{fare}")])
        .collect();
    set_result(&moto, &["trip_id", "fare"], &rows);
    let paged: Vec<(i64, f64)> = acme
        .query(
            "SELECT trip_id, fare FROM big.trips WHERE 'paged' <> ''",
            &[],
        )
        .await
        .expect("a result of three pages")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(paged, many);
    let pages = moto.python(&format!(
        "athena = client('athena')\n\
         ids = athena.list_query_executions(WorkGroup={WORKGROUP:?})['QueryExecutionIds']\n\
         print(sum('NextToken' in athena.get_query_results(QueryExecutionId=id, MaxResults=1000) for id in ids))"
    ));
    assert_eq!(pages.trim(), "1", "one result has more than a page");
    assert_eq!(usage_of(&acme, "rows_scanned", "paged").await, 2500);

    // An aggregate runs on Athena as one query over the grant's rows; one row comes back.
    set_result(
        &moto,
        &["c0", "c1"],
        &[vec!["3".to_owned(), "30.0".to_owned()]],
    );
    let row = acme
        .query_one(
            "SELECT count(*), max(fare) FROM big.trips WHERE fare > 5 AND 'summed' <> ''",
            &[],
        )
        .await
        .expect("an aggregate on Athena");
    assert_eq!((row.get::<_, i64>(0), row.get::<_, f64>(1)), (3, 30.0));
    let sent = executions(&moto);
    assert_eq!(sent.len(), 3, "{sent:?}");
    let (query, workgroup, _, _) = &sent[2];
    assert_eq!(workgroup, WORKGROUP);
    assert!(
        query.contains("count(") && query.contains("max("),
        "the aggregate runs on Athena: {query}"
    );
    assert!(query.contains(r#""region" = 'EUROPE'"#), "{query}");
    assert!(query.contains(r#"> 5"#), "{query}");
    assert_eq!(usage_of(&acme, "rows_scanned", "summed").await, 1);

    // Cancel: the Athena query is stopped.
    hold_queries(&moto);
    let cancel = acme.cancel_token();
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        cancel.cancel_query(tokio_postgres::NoTls).await
    });
    let error = acme
        .query("SELECT count(*) FROM big.trips", &[])
        .await
        .expect_err("cancelled");
    assert_eq!(sqlstate(&error), "57014");
    canceller.await.expect("join").expect("cancel request");
    let started = Instant::now();
    loop {
        let sent = executions(&moto);
        if sent.iter().any(|(_, _, _, state)| state == "CANCELLED") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the Athena query was not stopped: {sent:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Athena unreachable: 58000 naming the dataset; other datasets answer.
    moto.kill();
    let error = acme
        .query("SELECT trip_id FROM big.trips", &[])
        .await
        .expect_err("Athena is down");
    assert_dataset_unavailable(&error, "big.trips", "cannot be reached", &["127.0.0.1"]);
    let regions: i64 = acme
        .query_one("SELECT count(*) FROM tpch.region", &[])
        .await
        .expect("local datasets still answer")
        .get(0);
    assert_eq!(regions, 5);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_fail_the_dataset_without_its_location() {
    let moto = MotoServer::start_refusing_credentials();
    let gateway = TestGateway::start_with(|options| add_athena(options, &moto)).await;
    let acme = gateway.connect("acme").await;
    let error = acme
        .query("SELECT trip_id FROM big.trips", &[])
        .await
        .expect_err("Athena refuses the keys");
    assert_dataset_unavailable(
        &error,
        "big.trips",
        "refused the gateway's credentials",
        &["127.0.0.1", "lake"],
    );
    gateway.stop().await;
}
