//! Restore: round trips on the demo application, migrations forward,
//! refusals that leave live data byte-identical, hostile archives, and
//! crash safety of the swap.

use crate::support::process::DbHolder;
use crate::support::{App, demo, tarball, text};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

// ---------------------------------------------------------------------------
// Fixtures

const NOTES: &str = "[[database]]\nname = \"notes\"\npath = \"notes.db\"\n";

/// The demo app: `data/db/tasks.db` at `version` with `tasks` rows, WAL,
/// and two files lifeboat does not manage.
fn demo_app(version: i64, tasks: usize) -> App {
    let app = App::new();
    app.write_config(&demo::tasks_db_config());
    demo::create(&tasks_db(&app), version, tasks, true);
    unmanaged(&app);
    app
}

fn unmanaged(app: &App) {
    std::fs::write(app.data_dir().join("notes.txt"), "not lifeboat's").unwrap();
    std::fs::create_dir_all(app.data_dir().join("uploads")).unwrap();
    std::fs::write(app.data_dir().join("uploads/a.bin"), [7u8; 3000]).unwrap();
}

fn tasks_db(app: &App) -> PathBuf {
    app.data_dir().join("db/tasks.db")
}

/// Take a snapshot and return its tag.
fn snapshot(app: &App) -> String {
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let newest = app.archives().pop().expect("an archive");
    newest.strip_suffix(".tar.gz").unwrap().to_string()
}

fn archive(app: &App, tag: &str) -> PathBuf {
    app.backup_dir().join(format!("{tag}.tar.gz"))
}

/// Every file under `dir` (except lifeboat's own `backups`) with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == "backups" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Names next to the data directory: staging, journal, pre-restore.
fn siblings(app: &App) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(app.root())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("data."))
        .collect();
    v.sort();
    v
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run a restore that must be refused with `needle` in its message, and
/// check that nothing live changed and nothing was left behind.
fn assert_refused(app: &App, args: &[&str], needle: &str) {
    let before = tree(&app.data_dir());
    let out = app.run(args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains(needle),
        "expected `{needle}`:\n{}",
        text(&out)
    );
    assert!(
        tree(&app.data_dir()) == before,
        "live data changed after a refused restore:\n{}",
        text(&out)
    );
    assert!(siblings(app).is_empty(), "left behind: {:?}", siblings(app));
    let record = app.last_run();
    assert_eq!(record["command"], "restore");
    assert_eq!(record["status"], "failed");
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "{}", text(out));
}

// ---------------------------------------------------------------------------
// Round trips

#[test]
fn round_trip_repairs_deleted_rows_deleted_files_and_corrupt_pages() {
    let app = demo_app(4, 400);
    let db = tasks_db(&app);
    let tag = snapshot(&app);
    let good = demo::dump(&db);
    let others = tree(&app.data_dir());
    let others: Vec<_> = others
        .into_iter()
        .filter(|(k, _)| !k.starts_with("db/"))
        .collect();

    // 1. Rows deleted by a bad query.
    demo::exec(&db, "DELETE FROM tasks WHERE id % 2 = 0;");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    let damaged = demo::dump(&db);
    assert_ne!(damaged, good);
    let out = app.run(&["restore", &tag]);
    assert_ok(&out);
    assert_eq!(demo::dump(&db), good);
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o640,
        "the restored file keeps the replaced file's permissions"
    );
    let s = stdout(&out);
    assert!(s.contains(&format!("restored {tag}")), "{s}");
    assert!(s.contains("integrity_check ok"), "{s}");
    assert!(s.contains("lifeboat restore --undo"), "{s}");
    assert!(s.contains("tasks"), "row count table: {s}");
    assert_eq!(app.last_run()["command"], "restore");
    assert_eq!(app.last_run()["status"], "success");
    for (rel, bytes) in &others {
        assert_eq!(
            &std::fs::read(app.data_dir().join(rel)).unwrap(),
            bytes,
            "{rel} must survive untouched"
        );
    }
    // The restored file is back in WAL mode, as the application had it.
    let mode: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    // `--undo` puts the damaged copy back, and undoing the undo restores.
    let out = app.run(&["restore", "--undo"]);
    assert_ok(&out);
    assert_eq!(demo::dump(&db), damaged);
    let out = app.run(&["restore", "--undo"]);
    assert_ok(&out);
    assert_eq!(demo::dump(&db), good);

    // 2. The database file deleted.
    std::fs::remove_file(&db).unwrap();
    assert_ok(&app.run(&["restore", &tag]));
    assert_eq!(demo::dump(&db), good);

    // 3. A page overwritten with garbage.
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(bytes.len() > 4096 * 4);
    bytes[4096 * 2..4096 * 3].fill(0xA5);
    std::fs::write(&db, &bytes).unwrap();
    assert_ok(&app.run(&["restore", &tag]));
    assert_eq!(demo::dump(&db), good);
    let integrity: String = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let journals: Vec<_> = siblings(&app)
        .into_iter()
        .filter(|n| !n.contains(".pre-restore-"))
        .collect();
    assert!(journals.is_empty(), "{journals:?}");
}

#[test]
fn an_older_snapshot_is_migrated_forward() {
    let app = demo_app(2, 60);
    let db = tasks_db(&app);
    let tag = snapshot(&app);
    let done = (0..60).filter(|i| i % 3 == 0).count() as i64;
    // Meanwhile the application moved on to the newest schema and lost data.
    demo::exec(&db, "DELETE FROM tasks;");

    let out = app.run(&["restore", &tag, "--dry-run"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("dry run"), "{}", text(&out));
    assert_eq!(demo::count(&db, "tasks"), 0, "a dry run changes nothing");
    assert!(siblings(&app).is_empty(), "{:?}", siblings(&app));

    let out = app.run(&["restore", &tag]);
    assert_ok(&out);
    let s = stdout(&out);
    assert!(s.contains("schema v2 -> v4"), "{s}");
    assert!(s.contains("0003_add_task_priority.sql"), "{s}");
    assert!(s.contains("changed by 0004_archive_done_tasks.sql"), "{s}");
    let dump = demo::dump(&db);
    assert_eq!(dump["#user_version"], vec!["4"]);
    assert_eq!(demo::count(&db, "tasks"), 60 - done);
    assert_eq!(demo::count(&db, "archived_tasks"), done);
    assert!(demo::count(&db, "task_tags") > 0);
}

#[test]
fn one_database_only_with_db() {
    let app = App::new();
    app.write_config(&format!("{}{NOTES}", demo::tasks_db_config()));
    demo::create(&tasks_db(&app), 4, 30, false);
    let notes = app.data_dir().join("notes.db");
    crate::support::sqlite(&notes, "CREATE TABLE n(v); INSERT INTO n VALUES ('A');");
    let tag = snapshot(&app);
    demo::exec(&notes, "UPDATE n SET v = 'B';");
    demo::exec(&tasks_db(&app), "DELETE FROM tasks;");
    assert_ok(&app.run(&["restore", &tag, "--db", "notes"]));
    assert_eq!(demo::dump(&notes)["n"], vec!["[Text(\"A\")]"]);
    assert_eq!(demo::count(&tasks_db(&app), "tasks"), 0, "tasks untouched");
}

#[test]
fn fresh_machine_with_only_the_archive() {
    let app = App::new();
    app.write_config(&format!(
        "backup_dir = \"backups\"\n{}",
        demo::tasks_db_config()
    ));
    demo::create(&tasks_db(&app), 4, 50, true);
    let out = app.run(&["snapshot"]);
    assert_ok(&out);
    let good = demo::dump(&tasks_db(&app));
    let name = std::fs::read_dir(app.root().join("backups"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".tar.gz"))
        .unwrap();
    let tag = name.strip_suffix(".tar.gz").unwrap();
    std::fs::remove_dir_all(app.data_dir()).unwrap();

    let out = app.run(&["restore"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stdout(&out).contains(tag), "{}", text(&out));

    let out = app.run(&["restore", tag]);
    assert_ok(&out);
    assert!(stdout(&out).contains("no previous data"), "{}", text(&out));
    assert_eq!(demo::dump(&tasks_db(&app)), good);
}

#[test]
fn fresh_machine_with_only_the_dir_remote() {
    let app = App::new();
    app.write_config(&format!(
        "[remote.dir]\npath = \"remote\"\n{}",
        demo::tasks_db_config()
    ));
    app.set_up_remote();
    let db = tasks_db(&app);
    demo::create(&db, 4, 50, true);
    let tag = snapshot(&app);
    assert_eq!(app.last_run()["push"]["status"], "pushed");
    let good = demo::dump(&db);

    // A damaged local copy: the remote one is used instead.
    let local = archive(&app, &tag);
    let len = std::fs::metadata(&local).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&local)
        .unwrap();
    f.set_len(len - 100).unwrap();
    demo::exec(&db, "DELETE FROM tasks;");
    let out = app.run(&["restore", &tag]);
    assert_ok(&out);
    assert!(stderr(&out).contains("is damaged"), "{}", text(&out));
    assert!(stdout(&out).contains("source: dir:"), "{}", text(&out));
    assert_eq!(demo::dump(&db), good);

    // The machine is gone: no data, no local snapshots, only the remote.
    std::fs::remove_dir_all(app.data_dir()).unwrap();
    for entry in std::fs::read_dir(app.root()).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("data.") {
            std::fs::remove_dir_all(entry.path()).unwrap();
        }
    }
    let out = app.run(&["restore"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        stdout(&out).contains(&tag) && stdout(&out).contains("dir"),
        "{}",
        text(&out)
    );
    let out = app.run(&["restore", &tag, "--from", "dir"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("no previous data"), "{}", text(&out));
    assert_eq!(demo::dump(&db), good);
    // The download did not stay behind as a local snapshot.
    assert!(app.archives().is_empty(), "{:?}", app.archives());
}

#[test]
fn fresh_machine_with_only_the_github_remote() {
    use crate::support::gh::{Emulator, gh_bins, github_config};
    for gh in gh_bins("fresh_machine_with_only_the_github_remote") {
        let emu = Emulator::start();
        let app = App::new();
        app.write_config(&format!(
            "{}{}",
            demo::tasks_db_config(),
            github_config(&gh.path, "60s")
        ));
        let db = tasks_db(&app);
        demo::create(&db, 3, 80, true);
        let run = |args: &[&str]| {
            let mut cmd = app.cmd(args);
            emu.env(&mut cmd);
            cmd.output().unwrap()
        };
        assert_ok(&run(&["snapshot"]));
        assert_eq!(app.last_run()["push"]["status"], "pushed", "{}", gh.version);
        let tag = app.last_run()["snapshot"]["tag"]
            .as_str()
            .unwrap()
            .to_string();
        let good = demo::dump(&db);

        // The machine is gone: an empty data directory, the config, gh.
        std::fs::remove_dir_all(app.data_dir()).unwrap();
        std::fs::create_dir_all(app.data_dir()).unwrap();
        let out = run(&["restore"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            stdout(&out).contains(&tag),
            "{}: {}",
            gh.version,
            text(&out)
        );

        let out = run(&["restore", &tag]);
        assert_ok(&out);
        let s = stdout(&out);
        assert!(s.contains("source: github:"), "{}: {s}", gh.version);
        assert!(s.contains("schema v3 -> v4"), "{}: {s}", gh.version);
        assert!(s.contains("no previous data"), "{}: {s}", gh.version);
        let restored = demo::dump(&db);
        assert_eq!(restored["#user_version"], vec!["4"]);
        assert_eq!(restored["projects"], good["projects"]);
        assert_eq!(restored["tags"], good["tags"]);
        assert!(app.archives().is_empty(), "the download did not stay");
    }
}

/// A download shows a byte counter on a terminal (util-linux `script`
/// provides one), and nothing without one or with `-q`.
#[test]
fn a_download_shows_progress_only_on_a_terminal() {
    let app = App::new();
    app.write_config(&format!(
        "[remote.dir]\npath = \"remote\"\n{}",
        demo::tasks_db_config()
    ));
    app.set_up_remote();
    let db = tasks_db(&app);
    demo::create(&db, 4, 20_000, true);
    let tag = snapshot(&app);
    let restore = |extra: &str| {
        let command = format!(
            "{} --config {} restore {tag} --from dir --dry-run{extra}",
            crate::support::lifeboat_bin().display(),
            app.config_path().display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .current_dir(app.root())
            .output()
            .expect("script(1) runs");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let shown = restore("");
    // The counter's last state stays: the archive's size, in KiB here.
    let size = std::fs::metadata(archive(&app, &tag)).unwrap().len();
    let last = shown
        .split(['\r', '\n'])
        .rfind(|l| l.contains("download"))
        .unwrap_or_default();
    assert!(
        size > 100 << 10,
        "the archive is large enough to show KiB: {size}"
    );
    assert!(last.contains("KiB") && last.contains("B/s"), "{shown}");
    let quiet = restore(" -q");
    assert!(!quiet.contains("B/s"), "{quiet}");
    let out = app.run(&["restore", &tag, "--from", "dir", "--dry-run"]);
    assert_ok(&out);
    assert!(!stderr(&out).contains("B/s"), "{}", text(&out));
}

#[test]
fn whole_directory_exchange_when_the_data_dir_holds_only_databases() {
    let app = App::new();
    app.write_config(&format!(
        "backup_dir = \"backups\"\n{}",
        demo::tasks_db_config()
    ));
    let db = tasks_db(&app);
    demo::create(&db, 4, 50, true);
    let tag = {
        assert_ok(&app.run(&["snapshot"]));
        let name = std::fs::read_dir(app.root().join("backups"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .find(|n| n.ends_with(".tar.gz"))
            .unwrap();
        name.strip_suffix(".tar.gz").unwrap().to_string()
    };
    let good = demo::dump(&db);
    demo::exec(&db, "DELETE FROM tasks;");
    let out = app.run(&["restore", &tag]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("atomic directory exchange"),
        "{}",
        text(&out)
    );
    assert_eq!(demo::dump(&db), good);
    let pre: Vec<_> = siblings(&app);
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert_eq!(
        demo::count(&app.root().join(&pre[0]).join("db/tasks.db"), "tasks"),
        0
    );

    // A file lifeboat does not manage forces per-file renames, and survives.
    std::fs::write(app.data_dir().join("keep.txt"), "mine").unwrap();
    demo::exec(&db, "DELETE FROM tasks;");
    let out = app.run(&["restore", &tag]);
    assert_ok(&out);
    assert!(stdout(&out).contains("per-file"), "{}", text(&out));
    assert_eq!(demo::dump(&db), good);
    assert_eq!(
        std::fs::read(app.data_dir().join("keep.txt")).unwrap(),
        b"mine"
    );
}

#[test]
fn staging_inside_the_data_dir_when_it_cannot_go_beside_it() {
    // What happens for a mount point or a read-only parent (`/var/lib/app`),
    // forced here by a debug-build switch.
    use std::os::unix::process::ExitStatusExt;
    let c = crash_fixture(false);
    let run = |args: &[&str], crash: Option<&str>| {
        let mut cmd = c.app.cmd(args);
        cmd.env("LIFEBOAT_TEST_STAGE_INSIDE", "1");
        if let Some(step) = crash {
            cmd.env("LIFEBOAT_TEST_CRASH_AT", step);
        }
        cmd.output().unwrap()
    };
    let hidden = |prefix: &str| -> Vec<String> {
        std::fs::read_dir(c.app.data_dir())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(prefix))
            .collect()
    };
    let out = run(&["restore", &c.tag], Some("swap"));
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out));
    assert!(c.journal_exists());
    assert_eq!(hidden(".lifeboat.staging-").len(), 1);
    let out = run(&["restore"], None);
    assert!(stderr(&out).contains("was completed"), "{}", text(&out));
    assert_eq!(c.state(), Some("a"));
    assert!(!c.journal_exists());
    assert_ok(&run(&["restore", "--undo"], None));
    assert_eq!(c.state(), Some("b"));
    for dir in hidden(".lifeboat.pre-restore-") {
        std::fs::remove_dir_all(c.app.data_dir().join(dir)).unwrap();
    }
    assert!(
        hidden(".lifeboat.").is_empty(),
        "{:?}",
        hidden(".lifeboat.")
    );

    let out = run(&["restore", &c.tag], None);
    assert_ok(&out);
    assert_eq!(c.state(), Some("a"));
    assert_eq!(hidden(".lifeboat.pre-restore-").len(), 1);
    assert!(siblings(&c.app).is_empty(), "nothing beside the data dir");
    assert_ok(&run(&["restore", "--undo"], None));
    assert_eq!(c.state(), Some("b"));
}

// ---------------------------------------------------------------------------
// Refusals: live data byte-identical afterwards.

#[test]
fn refuses_unknown_manifest_version() {
    let app = demo_app(4, 30);
    let tag = snapshot(&app);
    tarball::rebuild(&archive(&app, &tag), false, |m, _| {
        m["manifest_version"] = 3.into()
    });
    demo::exec(&tasks_db(&app), "DELETE FROM tasks;");
    assert_refused(&app, &["restore", &tag], "manifest_version 3");
}

#[test]
fn refuses_a_newer_schema_than_the_ladder() {
    let app = demo_app(4, 30);
    let tag = snapshot(&app);
    tarball::rebuild(&archive(&app, &tag), false, |m, _| {
        m["databases"][0]["schema_version"] = 99.into()
    });
    assert_refused(&app, &["restore", &tag], "schema version 99");
}

#[test]
fn refuses_a_sha256_mismatch() {
    let app = demo_app(4, 30);
    let tag = snapshot(&app);
    tarball::rebuild(&archive(&app, &tag), false, |_, files| {
        let data = &mut files[0].1;
        let n = data.len();
        data[n - 10] ^= 0xff;
    });
    assert_refused(&app, &["restore", &tag], "sha256");
}

#[test]
fn refuses_a_truncated_archive() {
    let app = demo_app(4, 300);
    let tag = snapshot(&app);
    let path = archive(&app, &tag);
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    assert_refused(&app, &["restore", &tag], "damaged or truncated");
}

#[test]
fn refuses_a_database_that_fails_integrity_check() {
    let app = demo_app(4, 400);
    let tag = snapshot(&app);
    tarball::rebuild(&archive(&app, &tag), true, |_, files| {
        let data = &mut files[0].1;
        let pages = data.len() / 4096;
        data[(pages - 1) * 4096 + 8..pages * 4096].fill(0x5a);
    });
    assert_refused(&app, &["restore", &tag], "PRAGMA integrity_check reports");
}

/// SQLite enforces foreign keys only when the application turns them on, so
/// an orphan row in the source is real data: the restore brings it back as
/// it was, and says so, rather than refusing every snapshot.
#[test]
fn restores_a_foreign_key_violation_the_snapshot_already_had() {
    let app = demo_app(4, 30);
    demo::exec(
        &tasks_db(&app),
        "PRAGMA foreign_keys = OFF; INSERT INTO tasks(project_id, title) VALUES (999, 'orphan');",
    );
    let before = demo::dump(&tasks_db(&app));
    let tag = snapshot(&app);
    demo::exec(&tasks_db(&app), "DELETE FROM task_tags; DELETE FROM tasks;");
    let out = app.run(&["restore", &tag, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(stdout(&out).contains("foreign_key_check"), "{}", text(&out));
    assert!(!text(&out).contains("damaged"), "{}", text(&out));
    assert_eq!(demo::dump(&tasks_db(&app)), before);
}

#[test]
fn refuses_a_row_count_shortfall() {
    let app = demo_app(4, 30);
    let tag = snapshot(&app);
    tarball::rebuild(&archive(&app, &tag), false, |m, _| {
        m["databases"][0]["row_counts"]["projects"] = 1000.into()
    });
    let before = tree(&app.data_dir());
    let out = app.run(&["restore", &tag]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("fewer rows"), "{err}");
    assert!(err.contains("projects") && err.contains("1000"), "{err}");
    assert!(err.contains("SHORT"), "{err}");
    assert!(tree(&app.data_dir()) == before);
    assert!(siblings(&app).is_empty());
}

#[test]
fn refuses_a_database_in_use_by_another_process() {
    let app = demo_app(4, 30);
    let tag = snapshot(&app);
    demo::exec(&tasks_db(&app), "DELETE FROM tasks WHERE id < 5;");
    let holder = DbHolder::exclusive(&tasks_db(&app));
    let before = tree(&app.data_dir());
    let out = app.run(&["restore", &tag]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(stderr(&out).contains("is in use"), "{}", text(&out));
    assert!(tree(&app.data_dir()) == before);
    assert!(siblings(&app).is_empty());
    // --force skips the probe: the holder keeps the old, moved-aside file.
    let out = app.run(&["restore", &tag, "--force"]);
    drop(holder);
    assert_ok(&out);
    assert_eq!(demo::count(&tasks_db(&app), "tasks"), 30);
}

#[test]
fn refuses_archives_over_the_limit_or_the_free_space() {
    let app = demo_app(4, 30);
    let tag = snapshot(&app);
    let pristine = std::fs::read(archive(&app, &tag)).unwrap();
    // Declared sizes are judged before anything is unpacked.
    tarball::rebuild(&archive(&app, &tag), false, |m, _| {
        m["databases"][0]["bytes"] = (1u64 << 41).into()
    });
    assert_refused(&app, &["restore", &tag], "more than the limit");
    std::fs::write(archive(&app, &tag), &pristine).unwrap();
    tarball::rebuild(&archive(&app, &tag), false, |m, _| {
        m["databases"][0]["bytes"] = (1u64 << 55).into()
    });
    app.write_config(&format!(
        "{}[restore]\nmax_unpacked_bytes = {}\n",
        demo::tasks_db_config(),
        1u64 << 60
    ));
    assert_refused(&app, &["restore", &tag], "not enough free space");
}

#[test]
fn a_failing_migration_step_is_named_and_nothing_changes() {
    let app = App::new();
    let ladder = app.root().join("ladder");
    std::fs::create_dir_all(&ladder).unwrap();
    std::fs::write(ladder.join("0001_create.sql"), "CREATE TABLE a(x);").unwrap();
    app.write_config("[[database]]\nname = \"a\"\npath = \"a.db\"\nmigrations = \"ladder\"\n");
    let db = app.data_dir().join("a.db");
    crate::support::sqlite(
        &db,
        "CREATE TABLE a(x); INSERT INTO a VALUES (1); PRAGMA user_version = 1;",
    );
    let tag = snapshot(&app);
    std::fs::write(
        ladder.join("0002_broken.sql"),
        "ALTER TABLE a ADD COLUMN y; UPDATE nope SET y = 1;",
    )
    .unwrap();
    demo::exec(&db, "DELETE FROM a;");
    assert_refused(&app, &["restore", &tag], "migration 0002_broken.sql failed");
}

#[test]
fn keep_staging_keeps_the_refused_copy_for_inspection() {
    let app = demo_app(4, 400);
    let tag = snapshot(&app);
    // A damaged page behind matching checksums: refused by integrity_check.
    tarball::rebuild(&archive(&app, &tag), true, |_, files| {
        let data = &mut files[0].1;
        let pages = data.len() / 4096;
        data[(pages - 1) * 4096 + 8..pages * 4096].fill(0x5a);
    });
    let out = app.run(&["restore", &tag, "--keep-staging"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let kept = app.root().join(format!("data.staging-{tag}.kept"));
    assert!(
        stderr(&out).contains(&kept.display().to_string()),
        "{}",
        text(&out)
    );
    assert!(kept.join("db/tasks.db").is_file());
    // The next run leaves a kept copy alone.
    assert_eq!(app.run(&["restore"]).status.code(), Some(2));
    assert!(kept.join("db/tasks.db").is_file());
}

#[test]
fn refuses_a_wal_database_merely_open_in_another_process() {
    // No transaction, no lock on the database file: only the -shm file's
    // lock shows that an application has it open.
    let app = demo_app(4, 30);
    let tag = snapshot(&app);
    // An idle connection: it has read, holds no lock, keeps the WAL open.
    let holder = DbHolder::start(
        &tasks_db(&app),
        "c.execute('SELECT count(*) FROM tasks').fetchall()",
    );
    let holder_pid = holder.id();
    let before = tree(&app.data_dir());
    let out = app.run(&["restore", &tag]);
    drop(holder);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("process {holder_pid} (python3) has it open")),
        "{}",
        text(&out)
    );
    assert!(tree(&app.data_dir()) == before);
}

/// The normal state of a long-lived connection to a rollback-journal
/// database: open, idle, no lock at all. Only the open file shows it.
#[test]
fn refuses_a_rollback_journal_database_merely_open_in_another_process() {
    let app = App::new();
    app.write_config(&demo::tasks_db_config());
    demo::create(&tasks_db(&app), 4, 30, false);
    let tag = snapshot(&app);
    let holder = DbHolder::start(
        &tasks_db(&app),
        "c.execute('SELECT count(*) FROM tasks').fetchall()",
    );
    let holder_pid = holder.id();
    let before = tree(&app.data_dir());
    let out = app.run(&["restore", &tag]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("process {holder_pid} (python3) has it open")),
        "{}",
        text(&out)
    );
    assert!(tree(&app.data_dir()) == before);
    drop(holder);
    assert_ok(&app.run(&["restore", &tag]));
}

// ---------------------------------------------------------------------------
// Hostile archives: refused, nothing written outside staging.

fn hostile(app: &App, tag: &str, make: impl FnOnce(&str, &[u8], &[u8]) -> Vec<tarball::Entry>) {
    let path = archive(app, tag);
    let entries = tarball::read_entries(&path);
    let (manifest_name, manifest) = &entries[0];
    let (_, db) = &entries[1];
    assert!(manifest_name.ends_with("MANIFEST.json"));
    tarball::write(&path, &make(tag, manifest, db));
}

/// Builds a hostile archive from (tag, manifest bytes, database bytes).
type Build<'a> = Box<dyn Fn(&str, &[u8], &[u8]) -> Vec<tarball::Entry> + 'a>;

#[test]
fn hostile_archives_are_refused() {
    let app = demo_app(4, 30);
    let tag = snapshot(&app);
    let pristine = std::fs::read(archive(&app, &tag)).unwrap();
    let root = app.root().to_path_buf();
    let outside = root.join("outside");
    let config_before = std::fs::read(app.config_path()).unwrap();
    use tar::EntryType as T;
    use tarball::Entry;

    let cases: Vec<(&str, Build<'_>, &str)> = vec![
        (
            "dot-dot",
            Box::new(|t, m, d| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry::file(&format!("{t}/../../outside"), b"pwned"),
                    Entry::file(&format!("{t}/db/tasks.db"), d),
                ]
            }),
            "not declared in MANIFEST.json",
        ),
        (
            "absolute",
            Box::new(|t, m, d| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry::file(&outside.to_string_lossy(), b"pwned"),
                    Entry::file(&format!("{t}/db/tasks.db"), d),
                ]
            }),
            "not declared in MANIFEST.json",
        ),
        (
            "symlink then write through it",
            Box::new(|t, m, d| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry::link(&format!("{t}/db"), T::Symlink, &root.to_string_lossy()),
                    Entry::file(&format!("{t}/db/tasks.db"), d),
                ]
            }),
            "symbolic link",
        ),
        (
            "symlink at the declared path",
            Box::new(|t, m, _| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry::link(
                        &format!("{t}/db/tasks.db"),
                        T::Symlink,
                        &outside.to_string_lossy(),
                    ),
                ]
            }),
            "symbolic link",
        ),
        (
            "hard link",
            Box::new(|t, m, _| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry::link(
                        &format!("{t}/db/tasks.db"),
                        T::Link,
                        &root.join("lifeboat.toml").to_string_lossy(),
                    ),
                ]
            }),
            "hard link",
        ),
        (
            "device",
            Box::new(|t, m, _| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry {
                        name: format!("{t}/db/tasks.db"),
                        kind: T::Char,
                        data: vec![],
                        link: None,
                        header_size: Some(0),
                    },
                ]
            }),
            "a device",
        ),
        (
            "undeclared extra file",
            Box::new(|t, m, d| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry::file(&format!("{t}/db/tasks.db"), d),
                    Entry::file(&format!("{t}/db/extra.db"), d),
                ]
            }),
            "db/extra.db`: it is not declared",
        ),
        (
            "10 GB zero bomb declared small",
            Box::new(|t, m, _| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry {
                        name: format!("{t}/db/tasks.db"),
                        kind: T::Regular,
                        data: vec![0u8; 1 << 20],
                        link: None,
                        header_size: Some(10 << 30),
                    },
                ]
            }),
            "is 10737418240 bytes but MANIFEST.json declares",
        ),
        (
            "GNU long-name header declaring 20 GB (a memory bomb)",
            Box::new(|_, _, _| {
                vec![Entry {
                    name: "././@LongLink".into(),
                    kind: T::GNULongName,
                    data: vec![],
                    link: None,
                    header_size: Some(20 << 30),
                }]
            }),
            "is a GNU long name of 21474836480 bytes",
        ),
        (
            "PAX extension header",
            Box::new(|t, m, d| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry {
                        name: "PaxHeaders/tasks.db".into(),
                        kind: T::XHeader,
                        data: format!("30 path={t}/db/tasks.db\n").into_bytes(),
                        link: None,
                        header_size: None,
                    },
                    Entry::file(&format!("{t}/db/tasks.db"), d),
                ]
            }),
            "PAX extension header",
        ),
        (
            "GNU sparse entry expanding to 4 GiB",
            Box::new(|t, m, _| {
                vec![
                    Entry::file(&format!("{t}/MANIFEST.json"), m),
                    Entry {
                        name: format!("{t}/db/tasks.db"),
                        kind: T::GNUSparse,
                        data: vec![0u8; 512],
                        link: None,
                        header_size: None,
                    },
                ]
            }),
            "only regular files are allowed",
        ),
    ];
    for (what, make, needle) in cases {
        std::fs::write(archive(&app, &tag), &pristine).unwrap();
        hostile(&app, &tag, make);
        let before = tree(&app.data_dir());
        let out = app.run(&["restore", &tag]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        assert!(
            stderr(&out).contains(needle),
            "{what}: expected `{needle}`:\n{}",
            text(&out)
        );
        assert!(tree(&app.data_dir()) == before, "{what}: live data changed");
        assert!(siblings(&app).is_empty(), "{what}: {:?}", siblings(&app));
        assert!(!outside.exists(), "{what}: wrote outside staging");
        assert!(!app.root().join("tasks.db").exists(), "{what}");
        assert_eq!(std::fs::read(app.config_path()).unwrap(), config_before);
        let names: Vec<_> = std::fs::read_dir(app.root())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, vec!["data", "lifeboat.toml"], "{what}");
    }
}

// ---------------------------------------------------------------------------
// Crash safety

/// Two databases at state A in a snapshot, then changed to state B live.
/// `whole`: the data directory holds only the databases (and the backups
/// live elsewhere), so the swap is one directory exchange.
struct Crash {
    app: App,
    whole: bool,
    tag: String,
    a: Vec<BTreeMap<String, Vec<String>>>,
    b: Vec<BTreeMap<String, Vec<String>>>,
    other: Vec<u8>,
}

fn crash_fixture(whole: bool) -> Crash {
    let app = App::new();
    let backups = if whole {
        "backup_dir = \"backups\"\n"
    } else {
        ""
    };
    app.write_config(&format!("{backups}{}{NOTES}", demo::tasks_db_config()));
    demo::create(&tasks_db(&app), 4, 200, true);
    let notes = app.data_dir().join("notes.db");
    crate::support::sqlite(
        &notes,
        "PRAGMA journal_mode=WAL; CREATE TABLE n(v); INSERT INTO n VALUES ('A');",
    );
    if !whole {
        unmanaged(&app);
    }
    assert_ok(&app.run(&["snapshot"]));
    let backup_dir = if whole {
        app.root().join("backups")
    } else {
        app.backup_dir()
    };
    let tag = std::fs::read_dir(&backup_dir)
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.strip_suffix(".tar.gz").map(str::to_string)
        })
        .next()
        .unwrap();
    let a = vec![demo::dump(&tasks_db(&app)), demo::dump(&notes)];
    demo::exec(&tasks_db(&app), "DELETE FROM tasks WHERE id > 100;");
    demo::exec(&notes, "UPDATE n SET v = 'B';");
    let b = vec![demo::dump(&tasks_db(&app)), demo::dump(&notes)];
    let other = std::fs::read(app.data_dir().join("uploads/a.bin")).unwrap_or_default();
    Crash {
        app,
        whole,
        tag,
        a,
        b,
        other,
    }
}

impl Crash {
    /// `Some("a")` or `Some("b")` when the live set is exactly one of them;
    /// `None` for anything else (a half-done swap).
    fn state(&self) -> Option<&'static str> {
        if !self.whole {
            assert_eq!(
                std::fs::read(self.app.data_dir().join("uploads/a.bin")).unwrap(),
                self.other,
                "an unmanaged file changed"
            );
        }
        let dbs = [tasks_db(&self.app), self.app.data_dir().join("notes.db")];
        if !dbs.iter().all(|p| p.is_file()) {
            return None;
        }
        let live: Vec<_> = dbs.iter().map(|p| demo::dump(p)).collect();
        if live == self.a {
            Some("a")
        } else if live == self.b {
            Some("b")
        } else {
            None
        }
    }

    fn journal_exists(&self) -> bool {
        self.backup_dir().join("restore-journal.json").exists()
    }

    fn backup_dir(&self) -> PathBuf {
        if self.whole {
            self.app.root().join("backups")
        } else {
            self.app.backup_dir()
        }
    }

    /// The live state right after a crash: exact, or (per-file swaps only)
    /// in flight with the journal that the next run uses to roll it back.
    fn state_at_crash(&self, what: &str) -> &'static str {
        match self.state() {
            Some(s) => s,
            None if !self.whole && self.journal_exists() => "in flight",
            None => panic!("{what}: live data is a mix of old and new, with no journal"),
        }
    }

    /// The next run: it must report, clean up, and leave an exact state.
    fn next_run(&self) -> (Output, &'static str) {
        let out = self.app.run(&["restore"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let left: Vec<_> = siblings(&self.app)
            .into_iter()
            .filter(|n| !n.contains(".pre-restore-"))
            .collect();
        assert!(left.is_empty(), "not cleaned up: {left:?}");
        let state = self
            .state()
            .unwrap_or_else(|| panic!("a mix after recovery:\n{}", text(&out)));
        (out, state)
    }
}

#[test]
fn an_undo_killed_mid_swap_is_finished_and_can_itself_be_undone() {
    use std::os::unix::process::ExitStatusExt;
    let app = demo_app(4, 200);
    let db = tasks_db(&app);
    let tag = snapshot(&app);
    let snapshotted = demo::dump(&db);
    // Work done after the snapshot: in no snapshot, only in the live file.
    demo::exec(&db, "DELETE FROM tasks WHERE id % 3 = 0;");
    let unsaved = demo::dump(&db);
    assert_ok(&app.run(&["restore", &tag]));
    assert_eq!(demo::dump(&db), snapshotted);

    let out = app
        .cmd(&["restore", "--undo"])
        .env("LIFEBOAT_TEST_CRASH_AT", "swap")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out));
    // The next run finishes the undo: the unsaved work is live again...
    let out = app.run(&["restore"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("was completed"), "{}", text(&out));
    assert_eq!(demo::dump(&db), unsaved);
    // ...and what it replaced is kept: undo again.
    assert!(
        siblings(&app).iter().any(|n| n.contains(".pre-restore-")),
        "the pre-restore copy survives: {:?}",
        siblings(&app)
    );
    assert_ok(&app.run(&["restore", "--undo"]));
    assert_eq!(demo::dump(&db), snapshotted);
}

fn kill_at_each_step(whole: bool) {
    use std::os::unix::process::ExitStatusExt;
    // Before the first move the restore is abandoned; after it, finished.
    let steps = [
        ("staged", "b", "removed the staging directory"),
        ("checked", "b", "removed the staging directory"),
        ("journal", "b", "was abandoned"),
        ("swap", "a", "was completed"),
        ("swapped", "a", "was completed"),
        ("committed", "a", "had completed"),
    ];
    for (step, after, report) in steps {
        let c = crash_fixture(whole);
        let out = c
            .app
            .cmd(&["restore", &c.tag])
            .env("LIFEBOAT_TEST_CRASH_AT", step)
            .output()
            .unwrap();
        assert_eq!(out.status.signal(), Some(9), "{step}: {}", text(&out));
        let at_crash = c.state_at_crash(step);
        if whole {
            // One exchange: the live directory is always exactly one set.
            assert_ne!(at_crash, "in flight", "{step}");
        }
        let (out, state) = c.next_run();
        assert!(stderr(&out).contains(report), "{step}: {}", text(&out));
        assert_eq!(state, after, "{step} (at the crash: {at_crash})");
        // And the restore still works afterwards.
        assert_ok(&c.app.run(&["restore", &c.tag]));
        assert_eq!(c.state(), Some("a"), "{step}");
    }
}

#[test]
fn a_restore_killed_at_any_step_is_rolled_back_or_completed() {
    kill_at_each_step(false);
}

#[test]
fn a_whole_directory_restore_killed_at_any_step_is_never_a_mix() {
    kill_at_each_step(true);
}

#[test]
fn random_time_kills_leave_old_or_new() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    let c = crash_fixture(false);
    // How long a whole restore takes here bounds the random delays.
    let started = std::time::Instant::now();
    assert_ok(&c.app.run(&["restore", &c.tag, "--dry-run"]));
    let full = started.elapsed().as_micros() as u64 + 1;
    let mut x = seed | 1;
    let mut outcomes = Vec::new();
    for round in 0..6 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let delay = x % (full + full / 2);
        let mut child = c.app.cmd(&["restore", &c.tag]).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_micros(delay));
        let _ = child.kill();
        let finished = child.wait().unwrap().success();
        let what = format!("round {round} (seed {seed}, delay {delay}us)");
        let at_crash = c.state_at_crash(&what);
        let (_, after) = c.next_run();
        if finished {
            assert_eq!(after, "a", "{what}");
        }
        outcomes.push((at_crash, after));
        // Back to B for the next round when the restore went through.
        if after == "a" {
            let out = c.app.run(&["restore", "--undo"]);
            assert_ok(&out);
            assert_eq!(
                c.state(),
                Some("b"),
                "{what}: {outcomes:?} {:?}\n{}",
                siblings(&c.app),
                text(&out)
            );
        }
    }
    eprintln!("random kills (seed {seed}): {outcomes:?}");
}

// ---------------------------------------------------------------------------
// lifeboat migrate

#[test]
fn migrate_takes_a_snapshot_first_then_applies_the_ladder() {
    let app = demo_app(2, 30);
    let db = tasks_db(&app);
    let out = app.run(&["migrate"]);
    assert_ok(&out);
    assert!(
        stdout(&out).contains("0003_add_task_priority.sql"),
        "{}",
        text(&out)
    );
    assert_eq!(demo::dump(&db)["#user_version"], vec!["4"]);
    let archives = app.archives();
    assert_eq!(archives.len(), 1);
    assert!(archives[0].contains("-manual"), "{archives:?}");
    assert_eq!(app.last_run()["snapshot"]["reason"], "pre-migrate");
    // The pre-migrate snapshot restores the old schema's data forward again.
    let out = app.run(&["migrate"]);
    assert_ok(&out);
    assert!(stdout(&out).contains("nothing to do"), "{}", text(&out));
    assert_eq!(app.archives().len(), 1, "no snapshot when nothing to do");
}

#[test]
fn migrate_refuses_a_broken_ladder() {
    let app = App::new();
    let ladder = app.root().join("ladder");
    std::fs::create_dir_all(&ladder).unwrap();
    std::fs::write(ladder.join("0001_a.sql"), "CREATE TABLE a(x);").unwrap();
    std::fs::write(ladder.join("0003_c.sql"), "CREATE TABLE c(x);").unwrap();
    app.write_config("[[database]]\nname = \"a\"\npath = \"a.db\"\nmigrations = \"ladder\"\n");
    crate::support::sqlite(&app.data_dir().join("a.db"), "CREATE TABLE z(x);");
    let out = app.run(&["migrate"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("0002 is missing"), "{}", text(&out));
    assert!(app.archives().is_empty());
}

/// `--undo` puts back what the newest restore replaced even when the clock
/// stepped back between two restores (pre-restore copies carry a sequence,
/// not only a time). The second restore runs a day in the past through
/// libfaketime.
#[test]
fn undo_follows_the_restore_order_not_the_clock() {
    if Command::new("faketime")
        .arg("-f")
        .arg("+0")
        .arg("true")
        .status()
        .is_err()
    {
        assert!(
            std::env::var_os("LIFEBOAT_REQUIRE_GH").is_none(),
            "faketime is required under CI"
        );
        eprintln!("skipped: faketime (libfaketime) is not installed");
        return;
    }
    let app = demo_app(4, 60);
    let db = tasks_db(&app);
    let tag = snapshot(&app);
    demo::exec(&db, "DELETE FROM tasks WHERE id > 50;");
    assert_ok(&app.run(&["restore", &tag]));
    demo::exec(&db, "DELETE FROM tasks WHERE id > 20;");
    let newest_replaced = demo::dump(&db);
    let out = Command::new("faketime")
        .args(["-f", "-1d"])
        .arg(crate::support::lifeboat_bin())
        .arg("--config")
        .arg(app.config_path())
        .args(["restore", &tag])
        .current_dir(app.root())
        .output()
        .unwrap();
    assert_ok(&out);
    let pre: Vec<String> = siblings(&app)
        .into_iter()
        .filter(|n| n.contains(".pre-restore-"))
        .collect();
    assert_eq!(pre.len(), 2, "{pre:?}");
    assert_ok(&app.run(&["restore", "--undo"]));
    assert_eq!(demo::dump(&db), newest_replaced);
}
