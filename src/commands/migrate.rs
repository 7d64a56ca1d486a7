//! `lifeboat migrate`: apply each database's migration ladder to the live
//! database, after a `backup-now` snapshot (reason `pre-migrate`) that holds
//! the state before.

use super::Global;
use crate::config::DatabaseConfig;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::migrate::{Applied, MigrationRunner};
use crate::tag::Kind;
use rusqlite::{Connection, OpenFlags};

/// Bring the live databases to the newest version of their migration
/// ladders, taking a manual snapshot first.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Migrate only this database.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
}

#[derive(serde::Serialize)]
struct Migrated {
    name: String,
    from: i64,
    to: i64,
    applied: Vec<Applied>,
}

pub fn run(global: &Global, args: MigrateArgs) -> Result<i32> {
    let config = global.load_config()?;
    let selected: Vec<&DatabaseConfig> = match &args.db {
        Some(name) => {
            let db = config.database(name)?;
            if db.migrations.is_none() {
                return Err(Error::usage(format!(
                    "database `{name}` declares no migrations directory"
                ))
                .with_hint("add `migrations = \"<dir>\"` to its [[database]] entry"));
            }
            vec![db]
        }
        None => config
            .databases
            .iter()
            .filter(|d| d.migrations.is_some())
            .collect(),
    };
    let mut work = Vec::new();
    for db in selected {
        let dir = db.migrations.as_ref().expect("filtered above");
        let ladder = MigrationRunner::load(dir)?;
        let path = db.live_path(&config.data_dir);
        crate::snapshot::hotcopy::check_source(&db.name, &path)?;
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < ladder.newest() {
            work.push((db, ladder, version));
        } else if version > ladder.newest() {
            return Err(Error::refused(format!(
                "database `{}` is at schema version {version}, newer than its ladder ({})",
                db.name,
                ladder.newest()
            ))
            .with_hint("this ladder is older than the data; use the newer application code"));
        }
    }
    if work.is_empty() {
        if !global.json {
            println!("every database is at the newest version of its ladder; nothing to do");
        } else {
            global.print_json(&Vec::<Migrated>::new());
        }
        return Ok(0);
    }

    // The safety net first: no snapshot, no migration.
    let record = super::snapshot::execute(
        global,
        &config,
        "backup-now",
        Kind::Manual,
        Some("pre-migrate".into()),
    )
    .map_err(|e| e.context("refusing to migrate: the pre-migrate snapshot failed"))?;
    let safety = record
        .snapshot
        .as_ref()
        .map(|s| s.tag.to_string())
        .unwrap_or_default();

    let _lock = Lock::acquire(&config.backup_dir, "migrate", config.snapshot.lock_timeout)?;
    crate::restore::recover(&config)?;
    let mut done = Vec::new();
    for (db, ladder, from) in work {
        let path = db.live_path(&config.data_dir);
        let mut conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        conn.busy_timeout(config.snapshot.busy_timeout)?;
        let applied = ladder.run(&mut conn).map_err(|e| {
            let hint = format!(
                "{}; snapshot {safety} holds every database as it was before: `lifeboat restore {safety}`",
                e.hint.clone().unwrap_or_default()
            );
            e.context(format!("database `{}`", db.name)).with_hint(hint)
        })?;
        let to = ladder.newest();
        if !global.json {
            for a in &applied {
                println!("{}: applied {}", db.name, a.file);
            }
            println!("{}: schema v{from} -> v{to}", db.name);
        }
        done.push(Migrated {
            name: db.name.clone(),
            from,
            to,
            applied,
        });
    }
    if global.json {
        global.print_json(&done);
    } else {
        println!("the state before is in snapshot {safety}");
    }
    Ok(0)
}
