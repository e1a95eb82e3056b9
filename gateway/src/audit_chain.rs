//! The audit log's hash chain: each line carries, as its first field `prev`, the SHA-256 of
//! the line before it (as written, without its newline), so that a line removed, inserted
//! or edited breaks the chain at the line after it. `tollgate audit verify` walks a file.
//!
//! ```text
//! {"prev":"000…0", …first line…}             the first line of a new file
//! {"prev":"<sha256 of line 1>", …}
//! {"prev":"<sha256 of line 2>", …}           a gateway restarted on the file goes on
//!                                            from the hash of its last line
//! ```
//!
//! The chain shows tampering inside the file; the last line's hash (the head, which verify
//! prints) kept elsewhere shows a truncated end.

use std::fs::File;
use std::io::{self, BufRead, Read, Seek, SeekFrom};

use ring::digest;

/// The `prev` of the first line of a new file.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of the line last written, which the next line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead(String);

impl Default for ChainHead {
    fn default() -> Self {
        Self(GENESIS.to_owned())
    }
}

impl ChainHead {
    /// The head of an audit file being appended to: the hash of its last line, or the
    /// genesis for an empty file.
    ///
    /// # Errors
    /// If the file cannot be read.
    pub fn of_file(file: &mut File) -> io::Result<Self> {
        Ok(last_line(file)?.map_or_else(Self::default, |line| Self(line_hash(&line))))
    }

    /// `line` (one JSON object and its newline) with the head as its first field; the
    /// head becomes the linked line's hash.
    pub fn link(&mut self, line: &[u8]) -> Vec<u8> {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        let rest = match body.strip_prefix(b"{") {
            Some(rest) if rest.starts_with(b"}") => rest.to_vec(),
            Some(rest) => [b",".as_slice(), rest].concat(),
            None => [b",\"line\":".as_slice(), &json_string(body), b"}"].concat(),
        };
        let mut linked = format!("{{\"prev\":\"{}\"", self.0).into_bytes();
        linked.extend_from_slice(&rest);
        self.0 = line_hash(&linked);
        linked.push(b'\n');
        linked
    }
}

/// What a verified file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Lines in it.
    pub lines: u64,
    /// The hash of its last line.
    pub head: String,
    /// The `prev` of its first line when the file continues an earlier one (not the
    /// genesis).
    pub continues: Option<String>,
}

/// Where a file's chain breaks.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainBreak {
    /// A line is not an audit line with a `prev` field.
    #[error("line {line} is not a linked audit line")]
    NotLinked {
        /// Its number, from 1.
        line: u64,
    },
    /// A line's `prev` is not the hash of the line before it.
    #[error(
        "the chain breaks at line {line}: it follows a line hashing to {expected}, not {found}; a line before it was removed, inserted or edited"
    )]
    Broken {
        /// Its number, from 1.
        line: u64,
        /// The hash of the line before it.
        expected: String,
        /// The hash it carries.
        found: String,
    },
    /// The file cannot be read.
    #[error("cannot read the audit log: {0}")]
    Read(String),
}

/// Walks the chain of an audit file.
///
/// # Errors
/// [`ChainBreak`] at the first line that does not follow the one before it.
pub fn verify(reader: impl BufRead) -> Result<Verified, ChainBreak> {
    let mut verified = Verified {
        lines: 0,
        head: GENESIS.to_owned(),
        continues: None,
    };
    for line in reader.split(b'\n') {
        let line = line.map_err(|e| ChainBreak::Read(e.to_string()))?;
        verified.lines += 1;
        let number = verified.lines;
        let prev = prev_of(&line).ok_or(ChainBreak::NotLinked { line: number })?;
        if number == 1 {
            if prev != GENESIS {
                verified.continues = Some(prev.clone());
            }
        } else if prev != verified.head {
            return Err(ChainBreak::Broken {
                line: number,
                expected: verified.head,
                found: prev,
            });
        }
        verified.head = line_hash(&line);
    }
    Ok(verified)
}

/// The `prev` field a linked line starts with.
fn prev_of(line: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let prev = value.get("prev")?.as_str()?;
    let linked = line.starts_with(format!("{{\"prev\":\"{prev}\"").as_bytes());
    (linked && prev.len() == GENESIS.len()).then(|| prev.to_owned())
}

/// The hex SHA-256 of a line without its newline.
fn line_hash(line: &[u8]) -> String {
    digest::digest(&digest::SHA256, line)
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// `text` as a JSON string.
fn json_string(text: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&String::from_utf8_lossy(text)).unwrap_or_else(|_| b"\"\"".to_vec())
}

/// The last line of `file` without its newline, read backwards from its end; `None` when
/// it is empty.
fn last_line(file: &mut File) -> io::Result<Option<Vec<u8>>> {
    const CHUNK: u64 = 64 * 1024;
    let length = file.seek(SeekFrom::End(0))?;
    let mut tail: Vec<u8> = Vec::new();
    let mut start = length;
    loop {
        let body = tail.strip_suffix(b"\n").unwrap_or(&tail);
        if let Some(newline) = body.iter().rposition(|byte| *byte == b'\n') {
            return Ok(Some(body[newline + 1..].to_vec()));
        }
        if start == 0 {
            return Ok((!body.is_empty()).then(|| body.to_vec()));
        }
        let from = start.saturating_sub(CHUNK);
        file.seek(SeekFrom::Start(from))?;
        let mut chunk = vec![0; usize::try_from(start - from).unwrap_or(0)];
        file.read_exact(&mut chunk)?;
        chunk.extend_from_slice(&tail);
        tail = chunk;
        start = from;
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn chained(lines: &[&str]) -> Vec<Vec<u8>> {
        let mut head = ChainHead::default();
        lines
            .iter()
            .map(|line| head.link(format!("{line}\n").as_bytes()))
            .collect()
    }

    #[test]
    fn a_linked_file_verifies_and_names_its_head() {
        let lines = chained(&[r#"{"event":"a"}"#, r#"{"event":"b"}"#, "{}"]);
        assert!(lines[0].starts_with(format!("{{\"prev\":\"{GENESIS}\",\"event\"").as_bytes()));
        assert_eq!(
            lines[2].as_slice(),
            format!(
                "{{\"prev\":\"{}\"}}\n",
                line_hash(lines[1].strip_suffix(b"\n").expect("a line"))
            )
            .as_bytes()
        );
        let verified = verify(lines.concat().as_slice()).expect("intact");
        assert_eq!(verified.lines, 3);
        assert_eq!(
            verified.head,
            line_hash(lines[2].strip_suffix(b"\n").expect("a line"))
        );
        assert_eq!(verified.continues, None);
    }

    #[test]
    fn a_removed_or_edited_line_breaks_the_chain_at_the_next_line() {
        let lines = chained(&[r#"{"n":1}"#, r#"{"n":2}"#, r#"{"n":3}"#, r#"{"n":4}"#]);
        let removed = [&lines[0][..], &lines[2], &lines[3]].concat();
        assert!(matches!(
            verify(removed.as_slice()),
            Err(ChainBreak::Broken { line: 2, .. })
        ));
        let edited = String::from_utf8(lines.concat())
            .expect("text")
            .replace(r#""n":2"#, r#""n":7"#);
        assert!(matches!(
            verify(edited.as_bytes()),
            Err(ChainBreak::Broken { line: 3, .. })
        ));
        let unlinked = [&lines[0][..], b"{\"n\":9}\n"].concat();
        assert_eq!(
            verify(unlinked.as_slice()),
            Err(ChainBreak::NotLinked { line: 2 })
        );
    }

    #[test]
    fn a_file_appended_to_goes_on_from_its_last_line() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("audit.log");
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .expect("the file");
        assert_eq!(
            ChainHead::of_file(&mut file).expect("read"),
            ChainHead::default()
        );
        let first = chained(&[
            r#"{"n":1}"#,
            &format!(r#"{{"long":"{}"}}"#, "x".repeat(200_000)),
        ]);
        file.write_all(&first.concat()).expect("write");
        let mut head = ChainHead::of_file(&mut file).expect("read");
        file.write_all(&head.link(b"{\"n\":3}\n")).expect("write");
        let verified = verify(std::fs::read(&path).expect("read").as_slice()).expect("intact");
        assert_eq!(verified.lines, 3);
        // A later file of the same log (after rotation) continues the chain.
        let later = [head.link(b"{\"n\":4}\n")].concat();
        assert!(
            verify(later.as_slice())
                .expect("intact")
                .continues
                .is_some()
        );
    }
}
