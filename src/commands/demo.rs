//! `lifeboat demo`: the whole loop on a throwaway application, offline.
//!
//! It builds a small task-store application in a temporary directory (two
//! vital databases: one in WAL mode created from the built-in migration
//! ladder, one in rollback-journal mode), backs it up to a directory remote
//! standing in for GitHub, simulates a disaster (a bad `DELETE` and a lost
//! file), and restores the snapshot through the real staged pipeline. A
//! newcomer sees every step work without configuring anything.

use super::Global;
use crate::config::Config;
use crate::error::{Error, IoContext, Result};
use crate::restore::{self, Options, Source};
use crate::tag::Kind;
use rusqlite::Connection;
use std::path::Path;

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
    let root = dir.path();
    let result = run_in(global, &args, root);
    if args.keep {
        let kept = dir.keep();
        println!("\nThe demo directory is kept: {}", kept.display());
        println!(
            "  try: lifeboat --config {}/lifeboat.toml list",
            kept.display()
        );
    }
    result
}

fn run_in(global: &Global, args: &DemoArgs, root: &Path) -> Result<i32> {
    let say = |s: &str| {
        if !global.json {
            println!("{s}");
        }
    };
    say(&format!("== 1. A demo application in {}", root.display()));
    let config = build_app(root, args.tasks)?;
    let tasks_db = config.data_dir.join("db/tasks.db");
    let notes_db = config.data_dir.join("notes.db");
    let before = (count(&tasks_db, "tasks")?, count(&notes_db, "notes")?);
    say(&format!(
        "   tasks.db: {} tasks (WAL, schema v{}), notes.db: {} notes (rollback journal)",
        before.0,
        crate::migrate::demo_ladder().newest(),
        before.1
    ));

    say(
        "\n== 2. lifeboat snapshot (hot copy, manifest, archive, push to the `offsite` directory remote)",
    );
    let record = super::snapshot::execute(global, &config, "snapshot", Kind::Scheduled, None)?;
    let snap = record
        .snapshot
        .as_ref()
        .ok_or_else(|| Error::refused("the demo snapshot recorded no result"))?;
    let archive = config.backup_dir.join(&snap.archive);
    let manifest = crate::snapshot::archive::read_manifest(&archive, Some(&snap.tag))?.manifest;
    if !global.json {
        print!("{}", manifest.summary());
        println!(
            "   archive: {} ({} bytes)",
            archive.display(),
            snap.archive_bytes
        );
        if let Some(push) = &record.push {
            println!("   push: {:?} to {}", push.status, push.remote);
        }
    }

    say("\n== 3. Disaster: a bad `DELETE FROM tasks` and a deleted notes.db");
    Connection::open(&tasks_db)
        .and_then(|c| {
            c.execute_batch("PRAGMA foreign_keys=ON; DELETE FROM task_tags; DELETE FROM tasks;")
        })
        .map_err(|e| Error::database(format!("demo: {e}")))?;
    std::fs::remove_file(&notes_db).ctx("demo: cannot remove notes.db")?;
    say(&format!(
        "   tasks.db now has {} tasks; notes.db is gone",
        count(&tasks_db, "tasks")?
    ));

    say(&format!("\n== 4. lifeboat restore {}", snap.tag));
    let report = restore::restore(
        &config,
        &Options {
            tag: snap.tag,
            source: Source::Auto,
            only: None,
            dry_run: false,
            force: false,
            keep_staging: false,
        },
    )?;
    let after = (count(&tasks_db, "tasks")?, count(&notes_db, "notes")?);
    if global.json {
        global.print_json(&serde_json::json!({
            "demo_dir": root,
            "snapshot": record,
            "restore": report,
            "rows_before": { "tasks": before.0, "notes": before.1 },
            "rows_after": { "tasks": after.0, "notes": after.1 },
        }));
    } else {
        super::restore::print_restore(&config, &report);
        println!(
            "\n== 5. Back: tasks.db has {} tasks, notes.db has {} notes (as in the snapshot: {}, {})",
            after.0, after.1, before.0, before.1
        );
    }
    if after != before {
        return Err(Error::refused(format!(
            "demo: restored row counts {after:?} differ from the snapshot's {before:?}"
        )));
    }
    Ok(0)
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
