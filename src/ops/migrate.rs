//! Migrate: apply each database's migration ladder to the live database,
//! after a manual snapshot (reason `pre-migrate`) that holds the state
//! before. No snapshot, no migration. One recorded `migrate` run: a step
//! that fails is a failed run in `last_run.json`, with the safety
//! snapshot's tag in its hint.

use super::backup::{BackupOptions, take_push_sweep};
use super::{Env, run::recorded};
use crate::config::{Config, DatabaseConfig};
use crate::error::{Error, Result};
use crate::migrate::{Applied, MigrationRunner};
use crate::tag::{Kind, Tag};
use rusqlite::{Connection, OpenFlags};

#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    /// Migrate only this database.
    pub db: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Migrated {
    pub name: String,
    pub from: i64,
    pub to: i64,
    pub applied: Vec<Applied>,
}

#[derive(Debug)]
pub struct MigrateReport {
    /// The snapshot holding every database as it was before (none when
    /// there was nothing to migrate).
    pub safety_snapshot: Option<Tag>,
    pub databases: Vec<Migrated>,
}

pub fn migrate(config: &Config, env: &Env, opts: &MigrateOptions) -> Result<MigrateReport> {
    config.require_data_dir()?;
    let selected = select(config, opts)?;
    // Nothing to do is not a run: no lock, no record (a no-op `migrate` in
    // a deploy script must never collide with the hourly snapshot). A
    // database ahead of its ladder is found here too, and is a failed run.
    let nothing = MigrateReport {
        safety_snapshot: None,
        databases: vec![],
    };
    match pending(config, &selected) {
        Ok(work) if work.is_empty() => return Ok(nothing),
        Ok(_) => {}
        Err(e) if e.exit_code() == 2 => return Err(e),
        Err(e) => return recorded(config, env, "migrate", |_| Err::<(), _>(e)).map(|_| nothing),
    }
    let (report, _) = recorded(config, env, "migrate", |run| {
        // Again under the lock: the databases may have moved on meanwhile.
        let work = pending(config, &selected)?;
        if work.is_empty() {
            return Ok(MigrateReport {
                safety_snapshot: None,
                databases: vec![],
            });
        }
        // The safety net first: no snapshot, no migration.
        let started = chrono::Utc::now();
        let snap = take_push_sweep(
            run,
            &BackupOptions {
                kind: Kind::Manual,
                reason: Some("pre-migrate".into()),
            },
        );
        run.record.note_backup(started, snap.as_ref().map(drop));
        let snap =
            snap.map_err(|e| e.context("refusing to migrate: the pre-migrate snapshot failed"))?;
        if let Some((name, e)) = snap.failed.first() {
            return Err(Error::refused(format!(
                "refusing to migrate: the pre-migrate snapshot {} does not hold database `{name}`: {}",
                snap.tag, e.message
            ))
            .with_hint(
                "no migration runs without a safety copy of every database; fix the database \
                 named above and run `lifeboat migrate` again",
            ));
        }
        let safety = snap.tag;
        let mut done = Vec::new();
        for (db, ladder, from) in work {
            let path = live_file(config, db)?;
            let mut conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
            conn.busy_timeout(config.snapshot.busy_timeout)?;
            let applied = ladder.run(&mut conn).map_err(|e| {
                let hint = format!(
                    "{}; snapshot {safety} holds every database as it was before: `lifeboat restore {safety}`",
                    e.hint.clone().unwrap_or_default()
                );
                e.context(format!("database `{}`", db.name)).with_hint(hint)
            })?;
            done.push(Migrated {
                name: db.name.clone(),
                from,
                to: ladder.newest(),
                applied,
            });
        }
        Ok(MigrateReport {
            safety_snapshot: Some(safety),
            databases: done,
        })
    })?;
    Ok(report)
}

/// The file a migration writes: the declared path or, when that is a
/// symbolic link, its target (a dangling link, a loop or a target directory
/// this account cannot write is refused before anything runs). SQLite
/// would follow the link too, and keep its journal beside the target; we
/// open the target by name so that what is written is never in doubt.
fn live_file(config: &Config, db: &DatabaseConfig) -> Result<std::path::PathBuf> {
    let declared = db.live_path(&config.data_dir);
    let target = crate::restore::links::follow(&db.name, &declared)?.path;
    crate::restore::links::refuse_planted_links(&db.name, &declared, &target)?;
    Ok(target)
}

/// The databases to migrate: one by name, or every one with a ladder.
fn select<'a>(config: &'a Config, opts: &MigrateOptions) -> Result<Vec<&'a DatabaseConfig>> {
    Ok(match &opts.db {
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
    })
}

/// Each selected database that is behind its ladder, with the ladder and
/// its live version. A database ahead of its ladder refuses the whole run.
fn pending<'a>(
    config: &Config,
    selected: &[&'a DatabaseConfig],
) -> Result<Vec<(&'a DatabaseConfig, MigrationRunner, i64)>> {
    let mut work = Vec::new();
    for db in selected {
        let dir = db.migrations.as_ref().expect("selected for its ladder");
        let ladder = MigrationRunner::load(dir)?;
        let path = live_file(config, db)?;
        crate::snapshot::hotcopy::check_source(&db.name, &path)?;
        let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version < ladder.newest() {
            work.push((*db, ladder, version));
        } else if version > ladder.newest() {
            return Err(Error::refused(format!(
                "database `{}` is at schema version {version}, newer than its ladder ({})",
                db.name,
                ladder.newest()
            ))
            .with_hint("this ladder is older than the data; use the newer application code"));
        }
    }
    Ok(work)
}
