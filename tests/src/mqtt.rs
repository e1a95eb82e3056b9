//! A private MQTT broker for push channels: the machine's `mosquitto` with its dynamic
//! security plugin (an admin client made by `mosquitto_ctrl dynsec init`), persistence in
//! a temporary directory, on a free loopback port; and an MQTT 5 subscriber.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
use tokio::sync::mpsc;
use tollgate_catalog::{HumanDuration, MqttPushOptions};

use crate::process::{free_port, start_server};
use crate::push::json_line_ids;

/// The dynamic security plugin of Debian's mosquitto.
const DYNAMIC_SECURITY: &str = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so";
/// The admin client's name and password.
const ADMIN: (&str, &str) = ("tollgate-admin", "admin-secret");

/// A running `mosquitto`; stopped when dropped.
pub struct MqttServer {
    child: Child,
    port: u16,
}

impl MqttServer {
    /// Starts a broker keeping its state under `dir`, and waits until it listens.
    ///
    /// # Panics
    /// If `mosquitto` cannot be set up or started, or does not listen within 20 seconds.
    pub fn start(dir: &Path) -> Self {
        Self::start_configured(dir, "")
    }

    /// Starts a broker keeping its state under `dir`, with the configuration lines
    /// `settings` (e.g. `max_packet_size 2048`), and waits until it listens.
    ///
    /// # Panics
    /// If `mosquitto` cannot be set up or started, or does not listen within 20 seconds.
    pub fn start_configured(dir: &Path, settings: &str) -> Self {
        let addr = free_port();
        let security = dir.join("dynamic-security.json");
        let init = Command::new("mosquitto_ctrl")
            .args(["dynsec", "init"])
            .arg(&security)
            .args([ADMIN.0, ADMIN.1])
            .output()
            .expect("run mosquitto_ctrl");
        assert!(security.exists(), "dynsec init: {init:?}");
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {} {}\nallow_anonymous false\npersistence true\n\
                 persistence_location {}/\nplugin {DYNAMIC_SECURITY}\n\
                 plugin_opt_config_file {}\n{settings}\n",
                addr.port(),
                addr.ip(),
                dir.display(),
                security.display()
            ),
        )
        .expect("write the mosquitto configuration");
        let child = start_server("mosquitto", &config, &dir.join("mosquitto.log"), addr);
        Self {
            child,
            port: addr.port(),
        }
    }

    /// `control.mqtt_push` for this broker, looking for new files every `poll`, with at
    /// most `message_rows` rows per message.
    pub fn push_options(&self, poll: Duration, message_rows: usize) -> MqttPushOptions {
        MqttPushOptions {
            host: "127.0.0.1".to_owned(),
            port: self.port,
            public_url: None,
            admin_username: ADMIN.0.to_owned(),
            admin_password: ADMIN.1.to_owned(),
            message_rows,
            poll_interval: HumanDuration(poll),
        }
    }
}

impl Drop for MqttServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message a subscriber received.
#[derive(Debug, Clone)]
pub struct MqttMessage {
    /// Its `Tollgate-Message-Id` user property.
    pub id: String,
    /// Its `Tollgate-Rows` user property.
    pub rows: u64,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// What a subscriber's connection heard besides messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heard {
    /// A subscription granted (true) or refused (false).
    Subscribed(bool),
    /// The broker refused the connection, or closed it.
    Closed(String),
}

/// An MQTT 5 client with a persistent session: messages and what else it heard.
pub struct Subscriber {
    pub client: AsyncClient,
    messages: mpsc::UnboundedReceiver<MqttMessage>,
    heard: mpsc::UnboundedReceiver<Heard>,
}

impl Subscriber {
    /// Connects to `url` (`mqtt://host:port`) as `username` with `password`, in the
    /// persistent session `client_id`.
    pub async fn connect(url: &str, client_id: &str, username: &str, password: &str) -> Self {
        let address = url.trim_start_matches("mqtt://");
        let (host, port) = address.rsplit_once(':').expect("host:port");
        let mut options = MqttOptions::new(client_id, host, port.parse().expect("a port"));
        options.set_credentials(username, password);
        options.set_clean_start(false);
        options.set_session_expiry_interval(Some(3_600));
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(options, 1_024);
        let (messages_tx, messages) = mpsc::unbounded_channel();
        let (heard_tx, heard) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let property = |name: &str| {
                            publish
                                .properties
                                .as_ref()
                                .and_then(|p| p.user_properties.iter().find(|(k, _)| k == name))
                                .map(|(_, v)| v.clone())
                                .unwrap_or_default()
                        };
                        let message = MqttMessage {
                            id: property("Tollgate-Message-Id"),
                            rows: property("Tollgate-Rows").parse().unwrap_or(0),
                            payload: publish.payload.to_vec(),
                        };
                        if messages_tx.send(message).is_err() {
                            return;
                        }
                    }
                    Ok(Event::Incoming(Packet::SubAck(ack))) => {
                        let granted = ack
                            .return_codes
                            .iter()
                            .all(|code| matches!(code, SubscribeReasonCode::Success(_)));
                        let _ = heard_tx.send(Heard::Subscribed(granted));
                    }
                    Ok(Event::Incoming(Packet::ConnAck(ack)))
                        if ack.code != ConnectReturnCode::Success =>
                    {
                        let _ = heard_tx.send(Heard::Closed(format!("{:?}", ack.code)));
                        return;
                    }
                    Ok(_) => {}
                    Err(error) => {
                        let refused = matches!(error, ConnectionError::ConnectionRefused(_));
                        let _ = heard_tx.send(Heard::Closed(error.to_string()));
                        if refused || heard_tx.is_closed() || messages_tx.is_closed() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Self {
            client,
            messages,
            heard,
        }
    }

    /// Subscribes to `topic` at QoS 1; whether the broker granted it.
    pub async fn subscribe(&mut self, topic: &str) -> bool {
        self.client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        loop {
            match tokio::time::timeout(Duration::from_secs(10), self.heard.recv()).await {
                Ok(Some(Heard::Subscribed(granted))) => return granted,
                Ok(Some(Heard::Closed(_))) => {}
                _ => return false,
            }
        }
    }

    /// Whether the broker refused or closed the connection within `wait`.
    pub async fn refused_within(&mut self, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(heard)) = tokio::time::timeout_at(deadline, self.heard.recv()).await {
            if matches!(heard, Heard::Closed(_)) {
                return true;
            }
        }
        false
    }

    /// Messages until `rows` rows of messages not seen before (by id) arrived, or 30
    /// seconds passed; each message id is added to `seen`. Returns the new messages and
    /// how many repeated ones came.
    pub async fn receive(
        &mut self,
        rows: u64,
        seen: &mut HashSet<String>,
    ) -> (Vec<MqttMessage>, usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let (mut new, mut repeated, mut got) = (Vec::new(), 0, 0);
        while got < rows {
            match tokio::time::timeout_at(deadline, self.messages.recv()).await {
                Ok(Some(message)) => {
                    if seen.insert(message.id.clone()) {
                        got += message.rows;
                        new.push(message);
                    } else {
                        repeated += 1;
                    }
                }
                _ => break,
            }
        }
        (new, repeated)
    }

    /// Messages that arrive within `wait`.
    pub async fn drain(&mut self, wait: Duration) -> Vec<MqttMessage> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut messages = Vec::new();
        while let Ok(Some(message)) = tokio::time::timeout_at(deadline, self.messages.recv()).await
        {
            messages.push(message);
        }
        messages
    }

    /// Disconnects, keeping the session on the broker (the connection is not taken up
    /// again: messages published meanwhile wait in the session).
    pub async fn disconnect(self) {
        let Self {
            client,
            messages,
            heard,
        } = self;
        drop((messages, heard));
        let _ = client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The `id` of each JSON line of `messages`.
///
/// # Panics
/// If a line is not a JSON object with an integer `id`.
pub fn ids(messages: &[MqttMessage]) -> Vec<i64> {
    messages
        .iter()
        .flat_map(|message| json_line_ids(&message.payload))
        .collect()
}
