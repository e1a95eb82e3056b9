//! Running a pytest suite of the repository with a virtualenv's Python, against a gateway a
//! test started, without blocking the gateway's runtime.

use std::path::Path;
use std::process::Command;

/// Runs `python -m pytest -q <suite>` from the repository's root with `env` set; its
/// standard output.
///
/// # Panics
/// If pytest cannot be started or any of its tests fails (with pytest's output).
pub async fn run(python: &Path, suite: &str, env: &[(&str, String)]) -> String {
    let mut pytest = Command::new(python);
    pytest
        .args(["-m", "pytest", "-q", suite])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        // No __pycache__ directories in the work tree.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for (name, value) in env {
        pytest.env(name, value);
    }
    // pytest blocks its thread for a while; the gateway keeps serving on the runtime's
    // workers.
    let output = tokio::task::spawn_blocking(move || pytest.output())
        .await
        .expect("the pytest thread finishes")
        .unwrap_or_else(|e| panic!("run {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pytest failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}
