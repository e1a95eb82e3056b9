//! Cross-tenant isolation: each tenant sees exactly its grants, through every path.

use tollgate_tests::{TestGateway, sqlstate};

#[tokio::test]
async fn a_dataset_not_granted_does_not_exist() {
    let gateway = TestGateway::start().await;
    let globex = gateway.connect("globex").await;
    for sql in [
        "SELECT * FROM tpch.customer",
        "SELECT count(*) FROM tpch.nation",
        "SELECT * FROM tpch.no_such_table",
        "SELECT * FROM source.tpch.customer",
        "SELECT * FROM tollgate.tpch.customer",
    ] {
        let error = globex.simple_query(sql).await.expect_err(sql);
        assert_eq!(sqlstate(&error), "42P01", "{sql}: {error:?}");
    }
    // A granted name and an ungranted one fail alike when misspelled: nothing tells them apart.
    let missing = globex
        .simple_query("SELECT * FROM tpch.customer")
        .await
        .expect_err("not granted");
    let unknown = globex
        .simple_query("SELECT * FROM tpch.customerz")
        .await
        .expect_err("unknown");
    assert_eq!(
        missing
            .as_db_error()
            .map(|e| e.message().replace("customer", "X")),
        unknown
            .as_db_error()
            .map(|e| e.message().replace("customerz", "X"))
    );
}

#[tokio::test]
async fn columns_and_rows_are_shaped_by_the_grant() {
    let gateway = TestGateway::start().await;
    let globex = gateway.connect("globex").await;
    let error = globex
        .query("SELECT o_comment FROM tpch.orders", &[])
        .await
        .expect_err("column not granted");
    assert_eq!(sqlstate(&error), "42703");
    let row = globex
        .query_one(
            "SELECT count(*), min(o_orderdate)::text FROM tpch.orders",
            &[],
        )
        .await
        .expect("granted");
    let count: i64 = row.get(0);
    let first: String = row.get(1);
    assert!(count > 0);
    assert!(
        first.as_str() >= "1995-01-01",
        "rows before 1995 are hidden, got {first}"
    );

    let acme = gateway.connect("acme").await;
    let all: i64 = acme
        .query_one("SELECT count(*) FROM tpch.orders", &[])
        .await
        .expect("acme")
        .get(0);
    assert!(
        all > count,
        "acme sees every order ({all}), globex only part ({count})"
    );
    let regions = acme
        .query(
            "SELECT DISTINCT r_name FROM tpch.customer JOIN tpch.nation ON c_nationkey = n_nationkey \
             JOIN tpch.region ON n_regionkey = r_regionkey",
            &[],
        )
        .await
        .expect("acme joins its views");
    let regions: Vec<String> = regions.iter().map(|r| r.get(0)).collect();
    assert_eq!(regions, vec!["EUROPE".to_owned()]);
}

#[tokio::test]
async fn catalogs_list_only_the_tenants_views() {
    let gateway = TestGateway::start().await;
    let globex = gateway.connect("globex").await;
    let tables = globex
        .query(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables ORDER BY 1",
            &[],
        )
        .await
        .expect("information_schema");
    let tables: Vec<String> = tables.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        tables,
        vec!["tpch.lineitem".to_owned(), "tpch.orders".to_owned()]
    );

    let columns = globex
        .query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders'",
            &[],
        )
        .await
        .expect("columns");
    assert!(columns.iter().all(|r| r.get::<_, String>(0) != "o_comment"));

    let relations = globex
        .query(
            "SELECT c.relname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'tpch' ORDER BY 1",
            &[],
        )
        .await
        .expect("pg_class");
    let relations: Vec<String> = relations.iter().map(|r| r.get(0)).collect();
    // The two datasets and their primary keys' indexes.
    assert_eq!(
        relations,
        ["lineitem", "lineitem_pkey", "orders", "orders_pkey"]
    );
}

#[tokio::test]
async fn explain_reveals_neither_paths_nor_filters() {
    let gateway = TestGateway::start().await;
    let globex = gateway.connect("globex").await;
    for sql in [
        "EXPLAIN SELECT * FROM tpch.orders WHERE o_orderkey = 1",
        "EXPLAIN VERBOSE SELECT count(*) FROM tpch.orders",
    ] {
        let rows = globex.simple_query(sql).await.expect(sql);
        let text: String = rows
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .filter_map(|i| row.get(i))
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains("tpch.orders"), "{text}");
        assert!(
            !text.contains(".parquet") && !text.contains("tollgate-test-data"),
            "source path leaked: {text}"
        );
        assert!(!text.contains("1995"), "grant filter leaked: {text}");
    }
}

#[tokio::test]
async fn tenant_predicates_never_run_on_hidden_rows() {
    let gateway = TestGateway::start().await;
    let globex = gateway.connect("globex").await;
    // Divides by zero on exactly the rows the grant hides: if the predicate ran below the
    // grant's filter, the error would reveal that such rows exist.
    let sql = "SELECT count(*) FROM tpch.orders \
               WHERE 1 / (CASE WHEN o_orderdate < DATE '1995-01-01' THEN 0 ELSE 1 END) = 1";
    let row = globex
        .query_one(sql, &[])
        .await
        .expect("hidden rows are never evaluated");
    let visible: i64 = row.get(0);
    let all: i64 = globex
        .query_one("SELECT count(*) FROM tpch.orders", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(visible, all);
}

#[tokio::test]
async fn engine_settings_stay_private() {
    let gateway = TestGateway::start().await;
    let acme = gateway.connect("acme").await;
    let all = acme.simple_query("SHOW ALL").await.expect("SHOW ALL");
    let leaked = all.iter().any(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(row) => row
            .get(0)
            .is_some_and(|name| name.starts_with("datafusion")),
        _ => false,
    });
    assert!(!leaked, "SHOW ALL lists engine settings");
    for sql in [
        "SET datafusion.execution.target_partitions = 1",
        "SHOW datafusion.execution.target_partitions",
        "SELECT * FROM information_schema.df_settings",
    ] {
        let error = acme.simple_query(sql).await.expect_err(sql);
        assert!(
            ["42501", "42704", "42P01"].contains(&sqlstate(&error).as_str()),
            "{sql}: {error:?}"
        );
    }
}

#[tokio::test]
async fn column_expressions_rename_and_convert() {
    let gateway = TestGateway::start_with(|options| {
        let grant = options
            .grants
            .iter_mut()
            .find(|g| g.tenant == "globex" && g.dataset == "tpch.orders")
            .expect("globex's orders grant");
        grant.columns = Some(vec![
            tollgate_catalog::GrantColumnOptions::Name("o_orderkey".to_owned()),
            tollgate_catalog::GrantColumnOptions::Expr {
                name: "total_cents".to_owned(),
                expr: "CAST(o_totalprice * 100 AS BIGINT)".to_owned(),
            },
        ]);
    })
    .await;
    let globex = gateway.connect("globex").await;
    let row = globex
        .query_one(
            "SELECT o_orderkey, total_cents FROM tpch.orders ORDER BY o_orderkey LIMIT 1",
            &[],
        )
        .await
        .expect("the renamed, converted column");
    assert!(row.get::<_, i64>(1) > 0);
    let error = globex
        .query("SELECT o_totalprice FROM tpch.orders", &[])
        .await
        .expect_err("source column hidden");
    assert_eq!(sqlstate(&error), "42703");
    let acme = gateway.connect("acme").await;
    let cents: i64 = acme
        .query_one(
            "SELECT CAST(o_totalprice * 100 AS BIGINT) FROM tpch.orders WHERE o_orderkey = $1",
            &[&row.get::<_, i64>(0)],
        )
        .await
        .expect("acme sees the source column")
        .get(0);
    assert_eq!(cents, row.get::<_, i64>(1));
}

#[tokio::test]
async fn a_session_runs_as_its_principal_and_lists_only_its_tenants_roles() {
    let gateway = TestGateway::start().await;
    for user in ["acme", "globex"] {
        let client = gateway.connect(user).await;
        let row = client
            .query_one("SELECT current_user, session_user", &[])
            .await
            .expect("current_user");
        assert_eq!(row.get::<_, String>(0), user);
        assert_eq!(row.get::<_, String>(1), user);
        let roles: Vec<String> = client
            .query("SELECT rolname FROM pg_catalog.pg_roles", &[])
            .await
            .expect("pg_roles")
            .iter()
            .map(|row| row.get(0))
            .collect();
        assert_eq!(roles, vec![user.to_owned()]);
    }
}
