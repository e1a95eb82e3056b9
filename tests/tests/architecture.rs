//! The dependency direction is the architecture: gateway → flight → planner → catalog, and
//! gateway → planner. No crate may depend on one to its left.

use std::path::Path;

/// Crates in dependency order: each may depend only on crates after it.
const LAYERS: [&str; 4] = ["gateway", "flight", "planner", "catalog"];

fn dependencies(krate: &str) -> Option<String> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(krate)
        .join("Cargo.toml");
    std::fs::read_to_string(manifest).ok()
}

#[test]
fn dependencies_point_one_way() {
    for (position, krate) in LAYERS.iter().enumerate() {
        let Some(manifest) = dependencies(krate) else {
            continue;
        };
        for upper in &LAYERS[..position] {
            let name = format!("tollgate-{upper}");
            assert!(
                !manifest.contains(&name) && !manifest.contains(&format!("../{upper}\"")),
                "{krate}/Cargo.toml depends on {upper}: dependencies must point gateway -> flight -> planner -> catalog"
            );
        }
    }
}

#[test]
fn the_planner_knows_no_wire_protocol_and_the_catalog_no_engine() {
    let planner = dependencies("planner").expect("planner/Cargo.toml");
    for protocol in ["pgwire", "arrow-flight", "tonic", "axum"] {
        assert!(
            !planner.contains(&format!("\n{protocol}")),
            "the planner depends on {protocol}"
        );
    }
    let catalog = dependencies("catalog").expect("catalog/Cargo.toml");
    assert!(
        !catalog.contains("datafusion"),
        "the catalog depends on the query engine"
    );
}
