//! The validated catalog: what the rest of Tollgate reads.
//!
//! The types live here; `build.rs` builds and checks a [`Catalog`] from the options.

mod build;
mod channels;
mod shape;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::control_options::ChannelKind;
use crate::options::{ColumnOptions, EngineOptions, SourceOptions, UsageOptions};
use crate::scram::Verifier;
use crate::shape_options::DatasetKind;
use crate::units::ByteSize;

/// A dataset id `domain.name`, e.g. `tpch.orders`: schema and table name for tenants.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DatasetId {
    domain: String,
    name: String,
}

impl DatasetId {
    /// Parses `domain.name`; both parts are lower-case identifiers (`[a-z_][a-z0-9_]*`).
    ///
    /// # Errors
    /// A message saying what shape is expected.
    pub fn parse(text: &str) -> Result<Self, String> {
        let valid = |part: &str| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        match text.split_once('.') {
            Some((domain, name)) if valid(domain) && valid(name) => Ok(Self {
                domain: domain.to_owned(),
                name: name.to_owned(),
            }),
            _ => Err(format!(
                "`{text}` is not a dataset id of the form domain.name (lower-case letters, digits and _)"
            )),
        }
    }

    /// The domain, which tenants see as a schema.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The name, which tenants see as a table.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for DatasetId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.domain, self.name)
    }
}

/// Where a dataset's rows live.
#[derive(Debug, Clone, PartialEq)]
pub enum DatasetLocation {
    /// Parquet files in an object store: the local disk or an S3 bucket.
    Parquet {
        /// Name of the source (an entry of `[sources]`).
        source: String,
        /// The files: a directory or prefix ending in `/`, or one file, as a URL
        /// (`file:///srv/lake/tpch/orders/`, `s3://bucket/curated/trips/`).
        url: String,
        /// Hive-style partition columns, outermost directory first.
        partition_columns: Vec<Column>,
    },
    /// A table of an Athena source's database.
    Athena {
        /// Name of the source (an entry of `[sources]`).
        source: String,
        /// Name of the table.
        table: String,
    },
    /// A table of a PostgreSQL source.
    Postgres {
        /// Name of the source (an entry of `[sources]`).
        source: String,
        /// Schema of the table on the server.
        schema: String,
        /// Name of the table on the server.
        table: String,
    },
}

/// A declared column: a name and its SQL type.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// SQL type as written in the configuration, e.g. `decimal(15,2)`.
    pub data_type: String,
    /// Whether it may hold NULL; a primary key's columns may not.
    pub nullable: bool,
}

impl From<&ColumnOptions> for Column {
    fn from(options: &ColumnOptions) -> Self {
        Self {
            name: options.name.clone(),
            data_type: options.data_type.clone(),
            nullable: options.nullable,
        }
    }
}

/// One element of the data catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Stable id.
    pub id: DatasetId,
    /// Where its rows are read from.
    pub location: DatasetLocation,
    /// Declared columns; `None` means inferred from the source at start-up.
    pub columns: Option<Vec<Column>>,
    /// Shown to tenants.
    pub description: String,
    /// What each column holds, by column name, shown to tenants.
    pub column_descriptions: BTreeMap<String, String>,
    /// Labels for browsing.
    pub tags: Vec<String>,
    /// Price per GiB returned.
    pub price_per_gib: f64,
    /// Price per GiB read from its source.
    pub price_per_gib_scanned: f64,
    /// The column push channels find the new rows of a replica table by (its value only
    /// grows as rows are added); `None` for datasets of files, whose new rows are new files.
    pub watermark: Option<String>,
    /// A table or a view, as tenants' catalogs list it.
    pub kind: DatasetKind,
    /// The columns identifying a row, in key order; empty when none is declared.
    pub primary_key: Vec<String>,
    /// Keys of other datasets this one holds.
    pub foreign_keys: Vec<ForeignKey>,
}

/// A foreign key of a dataset, checked against the dataset it references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKey {
    /// The dataset's columns, in key order.
    pub columns: Vec<String>,
    /// The referenced dataset.
    pub references: DatasetId,
    /// Its columns that `columns` hold, in the same order (its primary key's columns).
    pub referenced_columns: Vec<String>,
}

/// A performance profile; see [`crate::ProfileOptions`] for what each limit means.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Profile name (`S`, `M`, …), named in limit errors.
    pub name: String,
    /// Memory a tenant's queries may hold.
    pub memory_limit: ByteSize,
    /// Whether queries may spill to disk.
    pub spill: bool,
    /// Disk the tenant's spill files may use.
    pub spill_quota: ByteSize,
    /// Statement timeout.
    pub statement_timeout: Duration,
    /// DataFusion target partitions and executor threads.
    pub parallelism: usize,
    /// Queries running at once.
    pub max_concurrent_queries: usize,
    /// Queries waiting at once.
    pub queue_length: usize,
    /// Longest wait in the queue.
    pub max_queue_wait: Duration,
    /// Sustained queries per second and the burst above it.
    pub rate: Option<RateLimit>,
    /// Rows one query may return.
    pub max_result_rows: Option<u64>,
    /// Arrow bytes one query may return.
    pub max_result_bytes: Option<ByteSize>,
    /// Open connections at once.
    pub max_connections: usize,
    /// Athena workgroup of the tenant's queries on Athena datasets.
    pub athena_workgroup: Option<String>,
    /// Row pairs a cross or nested-loop join may compare.
    pub max_join_pairs: u64,
    /// Rows a recursive query may produce.
    pub max_recursive_rows: u64,
    /// Rows a set-returning function in `FROM` may generate.
    pub max_generated_rows: u64,
    /// Largest value a query may build.
    pub max_value_size: ByteSize,
    /// The factor on datasets' prices.
    pub price_factor: f64,
    /// How long a tenant's pushed messages are kept.
    pub push_retention: Duration,
    /// Bytes of pushed messages kept at most.
    pub push_max_bytes: Option<ByteSize>,
    /// Messages of one push unacknowledged at once at most.
    pub push_in_flight: usize,
}

/// A token bucket: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Queries per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: u32,
}

/// A client organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    /// Tenant id.
    pub id: String,
    /// Its profile.
    pub profile: Arc<Profile>,
    /// Attributes row filters may use.
    pub attributes: BTreeMap<String, String>,
    /// Web origins whose pages may call the Web-API with its credentials.
    pub allowed_origins: Vec<String>,
}

/// A login of a tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    /// User name.
    pub user: String,
    /// Tenant id.
    pub tenant: String,
    /// How its password is checked.
    pub verifier: Verifier,
    /// The channel it belongs to; `None` means it sees all of its tenant's entitlements.
    pub channel: Option<String>,
}

/// A granted column of a view.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantColumn {
    /// Output name.
    pub name: String,
    /// SQL expression over the dataset's columns (a quoted identifier for a plain column).
    pub expr: String,
}

/// What a tenant may read of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// The dataset.
    pub dataset: DatasetId,
    /// Columns in order; `None` grants every column of the dataset.
    pub columns: Option<Vec<GrantColumn>>,
    /// Row filter SQL, possibly naming tenant attributes as `$attribute`.
    pub row_filter: Option<String>,
    /// The tenant's dedicated source for the dataset, used instead of the dataset's own.
    pub source: Option<String>,
    /// A channel's output model applied over the granted view; `None` outside channels.
    pub narrowing: Option<Narrowing>,
}

/// A channel's output model of one dataset, over the columns its entitlement grants.
#[derive(Debug, Clone, PartialEq)]
pub struct Narrowing {
    /// Columns in order, as expressions over the granted columns; `None` keeps them all.
    pub columns: Option<Vec<GrantColumn>>,
    /// A predicate over the granted columns.
    pub row_filter: Option<String>,
}

/// A tenant's channel: logins whose session holds the channel's narrowed grants only.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Channel id.
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// How its data goes out.
    pub kind: ChannelKind,
    /// The profile its queries run under.
    pub profile: Arc<Profile>,
    /// Its datasets: the tenant's grants, each with the channel's [`Narrowing`].
    pub grants: Vec<Grant>,
}

/// The validated model: datasets, tenants, principals, grants and profiles.
#[derive(Debug, Clone)]
pub struct Catalog {
    database: String,
    engine: EngineOptions,
    usage: UsageOptions,
    sources: BTreeMap<String, SourceOptions>,
    datasets: BTreeMap<DatasetId, Arc<Dataset>>,
    tenants: BTreeMap<String, Arc<Tenant>>,
    principals: BTreeMap<String, Arc<Principal>>,
    grants: BTreeMap<String, Vec<Grant>>,
    channels: BTreeMap<String, Arc<Channel>>,
}

impl Catalog {
    /// The database name clients connect to.
    pub fn database(&self) -> &str {
        &self.database
    }

    /// How tenants share the machine.
    pub fn engine(&self) -> &EngineOptions {
        &self.engine
    }

    /// Where usage records go and what they keep.
    pub fn usage(&self) -> &UsageOptions {
        &self.usage
    }

    /// The named sources datasets are read from.
    pub fn sources(&self) -> &BTreeMap<String, SourceOptions> {
        &self.sources
    }

    /// A dataset by id.
    pub fn dataset(&self, id: &DatasetId) -> Option<&Arc<Dataset>> {
        self.datasets.get(id)
    }

    /// Every dataset.
    pub fn datasets(&self) -> impl Iterator<Item = &Arc<Dataset>> {
        self.datasets.values()
    }

    /// Every tenant.
    pub fn tenants(&self) -> impl Iterator<Item = &Arc<Tenant>> {
        self.tenants.values()
    }

    /// A tenant by id.
    pub fn tenant(&self, id: &str) -> Option<&Arc<Tenant>> {
        self.tenants.get(id)
    }

    /// A principal by user name.
    pub fn principal(&self, user: &str) -> Option<&Arc<Principal>> {
        self.principals.get(user)
    }

    /// The principals (logins) of a tenant, by user name.
    pub fn principals_of<'a>(
        &'a self,
        tenant: &'a str,
    ) -> impl Iterator<Item = &'a Arc<Principal>> {
        self.principals
            .values()
            .filter(move |principal| principal.tenant == tenant)
    }

    /// A channel by id.
    pub fn channel(&self, id: &str) -> Option<&Arc<Channel>> {
        self.channels.get(id)
    }

    /// Every channel.
    pub fn channels(&self) -> impl Iterator<Item = &Arc<Channel>> {
        self.channels.values()
    }

    /// Every principal.
    pub fn principals(&self) -> impl Iterator<Item = &Arc<Principal>> {
        self.principals.values()
    }

    /// The grants of a tenant (empty for an unknown tenant).
    pub fn grants(&self, tenant: &str) -> &[Grant] {
        self.grants
            .get(tenant)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// Tenant attribute names a row filter refers to as `$name`.
pub fn referenced_attributes(filter: &str) -> impl Iterator<Item = &str> {
    filter.match_indices('$').filter_map(move |(at, _)| {
        let rest = &filter[at + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        (!name.is_empty() && !name.starts_with(|c: char| c.is_ascii_digit())).then_some(name)
    })
}

/// `name` as a quoted SQL identifier.
pub(crate) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
