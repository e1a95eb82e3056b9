//! The query mix, and what a client does to a query while it runs, drawn from a seeded RNG
//! so that a run can be repeated.
//!
//! | shape | share | what | cancelled / left |
//! | --- | --- | --- | --- |
//! | point | 45 % | one order by key (pgwire binds `$1` in the extended protocol; the Web-API reads the resource) | 2 % / 3 %, within 100 ms |
//! | aggregate | 30 % | TPC-H Q1 over `lineitem`, orders by priority, Q4's join | 2 % / 3 %, within 100 ms |
//! | scan | 15 % | 1,000–8,000 `lineitem` rows (pages of 1,000 over the Web-API) | 10 % / 5 %, within 300 ms |
//! | long | 10 % | a nested-loop join rejecting every pair: 2–25 M pairs, 0.3–3.5 s alone (debug build) | 30 % / 10 %, after 0.1–3 s |
//!
//! Under load the long query outlives its tenant's statement timeout (3–8 s) now and then.

use std::ops::RangeInclusive;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Rows of each side of the long query's join: it compares the square of this many pairs.
const LONG_ROWS: RangeInclusive<u64> = 1_500..=5_000;

/// The kinds of query in the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// One order by key.
    Point,
    /// A grouped aggregate.
    Aggregate,
    /// Thousands of rows.
    Scan,
    /// Seconds of work for one row.
    Long,
}

impl Shape {
    /// Every shape, in report order.
    pub const ALL: [Shape; 4] = [Self::Point, Self::Aggregate, Self::Scan, Self::Long];
}

/// One query of the mix.
#[derive(Debug, Clone)]
pub struct Query {
    /// Its shape.
    pub shape: Shape,
    /// The SQL text, with any key as a literal.
    pub sql: String,
    /// The order key of a point query.
    pub key: Option<i64>,
}

/// The columns of a point query, granted to every tenant.
pub const POINT_COLUMNS: &str = "o_orderkey,o_custkey,o_totalprice,o_orderdate,o_orderpriority";

impl Query {
    /// The point query with its key as `$1`, for the extended protocol.
    pub fn parameterized(&self) -> Option<(String, i64)> {
        self.key.map(|key| {
            (
                format!("SELECT {POINT_COLUMNS} FROM tpch.orders WHERE o_orderkey = $1"),
                key,
            )
        })
    }
}

/// What the client does while its query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Waits for the answer.
    Wait,
    /// Asks the gateway to cancel it after this long (if it still runs).
    Cancel(Duration),
    /// Goes away (closes its connection, drops its request) after this long.
    Leave(Duration),
}

/// A seeded source of queries, actions and pauses.
pub struct Mix {
    rng: StdRng,
    think: Duration,
}

impl Mix {
    /// A mix from `seed`, pausing `think` on average between queries.
    pub fn new(seed: u64, think: Duration) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            think,
        }
    }

    /// The next query, and what to do while it runs.
    pub fn next(&mut self) -> (Query, Action) {
        let roll = self.rng.random_range(0..100);
        let (shape, sql, key) = match roll {
            0..45 => {
                // TPC-H order keys are sparse: a quarter of these exist.
                let key = self.rng.random_range(1..=60_000_i64);
                let sql =
                    format!("SELECT {POINT_COLUMNS} FROM tpch.orders WHERE o_orderkey = {key}");
                (Shape::Point, sql, Some(key))
            }
            45..75 => (Shape::Aggregate, self.aggregate(), None),
            75..90 => {
                let last = self.rng.random_range(1_000..=8_000);
                let sql = format!(
                    "SELECT l_orderkey, l_linenumber, l_quantity, l_extendedprice, l_shipdate \
                     FROM tpch.lineitem WHERE l_orderkey <= {last}"
                );
                (Shape::Scan, sql, None)
            }
            _ => {
                let rows = self.rng.random_range(LONG_ROWS);
                let sql = format!(
                    "SELECT count(*) FROM \
                     (SELECT l_quantity AS q FROM tpch.lineitem LIMIT {rows}) a, \
                     (SELECT l_quantity AS q FROM tpch.lineitem LIMIT {rows}) b \
                     WHERE a.q + b.q > 1000"
                );
                (Shape::Long, sql, None)
            }
        };
        let action = self.action(shape);
        (Query { shape, sql, key }, action)
    }

    fn aggregate(&mut self) -> String {
        match self.rng.random_range(0..3) {
            0 => "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS qty, \
                  sum(l_extendedprice * (1 - l_discount)) AS revenue, avg(l_discount) AS discount, \
                  count(*) AS lines FROM tpch.lineitem WHERE l_shipdate <= DATE '1998-09-02' \
                  GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus"
                .to_owned(),
            1 => "SELECT o_orderpriority, count(*) AS orders, sum(o_totalprice) AS total \
                  FROM tpch.orders WHERE o_orderdate >= DATE '1995-01-01' \
                  GROUP BY o_orderpriority ORDER BY o_orderpriority"
                .to_owned(),
            _ => "SELECT o_orderpriority, count(*) AS late FROM tpch.orders \
                  JOIN tpch.lineitem ON l_orderkey = o_orderkey \
                  WHERE l_commitdate < l_receiptdate AND o_orderdate >= DATE '1996-01-01' \
                  GROUP BY o_orderpriority ORDER BY o_orderpriority"
                .to_owned(),
        }
    }

    fn action(&mut self, shape: Shape) -> Action {
        let (cancel, leave, within) = match shape {
            Shape::Point | Shape::Aggregate => (2, 3, 0..=100),
            Shape::Scan => (10, 5, 0..=300),
            Shape::Long => (30, 10, 100..=3_000),
        };
        let roll = self.rng.random_range(0..100);
        let after = Duration::from_millis(self.rng.random_range(within));
        if roll < cancel {
            Action::Cancel(after)
        } else if roll < cancel + leave {
            Action::Leave(after)
        } else {
            Action::Wait
        }
    }

    /// Whether an event of probability `p` happens.
    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// A pause of up to `most`.
    pub fn up_to(&mut self, most: Duration) -> Duration {
        most.mul_f64(self.rng.random::<f64>())
    }

    /// A pause between two queries: up to twice the mean think time.
    pub fn think(&mut self) -> Duration {
        self.up_to(self.think * 2)
    }
}
