//! Push channels: a channel's rows published to a broker as they land, to a stream of the
//! tenant's own that only the tenant's channel logins can read.
//!
//! ```text
//! new file of a dataset ─▶ file_push (the channel's view of that file, metered `push`)
//!   ─▶ messages (JSON lines or Arrow IPC, ids from content) ─▶ nats_broker (JetStream)
//! accounts: tenant account + login users (nats_jwt) ─▶ server's account resolver
//! ```
//!
//! | module | job |
//! | --- | --- |
//! | `nats_jwt.rs` | operator, account and user JWTs signed with nkeys; `.creds` text |
//! | `nats_broker.rs` | the NATS server: account updates, each tenant's publisher and stream |
//! | `accounts.rs` | tenants' accounts and login users in the state store; revoked users sent to the server |
//! | `messages.rs` | result batches as messages (JSON lines, Arrow IPC) with ids a retry repeats |
//! | `file_push.rs` | one file of a dataset pushed to one channel, as its login, metered |
//!
//! When and what to push (the cursor of each channel's dataset) is the control plane's
//! `push_delivery`.

pub mod accounts;
pub mod file_push;
pub mod messages;
pub mod nats_broker;
pub mod nats_jwt;
