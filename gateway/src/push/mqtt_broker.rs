//! The MQTT broker `mqtt` channels publish to (Mosquitto with its dynamic security plugin):
//! its clients and roles managed through the plugin's control topic, and the gateway's own
//! publisher, whose QoS 1 messages are counted acknowledged before a file counts as sent.
//!
//! ```text
//! admin ──$CONTROL/dynamic-security/v1──▶ role tollgate-tenant-T: subscribe tollgate/T/#
//!                                          client <login>: password, role of its tenant
//!                                          client tollgate-publisher: publish tollgate/#
//! tollgate-publisher ──QoS 1──▶ tollgate/T/<channel> ──▶ the tenant's sessions
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ring::hmac;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties, SubscribeReasonCode};
use rumqttc::v5::{AsyncClient, Event, EventLoop, MqttOptions};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Notify, mpsc};
use tollgate_catalog::MqttPushOptions;

use super::nats_broker::BrokerError;

/// The dynamic security plugin's command topic.
const CONTROL: &str = "$CONTROL/dynamic-security/v1";
/// The gateway's own client, which alone may publish to `tollgate/#`.
const PUBLISHER: &str = "tollgate-publisher";
/// How long a command or a message's acknowledgement may take.
const PATIENCE: Duration = Duration::from_secs(30);

/// The largest packet MQTT can carry (a 4-byte remaining length, plus the fixed header),
/// when the broker announces no smaller maximum.
const MQTT_MAX_PACKET_SIZE: usize = 268_435_460;

/// The topic a tenant's channel is published to.
pub fn topic(tenant: &str, channel: &str) -> String {
    format!("tollgate/{tenant}/{channel}")
}

/// The role of a tenant's channel logins.
fn tenant_role(tenant: &str) -> String {
    format!("tollgate-tenant-{tenant}")
}

/// The gateway's connections to the broker of `mqtt` channels.
pub struct MqttBroker {
    options: MqttPushOptions,
    admin: Mutex<Option<Admin>>,
    publisher: Mutex<Option<Arc<MqttPublisher>>>,
}

impl std::fmt::Debug for MqttBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttBroker")
            .field("host", &self.options.host)
            .field("port", &self.options.port)
            .finish_non_exhaustive()
    }
}

/// The admin connection: commands out, the plugin's responses in.
struct Admin {
    client: AsyncClient,
    responses: mpsc::Receiver<Value>,
}

impl MqttBroker {
    /// The broker of `options`; connects when first used.
    pub fn new(options: MqttPushOptions) -> Self {
        Self {
            options,
            admin: Mutex::new(None),
            publisher: Mutex::new(None),
        }
    }

    /// The options it was made with.
    pub fn options(&self) -> &MqttPushOptions {
        &self.options
    }

    /// The URL tenants connect to.
    pub fn public_url(&self) -> String {
        self.options
            .public_url
            .clone()
            .unwrap_or_else(|| format!("mqtt://{}:{}", self.options.host, self.options.port))
    }

    /// Makes `login` (with `password`) a client that may read `tenant`'s topics.
    ///
    /// # Errors
    /// [`BrokerError`] when the broker cannot be reached or refuses.
    pub async fn add_login(
        &self,
        tenant: &str,
        login: &str,
        password: &str,
    ) -> Result<(), BrokerError> {
        let role = tenant_role(tenant);
        self.commands(vec![
            json!({ "command": "createRole", "rolename": role }),
            json!({ "command": "addRoleACL", "rolename": role, "acltype": "subscribePattern",
                    "topic": format!("tollgate/{tenant}/#"), "priority": 0, "allow": true }),
            json!({ "command": "createClient", "username": login, "password": password,
                    "roles": [{ "rolename": role }] }),
        ])
        .await
    }

    /// Opens the persistent session `login` (the client id tenants are told) subscribed at
    /// QoS 1 to `topic`, kept `expiry` after its last connection: the broker queues what is
    /// published from now on, the snapshot included, until the tenant connects to it with
    /// a clean start of false.
    ///
    /// # Errors
    /// [`BrokerError`] when the broker cannot be reached, or refuses the login or the
    /// subscription.
    pub async fn open_session(
        &self,
        login: &str,
        password: &str,
        topic: &str,
        expiry: Duration,
    ) -> Result<(), BrokerError> {
        let mut options = MqttOptions::new(login, &self.options.host, self.options.port);
        options.set_credentials(login, password);
        options.set_clean_start(false);
        let seconds = u32::try_from(expiry.as_secs()).unwrap_or(u32::MAX);
        options.set_session_expiry_interval(Some(seconds));
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(options, 16);
        wait_connected(&mut events).await?;
        client
            .subscribe(topic, QoS::AtLeastOnce)
            .await
            .map_err(|e| BrokerError::Connect(e.to_string()))?;
        let mut granted = false;
        wait_for(&mut events, |packet| match packet {
            Packet::SubAck(ack) => {
                granted = ack
                    .return_codes
                    .iter()
                    .all(|code| matches!(code, SubscribeReasonCode::Success(_)));
                true
            }
            _ => false,
        })
        .await?;
        let _ = client.disconnect().await;
        // The DISCONNECT is written before the connection is dropped.
        let _ = tokio::time::timeout(Duration::from_secs(1), events.poll()).await;
        if granted {
            Ok(())
        } else {
            Err(BrokerError::Refused {
                what: "a subscription",
                message: format!("{login} may not subscribe to {topic}"),
            })
        }
    }

    /// The logins the broker has as clients (the gateway's own and the admin aside).
    ///
    /// # Errors
    /// [`BrokerError`] when the broker cannot be reached or refuses.
    pub async fn logins(&self) -> Result<Vec<String>, BrokerError> {
        let responses = self
            .command(json!({ "command": "listClients", "verbose": false, "count": -1 }))
            .await?;
        let names = responses
            .pointer("/data/clients")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        Ok(names
            .iter()
            .filter_map(|name| name.as_str().or_else(|| name["username"].as_str()))
            .filter(|name| *name != PUBLISHER && *name != self.options.admin_username)
            .map(str::to_owned)
            .collect())
    }

    /// Removes client `login`; its connections are closed.
    ///
    /// # Errors
    /// [`BrokerError`] when the broker cannot be reached or refuses.
    pub async fn remove_login(&self, login: &str) -> Result<(), BrokerError> {
        self.commands(vec![
            json!({ "command": "deleteClient", "username": login }),
        ])
        .await
    }

    /// The gateway's publisher, connected (and its client made) on first use.
    ///
    /// # Errors
    /// [`BrokerError`] when the broker cannot be reached or refuses.
    pub async fn publisher(&self) -> Result<Arc<MqttPublisher>, BrokerError> {
        let mut publisher = self.publisher.lock().await;
        if let Some(existing) = publisher.as_ref()
            && !existing.failed()
        {
            return Ok(Arc::clone(existing));
        }
        let password = self.publisher_password();
        self.commands(vec![
            json!({ "command": "createRole", "rolename": PUBLISHER }),
            json!({ "command": "addRoleACL", "rolename": PUBLISHER, "acltype": "publishClientSend",
                    "topic": "tollgate/#", "priority": 0, "allow": true }),
            json!({ "command": "createClient", "username": PUBLISHER, "password": password,
                    "roles": [{ "rolename": PUBLISHER }] }),
            json!({ "command": "setClientPassword", "username": PUBLISHER, "password": password }),
        ])
        .await?;
        let connected = Arc::new(MqttPublisher::connect(&self.options, &password).await?);
        *publisher = Some(Arc::clone(&connected));
        Ok(connected)
    }

    /// The publisher's password: the same on every gateway of this broker, derived from the
    /// admin's.
    fn publisher_password(&self) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.options.admin_password.as_bytes());
        let tag = hmac::sign(&key, PUBLISHER.as_bytes());
        tag.as_ref()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }

    /// Sends `commands`; "already exists" answers count as done.
    async fn commands(&self, commands: Vec<Value>) -> Result<(), BrokerError> {
        let answer = self.request(commands).await?;
        for response in answer["responses"].as_array().into_iter().flatten() {
            if let Some(error) = response["error"].as_str()
                && !error.contains("already exists")
            {
                return Err(BrokerError::Refused {
                    what: "a broker command",
                    message: format!("{}: {error}", response["command"]),
                });
            }
        }
        Ok(())
    }

    /// Sends one command and returns its response.
    async fn command(&self, command: Value) -> Result<Value, BrokerError> {
        let answer = self.request(vec![command]).await?;
        let response = answer["responses"][0].clone();
        match response["error"].as_str() {
            Some(error) => Err(BrokerError::Refused {
                what: "a broker command",
                message: error.to_owned(),
            }),
            None => Ok(response),
        }
    }

    async fn request(&self, commands: Vec<Value>) -> Result<Value, BrokerError> {
        let mut admin = self.admin.lock().await;
        if admin.is_none() {
            *admin = Some(self.connect_admin().await?);
        }
        let Some(connection) = admin.as_mut() else {
            return Err(BrokerError::Connect("no admin connection".to_owned()));
        };
        let body = json!({ "commands": commands }).to_string();
        let sent = connection
            .client
            .publish(CONTROL, QoS::AtLeastOnce, false, body)
            .await;
        let answer = match sent {
            Ok(()) => tokio::time::timeout(PATIENCE, connection.responses.recv())
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        match answer {
            Some(answer) => Ok(answer),
            None => {
                *admin = None;
                Err(BrokerError::Refused {
                    what: "a broker command",
                    message: "no answer from the dynamic security plugin".to_owned(),
                })
            }
        }
    }

    async fn connect_admin(&self) -> Result<Admin, BrokerError> {
        let mut options = MqttOptions::new(
            format!("tollgate-admin-{}", uuid::Uuid::now_v7().simple()),
            &self.options.host,
            self.options.port,
        );
        options.set_credentials(&self.options.admin_username, &self.options.admin_password);
        options.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(options, 16);
        let (answers, responses) = mpsc::channel(16);
        wait_connected(&mut events).await?;
        client
            .subscribe(format!("{CONTROL}/response"), QoS::AtLeastOnce)
            .await
            .map_err(|e| BrokerError::Connect(e.to_string()))?;
        // The responses' subscription is in place before the first command goes out.
        wait_for(&mut events, |packet| matches!(packet, Packet::SubAck(_))).await?;
        tokio::spawn(async move {
            while let Ok(event) = events.poll().await {
                if let Event::Incoming(Packet::Publish(message)) = event
                    && let Ok(answer) = serde_json::from_slice::<Value>(&message.payload)
                    && answers.send(answer).await.is_err()
                {
                    return;
                }
            }
        });
        Ok(Admin { client, responses })
    }
}

/// The gateway's own client, publishing at QoS 1 and counting acknowledgements.
pub struct MqttPublisher {
    client: AsyncClient,
    sent: AtomicU64,
    acknowledged: Arc<AtomicU64>,
    progress: Arc<Notify>,
    broken: Arc<std::sync::atomic::AtomicBool>,
    /// The largest packet the broker takes (its CONNACK says, else MQTT's largest).
    max_packet_size: usize,
}

impl MqttPublisher {
    async fn connect(options: &MqttPushOptions, password: &str) -> Result<Self, BrokerError> {
        let mut mqtt = MqttOptions::new(
            format!("{PUBLISHER}-{}", uuid::Uuid::now_v7().simple()),
            &options.host,
            options.port,
        );
        mqtt.set_credentials(PUBLISHER, password);
        mqtt.set_keep_alive(Duration::from_secs(30));
        let (client, mut events) = AsyncClient::new(mqtt, 1024);
        let max_packet_size = wait_connected(&mut events).await?;
        let acknowledged = Arc::new(AtomicU64::new(0));
        let progress = Arc::new(Notify::new());
        let broken = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (acks, notify, failed) = (
            Arc::clone(&acknowledged),
            Arc::clone(&progress),
            Arc::clone(&broken),
        );
        tokio::spawn(async move {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acks.fetch_add(1, Ordering::SeqCst);
                        notify.notify_waiters();
                    }
                    Ok(_) => {}
                    Err(_) => {
                        failed.store(true, Ordering::SeqCst);
                        notify.notify_waiters();
                        return;
                    }
                }
            }
        });
        Ok(Self {
            client,
            sent: AtomicU64::new(0),
            acknowledged,
            progress,
            broken,
            max_packet_size,
        })
    }

    /// The largest packet the broker takes.
    pub fn max_packet_size(&self) -> usize {
        self.max_packet_size
    }

    fn failed(&self) -> bool {
        self.broken.load(Ordering::SeqCst)
    }

    /// Publishes `payload` to `topic` at QoS 1 with `properties` (MQTT 5 user properties).
    ///
    /// # Errors
    /// [`BrokerError::Refused`] when the connection is gone.
    pub async fn publish(
        &self,
        topic: String,
        payload: Bytes,
        properties: Vec<(String, String)>,
        content_type: &str,
    ) -> Result<(), BrokerError> {
        let properties = PublishProperties {
            user_properties: properties,
            content_type: Some(content_type.to_owned()),
            ..Default::default()
        };
        self.client
            .publish_bytes_with_properties(topic, QoS::AtLeastOnce, false, payload, properties)
            .await
            .map_err(|e| BrokerError::Refused {
                what: "a message",
                message: e.to_string(),
            })?;
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Waits until every message published so far is acknowledged.
    ///
    /// # Errors
    /// [`BrokerError::Refused`] when the connection failed or acknowledgements stopped.
    pub async fn acknowledged(&self) -> Result<(), BrokerError> {
        let wanted = self.sent.load(Ordering::SeqCst);
        let waiting = async {
            loop {
                let progress = self.progress.notified();
                if self.acknowledged.load(Ordering::SeqCst) >= wanted {
                    return Ok(());
                }
                if self.failed() {
                    return Err(());
                }
                progress.await;
            }
        };
        match tokio::time::timeout(PATIENCE, waiting).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(BrokerError::Refused {
                what: "a message",
                message: "the broker did not acknowledge it".to_owned(),
            }),
        }
    }
}

/// Polls `events` until the broker sent a packet that `wanted` picks; that packet.
async fn wait_for(
    events: &mut EventLoop,
    mut wanted: impl FnMut(&Packet) -> bool,
) -> Result<Packet, BrokerError> {
    let waiting = async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(packet)) if wanted(&packet) => return Ok(packet),
                Ok(_) => {}
                Err(error) => return Err(BrokerError::Connect(error.to_string())),
            }
        }
    };
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .map_err(|_| BrokerError::Connect("the broker did not answer".to_owned()))?
}

/// Polls `events` until the broker accepted the connection; the largest packet it takes.
async fn wait_connected(events: &mut EventLoop) -> Result<usize, BrokerError> {
    let connack = wait_for(events, |packet| matches!(packet, Packet::ConnAck(_))).await?;
    let announced = match connack {
        Packet::ConnAck(connack) => connack
            .properties
            .and_then(|properties| properties.max_packet_size),
        _ => None,
    };
    Ok(announced.map_or(MQTT_MAX_PACKET_SIZE, |size| {
        usize::try_from(size).unwrap_or(MQTT_MAX_PACKET_SIZE)
    }))
}
