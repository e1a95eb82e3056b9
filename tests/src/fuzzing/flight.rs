//! `flight_ticket`: what a Flight SQL client controls before any query runs. The first
//! byte picks what the rest is: a `DoGet` ticket sent with acme's bearer token, a bearer
//! token, or Basic credentials. The answer must be a gRPC status or a stream, never a
//! transport failure (a handler that panicked) nor `UNKNOWN`.

use arrow_flight::Ticket;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tokio::sync::OnceCell;
use tonic::Code;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use super::Harness;

/// A channel to the Flight SQL listener and acme's bearer token, made once per process.
async fn connection(harness: &Harness) -> &'static (Channel, String) {
    static CONNECTION: OnceCell<(Channel, String)> = OnceCell::const_new();
    CONNECTION
        .get_or_init(|| async {
            let channel = Channel::from_shared(format!("http://{}", harness.gateway.flight_addr()))
                .expect("a Flight SQL address")
                .connect()
                .await
                .expect("connect to Flight SQL");
            let mut client = FlightSqlServiceClient::new(channel.clone());
            client
                .handshake("acme", "acme")
                .await
                .expect("acme's handshake");
            let token = client.token().expect("a bearer token").clone();
            (channel, token)
        })
        .await
}

/// Sends `data` as a ticket, a token or credentials.
pub(super) async fn run(harness: &Harness, data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (channel, token) = connection(harness).await;
    let (authorization, ticket) = match selector % 3 {
        0 => (format!("Bearer {token}"), rest.to_vec()),
        1 => (
            format!("Bearer {}", String::from_utf8_lossy(rest)),
            Vec::new(),
        ),
        _ => (
            format!("Basic {}", String::from_utf8_lossy(rest)),
            Vec::new(),
        ),
    };
    // A header gRPC cannot carry never reaches the gateway.
    let Ok(authorization) = MetadataValue::try_from(authorization.as_str()) else {
        return;
    };
    let mut request = tonic::Request::new(Ticket::new(ticket));
    request
        .metadata_mut()
        .insert("authorization", authorization);
    let mut client = FlightServiceClient::new(channel.clone());
    let answer = match client.do_get(request).await {
        Ok(response) => response
            .into_inner()
            .map_err(|status| FlightError::Tonic(Box::new(status)))
            .try_collect::<Vec<_>>()
            .await
            .map(drop),
        Err(status) => Err(FlightError::Tonic(Box::new(status))),
    };
    if let Err(error) = answer {
        let FlightError::Tonic(status) = &error else {
            panic!("DoGet failed outside gRPC: {error}");
        };
        assert_ne!(
            status.code(),
            Code::Unknown,
            "DoGet answered UNKNOWN (a handler that failed unexpectedly): {status}"
        );
    }
}
