//! Where a channel's messages go: a NATS subject of the tenant's stream (headers, a
//! `Nats-Msg-Id` the stream deduplicates by), or an MQTT topic at QoS 1 (MQTT 5 user
//! properties, the same message id for clients to deduplicate by).

use std::collections::VecDeque;
use std::sync::Arc;

use async_nats::HeaderMap;
use async_nats::jetstream;
use async_nats::jetstream::context::PublishAckFuture;
use tollgate_catalog::MessageFormat;

use super::messages::Message;
use super::mqtt_broker::MqttPublisher;
use super::nats_broker::{BrokerError, NatsBroker};

/// What a message says of itself beside its rows.
#[derive(Debug, Clone)]
pub struct Labels {
    /// The dataset.
    pub dataset: String,
    /// The dataset version the file makes.
    pub version: u64,
    /// The message's position in this push.
    pub sequence: u64,
}

/// One channel's destination, and the messages sent to it not yet acknowledged.
pub enum Sink {
    /// A subject of a JetStream stream.
    Nats {
        /// The tenant's publisher.
        publisher: Box<jetstream::Context>,
        /// The channel's subject.
        subject: String,
        /// Acknowledgements to await.
        pending: VecDeque<PublishAckFuture>,
        /// Of those, how many may be pending at once (the tenant's profile says).
        in_flight: usize,
    },
    /// A topic of an MQTT broker.
    Mqtt {
        /// The gateway's publisher.
        publisher: Arc<MqttPublisher>,
        /// The channel's topic.
        topic: String,
        /// Messages sent since all were acknowledged.
        unacknowledged: usize,
        /// How many of those there may be at once (the tenant's profile says).
        in_flight: usize,
    },
}

/// What a message's headers (NATS) or topic and properties (MQTT) may take of the
/// broker's limit, beside its dataset's name: ids, format, version, sequence and rows.
const ENVELOPE: usize = 1024;

/// NATS's default `max_payload`, when the server did not say.
const NATS_DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

impl Sink {
    /// The most bytes a message's payload of `dataset` may hold: the broker's limit
    /// (NATS's `max_payload`, MQTT's maximum packet size) less its envelope.
    pub fn payload_limit(&self, dataset: &str) -> usize {
        let broker_limit = match self {
            Self::Nats { publisher, .. } => match publisher.client().server_info().max_payload {
                0 => NATS_DEFAULT_MAX_PAYLOAD,
                limit => limit,
            },
            Self::Mqtt { publisher, .. } => publisher.max_packet_size(),
        };
        broker_limit.saturating_sub(ENVELOPE + dataset.len())
    }

    /// Sends `message` in `format` with `labels`; its acknowledgement may be pending.
    ///
    /// # Errors
    /// [`BrokerError`] when the broker refuses it.
    pub async fn send(
        &mut self,
        message: Message,
        format: MessageFormat,
        labels: &Labels,
    ) -> Result<u64, BrokerError> {
        let fields = [
            ("Tollgate-Message-Id", message.id.clone()),
            ("Tollgate-Dataset", labels.dataset.clone()),
            ("Tollgate-Version", labels.version.to_string()),
            ("Tollgate-Sequence", labels.sequence.to_string()),
            ("Tollgate-Rows", message.rows.to_string()),
        ];
        match self {
            Self::Nats {
                publisher,
                subject,
                pending,
                in_flight,
            } => {
                let mut headers = HeaderMap::new();
                headers.insert("Nats-Msg-Id", message.id.as_str());
                headers.insert("Content-Type", format.content_type());
                for (name, value) in &fields {
                    headers.insert(*name, value.as_str());
                }
                let ack = NatsBroker::publish(publisher, subject.clone(), headers, message.payload)
                    .await?;
                pending.push_back(ack);
                if pending.len() >= *in_flight {
                    return acknowledged(pending.pop_front()).await;
                }
                Ok(0)
            }
            Self::Mqtt {
                publisher,
                topic,
                unacknowledged,
                in_flight,
            } => {
                let properties = fields
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value))
                    .collect();
                publisher
                    .publish(
                        topic.clone(),
                        message.payload,
                        properties,
                        format.content_type(),
                    )
                    .await?;
                *unacknowledged += 1;
                if *unacknowledged >= *in_flight {
                    publisher.acknowledged().await?;
                    *unacknowledged = 0;
                }
                Ok(0)
            }
        }
    }

    /// Waits until every message sent is stored by the broker; how many of them it had
    /// already (NATS only: MQTT cannot tell).
    ///
    /// # Errors
    /// [`BrokerError`] when an acknowledgement fails.
    pub async fn flush(&mut self) -> Result<u64, BrokerError> {
        match self {
            Self::Nats { pending, .. } => {
                let mut duplicates = 0;
                while let Some(ack) = pending.pop_front() {
                    duplicates += acknowledged(Some(ack)).await?;
                }
                Ok(duplicates)
            }
            Self::Mqtt {
                publisher,
                unacknowledged,
                ..
            } => {
                publisher.acknowledged().await?;
                *unacknowledged = 0;
                Ok(0)
            }
        }
    }
}

/// 1 if the acknowledged message was a duplicate, else 0.
async fn acknowledged(ack: Option<PublishAckFuture>) -> Result<u64, BrokerError> {
    let Some(ack) = ack else {
        return Ok(0);
    };
    ack.await
        .map(|ack| u64::from(ack.duplicate))
        .map_err(|e| BrokerError::Refused {
            what: "a message",
            message: e.to_string(),
        })
}
