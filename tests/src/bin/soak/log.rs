//! What the gateway said about itself: its log's warnings and errors, and panics.
//!
//! The log holds the gateway's own lines (tracing's text format) and the audit log's JSON
//! lines. Under the soak's load an ERROR line or a panic is a failure: it is an internal
//! error a client saw as XX000, a handler that panicked, or a task that died. Warnings are
//! reported, not failed: a drain that had to stop statements warns, as it should.

use std::collections::BTreeMap;
use std::path::Path;

/// The log's lines at WARN and ERROR, by their text without the time (first 200 characters).
#[derive(Debug, Default)]
pub struct LogFindings {
    /// Warning lines, by text.
    pub warnings: BTreeMap<String, u64>,
    /// Error lines and panics, by text.
    pub errors: BTreeMap<String, u64>,
}

impl LogFindings {
    /// Reads the log at `path`.
    ///
    /// # Errors
    /// If it cannot be read.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut findings = Self::default();
        for line in String::from_utf8_lossy(&text).lines() {
            let line = without_colours(line);
            let (level, rest) = level(&line);
            let key: String = rest.chars().take(200).collect();
            match level {
                Some("ERROR") => *findings.errors.entry(key).or_default() += 1,
                Some("WARN") => *findings.warnings.entry(key).or_default() += 1,
                _ if line.contains("panicked") => *findings.errors.entry(key).or_default() += 1,
                _ => {}
            }
        }
        Ok(findings)
    }
}

/// The level of a line and the line after its time stamp: tracing's text (`<time> LEVEL
/// target: message`) or JSON (`"level":"…"`).
fn level(line: &str) -> (Option<&str>, &str) {
    if line.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let level = ["ERROR", "WARN"]
            .into_iter()
            .find(|level| value["level"].as_str() == Some(*level));
        return (level, line);
    }
    // The level is padded to five characters: `<time>  WARN target: …`.
    let after_time = line
        .split_once(' ')
        .map_or("", |(_, rest)| rest)
        .trim_start();
    let (level, rest) = after_time.split_once(' ').unwrap_or((after_time, ""));
    (
        Some(level).filter(|level| !level.is_empty()),
        rest.trim_start(),
    )
}

/// `line` without ANSI colour sequences (`ESC [ … m`).
fn without_colours(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_of_text_and_json_lines() {
        let text = without_colours(
            "\u{1b}[2m2026-12-08T01:00:41Z\u{1b}[0m \u{1b}[31mERROR\u{1b}[0m gateway: query failed",
        );
        assert_eq!(level(&text), (Some("ERROR"), "gateway: query failed"));
        assert_eq!(
            level("2026-12-08T01:00:41Z  WARN gateway: late").0,
            Some("WARN")
        );
        let json = r#"{"level":"WARN","message":"x"}"#;
        assert_eq!(level(json).0, Some("WARN"));
        assert_eq!(level(r#"{"level":"INFO"}"#).0, None);
    }
}
