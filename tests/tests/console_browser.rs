//! The web console in a real browser: `tests/browser/test_console.py`, run by pytest with
//! Playwright driving Debian's chromium (headless) against the demo gateway started here.
//! A tenant signs in, orders a `postgres` channel, connects with psql using the credentials
//! it is shown, sees its queries in its usage chart and revokes the channel; globex never
//! sees acme's datasets, channels or usage, and a change without the session's CSRF token
//! is refused; a query running in psql is listed and cancelled; the provider sees tenants, usage across tenants and the audit trail; every
//! page passes axe-core without serious violations. Screenshots of each page are kept in
//! the target directory's `tmp/console-screenshots/`.
//!
//! The browser's virtualenv is made by `scripts/python-env` (which `scripts/test` runs).

use std::path::PathBuf;
use std::time::Instant;

use tollgate_tests::{TestGateway, pytest};

/// The Python of the browser tests' virtualenv.
fn browser_python() -> PathBuf {
    let venv = match std::env::var_os("TOLLGATE_BROWSER_VENV") {
        Some(venv) => PathBuf::from(venv),
        None => {
            let home = std::env::var_os("HOME").expect("HOME or TOLLGATE_BROWSER_VENV is set");
            PathBuf::from(home).join(".cache/tollgate-browser")
        }
    };
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no browser test environment at {}: run scripts/python-env",
        venv.display()
    );
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_in_a_real_browser() {
    let python = browser_python();
    let gateway = TestGateway::start().await;
    let screenshots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let started = Instant::now();
    let stdout = pytest::run(
        &python,
        "tests/browser/test_console.py",
        &[
            (
                "TOLLGATE_HTTP_URL",
                format!("http://{}", gateway.http_addr()),
            ),
            ("TOLLGATE_PG_HOST", gateway.addr().ip().to_string()),
            ("TOLLGATE_PG_PORT", gateway.addr().port().to_string()),
            ("TOLLGATE_SCREENSHOTS", screenshots.display().to_string()),
        ],
    )
    .await;
    println!(
        "{stdout}\nbrowser tests took {:.1} s; screenshots in {}",
        started.elapsed().as_secs_f64(),
        screenshots.display()
    );
    gateway.stop().await;
}
