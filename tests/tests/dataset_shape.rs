//! The shape a provider declares (primary keys, foreign keys, views, NOT NULL), as a tenant's
//! catalogs report it over pgwire: `pg_class`, `pg_constraint`, `pg_index`, the
//! `information_schema` key relations, and only the keys whose both ends the tenant sees.

use tokio_postgres::Client;
use tollgate_catalog::DatasetKind;
use tollgate_tests::{TestGateway, sqlstate};

/// The rows of `sql`, each column as text.
async fn rows(client: &Client, sql: &str) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .expect(sql)
        .into_iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_owned))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

fn texts(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some((*v).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_and_views_are_in_the_catalogs_as_postgresql_keeps_them() {
    let gateway = TestGateway::start_with(|options| {
        for dataset in &mut options.datasets {
            if dataset.id == "tpch.nation" {
                dataset.kind = DatasetKind::View;
            }
        }
    })
    .await;
    let acme = gateway.connect("acme").await;

    let kinds = rows(
        &acme,
        "SELECT c.relname, c.relkind, c.relhasindex FROM pg_class c JOIN pg_namespace n \
         ON n.oid = c.relnamespace WHERE n.nspname = 'tpch' \
         AND c.relname IN ('nation', 'orders', 'orders_pkey') ORDER BY 1",
    )
    .await;
    assert_eq!(
        kinds,
        [
            texts(&["nation", "v", "t"]),
            texts(&["orders", "r", "t"]),
            texts(&["orders_pkey", "i", "f"]),
        ]
    );
    let views = rows(
        &acme,
        "SELECT table_name, table_type FROM information_schema.tables \
         WHERE table_name IN ('nation', 'region') ORDER BY 1",
    )
    .await;
    assert_eq!(
        views,
        [texts(&["nation", "VIEW"]), texts(&["region", "BASE TABLE"])]
    );
    let listed = rows(
        &acme,
        "SELECT table_schema, table_name FROM information_schema.views",
    )
    .await;
    assert_eq!(listed, [texts(&["tpch", "nation"])]);

    let constraints = rows(
        &acme,
        "SELECT constraint_name, constraint_type FROM information_schema.table_constraints \
         WHERE table_schema = 'tpch' AND table_name = 'lineitem' ORDER BY 1",
    )
    .await;
    assert_eq!(
        constraints,
        [
            texts(&["lineitem_l_orderkey_fkey", "FOREIGN KEY"]),
            texts(&["lineitem_l_partkey_l_suppkey_fkey", "FOREIGN KEY"]),
            texts(&["lineitem_pkey", "PRIMARY KEY"]),
        ]
    );
    let columns = rows(
        &acme,
        "SELECT column_name, ordinal_position, position_in_unique_constraint \
         FROM information_schema.key_column_usage \
         WHERE constraint_name = 'lineitem_l_partkey_l_suppkey_fkey' ORDER BY 2",
    )
    .await;
    assert_eq!(
        columns,
        [
            texts(&["l_partkey", "1", "1"]),
            texts(&["l_suppkey", "2", "2"])
        ]
    );
    let referential = rows(
        &acme,
        "SELECT unique_constraint_schema, unique_constraint_name, update_rule, delete_rule \
         FROM information_schema.referential_constraints \
         WHERE constraint_name = 'lineitem_l_partkey_l_suppkey_fkey'",
    )
    .await;
    assert_eq!(
        referential,
        [texts(&["tpch", "partsupp_pkey", "NO ACTION", "NO ACTION"])]
    );
    let definitions = rows(
        &acme,
        "SELECT conname, contype, pg_get_constraintdef(oid, true), \
         pg_get_indexdef(conindid, 0, true), pg_get_indexdef(conindid, 2, true) \
         FROM pg_constraint WHERE conrelid = 'tpch.partsupp'::regclass ORDER BY 1",
    )
    .await;
    assert_eq!(
        definitions,
        [
            texts(&[
                "partsupp_pkey",
                "p",
                "PRIMARY KEY (ps_partkey, ps_suppkey)",
                "CREATE UNIQUE INDEX partsupp_pkey ON tpch.partsupp USING btree (ps_partkey, ps_suppkey)",
                "ps_suppkey",
            ]),
            texts(&[
                "partsupp_ps_partkey_fkey",
                "f",
                "FOREIGN KEY (ps_partkey) REFERENCES tpch.part(p_partkey)",
                "CREATE UNIQUE INDEX part_pkey ON tpch.part USING btree (p_partkey)",
                "",
            ]),
            texts(&[
                "partsupp_ps_suppkey_fkey",
                "f",
                "FOREIGN KEY (ps_suppkey) REFERENCES tpch.supplier(s_suppkey)",
                "CREATE UNIQUE INDEX supplier_pkey ON tpch.supplier USING btree (s_suppkey)",
                "",
            ]),
        ]
    );

    // globex sees orders and lineitem: their primary keys and the key between them, not
    // orders' key to customer, nor any key of a dataset it is not granted.
    let globex = gateway.connect("globex").await;
    let seen = rows(
        &globex,
        "SELECT conname FROM pg_constraint WHERE connamespace = \
         (SELECT oid FROM pg_namespace WHERE nspname = 'tpch') ORDER BY 1",
    )
    .await;
    assert_eq!(
        seen,
        [
            texts(&["lineitem_l_orderkey_fkey"]),
            texts(&["lineitem_pkey"]),
            texts(&["orders_pkey"]),
        ]
    );
    let usage = rows(
        &globex,
        "SELECT count(*) FROM information_schema.constraint_column_usage \
         WHERE table_name IN ('customer', 'partsupp')",
    )
    .await;
    assert_eq!(usage, [texts(&["0"])]);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_naming_a_column_the_files_lack_leaves_the_dataset_unserved() {
    let gateway = TestGateway::start_with(|options| {
        for dataset in &mut options.datasets {
            if dataset.id == "tpch.part" {
                dataset.primary_key = vec!["p_id".to_owned()];
            }
        }
    })
    .await;
    let acme = gateway.connect("acme").await;
    // Not served (the log names the column), so to the tenant it does not exist.
    let error = acme
        .simple_query("SELECT count(*) FROM tpch.part")
        .await
        .expect_err("the dataset is not served");
    assert_eq!(sqlstate(&error), "42P01", "{error}");
    let served = rows(&acme, "SELECT count(*) FROM tpch.nation").await;
    assert_eq!(served, [texts(&["25"])]);
    // partsupp's key to part is not shown; its key to supplier is.
    let keys = rows(
        &acme,
        "SELECT constraint_name FROM information_schema.referential_constraints \
         WHERE constraint_name LIKE 'partsupp%' ORDER BY 1",
    )
    .await;
    assert_eq!(keys, [texts(&["partsupp_ps_suppkey_fkey"])]);
    gateway.stop().await;
}
