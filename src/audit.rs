//! The audit log: what lifeboat did to the backups and the data, for the
//! person who must later answer "who restored what, when, and why is that
//! snapshot gone?".
//!
//! Append-only JSON lines in the backup directory (`audit.jsonl`, 0600),
//! one event per snapshot created, pushed or deleted (with the retention
//! reasons), restore and undo (account, snapshot, source, outcome),
//! verification or drill failure, and every archive entry the reader
//! refused (traversal, link, device, size). Each line is written with one
//! `write(2)` on an `O_APPEND` descriptor and fsynced, so concurrent runs
//! (a drill beside a snapshot) never interleave halves of lines. Past
//! [`ROTATE_BYTES`] the file is rotated to `audit.jsonl.1` (`.2`, `.3`;
//! the oldest goes), under a lock of its own. `docs/formats.md` documents
//! the events.
//!
//! The log is opened once per process ([`open`], by the command line when
//! it loads the configuration); code deep in the pipeline (the archive
//! reader) records through [`log`] without knowing where it goes. A
//! failure to write the audit log is logged, never fatal: it must not stop
//! a backup.

use crate::error::{IoContext, Result};
use crate::store::Store;
use serde::Serialize;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Rotate past this size (8 MiB: years of hourly runs).
pub const ROTATE_BYTES: u64 = 8 << 20;
/// Rotated files kept.
const KEEP: u32 = 3;

static SINK: Mutex<Option<PathBuf>> = Mutex::new(None);

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    SnapshotCreated {
        tag: String,
        archive: String,
        archive_bytes: u64,
        databases: Vec<String>,
    },
    SnapshotPushed {
        tag: String,
        remote: String,
        attempts: u32,
    },
    SnapshotDeleted {
        tag: String,
        /// `local` or the remote's description.
        place: String,
        /// Why the retention plan let it go.
        reason: String,
    },
    Restore {
        /// A tag, or `undo`.
        what: String,
        source: Option<String>,
        dry_run: bool,
        outcome: Outcome,
        databases: Vec<String>,
        error: Option<String>,
    },
    VerificationFailed {
        tag: String,
        source: String,
        /// `verify` or `drill`.
        by: String,
        error: String,
    },
    ArchiveEntryRefused {
        archive: String,
        entry: String,
        why: String,
    },
}

#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failed,
}

impl<T, E> From<&std::result::Result<T, E>> for Outcome {
    fn from(r: &std::result::Result<T, E>) -> Outcome {
        if r.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failed
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: chrono::DateTime<chrono::Utc>,
    account: String,
    uid: u32,
    pid: u32,
    lifeboat_version: &'static str,
    #[serde(flatten)]
    event: &'a Event,
}

/// Send this process's events to `store`'s audit log.
pub fn open(store: &Store) {
    *SINK.lock().unwrap_or_else(|e| e.into_inner()) = Some(store.audit_log());
}

/// Record `event` (nothing when no log is open, as in unit tests).
pub fn log(event: Event) {
    let Some(path) = SINK.lock().unwrap_or_else(|e| e.into_inner()).clone() else {
        return;
    };
    if let Err(e) = append(&path, &event) {
        tracing::warn!(path = %path.display(), error = %e.message, "cannot write the audit log");
    }
}

fn append(path: &Path, event: &Event) -> Result<()> {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    let line = Line {
        time: chrono::Utc::now(),
        account: crate::accounts::account_name(uid).unwrap_or_else(|| uid.to_string()),
        uid,
        pid: std::process::id(),
        lifeboat_version: env!("CARGO_PKG_VERSION"),
        event,
    };
    let mut bytes = serde_json::to_vec(&line).expect("events serialise");
    bytes.push(b'\n');
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    if !dir.is_dir() {
        return Ok(());
    }
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(lock_path(path))
        .ctx("cannot open the audit log's lock")?;
    // SAFETY: flock on a descriptor we own; released when `lock` closes.
    unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
    if std::fs::metadata(path).is_ok_and(|m| m.len() >= ROTATE_BYTES) {
        rotate(path);
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ctx(format!("cannot open {}", path.display()))?;
    file.write_all(&bytes)
        .ctx(format!("cannot write {}", path.display()))?;
    file.sync_data()
        .ctx(format!("cannot sync {}", path.display()))
}

fn lock_path(path: &Path) -> PathBuf {
    crate::store::with_suffix(path, ".lock")
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    crate::store::with_suffix(path, &format!(".{n}"))
}

/// `audit.jsonl` -> `.1` -> `.2` -> `.3`; the oldest is dropped.
fn rotate(path: &Path) {
    let _ = std::fs::remove_file(rotated(path, KEEP));
    for n in (1..KEEP).rev() {
        let _ = std::fs::rename(rotated(path, n), rotated(path, n + 1));
    }
    let _ = std::fs::rename(path, rotated(path, 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_append_and_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let event = Event::SnapshotPushed {
            tag: "snap-20261122T014500Z".into(),
            remote: "dir:/mnt".into(),
            attempts: 1,
        };
        append(&path, &event).unwrap();
        append(&path, &event).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "snapshot_pushed");
        assert_eq!(lines[0]["tag"], "snap-20261122T014500Z");
        assert!(lines[0]["account"].is_string() && lines[0]["pid"].is_u64());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        // Past the size, the next event starts a new file; at most KEEP old.
        for n in 0..5 {
            std::fs::write(&path, vec![b'x'; ROTATE_BYTES as usize]).unwrap();
            append(&path, &event).unwrap();
            assert_eq!(
                std::fs::read_to_string(&path).unwrap().lines().count(),
                1,
                "{n}"
            );
        }
        assert!(rotated(&path, KEEP).exists());
        assert!(!rotated(&path, KEEP + 1).exists());
    }
}
