//! Random queries over the columns a tenant sees, for differential tests: filters, joins,
//! aggregates and window functions whose answers are fully determined (every result is
//! ordered by all its columns before a `LIMIT`), and their reductions, to minimize a query
//! whose answers differ.
//!
//! The generator reads what it may query from PostgreSQL's `information_schema` of the
//! reference (`reference_pg`): the tenant's views, their columns and types, and a few values
//! of each column (its deciles) to compare with. Two views join on integer columns with the
//! same name after their prefix (`l_orderkey` = `o_orderkey`), as TPC-H names its keys.

use std::fmt::Write as _;

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tokio_postgres::Client;

/// What a column holds, for choosing predicates and aggregates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `smallint`, `integer`, `bigint`.
    Integer,
    /// `numeric`.
    Decimal,
    /// `date`.
    Date,
    /// `text` and other strings.
    Text,
}

/// A column of a view the tenant sees, with values to compare it with (as SQL literals).
#[derive(Debug, Clone)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// What it holds.
    pub kind: Kind,
    /// Values of the column as SQL literals.
    pub literals: Vec<String>,
}

/// A view the tenant sees.
#[derive(Debug, Clone)]
pub struct Table {
    /// The view's name (unqualified: both sides resolve it on their `search_path`).
    pub name: String,
    /// Its columns.
    pub columns: Vec<Column>,
}

/// The tenant's views with their columns, read from the reference's `information_schema`.
///
/// # Panics
/// If the reference cannot be read.
pub async fn tables_of(reference: &Client, tenant: &str) -> Vec<Table> {
    let rows = reference
        .query(
            "SELECT table_name::text, column_name::text, data_type::text \
             FROM information_schema.columns WHERE table_schema = $1 \
             ORDER BY table_name, ordinal_position",
            &[&tenant],
        )
        .await
        .expect("read the tenant's columns");
    let mut tables: Vec<Table> = Vec::new();
    for row in rows {
        let (table, name, data_type): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let kind = match data_type.as_str() {
            "smallint" | "integer" | "bigint" => Kind::Integer,
            "numeric" => Kind::Decimal,
            "date" => Kind::Date,
            _ => Kind::Text,
        };
        let deciles = reference
            .query_one(
                &format!(
                    "SELECT array_agg(DISTINCT v)::text[] FROM unnest((SELECT \
                     percentile_disc(ARRAY[0.1, 0.3, 0.5, 0.7, 0.9]) WITHIN GROUP (ORDER BY \"{name}\") \
                     FROM \"{tenant}\".\"{table}\")) AS v"
                ),
                &[],
            )
            .await
            .expect("read a column's deciles");
        let values: Option<Vec<String>> = deciles.get(0);
        let literals = values
            .unwrap_or_default()
            .into_iter()
            .map(|value| literal(kind, &value))
            .collect();
        let column = Column {
            name,
            kind,
            literals,
        };
        match tables.last_mut() {
            Some(last) if last.name == table => last.columns.push(column),
            _ => tables.push(Table {
                name: table,
                columns: vec![column],
            }),
        }
    }
    tables.retain(|table| table.columns.iter().all(|c| !c.literals.is_empty()));
    tables
}

fn literal(kind: Kind, value: &str) -> String {
    match kind {
        Kind::Integer | Kind::Decimal => value.to_owned(),
        Kind::Date => format!("DATE '{value}'"),
        Kind::Text => format!("'{}'", value.replace('\'', "''")),
    }
}

/// A generated query: its parts, so that it can be printed and reduced.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Output expressions, each with its alias.
    pub select: Vec<(String, String)>,
    /// `FROM` and joins.
    pub from: String,
    /// Conjuncts of the `WHERE` clause.
    pub filters: Vec<String>,
    /// `GROUP BY` expressions (the aggregate shape).
    pub group_by: Vec<String>,
    /// Rows kept after ordering by every output column.
    pub limit: Option<u32>,
}

impl Query {
    /// The query's SQL.
    pub fn sql(&self) -> String {
        let mut sql = String::from("SELECT ");
        let items: Vec<String> = self
            .select
            .iter()
            .map(|(expr, alias)| format!("{expr} AS {alias}"))
            .collect();
        sql.push_str(&items.join(", "));
        let _ = write!(sql, " FROM {}", self.from);
        if !self.filters.is_empty() {
            let _ = write!(sql, " WHERE {}", self.filters.join(" AND "));
        }
        if !self.group_by.is_empty() {
            let _ = write!(sql, " GROUP BY {}", self.group_by.join(", "));
        }
        let positions: Vec<String> = (1..=self.select.len()).map(|i| i.to_string()).collect();
        let _ = write!(sql, " ORDER BY {}", positions.join(", "));
        if let Some(limit) = self.limit {
            let _ = write!(sql, " LIMIT {limit}");
        }
        sql
    }

    /// Smaller queries than this one, each one part removed: a filter, or an output column
    /// (with its grouping).
    pub fn reductions(&self) -> Vec<Self> {
        let mut smaller = Vec::new();
        for i in 0..self.filters.len() {
            let mut query = self.clone();
            query.filters.remove(i);
            smaller.push(query);
        }
        if self.select.len() > 1 {
            for i in 0..self.select.len() {
                let mut query = self.clone();
                let (expr, _) = query.select.remove(i);
                query.group_by.retain(|group| *group != expr);
                smaller.push(query);
            }
        }
        smaller
    }
}

/// Random queries over a tenant's tables, from a seed.
pub struct Generator {
    rng: StdRng,
    tables: Vec<Table>,
}

impl Generator {
    /// A generator over `tables` whose queries depend only on `seed`.
    pub fn new(seed: u64, tables: Vec<Table>) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            tables,
        }
    }

    /// The next query.
    ///
    /// # Panics
    /// If the generator has no tables.
    pub fn next_query(&mut self) -> Query {
        let first = self.tables.choose(&mut self.rng).expect("tables").clone();
        let mut sources = vec![(first.clone(), "a".to_owned())];
        let mut from = format!("{} a", first.name);
        if self.rng.random_bool(0.4)
            && let Some((other, on)) = self.join_partner(&first)
        {
            let _ = write!(from, " JOIN {} b ON {on}", other.name);
            sources.push((other, "b".to_owned()));
        }
        let columns: Vec<(String, Column)> = sources
            .iter()
            .flat_map(|(table, alias)| {
                table
                    .columns
                    .iter()
                    .map(move |c| (format!("{alias}.{}", c.name), c.clone()))
            })
            .collect();
        let filter_count = self.rng.random_range(0..=3);
        let filters = (0..filter_count)
            .map(|_| self.predicate(&columns))
            .collect();
        let mut query = Query {
            select: Vec::new(),
            from,
            filters,
            group_by: Vec::new(),
            limit: Some(self.rng.random_range(1..=40)),
        };
        match self.rng.random_range(0..3) {
            0 => self.plain(&mut query, &columns),
            1 => self.aggregate(&mut query, &columns),
            _ => self.window(&mut query, &columns),
        }
        query
    }

    /// A table that joins `table` on a key column, and the join's condition.
    fn join_partner(&mut self, table: &Table) -> Option<(Table, String)> {
        let mut candidates = Vec::new();
        for other in self.tables.iter().filter(|t| t.name != table.name) {
            for left in table.columns.iter().filter(|c| c.kind == Kind::Integer) {
                for right in other.columns.iter().filter(|c| c.kind == Kind::Integer) {
                    if key_suffix(&left.name).is_some()
                        && key_suffix(&left.name) == key_suffix(&right.name)
                    {
                        candidates
                            .push((other.clone(), format!("a.{} = b.{}", left.name, right.name)));
                    }
                }
            }
        }
        candidates.choose(&mut self.rng).cloned()
    }

    fn predicate(&mut self, columns: &[(String, Column)]) -> String {
        let (name, column) = columns.choose(&mut self.rng).expect("columns");
        let value = column.literals.choose(&mut self.rng).expect("literals");
        let other = column.literals.choose(&mut self.rng).expect("literals");
        let simple = match self.rng.random_range(0..8) {
            0 => format!("{name} = {value}"),
            1 => format!("{name} <> {value}"),
            2 => format!("{name} < {value}"),
            3 => format!("{name} >= {value}"),
            4 => format!("{name} BETWEEN {value} AND {other}"),
            5 => format!("{name} IN ({value}, {other})"),
            6 if column.kind == Kind::Text => {
                let prefix: String = value.trim_matches('\'').chars().take(3).collect();
                format!("{name} LIKE '{}%'", prefix.replace('\'', "''"))
            }
            _ => format!("NOT ({name} > {value})"),
        };
        if self.rng.random_bool(0.2) {
            let alternative = self.predicate(columns);
            format!("({simple} OR {alternative})")
        } else {
            simple
        }
    }

    fn plain(&mut self, query: &mut Query, columns: &[(String, Column)]) {
        let count = self.rng.random_range(1..=4).min(columns.len());
        for (i, (name, _)) in columns.choose_multiple(&mut self.rng, count).enumerate() {
            query.select.push((name.clone(), format!("c{i}")));
        }
    }

    fn aggregate(&mut self, query: &mut Query, columns: &[(String, Column)]) {
        let groups = self.rng.random_range(0..=2).min(columns.len());
        for (i, (name, _)) in columns.choose_multiple(&mut self.rng, groups).enumerate() {
            query.select.push((name.clone(), format!("g{i}")));
            query.group_by.push(name.clone());
        }
        let count = self.rng.random_range(1..=3);
        for i in 0..count {
            let (name, column) = columns.choose(&mut self.rng).expect("columns");
            let numeric = matches!(column.kind, Kind::Integer | Kind::Decimal);
            let expr = match self.rng.random_range(0..6) {
                0 => "count(*)".to_owned(),
                1 => format!("count(DISTINCT {name})"),
                2 => format!("min({name})"),
                3 => format!("max({name})"),
                4 if numeric => format!("sum({name})"),
                5 if numeric => format!("avg({name})"),
                _ => format!("count({name})"),
            };
            query.select.push((expr, format!("v{i}")));
        }
    }

    fn window(&mut self, query: &mut Query, columns: &[(String, Column)]) {
        self.plain(query, columns);
        let (partition, _) = columns.choose(&mut self.rng).expect("columns");
        let (order, _) = columns.choose(&mut self.rng).expect("columns");
        let numeric: Vec<&(String, Column)> = columns
            .iter()
            .filter(|(_, c)| matches!(c.kind, Kind::Integer | Kind::Decimal))
            .collect();
        let expr = match self.rng.random_range(0..4) {
            0 => format!("rank() OVER (PARTITION BY {partition} ORDER BY {order})"),
            1 => format!("count(*) OVER (PARTITION BY {partition})"),
            2 => format!("dense_rank() OVER (ORDER BY {order})"),
            _ => match numeric.choose(&mut self.rng) {
                Some((sum, _)) => {
                    format!("sum({sum}) OVER (PARTITION BY {partition} ORDER BY {order})")
                }
                None => format!("max({order}) OVER (PARTITION BY {partition})"),
            },
        };
        query.select.push((expr, "w".to_owned()));
    }
}

/// The part of a key column's name after its table prefix (`orderkey` of `l_orderkey`).
fn key_suffix(name: &str) -> Option<&str> {
    name.split_once('_')
        .map(|(_, suffix)| suffix)
        .filter(|suffix| suffix.ends_with("key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Vec<Table> {
        let column = |name: &str, kind| Column {
            name: name.to_owned(),
            kind,
            literals: vec!["1".to_owned(), "2".to_owned()],
        };
        vec![
            Table {
                name: "orders".to_owned(),
                columns: vec![
                    column("o_orderkey", Kind::Integer),
                    column("o_totalprice", Kind::Decimal),
                ],
            },
            Table {
                name: "lineitem".to_owned(),
                columns: vec![
                    column("l_orderkey", Kind::Integer),
                    column("l_quantity", Kind::Decimal),
                ],
            },
        ]
    }

    #[test]
    fn the_same_seed_gives_the_same_queries() {
        let mut a = Generator::new(7, tables());
        let mut b = Generator::new(7, tables());
        for _ in 0..50 {
            assert_eq!(a.next_query().sql(), b.next_query().sql());
        }
    }

    #[test]
    fn every_query_orders_by_all_its_columns_and_joins_only_on_keys() {
        let mut generator = Generator::new(1, tables());
        for _ in 0..200 {
            let query = generator.next_query();
            let sql = query.sql();
            let positions: Vec<String> = (1..=query.select.len()).map(|i| i.to_string()).collect();
            assert!(
                sql.contains(&format!("ORDER BY {}", positions.join(", "))),
                "{sql}"
            );
            if sql.contains(" JOIN ") {
                assert!(
                    sql.contains("a.o_orderkey = b.l_orderkey")
                        || sql.contains("a.l_orderkey = b.o_orderkey"),
                    "{sql}"
                );
            }
        }
    }

    #[test]
    fn reductions_remove_one_part_each() {
        let mut generator = Generator::new(3, tables());
        let query = (0..100)
            .map(|_| generator.next_query())
            .find(|q| q.filters.len() >= 2)
            .expect("a query with filters");
        for smaller in query.reductions() {
            assert!(smaller.sql().len() < query.sql().len());
        }
    }
}
