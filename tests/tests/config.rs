//! Invalid configurations fail at start-up with messages that say what is wrong: bad row
//! filters and column expressions, a watermark on a dataset of files.

use tollgate_catalog::GrantOptions;
use tollgate_gateway::server;
use tollgate_tests::demo_options;

async fn start_error(adjust: impl FnOnce(&mut tollgate_catalog::TollgateOptions)) -> String {
    let ledger = tempfile::tempdir().expect("create a ledger directory");
    let mut options = demo_options(ledger.path());
    adjust(&mut options);
    match server::start(&options).await {
        Ok(_) => panic!("the gateway started with an invalid configuration"),
        Err(error) => error.to_string(),
    }
}

fn globex_orders(options: &mut tollgate_catalog::TollgateOptions) -> &mut GrantOptions {
    options
        .grants
        .iter_mut()
        .find(|g| g.tenant == "globex" && g.dataset == "tpch.orders")
        .expect("the demo grants tpch.orders to globex")
}

#[tokio::test]
async fn a_bad_row_filter_names_the_grant_and_the_sql_error() {
    let message = start_error(|options| {
        globex_orders(options).row_filter = Some("o_orderdate >= ".to_owned())
    })
    .await;
    assert!(
        message.contains("grant of `tpch.orders` to tenant `globex`"),
        "{message}"
    );
    assert!(
        message.contains("syntax error") || message.contains("Expected"),
        "{message}"
    );
}

#[tokio::test]
async fn a_row_filter_cannot_smuggle_clauses() {
    let message = start_error(|options| {
        globex_orders(options).row_filter =
            Some("true UNION SELECT * FROM tpch.customer".to_owned())
    })
    .await;
    assert!(
        message.contains("must be a single SQL expression"),
        "{message}"
    );
}

#[tokio::test]
async fn a_column_expression_over_an_unknown_column_is_refused() {
    let message = start_error(|options| {
        globex_orders(options).columns = Some(vec![tollgate_catalog::GrantColumnOptions::Expr {
            name: "total_eur".to_owned(),
            expr: "o_total * 0.9".to_owned(),
        }]);
    })
    .await;
    assert!(
        message.contains("grant of `tpch.orders` to tenant `globex`"),
        "{message}"
    );
    assert!(message.contains("o_total"), "{message}");
}

#[tokio::test]
async fn a_watermark_is_only_for_replica_tables() {
    let message = start_error(|options| {
        let orders = options
            .datasets
            .iter_mut()
            .find(|dataset| dataset.id == "tpch.orders")
            .expect("the demo serves tpch.orders");
        orders.watermark = Some("o_orderkey".to_owned());
    })
    .await;
    assert!(message.contains("watermark"), "{message}");
    assert!(
        message.contains("only a table of a `postgres` source has one"),
        "{message}"
    );
}
