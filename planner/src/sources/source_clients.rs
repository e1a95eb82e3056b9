//! Clients of the catalog's postgres and Athena sources, kept for the process's life, and
//! the Arrow schema of a dataset's declared columns.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;
use tokio::runtime::Handle;
use tollgate_catalog::{Catalog, Column, DatasetId, SourceOptions, Tenant};

use crate::error::PlannerError;
use crate::sources::athena::AthenaSource;
use crate::sources::replicas::ReplicaSet;

/// Clients of the catalog's postgres and Athena sources, made on first use. Sources are
/// fixed at start-up; datasets on them come and go.
pub(crate) struct SourceClients {
    sources: BTreeMap<String, SourceOptions>,
    sets: BTreeMap<String, Arc<ReplicaSet>>,
    athena: BTreeMap<String, Arc<AthenaSource>>,
    io: Handle,
}

impl SourceClients {
    /// The clients of `catalog`'s sources, none made yet.
    ///
    /// # Errors
    /// [`PlannerError::SourceStore`] outside a Tokio runtime.
    pub(crate) fn new(catalog: &Catalog) -> Result<Self, PlannerError> {
        let io = Handle::try_current().map_err(|e| PlannerError::SourceStore {
            source_name: String::new(),
            message: format!("source clients need a Tokio runtime for their I/O: {e}"),
        })?;
        Ok(Self {
            sources: catalog.sources().clone(),
            sets: BTreeMap::new(),
            athena: BTreeMap::new(),
            io,
        })
    }

    /// The client of Athena source `name`.
    pub(crate) fn athena(&mut self, name: &str) -> Result<Arc<AthenaSource>, PlannerError> {
        if let Some(source) = self.athena.get(name) {
            return Ok(Arc::clone(source));
        }
        let error = |message: String| PlannerError::SourceStore {
            source_name: name.to_owned(),
            message,
        };
        let Some(SourceOptions::Athena(options)) = self.sources.get(name) else {
            return Err(error("is not an athena source".to_owned()));
        };
        let source = Arc::new(AthenaSource::new(options, self.io.clone()).map_err(error)?);
        self.athena.insert(name.to_owned(), Arc::clone(&source));
        Ok(source)
    }

    /// The workgroup `tenant`'s queries on Athena source `name` run in.
    pub(crate) fn workgroup(&self, name: &str, tenant: &Tenant) -> String {
        match (&tenant.profile.athena_workgroup, self.sources.get(name)) {
            (Some(workgroup), _) => workgroup.clone(),
            (None, Some(SourceOptions::Athena(options))) => options.workgroup.clone(),
            (None, _) => String::new(),
        }
    }

    /// The replicas of postgres source `name`.
    pub(crate) fn replicas(&mut self, name: &str) -> Result<Arc<ReplicaSet>, PlannerError> {
        if let Some(set) = self.sets.get(name) {
            return Ok(Arc::clone(set));
        }
        let error = |message: String| PlannerError::SourceStore {
            source_name: name.to_owned(),
            message,
        };
        let Some(SourceOptions::Postgres {
            replicas,
            max_connections,
            connect_timeout,
            read_timeout,
            tls,
        }) = self.sources.get(name)
        else {
            return Err(error("is not a postgres source".to_owned()));
        };
        let set = Arc::new(
            ReplicaSet::new(
                name,
                replicas,
                *max_connections,
                connect_timeout.duration(),
                read_timeout.duration(),
                tls.as_ref(),
                self.io.clone(),
            )
            .map_err(error)?,
        );
        self.sets.insert(name.to_owned(), Arc::clone(&set));
        Ok(set)
    }
}

/// The file schema a dataset declares: its columns with their SQL types as Arrow types.
pub(crate) async fn declared_schema(
    context: &SessionContext,
    dataset: &DatasetId,
    columns: &[Column],
) -> Result<Schema, PlannerError> {
    let mut fields = Vec::with_capacity(columns.len());
    for column in columns {
        fields.push(Field::new(
            &column.name,
            sql_type(context, dataset, column).await?,
            column.nullable,
        ));
    }
    Ok(Schema::new(fields))
}

/// The Arrow type DataFusion gives the SQL type of `column` (`bigint`, `decimal(15,2)`, …),
/// found by planning a cast to it.
pub(crate) async fn sql_type(
    context: &SessionContext,
    dataset: &DatasetId,
    column: &Column,
) -> Result<DataType, PlannerError> {
    let invalid = |message: String| PlannerError::Source {
        dataset: dataset.to_string(),
        message: format!(
            "column `{}` has type `{}`: {message}",
            column.name, column.data_type
        ),
    };
    // The parser is not `Send`: it is gone before the first await.
    let parsed = {
        let mut parser = Parser::new(&PostgreSqlDialect {})
            .try_with_sql(&column.data_type)
            .map_err(|e| invalid(e.to_string()))?;
        let parsed = parser
            .parse_data_type()
            .map_err(|e| invalid(e.to_string()))?;
        if parser.next_token().token != Token::EOF {
            return Err(invalid("not a single SQL type".to_owned()));
        }
        parsed
    };
    let plan = context
        .state()
        .create_logical_plan(&format!("SELECT CAST(NULL AS {parsed})"))
        .await
        .map_err(|e| invalid(e.to_string()))?;
    // Results use plain strings and binaries: some clients (Spark 3.5) cannot read views.
    Ok(match plan.schema().field(0).data_type() {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        other => other.clone(),
    })
}
