//! `lifeboat doctor`: is the remote ready to receive snapshots? Each
//! backend runs its own checks ([`crate::ops::doctor`]); every failing check
//! says how to fix it, and `--fix` performs the fixes that are safe to
//! automate (for GitHub: create a missing private repository with a
//! README, or give an empty one its README; for a directory remote: create
//! a missing directory whose parent exists and mark it as this remote) and
//! writes nothing else.

use super::Global;
use crate::error::Result;
use crate::ops::doctor::{DoctorReport, doctor};
use crate::remote::CheckStatus;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Create the GitHub repository if it is missing (private, with a
    /// README), or add a README to an empty one. For a directory remote:
    /// create the directory if its parent exists, and mark it as this
    /// remote (`.lifeboat-remote`). Changes nothing else.
    #[arg(long)]
    pub fix: bool,
}

pub fn run(global: &Global, args: DoctorArgs) -> Result<i32> {
    let config = global.load_config()?;
    let report = doctor(&config, args.fix);
    if global.json {
        return global.print_json_outcome(&report, Ok(if report.ok { 0 } else { 1 }));
    } else {
        print_text(&report);
    }
    Ok(if report.ok { 0 } else { 1 })
}

fn print_text(report: &DoctorReport) {
    outln!("remote: {}", report.remote);
    for c in &report.checks {
        let label = match c.status {
            CheckStatus::Ok => "ok  ",
            CheckStatus::Fail => "FAIL",
            CheckStatus::Warn => "WARN",
            CheckStatus::Skipped => "skip",
        };
        outln!("{label} {}: {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            outln!("     fix: {fix}");
        }
    }
    for f in &report.fixed {
        outln!("fixed: {f}");
    }
    if report.public_repository() {
        outln!();
        outln!("WARNING: the backup repository is PUBLIC: anyone can download your databases.");
    }
    outln!(
        "{}",
        if report.ok {
            "all checks passed"
        } else {
            "some checks failed"
        }
    )
}
