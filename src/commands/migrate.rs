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
        global.print_json(&report.databases);
        return Ok(0);
    }
    let Some(safety) = report.safety_snapshot else {
        println!("every database is at the newest version of its ladder; nothing to do");
        return Ok(0);
    };
    for db in &report.databases {
        for a in &db.applied {
            println!("{}: applied {}", db.name, a.file);
        }
        println!("{}: schema v{} -> v{}", db.name, db.from, db.to);
    }
    println!("the state before is in snapshot {safety}");
    Ok(0)
}
