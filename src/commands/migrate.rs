//! `lifeboat migrate`: [`crate::ops::migrate`].

use super::Global;
use crate::error::Result;
use crate::ops::migrate::{MigrateOptions, migrate};

/// Bring the live databases to the newest version of their migration
/// ladders, taking a manual snapshot first.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Migrate only this database.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
}

pub fn run(global: &Global, args: MigrateArgs) -> Result<i32> {
    let config = global.load_config()?;
    let report = migrate(&config, &global.env(), &MigrateOptions { db: args.db })?;
    if global.json {
        // An object (format 1), not the bare array of earlier versions.
        global.print_json(&serde_json::json!({
            "databases": report.databases,
            "safety_snapshot": report.safety_snapshot,
        }));
        return Ok(0);
    }
    let Some(safety) = report.safety_snapshot else {
        outln!("every database is at the newest version of its ladder; nothing to do");
        return Ok(0);
    };
    for db in &report.databases {
        for a in &db.applied {
            outln!("{}: applied {}", db.name, a.file);
        }
        outln!("{}: schema v{} -> v{}", db.name, db.from, db.to);
    }
    outln!("the state before is in snapshot {safety}");
    Ok(0)
}
