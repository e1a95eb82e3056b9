//! A private NATS server for push channels: the machine's `nats-server` in operator mode,
//! trusting a new operator (`tollgate nats-operator`'s configuration), with JetStream and
//! a full account resolver in a temporary directory, on a free loopback port.

use std::path::Path;
use std::process::Child;
use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::{Client, ConnectOptions};
use futures::StreamExt;
use tollgate_catalog::{HumanDuration, NatsPushOptions};
use tollgate_gateway::push::nats_jwt::{OperatorSetup, operator_setup};

use crate::process::{free_port, start_server};
use crate::push::json_line_ids;

/// A running `nats-server`; stopped when dropped.
pub struct NatsServer {
    child: Child,
    url: String,
    setup: OperatorSetup,
}

impl NatsServer {
    /// Starts a server keeping its state under `dir`, and waits until it listens.
    ///
    /// # Panics
    /// If `nats-server` cannot be started or does not listen within 20 seconds.
    pub fn start(dir: &Path) -> Self {
        Self::start_configured(dir, "")
    }

    /// Starts a server keeping its state under `dir`, with the configuration lines
    /// `settings` (e.g. `max_payload: 8192`), and waits until it listens.
    ///
    /// # Panics
    /// If `nats-server` cannot be started or does not listen within 20 seconds.
    pub fn start_configured(dir: &Path, settings: &str) -> Self {
        let addr = free_port();
        let setup = operator_setup(&dir.display().to_string()).expect("operator keys");
        let config = dir.join("nats-server.conf");
        std::fs::write(
            &config,
            format!("listen: {addr}\n{settings}\n{}", setup.server_config),
        )
        .expect("write the NATS configuration");
        let child = start_server("nats-server", &config, &dir.join("nats-server.log"), addr);
        Self {
            child,
            url: format!("nats://{addr}"),
            setup,
        }
    }

    /// `control.nats_push` for this server, looking for new files every `poll`, with at
    /// most `message_rows` rows per message.
    pub fn push_options(&self, poll: Duration, message_rows: usize) -> NatsPushOptions {
        NatsPushOptions {
            url: self.url.clone(),
            public_url: None,
            operator_seed: self.setup.operator_seed.clone(),
            system_account_seed: self.setup.system_account_seed.clone(),
            message_rows,
            poll_interval: HumanDuration(poll),
            duplicate_window: HumanDuration(Duration::from_secs(3600)),
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client connected with the `.creds` text a ready event carries.
///
/// # Errors
/// The connection's, e.g. for revoked credentials.
pub async fn connect(url: &str, creds: &str) -> Result<Client, String> {
    ConnectOptions::new()
        .credentials(creds)
        .map_err(|e| e.to_string())?
        .max_reconnects(Some(0))
        .connect(url)
        .await
        .map_err(|e| e.to_string())
}

/// One message a subscriber received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its `Tollgate-Dataset` header.
    pub dataset: String,
    /// Its `Tollgate-Version` header.
    pub version: u64,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// A durable pull consumer `name` of `subject` in the tenant's stream, made if missing.
///
/// # Panics
/// If the stream or consumer cannot be reached.
pub async fn consumer(
    client: &Client,
    stream: &str,
    name: &str,
    subject: &str,
) -> async_nats::jetstream::consumer::Consumer<pull::Config> {
    let jetstream = async_nats::jetstream::new(client.clone());
    let stream = jetstream
        .get_stream(stream)
        .await
        .expect("the tenant's stream");
    stream
        .get_or_create_consumer(
            name,
            pull::Config {
                durable_name: Some(name.to_owned()),
                filter_subject: subject.to_owned(),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await
        .expect("a durable consumer")
}

/// Up to `max` messages of `consumer` within `wait`, each acknowledged.
///
/// # Panics
/// If fetching or acknowledging fails.
pub async fn fetch(
    consumer: &async_nats::jetstream::consumer::Consumer<pull::Config>,
    max: usize,
    wait: Duration,
) -> Vec<Received> {
    let mut messages = consumer
        .fetch()
        .max_messages(max)
        .expires(wait)
        .messages()
        .await
        .expect("fetch");
    let mut received = Vec::new();
    while let Some(message) = messages.next().await {
        let message = message.expect("a message");
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str().to_owned())
                .unwrap_or_default()
        };
        received.push(Received {
            dataset: header("Tollgate-Dataset"),
            version: header("Tollgate-Version").parse().unwrap_or(0),
            payload: message.payload.to_vec(),
        });
        message.ack().await.expect("ack");
    }
    received
}

/// The `id` of each JSON line of `messages`.
///
/// # Panics
/// If a line is not a JSON object with an integer `id`.
pub fn ids(messages: &[Received]) -> Vec<i64> {
    messages
        .iter()
        .flat_map(|message| json_line_ids(&message.payload))
        .collect()
}
