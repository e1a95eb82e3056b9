//! A real AWS API server on loopback for the source tests: moto's standalone server (S3,
//! Athena), from the virtualenv that `scripts/python-env` makes. Each test starts its own
//! on a free port; it is killed when dropped.
//!
//! moto is started through `moto_server.py`, which adds two behaviours of Athena's API
//! that moto leaves out: `GetQueryResults` pages (with `NextToken`), and succeeded queries
//! report [`ATHENA_SCANNED_BYTES`] as `DataScannedInBytes`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;

use crate::process::free_port;

/// The access key id and secret moto accepts (it checks no signatures by default).
pub const ACCESS_KEY: &str = "testing";
/// See [`ACCESS_KEY`].
pub const SECRET_KEY: &str = "testing";
/// The region everything is created in.
pub const REGION: &str = "us-east-1";
/// The `DataScannedInBytes` every succeeded Athena query reports (Athena's 10 MB minimum).
pub const ATHENA_SCANNED_BYTES: i64 = 10 * 1024 * 1024;

/// The interpreter of the tests' virtualenv (`TOLLGATE_VENV`, else `~/.cache/tollgate-venv`).
///
/// # Panics
/// If the virtualenv has not been made.
pub fn venv_python() -> PathBuf {
    let venv = match std::env::var_os("TOLLGATE_VENV") {
        Some(venv) => PathBuf::from(venv),
        None => {
            let home = std::env::var_os("HOME").expect("HOME or TOLLGATE_VENV is set");
            PathBuf::from(home).join(".cache/tollgate-venv")
        }
    };
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Python environment at {}: run scripts/python-env",
        venv.display()
    );
    python
}

/// The interpreter of the Delta Sharing connector's virtualenv (`TOLLGATE_DELTA_SHARING_VENV`,
/// else `~/.cache/tollgate-delta-sharing`), apart from [`venv_python`]'s because the connector
/// pins an older pyarrow.
///
/// # Panics
/// If the virtualenv has not been made.
pub fn delta_sharing_python() -> PathBuf {
    let venv = match std::env::var_os("TOLLGATE_DELTA_SHARING_VENV") {
        Some(venv) => PathBuf::from(venv),
        None => {
            let home =
                std::env::var_os("HOME").expect("HOME or TOLLGATE_DELTA_SHARING_VENV is set");
            PathBuf::from(home).join(".cache/tollgate-delta-sharing")
        }
    };
    let python = venv.join("bin/python");
    assert!(
        python.exists(),
        "no Delta Sharing environment at {}: run scripts/python-env",
        venv.display()
    );
    python
}

/// A running moto server.
pub struct MotoServer {
    child: Child,
    endpoint: String,
}

impl MotoServer {
    /// Starts moto on a free loopback port and waits until it answers.
    ///
    /// # Panics
    /// If it exits or does not listen within 30 s.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Starts moto checking every request's credentials against its IAM users, of which
    /// there are none: every request is refused, as a store refuses revoked keys.
    ///
    /// # Panics
    /// As [`Self::start`].
    pub fn start_refusing_credentials() -> Self {
        Self::launch(true)
    }

    fn launch(authenticate: bool) -> Self {
        let addr = free_port();
        let launcher = concat!(env!("CARGO_MANIFEST_DIR"), "/src/moto_server.py");
        let child = Command::new(venv_python())
            .args([launcher, "-H", "127.0.0.1", "-p"])
            .arg(addr.port().to_string())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env(
                "TOLLGATE_MOTO_ATHENA_SCANNED_BYTES",
                ATHENA_SCANNED_BYTES.to_string(),
            )
            .envs(authenticate.then_some(("INITIAL_NO_AUTH_ACTION_COUNT", "0")))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto's server");
        let mut server = Self {
            child,
            endpoint: format!("http://{addr}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("moto's server exited before listening: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "moto's server did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Runs a Python snippet with `boto3` imported and `endpoint` set to this server's.
    ///
    /// # Panics
    /// If the snippet fails.
    pub fn python(&self, snippet: &str) -> String {
        let program = format!(
            "import boto3, json, sys\nendpoint = {endpoint:?}\n\
             def client(service):\n    return boto3.client(service, endpoint_url=endpoint, \
             region_name={REGION:?}, aws_access_key_id={ACCESS_KEY:?}, \
             aws_secret_access_key={SECRET_KEY:?})\n{snippet}\n",
            endpoint = self.endpoint,
        );
        // On stdin: a program with many result rows is longer than an argument may be.
        let mut child = Command::new(venv_python())
            .arg("-")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run python");
        child
            .stdin
            .take()
            .expect("python's stdin")
            .write_all(program.as_bytes())
            .expect("send the program to python");
        let output = child.wait_with_output().expect("python's output");
        assert!(
            output.status.success(),
            "python failed: {}\n{program}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Creates an S3 bucket.
    pub fn create_bucket(&self, bucket: &str) {
        self.python(&format!("client('s3').create_bucket(Bucket={bucket:?})"));
    }

    /// An S3 client of `bucket` on this server, to put test files with.
    pub fn s3(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        let store = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(REGION)
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_access_key_id(ACCESS_KEY)
            .with_secret_access_key(SECRET_KEY)
            .build()
            .expect("an S3 client");
        Arc::new(store)
    }

    /// Makes the next `count` S3 object reads (GET and HEAD of a key, not listings) wait
    /// `delay`, then answer `status` with S3's error body, or the real answer if `None`.
    ///
    /// # Panics
    /// If the server does not take the setting.
    pub async fn inject_faults(&self, status: Option<u16>, delay: Duration, count: usize) {
        let response = reqwest::Client::new()
            .post(format!("{}/_tollgate/faults", self.endpoint))
            .body(
                serde_json::json!({
                    "status": status,
                    "delay": delay.as_secs_f64(),
                    "count": count,
                })
                .to_string(),
            )
            .send()
            .await
            .expect("moto's fault switch answers");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// How many injected faults were served since the last [`Self::inject_faults`].
    ///
    /// # Panics
    /// If the server does not answer.
    pub async fn faults_served(&self) -> u64 {
        let text = reqwest::Client::new()
            .get(format!("{}/_tollgate/faults", self.endpoint))
            .send()
            .await
            .expect("moto's fault switch answers")
            .text()
            .await
            .expect("its state");
        let state: serde_json::Value = serde_json::from_str(&text).expect("its state as JSON");
        state["served"].as_u64().expect("a count of served faults")
    }

    /// Kills the server, as an outage would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        self.kill();
    }
}
