//! `lifeboat snapshot` (the hourly job) and `lifeboat backup-now` (a manual
//! snapshot before a risky operation): [`crate::ops::backup`].

use super::Global;
use crate::error::Result;
use crate::ops::backup::{Backup, BackupOptions, backup};
use crate::record::PushStatus;
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
    run(global, Kind::Scheduled, None)
}

pub fn run_manual(global: &Global, args: BackupNowArgs) -> Result<i32> {
    run(global, Kind::Manual, args.reason)
}

fn run(global: &Global, kind: Kind, reason: Option<String>) -> Result<i32> {
    let config = global.load_config()?;
    let done = backup(&config, &global.env(), &BackupOptions { kind, reason })?;
    if global.json {
        return global.print_json_outcome(&done, done.outcome().map(|()| 0));
    }
    print(&config.backup_dir, &done);
    done.outcome().map(|()| 0)
}

fn print(backup_dir: &std::path::Path, done: &Backup) {
    let record = &done.record;
    let Some(s) = &record.snapshot else { return };
    outln!(
        "{} {} ({} bytes)",
        s.tag,
        backup_dir.join(&s.archive).display(),
        s.archive_bytes
    );
    for p in record.pushes() {
        match p.status {
            PushStatus::Pushed => {
                outln!("pushed to {} ({} attempt(s))", p.remote, p.attempts)
            }
            PushStatus::Skipped => {
                outln!("no remote configured: the snapshot is only on this machine")
            }
            PushStatus::Failed => {}
        }
        // Earlier queued snapshots this run pushed (even when its own push failed).
        let earlier: Vec<String> = p
            .pushed
            .iter()
            .filter(|t| **t != s.tag)
            .map(ToString::to_string)
            .collect();
        if !earlier.is_empty() {
            outln!(
                "also pushed earlier snapshot(s) to {}: {}",
                p.remote,
                earlier.join(", ")
            );
        }
    }
    if let Some(r) = &record.retention {
        let places = r
            .local
            .iter()
            .map(|s| ("local", s))
            .chain(r.remote_sweeps());
        for (place, sweep) in places.filter(|(_, s)| !s.deleted.is_empty()) {
            let tags: Vec<String> = sweep.deleted.iter().map(ToString::to_string).collect();
            outln!("pruned {place}: {}", tags.join(", "));
        }
    }
}
