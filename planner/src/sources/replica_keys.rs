//! The keys a replica's own catalog declares for a dataset's table, for datasets of a
//! `postgres` source whose configuration declares none: its primary key, and its foreign
//! keys to tables that are themselves datasets of the same source.

use std::sync::Arc;

use tollgate_catalog::{Catalog, Dataset, DatasetLocation, ForeignKey};

use crate::sources::postgres_table::{PostgresTable, table_query};
use crate::sources::tables::{SOURCE_CATALOG, SourceTables};

/// The primary key's columns, in key order.
const PRIMARY_KEY: &str = "SELECT a.attname::text \
     FROM pg_index i \
     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, position) \
     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
     WHERE i.indrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND i.indisprimary \
     ORDER BY k.position";

/// Each foreign key: the referenced table's schema and name, and the columns of both ends
/// in key order.
const FOREIGN_KEYS: &str = "SELECT fn.nspname::text, fc.relname::text, \
     ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, position) \
           JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum \
           ORDER BY k.position), \
     ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, position) \
           JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum \
           ORDER BY k.position) \
     FROM pg_constraint c \
     JOIN pg_class fc ON fc.oid = c.confrelid \
     JOIN pg_namespace fn ON fn.oid = fc.relnamespace \
     WHERE c.conrelid = (quote_ident($1) || '.' || quote_ident($2))::regclass AND c.contype = 'f' \
     ORDER BY c.conname";

/// The keys of `dataset`'s table as its replicas declare them, if it is a table of a
/// `postgres` source that is open; its foreign keys only to tables of that source that
/// `catalog` serves as datasets. A replica that cannot tell is taken to declare none.
pub(crate) async fn replica_keys(
    sources: &SourceTables,
    catalog: &Catalog,
    dataset: &Dataset,
) -> Option<(Vec<String>, Vec<ForeignKey>)> {
    let DatasetLocation::Postgres {
        source,
        schema,
        table,
    } = &dataset.location
    else {
        return None;
    };
    let state = sources.listing_state();
    let provider = state
        .catalog_list()
        .catalog(SOURCE_CATALOG)?
        .schema(dataset.id.domain())?
        .table(dataset.id.name())
        .await
        .ok()??;
    let replicas = Arc::clone(provider.downcast_ref::<PostgresTable>()?.replicas());
    let primary_key = table_query(&replicas, PRIMARY_KEY, schema, table)
        .await
        .ok()?
        .iter()
        .map(|row| row.get::<_, String>(0))
        .collect();
    let foreign_keys = table_query(&replicas, FOREIGN_KEYS, schema, table)
        .await
        .ok()?
        .iter()
        .filter_map(|row| {
            let (schema, table): (String, String) = (row.get(0), row.get(1));
            let references = catalog.datasets().find(|d| {
                matches!(&d.location, DatasetLocation::Postgres { source: s, schema: sc, table: t }
                    if s == source && *sc == schema && *t == table)
            })?;
            Some(ForeignKey {
                columns: row.get(2),
                references: references.id.clone(),
                referenced_columns: row.get(3),
            })
        })
        .collect();
    Some((primary_key, foreign_keys))
}
