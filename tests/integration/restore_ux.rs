//! The restore a person types in a disaster, and the conveniences around
//! it: `restore latest` (and `verify latest`, `drill --tag latest`),
//! `--if-missing` with and without `--allow-empty`, `--to DIR`, the no-tag
//! table that is `list`'s; `list`'s reason column and its --since/--until
//! forms; `snapshot` naming what it pushed and pruned; pre-restore
//! retention through `prune`; and a `data_dir` that does not exist.

use crate::support::obs::{archive_path, copy_as, expect, json, snapshot, stdout, take, tasks_app};
use crate::support::{App, sqlite, text};
use std::path::{Path, PathBuf};
use std::process::Command;

const REMOTE: &str = "[remote.dir]\npath = \"remote\"\n";

fn tasks_db(app: &App) -> PathBuf {
    app.data_dir().join("db/tasks.db")
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn rows(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

fn integrity(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg("PRAGMA integrity_check")
        .output()
        .unwrap();
    assert!(out.status.success(), "sqlite3: {}", text(&out));
    stdout(&out).trim().to_string()
}

fn last_run_bytes(app: &App) -> Option<Vec<u8>> {
    std::fs::read(app.backup_dir().join("last_run.json")).ok()
}

#[test]
fn restore_latest_takes_the_newest_snapshot() {
    let app = tasks_app("");
    let first = snapshot(&app);
    sqlite(&tasks_db(&app), "DELETE FROM t WHERE id > 5;");
    let newest = take(&app, "backup-now");
    assert!(newest > first);
    sqlite(&tasks_db(&app), "DELETE FROM t;");

    let out = expect(&app, &["restore", "latest"], 0);
    assert!(
        stdout(&out).starts_with(&format!("restored {newest} ")),
        "{}",
        text(&out)
    );
    assert_eq!(rows(&tasks_db(&app)), 5);
    assert_eq!(app.last_run()["command"], "restore");

    // verify and drill know the same word.
    let out = expect(&app, &["verify", "latest"], 0);
    assert!(stdout(&out).contains(&newest), "{}", text(&out));
    let out = expect(&app, &["drill", "--tag", "latest"], 0);
    assert!(stdout(&out).contains(&newest), "{}", text(&out));
}

#[test]
fn if_missing_does_nothing_when_a_database_exists() {
    let app = tasks_app("");
    snapshot(&app);
    sqlite(&tasks_db(&app), "DELETE FROM t WHERE id > 3;");
    let before = std::fs::read(tasks_db(&app)).unwrap();
    let record = last_run_bytes(&app);

    let out = expect(&app, &["restore", "latest", "--if-missing"], 0);
    assert_eq!(stdout(&out), "", "{}", text(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{}", text(&out));
    assert!(
        err.contains("nothing restored") && err.contains("tasks.db"),
        "{err}"
    );
    assert_eq!(std::fs::read(tasks_db(&app)).unwrap(), before);
    // Nothing to do is not a run.
    assert_eq!(last_run_bytes(&app), record);
}

#[test]
fn if_missing_restores_when_the_databases_are_absent() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", tasks_db(&app).display()));
    }
    let out = expect(&app, &["restore", "latest", "--if-missing"], 0);
    assert!(stdout(&out).contains(&tag), "{}", text(&out));
    assert_eq!(rows(&tasks_db(&app)), 20);
    assert_eq!(integrity(&tasks_db(&app)), "ok");
}

#[test]
fn if_missing_with_no_snapshot_fails_unless_allowed_empty() {
    // A first boot: no database, no snapshot, an empty remote.
    let app = App::new();
    app.write_config(&format!("{}{REMOTE}", crate::support::obs::TASKS));
    std::fs::create_dir(app.root().join("remote")).unwrap();
    app.set_up_remote();

    let out = expect(&app, &["restore", "latest", "--if-missing"], 1);
    assert!(
        stderr(&out).contains("no snapshot to restore"),
        "{}",
        text(&out)
    );
    assert!(stderr(&out).contains("--allow-empty"), "{}", text(&out));

    let out = expect(
        &app,
        &["restore", "latest", "--if-missing", "--allow-empty"],
        0,
    );
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("nothing restored"), "{}", text(&out));
    assert!(!tasks_db(&app).exists());
    // Neither is a recorded run.
    assert_eq!(last_run_bytes(&app), None);

    // A remote that cannot be listed is never "no snapshot".
    std::fs::rename(app.root().join("remote"), app.root().join("unplugged")).unwrap();
    let out = expect(
        &app,
        &["restore", "latest", "--if-missing", "--allow-empty"],
        1,
    );
    assert!(stderr(&out).contains("cannot list"), "{}", text(&out));
}

#[test]
fn restore_to_a_directory_leaves_live_data_alone() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    sqlite(&tasks_db(&app), "DELETE FROM t WHERE id > 7;");
    std::fs::write(app.data_dir().join("notes.txt"), "not lifeboat's").unwrap();
    let live: Vec<(PathBuf, Vec<u8>)> = ["db/tasks.db", "notes.txt"]
        .iter()
        .map(|p| {
            let p = app.data_dir().join(p);
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();

    let to = app.root().join("recovered");
    let out = expect(&app, &["restore", &tag, "--to", to.to_str().unwrap()], 0);
    assert!(stdout(&out).contains("placed into"), "{}", text(&out));
    for (p, bytes) in &live {
        assert_eq!(&std::fs::read(p).unwrap(), bytes, "{} changed", p.display());
    }
    let restored = to.join("db/tasks.db");
    assert_eq!(integrity(&restored), "ok");
    assert_eq!(rows(&restored), 20);
    // Nothing beside the data: no pre-restore copy, no staging left.
    let names: Vec<String> = std::fs::read_dir(app.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.contains(".pre-restore-") && !n.contains(".staging-")),
        "{names:?}"
    );
    let record = app.last_run();
    assert_eq!(record["command"], "restore");
    assert_eq!(record["status"], "success");

    // A directory that is not empty is a usage error, and not a run.
    let before = last_run_bytes(&app);
    let out = expect(&app, &["restore", &tag, "--to", to.to_str().unwrap()], 2);
    assert!(stderr(&out).contains("not empty"), "{}", text(&out));
    assert_eq!(last_run_bytes(&app), before);

    // An empty one is fine.
    let empty = app.root().join("empty");
    std::fs::create_dir(&empty).unwrap();
    expect(
        &app,
        &["restore", "latest", "--to", empty.to_str().unwrap()],
        0,
    );
    assert_eq!(integrity(&empty.join("db/tasks.db")), "ok");
}

#[test]
fn restore_without_a_tag_prints_lists_table() {
    let app = tasks_app("");
    snapshot(&app);
    take(&app, "backup-now");
    // The AGE column moves with the clock: retry across a second boundary.
    for attempt in 0.. {
        let listed = expect(&app, &["list"], 0);
        let chosen = expect(&app, &["restore"], 2);
        if stdout(&listed) == stdout(&chosen) || attempt == 3 {
            assert_eq!(stdout(&listed), stdout(&chosen));
            assert!(stderr(&chosen).contains("restore latest"));
            break;
        }
    }
}

#[test]
fn list_shows_the_reason_and_takes_every_date_form() {
    let app = tasks_app("");
    let scheduled = snapshot(&app);
    let out = expect(
        &app,
        &["--json", "backup-now", "--reason", "before migration 7"],
        0,
    );
    let manual = json(&out)["snapshot"]["tag"].as_str().unwrap().to_string();

    let out = expect(&app, &["list"], 0);
    let table = stdout(&out);
    assert!(table.lines().next().unwrap().ends_with("REASON"), "{table}");
    let row = |tag: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{tag} ")))
            .unwrap_or_else(|| panic!("{tag} in\n{table}"))
            .to_string()
    };
    assert!(row(&manual).ends_with("before migration 7"), "{table}");
    assert!(row(&scheduled).ends_with(" -"), "{table}");

    // The TAKEN column, as printed, is a valid bound.
    let taken: String = row(&manual)
        .split_whitespace()
        .skip(2)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let tags = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--json", "list"];
        all.extend_from_slice(args);
        let out = expect(&app, &all, 0);
        json(&out)["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["tag"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(tags(&["--since", &taken]).contains(&manual));
    assert!(tags(&["--until", &taken]).contains(&manual));
    let rfc3339 = taken.replace(' ', "T") + "Z";
    assert!(tags(&["--since", &rfc3339]).contains(&manual));
    assert_eq!(tags(&["--since", "24h"]).len(), 2);
    assert_eq!(tags(&["--since", "7d"]).len(), 2);
    assert!(tags(&["--until", "1h"]).is_empty());
    assert_eq!(tags(&["--until", "2999-01-01"]).len(), 2);
    let out = expect(&app, &["list", "--since", "yesterday"], 2);
    assert!(stderr(&out).contains("24h"), "{}", text(&out));
}

#[test]
fn snapshot_names_what_it_pushed_and_pruned() {
    let app = tasks_app(&format!(
        "{REMOTE}[retention]\nhourly = 1\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 5\n"
    ));
    std::fs::create_dir(app.root().join("remote")).unwrap();
    app.set_up_remote();
    // A snapshot whose push fails (the drive is unplugged) stays queued.
    std::fs::rename(app.root().join("remote"), app.root().join("away")).unwrap();
    let out = expect(&app, &["--json", "backup-now"], 1);
    let queued = json(&out)["snapshot"]["tag"].as_str().unwrap().to_string();
    std::fs::rename(app.root().join("away"), app.root().join("remote")).unwrap();
    // An old scheduled snapshot the policy no longer keeps.
    let old = "snap-20200101T000000Z";
    copy_as(&archive_path(&app, &queued), old);

    let out = expect(&app, &["snapshot"], 0);
    let text_out = stdout(&out);
    assert!(
        text_out.contains("also pushed earlier snapshot(s) to ")
            && text_out.contains(&format!(": {queued}")),
        "{}",
        text(&out)
    );
    assert!(
        text_out.contains(&format!("pruned local: {old}")),
        "{}",
        text(&out)
    );
    assert!(!archive_path(&app, old).exists());
}

/// A pre-restore directory beside `data`, by hand, as restore names them.
fn pre_restore(app: &App, seq: u32, when: chrono::DateTime<chrono::Utc>) -> PathBuf {
    let p = app.root().join(format!(
        "data.pre-restore-{seq:06}-{}",
        when.format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::create_dir(&p).unwrap();
    std::fs::write(p.join("tasks.db"), b"old").unwrap();
    p
}

#[test]
fn prune_keeps_the_newest_and_recent_pre_restore_copies() {
    let app = tasks_app("");
    snapshot(&app);
    let now = chrono::Utc::now();
    let old = now - chrono::Duration::days(30);
    let oldest = pre_restore(&app, 1, old);
    let young = pre_restore(&app, 2, now - chrono::Duration::days(1));
    let second = pre_restore(&app, 3, old);
    let newest: Vec<PathBuf> = (4..=6).map(|s| pre_restore(&app, s, old)).collect();
    // Never lifeboat's to delete.
    let set_aside = app.root().join("data.set-aside-000007");
    std::fs::create_dir(&set_aside).unwrap();
    let odd = app.root().join("data.pre-restore-keepme");
    std::fs::create_dir(&odd).unwrap();

    let out = expect(&app, &["prune", "--dry-run"], 0);
    let plan = stdout(&out);
    assert!(plan.contains("pre-restore copies: 6"), "{plan}");
    assert!(plan.contains("would delete 2"), "{plan}");
    let line = |p: &Path| {
        plan.lines()
            .find(|l| l.contains(&*p.to_string_lossy()))
            .unwrap_or_else(|| panic!("{} in\n{plan}", p.display()))
            .to_string()
    };
    assert!(line(&oldest).contains("delete"), "{plan}");
    assert!(line(&second).contains("delete"), "{plan}");
    assert!(
        line(&young).contains("keep") && line(&young).contains("younger"),
        "{plan}"
    );
    assert!(line(&newest[0]).contains("keep"), "{plan}");
    assert!(oldest.exists() && second.exists());

    let out = expect(&app, &["--json", "prune"], 0);
    let report = json(&out);
    assert_eq!(report["pre_restore"]["copies"].as_array().unwrap().len(), 6);
    assert!(!oldest.exists() && !second.exists());
    assert!(young.exists() && newest.iter().all(|p| p.exists()));
    assert!(set_aside.exists() && odd.exists());

    // Configurable, and validated.
    let body = std::fs::read_to_string(app.config_path()).unwrap();
    std::fs::write(
        app.config_path(),
        format!("{body}[restore]\nkeep_pre_restore = 1\nkeep_pre_restore_days = 0\n"),
    )
    .unwrap();
    expect(&app, &["prune"], 0);
    assert!(!young.exists() && !newest[0].exists() && newest[2].exists());
    std::fs::write(
        app.config_path(),
        format!("{body}[restore]\nkeep_pre_restore = 0\n"),
    )
    .unwrap();
    let out = expect(&app, &["prune"], 2);
    assert!(stderr(&out).contains("keep_pre_restore"), "{}", text(&out));
}

#[test]
fn a_missing_data_dir_is_an_error_not_a_new_tree() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    let body = std::fs::read_to_string(app.config_path()).unwrap();
    let typo = body.replace("data_dir = \"data\"", "data_dir = \"dta/data\"");
    std::fs::write(app.config_path(), &typo).unwrap();
    for args in [&["snapshot"][..], &["backup-now"], &["migrate"]] {
        let out = expect(&app, args, 2);
        assert!(
            stderr(&out).contains(&*app.root().join("dta/data").to_string_lossy()),
            "{args:?}: {}",
            text(&out)
        );
        assert!(!app.root().join("dta").exists(), "{args:?} created a tree");
    }
    // A restore onto a fresh machine creates data_dir, but only inside a
    // parent that exists.
    let out = expect(&app, &["restore", "latest"], 2);
    assert!(stderr(&out).contains("dta/data"), "{}", text(&out));
    assert!(!app.root().join("dta").exists());

    let fresh = body.replace(
        "data_dir = \"data\"",
        &format!(
            "data_dir = \"fresh\"\nbackup_dir = \"{}\"",
            app.backup_dir().display()
        ),
    );
    std::fs::write(app.config_path(), fresh).unwrap();
    let out = expect(&app, &["restore", "latest"], 0);
    assert!(
        stdout(&out).contains(&format!("restored {tag}")),
        "{}",
        text(&out)
    );
    assert_eq!(rows(&app.root().join("fresh/db/tasks.db")), 20);
}
