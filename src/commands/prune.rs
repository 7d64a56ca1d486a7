//! `lifeboat prune`: apply the retention policy now, to the local archives
//! and the remote (the same sweep every snapshot run does), and show why
//! each snapshot is kept or deleted.

use super::Global;
use crate::error::{Error, Kind, Result};
use crate::lock::Lock;
use crate::remote;
use crate::remote::pending::pending_pushes;
use crate::retention::{self, Decision, Plan};
use crate::runrecord::{RetentionResult, RunRecord, SweepResult};

#[derive(Debug, clap::Args)]
pub struct PruneArgs {
    /// Show the plan without deleting anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Only the local archives in backup_dir.
    #[arg(long, conflicts_with = "remote")]
    pub local: bool,
    /// Only the configured remote.
    #[arg(long)]
    pub remote: bool,
}

/// One swept place, as printed.
#[derive(Debug, serde::Serialize)]
struct Section {
    location: String,
    plan: Plan,
    #[serde(flatten)]
    result: SweepResult,
}

#[derive(Debug, serde::Serialize)]
struct Report {
    dry_run: bool,
    local: Option<Section>,
    remote: Option<Section>,
}

pub fn run(global: &Global, args: PruneArgs) -> Result<i32> {
    let config = global.load_config()?;
    let remote = remote::from_config(&config)?;
    if args.remote && remote.is_none() {
        return Err(Error::usage("--remote: no remote is configured")
            .with_hint("add a [github] or [remote.dir] section to the config"));
    }
    let started = chrono::Utc::now();
    let record_path = config.last_run_path();
    let previous = RunRecord::load(&record_path).ok().flatten();
    let mut report = Report {
        dry_run: args.dry_run,
        local: None,
        remote: None,
    };

    let outcome = (|| {
        let _lock = Lock::acquire(&config.backup_dir, "prune", config.snapshot.lock_timeout)?;
        if !args.remote {
            // Unpushed snapshots stay until the next snapshot run pushes them.
            let pending = pending_pushes(&config.backup_dir);
            let (plan, result) = retention::sweep_local(&config, &pending, None, args.dry_run)?;
            report.local = Some(Section {
                location: config.backup_dir.display().to_string(),
                plan,
                result,
            });
        }
        if let (false, Some(remote)) = (args.local, &remote) {
            let (plan, result) =
                retention::sweep_remote(remote.as_ref(), &config.retention, None, args.dry_run)?;
            report.remote = Some(Section {
                location: remote.describe(),
                plan,
                result,
            });
        }
        let failed: Vec<String> = [&report.local, &report.remote]
            .into_iter()
            .flatten()
            .flat_map(|s| &s.result.failed)
            .map(|f| format!("{} ({})", f.tag, f.error))
            .collect();
        if !failed.is_empty() {
            return Err(Error::new(
                Kind::Io,
                format!("{} deletion(s) failed: {}", failed.len(), failed.join("; ")),
            )
            .with_hint("the snapshots are kept; the next run tries again"));
        }
        Ok(())
    })();

    // A dry run changes nothing, so it leaves the record of the last real run.
    if !args.dry_run {
        let mut record = RunRecord::start("prune", started);
        record.retention = Some(RetentionResult {
            local: report.local.as_ref().map(|s| s.result.clone()),
            remote: report.remote.as_ref().map(|s| s.result.clone()),
        });
        record.finish(
            outcome.as_ref().map(|_| ()),
            previous.as_ref(),
            &record_path,
        )?;
    }
    if global.json {
        global.print_json(&report);
    } else {
        for section in [&report.local, &report.remote].into_iter().flatten() {
            print_section(section, args.dry_run);
        }
    }
    outcome.map(|_| 0)
}

fn print_section(section: &Section, dry_run: bool) {
    let entries = &section.plan.entries;
    let deleting = section.plan.deleted().count();
    println!(
        "{}: {} snapshot(s), keep {}, {} {}",
        section.location,
        entries.iter().filter(|e| e.tag.is_some()).count(),
        section.plan.kept(),
        if dry_run { "would delete" } else { "delete" },
        deleting
    );
    if entries.is_empty() {
        return;
    }
    let width = entries.iter().map(|e| e.name.len()).max().unwrap_or(0);
    println!("  {:width$}  DECISION  REASONS", "TAG");
    for e in entries {
        let failed = section.result.failed.iter().find(|f| Some(f.tag) == e.tag);
        let decision = match (e.decision, failed) {
            (Decision::Keep, _) => "keep",
            (Decision::Delete, Some(_)) => "FAILED",
            (Decision::Delete, None) => "delete",
        };
        let reasons: Vec<String> = match failed {
            Some(f) => vec![f.error.clone()],
            None => e.reasons.iter().map(ToString::to_string).collect(),
        };
        let line = format!("  {:width$}  {decision:8}  {}", e.name, reasons.join(", "));
        println!("{}", line.trim_end());
    }
}
