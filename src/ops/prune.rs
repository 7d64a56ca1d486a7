//! Prune: apply the retention policy now, to the local archives and the
//! remote (the same sweep every snapshot run does), and say why each
//! snapshot is kept or deleted.

use super::Env;
use super::run::{locked, recorded};
use crate::config::Config;
use crate::error::{Error, Kind, Result};
use crate::record::{RetentionResult, SweepResult};
use crate::retention::{self, Plan};

#[derive(Debug, Clone, Default)]
pub struct PruneOptions {
    /// Plan only; delete nothing (and record no run).
    pub dry_run: bool,
    /// Only the local archives.
    pub local_only: bool,
    /// Only the remote.
    pub remote_only: bool,
}

/// One swept place.
#[derive(Debug, serde::Serialize)]
pub struct Section {
    pub location: String,
    pub plan: Plan,
    #[serde(flatten)]
    pub result: SweepResult,
}

#[derive(Debug, serde::Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    pub local: Option<Section>,
    /// The first remote's section (as before several remotes).
    pub remote: Option<Section>,
    /// Every remote's, in the configuration's order.
    pub remotes: Vec<Section>,
    /// The pre-restore copies beside data_dir (not with --remote).
    pub pre_restore: Option<PreRestoreSection>,
}

/// The pre-restore copies restore left beside `data_dir`: `prune` keeps
/// the newest `[restore] keep_pre_restore` (by sequence) and every one
/// younger than `keep_pre_restore_days` (by the time in its name), and
/// deletes the rest. Set-aside directories are never touched.
#[derive(Debug, serde::Serialize)]
pub struct PreRestoreSection {
    pub keep_last: u32,
    pub keep_days: u32,
    /// Oldest first.
    pub copies: Vec<PreRestoreCopy>,
}

#[derive(Debug, serde::Serialize)]
pub struct PreRestoreCopy {
    pub path: std::path::PathBuf,
    pub taken: Option<chrono::DateTime<chrono::Utc>>,
    pub keep: bool,
    pub reason: String,
    /// The deletion failed (the copy stays; the next prune tries again).
    pub error: Option<String>,
}

/// Decide (and unless `dry_run`, apply) the pre-restore retention.
pub fn prune_pre_restore(config: &Config, dry_run: bool) -> PreRestoreSection {
    let now = chrono::Utc::now();
    let keep_last = config.restore.keep_pre_restore;
    let keep_days = config.restore.keep_pre_restore_days;
    let dirs = config.data_area().pre_restore_dirs();
    let newest_from = dirs.len().saturating_sub(keep_last as usize);
    let copies = dirs
        .into_iter()
        .enumerate()
        .filter_map(|(i, path)| {
            // Only names restore gives its copies; anything else is not ours.
            let taken = crate::store::DataArea::pre_restore_time(&path);
            let name = path.file_name()?.to_string_lossy().into_owned();
            if !name.contains(".pre-restore-") || name.contains(".set-aside-") {
                return None;
            }
            let age_days = taken.map(|t| (now - t).num_seconds() as f64 / 86_400.0);
            let (keep, reason) = if i >= newest_from {
                (true, format!("one of the newest {keep_last}"))
            } else if let Some(age) = age_days.filter(|a| *a < f64::from(keep_days)) {
                (
                    true,
                    format!("younger than {keep_days} days ({age:.1} days)"),
                )
            } else if taken.is_none() {
                (true, "its time is unknown".to_string())
            } else {
                (
                    false,
                    format!("older than {keep_days} days and not one of the newest {keep_last}"),
                )
            };
            let error = (!keep && !dry_run)
                .then(|| std::fs::remove_dir_all(&path).err())
                .flatten()
                .map(|e| format!("cannot delete {}: {e}", path.display()));
            Some(PreRestoreCopy {
                path,
                taken,
                keep,
                reason,
                error,
            })
        })
        .collect();
    PreRestoreSection {
        keep_last,
        keep_days,
        copies,
    }
}

impl PruneReport {
    /// Deletions that failed, as `tag (error)`.
    pub fn failures(&self) -> Vec<String> {
        self.local
            .iter()
            .chain(&self.remotes)
            .flat_map(|s| &s.result.failed)
            .map(|f| format!("{} ({})", f.tag, f.error))
            .chain(
                self.pre_restore
                    .iter()
                    .flat_map(|p| &p.copies)
                    .filter_map(|c| c.error.clone()),
            )
            .collect()
    }
}

/// Sweep now. The report is returned whatever happened (a deletion that
/// failed keeps its snapshot and fails the run): the caller shows it, then
/// the error.
pub fn prune(config: &Config, env: &Env, opts: &PruneOptions) -> (PruneReport, Result<()>) {
    let remotes = crate::remote::open_all(config);
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        local: None,
        remote: None,
        remotes: vec![],
        pre_restore: None,
    };
    if opts.remote_only && remotes.is_empty() {
        return (
            report,
            Err(Error::usage("--remote: no remote is configured").with_hint(
                "add a [remote.dir], [github] or [remote.rclone] section to the config",
            )),
        );
    }
    let sweep = |report: &mut PruneReport| -> Result<()> {
        if !opts.remote_only {
            // Unpushed snapshots stay until the next snapshot run pushes them.
            let names: Vec<&str> = config.remotes.iter().map(|r| r.kind()).collect();
            let pending = config.store().pending_anywhere(&names);
            let (plan, result) = retention::sweep_local(config, &pending, None, opts.dry_run)?;
            report.local = Some(Section {
                location: config.backup_dir.display().to_string(),
                plan,
                result,
            });
        }
        // One remote that cannot be listed does not stop the others' sweeps.
        let mut unlisted: Vec<Error> = Vec::new();
        for remote in remotes.iter().filter(|_| !opts.local_only) {
            match retention::sweep_remote(remote.as_ref(), config, None, opts.dry_run) {
                Ok((plan, result)) => report.remotes.push(Section {
                    location: remote.describe(),
                    plan,
                    result,
                }),
                Err(e) => {
                    if crate::interrupt::received().is_some() {
                        return Err(e);
                    }
                    unlisted.push(e.context(remote.describe()));
                }
            }
        }
        report.remote = report.remotes.first().map(|s| Section {
            location: s.location.clone(),
            plan: s.plan.clone(),
            result: s.result.clone(),
        });
        if !opts.remote_only {
            report.pre_restore = Some(prune_pre_restore(config, opts.dry_run));
        }
        if let Some(first) = unlisted.first() {
            let all: Vec<&str> = unlisted.iter().map(|e| e.message.as_str()).collect();
            return Err(Error {
                kind: first.kind,
                message: all.join("; "),
                hint: first.hint.clone(),
            });
        }
        // A stop signal ends the run as interrupted, whatever it cut short
        // (its failed deletions are retried by the next run, as any are).
        crate::interrupt::check()?;
        let failed = report.failures();
        if failed.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            Kind::Io,
            format!("{} deletion(s) failed: {}", failed.len(), failed.join("; ")),
        )
        .with_hint("the snapshots are kept; the next run tries again"))
    };
    // A dry run changes nothing, so it leaves the record of the last real run.
    let outcome = if opts.dry_run {
        locked(config, "prune", || sweep(&mut report))
    } else {
        recorded(config, env, "prune", |run| {
            let outcome = sweep(&mut report);
            run.record.retention = Some(RetentionResult {
                local: report.local.as_ref().map(|s| s.result.clone()),
                remote: report.remote.as_ref().map(|s| s.result.clone()),
                remotes: remotes
                    .iter()
                    .zip(&report.remotes)
                    .map(|(r, s)| (r.name().to_string(), s.result.clone()))
                    .collect(),
            });
            outcome
        })
        .map(drop)
    };
    (report, outcome)
}
