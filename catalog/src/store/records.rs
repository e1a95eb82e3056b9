//! The typed documents of the state store, one struct per kind.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::control_options::{ChannelDatasetOptions, ChannelKind, MessageFormat};
use crate::options::{DatasetOptions, GrantColumnOptions, ProfileOptions};

/// Document kind of [`TenantRecord`]s.
pub const TENANT: &str = "tenant";
/// Document kind of [`ApiKeyRecord`]s.
pub const API_KEY: &str = "api_key";
/// Document kind of [`EntitlementRecord`]s.
pub const ENTITLEMENT: &str = "entitlement";
/// Document kind of [`ChannelRecord`]s.
pub const CHANNEL: &str = "channel";
/// Document kind of [`CredentialRecord`]s.
pub const CREDENTIAL: &str = "credential";
/// Document kind of [`OrderRecord`]s.
pub const ORDER: &str = "order";
/// Document kind of [`SecretRecord`]s.
pub const SECRET: &str = "secret";
/// Document kind of [`DeliveryRecord`]s.
pub const DELIVERY: &str = "delivery";
/// Document kind of the delivery cursor: the last event scheduled for delivery.
pub const DELIVERY_CURSOR: &str = "delivery_cursor";
/// Document kind of [`DatasetRecord`]s.
pub const DATASET: &str = "dataset";
/// Document kind of [`ProfileRecord`]s.
pub const PROFILE: &str = "profile";
/// Kind of [`SharedTableRecord`]s, by `channel/dataset/version`.
pub const SHARED_TABLE: &str = "shared_table";
/// Kind of [`ConsoleSessionRecord`]s, by the SHA-256 of the session's cookie.
pub const CONSOLE_SESSION: &str = "console_session";

/// A web console session: signed in with an API key or a login, which is checked again on
/// every request (a revoked key or login, or a login's changed password, ends its sessions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSessionRecord {
    /// The id of the API key it was opened with; empty for a session of a login.
    #[serde(default)]
    pub key: String,
    /// The login it was opened with instead of a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login: Option<ConsoleLogin>,
    /// The token unsafe requests carry in `X-CSRF-Token`.
    pub csrf: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub expires_at: DateTime<Utc>,
}

/// The login (a channel's, or the tenant's own) a console session was opened with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleLogin {
    /// The login's user name.
    pub user: String,
    /// SHA-256 (hex) of the login's SCRAM verifier when the session opened: a rotated
    /// password has another verifier, and ends the session.
    pub verifier_sha256: String,
}

/// A dataset registered through the admin API; one with the id of a dataset of the
/// configuration file replaces it (changed descriptions or prices).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// The dataset, as `[[datasets]]` declares one.
    pub dataset: DatasetOptions,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// A profile set through the admin API; one named as a profile of the configuration file
/// replaces it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRecord {
    /// Profile name.
    pub name: String,
    /// Its limits, as `[profiles.NAME]` declares them.
    pub profile: ProfileOptions,
    /// When it was last written.
    pub updated_at: DateTime<Utc>,
}

/// A tenant created through the admin API (or a configured one, suspended through it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TenantRecord {
    /// Tenant id.
    pub id: String,
    /// Profile name.
    pub profile: String,
    /// Attributes row filters may name as `$attribute`.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Web origins whose pages may call the Web-API with its credentials.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// A suspended tenant's logins, keys and channels are refused everywhere.
    #[serde(default)]
    pub suspended: bool,
    /// Where its events are posted.
    #[serde(default)]
    pub webhook: Option<WebhookTarget>,
    /// The NATS subject its events are published on.
    #[serde(default)]
    pub nats_subject: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A tenant's webhook: events are POSTed to `url`, signed with `secret`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookTarget {
    /// `http://` or `https://` URL.
    pub url: String,
    /// HMAC-SHA256 key of the `Tollgate-Signature` header.
    pub secret: String,
}

/// An API key: a tenant's, or the provider's (admin) when `tenant` is `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKeyRecord {
    /// The public part of the key, also its document id.
    pub id: String,
    /// The tenant it acts for; `None` for an admin key.
    pub tenant: Option<String>,
    /// SHA-256 of the secret part, hex.
    pub secret_sha256: String,
    /// A revoked key is refused.
    #[serde(default)]
    pub revoked: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// What a tenant may subscribe to of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EntitlementRecord {
    /// Tenant id.
    pub tenant: String,
    /// Dataset id.
    pub dataset: String,
    /// Columns in order, over the dataset's columns; absent means all.
    #[serde(default)]
    pub columns: Option<Vec<GrantColumnOptions>>,
    /// Row filter over the dataset's columns.
    #[serde(default)]
    pub row_filter: Option<String>,
}

impl EntitlementRecord {
    /// The document id: tenant and dataset.
    pub fn key(tenant: &str, dataset: &str) -> String {
        format!("{tenant}/{dataset}")
    }
}

/// What a tenant asks for when it orders a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelRequest {
    /// How its data goes out.
    pub kind: ChannelKind,
    /// Profile name; absent means the tenant's.
    #[serde(default)]
    pub profile: Option<String>,
    /// The datasets and their output model.
    pub datasets: Vec<ChannelDatasetOptions>,
    /// How a push channel's messages carry rows; only for push kinds (`nats`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_format: Option<MessageFormat>,
}

/// Whether a channel serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelState {
    /// Its logins work.
    Active,
    /// Deleted: its logins are refused and its sessions ended; kept for the usage history.
    Revoked,
}

/// A tenant's channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelRecord {
    /// Channel id.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// What was ordered.
    pub request: ChannelRequest,
    /// Whether it serves.
    pub state: ChannelState,
    /// The order that made it.
    pub order: String,
    /// When it became ready.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    #[serde(default)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A login of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialRecord {
    /// User name; also the document id.
    pub login: String,
    /// Tenant id.
    pub tenant: String,
    /// Channel id.
    pub channel: String,
    /// SCRAM-SHA-256 verifier of its password (the password itself is never stored).
    pub scram_verifier: String,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops working (set when a newer password replaces it).
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderState {
    /// Accepted, not yet picked up.
    Pending,
    /// A gateway is provisioning it.
    Provisioning,
    /// The channel serves; the ready event was sent.
    Ready,
    /// It could not be provisioned; `reason` says why.
    Failed,
}

/// An order of a channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderRecord {
    /// Order id.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// What was ordered.
    pub request: ChannelRequest,
    /// Where it is.
    pub state: OrderState,
    /// Why it failed.
    #[serde(default)]
    pub reason: Option<String>,
    /// The channel it made, once ready.
    #[serde(default)]
    pub channel: Option<String>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Provisioning attempts so far.
    #[serde(default)]
    pub attempts: u32,
    /// While provisioning: until when the gateway that claimed it holds it.
    #[serde(default)]
    pub lease_until: Option<DateTime<Utc>>,
}

/// A new password, kept only until the event announcing it is first read; afterwards only
/// its SCRAM verifier exists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// The login it belongs to; also the document id.
    pub login: String,
    /// The password.
    pub password: String,
}

/// The delivery of one event to one target (webhook or NATS), with its attempts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// `<event seq>/<target>`.
    pub id: String,
    /// Tenant id.
    pub tenant: String,
    /// The event's position.
    pub event: i64,
    /// `webhook` or `nats`.
    pub target: String,
    /// Attempts so far.
    pub attempts: u32,
    /// What the last attempt got (HTTP status or error).
    #[serde(default)]
    pub last_result: Option<String>,
    /// Delivered?
    pub delivered: bool,
    /// Given up after too many attempts?
    #[serde(default)]
    pub abandoned: bool,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
}

/// One version of a dataset of a `file` channel: the Parquet files its output model was
/// written to, as the Delta Sharing endpoint hands them out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedTableRecord {
    /// The channel.
    pub channel: String,
    /// The tenant it belongs to.
    pub tenant: String,
    /// Dataset id, `schema.table`.
    pub dataset: String,
    /// Table version, from 1.
    pub version: u64,
    /// Delta's `schemaString` of the table (partition columns included).
    pub schema_string: String,
    /// The partition columns, whose values are in each file's `partition_values` rather
    /// than in the file.
    #[serde(default)]
    pub partition_columns: Vec<String>,
    /// The files, relative to the delivery store's root.
    pub files: Vec<SharedFile>,
    /// When this version was written.
    pub created_at: DateTime<Utc>,
    /// What the dataset's source looked like when it was read (its files, bytes and newest
    /// file), to tell whether a scheduled refresh has anything new; `None` for a source read
    /// live from a database.
    #[serde(default)]
    pub source: Option<String>,
}

impl SharedTableRecord {
    /// The record id of `version` of `dataset` in `channel`.
    pub fn id(channel: &str, dataset: &str, version: u64) -> String {
        format!("{channel}/{dataset}/{version:010}")
    }
}

/// A Parquet file of a shared table version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedFile {
    /// Path relative to the delivery store's root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Rows it holds.
    pub rows: u64,
    /// Delta's per-column statistics of its rows: `minValues`, `maxValues`, `nullCount`.
    #[serde(default)]
    pub stats: serde_json::Value,
    /// The value of each partition column for every row of the file (`None`: null).
    #[serde(default)]
    pub partition_values: BTreeMap<String, Option<String>>,
}
