//! A dataset's declared shape (primary key, foreign keys) checked against its columns and
//! against the datasets it references, each error naming the key at fault.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::{Column, Dataset, DatasetId, ForeignKey};
use crate::error::CatalogError;
use crate::options::DatasetOptions;

/// The primary key of dataset `i`: distinct columns, each a column of the dataset when its
/// columns are declared (inferred columns are known only once the files are read).
pub(super) fn primary_key(
    i: usize,
    options: &DatasetOptions,
    columns: Option<&[Column]>,
) -> Result<Vec<String>, CatalogError> {
    let key = format!("datasets[{i}].primary_key");
    checked_columns(&key, &options.primary_key, options, columns)?;
    Ok(options.primary_key.clone())
}

/// The foreign keys of dataset `i`, their own columns checked; the columns they reference
/// are filled in by [`resolve_references`] once every dataset is known.
pub(super) fn foreign_keys(
    i: usize,
    options: &DatasetOptions,
    columns: Option<&[Column]>,
) -> Result<Vec<ForeignKey>, CatalogError> {
    let mut keys = Vec::with_capacity(options.foreign_keys.len());
    for (j, foreign) in options.foreign_keys.iter().enumerate() {
        let key = |field: &str| format!("datasets[{i}].foreign_keys[{j}].{field}");
        if foreign.columns.is_empty() {
            return Err(CatalogError::invalid(key("columns"), "names no column"));
        }
        checked_columns(&key("columns"), &foreign.columns, options, columns)?;
        let references = DatasetId::parse(&foreign.references)
            .map_err(|m| CatalogError::invalid(key("references"), m))?;
        keys.push(ForeignKey {
            columns: foreign.columns.clone(),
            references,
            referenced_columns: foreign.referenced_columns.clone(),
        });
    }
    Ok(keys)
}

/// Marks the primary key's columns NOT NULL, as PostgreSQL does.
pub(super) fn not_null_keys(columns: &mut [Column], primary_key: &[String]) {
    for column in columns {
        if primary_key.contains(&column.name) {
            column.nullable = false;
        }
    }
}

/// Checks that every foreign key references a dataset with a primary key, and names the
/// referenced columns: given, they must be that key's columns (in any order); absent, they
/// are that key.
pub(super) fn resolve_references(
    datasets: &mut BTreeMap<DatasetId, Arc<Dataset>>,
    options: &[DatasetOptions],
) -> Result<(), CatalogError> {
    let primary_keys: BTreeMap<DatasetId, Vec<String>> = datasets
        .iter()
        .map(|(id, dataset)| (id.clone(), dataset.primary_key.clone()))
        .collect();
    for (i, declared) in options.iter().enumerate() {
        let Ok(id) = DatasetId::parse(&declared.id) else {
            continue;
        };
        let Some(dataset) = datasets.get_mut(&id) else {
            continue;
        };
        if dataset.foreign_keys.is_empty() {
            continue;
        }
        let dataset = Arc::make_mut(dataset);
        for (j, foreign) in dataset.foreign_keys.iter_mut().enumerate() {
            let key = |field: &str| format!("datasets[{i}].foreign_keys[{j}].{field}");
            let Some(target) = primary_keys.get(&foreign.references) else {
                return Err(CatalogError::invalid(
                    key("references"),
                    format!("no dataset `{}`", foreign.references),
                ));
            };
            if target.is_empty() {
                return Err(CatalogError::invalid(
                    key("references"),
                    format!(
                        "`{}` declares no primary_key for the key to reference",
                        foreign.references
                    ),
                ));
            }
            if foreign.referenced_columns.is_empty() {
                foreign.referenced_columns.clone_from(target);
            }
            let given: BTreeSet<&String> = foreign.referenced_columns.iter().collect();
            let wanted: BTreeSet<&String> = target.iter().collect();
            if given != wanted || given.len() != foreign.referenced_columns.len() {
                return Err(CatalogError::invalid(
                    key("referenced_columns"),
                    format!(
                        "must be the primary key of `{}`: {}",
                        foreign.references,
                        target.join(", ")
                    ),
                ));
            }
            if foreign.columns.len() != foreign.referenced_columns.len() {
                return Err(CatalogError::invalid(
                    key("columns"),
                    format!(
                        "names {} columns for the {} of the key it references",
                        foreign.columns.len(),
                        foreign.referenced_columns.len()
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks that `names` are distinct and, where the dataset's columns are declared, columns
/// of it (partition columns included).
fn checked_columns(
    key: &str,
    names: &[String],
    options: &DatasetOptions,
    columns: Option<&[Column]>,
) -> Result<(), CatalogError> {
    let mut seen = BTreeSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(CatalogError::invalid(key, format!("names `{name}` twice")));
        }
        if let Some(columns) = columns
            && !columns.iter().any(|c| &c.name == name)
            && !options.partition_columns.iter().any(|c| &c.name == name)
        {
            return Err(CatalogError::invalid(
                key,
                format!("`{name}` is not a column of the dataset"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::tests::example;
    use crate::{Catalog, DatasetId, ForeignKeyOptions, TollgateOptions};

    fn index_of(options: &TollgateOptions, id: &str) -> usize {
        options
            .datasets
            .iter()
            .position(|d| d.id == id)
            .expect("an example dataset")
    }

    fn error_of(options: &TollgateOptions) -> String {
        Catalog::from_options(options)
            .expect_err("invalid keys")
            .to_string()
    }

    #[test]
    fn keys_are_checked_and_referenced_columns_default_to_the_primary_key() {
        let options = example();
        let catalog = Catalog::from_options(&options).expect("valid");
        let dataset = |id: &str| {
            catalog
                .dataset(&DatasetId::parse(id).expect("an id"))
                .expect("a dataset")
        };
        let observations = dataset("weather.observations");
        assert_eq!(observations.primary_key, ["station_id", "observed_at"]);
        let key = &observations.foreign_keys[0];
        assert_eq!(key.references.to_string(), "weather.stations");
        assert_eq!(key.referenced_columns, ["station_id"]);
        // A primary key's declared columns are NOT NULL; the others keep what they declare.
        let trips = dataset("mobility.trips");
        let columns = trips.columns.as_ref().expect("declared");
        assert!(!columns[0].nullable);
        assert!(columns[1].nullable);
    }

    #[test]
    fn bad_keys_are_refused_naming_the_key() {
        let mut options = example();
        let trips = index_of(&options, "mobility.trips");
        options.datasets[trips].primary_key = vec!["trip".to_owned()];
        let error = error_of(&options);
        assert!(
            error.contains(&format!("datasets[{trips}].primary_key"))
                && error.contains("`trip` is not a column"),
            "{error}"
        );

        let mut options = example();
        options.datasets[trips].primary_key = vec!["trip_id".to_owned(), "trip_id".to_owned()];
        assert!(error_of(&options).contains("names `trip_id` twice"));

        let mut options = example();
        let observations = index_of(&options, "weather.observations");
        options.datasets[observations].foreign_keys[0].references = "weather.nothing".to_owned();
        let error = error_of(&options);
        assert!(
            error.contains(&format!(
                "datasets[{observations}].foreign_keys[0].references"
            )) && error.contains("no dataset `weather.nothing`"),
            "{error}"
        );

        let mut options = example();
        let stations = index_of(&options, "weather.stations");
        options.datasets[stations].primary_key.clear();
        assert!(error_of(&options).contains("declares no primary_key"));

        let mut options = example();
        options.datasets[observations].foreign_keys[0].referenced_columns = vec!["name".to_owned()];
        assert!(error_of(&options).contains("must be the primary key of `weather.stations`"));

        let mut options = example();
        options.datasets[trips].primary_key = vec!["trip_id".to_owned()];
        options.datasets[observations]
            .foreign_keys
            .push(ForeignKeyOptions {
                columns: vec!["station_id".to_owned(), "observed_at".to_owned()],
                references: "mobility.trips".to_owned(),
                referenced_columns: Vec::new(),
            });
        let error = error_of(&options);
        assert!(
            error.contains("foreign_keys[1].columns") && error.contains("names 2 columns"),
            "{error}"
        );
    }
}
