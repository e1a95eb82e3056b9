//! Session parameters a Postgres client can `SET` and `SHOW`, kept per connection.
//!
//! They belong to the front end: setting one never changes engine configuration, and engine
//! settings (`datafusion.*`) can be neither set nor shown.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use pgwire::error::PgWireError;
use tollgate_planner::session_parameters::{ParameterRefused, SessionParameters};

use super::errors::user_error;

/// Parameters PostgreSQL reports to clients with `ParameterStatus` when they change.
const REPORTED: [&str; 13] = [
    "application_name",
    "client_encoding",
    "DateStyle",
    "default_transaction_read_only",
    "in_hot_standby",
    "integer_datetimes",
    "IntervalStyle",
    "is_superuser",
    "server_encoding",
    "server_version",
    "session_authorization",
    "standard_conforming_strings",
    "TimeZone",
];

/// Parameters whose value a client may not change.
const READ_ONLY: [&str; 9] = [
    "lc_collate",
    "lc_ctype",
    "server_version",
    "server_version_num",
    "server_encoding",
    "integer_datetimes",
    "is_superuser",
    "max_identifier_length",
    "in_hot_standby",
];

/// The defaults of every known parameter, by canonical name.
fn defaults(user: &str, server_version: &str) -> BTreeMap<String, String> {
    let pairs = [
        ("application_name", ""),
        ("bytea_output", "hex"),
        ("client_encoding", "UTF8"),
        ("client_min_messages", "notice"),
        ("DateStyle", "ISO, MDY"),
        ("default_transaction_isolation", "read committed"),
        ("default_transaction_read_only", "on"),
        ("extra_float_digits", "1"),
        ("in_hot_standby", "off"),
        ("integer_datetimes", "on"),
        ("IntervalStyle", "postgres"),
        ("is_superuser", "off"),
        ("jit", "off"),
        ("lc_collate", "C"),
        ("lc_ctype", "C"),
        ("lc_messages", "C"),
        ("lc_monetary", "C"),
        ("lc_numeric", "C"),
        ("lc_time", "C"),
        ("max_identifier_length", "63"),
        ("search_path", "\"$user\", public"),
        ("server_encoding", "UTF8"),
        ("standard_conforming_strings", "on"),
        ("statement_timeout", "0"),
        ("TimeZone", "UTC"),
        ("transaction_isolation", "read committed"),
        ("transaction_read_only", "on"),
    ];
    let mut map: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    map.insert("server_version".to_owned(), server_version.to_owned());
    map.insert(
        "server_version_num".to_owned(),
        server_version_num(server_version),
    );
    map.insert("session_authorization".to_owned(), user.to_owned());
    map
}

fn is_engine_setting(name: &str) -> bool {
    name.to_ascii_lowercase().starts_with("datafusion.")
}

/// A refused parameter as PostgreSQL reports it: 42704 unknown, 55P02 read-only, 42501
/// engine settings.
pub fn refusal_error(refusal: ParameterRefused) -> PgWireError {
    let code = match refusal {
        ParameterRefused::Unknown(_) => "42704",
        ParameterRefused::ReadOnly(_) => "55P02",
        ParameterRefused::EngineSetting(_) => "42501",
        ParameterRefused::InvalidValue(..) => "22023",
    };
    user_error(code, refusal.to_string())
}

/// One connection's parameters as the engine's `current_setting`/`set_config` reach them.
#[derive(Debug, Clone, Default)]
pub struct SharedSettings(Arc<Mutex<Option<SessionSettings>>>);

impl SharedSettings {
    /// Runs `f` on the parameters, once the connection has logged in.
    pub fn with<T>(&self, f: impl FnOnce(&mut SessionSettings) -> T) -> Option<T> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_mut()
            .map(f)
    }

    /// Replaces the parameters (at login).
    pub fn replace(&self, settings: SessionSettings) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(settings);
    }
}

impl SessionParameters for SharedSettings {
    fn get(&self, name: &str) -> Option<String> {
        self.with(|settings| settings.show(name).ok().map(|(_, value)| value))
            .flatten()
    }

    fn set(&self, name: &str, value: &str) -> Result<(), ParameterRefused> {
        self.with(|settings| settings.set(name, value.to_owned()).map(|_| ()))
            .unwrap_or_else(|| Err(ParameterRefused::Unknown(name.to_owned())))
    }
}

fn server_version_num(version: &str) -> String {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    (major * 10_000 + minor).to_string()
}

/// `value` as PostgreSQL spells it for parameter `canonical`: the encoding names of UTF-8
/// (`utf-8`, `utf8`, `unicode`, any case) as `UTF8`, the only encoding served.
///
/// # Errors
/// [`ParameterRefused::InvalidValue`] for another client encoding.
fn normalised(canonical: &str, value: String) -> Result<String, ParameterRefused> {
    if canonical != "client_encoding" {
        return Ok(value);
    }
    let name: String = value
        .chars()
        .filter(|c| !matches!(c, '-' | '_'))
        .collect::<String>()
        .to_ascii_lowercase();
    match name.as_str() {
        "utf8" | "unicode" => Ok("UTF8".to_owned()),
        _ => Err(ParameterRefused::InvalidValue(canonical.to_owned(), value)),
    }
}

/// One connection's parameters.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    values: BTreeMap<String, String>,
    defaults: BTreeMap<String, String>,
}

impl SessionSettings {
    /// Defaults for `user`, overridden by the startup packet's options.
    pub fn new(user: &str, server_version: &str, startup: &BTreeMap<String, String>) -> Self {
        let defaults = defaults(user, server_version);
        let mut settings = Self {
            values: defaults.clone(),
            defaults,
        };
        for (name, value) in startup {
            // A value the server cannot take keeps the default, which the client is told.
            if let Some(canonical) = settings.canonical(name)
                && !READ_ONLY.contains(&canonical.as_str())
                && let Ok(value) = normalised(&canonical, value.clone())
            {
                settings.values.insert(canonical, value);
            }
        }
        settings
    }

    /// The parameters sent at start-up.
    pub fn reported(&self) -> impl Iterator<Item = (&str, &str)> {
        REPORTED
            .iter()
            .filter_map(|name| self.values.get(*name).map(|value| (*name, value.as_str())))
    }

    fn canonical(&self, name: &str) -> Option<String> {
        let name = if name.eq_ignore_ascii_case("timezone") {
            "TimeZone"
        } else {
            name
        };
        self.defaults
            .keys()
            .find(|known| known.eq_ignore_ascii_case(name))
            .cloned()
    }

    /// `SET name = value`. Returns the canonical name and whether clients must be told
    /// (`ParameterStatus`).
    ///
    /// # Errors
    /// Engine settings, read-only and unknown parameters.
    pub fn set(&mut self, name: &str, value: String) -> Result<(String, bool), ParameterRefused> {
        if is_engine_setting(name) {
            return Err(ParameterRefused::EngineSetting(name.to_owned()));
        }
        if name.contains('.') {
            // Custom (extension-style) parameters are accepted, as PostgreSQL does.
            self.values.insert(name.to_owned(), value);
            return Ok((name.to_owned(), false));
        }
        let canonical = self
            .canonical(name)
            .ok_or_else(|| ParameterRefused::Unknown(name.to_owned()))?;
        if READ_ONLY.contains(&canonical.as_str()) {
            return Err(ParameterRefused::ReadOnly(canonical));
        }
        let reported = REPORTED.contains(&canonical.as_str());
        let value = normalised(&canonical, value)?;
        self.values.insert(canonical.clone(), value);
        Ok((canonical, reported))
    }

    /// `RESET name` (or `SET name TO DEFAULT`).
    ///
    /// # Errors
    /// As [`SessionSettings::set`].
    pub fn reset(&mut self, name: &str) -> Result<(String, bool), ParameterRefused> {
        let value = self
            .canonical(name)
            .and_then(|c| self.defaults.get(&c).cloned())
            .unwrap_or_default();
        self.set(name, value)
    }

    /// `RESET ALL` / `DISCARD ALL`.
    pub fn reset_all(&mut self) {
        self.values = self.defaults.clone();
    }

    /// `SHOW name`.
    ///
    /// # Errors
    /// Unknown parameters (engine settings included).
    pub fn show(&self, name: &str) -> Result<(String, String), ParameterRefused> {
        let found = if name.contains('.') {
            self.values
                .get_key_value(name)
                .filter(|_| !is_engine_setting(name))
        } else {
            self.canonical(name)
                .and_then(|c| self.values.get_key_value(&c))
        };
        found
            .map(|(k, v)| (k.clone(), v.clone()))
            .ok_or_else(|| ParameterRefused::Unknown(name.to_owned()))
    }

    /// `SHOW ALL`: every parameter, never engine settings.
    pub fn all(&self) -> impl Iterator<Item = (&String, &String)> {
        self.values.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> SessionSettings {
        let startup = BTreeMap::from([
            ("application_name".to_owned(), "psql".to_owned()),
            ("user".to_owned(), "acme".to_owned()),
        ]);
        SessionSettings::new("acme", "16.6", &startup)
    }

    #[test]
    fn startup_options_and_set_are_reflected_by_show() {
        let mut s = settings();
        assert_eq!(s.show("application_name").expect("known").1, "psql");
        assert_eq!(
            s.set("timezone", "Europe/Paris".to_owned())
                .expect("settable"),
            ("TimeZone".to_owned(), true)
        );
        assert_eq!(s.show("TIMEZONE").expect("known").1, "Europe/Paris");
        s.reset_all();
        assert_eq!(s.show("TimeZone").expect("known").1, "UTC");
        assert_eq!(s.show("server_version_num").expect("known").1, "160006");
    }

    #[test]
    fn client_encodings_are_spelled_as_postgresql_does_and_only_utf8_is_taken() {
        let startup = BTreeMap::from([("client_encoding".to_owned(), "utf-8".to_owned())]);
        let mut s = SessionSettings::new("acme", "16.6", &startup);
        assert!(s.reported().any(|pair| pair == ("client_encoding", "UTF8")));
        s.set("client_encoding", "Unicode".to_owned())
            .expect("UTF-8 by another name");
        assert_eq!(s.show("client_encoding").expect("known").1, "UTF8");
        assert!(matches!(
            s.set("client_encoding", "LATIN1".to_owned()),
            Err(ParameterRefused::InvalidValue(..))
        ));
        let latin = BTreeMap::from([("client_encoding".to_owned(), "LATIN1".to_owned())]);
        let s = SessionSettings::new("acme", "16.6", &latin);
        assert_eq!(s.show("client_encoding").expect("known").1, "UTF8");
    }

    #[test]
    fn engine_settings_can_be_neither_set_nor_shown() {
        let mut s = settings();
        assert!(
            s.set("datafusion.execution.target_partitions", "1".to_owned())
                .is_err()
        );
        assert!(s.show("datafusion.execution.target_partitions").is_err());
        assert!(s.all().all(|(k, _)| !k.starts_with("datafusion")));
        assert!(s.set("no_such_thing", "1".to_owned()).is_err());
        assert!(s.set("server_version", "1".to_owned()).is_err());
    }
}
