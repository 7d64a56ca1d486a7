//! The records lifeboat keeps of its own runs, beside the archives:
//! `last_run.json` ([`run`]: what the last run did, and the newest outcome
//! of each kind of run) and `drill.json` ([`drill`]: the last restore
//! drill). `health` and the metrics read only these, so a monitoring probe
//! never touches the network.
//!
//! Both are JSON written atomically (temp file, fsync, rename) and carry
//! facts forward from the record they replace: a failed run must not erase
//! when the last good one was. This module owns the part they share.

pub mod drill;
pub mod run;

pub use drill::{DRILL_VERSION, DrillDatabase, DrillRecord, Outcome};
pub use run::{
    BackupOutcome, DatabaseFailure, DatabaseResult, ErrorRecord, FailedDeletion, LastSuccess,
    PushResult, PushStatus, RECORD_VERSION, RefusedPush, RetentionResult, RunKind, RunRecord,
    RunSummary, SnapshotResult, Status, SweepResult,
};

use crate::error::{Error, Kind, Result};
use std::path::Path;

/// Read a JSON record. `Ok(None)` when it does not exist yet; a record that
/// does not parse is an error whose hint says what rewrites it.
fn load<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &str,
    rewritten_by: &str,
) -> Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::new(
            Kind::Io,
            format!("{} is not a valid {what}: {e}", path.display()),
        )
        .with_hint(format!("{rewritten_by} rewrites it"))
    })
}

/// Write a record atomically, creating its private directory if needed.
fn save<T: serde::Serialize>(path: &Path, record: &T) -> Result<()> {
    if let Some(parent) = path.parent() {
        crate::fsutil::private_dir(parent)?;
    }
    crate::fsutil::write_json_atomic(path, record)
}
