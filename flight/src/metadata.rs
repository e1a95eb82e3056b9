//! Flight SQL metadata, built from the caller's tenant session only.
//!
//! Catalogs, schemas and tables come from the same [`TenantSession`] listing that backs
//! the tenant's `information_schema` over pgwire, so both front ends show the same objects:
//! catalog `tollgate`, schema `public`, one schema per granted domain, the system schemas,
//! and one table (or view, as the provider declares it) per granted dataset with its granted
//! columns; its keys are listed by [`crate::keys`]. `SqlInfo` and the type list are static:
//! they describe the server, not a tenant.

use std::sync::{Arc, LazyLock};

use arrow_flight::sql::metadata::{
    GetCatalogsBuilder, GetTablesBuilder, SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo,
    XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetTables, Nullable, Searchable, SqlInfo, SqlNullOrdering,
    SqlOuterJoinsSupportLevel, SqlSupportedCaseSensitivity, SqlSupportedTransaction,
    SupportedSqlGrammar, XdbcDataType, XdbcDatetimeSubcode,
};
use tollgate_catalog::DatasetKind;
use tollgate_planner::TenantSession;

use crate::portable::portable_schema;
use arrow_flight::error::FlightError as WireError;
use tollgate_planner::SERVER_VERSION;
use tollgate_planner::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use tollgate_planner::datafusion::arrow::record_batch::RecordBatch;
use tollgate_planner::information_schema::SYSTEM_SCHEMAS;

/// The table types datasets are listed with: tables, and the datasets declared as views.
pub const TABLE_TYPES: [&str; 2] = ["TABLE", "VIEW"];

/// The table type of a dataset of `kind`.
fn table_type(kind: DatasetKind) -> &'static str {
    match kind {
        DatasetKind::Table => TABLE_TYPES[0],
        DatasetKind::View => TABLE_TYPES[1],
    }
}

/// `GetCatalogs`: the one database.
///
/// # Errors
/// If the batch does not build.
pub fn catalogs(session: &TenantSession) -> Result<RecordBatch, WireError> {
    let mut builder = GetCatalogsBuilder::new();
    builder.append(session.database());
    builder.build()
}

/// `GetDbSchemas`, filtered as the command asks.
///
/// # Errors
/// If the batch does not build.
pub fn db_schemas(
    session: &TenantSession,
    command: CommandGetDbSchemas,
) -> Result<RecordBatch, WireError> {
    let mut builder = command.into_builder();
    for schema in session
        .schemas()
        .iter()
        .map(String::as_str)
        .chain(SYSTEM_SCHEMAS)
    {
        builder.append(session.database(), schema);
    }
    builder.build()
}

/// `GetTables`, filtered as the command asks, with each table's Arrow schema on request.
///
/// # Errors
/// If the batch does not build.
pub fn tables(
    session: &TenantSession,
    command: CommandGetTables,
) -> Result<RecordBatch, WireError> {
    let mut builder: GetTablesBuilder = command.into_builder();
    for table in session.tables() {
        builder.append(
            session.database(),
            &table.schema,
            &table.table,
            table_type(table.kind),
            &portable_schema(&table.columns),
        )?;
    }
    builder.build()
}

/// `GetTableTypes`.
///
/// # Errors
/// If the batch does not build.
pub fn table_types() -> Result<RecordBatch, WireError> {
    let mut builder = arrow_flight::sql::CommandGetTableTypes {}.into_builder();
    for table_type in TABLE_TYPES {
        builder.append(table_type);
    }
    builder.build()
}

/// The schema of `GetPrimaryKeys` results.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The schema of `GetExportedKeys`, `GetImportedKeys` and `GetCrossReference` results.
pub fn foreign_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("pk_catalog_name", DataType::Utf8, true),
        Field::new("pk_db_schema_name", DataType::Utf8, true),
        Field::new("pk_table_name", DataType::Utf8, false),
        Field::new("pk_column_name", DataType::Utf8, false),
        Field::new("fk_catalog_name", DataType::Utf8, true),
        Field::new("fk_db_schema_name", DataType::Utf8, true),
        Field::new("fk_table_name", DataType::Utf8, false),
        Field::new("fk_column_name", DataType::Utf8, false),
        Field::new("key_sequence", DataType::Int32, false),
        Field::new("fk_key_name", DataType::Utf8, true),
        Field::new("pk_key_name", DataType::Utf8, true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

/// What the server says about itself (`GetSqlInfo`).
pub static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut info = SqlInfoDataBuilder::new();
    info.append(SqlInfo::FlightSqlServerName, "Tollgate");
    info.append(
        SqlInfo::FlightSqlServerVersion,
        format!(
            "{} (PostgreSQL {SERVER_VERSION} dialect)",
            env!("CARGO_PKG_VERSION")
        )
        .as_str(),
    );
    info.append(SqlInfo::FlightSqlServerArrowVersion, ARROW_VERSION);
    info.append(SqlInfo::FlightSqlServerReadOnly, true);
    info.append(SqlInfo::FlightSqlServerSql, true);
    info.append(SqlInfo::FlightSqlServerSubstrait, false);
    info.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    info.append(SqlInfo::FlightSqlServerCancel, true);
    info.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    info.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    // Statement timeouts come from each tenant's profile; 0 means "not set per call".
    info.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    info.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
    info.append(SqlInfo::SqlDdlCatalog, false);
    info.append(SqlInfo::SqlDdlSchema, false);
    info.append(SqlInfo::SqlDdlTable, false);
    info.append(
        SqlInfo::SqlIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
    );
    info.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    info.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    info.append(SqlInfo::SqlAllTablesAreSelectable, true);
    info.append(
        SqlInfo::SqlNullOrdering,
        SqlNullOrdering::SqlNullsSortedHigh as i32,
    );
    info.append(SqlInfo::SqlKeywords, KEYWORDS);
    info.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
    info.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
    info.append(SqlInfo::SqlSystemFunctions, SYSTEM_FUNCTIONS);
    info.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
    info.append(SqlInfo::SqlSearchStringEscape, "\\");
    info.append(SqlInfo::SqlExtraNameCharacters, "");
    info.append(SqlInfo::SqlSupportsColumnAliasing, true);
    info.append(SqlInfo::SqlNullPlusNullIsNull, true);
    info.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    info.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    info.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    info.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    // Bit masks: bit n set = enum value n supported.
    info.append(SqlInfo::SqlSupportedGroupBy, 0b11i32);
    info.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    info.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    info.append(
        SqlInfo::SqlSupportedGrammar,
        (1i32 << SupportedSqlGrammar::SqlMinimumGrammar as i32)
            | (1 << SupportedSqlGrammar::SqlCoreGrammar as i32),
    );
    // ANSI92 entry (bit 0) and intermediate (bit 1) levels; arrow-flight does not export
    // that enum.
    info.append(SqlInfo::SqlAnsi92SupportedLevel, 0b11i32);
    info.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    info.append(
        SqlInfo::SqlOuterJoinsSupportLevel,
        SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
    );
    info.append(SqlInfo::SqlSchemaTerm, "schema");
    info.append(SqlInfo::SqlProcedureTerm, "function");
    info.append(SqlInfo::SqlCatalogTerm, "database");
    info.append(SqlInfo::SqlCatalogAtStart, true);
    info.append(SqlInfo::SqlSchemasSupportedActions, 0b111i32);
    info.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
    info.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
    info.append(SqlInfo::SqlSelectForUpdateSupported, false);
    info.append(SqlInfo::SqlStoredProceduresSupported, false);
    info.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32);
    info.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    info.append(SqlInfo::SqlSupportedUnions, 0b11i32);
    // Limits: 0 means none or unknown; names follow PostgreSQL's 63-byte identifiers.
    for limit in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTablesInSelect,
    ] {
        info.append(limit, 0i64);
    }
    for name_limit in [
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        info.append(name_limit, 63i64);
    }
    info.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, false);
    info.append(SqlInfo::SqlDefaultTransactionIsolation, 0i64);
    info.append(SqlInfo::SqlTransactionsSupported, false);
    info.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
    info.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    info.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, true);
    // Forward-only result sets (SQL_RESULT_SET_TYPE_FORWARD_ONLY = bit 1), read-only.
    info.append(SqlInfo::SqlSupportedResultSetTypes, 0b10i32);
    info.append(
        SqlInfo::SqlSupportedConcurrenciesForResultSetForwardOnly,
        0b10i32,
    );
    for concurrency in [
        SqlInfo::SqlSupportedConcurrenciesForResultSetUnspecified,
        SqlInfo::SqlSupportedConcurrenciesForResultSetScrollSensitive,
        SqlInfo::SqlSupportedConcurrenciesForResultSetScrollInsensitive,
    ] {
        info.append(concurrency, 0i32);
    }
    info.append(SqlInfo::SqlBatchUpdatesSupported, false);
    info.append(SqlInfo::SqlSavepointsSupported, false);
    info.append(SqlInfo::SqlNamedParametersSupported, false);
    info.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    info.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
    // The builder only fails on mixed value types per id, which the list above does not have.
    #[allow(clippy::expect_used)]
    info.build().expect("the SqlInfo list is well formed")
});

/// The Arrow version results are encoded with.
const ARROW_VERSION: &str = "59.3";

const KEYWORDS: &[&str] = &[
    "analyze",
    "array",
    "asymmetric",
    "both",
    "cast",
    "collate",
    "concurrently",
    "cross",
    "current_catalog",
    "current_role",
    "current_schema",
    "do",
    "explain",
    "fetch",
    "full",
    "ilike",
    "lateral",
    "leading",
    "limit",
    "natural",
    "offset",
    "only",
    "placing",
    "returning",
    "similar",
    "symmetric",
    "tablesample",
    "trailing",
    "variadic",
    "verbose",
    "window",
];
const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs", "acos", "asin", "atan", "atan2", "cbrt", "ceil", "cos", "cot", "degrees", "exp",
    "floor", "ln", "log", "log10", "mod", "pi", "power", "radians", "random", "round", "sign",
    "sin", "sqrt", "tan", "trunc",
];
const STRING_FUNCTIONS: &[&str] = &[
    "ascii",
    "btrim",
    "chr",
    "concat",
    "concat_ws",
    "initcap",
    "left",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "md5",
    "octet_length",
    "position",
    "regexp_replace",
    "repeat",
    "replace",
    "reverse",
    "right",
    "rpad",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "substring",
    "translate",
    "trim",
    "upper",
];
const SYSTEM_FUNCTIONS: &[&str] = &[
    "coalesce",
    "current_database",
    "current_schema",
    "current_setting",
    "current_user",
    "nullif",
    "version",
];
const DATETIME_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "current_timestamp",
    "date_bin",
    "date_part",
    "date_trunc",
    "extract",
    "make_date",
    "now",
    "to_char",
    "to_date",
    "to_timestamp",
];

/// The types results are sent with (`GetXdbcTypeInfo`), named as pgwire names them.
pub static XDBC_TYPES: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut types = XdbcTypeInfoDataBuilder::new();
    let mut add = |name: &str, data_type: XdbcDataType, column_size: i32, quoted: bool| {
        types.append(XdbcTypeInfo {
            type_name: name.to_owned(),
            data_type,
            column_size: Some(column_size),
            literal_prefix: quoted.then(|| "'".to_owned()),
            literal_suffix: quoted.then(|| "'".to_owned()),
            create_params: None,
            nullable: Nullable::NullabilityNullable,
            case_sensitive: matches!(data_type, XdbcDataType::XdbcVarchar),
            searchable: Searchable::Full,
            unsigned_attribute: Some(false),
            fixed_prec_scale: false,
            auto_increment: Some(false),
            local_type_name: Some(name.to_owned()),
            minimum_scale: None,
            maximum_scale: None,
            sql_data_type: data_type,
            datetime_subcode: match data_type {
                XdbcDataType::XdbcDate => Some(XdbcDatetimeSubcode::XdbcSubcodeYear),
                XdbcDataType::XdbcTimestamp => Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
                _ => None,
            },
            num_prec_radix: matches!(
                data_type,
                XdbcDataType::XdbcSmallint
                    | XdbcDataType::XdbcInteger
                    | XdbcDataType::XdbcBigint
                    | XdbcDataType::XdbcNumeric
                    | XdbcDataType::XdbcReal
                    | XdbcDataType::XdbcDouble
            )
            .then_some(10),
            interval_precision: None,
        });
    };
    add("bit", XdbcDataType::XdbcBit, 1, false);
    add("boolean", XdbcDataType::XdbcBit, 1, false);
    add("smallint", XdbcDataType::XdbcSmallint, 5, false);
    add("integer", XdbcDataType::XdbcInteger, 10, false);
    add("bigint", XdbcDataType::XdbcBigint, 19, false);
    add("real", XdbcDataType::XdbcReal, 8, false);
    add("double precision", XdbcDataType::XdbcDouble, 17, false);
    add("numeric", XdbcDataType::XdbcNumeric, 38, false);
    add("text", XdbcDataType::XdbcVarchar, i32::MAX, true);
    add("bytea", XdbcDataType::XdbcVarbinary, i32::MAX, true);
    add("date", XdbcDataType::XdbcDate, 10, true);
    add("timestamp", XdbcDataType::XdbcTimestamp, 26, true);
    // Fails only for an empty list.
    #[allow(clippy::expect_used)]
    types.build().expect("the type list is well formed")
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_metadata_builds() {
        let info = SQL_INFO
            .record_batch([
                SqlInfo::FlightSqlServerName as u32,
                SqlInfo::SqlKeywords as u32,
            ])
            .expect("sql info");
        assert_eq!(info.num_rows(), 2);
        let types = XDBC_TYPES.record_batch(None).expect("types");
        assert_eq!(types.num_rows(), 12);
        let dates = XDBC_TYPES
            .record_batch(Some(XdbcDataType::XdbcDate as i32))
            .expect("dates");
        assert_eq!(dates.num_rows(), 1);
        assert_eq!(table_types().expect("types").num_rows(), 2);
    }
}
