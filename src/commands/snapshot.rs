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
use crate::remote;
use crate::runrecord::{
    DatabaseResult, LastSuccess, PushResult, PushStatus, RunRecord, SnapshotResult,
};
use crate::snapshot::{self, Snapshot};
use crate::tag::Kind;

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
                let push = remote::pending::push_pending(config, remote.as_ref(), &snap);
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
