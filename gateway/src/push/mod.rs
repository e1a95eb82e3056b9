//! Push channels: a channel's rows published to a broker as they land, where only the
//! tenant's channel logins can read them: a JetStream stream in the tenant's own NATS
//! account, or MQTT topics under `tollgate/<tenant>/`.
//!
//! ```text
//! new file of a dataset ─▶ fan_out (read once) ─▶ file_push (each channel's view of it,
//!   metered `push`)
//!   ─▶ messages (JSON lines or Arrow IPC, ids from content) ─▶ nats_broker (JetStream)
//! accounts: tenant account + login users (nats_jwt) ─▶ server's account resolver
//! ```
//!
//! | module | job |
//! | --- | --- |
//! | `nats_jwt.rs` | operator, account and user JWTs signed with nkeys; `.creds` text |
//! | `nats_broker.rs` | the NATS server: account updates, each tenant's publisher and stream |
//! | `mqtt_broker.rs` | the MQTT broker: clients and roles by its dynamic security plugin, the QoS 1 publisher |
//! | `sink.rs` | a channel's destination (subject or topic) and its pending acknowledgements |
//! | `accounts.rs` | tenants' accounts and login users in the state store; revoked users sent to the server |
//! | `messages.rs` | result batches as messages (JSON lines, Arrow IPC) with ids a retry repeats |
//! | `file_push.rs` | one slice of a dataset pushed to one channel, as its login, metered |
//! | `fan_out.rs` | one slice read once and pushed to every channel that takes it next |
//!
//! When and what to push (the cursor of each channel's dataset) is the control plane's
//! `push_delivery`.

pub mod accounts;
pub mod fan_out;
pub mod file_push;
pub mod messages;
pub mod mqtt_broker;
pub mod nats_broker;
pub mod nats_jwt;
pub mod sink;

use std::sync::Arc;
use std::time::Duration;

use tollgate_catalog::{ChannelKind, ControlOptions};

use mqtt_broker::MqttBroker;
use nats_broker::NatsBroker;
use nats_jwt::JwtError;

/// The brokers this gateway pushes to.
#[derive(Debug, Clone, Default)]
pub struct PushBrokers {
    /// The NATS server of `nats` channels.
    pub nats: Option<Arc<NatsBroker>>,
    /// The MQTT broker of `mqtt` channels.
    pub mqtt: Option<Arc<MqttBroker>>,
}

impl PushBrokers {
    /// The brokers `control` names.
    ///
    /// # Errors
    /// [`JwtError`] for NATS seeds of the wrong kind.
    pub fn new(control: &ControlOptions) -> Result<Self, JwtError> {
        Ok(Self {
            nats: match &control.nats_push {
                Some(options) => Some(Arc::new(NatsBroker::new(options.clone())?)),
                None => None,
            },
            mqtt: control
                .mqtt_push
                .as_ref()
                .map(|options| Arc::new(MqttBroker::new(options.clone()))),
        })
    }

    /// Whether channels of `kind` can be pushed here.
    pub fn offers(&self, kind: ChannelKind) -> bool {
        match kind {
            ChannelKind::Nats => self.nats.is_some(),
            ChannelKind::Mqtt => self.mqtt.is_some(),
            _ => false,
        }
    }

    /// How often to look for new files: the shortest interval of the brokers; `None`
    /// without a broker.
    pub fn poll_interval(&self) -> Option<Duration> {
        let nats = self
            .nats
            .as_ref()
            .map(|b| b.options().poll_interval.duration());
        let mqtt = self
            .mqtt
            .as_ref()
            .map(|b| b.options().poll_interval.duration());
        nats.into_iter().chain(mqtt).min()
    }
}
