//! Backup: `snapshot` (the hourly job) and `backup-now` (a manual snapshot
//! before a risky operation). One run: snapshot, verify, push (earlier
//! unpushed snapshots first), sweep local then remote.

use super::run::{Run, recorded};
use super::{Env, push};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::record::{
    DatabaseFailure, DatabaseResult, LastSuccess, PushResult, PushStatus, RunRecord, SnapshotResult,
};
use crate::snapshot::{self, Snapshot};
use crate::tag::Kind;

#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Scheduled (`snapshot`) or manual (`backup-now`).
    pub kind: Kind,
    /// Why a manual snapshot is taken; stored in the manifest.
    pub reason: Option<String>,
}

/// What a backup run did: its record, as written to `last_run.json`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(transparent)]
pub struct Backup {
    pub record: RunRecord,
}

impl Backup {
    /// A partial snapshot or a failed push fails the run (exit 1) although
    /// the snapshot was taken and recorded: the next run pushes it first.
    pub fn outcome(&self) -> Result<()> {
        if let Some(partial) = self
            .record
            .snapshot
            .as_ref()
            .and_then(|s| s.partial_error())
        {
            return Err(partial);
        }
        let Some((remote, e)) = self
            .record
            .pushes()
            .into_iter()
            .find_map(|p| p.error.as_ref().map(|e| (&p.remote, e)))
        else {
            return Ok(());
        };
        let tag = self.record.snapshot.as_ref().map(|s| s.tag.to_string());
        Err(Error {
            kind: e.kind,
            message: format!(
                "snapshot {} was taken but not pushed to {remote}: {}",
                tag.unwrap_or_default(),
                e.message
            ),
            hint: e
                .hint
                .clone()
                .or_else(|| Some("the next run pushes it before pruning anything".into())),
        })
    }
}

/// Take a snapshot with the full pipeline, as one recorded run.
pub fn backup(config: &Config, env: &Env, opts: &BackupOptions) -> Result<Backup> {
    let command = match opts.kind {
        Kind::Scheduled => "snapshot",
        Kind::Manual => "backup-now",
    };
    config.require_data_dir()?;
    let ((), record) = recorded(config, env, command, |run| {
        take_push_sweep(run, opts).map(drop)
    })?;
    Ok(Backup { record })
}

/// The pipeline inside a run (the caller holds the lock): snapshot, push,
/// sweep, with every result put in the run's record. `Err` means the
/// snapshot itself failed, or a stop signal ([`crate::interrupt`]) ended
/// the run: it is checked before the push (by the push queue), after it,
/// and after the sweep, and a gh call in progress stops at once. A snapshot
/// taken but not pushed stays queued for the next run.
pub(crate) fn take_push_sweep(run: &mut Run, opts: &BackupOptions) -> Result<Snapshot> {
    let config = run.config;
    let progress = crate::progress::Copying::new();
    let snap = snapshot::take(
        config,
        opts.kind,
        opts.reason.clone(),
        &|db, done, total| progress.update(db, done, total),
    )?;
    progress.finish();
    crate::audit::log(crate::audit::Event::SnapshotCreated {
        tag: snap.tag.to_string(),
        archive: snap.archive.display().to_string(),
        archive_bytes: snap.archive_bytes,
        databases: snap
            .manifest
            .databases
            .iter()
            .map(|d| d.name.clone())
            .collect(),
    });
    let record = &mut run.record;
    record.snapshot = Some(snapshot_result(&snap));
    // Each remote pushes its own queue: one that is down or refuses holds
    // up nothing for the others. A stop signal ends the round (the rest
    // stay queued).
    let remotes = crate::remote::open_all(config);
    let names: Vec<&str> = remotes.iter().map(|r| r.name()).collect();
    let mut pushes = Vec::new();
    for remote in &remotes {
        let result = push::push_pending(&config.store(), remote.as_ref(), &snap, &names);
        let interrupted = result
            .error
            .as_ref()
            .is_some_and(|e| e.kind == crate::error::Kind::Interrupted);
        pushes.push(result);
        if interrupted {
            break;
        }
    }
    // Off the machine: on at least one remote (each failing one warns).
    let pushed = pushes
        .iter()
        .any(|p| p.status == PushStatus::Pushed && p.pushed.contains(&snap.tag));
    record.push = Some(pushes.first().cloned().unwrap_or(PushResult {
        remote: "none".into(),
        status: PushStatus::Skipped,
        attempts: 0,
        pushed: vec![],
        error: None,
        refused: vec![],
    }));
    record.pushes = pushes;
    let remote = (!remotes.is_empty()).then_some(());
    // The last success is the newest snapshot holding every database: a
    // partial one must not make a database that failed look fresh.
    if snap.is_complete() {
        record.last_success = Some(LastSuccess {
            tag: snap.tag,
            finished_at: chrono::Utc::now(),
            archive_bytes: snap.archive_bytes,
            pushed,
        });
    }
    let stopped = |stop, step: &str| {
        let fate = match (&remote, pushed) {
            (None, _) => "taken",
            (Some(_), true) => "taken and pushed",
            (Some(_), false) => "taken but not pushed (it stays queued for the next run)",
        };
        Error::from(stop).context(format!("snapshot {} was {fate}; {step}", snap.tag))
    };
    crate::interrupt::check().map_err(|stop| stopped(stop, "the sweep did not run"))?;
    if !snap.is_complete() {
        // Older snapshots hold the newest copy of the databases this one
        // lacks; a run of partial snapshots must not prune them away.
        crate::progress::notice(&format!(
            "not pruning: snapshot {} is partial, and older snapshots hold the newest copy of {}",
            snap.tag,
            snap.failed
                .iter()
                .map(|(name, _)| format!("`{name}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return Ok(snap);
    }
    record.retention = Some(crate::retention::sweep_after_snapshot(
        config, &remotes, &snap.tag,
    ));
    crate::interrupt::check().map_err(|stop| stopped(stop, "the sweep was cut short"))?;
    Ok(snap)
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
        failed: snap
            .failed
            .iter()
            .map(|(name, e)| DatabaseFailure {
                name: name.clone(),
                error: e.into(),
            })
            .collect(),
        skipped: snap
            .manifest
            .skipped
            .iter()
            .filter(|s| s.optional)
            .map(|s| s.name.clone())
            .collect(),
    }
}
