//! Datasets in tables of PostgreSQL replicas (the machine's server, one database per
//! replica): filters, projections and limits run on the replica, a tenant's grant can route
//! its queries to its own replicas, and when one replica goes down the next one serves;
//! when all are down the query fails with an error naming the dataset. Aggregates, and
//! joins of datasets on one replica, run on the replica. Replicas can be reached over verified TLS, with SCRAM.

use std::time::Duration;

use tokio_postgres::Client;
use tollgate_catalog::{
    DatasetOptions, GrantOptions, HumanDuration, ReplicaTlsOptions, SourceOptions, TollgateOptions,
};
use tollgate_tests::machine_pg::{ADMIN, connect, conninfo, drop_database, recreate_database};
use tollgate_tests::pg_cluster::{CLUSTER_PASSWORD, PrivateCluster};
use tollgate_tests::{
    TestCertificate, TestGateway, assert_dataset_unavailable, message, sqlstate, usage_of,
};

const ACCOUNTS: i64 = 10_000;
/// Order `i` belongs to account `i / ORDERS_PER_ACCOUNT`; odd orders are paid.
const ORDERS_PER_ACCOUNT: i64 = 3;

/// Three replica databases (shared, dedicated a and b) of an `accounts` table, each
/// saying which replica it is in `served_by`, and its accounts' `orders`; dropped when the
/// test ends.
struct Replicas {
    admin: Client,
    names: [String; 3],
}

impl Replicas {
    async fn create() -> Self {
        let admin = connect(ADMIN).await;
        let suffix = std::process::id();
        let names = ["shared", "dedicated_a", "dedicated_b"]
            .map(|name| format!("tollgate_replica_{name}_{suffix}"));
        for (name, served_by) in names.iter().zip(["shared", "dedicated-a", "dedicated-b"]) {
            recreate_database(&admin, name).await;
            let replica = connect(&conninfo(name)).await;
            replica
                .batch_execute(&format!(
                    "CREATE TABLE accounts (
                         account_id bigint PRIMARY KEY,
                         region text NOT NULL,
                         balance numeric(12,2),
                         opened date,
                         served_by text NOT NULL);
                     INSERT INTO accounts
                     SELECT i, (ARRAY['EUROPE','AMERICA','ASIA'])[i % 3 + 1], i * 1.25,
                            DATE '2020-01-01' + (i % 365), '{served_by}'
                     FROM generate_series(0, {last}) AS i;
                     CREATE TABLE orders (
                         order_id bigint PRIMARY KEY,
                         account_id bigint NOT NULL REFERENCES accounts,
                         amount numeric(10,2) NOT NULL,
                         status text NOT NULL);
                     INSERT INTO orders
                     SELECT i, i / {ORDERS_PER_ACCOUNT}, i % 100 + 0.5,
                            (ARRAY['open','paid'])[i % 2 + 1]
                     FROM generate_series(0, {last_order}) AS i;
                     ANALYZE accounts, orders;",
                    last = ACCOUNTS - 1,
                    last_order = ACCOUNTS * ORDERS_PER_ACCOUNT - 1
                ))
                .await
                .expect("fill the replica");
        }
        Self { admin, names }
    }

    /// Takes replica `index` down: no new connections, existing ones terminated.
    async fn take_down(&self, index: usize) {
        let name = &self.names[index];
        for statement in [
            format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"),
            format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
            ),
        ] {
            self.admin
                .batch_execute(&statement)
                .await
                .expect("take the replica down");
        }
    }

    async fn drop_all(self) {
        for name in &self.names {
            drop_database(&self.admin, name).await;
        }
    }

    /// Sources `crm_shared` and `crm_acme` (dedicated a, then b), datasets `crm.accounts`
    /// and `crm.orders`, and grants: globex reads the shared replica, acme its region's
    /// accounts and the paid orders on its own.
    fn configure(&self, options: &mut TollgateOptions) {
        let source = |replicas: Vec<String>| SourceOptions::Postgres {
            replicas,
            max_connections: 4,
            connect_timeout: HumanDuration(Duration::from_secs(2)),
            read_timeout: HumanDuration(Duration::from_secs(30)),
            tls: None,
        };
        options.sources.insert(
            "crm_shared".to_owned(),
            source(vec![conninfo(&self.names[0])]),
        );
        options.sources.insert(
            "crm_acme".to_owned(),
            source(vec![conninfo(&self.names[1]), conninfo(&self.names[2])]),
        );
        for table in ["accounts", "orders"] {
            let dataset: DatasetOptions = toml::from_str(&format!(
                "id = \"crm.{table}\"\nsource = \"crm_shared\"\npath = \"public.{table}\""
            ))
            .expect("dataset options");
            options.datasets.push(dataset);
        }
        for grant in [
            r#"
            tenant = "globex"
            dataset = "crm.accounts"
            "#,
            r#"
            tenant = "acme"
            dataset = "crm.accounts"
            columns = ["account_id", "balance", "served_by"]
            row_filter = "region = $region"
            source = "crm_acme"
            "#,
            r#"
            tenant = "globex"
            dataset = "crm.orders"
            "#,
            r#"
            tenant = "acme"
            dataset = "crm.orders"
            columns = ["order_id", "account_id", "amount"]
            row_filter = "status = 'paid'"
            source = "crm_acme"
            "#,
        ] {
            let grant: GrantOptions = toml::from_str(grant).expect("grant options");
            options.grants.push(grant);
        }
    }
}

/// `count(*)` and the replica that served the caller's accounts.
async fn served(client: &Client) -> Result<(i64, String), tokio_postgres::Error> {
    let row = client
        .query_one("SELECT count(*), min(served_by) FROM crm.accounts", &[])
        .await?;
    Ok((row.get(0), row.get(1)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_tables_push_down_route_and_fail_over() {
    let replicas = Replicas::create().await;
    let gateway = TestGateway::start_with(|options| {
        options.usage.record_sql_text = true;
        replicas.configure(options);
    })
    .await;
    let globex = gateway.connect("globex").await;
    let acme = gateway.connect("acme").await;

    // Routing: globex on the shared replica, acme on its dedicated one, its rows only.
    assert_eq!(
        served(&globex).await.expect("globex"),
        (ACCOUNTS, "shared".to_owned())
    );
    let europe = (0..ACCOUNTS).filter(|i| i % 3 == 0).count() as i64;
    assert_eq!(
        served(&acme).await.expect("acme"),
        (europe, "dedicated-a".to_owned())
    );
    let error = acme
        .query("SELECT region FROM crm.accounts", &[])
        .await
        .expect_err("region is not granted to acme");
    assert_eq!(sqlstate(&error), "42703");

    // Types: bigint, numeric(12,2), date, text.
    let row = globex
        .query_one(
            "SELECT account_id, CAST(balance AS text), CAST(opened AS text), region \
             FROM crm.accounts WHERE account_id = 7",
            &[],
        )
        .await
        .expect("one account");
    assert_eq!(row.get::<_, i64>(0), 7);
    assert_eq!(row.get::<_, String>(1), "8.75");
    assert_eq!(row.get::<_, String>(2), "2020-01-08");
    assert_eq!(row.get::<_, String>(3), "AMERICA");

    // Pushdown: the replica sends only the rows that match.
    let rows = globex
        .query(
            "SELECT account_id, balance FROM crm.accounts \
             WHERE account_id < 100 AND region = 'ASIA' AND 'pushed' <> ''",
            &[],
        )
        .await
        .expect("a filtered read");
    let matching = (0..100).filter(|i| i % 3 == 2).count();
    assert_eq!(rows.len(), matching);
    assert_eq!(
        usage_of(&globex, "rows_scanned", "pushed").await,
        matching as i64
    );
    // Bytes scanned: the values received, an 8-byte id and a short decimal per row.
    let bytes = usage_of(&globex, "bytes_scanned", "pushed").await;
    let rows = matching as i64;
    assert!(
        (rows * (8 + 4)..=rows * (8 + 16)).contains(&bytes),
        "{bytes} bytes for {rows} rows"
    );
    let limited = globex
        .query(
            "SELECT account_id FROM crm.accounts LIMIT 5 /* limited */",
            &[],
        )
        .await
        .expect("a limited read");
    assert_eq!(limited.len(), 5);

    // Aggregates run on the replica: only the groups are transferred.
    let groups = globex
        .query(
            "SELECT region, count(*), CAST(sum(balance) AS text), CAST(max(opened) AS text) \
             FROM crm.accounts \
             WHERE account_id < 3000 AND 'grouped' <> '' GROUP BY region ORDER BY region",
            &[],
        )
        .await
        .expect("an aggregate");
    let summary: Vec<(String, i64, String, String)> = groups
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)))
        .collect();
    let expected: Vec<(String, i64, String, String)> = [("AMERICA", 1), ("ASIA", 2), ("EUROPE", 0)]
        .iter()
        .map(|(region, rest)| {
            let ids: Vec<i64> = (0..3000).filter(|i| i % 3 == *rest).collect();
            let cents: i64 = ids.iter().map(|i| i * 125).sum();
            (
                (*region).to_owned(),
                ids.len() as i64,
                format!("{}.{:02}", cents / 100, cents % 100),
                "2020-12-30".to_owned(),
            )
        })
        .collect();
    assert_eq!(summary, expected);
    assert_eq!(usage_of(&globex, "rows_scanned", "grouped").await, 3);
    // acme's count runs remotely too, within its grant's row filter.
    let row = acme
        .query_one(
            "SELECT count(*) FROM crm.accounts WHERE 'counted' <> ''",
            &[],
        )
        .await
        .expect("acme's count");
    assert_eq!(row.get::<_, i64>(0), europe);
    assert_eq!(usage_of(&acme, "rows_scanned", "counted").await, 1);
    // A tenant filter that could fail on hidden rows stays in the gateway, after the grant.
    let row = acme
        .query_one(
            "SELECT count(*) FROM crm.accounts WHERE account_id * 2 < 300 AND 'local' <> ''",
            &[],
        )
        .await
        .expect("a local filter");
    assert_eq!(row.get::<_, i64>(0), 50);
    assert_eq!(usage_of(&acme, "rows_scanned", "local").await, europe);

    // Failover: dedicated a goes down, b serves acme.
    replicas.take_down(1).await;
    assert_eq!(
        served(&acme).await.expect("acme after a failover"),
        (europe, "dedicated-b".to_owned())
    );

    // Both dedicated replicas down: a clear error for acme; globex is unaffected.
    replicas.take_down(2).await;
    let error = served(&acme).await.expect_err("every replica is down");
    assert_dataset_unavailable(
        &error,
        "crm.accounts",
        "none of its replicas",
        &["tollgate_replica", "5432"],
    );
    assert_eq!(
        served(&globex).await.expect("globex still served").0,
        ACCOUNTS
    );

    gateway.stop().await;
    replicas.drop_all().await;
}

/// Sums of `amount` (in cents) and counts of the orders `i` for which `keep(i)` holds.
fn orders_where(keep: impl Fn(i64) -> bool) -> (i64, i64) {
    (0..ACCOUNTS * ORDERS_PER_ACCOUNT)
        .filter(|&i| keep(i))
        .fold((0, 0), |(count, cents), i| {
            (count + 1, cents + (i % 100) * 100 + 50)
        })
}

fn decimal(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replica_tables_show_the_keys_their_replica_declares() {
    let replicas = Replicas::create().await;
    let gateway = TestGateway::start_with(|options| replicas.configure(options)).await;
    let globex = gateway.connect("globex").await;
    let constraints: Vec<(String, String, String)> = globex
        .query(
            "SELECT c.constraint_name, c.constraint_type, \
                    string_agg(k.column_name, ',' ORDER BY k.ordinal_position) \
             FROM information_schema.table_constraints c \
             JOIN information_schema.key_column_usage k ON k.constraint_name = c.constraint_name \
                  AND k.constraint_schema = c.constraint_schema \
             WHERE c.table_schema = 'crm' \
             GROUP BY c.constraint_name, c.constraint_type ORDER BY 1",
            &[],
        )
        .await
        .expect("the keys")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let expected = [
        ("accounts_pkey", "PRIMARY KEY", "account_id"),
        ("orders_account_id_fkey", "FOREIGN KEY", "account_id"),
        ("orders_pkey", "PRIMARY KEY", "order_id"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(constraints, expected);
    let definition: String = globex
        .query_one(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'orders_account_id_fkey'",
            &[],
        )
        .await
        .expect("the definition")
        .get(0);
    assert_eq!(
        definition,
        "FOREIGN KEY (account_id) REFERENCES crm.accounts(account_id)"
    );
    gateway.stop().await;
    replicas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_of_datasets_on_one_replica_run_there() {
    let replicas = Replicas::create().await;
    let gateway = TestGateway::start_with(|options| {
        options.usage.record_sql_text = true;
        replicas.configure(options);
    })
    .await;
    let globex = gateway.connect("globex").await;
    let acme = gateway.connect("acme").await;

    // A join and aggregate over two datasets: one query on the replica, 3 groups back.
    let groups: Vec<(String, i64, String)> = globex
        .query(
            "SELECT a.region, count(*), CAST(sum(o.amount) AS text) \
             FROM crm.accounts a JOIN crm.orders o ON a.account_id = o.account_id \
             WHERE a.account_id < 300 AND 'joined' <> '' GROUP BY a.region ORDER BY a.region",
            &[],
        )
        .await
        .expect("a join and aggregate")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2)))
        .collect();
    let expected: Vec<(String, i64, String)> = [("AMERICA", 1), ("ASIA", 2), ("EUROPE", 0)]
        .iter()
        .map(|(region, rest)| {
            let (count, cents) = orders_where(|i| {
                let account = i / ORDERS_PER_ACCOUNT;
                account < 300 && account % 3 == *rest
            });
            ((*region).to_owned(), count, decimal(cents))
        })
        .collect();
    assert_eq!(groups, expected);
    assert_eq!(usage_of(&globex, "rows_scanned", "joined").await, 3);
    assert_eq!(
        usage_of(
            &globex,
            "CAST(array_length(datasets, 1) AS bigint)",
            "joined"
        )
        .await,
        2,
        "the record names both datasets"
    );

    // A join without aggregate, its tables unaliased: only the matching pairs cross.
    let pairs = globex
        .query(
            "SELECT crm.accounts.account_id, crm.orders.order_id \
             FROM crm.accounts JOIN crm.orders ON crm.accounts.account_id = crm.orders.account_id \
             WHERE crm.orders.order_id < 30 AND 'paired' <> ''",
            &[],
        )
        .await
        .expect("a join");
    assert_eq!(pairs.len(), 30);
    for row in &pairs {
        assert_eq!(
            row.get::<_, i64>(0),
            row.get::<_, i64>(1) / ORDERS_PER_ACCOUNT
        );
    }
    assert_eq!(usage_of(&globex, "rows_scanned", "paired").await, 30);

    // acme's join runs on its dedicated replica, within both grants' row filters.
    let row = acme
        .query_one(
            "SELECT count(*), CAST(sum(o.amount) AS text), min(a.served_by) \
             FROM crm.accounts a JOIN crm.orders o ON a.account_id = o.account_id \
             WHERE 'acme joined' <> ''",
            &[],
        )
        .await
        .expect("acme's join");
    let (count, cents) = orders_where(|i| (i / ORDERS_PER_ACCOUNT) % 3 == 0 && i % 2 == 1);
    assert_eq!(
        (
            row.get::<_, i64>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2)
        ),
        (count, decimal(cents), "dedicated-a".to_owned())
    );
    assert_eq!(usage_of(&acme, "rows_scanned", "acme joined").await, 1);

    // A tenant filter that could fail on hidden rows keeps the join in the gateway, after
    // the grants; the answer is the same.
    let row = acme
        .query_one(
            "SELECT count(*) FROM crm.accounts a JOIN crm.orders o ON a.account_id = o.account_id \
             WHERE o.amount * 2 > 100 AND 'acme local' <> ''",
            &[],
        )
        .await
        .expect("acme's local join");
    let (count, _) = orders_where(|i| {
        (i / ORDERS_PER_ACCOUNT) % 3 == 0 && i % 2 == 1 && (i % 100) * 2 + 1 > 100
    });
    assert_eq!(row.get::<_, i64>(0), count);
    assert!(usage_of(&acme, "rows_scanned", "acme local").await > count);

    gateway.stop().await;
    replicas.drop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_are_reached_over_verified_tls_with_scram() {
    let certificate = TestCertificate::generate();
    let cluster = PrivateCluster::start(&certificate.cert_pem(), &certificate.key_pem())
        .expect("a private PostgreSQL cluster with TLS and SCRAM");
    let setup = connect(&cluster.conninfo(false)).await;
    setup
        .batch_execute(
            "CREATE TABLE items (item_id bigint, name text);
             INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three');",
        )
        .await
        .expect("fill the replica");

    let replica = format!(
        "host=localhost port={} user=postgres password={CLUSTER_PASSWORD} dbname=postgres",
        cluster.port
    );
    let gateway = TestGateway::start_with(|options| {
        for (name, root_certificate) in [
            ("trusted", Some(certificate.cert_path().to_owned())),
            ("untrusted", None),
        ] {
            options.sources.insert(
                name.to_owned(),
                SourceOptions::Postgres {
                    replicas: vec![replica.clone()],
                    max_connections: 2,
                    connect_timeout: HumanDuration(Duration::from_secs(2)),
                    read_timeout: HumanDuration(Duration::from_secs(30)),
                    tls: Some(ReplicaTlsOptions { root_certificate }),
                },
            );
            let dataset: DatasetOptions = toml::from_str(&format!(
                "id = \"secure.{name}\"\nsource = \"{name}\"\npath = \"public.items\""
            ))
            .expect("dataset options");
            options.datasets.push(dataset);
            let grant: GrantOptions =
                toml::from_str(&format!("tenant = \"globex\"\ndataset = \"secure.{name}\""))
                    .expect("grant options");
            options.grants.push(grant);
        }
    })
    .await;
    let globex = gateway.connect("globex").await;
    let names: Vec<String> = globex
        .query("SELECT name FROM secure.trusted ORDER BY item_id", &[])
        .await
        .expect("read over TLS")
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(names, ["one", "two", "three"]);
    let encrypted: i64 = setup
        .query_one(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) \
             WHERE ssl AND application_name = 'tollgate'",
            &[],
        )
        .await
        .expect("pg_stat_ssl")
        .get(0);
    assert!(encrypted >= 1, "the gateway's connection uses TLS");

    // A replica whose certificate is not trusted is never read: the dataset is not served.
    let error = globex
        .query("SELECT name FROM secure.untrusted", &[])
        .await
        .expect_err("an untrusted replica");
    assert_eq!(sqlstate(&error), "42P01", "{}", message(&error));
    gateway.stop().await;
}
