//! The state of push channels: each tenant's broker account, each login's broker user, how
//! far each channel's datasets have been pushed, and the versions the provider published.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Kind of [`PushAccountRecord`]s, by tenant.
pub const PUSH_ACCOUNT: &str = "push_account";
/// Kind of [`PushUserRecord`]s, by login.
pub const PUSH_USER: &str = "push_user";
/// Kind of [`PushCursorRecord`]s, by `channel/dataset`.
pub const PUSH_CURSOR: &str = "push_cursor";

/// A tenant's account on the NATS server: its key pair, which signs its users. Every
/// gateway sharing the store signs with the same one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAccountRecord {
    /// Tenant id.
    pub tenant: String,
    /// The account's public key (`A…`).
    pub public_key: String,
    /// The account's seed (`SA…`).
    pub seed: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// The broker user of a channel login. Kept after the login is gone: the account revokes
/// users whose login no longer serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushUserRecord {
    /// The channel login it belongs to.
    pub login: String,
    /// Tenant id.
    pub tenant: String,
    /// Channel id.
    pub channel: String,
    /// The user's public key (`U…`); its seed was given to the tenant only.
    pub public_key: String,
    /// When its credentials were signed (their `iat`).
    pub issued_at: DateTime<Utc>,
}

/// How far a channel's dataset has been pushed: the files sent whole, and the one being
/// sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushCursorRecord {
    /// Channel id.
    pub channel: String,
    /// Tenant id.
    pub tenant: String,
    /// Dataset id.
    pub dataset: String,
    /// Files (and whole-dataset versions: `@snapshot`, `@publication/<n>`) pushed whole,
    /// in the order they were pushed.
    pub delivered: Vec<PushedFile>,
    /// The file being pushed and how many attempts at it ended without finishing (each
    /// attempt's usage record has an id of its own).
    #[serde(default)]
    pub pending: Option<PendingFile>,
    /// For a replica table with a watermark column: the newest value whose rows were
    /// pushed (rows above it are new).
    #[serde(default)]
    pub watermark: Option<String>,
    /// Slices of new replica rows pushed (each a dataset version, not kept in
    /// `delivered`).
    #[serde(default)]
    pub ranges: u64,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
}

impl PushCursorRecord {
    /// The document id of `channel`'s cursor on `dataset`.
    pub fn id(channel: &str, dataset: &str) -> String {
        format!("{channel}/{dataset}")
    }

    /// The dataset version the next push makes: 1 for the first, and so on.
    pub fn next_version(&self) -> u64 {
        self.delivered.len() as u64 + self.ranges + 1
    }
}

/// A file pushed whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushedFile {
    /// Its path in the dataset's store.
    pub path: String,
    /// Its size when it was read.
    pub size: u64,
    /// Rows pushed from it (after the channel's filter).
    pub rows: u64,
    /// Messages they went out in.
    pub messages: u64,
    /// The dataset version it made: 1 for the first file pushed, and so on.
    pub version: u64,
}

/// A file whose push has begun.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingFile {
    /// Its path in the dataset's store.
    pub path: String,
    /// Attempts that ended without finishing.
    pub failed_attempts: u32,
}

/// Kind of [`PushPublicationRecord`]s, by `dataset/number`.
pub const PUSH_PUBLICATION: &str = "push_publication";

/// A version of a dataset the provider published: every push channel of the dataset made
/// before it gets the whole dataset again, as that channel sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushPublicationRecord {
    /// Dataset id.
    pub dataset: String,
    /// 1 for the dataset's first publication, and so on.
    pub number: u64,
    /// When it was published.
    pub created_at: DateTime<Utc>,
}

impl PushPublicationRecord {
    /// The document id of publication `number` of `dataset`.
    pub fn id(dataset: &str, number: u64) -> String {
        format!("{dataset}/{number:010}")
    }

    /// The name its push goes by in a channel's cursor.
    pub fn entry(&self) -> String {
        format!("@publication/{}", self.number)
    }
}
