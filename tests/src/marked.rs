//! Queries marked in their text, for tests of a usage ledger that stops taking records
//! (its server stopped, its disk full): which of them ran, and that the ledger then holds
//! exactly one record of each that ran.

use std::time::{Duration, Instant};

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::{message, sqlstate};

/// The marked queries of one test, each reading one row and naming `<tag>-<n>`.
pub struct MarkedQueries {
    tag: &'static str,
    last: usize,
    ran: Vec<usize>,
}

/// What the ledger keeps of a marked query: its SQL text, SQLSTATE and rows returned.
pub type MarkedRecord = (String, Option<String>, i64);

impl MarkedQueries {
    /// None run yet.
    pub fn new(tag: &'static str) -> Self {
        Self {
            tag,
            last: 0,
            ran: Vec::new(),
        }
    }

    /// Runs the next query, counted as run whatever its answer (the gateway started it).
    ///
    /// # Errors
    /// The query's error.
    pub async fn run(&mut self, client: &Client) -> Result<(), tokio_postgres::Error> {
        self.last += 1;
        self.ran.push(self.last);
        self.send(client).await
    }

    /// Runs the next query, which must be served.
    ///
    /// # Panics
    /// If it is not.
    pub async fn served(&mut self, client: &Client) {
        self.run(client).await.expect("served");
    }

    /// Sends the next query, which must be refused before it starts: 58000 saying that the
    /// usage ledger is unavailable. Returns the message.
    ///
    /// # Panics
    /// If it runs, or is refused otherwise.
    pub async fn refused(&mut self, client: &Client) -> String {
        self.last += 1;
        let started = Instant::now();
        let error = self
            .send(client)
            .await
            .expect_err("refused while the ledger takes no record");
        let text = message(&error);
        assert_eq!(sqlstate(&error), "58000", "{text}");
        assert!(text.contains("usage ledger is unavailable"), "{text}");
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "refused before it starts"
        );
        text
    }

    /// Sends queries until one is served, within `within`; those before it must be refused
    /// with 58000.
    ///
    /// # Panics
    /// If none is served in time, or one fails otherwise.
    pub async fn until_served(&mut self, client: &Client, within: Duration) {
        let started = Instant::now();
        loop {
            self.last += 1;
            match self.send(client).await {
                Ok(()) => {
                    self.ran.push(self.last);
                    return;
                }
                Err(error) => {
                    assert_eq!(sqlstate(&error), "58000", "{error}");
                    assert!(
                        started.elapsed() < within,
                        "service resumes by itself: {}",
                        message(&error)
                    );
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }

    /// Asserts that `records` (of this test's marked queries) hold one record of each query
    /// that ran, with its row; and for a refused one none, or (refused in the instant the
    /// ledger came back) one that records the refusal: no rows, 58000.
    ///
    /// # Panics
    /// If they do not.
    pub fn assert_recorded(&self, records: &[MarkedRecord]) {
        let prefix = format!("{}-", self.tag);
        let mut recorded = Vec::new();
        for (text, refusal, rows) in records {
            let marker: usize = text
                .rsplit(&prefix)
                .next()
                .and_then(|marker| marker.trim_end_matches('\'').parse().ok())
                .expect("a marker");
            if self.ran.contains(&marker) {
                assert_eq!(refusal, &None, "query {marker} ran");
                assert_eq!(*rows, 1, "query {marker} returned its row");
                recorded.push(marker);
            } else {
                assert_eq!(
                    refusal.as_deref(),
                    Some("58000"),
                    "query {marker} was refused"
                );
                assert_eq!(*rows, 0, "query {marker} returned nothing");
            }
        }
        recorded.sort_unstable();
        assert_eq!(
            recorded, self.ran,
            "one record per query that ran, none lost"
        );
        let mut texts: Vec<&str> = records.iter().map(|(text, _, _)| text.as_str()).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), records.len(), "no query recorded twice");
    }

    /// Sends the next query; a success returns its row.
    async fn send(&self, client: &Client) -> Result<(), tokio_postgres::Error> {
        let sql = format!(
            "SELECT count(*) FROM tpch.region WHERE r_name <> '{}-{}'",
            self.tag, self.last
        );
        client.simple_query(&sql).await.map(|messages| {
            assert!(
                messages
                    .iter()
                    .any(|m| matches!(m, SimpleQueryMessage::Row(_))),
                "a row"
            );
        })
    }
}
