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
    pub remote: Option<Section>,
}

impl PruneReport {
    /// Deletions that failed, as `tag (error)`.
    pub fn failures(&self) -> Vec<String> {
        [&self.local, &self.remote]
            .into_iter()
            .flatten()
            .flat_map(|s| &s.result.failed)
            .map(|f| format!("{} ({})", f.tag, f.error))
            .collect()
    }
}

/// Sweep now. The report is returned whatever happened (a deletion that
/// failed keeps its snapshot and fails the run): the caller shows it, then
/// the error.
pub fn prune(config: &Config, env: &Env, opts: &PruneOptions) -> (PruneReport, Result<()>) {
    let remote = config.remote().map(crate::remote::open);
    let mut report = PruneReport {
        dry_run: opts.dry_run,
        local: None,
        remote: None,
    };
    if opts.remote_only && remote.is_none() {
        return (
            report,
            Err(Error::usage("--remote: no remote is configured")
                .with_hint("add a [github] or [remote.dir] section to the config")),
        );
    }
    let sweep = |report: &mut PruneReport| -> Result<()> {
        if !opts.remote_only {
            // Unpushed snapshots stay until the next snapshot run pushes them.
            let pending = config.store().pending();
            let (plan, result) = retention::sweep_local(config, &pending, None, opts.dry_run)?;
            report.local = Some(Section {
                location: config.backup_dir.display().to_string(),
                plan,
                result,
            });
        }
        if let (false, Some(remote)) = (opts.local_only, &remote) {
            let (plan, result) =
                retention::sweep_remote(remote.as_ref(), &config.retention, None, opts.dry_run)?;
            report.remote = Some(Section {
                location: remote.describe(),
                plan,
                result,
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
            });
            outcome
        })
        .map(drop)
    };
    (report, outcome)
}
