//! The CPU use of the test process, which hosts the gateway: tests that stop a query check
//! that its work really ended.

use std::time::{Duration, Instant};

/// The CPU time this process (the gateway and the test's idle client) used so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // The fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .expect("a stat line");
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// Waits until the process is idle (under a fifth of a core over 200 ms); how long after
/// `since` that was.
pub async fn idle_after(since: Instant) -> Duration {
    loop {
        let (cpu, wall) = (cpu_time(), Instant::now());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let used = cpu_time().saturating_sub(cpu).as_secs_f64() / wall.elapsed().as_secs_f64();
        if used < 0.2 {
            return wall.duration_since(since);
        }
        assert!(
            since.elapsed() < Duration::from_secs(30),
            "still busy ({used:.2} cores) {:?} after the stop",
            since.elapsed()
        );
    }
}
