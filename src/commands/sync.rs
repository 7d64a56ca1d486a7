//! `lifeboat sync`: fill the remotes with this installation's snapshots
//! they lack ([`crate::ops::sync`]).

use super::Global;
use crate::error::Result;
use crate::ops::sync::{SyncOptions, SyncReport, sync};

/// Push to each remote (or --remote NAME) the local snapshots of this
/// installation it does not have: a newly added remote, or one that was
/// down, catches up. What cannot be pushed now stays queued for the next
/// snapshot run.
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    /// Only this remote: `dir`, `github` or `rclone`.
    #[arg(long, value_name = "NAME")]
    pub remote: Option<String>,
    /// Show what each remote lacks; push nothing.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn run(global: &Global, args: SyncArgs) -> Result<i32> {
    let config = global.load_config()?;
    let report = sync(
        &config,
        &SyncOptions {
            remote: args.remote,
            dry_run: args.dry_run,
        },
    )?;
    let outcome = report.outcome();
    if global.json {
        return global.print_json_outcome(&report, outcome.map(|()| 0));
    }
    print(&report);
    outcome.map(|()| 0)
}

fn print(report: &SyncReport) {
    for r in &report.remotes {
        if let Some(e) = &r.error {
            warnln!("{}: cannot be listed: {e}", r.remote);
            continue;
        }
        let pushed = r.push.as_ref().map_or(0, |p| p.pushed.len());
        match (report.dry_run, r.missing.len()) {
            (_, 0) => outln!("{}: has every snapshot", r.remote),
            (true, n) => outln!("{}: lacks {n} snapshot(s), would push them", r.remote),
            (false, n) => outln!("{}: lacked {n} snapshot(s), pushed {pushed}", r.remote),
        }
        for tag in &r.missing {
            outln!("  {tag}");
        }
    }
}
