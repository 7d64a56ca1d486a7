//! `lifeboat prune`: [`crate::ops::prune`], and why each snapshot is kept
//! or deleted.

use super::Global;
use crate::error::Result;
use crate::ops::prune::{PreRestoreSection, PruneOptions, Section, prune};
use crate::retention::Decision;

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

pub fn run(global: &Global, args: PruneArgs) -> Result<i32> {
    let config = global.load_config()?;
    let opts = PruneOptions {
        dry_run: args.dry_run,
        local_only: args.local,
        remote_only: args.remote,
    };
    let (report, outcome) = prune(&config, &global.env(), &opts);
    if outcome.as_ref().is_err_and(|e| e.exit_code() == 2) {
        return outcome.map(|()| 0);
    }
    if global.json {
        return global.print_json_outcome(&report, outcome.map(|()| 0));
    } else {
        for section in report.local.iter().chain(&report.remotes) {
            print_section(section, args.dry_run);
        }
        if let Some(p) = &report.pre_restore {
            print_pre_restore(p, args.dry_run);
        }
    }
    outcome.map(|()| 0)
}

fn print_section(section: &Section, dry_run: bool) {
    let entries = &section.plan.entries;
    let deleting = section.plan.deleted().count();
    outln!(
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
    outln!("  {:width$}  DECISION  REASONS", "TAG");
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
        outln!("{}", line.trim_end());
    }
}

fn print_pre_restore(p: &PreRestoreSection, dry_run: bool) {
    let deleting = p.copies.iter().filter(|c| !c.keep).count();
    outln!(
        "pre-restore copies: {}, keep the newest {} and those younger than {} days, {} {deleting}",
        p.copies.len(),
        p.keep_last,
        p.keep_days,
        if dry_run { "would delete" } else { "delete" },
    );
    for c in &p.copies {
        let decision = match (c.keep, &c.error) {
            (true, _) => "keep",
            (false, Some(_)) => "FAILED",
            (false, None) => "delete",
        };
        let why = c.error.as_deref().unwrap_or(&c.reason);
        outln!("  {}  {decision:8}  {why}", c.path.display());
    }
}
