//! The benchmark's code paths stay alive: `bench --smoke` runs on tiny data, once.

use std::process::Command;

#[test]
fn bench_smoke_runs_and_reports_every_ratio() {
    let out = tempfile::tempdir().expect("tempdir");
    let output = Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--smoke", "--out"])
        .arg(out.path())
        .output()
        .expect("run bench");
    assert!(
        output.status.success(),
        "bench failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let jsonl = std::fs::read_to_string(out.path().join("bench.jsonl")).expect("bench.jsonl");
    let ratios: Vec<&str> = jsonl
        .lines()
        .filter(|line| line.contains("\"kind\":\"ratio\""))
        .collect();
    // B2: 7, B3: 2, B4: 3, B5: 2, B7: 2, B9: 3, B10: 1, B11: 1 (one placement in a smoke
    // run).
    assert_eq!(ratios.len(), 21, "{jsonl}");
    assert!(
        ratios
            .iter()
            .all(|line| !line.contains("\"value\":NaN") && !line.contains("\"value\":inf")),
        "{jsonl}"
    );
}
