//! The shape of the control plane's keys in `tollgate.toml`: where its state lives, how its
//! events are delivered, and channels declared by hand.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::grant_columns::GrantColumnOptions;
use crate::units::HumanDuration;

/// Which database keeps the control plane's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StateStoreKind {
    /// A SQLite file on the gateway's disk (`control.path`): one gateway.
    Sqlite,
    /// A PostgreSQL database (`control.postgres`), shared by several gateways.
    Postgres,
}

/// The control plane: its state store, the REST API's limits and event delivery.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ControlOptions {
    /// Which database keeps tenants, entitlements, channels, orders, keys and events.
    pub store: StateStoreKind,
    /// The SQLite file, relative to the configuration file.
    pub path: PathBuf,
    /// PostgreSQL connection string when `store = "postgres"`.
    pub postgres: Option<String>,
    /// How often each gateway looks for changes made by any gateway sharing the store.
    pub poll_interval: HumanDuration,
    /// How long a rotated channel password keeps working beside the new one.
    pub rotation_overlap: HumanDuration,
    /// API keys declared here (`tollgate api-key` makes one); more are created through the
    /// admin API.
    pub api_keys: Vec<ApiKeyOptions>,
    /// Requests per second one API key may send (a burst of twice as many).
    pub rate_limit: f64,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Host name given to tenants in connection details; the listener's address if absent.
    pub public_host: Option<String>,
    /// NATS server for ready events (`nats://127.0.0.1:4222`); absent means no NATS delivery.
    pub nats_url: Option<String>,
    /// Subject prefix tenants' event subjects must start with; the tenant id follows it.
    pub nats_subject_prefix: String,
    /// The directory `file` channels' Parquet files are written to, relative to the
    /// configuration file, unless `delivery_s3` names a bucket.
    pub delivery_path: PathBuf,
    /// An S3 bucket `file` channels' files are written to instead of `delivery_path`;
    /// clients then read them by presigned S3 URLs.
    pub delivery_s3: Option<S3DeliveryOptions>,
    /// How often `file` channels are refreshed: a dataset whose files changed (or that is
    /// read live from a database) gets a new table version. `0s` refreshes only on request.
    pub file_refresh_interval: HumanDuration,
    /// How long a file URL handed out by the Delta Sharing endpoint stays valid.
    pub file_url_ttl: HumanDuration,
    /// Base64 key (32 bytes or more) signing file URLs; gateways sharing a store need the
    /// same one. Absent: a random key, so URLs work only on the gateway that gave them.
    pub signing_key: Option<String>,
    /// The NATS server `nats` channels push to; absent means no `nats` channels.
    pub nats_push: Option<NatsPushOptions>,
    /// The MQTT broker `mqtt` channels publish to; absent means no `mqtt` channels.
    pub mqtt_push: Option<MqttPushOptions>,
}

impl Default for ControlOptions {
    fn default() -> Self {
        Self {
            store: StateStoreKind::Sqlite,
            path: PathBuf::from("tollgate-control.db"),
            postgres: None,
            poll_interval: HumanDuration(Duration::from_millis(200)),
            rotation_overlap: HumanDuration(Duration::from_secs(24 * 3600)),
            api_keys: Vec::new(),
            rate_limit: 20.0,
            max_body_bytes: 64 * 1024,
            public_host: None,
            nats_url: None,
            nats_subject_prefix: "tollgate.events".to_owned(),
            delivery_path: PathBuf::from("tollgate-delivery"),
            delivery_s3: None,
            file_refresh_interval: HumanDuration(Duration::from_secs(600)),
            file_url_ttl: HumanDuration(Duration::from_secs(3600)),
            signing_key: None,
            nats_push: None,
            mqtt_push: None,
        }
    }
}

/// The NATS server (in operator mode, with a full account resolver and JetStream) that
/// `nats` channels push to. Each tenant gets an account of its own, signed by the operator
/// key, holding one stream; each channel login a user of that account that may read it.
/// `tollgate nats-operator` makes the keys and the server's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NatsPushOptions {
    /// Where the gateway connects (`nats://127.0.0.1:4222`).
    pub url: String,
    /// The URL given to tenants; `url` if absent.
    #[serde(default)]
    pub public_url: Option<String>,
    /// The operator's seed (`SO…`): signs the tenants' accounts.
    pub operator_seed: String,
    /// The system account's seed (`SA…`): the gateway signs itself a user of it to send the
    /// server account updates.
    pub system_account_seed: String,
    /// Rows per message at most.
    #[serde(default = "default_message_rows")]
    pub message_rows: usize,
    /// How often datasets are looked at for new files.
    #[serde(default = "default_push_poll")]
    pub poll_interval: HumanDuration,
    /// How long the stream remembers a message id, so a message published again within it
    /// (a retry after a crash) is stored once. A tenant's stream keeps messages as its
    /// profile says (`push_retention`, `push_max_bytes`).
    #[serde(default = "default_duplicate_window")]
    pub duplicate_window: HumanDuration,
}

/// The MQTT broker (Mosquitto with its dynamic security plugin) that `mqtt` channels
/// publish to. The gateway manages the broker's clients and roles through the plugin's
/// control topic: a role per tenant that may subscribe to `tollgate/<tenant>/#` only, a
/// client per channel login (its password the login's), removed when the login goes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MqttPushOptions {
    /// Broker host.
    pub host: String,
    /// Broker port.
    #[serde(default = "default_mqtt_port")]
    pub port: u16,
    /// The `mqtt://host:port` URL given to tenants; the broker's own if absent.
    #[serde(default)]
    pub public_url: Option<String>,
    /// A dynamic security client allowed to send the plugin's commands.
    pub admin_username: String,
    /// Its password.
    pub admin_password: String,
    /// Rows per message at most.
    #[serde(default = "default_mqtt_message_rows")]
    pub message_rows: usize,
    /// How often datasets are looked at for new files.
    #[serde(default = "default_push_poll")]
    pub poll_interval: HumanDuration,
}

fn default_mqtt_port() -> u16 {
    1883
}

fn default_mqtt_message_rows() -> usize {
    1_000
}

fn default_message_rows() -> usize {
    10_000
}

fn default_push_poll() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}

fn default_duplicate_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(24 * 3600))
}

/// The S3 bucket (or S3-compatible store) of `file` channels' files.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3DeliveryOptions {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix under which channels' files are written.
    #[serde(default)]
    pub prefix: String,
    /// AWS region (default `us-east-1`, or `AWS_REGION`).
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint of an S3-compatible store, e.g. `http://127.0.0.1:9000`; `http://`
    /// endpoints are allowed.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Access key id; with `secret_access_key`, overrides the AWS chain. Presigned URLs
    /// carry the signature of these credentials.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret access key.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// Session token of temporary credentials.
    #[serde(default)]
    pub session_token: Option<String>,
}

/// An API key declared in the configuration: `tg_<id>.<secret>`, of which only the SHA-256
/// of the secret is kept.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyOptions {
    /// The public part of the key.
    pub id: String,
    /// The tenant it acts for; absent means an admin (provider) key.
    #[serde(default)]
    pub tenant: Option<String>,
    /// SHA-256 of the secret part, hex.
    pub secret_sha256: String,
}

/// How a channel's data goes out.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Deserialize,
    Serialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// The Postgres wire protocol (psql, JDBC, ODBC, Python drivers).
    Postgres,
    /// Arrow Flight SQL (ADBC, pyarrow, Spark).
    Flight,
    /// The Web-API on the HTTP listener: resources and statements as JSON, CSV, Arrow.
    Http,
    /// Parquet files in the delivery store, shared by the Delta Sharing protocol.
    File,
    /// Rows pushed to a NATS JetStream stream of the tenant's own, as they land.
    Nats,
    /// Rows published to an MQTT broker's topic of the tenant's own at QoS 1, as they land.
    Mqtt,
}

impl ChannelKind {
    /// The kind's name as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Flight => "flight",
            Self::Http => "http",
            Self::File => "file",
            Self::Nats => "nats",
            Self::Mqtt => "mqtt",
        }
    }

    /// Whether the gateway pushes the channel's rows to a broker (rather than clients
    /// pulling them).
    pub fn is_push(self) -> bool {
        matches!(self, Self::Nats | Self::Mqtt)
    }
}

/// How a push channel's messages carry rows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageFormat {
    /// JSON lines: one JSON object per row (`application/x-ndjson`).
    #[default]
    Json,
    /// One Arrow IPC stream per message (`application/vnd.apache.arrow.stream`).
    Arrow,
}

impl MessageFormat {
    /// The messages' content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/x-ndjson",
            Self::Arrow => "application/vnd.apache.arrow.stream",
        }
    }
}

/// A tenant's channel: its own subscription to entitled datasets, narrowed by an output
/// model. The channel's logins see exactly these datasets as narrowed here.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelOptions {
    /// Channel id.
    pub id: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// How its data goes out.
    pub kind: ChannelKind,
    /// Name of an entry of `profiles`; absent means the tenant's own.
    #[serde(default)]
    pub profile: Option<String>,
    /// The datasets it serves, each narrowing the tenant's entitlement.
    pub datasets: Vec<ChannelDatasetOptions>,
}

/// One dataset of a channel: which of the entitled columns, and which of the entitled rows.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelDatasetOptions {
    /// Dataset id; the tenant must be entitled to it.
    pub dataset: String,
    /// Columns in order, over the entitled columns (names or expressions); absent means all.
    #[serde(default)]
    pub columns: Option<Vec<GrantColumnOptions>>,
    /// A predicate over the entitled columns, applied after the entitlement's own filter.
    #[serde(default)]
    pub row_filter: Option<String>,
}
