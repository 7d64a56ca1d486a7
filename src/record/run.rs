//! `last_run.json`: what the last run did, written atomically after every
//! run, successful or not. `lifeboat health` reads only this file (and
//! `drill.json`), so a monitoring probe never touches the network.
//!
//! Facts a monitor needs even after a failed run (the last successful
//! snapshot, whether it was pushed) are carried forward from the previous
//! record in `last_success`, and the newest outcome of each kind of run in
//! `runs`, so that a failed restore never hides how the last backup went.

use crate::error::{Error, Result};
use crate::tag::{Kind as TagKind, Tag};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const RECORD_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Success,
    /// A snapshot run that backed up some databases but not all: the
    /// snapshot exists and was pushed, and each database it lacks is named
    /// in `snapshot.failed`.
    Partial,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub record_version: u32,
    /// The subcommand that ran: `snapshot`, `backup-now`, `prune`, `restore`, ...
    pub command: String,
    pub status: Status,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub duration_secs: f64,
    #[serde(default)]
    pub error: Option<ErrorRecord>,
    #[serde(default)]
    pub snapshot: Option<SnapshotResult>,
    #[serde(default)]
    pub push: Option<PushResult>,
    /// Every remote's push, in the configuration's order (`push` is the
    /// first's, as records had it before several remotes). Empty in
    /// records written before it existed: see [`RunRecord::pushes`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pushes: Vec<PushResult>,
    #[serde(default)]
    pub retention: Option<RetentionResult>,
    /// The newest successful snapshot, carried forward across failed runs.
    #[serde(default)]
    pub last_success: Option<LastSuccess>,
    /// The newest snapshot run (`snapshot`/`backup-now`) and how it ended,
    /// carried forward by other commands: a successful `prune` must not hide
    /// that the last backup failed.
    #[serde(default)]
    pub last_backup: Option<BackupOutcome>,
    /// The newest run of each kind, by [`RunKind::label`], carried forward.
    #[serde(default)]
    pub runs: BTreeMap<String, RunSummary>,
}

/// The kinds of run that have their own series in the records and the
/// metrics. `backup-now` is a snapshot; `restore --undo` is a restore; a
/// drill's record is `drill.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Snapshot,
    Restore,
    Prune,
    Migrate,
    Drill,
}

impl RunKind {
    pub const ALL: [RunKind; 5] = [
        RunKind::Snapshot,
        RunKind::Restore,
        RunKind::Prune,
        RunKind::Migrate,
        RunKind::Drill,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RunKind::Snapshot => "snapshot",
            RunKind::Restore => "restore",
            RunKind::Prune => "prune",
            RunKind::Migrate => "migrate",
            RunKind::Drill => "drill",
        }
    }

    /// The kind of a recorded `command`.
    pub fn of(command: &str) -> Option<RunKind> {
        match command {
            "snapshot" | "backup-now" => Some(RunKind::Snapshot),
            "restore" => Some(RunKind::Restore),
            "prune" => Some(RunKind::Prune),
            "migrate" => Some(RunKind::Migrate),
            "drill" => Some(RunKind::Drill),
            _ => None,
        }
    }
}

/// How the newest run of one kind ended.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub command: String,
    pub status: Status,
    pub finished_at: DateTime<Utc>,
    pub duration_secs: f64,
    #[serde(default)]
    pub error: Option<ErrorRecord>,
}

/// Whether the newest snapshot run succeeded, and why not.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupOutcome {
    pub command: String,
    pub status: Status,
    pub finished_at: DateTime<Utc>,
    #[serde(default)]
    pub error: Option<ErrorRecord>,
}

/// The commands whose runs are backups.
pub fn is_backup_command(command: &str) -> bool {
    matches!(command, "snapshot" | "backup-now")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub kind: crate::error::Kind,
    pub message: String,
    #[serde(default)]
    pub hint: Option<String>,
}

impl From<&Error> for ErrorRecord {
    fn from(e: &Error) -> Self {
        ErrorRecord {
            kind: e.kind,
            message: e.message.clone(),
            hint: e.hint.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotResult {
    pub tag: Tag,
    pub kind: TagKind,
    #[serde(default)]
    pub reason: Option<String>,
    /// The archive's file name inside `backup_dir`.
    pub archive: String,
    pub archive_bytes: u64,
    pub databases: Vec<DatabaseResult>,
    /// Configured databases that could not be copied: the snapshot is partial.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<DatabaseFailure>,
    /// Optional databases that did not exist yet, skipped without a warning.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// A database a snapshot run could not copy, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseFailure {
    pub name: String,
    pub error: ErrorRecord,
}

impl SnapshotResult {
    /// The error a partial snapshot's run ends with (exit 1), naming each
    /// database it lacks; `None` when it holds them all.
    pub fn partial_error(&self) -> Option<Error> {
        if self.failed.is_empty() {
            return None;
        }
        let names: Vec<String> = self
            .failed
            .iter()
            .map(|f| format!("`{}`", f.name))
            .collect();
        let mut message = format!(
            "snapshot {} is partial: {} not backed up",
            self.tag,
            if names.len() == 1 {
                format!("database {} was", names[0])
            } else {
                format!("databases {} were", names.join(", "))
            }
        );
        for f in &self.failed {
            message.push_str(&format!("\n  {}", f.error.message));
        }
        let own_hint = match self.failed.as_slice() {
            [one] => one.error.hint.clone(),
            _ => None,
        };
        let hint = format!(
            "{}the other databases were backed up and pushed; nothing is pruned until every \
             database is backed up again",
            own_hint.map(|h| format!("{h}; ")).unwrap_or_default()
        );
        Some(Error::database(message).with_hint(hint))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatabaseResult {
    pub name: String,
    pub path: String,
    pub bytes: u64,
    pub schema_version: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PushStatus {
    Pushed,
    Failed,
    /// No remote configured.
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushResult {
    /// The remote's description, e.g. `github:owner/name` or `dir:/mnt/nas`.
    pub remote: String,
    pub status: PushStatus,
    /// Attempts used by the last push of this run.
    pub attempts: u32,
    /// Tags pushed by this run (earlier unpushed ones first).
    #[serde(default)]
    pub pushed: Vec<Tag>,
    #[serde(default)]
    pub error: Option<ErrorRecord>,
    /// Snapshots this remote refuses for good (an archive too large for
    /// it), set aside so they do not hold up later ones: each stays only on
    /// this machine until the user deals with it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<RefusedPush>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefusedPush {
    pub tag: Tag,
    pub error: ErrorRecord,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RetentionResult {
    #[serde(default)]
    pub local: Option<SweepResult>,
    /// The first remote's sweep (as records had it before several remotes).
    #[serde(default)]
    pub remote: Option<SweepResult>,
    /// Every remote's sweep, by remote name (`dir`, `github`, `rclone`); a
    /// remote whose sweep did not run (its queue not empty, or it failed)
    /// is absent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub remotes: BTreeMap<String, SweepResult>,
}

impl RetentionResult {
    /// Every remote's sweep, also for records written before `remotes`.
    pub fn remote_sweeps(&self) -> Vec<(&str, &SweepResult)> {
        if self.remotes.is_empty() {
            return self.remote.iter().map(|s| ("remote", s)).collect();
        }
        self.remotes.iter().map(|(k, v)| (k.as_str(), v)).collect()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SweepResult {
    pub kept: usize,
    pub deleted: Vec<Tag>,
    /// Deletions that failed; the next run tries again.
    pub failed: Vec<FailedDeletion>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailedDeletion {
    pub tag: Tag,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LastSuccess {
    pub tag: Tag,
    pub finished_at: DateTime<Utc>,
    pub archive_bytes: u64,
    /// Whether the snapshot reached the remote (false when none is configured).
    pub pushed: bool,
}

impl RunRecord {
    /// A record for a run of `command` that started at `started_at`; fill in
    /// the results, then [`RunRecord::finish`].
    pub fn start(command: &str, started_at: DateTime<Utc>) -> RunRecord {
        RunRecord {
            record_version: RECORD_VERSION,
            command: command.to_string(),
            status: Status::Success,
            started_at,
            finished_at: started_at,
            duration_secs: 0.0,
            error: None,
            snapshot: None,
            push: None,
            pushes: vec![],
            retention: None,
            last_success: None,
            last_backup: None,
            runs: BTreeMap::new(),
        }
    }

    /// Every remote's push result, also for records written before
    /// `pushes` existed (then only `push`).
    pub fn pushes(&self) -> Vec<&PushResult> {
        if self.pushes.is_empty() {
            return self.push.iter().collect();
        }
        self.pushes.iter().collect()
    }

    /// Record the outcome of a backup taken inside another run (the safety
    /// snapshot `migrate` takes): the snapshot series moves on with it.
    pub fn note_backup(&mut self, started_at: DateTime<Utc>, outcome: Result<(), &Error>) {
        let finished_at = Utc::now();
        let partial = self
            .snapshot
            .as_ref()
            .and_then(SnapshotResult::partial_error);
        let (status, error) = match (outcome, partial) {
            (Ok(()), None) => (Status::Success, None),
            (Ok(()), Some(p)) => (Status::Partial, Some(ErrorRecord::from(&p))),
            (Err(e), _) => (Status::Failed, Some(ErrorRecord::from(e))),
        };
        self.last_backup = Some(BackupOutcome {
            command: self.command.clone(),
            status,
            finished_at,
            error: error.clone(),
        });
        self.runs.insert(
            RunKind::Snapshot.label().to_string(),
            RunSummary {
                command: self.command.clone(),
                status,
                finished_at,
                duration_secs: seconds(finished_at - started_at),
                error,
            },
        );
    }

    /// The per-kind outcomes; for a record written before they existed,
    /// seeded from its own top-level outcome, so that upgrading never
    /// drops the series of the last run.
    pub fn runs_or_seeded(&self) -> BTreeMap<String, RunSummary> {
        if !self.runs.is_empty() {
            return self.runs.clone();
        }
        RunKind::of(&self.command)
            .map(|kind| {
                let summary = RunSummary {
                    command: self.command.clone(),
                    status: self.status,
                    finished_at: self.finished_at,
                    duration_secs: self.duration_secs,
                    error: self.error.clone(),
                };
                BTreeMap::from([(kind.label().to_string(), summary)])
            })
            .unwrap_or_default()
    }

    /// Read `last_run.json`. `Ok(None)` when it does not exist.
    pub fn load(path: &Path) -> Result<Option<RunRecord>> {
        super::load(path, "run record", "the next successful run")
    }

    /// Set the outcome, carry `last_success` forward from `previous`, and
    /// write the record atomically to `path`.
    pub fn finish(
        mut self,
        outcome: Result<(), &Error>,
        previous: Option<&RunRecord>,
        path: &Path,
    ) -> Result<RunRecord> {
        self.finished_at = Utc::now();
        self.duration_secs = seconds(self.finished_at - self.started_at);
        let partial = self
            .snapshot
            .as_ref()
            .and_then(SnapshotResult::partial_error);
        match (outcome, partial) {
            (Ok(()), None) => self.status = Status::Success,
            (Ok(()), Some(p)) => {
                self.status = Status::Partial;
                self.error = Some((&p).into());
            }
            (Err(e), _) => {
                self.status = Status::Failed;
                self.error = Some(e.into());
            }
        }
        if self.last_success.is_none() {
            self.last_success = previous.and_then(|p| p.last_success.clone());
        }
        // A run that took no snapshot (restore, prune, migrate with nothing
        // to do) leaves the last backup's push and sweep results in place:
        // they are still the newest facts about the remote, and `health` and
        // the metrics read them from here.
        if !is_backup_command(&self.command)
            && self.snapshot.is_none()
            && let Some(p) = previous
        {
            if self.push.is_none() {
                self.push = p.push.clone();
                self.pushes = p.pushes.clone();
                self.snapshot = p.snapshot.clone();
            }
            if self.retention.is_none() {
                self.retention = p.retention.clone();
            }
        }
        if is_backup_command(&self.command) {
            self.last_backup = Some(BackupOutcome {
                command: self.command.clone(),
                status: self.status,
                finished_at: self.finished_at,
                error: self.error.clone(),
            });
        } else if self.last_backup.is_none() {
            self.last_backup = previous.and_then(|p| p.last_backup.clone());
        }
        // Every kind keeps its newest outcome; this run's own replaces its kind's.
        let mut runs = previous.map(RunRecord::runs_or_seeded).unwrap_or_default();
        runs.append(&mut self.runs);
        if let Some(kind) = RunKind::of(&self.command) {
            runs.insert(
                kind.label().to_string(),
                RunSummary {
                    command: self.command.clone(),
                    status: self.status,
                    finished_at: self.finished_at,
                    duration_secs: self.duration_secs,
                    error: self.error.clone(),
                },
            );
        }
        self.runs = runs;
        let written = super::save(path, &self);
        match (written, outcome) {
            (Ok(()), _) => Ok(self),
            (Err(write), Ok(())) => Err(write),
            // The run's own failure is what the user must see (a full disk
            // usually explains both); the lost record is added to it.
            (Err(write), Err(run)) => Err(Error {
                kind: run.kind,
                message: format!(
                    "{}\n  (the run record could not be written either: {})",
                    run.message, write.message
                ),
                hint: run.hint.clone().or(write.hint),
            }),
        }
    }
}

fn seconds(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds().max(0) as f64 / 1000.0
}
