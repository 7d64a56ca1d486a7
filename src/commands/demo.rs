//! `lifeboat demo`: the whole loop on a throwaway application, offline
//! ([`crate::ops::demo`]), narrated step by step.

use super::Global;
use crate::error::{IoContext, Result};
use crate::ops::demo::{Step, demo};

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Keep the demo directory afterwards (it is printed) to look around.
    #[arg(long)]
    pub keep: bool,
    /// Tasks in the demo task store.
    #[arg(long, default_value_t = 2_000)]
    pub tasks: usize,
}

pub fn run(global: &Global, args: DemoArgs) -> Result<i32> {
    let dir = tempfile::Builder::new()
        .prefix("lifeboat-demo-")
        .tempdir()
        .ctx("cannot create the demo directory")?;
    let root = dir.path().to_path_buf();
    let mut json = serde_json::json!({ "demo_dir": root });
    let result = demo(&root, args.tasks, &global.env(), &mut |step| {
        if global.json {
            record(&mut json, &step);
        } else {
            narrate(&root, &step);
        }
    });
    if global.json && result.is_ok() {
        global.print_json(&json);
    }
    // (On failure, main prints the error document.)
    if args.keep {
        let kept = dir.keep();
        outln!("\nThe demo directory is kept: {}", kept.display());
        outln!(
            "  try: lifeboat --config {}/lifeboat.toml list",
            kept.display()
        );
    }
    result.map(|()| 0)
}

fn narrate(root: &std::path::Path, step: &Step) {
    match step {
        Step::Built { tasks, notes, .. } => {
            outln!("== 1. A demo application in {}", root.display());
            outln!(
                "   tasks.db: {tasks} tasks (WAL, schema v{}), notes.db: {notes} notes (rollback journal)",
                crate::migrate::demo_ladder().newest(),
            );
            outln!(
                "\n== 2. lifeboat snapshot (hot copy, manifest, archive, push to the `offsite` directory remote)"
            );
        }
        Step::SnapshotTaken {
            backup,
            manifest,
            archive,
        } => {
            out!("{}", manifest.summary());
            if let Some(s) = &backup.record.snapshot {
                outln!(
                    "   archive: {} ({} bytes)",
                    archive.display(),
                    s.archive_bytes
                );
            }
            if let Some(push) = &backup.record.push {
                outln!("   push: {:?} to {}", push.status, push.remote);
            }
            outln!("\n== 3. Disaster: a bad `DELETE FROM tasks` and a deleted notes.db");
        }
        Step::Disaster { tasks_left } => {
            outln!("   tasks.db now has {tasks_left} tasks; notes.db is gone");
        }
        Step::Restored {
            config,
            report,
            before,
            after,
        } => {
            outln!("\n== 4. lifeboat restore {}", report.stage.tag);
            super::restore::print_restore(config, report);
            outln!(
                "\n== 5. Back: tasks.db has {} tasks, notes.db has {} notes (as in the snapshot: {}, {})",
                after.0,
                after.1,
                before.0,
                before.1
            );
        }
    }
}

fn record(json: &mut serde_json::Value, step: &Step) {
    match step {
        Step::Built { tasks, notes, .. } => {
            json["rows_before"] = serde_json::json!({ "tasks": tasks, "notes": notes });
        }
        Step::SnapshotTaken { backup, .. } => json["snapshot"] = serde_json::json!(backup),
        Step::Disaster { .. } => {}
        Step::Restored { report, after, .. } => {
            json["restore"] = serde_json::json!(report);
            json["rows_after"] = serde_json::json!({ "tasks": after.0, "notes": after.1 });
        }
    }
}
