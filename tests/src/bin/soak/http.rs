//! A Web-API client: a reqwest client (one keep-alive connection) with HTTP Basic, running
//! the mix as `POST /v1/statements` read page by page through `nextUri` (point queries half
//! the time as `GET /v1/data/tpch/orders`). It cancels with `DELETE /v1/statements/{id}`
//! between pages, and leaves by dropping its request and its connections.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::client::Client;
use crate::tally::{HUNG, Outcome, Protocol, classify};
use crate::workload::{Action, POINT_COLUMNS, Query, Shape};

/// Rows per page of a statement: the mix's scans take one to eight pages.
const PAGE_ROWS: usize = 1_000;

/// How a query ended, before it is counted.
enum Answer {
    /// An expected outcome.
    Ended(Outcome),
    /// Something else, described.
    Unexpected(String),
}

/// Runs queries until the soak stops.
pub async fn run(base: String, mut client: Client) {
    let authorization = format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", client.tenant.id, client.tenant.password))
    );
    let mut http: Option<reqwest::Client> = None;
    loop {
        let Some(web) = &http else {
            match reqwest::Client::builder().timeout(HUNG).build() {
                Ok(web) => {
                    client.tally.connected(Protocol::Http);
                    http = Some(web);
                }
                Err(error) => {
                    client
                        .tally
                        .unexpected(Protocol::Http, &format!("client: {error}"));
                    if !client.back_off(Duration::from_secs(1)).await {
                        break;
                    }
                }
            }
            continue;
        };
        let (query, action) = client.mix.next();
        let resource = query.shape == Shape::Point && client.mix.chance(0.5);
        let request = Request {
            web,
            base: &base,
            authorization: &authorization,
            query: &query,
            action,
        };
        let started = std::time::Instant::now();
        let answer = match action {
            Action::Leave(after) => {
                tokio::select! {
                    biased;
                    answer = request.run(resource) => answer,
                    () = tokio::time::sleep(after) => Answer::Ended(Outcome::Abandoned),
                }
            }
            Action::Wait | Action::Cancel(_) => request.run(resource).await,
        };
        let tenant = &client.tenant.id;
        match answer {
            Answer::Ended(outcome) => {
                if outcome == Outcome::Completed {
                    client.tally.completed_in(query.shape, started.elapsed());
                }
                client.tally.query(tenant, Protocol::Http, outcome);
                if outcome == Outcome::Abandoned {
                    // Its connection goes with it.
                    http = None;
                }
            }
            Answer::Unexpected(what) => {
                let what = format!("{:?}: {what}", query.shape);
                client.tally.unexpected_query(tenant, Protocol::Http, &what);
                http = None;
            }
        }
        if !client.think().await {
            break;
        }
    }
}

/// One query of one client.
struct Request<'a> {
    web: &'a reqwest::Client,
    base: &'a str,
    authorization: &'a str,
    query: &'a Query,
    action: Action,
}

impl Request<'_> {
    /// Runs the query: as a resource read, or as a statement read to its end (or
    /// cancelled between pages).
    async fn run(&self, resource: bool) -> Answer {
        match (resource, self.query.key) {
            (true, Some(key)) => {
                let url = format!(
                    "{}/v1/data/tpch/orders?select={POINT_COLUMNS}&o_orderkey=eq.{key}",
                    self.base
                );
                match self.send(self.web.get(url)).await {
                    Ok(_) => Answer::Ended(Outcome::Completed),
                    Err(answer) => answer,
                }
            }
            _ => self.statement().await,
        }
    }

    async fn statement(&self) -> Answer {
        let started = tokio::time::Instant::now();
        let url = format!("{}/v1/statements?rows={PAGE_ROWS}", self.base);
        let body = json!({ "sql": self.query.sql });
        let request = self
            .web
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_string());
        let mut page = match self.send(request).await {
            Ok(page) => page,
            Err(answer) => return answer,
        };
        loop {
            let Some(next) = page["nextUri"].as_str().map(str::to_owned) else {
                return Answer::Ended(Outcome::Completed);
            };
            if let Action::Cancel(after) = self.action
                && started.elapsed() >= after
            {
                return self.cancel(&page).await;
            }
            page = match self.send(self.web.get(next)).await {
                Ok(page) => page,
                Err(answer) => return answer,
            };
        }
    }

    /// `DELETE`s the statement of `page`.
    async fn cancel(&self, page: &Value) -> Answer {
        let Some(id) = page["id"].as_str() else {
            return Answer::Unexpected(format!("a page without an id: {page}"));
        };
        let url = format!("{}/v1/statements/{id}", self.base);
        let request = self
            .web
            .delete(url)
            .header("authorization", self.authorization);
        match request.send().await {
            Ok(response) if response.status() == StatusCode::NO_CONTENT => {
                Answer::Ended(Outcome::Cancelled)
            }
            Ok(response) => Answer::Unexpected(format!("DELETE: {}", response.status())),
            Err(error) => Answer::Unexpected(format!("DELETE: {error}")),
        }
    }

    /// Sends `request` with the credentials: its JSON body, or how it failed.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Value, Answer> {
        let response = request
            .header("authorization", self.authorization)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|error| Answer::Unexpected(transport(&error)))?;
        if !response.status().is_success() {
            return Err(problem(response).await);
        }
        let body = response
            .bytes()
            .await
            .map_err(|error| Answer::Unexpected(transport(&error)))?;
        serde_json::from_slice(&body)
            .map_err(|error| Answer::Unexpected(format!("a page that is not JSON: {error}")))
    }
}

/// The answer a problem+json response stands for, by its SQLSTATE.
async fn problem(response: Response) -> Answer {
    let status = response.status();
    let body: Value = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) => return Answer::Unexpected(format!("{status}: {}", transport(&error))),
    };
    let sqlstate = body["sqlstate"].as_str().unwrap_or_default();
    let detail = body["detail"].as_str().unwrap_or_default();
    match classify(sqlstate, detail, false) {
        Outcome::Unexpected if detail.is_empty() => Answer::Unexpected(format!("{status} {body}")),
        Outcome::Unexpected => Answer::Unexpected(format!("{status} {sqlstate} {detail}")),
        outcome => Answer::Ended(outcome),
    }
}

/// A transport error's text, with its causes (reqwest's own says only "error sending request").
fn transport(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}
