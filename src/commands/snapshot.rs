//! `lifeboat snapshot` (the hourly job) and `lifeboat backup-now` (a manual
//! snapshot before a risky operation).
//!
//! One run: lock, snapshot, verify, push (earlier unpushed snapshots first),
//! sweep local then remote, and record everything in `last_run.json`, which
//! is written whatever happens.

use super::Global;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::remote::{self, Remote};
use crate::runrecord::{
    DatabaseResult, LastSuccess, PushResult, PushStatus, RunRecord, SnapshotResult,
};
use crate::snapshot::{self, Snapshot};
use crate::tag::{Kind, Tag};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct SnapshotArgs {}

#[derive(Debug, clap::Args)]
pub struct BackupNowArgs {
    /// Why this snapshot is taken; stored in the manifest.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

pub fn run_scheduled(global: &Global, _args: SnapshotArgs) -> Result<i32> {
    let config = global.load_config()?;
    run(global, &config, "snapshot", Kind::Scheduled, None)
}

pub fn run_manual(global: &Global, args: BackupNowArgs) -> Result<i32> {
    let config = global.load_config()?;
    run(global, &config, "backup-now", Kind::Manual, args.reason)
}

/// Take a snapshot with the full pipeline and print the result.
pub fn run(
    global: &Global,
    config: &Config,
    command: &str,
    kind: Kind,
    reason: Option<String>,
) -> Result<i32> {
    let record = execute(global, config, command, kind, reason)?;
    if global.json {
        global.print_json(&record);
    } else if let Some(s) = &record.snapshot {
        println!(
            "{} {} ({} bytes)",
            s.tag,
            config.backup_dir.join(&s.archive).display(),
            s.archive_bytes
        );
        if let Some(p) = &record.push {
            match p.status {
                PushStatus::Pushed => {
                    println!("pushed to {} ({} attempt(s))", p.remote, p.attempts)
                }
                PushStatus::Failed => {}
                PushStatus::Skipped => {
                    println!("no remote configured: the snapshot is only on this machine")
                }
            }
        }
    }
    // A failed push fails the run (exit 1) but the snapshot stays, recorded.
    match record.push.as_ref().and_then(|p| p.error.as_ref()) {
        Some(e) => Err(Error {
            kind: e.kind,
            message: format!(
                "snapshot {} was taken but not pushed: {}",
                record
                    .snapshot
                    .as_ref()
                    .map(|s| s.tag.to_string())
                    .unwrap_or_default(),
                e.message
            ),
            hint: e
                .hint
                .clone()
                .or_else(|| Some("the next run pushes it before pruning anything".into())),
        }),
        None => Ok(0),
    }
}

/// The pipeline behind `snapshot`, `backup-now` and `migrate`'s safety
/// snapshot: returns the written record. An `Err` means the snapshot itself
/// failed (and was recorded as failed).
pub fn execute(
    global: &Global,
    config: &Config,
    command: &str,
    kind: Kind,
    reason: Option<String>,
) -> Result<RunRecord> {
    let started = chrono::Utc::now();
    let record_path = config.last_run_path();
    let previous = RunRecord::load(&record_path).ok().flatten();
    let mut record = RunRecord::start(command, started);

    let outcome = (|| {
        let _lock = Lock::acquire(&config.backup_dir, command, config.snapshot.lock_timeout)?;
        crate::restore::recover(config)?;
        let progress = crate::progress::Copying::new(global);
        let snap = snapshot::take(config, kind, reason, &|db, done, total| {
            progress.update(db, done, total)
        })?;
        progress.finish();
        record.snapshot = Some(snapshot_result(&snap));
        let remote = remote::from_config(config)?;
        let pushed = match &remote {
            Some(remote) => {
                let push = push_pending(config, remote.as_ref(), &snap);
                let ok = push.status == PushStatus::Pushed;
                record.push = Some(push);
                ok
            }
            None => {
                record.push = Some(PushResult {
                    remote: "none".into(),
                    status: PushStatus::Skipped,
                    attempts: 0,
                    pushed: vec![],
                    error: None,
                });
                false
            }
        };
        record.last_success = Some(LastSuccess {
            tag: snap.tag,
            finished_at: chrono::Utc::now(),
            archive_bytes: snap.archive_bytes,
            pushed,
        });
        record.retention = Some(crate::retention::sweep_after_snapshot(
            config,
            remote.as_deref(),
            &snap.tag,
        ));
        Ok(())
    })();

    let record = record.finish(
        outcome.as_ref().map(|_| ()),
        previous.as_ref(),
        &record_path,
    )?;
    crate::metrics::write_if_configured(config, global, &record);
    outcome.map(|_| record)
}

fn snapshot_result(snap: &Snapshot) -> SnapshotResult {
    SnapshotResult {
        tag: snap.tag,
        kind: snap.tag.kind(),
        reason: snap.manifest.reason.clone(),
        archive: snap
            .archive
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned(),
        archive_bytes: snap.archive_bytes,
        databases: snap
            .manifest
            .databases
            .iter()
            .map(|d| DatabaseResult {
                name: d.name.clone(),
                path: d.path.clone(),
                bytes: d.bytes,
                schema_version: d.schema_version,
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------
// Pending pushes.
//
// Before a push starts, an empty `<tag>.pending-push` marker is written
// beside the archive; it is removed once the remote confirms the upload. A
// marker that survives (push failed, process killed) means "push me first
// next time", and the local sweep never deletes a snapshot that has one.

const PENDING_SUFFIX: &str = ".pending-push";

fn marker(backup_dir: &Path, tag: &Tag) -> PathBuf {
    backup_dir.join(format!("{tag}{PENDING_SUFFIX}"))
}

/// Tags whose push has not been confirmed, oldest first.
pub fn pending_pushes(backup_dir: &Path) -> Vec<Tag> {
    let mut tags: Vec<Tag> = std::fs::read_dir(backup_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(PENDING_SUFFIX).and_then(Tag::parse)
        })
        .collect();
    tags.sort();
    tags
}

/// Push every pending snapshot (oldest first), then `snap`. Stops at the
/// first failure: the rest stay pending for the next run.
pub fn push_pending(config: &Config, remote: &dyn Remote, snap: &Snapshot) -> PushResult {
    let mut result = PushResult {
        remote: remote.describe(),
        status: PushStatus::Pushed,
        attempts: 0,
        pushed: vec![],
        error: None,
    };
    if let Err(e) = crate::fsutil::write_atomic(&marker(&config.backup_dir, &snap.tag), b"") {
        result.status = PushStatus::Failed;
        result.error = Some((&e).into());
        return result;
    }
    let local = snapshot::list_local(&config.backup_dir).unwrap_or_default();
    for tag in pending_pushes(&config.backup_dir) {
        let Some((_, archive)) = local.iter().find(|(t, _)| *t == tag) else {
            // The archive is gone (removed by hand): nothing left to push.
            tracing::warn!(%tag, "pending push has no local archive; dropping it");
            let _ = std::fs::remove_file(marker(&config.backup_dir, &tag));
            continue;
        };
        let notes = if tag == snap.tag {
            snap.manifest.summary()
        } else {
            format!("lifeboat snapshot {tag}")
        };
        match remote.push(&tag, archive, &notes) {
            Ok(outcome) => {
                result.attempts = outcome.attempts;
                result.pushed.push(tag);
                let _ = std::fs::remove_file(marker(&config.backup_dir, &tag));
                let _ = crate::fsutil::sync_dir(&config.backup_dir);
                tracing::info!(%tag, remote = %result.remote, attempts = outcome.attempts, "snapshot pushed");
            }
            Err(e) => {
                tracing::error!(%tag, remote = %result.remote, error = %e.message, "push failed");
                result.status = PushStatus::Failed;
                result.error = Some((&e).into());
                break;
            }
        }
    }
    result
}
