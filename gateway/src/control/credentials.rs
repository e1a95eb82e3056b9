//! Channel logins: generated passwords (kept only as SCRAM verifiers) and the connection
//! details a ready event carries.

use serde::Serialize;
use tollgate_catalog::ChannelKind;
use tollgate_catalog::scram::{DEFAULT_ITERATIONS, Verifier};

use super::Endpoints;
use super::keys::random_text;

/// A login and its password, as given to the tenant once.
#[derive(Debug, Clone, Serialize)]
pub struct IssuedLogin {
    /// User name.
    pub login: String,
    /// Password; never stored.
    pub password: String,
    /// SCRAM-SHA-256 verifier of the password, which is stored.
    #[serde(skip)]
    pub verifier: String,
}

/// A new login `login` with a random password.
///
/// # Errors
/// If the system random generator fails.
pub fn issue(login: String) -> Result<IssuedLogin, ring::error::Unspecified> {
    let password = random_text(18)?;
    let verifier = Verifier::derive(&password, DEFAULT_ITERATIONS)
        .map_err(|_| ring::error::Unspecified)?
        .to_string();
    Ok(IssuedLogin {
        login,
        password,
        verifier,
    })
}

/// The login name of a channel's `generation`-th password: each rotation issues a new
/// login, so the old password keeps working beside the new one for the overlap (SCRAM
/// lets one login have one verifier).
pub fn login_name(channel: &str, generation: u32) -> String {
    format!("{channel}_{generation}")
}

/// How to connect to a channel.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionDetails {
    /// Host.
    pub host: String,
    /// Port of the channel's protocol.
    pub port: u16,
    /// Database name.
    pub database: String,
    /// `postgresql://…` URL with the login (the password is given beside it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgresql_url: Option<String>,
    /// `jdbc:postgresql://…` URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jdbc_url: Option<String>,
    /// `grpc://` or `grpc+tls://` URI of Flight SQL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flight_uri: Option<String>,
    /// Base URL of the Web-API (`…/v1/data/{schema}/{table}`, `…/v1/statements`), or of
    /// the Delta Sharing endpoint of a `file` channel.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// The connection details of a `kind` channel for `login`; `None` if its listener is off.
pub fn connection_details(
    endpoints: &Endpoints,
    kind: ChannelKind,
    login: &str,
) -> Option<ConnectionDetails> {
    let host = &endpoints.host;
    let database = &endpoints.database;
    match kind {
        ChannelKind::Postgres => {
            let port = endpoints.pg_port;
            Some(ConnectionDetails {
                host: host.clone(),
                port,
                database: database.clone(),
                postgresql_url: Some(format!("postgresql://{login}@{host}:{port}/{database}")),
                jdbc_url: Some(format!(
                    "jdbc:postgresql://{host}:{port}/{database}?user={login}"
                )),
                flight_uri: None,
                base_url: None,
            })
        }
        ChannelKind::Flight => {
            let port = endpoints.flight_port?;
            let scheme = if endpoints.flight_tls {
                "grpc+tls"
            } else {
                "grpc"
            };
            Some(ConnectionDetails {
                host: host.clone(),
                port,
                database: database.clone(),
                postgresql_url: None,
                jdbc_url: None,
                flight_uri: Some(format!("{scheme}://{host}:{port}")),
                base_url: None,
            })
        }
        // Its clients connect to the broker, whose details come with the broker user.
        ChannelKind::Nats | ChannelKind::Mqtt => None,
        ChannelKind::Http | ChannelKind::File => {
            let mut base = endpoints.http_base.clone()?;
            if kind == ChannelKind::File {
                base.push_str("/delta-sharing");
            }
            let port = url::Url::parse(&base).ok()?.port_or_known_default()?;
            Some(ConnectionDetails {
                host: host.clone(),
                port,
                database: database.clone(),
                postgresql_url: None,
                jdbc_url: None,
                flight_uri: None,
                base_url: Some(base),
            })
        }
    }
}

/// The Web-API and Delta Sharing bearer token of a login:
/// `Authorization: Bearer <login>.<password>`. Generated passwords hold no `.`, so the token
/// splits at its last one.
pub fn bearer_token(login: &str, password: &str) -> String {
    format!("{login}.{password}")
}

/// Adds what clients of a channel with a `base_url` need beside it: the bearer token and,
/// for a `file` channel, the contents of its Delta Sharing profile file.
pub fn add_token(connection: &mut serde_json::Value, login: &str, password: &str) {
    let Some(connection) = connection.as_object_mut() else {
        return;
    };
    let Some(base) = connection
        .get("base_url")
        .and_then(|b| b.as_str())
        .map(str::to_owned)
    else {
        return;
    };
    let token = bearer_token(login, password);
    if base.ends_with("/delta-sharing") {
        connection.insert(
            "profile".to_owned(),
            serde_json::json!({
                "shareCredentialsVersion": 1,
                "endpoint": base,
                "bearerToken": token,
            }),
        );
    }
    connection.insert("token".to_owned(), serde_json::Value::String(token));
}
