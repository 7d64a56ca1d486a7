//! Demo: the whole loop on a throwaway application, offline.
//!
//! It builds a small task-store application in a directory (two vital
//! databases: one in WAL mode created from the built-in migration ladder,
//! one in rollback-journal mode), backs it up to a directory remote
//! standing in for GitHub, simulates a disaster (a bad `DELETE` and a lost
//! file), and restores the snapshot through the real staged pipeline, all
//! through the same operations the commands use. Each step is reported to
//! the caller as it happens.

use super::Env;
use super::backup::{Backup, BackupOptions, backup};
use super::restore::{RestoreOptions, Source, restore};
use crate::config::Config;
use crate::error::{Error, IoContext, Result};
use crate::restore::RestoreReport;
use crate::snapshot::manifest::Manifest;
use crate::tag::Kind;
use rusqlite::Connection;
use std::path::Path;

/// What happened, step by step.
pub enum Step<'a> {
    /// The application exists: rows in tasks.db and notes.db.
    Built {
        config: &'a Config,
        tasks: i64,
        notes: i64,
    },
    /// The snapshot was taken and pushed.
    SnapshotTaken {
        backup: &'a Backup,
        manifest: &'a Manifest,
        archive: &'a Path,
    },
    /// The bad `DELETE` and the lost file: tasks left.
    Disaster { tasks_left: i64 },
    /// The snapshot was restored; rows before and after.
    Restored {
        config: &'a Config,
        report: &'a RestoreReport,
        before: (i64, i64),
        after: (i64, i64),
    },
}

/// Run the demo in `root` (an empty directory) with `tasks` tasks.
pub fn demo(root: &Path, tasks: usize, env: &Env, on_step: &mut dyn FnMut(Step)) -> Result<()> {
    let config = build_app(root, tasks)?;
    let tasks_db = config.data_dir.join("db/tasks.db");
    let notes_db = config.data_dir.join("notes.db");
    let before = (count(&tasks_db, "tasks")?, count(&notes_db, "notes")?);
    on_step(Step::Built {
        config: &config,
        tasks: before.0,
        notes: before.1,
    });

    let done = backup(
        &config,
        env,
        &BackupOptions {
            kind: Kind::Scheduled,
            reason: None,
        },
    )?;
    done.outcome()?;
    let snap = done
        .record
        .snapshot
        .as_ref()
        .ok_or_else(|| Error::refused("the demo snapshot recorded no result"))?;
    let archive = config
        .store()
        .find_archive(&snap.tag)
        .ok_or_else(|| Error::refused("the demo snapshot's archive is missing"))?;
    let manifest = crate::snapshot::archive::read_manifest(&archive, Some(&snap.tag))?.manifest;
    on_step(Step::SnapshotTaken {
        backup: &done,
        manifest: &manifest,
        archive: &archive,
    });

    Connection::open(&tasks_db)
        .and_then(|c| {
            c.execute_batch("PRAGMA foreign_keys=ON; DELETE FROM task_tags; DELETE FROM tasks;")
        })
        .map_err(|e| Error::database(format!("demo: {e}")))?;
    std::fs::remove_file(&notes_db).ctx("demo: cannot remove notes.db")?;
    on_step(Step::Disaster {
        tasks_left: count(&tasks_db, "tasks")?,
    });

    let report = restore(
        &config,
        env,
        &RestoreOptions {
            tag: snap.tag,
            source: Source::Auto,
            only: None,
            dry_run: false,
            force: false,
            keep_staging: false,
            to: None,
        },
    )?;
    let after = (count(&tasks_db, "tasks")?, count(&notes_db, "notes")?);
    on_step(Step::Restored {
        config: &config,
        report: &report,
        before,
        after,
    });
    if after != before {
        return Err(Error::refused(format!(
            "demo: restored row counts {after:?} differ from the snapshot's {before:?}"
        )));
    }
    Ok(())
}

/// Write the demo application: config, ladder, and two databases.
fn build_app(root: &Path, tasks: usize) -> Result<Config> {
    let ladder = crate::migrate::demo_ladder();
    let migrations = root.join("migrations");
    std::fs::create_dir_all(&migrations).ctx("demo: cannot create migrations/")?;
    for step in ladder.steps() {
        std::fs::write(migrations.join(&step.file), &step.sql)
            .ctx("demo: cannot write a migration")?;
    }
    let config_path = root.join("lifeboat.toml");
    std::fs::write(
        &config_path,
        "# The demo application's lifeboat configuration.\n\
         data_dir = \"data\"\n\
         app_version = \"demo-1.0\"\n\n\
         [[database]]\nname = \"tasks\"\npath = \"db/tasks.db\"\nmigrations = \"migrations\"\n\n\
         [[database]]\nname = \"notes\"\npath = \"notes.db\"\n\n\
         # A directory remote stands in for GitHub so the demo runs offline.\n\
         [remote.dir]\npath = \"offsite\"\n",
    )
    .ctx("demo: cannot write lifeboat.toml")?;
    let config = Config::load(&config_path)?;
    // Set up the way a user sets up a drive: `doctor --fix` creates the
    // directory and marks it as a lifeboat remote (no push goes to an
    // unmarked directory). Its warning, same disk as the data, is the
    // demo's nature and not worth showing.
    let setup = super::doctor::doctor(&config, true);
    if let Some(failed) = setup
        .checks
        .iter()
        .find(|c| c.status == crate::remote::CheckStatus::Fail)
    {
        return Err(Error::refused(format!(
            "demo: cannot set up the remote {}: {}",
            setup.remote, failed.detail
        )));
    }
    std::fs::create_dir_all(config.data_dir.join("db")).ctx("demo: cannot create data/db")?;
    let db_err = |e: rusqlite::Error| Error::database(format!("demo: {e}"));

    let mut conn = Connection::open(config.data_dir.join("db/tasks.db")).map_err(db_err)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
        .map_err(db_err)?;
    // Fill at schema v1, then migrate: the later steps backfill real rows.
    ladder.run_to(&mut conn, 1)?;
    let tx = conn.transaction().map_err(db_err)?;
    tx.execute_batch(
        "INSERT INTO projects(id, name) VALUES (1, 'home'), (2, 'work'), (3, 'garden');",
    )
    .map_err(db_err)?;
    for i in 0..tasks {
        let due = (i % 2 == 0).then(|| format!("2026-12-{:02}", i % 28 + 1));
        tx.execute(
            "INSERT INTO tasks(project_id, title, done, due) VALUES (?1, ?2, ?3, ?4)",
            (
                (i % 3) as i64 + 1,
                format!("task {i}: {}", WORDS[i % WORDS.len()]),
                (i % 5 == 0) as i64,
                due,
            ),
        )
        .map_err(db_err)?;
    }
    tx.commit().map_err(db_err)?;
    ladder.run(&mut conn)?;
    drop(conn);

    Connection::open(config.data_dir.join("notes.db"))
        .and_then(|c| {
            c.execute_batch(
                "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
                   INSERT INTO notes(body) SELECT 'note ' || i FROM n;",
            )
        })
        .map_err(db_err)?;
    Ok(config)
}

const WORDS: &[&str] = &[
    "water the tomatoes",
    "renew the passport",
    "review the quarterly report",
    "call the plumber about the leak",
    "back up the laptop",
];

fn count(db: &Path, table: &str) -> Result<i64> {
    Connection::open(db)
        .and_then(|c| c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0)))
        .map_err(|e| {
            Error::database(format!(
                "demo: cannot count {table} in {}: {e}",
                db.display()
            ))
        })
}
