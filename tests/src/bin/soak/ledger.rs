//! Every query accounted for: the ledger's records against what the clients counted, per
//! tenant and protocol.
//!
//! The gateway writes one record per query it started, and a query's completion reaches its
//! client only after its record is durable. A client that left before its answer cannot
//! know whether the gateway started the query, nor how it ended; those abandoned queries
//! (`A`) are the only slack:
//!
//! ```text
//! completed  ≤ records "ok"        ≤ completed + A
//! cancelled  ≤ records "cancelled" ≤ cancelled + A
//! timed out  ≤ records "timeout"   ≤ timed out + A
//! refused    ≤ records "limit"     ≤ refused + A
//!              records "error"     ≤ unexpected
//! answered   ≤ records             ≤ answered + A + unexpected
//! ```
//!
//! where `answered` is completed + cancelled + timed out + refused.

use std::collections::BTreeMap;

use crate::tally::{Counts, Outcome, Protocol, Snapshot};

/// The ledger's outcome names, in report order.
pub const OUTCOMES: [&str; 5] = ["ok", "cancelled", "timeout", "limit", "error"];

/// Records by tenant and protocol, and by outcome.
#[derive(Debug, Default)]
pub struct Recorded(BTreeMap<(String, String), BTreeMap<String, u64>>);

impl Recorded {
    /// Counts exported records (JSON objects with `tenant`, `protocol` and `outcome`).
    pub fn count(records: &[serde_json::Value]) -> Self {
        let mut recorded = Self::default();
        for record in records {
            let field = |name: &str| record[name].as_str().unwrap_or("?").to_owned();
            *recorded
                .0
                .entry((field("tenant"), field("protocol")))
                .or_default()
                .entry(field("outcome"))
                .or_default() += 1;
        }
        recorded
    }

    /// Records of `tenant` over `protocol` with `outcome`.
    fn get(&self, tenant: &str, protocol: &str, outcome: &str) -> u64 {
        self.0
            .get(&(tenant.to_owned(), protocol.to_owned()))
            .and_then(|outcomes| outcomes.get(outcome))
            .copied()
            .unwrap_or(0)
    }

    /// Records with `outcome` over `protocol` (every protocol for `None`), every tenant's.
    pub fn outcome(&self, protocol: Option<Protocol>, outcome: &str) -> u64 {
        self.0
            .iter()
            .filter(|((_, p), _)| protocol.is_none_or(|protocol| p == protocol.as_str()))
            .filter_map(|(_, outcomes)| outcomes.get(outcome))
            .sum()
    }
}

/// Where the records and the clients' counts disagree, one line each.
pub fn reconcile(recorded: &Recorded, clients: &Snapshot) -> Vec<String> {
    let mut mismatches = Vec::new();
    for (tenant, protocol) in recorded.0.keys() {
        let known = Protocol::ALL
            .iter()
            .any(|p| p.as_str() == protocol && clients.counts.contains_key(&(tenant.clone(), *p)));
        if !known {
            mismatches.push(format!(
                "records of {tenant} over {protocol}, which sent nothing"
            ));
        }
    }
    for ((tenant, protocol), counts) in &clients.counts {
        let name = protocol.as_str();
        let record = |outcome: &str| recorded.get(tenant, name, outcome);
        let abandoned = counts.get(Outcome::Abandoned);
        let mut check = |what: &str, got: u64, least: u64, most: u64| {
            if got < least || got > most {
                mismatches.push(format!(
                    "{tenant} over {name}: {got} {what}, expected {least} to {most}"
                ));
            }
        };
        for (outcome, client) in [
            ("ok", Outcome::Completed),
            ("cancelled", Outcome::Cancelled),
            ("timeout", Outcome::TimedOut),
            ("limit", Outcome::Refused),
        ] {
            let least = counts.get(client);
            check(
                &format!("records \"{outcome}\""),
                record(outcome),
                least,
                least + abandoned,
            );
        }
        let unexpected = counts.get(Outcome::Unexpected);
        check("records \"error\"", record("error"), 0, unexpected);
        let answered = answered(counts);
        let total: u64 = recorded
            .0
            .get(&(tenant.clone(), name.to_owned()))
            .map_or(0, |outcomes| outcomes.values().sum());
        check(
            "records",
            total,
            answered,
            answered + abandoned + unexpected,
        );
    }
    mismatches
}

/// Queries the gateway answered with an expected outcome.
fn answered(counts: &Counts) -> u64 {
    [
        Outcome::Completed,
        Outcome::Cancelled,
        Outcome::TimedOut,
        Outcome::Refused,
    ]
    .iter()
    .map(|outcome| counts.get(*outcome))
    .sum()
}
