//! Smoke tests of the real `tollgate` binary: the demo as a user starts it, `passwd`, and a
//! configuration error.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const TOLLGATE: &str = env!("CARGO_BIN_EXE_tollgate");

/// Kills the child process when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_prints_a_psql_line_that_returns_rows() {
    let data_dir = std::env::temp_dir().join("tollgate-test-data");
    let mut child = KillOnDrop(
        Command::new(TOLLGATE)
            .args([
                "demo",
                "--scale",
                "0.01",
                "--pg-listen",
                "127.0.0.1:0",
                "--flight-listen",
                "127.0.0.1:0",
                "--data-dir",
            ])
            .arg(&data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tollgate demo"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let started = Instant::now();
    let mut psql_line = None;
    let mut flight_address = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        if psql_line.is_none()
            && let Some(start) = line.find("psql \"")
        {
            psql_line = Some(line[start..].to_owned());
        }
        if let Some(start) = line.find("grpc://") {
            let address = line[start + "grpc://".len()..]
                .split_whitespace()
                .next()
                .expect("an address follows grpc://");
            flight_address = Some(address.to_owned());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "the demo did not get ready"
        );
    }
    let flight_address = flight_address.expect("the demo prints its Flight SQL address");
    std::net::TcpStream::connect(&flight_address).expect("Flight SQL listens");
    let psql_line = psql_line.expect("the demo prints a psql line");
    let conninfo = psql_line
        .trim_start_matches("psql \"")
        .trim_end_matches('"')
        .to_owned();
    assert!(conninfo.contains("user=acme password=acme"), "{conninfo}");
    let output = Command::new("psql")
        .arg(&conninfo)
        .args(["-X", "-A", "-t", "-c", "SELECT count(*) FROM tpch.region"])
        .output()
        .expect("psql is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "5");
}

#[test]
fn passwd_prints_a_postgres_scram_verifier() {
    let mut child = Command::new(TOLLGATE)
        .arg("passwd")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start tollgate passwd");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"pencil\n")
        .expect("write the password");
    let output = child.wait_with_output().expect("tollgate passwd");
    assert!(output.status.success());
    let verifier = String::from_utf8(output.stdout).expect("utf-8");
    let parsed: tollgate_catalog::scram::Verifier =
        verifier.trim().parse().expect("a valid verifier");
    assert_eq!(parsed.iterations, 4096);
    assert!(!verifier.contains("pencil"));
}

#[test]
fn an_invalid_configuration_fails_at_start_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("tollgate.toml");
    std::fs::write(&config, "[[tenants]]\nid = \"acme\"\nprofile = \"XL\"\n")
        .expect("write config");
    let output = Command::new(TOLLGATE)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run tollgate serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("tenants[0].profile"), "{stderr}");
}
