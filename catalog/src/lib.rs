//! The model Tollgate serves and the configuration it is loaded from.
//!
//! A data provider describes its **datasets** (each with a source), its **tenants** (client
//! organisations with a performance **profile** and attributes), their **principals** (logins with
//! SCRAM-SHA-256 verifiers) and the **grants** that say which columns and rows of which dataset
//! a tenant may read. This crate parses `tollgate.toml` into [`TollgateOptions`], checks every
//! cross reference and unit, and hands the rest of the system a validated [`Catalog`].
//!
//! ```text
//! tollgate.toml ──serde──▶ TollgateOptions ──validate──▶ Catalog ──▶ planner (views), gateway (logins)
//! ```
//!
//! The crate knows no query engine: SQL fragments in grants (column expressions, row filters)
//! are carried as text and checked by the planner when it builds a tenant's views.
//!
//! Modules: `options` (the serde shape), `model` (the validated types, built and checked in
//! `model::build`), `units`, `throttle`, `error`, all re-exported here; [`scram`] is public
//! for `tollgate passwd` and the front ends' password checks.

mod control_options;
mod error;
mod grant_columns;
mod model;
mod options;
mod profile_options;
pub mod scram;
mod shape_options;
pub mod store;
mod throttle;
mod units;

pub use control_options::{
    ApiKeyOptions, ChannelDatasetOptions, ChannelKind, ChannelOptions, ControlOptions,
    MessageFormat, MqttPushOptions, NatsPushOptions, S3DeliveryOptions, StateStoreKind,
};
pub use error::CatalogError;
pub use model::{
    Catalog, Channel, Column, Dataset, DatasetId, DatasetLocation, ForeignKey, Grant, GrantColumn,
    Narrowing, Principal, Profile, RateLimit, Tenant, referenced_attributes,
};
pub use options::{
    AthenaOptions, AuthOptions, ColumnOptions, DatasetKind, DatasetOptions, EngineOptions,
    FlightListenerOptions, ForeignKeyOptions, GrantColumnOptions, GrantOptions,
    HttpListenerOptions, LedgerKind, PgListenerOptions, PrincipalOptions, ProfileOptions,
    ReplicaTlsOptions, SourceOptions, TenantOptions, TlsOptions, TollgateOptions, UsageOptions,
};
pub use throttle::{LoginRefusal, LoginThrottle};
pub use units::{ByteSize, HumanDuration};

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The example configuration of the repository, parsed.
    pub(crate) fn example() -> TollgateOptions {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tollgate.example.toml");
        TollgateOptions::load(&path).expect("the example configuration parses")
    }

    #[test]
    fn the_example_configuration_parses_and_validates() {
        let options = example();
        let catalog = Catalog::from_options(&options).expect("the example configuration is valid");
        assert_eq!(catalog.database(), "tollgate");
        assert_eq!(options.profiles.len(), 3);
        let grants = catalog.grants("acme");
        assert_eq!(grants.len(), 3);
        let columns = grants[0].columns.as_ref().expect("columns are listed");
        assert_eq!(columns[2].name, "temperature_f");
        assert_eq!(grants[2].source.as_deref(), Some("crm_acme"));
        assert_eq!(catalog.sources().len(), 5);
        assert!(catalog.principal("acme_analyst").is_some());
        let observations = catalog
            .dataset(&DatasetId::parse("weather.observations").expect("an id"))
            .expect("a dataset");
        assert_eq!(
            observations.column_descriptions["observed_at"],
            "Start of the hour, UTC"
        );
    }

    #[test]
    fn errors_name_the_key_at_fault() {
        let mut options = example();
        options.grants[1].dataset = "weather.nothing".to_owned();
        let error = Catalog::from_options(&options).expect_err("unknown dataset");
        assert!(error.to_string().contains("grants[1].dataset"), "{error}");

        let mut options = example();
        options.principals[0].scram_verifier = "pencil".to_owned();
        let error = Catalog::from_options(&options).expect_err("a password is not a verifier");
        assert!(
            error.to_string().contains("principals[0].scram_verifier"),
            "{error}"
        );

        let mut options = example();
        options.grants[0].row_filter = Some("region = $country".to_owned());
        let error = Catalog::from_options(&options).expect_err("unknown attribute");
        assert!(
            error.to_string().contains("grants[0].row_filter"),
            "{error}"
        );

        let mut options = example();
        let declared = options
            .datasets
            .iter()
            .position(|d| d.columns.is_some())
            .expect("a dataset declares its columns");
        options.datasets[declared]
            .column_descriptions
            .insert("no_such_column".to_owned(), "?".to_owned());
        let error = Catalog::from_options(&options).expect_err("an unknown column");
        assert!(
            error
                .to_string()
                .contains(&format!("datasets[{declared}].column_descriptions")),
            "{error}"
        );

        let error =
            toml::from_str::<TollgateOptions>("[pg]\nlisten = \"127.0.0.1:1\"\nmax_conections = 3")
                .expect_err("typo");
        assert!(error.to_string().contains("max_conections"), "{error}");
    }
}
