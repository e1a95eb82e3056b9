//! `config_toml`: configuration text through what `tollgate serve` does with it before it
//! touches a source: TOML into the options, then the catalog's validation. Either may
//! refuse the text; neither may panic.

use tollgate_catalog::{Catalog, TollgateOptions};

/// Parses and validates `data` as a configuration file.
pub(super) fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(options) = toml::from_str::<TollgateOptions>(text) {
        let _ = Catalog::from_options(&options);
    }
}
