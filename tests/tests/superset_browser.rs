//! Apache Superset charting a dataset through the gateway, in a real browser:
//! `tests/browser/test_superset.py`, run by pytest with Playwright driving Debian's chromium
//! (headless) against the demo gateway started here and a Superset server the test starts
//! with its own SQLite metadata database. The gateway is added to Superset as a
//! `postgresql+psycopg2://` database with globex's login, `tpch.orders` is registered, a
//! chart of revenue per year is created through Superset's API and rendered in the browser
//! with the values psql reads (globex's years only), and SQL Lab runs a query through the
//! gateway. Screenshots go to the target directory's `tmp/console-screenshots/`.
//!
//! Superset's virtualenv and its prepared metadata database are made by
//! `scripts/python-env` (which `scripts/test` runs).

use std::path::PathBuf;
use std::time::Instant;

use tollgate_tests::{TestGateway, pytest};

/// A virtualenv of `scripts/python-env`: `$variable`, or `~/.cache/<default>`.
fn venv(variable: &str, default: &str) -> PathBuf {
    let venv = match std::env::var_os(variable) {
        Some(venv) => PathBuf::from(venv),
        None => {
            let home = std::env::var_os("HOME").expect("HOME is set");
            PathBuf::from(home).join(".cache").join(default)
        }
    };
    assert!(
        venv.join("bin/python").exists(),
        "no virtualenv at {}: run scripts/python-env",
        venv.display()
    );
    venv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn superset_charts_a_dataset_through_the_gateway_in_a_real_browser() {
    let browser = venv("TOLLGATE_BROWSER_VENV", "tollgate-browser");
    let superset = venv("TOLLGATE_SUPERSET_VENV", "tollgate-superset");
    let gateway = TestGateway::start().await;
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let started = Instant::now();
    let stdout = pytest::run(
        &browser.join("bin/python"),
        "tests/browser/test_superset.py",
        &[
            ("TOLLGATE_PG_HOST", gateway.addr().ip().to_string()),
            ("TOLLGATE_PG_PORT", gateway.addr().port().to_string()),
            ("TOLLGATE_SUPERSET_VENV", superset.display().to_string()),
            ("TOLLGATE_SCREENSHOTS", screenshots.display().to_string()),
        ],
    )
    .await;
    println!(
        "{stdout}\nthe Superset test took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        screenshots.display()
    );
    gateway.stop().await;
}
