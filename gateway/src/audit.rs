//! Logging: human-readable logs on standard error, and the audit log — one JSON line per
//! login (success, failure, lock-out) and per refused statement (policy or limit), from
//! events with target [`AUDIT_TARGET`] anywhere in the gateway.
//!
//! The audit log goes to standard error until [`direct_to`] names a file (`usage.audit_log`).
//! Each line carries the hash of the line before it (`audit_chain`).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::audit_chain::ChainHead;

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, filter};

/// The target of audit events.
pub const AUDIT_TARGET: &str = "tollgate::audit";

/// The audit file and the hash its next line carries.
static DESTINATION: OnceLock<Mutex<(File, ChainHead)>> = OnceLock::new();

/// The hash the next line on standard error carries, until a file is named.
static STDERR_HEAD: Mutex<Option<ChainHead>> = Mutex::new(None);

/// Installs the process's logging: `RUST_LOG` (default `info`) for logs, audit lines always.
pub fn init() {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(io::stderr)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_filter(filter::filter_fn(|meta| meta.target() != AUDIT_TARGET));
    let audit = tracing_subscriber::fmt::layer()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_writer(AuditWriter)
        .with_filter(filter::filter_fn(|meta| meta.target() == AUDIT_TARGET));
    let _ = tracing_subscriber::registry()
        .with(logs)
        .with(audit)
        .try_init();
}

/// Appends audit lines to `path` from now on (once per process), the chain going on from
/// its last line.
///
/// # Errors
/// If the file cannot be opened for appending, or its last line cannot be read.
pub fn direct_to(path: &Path) -> io::Result<()> {
    if DESTINATION.get().is_some() {
        return Ok(());
    }
    let mut file = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(path)?;
    let head = ChainHead::of_file(&mut file)?;
    let _ = DESTINATION.set(Mutex::new((file, head)));
    Ok(())
}

/// Where audit lines are written.
struct AuditWriter;

impl<'a> MakeWriter<'a> for AuditWriter {
    type Writer = AuditLine;

    fn make_writer(&'a self) -> Self::Writer {
        AuditLine(Vec::new())
    }
}

/// One audit line, written whole when dropped so lines never interleave.
struct AuditLine(Vec<u8>);

impl Write for AuditLine {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for AuditLine {
    fn drop(&mut self) {
        let written = match DESTINATION.get() {
            Some(destination) => {
                let (file, head) = &mut *destination.lock().unwrap_or_else(PoisonError::into_inner);
                file.write_all(&head.link(&self.0))
            }
            None => {
                let mut head = STDERR_HEAD.lock().unwrap_or_else(PoisonError::into_inner);
                let line = head.get_or_insert_with(ChainHead::default).link(&self.0);
                io::stderr().write_all(&line)
            }
        };
        if let Err(error) = written {
            eprintln!("tollgate: cannot write the audit log: {error}");
        }
    }
}
