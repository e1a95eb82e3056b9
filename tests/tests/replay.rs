//! Replays of the SQL that BI tools which cannot run here send when they connect and browse:
//! DBeaver, Metabase, Tableau, Power BI and Apache Superset. `tests/replay/<tool>.sql` keeps
//! each tool's statements in the order it sends them, taken from the tool's (or its
//! driver's) own source; each statement's comment line says where from.
//!
//! Every statement runs as each demo tenant through the simple protocol (as psycopg2 and
//! psqlODBC send it) and, when it is one query, through the extended protocol too (as
//! pgJDBC and Npgsql send it, binary results). A statement passes when it succeeds and its
//! results are well formed: every row has the described columns, and every binary value
//! decodes as the type its column was described with. As globex, no value anywhere names an
//! object only acme may see, and a statement marked `-- expect: a, b` returns the values
//! `a` and `b` among its cells.
//!
//! Fixture format: statements separated by lines holding only `;;`; the comment lines that
//! begin a statement describe it; `${oid:tpch}` and `${oid:tpch.orders}` stand for the oids
//! the tenant's catalog gives that schema and table (a tool reads them first).

use std::collections::BTreeSet;
use std::error::Error;

use postgres_protocol::types as wire;
use tokio_postgres::types::{FromSql, Kind, Type};
use tokio_postgres::{Client, SimpleQueryMessage};
use tollgate_tests::TestGateway;

/// Names only acme may see (its other TPC-H tables, their columns, `o_comment`).
const ACME_ONLY: &[&str] = &[
    "customer",
    "nation",
    "part",
    "partsupp",
    "region",
    "supplier",
    "c_custkey",
    "n_nationkey",
    "p_partkey",
    "ps_partkey",
    "r_regionkey",
    "s_suppkey",
    "o_comment",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbeaver_connects_and_browses() {
    replay("dbeaver").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metabase_connects_and_syncs() {
    replay("metabase").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tableau_connects_and_browses() {
    replay("tableau").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_bi_connects_and_browses() {
    replay("powerbi").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superset_connects_and_reflects() {
    replay("superset").await;
}

/// One statement of a fixture.
struct Replayed {
    /// Its comment lines.
    about: String,
    sql: String,
    /// Values globex's result must hold.
    expected: Vec<String>,
}

impl Replayed {
    /// Whether the statement is one query, which a driver may also send as Parse/Bind/Execute.
    fn is_one_query(&self) -> bool {
        let body = self.sql.trim().trim_end_matches(';');
        let first = body
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        (first == "select" || first == "with") && !body.contains(';')
    }
}

fn fixture(tool: &str) -> Vec<Replayed> {
    let path = format!("{}/replay/{tool}.sql", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let mut statements = Vec::new();
    let mut chunk: Vec<&str> = Vec::new();
    for line in text.lines().chain(std::iter::once(";;")) {
        if line.trim() != ";;" {
            chunk.push(line);
            continue;
        }
        // The comment lines before the statement describe it (a file's header included).
        let body_start = chunk
            .iter()
            .position(|line| !line.trim_start().starts_with("--"))
            .unwrap_or(chunk.len());
        let (about, body) = chunk.split_at(body_start);
        let expected = about
            .iter()
            .filter_map(|line| line.trim_start().strip_prefix("-- expect:"))
            .flat_map(|values| values.split(','))
            .map(|value| value.trim().to_owned())
            .collect();
        let sql = body.join("\n").trim().to_owned();
        if !(sql.is_empty() && about.is_empty()) {
            statements.push(Replayed {
                about: about.last().map(|l| l.to_string()).unwrap_or_default(),
                sql,
                expected,
            });
        }
        chunk.clear();
    }
    statements
}

async fn replay(tool: &str) {
    let statements = fixture(tool);
    assert!(
        statements.len() > 5,
        "{tool}: only {} statements",
        statements.len()
    );
    let gateway = TestGateway::start().await;
    let mut failures = Vec::new();
    for tenant in ["globex", "acme"] {
        let client = gateway.connect(tenant).await;
        let oids = [
            (
                "${oid:tpch}",
                oid(
                    &client,
                    "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = 'tpch'",
                )
                .await,
            ),
            (
                "${oid:tpch.orders}",
                oid(
                    &client,
                    "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n \
                     ON c.relnamespace = n.oid WHERE n.nspname = 'tpch' AND c.relname = 'orders'",
                )
                .await,
            ),
        ];
        for statement in &statements {
            let sql = oids.iter().fold(statement.sql.clone(), |sql, (name, oid)| {
                sql.replace(name, oid)
            });
            if let Err(failure) = replay_one(&client, tenant, statement, &sql).await {
                failures.push(format!(
                    "as {tenant}: {}\n{sql}\n=> {failure}",
                    statement.about
                ));
            }
        }
    }
    gateway.stop().await;
    assert!(
        failures.is_empty(),
        "{tool}: {} of {} statements failed:\n\n{}",
        failures.len(),
        2 * statements.len(),
        failures.join("\n\n")
    );
}

/// Runs one statement both ways and checks what it returns.
async fn replay_one(
    client: &Client,
    tenant: &str,
    statement: &Replayed,
    sql: &str,
) -> Result<(), String> {
    let mut cells = simple_cells(client, sql)
        .await
        .map_err(|e| format!("simple: {}", describe(&e)))?;
    if statement.is_one_query() {
        cells.extend(
            extended_cells(client, sql)
                .await
                .map_err(|e| format!("extended: {e}"))?,
        );
    }
    if tenant == "globex" {
        if let Some(leaked) = cells.iter().find(|cell| ACME_ONLY.contains(&cell.as_str())) {
            return Err(format!("shows acme's `{leaked}`"));
        }
        if let Some(missing) = statement
            .expected
            .iter()
            .find(|value| !cells.contains(*value))
        {
            return Err(format!("lacks `{missing}`: {cells:?}"));
        }
    }
    Ok(())
}

async fn oid(client: &Client, sql: &str) -> String {
    let messages = client.simple_query(sql).await.expect("an oid");
    messages
        .iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no oid from {sql}"))
}

/// The text cells of the statement's results through the simple protocol, each row checked
/// against its description.
async fn simple_cells(
    client: &Client,
    sql: &str,
) -> Result<BTreeSet<String>, tokio_postgres::Error> {
    let mut cells = BTreeSet::new();
    for message in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(row) = message {
            if row.len() != row.columns().len() {
                panic!(
                    "a row of {} values for {} columns: {sql}",
                    row.len(),
                    row.columns().len()
                );
            }
            cells.extend((0..row.len()).filter_map(|i| row.get(i).map(str::to_owned)));
        }
    }
    Ok(cells)
}

/// The text values of the statement's binary results through the extended protocol, each
/// decoded as its described type.
async fn extended_cells(client: &Client, sql: &str) -> Result<BTreeSet<String>, String> {
    let statement = client.prepare(sql).await.map_err(|e| describe(&e))?;
    let rows = client
        .query(&statement, &[])
        .await
        .map_err(|e| describe(&e))?;
    let mut cells = BTreeSet::new();
    for row in rows {
        assert_eq!(row.len(), statement.columns().len(), "a row of {sql}");
        for (i, column) in row.columns().iter().enumerate() {
            let value: Option<WellFormed> = row.try_get(i).map_err(|e| {
                format!(
                    "column {} ({}): {e}: {:?}",
                    column.name(),
                    column.type_(),
                    e.source()
                )
            })?;
            cells.extend(value.and_then(|v| v.0));
        }
    }
    Ok(cells)
}

fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}

/// A binary value that decodes as its type; the text of text-like values.
struct WellFormed(Option<String>);

impl<'a> FromSql<'a> for WellFormed {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        check_value(ty, raw)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }
}

fn check_value(ty: &Type, raw: &[u8]) -> Result<WellFormed, Box<dyn Error + Sync + Send>> {
    let text = match *ty {
        Type::BOOL => {
            wire::bool_from_sql(raw)?;
            None
        }
        Type::INT2 => Some(wire::int2_from_sql(raw)?.to_string()),
        Type::INT4 => Some(wire::int4_from_sql(raw)?.to_string()),
        Type::INT8 => Some(wire::int8_from_sql(raw)?.to_string()),
        Type::OID | Type::REGPROC | Type::REGCLASS | Type::REGTYPE => {
            Some(wire::oid_from_sql(raw)?.to_string())
        }
        Type::FLOAT4 => Some(wire::float4_from_sql(raw)?.to_string()),
        Type::FLOAT8 => Some(wire::float8_from_sql(raw)?.to_string()),
        Type::DATE => Some(wire::date_from_sql(raw)?.to_string()),
        Type::TIMESTAMP | Type::TIMESTAMPTZ => Some(wire::timestamp_from_sql(raw)?.to_string()),
        Type::CHAR => {
            if raw.len() != 1 {
                return Err(format!("\"char\" of {} bytes", raw.len()).into());
            }
            Some(char::from(raw[0]).to_string())
        }
        Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN | Type::JSON => {
            Some(wire::text_from_sql(raw)?.to_owned())
        }
        _ => match ty.kind() {
            Kind::Array(member) => {
                let array = wire::array_from_sql(raw)?;
                if array.element_type() != member.oid() {
                    return Err(
                        format!("{ty} holding elements of type {}", array.element_type()).into(),
                    );
                }
                let mut values = array.values();
                while let Some(value) = fallible_iterator::FallibleIterator::next(&mut values)? {
                    if let Some(value) = value {
                        check_value(member, value)?;
                    }
                }
                None
            }
            // Numeric, interval, … : the framing was read; the engine's own encoders are
            // tested elsewhere.
            _ => None,
        },
    };
    Ok(WellFormed(text))
}
