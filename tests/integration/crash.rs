//! A restore (or an undo) killed at every state-changing system call, with
//! the application writing between the crash and the next lifeboat run.
//!
//! `strace -e inject=SYSCALL:signal=KILL:when=N` kills lifeboat exactly as
//! it enters its N-th `rename`, `renameat2`, `mkdir`, `unlink` or `unlinkat`,
//! for every N until the run completes. Then "the application" (python's
//! sqlite3) opens each live database - creating it if the crash left none -
//! commits a row and dies without closing, leaving a live `-wal`. Then
//! lifeboat runs again. What must hold, every time:
//! - no committed application write is lost: its row is in the live
//!   database, or in the pre-restore or set-aside copy the messages name;
//! - every database there passes `integrity_check`;
//! - each live database is entirely the old data or entirely the restored
//!   data (plus, possibly, the application's row) - never a mix;
//! - no journal or staging directory is left behind.

use crate::support::{App, demo, text};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const SYSCALLS: [&str; 5] = ["rename", "renameat2", "mkdir", "unlink", "unlinkat"];
const NOTES: &str = "[[database]]\nname = \"notes\"\npath = \"notes.db\"\n";
const APP_ROW: &str = "written by the application after the crash";

type Dump = BTreeMap<String, Vec<String>>;

/// A prepared application to copy for each kill point: `restored` is the
/// data a restore brings (the snapshot's), `old` what is live before it.
struct Template {
    root: tempfile::TempDir,
    whole: bool,
    tag: String,
    /// The command under test: `restore <tag>` or `restore --undo`.
    args: Vec<String>,
    restored: Vec<Dump>,
    old: Vec<Dump>,
}

fn dbs(root: &Path) -> [(String, PathBuf); 2] {
    [
        ("tasks".into(), root.join("data/db/tasks.db")),
        ("notes".into(), root.join("data/notes.db")),
    ]
}

fn dump(path: &Path) -> Dump {
    let mut d = demo::dump(path);
    d.remove("app_writes");
    d
}

/// The application: `db/tasks.db` (WAL, `tasks` tasks) and `notes.db`
/// (rollback journal), declared after `extra` config lines.
fn two_databases(app: &App, extra: &str, tasks: usize) -> (PathBuf, PathBuf) {
    app.write_config(&format!("{extra}{}{NOTES}", demo::tasks_db_config()));
    let [(_, tasks_db), (_, notes)] = dbs(app.root());
    demo::create(&tasks_db, 4, tasks, true);
    crate::support::sqlite(&notes, "CREATE TABLE n(v); INSERT INTO n VALUES ('A');");
    (tasks_db, notes)
}

/// The application's account in the cross-account tests (nobody).
const APP_ID: u32 = 65534;

/// `setpriv`, to run as the application's account; `None` (the test is
/// skipped, with a message) unless this runs as root.
fn setpriv() -> Option<&'static str> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to play root and the application's account");
        return None;
    }
    let found = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    Some(found.expect("setpriv (util-linux) is installed"))
}

/// `program` run as the application's account.
fn as_app(setpriv: &str, program: &Path) -> Command {
    let mut c = Command::new(setpriv);
    c.arg(format!("--reuid={APP_ID}"))
        .arg(format!("--regid={APP_ID}"))
        .args(["--clear-groups", "--"])
        .arg(program);
    c
}

/// Give `dir` and everything under it to the application's account.
fn chown_to_app(dir: &Path) {
    let status = Command::new("chown")
        .args(["-R", &format!("{APP_ID}:{APP_ID}")])
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
}

fn owned_by_app(p: &Path) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).unwrap();
    assert_eq!((m.uid(), m.gid()), (APP_ID, APP_ID), "{}", p.display());
}

impl Template {
    /// tasks.db in WAL mode, notes.db with a rollback journal; `whole`:
    /// nothing else in the data directory (one directory exchange).
    fn new(whole: bool, undo: bool) -> Template {
        let app = App::new();
        let backups = if whole {
            "backup_dir = \"backups\"\n"
        } else {
            ""
        };
        let (tasks, notes) = two_databases(&app, backups, 120);
        if !whole {
            std::fs::write(app.data_dir().join("notes.txt"), "not lifeboat's").unwrap();
        }
        let out = app.run(&["--json", "snapshot"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let tag =
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["snapshot"]["tag"]
                .as_str()
                .unwrap()
                .to_string();
        let a = vec![dump(&tasks), dump(&notes)];
        demo::exec(&tasks, "DELETE FROM tasks WHERE id > 60;");
        demo::exec(&notes, "UPDATE n SET v = 'B';");
        let b = vec![dump(&tasks), dump(&notes)];
        let (args, restored, old) = if undo {
            // Undo after a restore: it brings B back over A.
            let out = app.run(&["restore", &tag]);
            assert_eq!(out.status.code(), Some(0), "{}", text(&out));
            (vec!["restore".to_string(), "--undo".to_string()], b, a)
        } else {
            (vec!["restore".to_string(), tag.clone()], a, b)
        };
        Template {
            root: app.dir,
            whole,
            tag,
            args,
            restored,
            old,
        }
    }

    /// A fresh copy of the application (the config uses relative paths).
    fn copy(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", self.root.path().display()))
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        dir
    }
}

fn lifeboat(root: &Path, args: &[String]) -> Command {
    let mut c = Command::new(crate::support::lifeboat_bin());
    c.arg("--config").arg(root.join("lifeboat.toml")).args(args);
    c.env_remove("LIFEBOAT_CONFIG").env_remove("LIFEBOAT_LOG");
    c.current_dir(root);
    c
}

/// The application: open each live database (creating it if missing),
/// commit a row, and die without closing (the `-wal` stays).
fn application_writes(root: &Path) {
    let script = format!(
        "import os, sqlite3, sys\n\
         for p in sys.argv[1:]:\n\
         \x20   c = sqlite3.connect(p)\n\
         \x20   c.execute('PRAGMA journal_mode=WAL')\n\
         \x20   c.execute('CREATE TABLE IF NOT EXISTS app_writes(v TEXT)')\n\
         \x20   c.execute('INSERT INTO app_writes VALUES (?)', ('{APP_ROW}',))\n\
         \x20   c.commit()\n\
         os._exit(0)\n"
    );
    let mut cmd = Command::new("python3");
    cmd.arg("-c").arg(script);
    for (_, p) in dbs(root) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        cmd.arg(p);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// `integrity_check` and whether the application's row is there.
fn inspect(db: &Path) -> Result<bool, String> {
    let conn = Connection::open(db).map_err(|e| e.to_string())?;
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    if ok != "ok" {
        return Err(format!("integrity_check: {ok}"));
    }
    let has_table: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'app_writes'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if has_table == 0 {
        return Ok(false);
    }
    conn.query_row("SELECT count(*) FROM app_writes", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n > 0)
    .map_err(|e| e.to_string())
}

/// Every copy of database file `name` that lifeboat keeps beside the data
/// directory (pre-restore and set-aside directories).
fn kept_copies(root: &Path, file: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with("data.pre-restore-") || n.starts_with("data.set-aside-") {
            out.extend(
                crate::support::walk(&e.path())
                    .into_iter()
                    .filter(|p| p.file_name().is_some_and(|f| f == file)),
            );
        }
    }
    out
}

/// One kill point. Returns false when the run completed (no more points).
fn kill_at(t: &Template, syscall: &str, n: usize) -> bool {
    use std::os::unix::process::ExitStatusExt;
    let dir = t.copy();
    let root = dir.path();
    let mut cmd = Command::new("strace");
    cmd.args(["-f", "-qq", "-o", "/dev/null"])
        .args(["-e", &format!("trace={syscall}")])
        .args(["-e", &format!("inject={syscall}:signal=KILL:when={n}")])
        .arg(crate::support::lifeboat_bin())
        .arg("--config")
        .arg(root.join("lifeboat.toml"))
        .args(&t.args)
        .env_remove("LIFEBOAT_CONFIG")
        .current_dir(root);
    let out = cmd.output().unwrap();
    let killed = out.status.signal() == Some(9) || out.status.code() == Some(128 + 9);
    if !killed {
        assert_eq!(out.status.code(), Some(0), "{syscall} #{n}: {}", text(&out));
        return false;
    }
    let what = format!("{} killed at {syscall} #{n}", t.args.join(" "));
    application_writes(root);
    let after = lifeboat(root, &["restore".to_string()]).output().unwrap();
    assert_eq!(
        after.status.code(),
        Some(2),
        "{what}: the next run\n{}",
        text(&after)
    );

    let backup_dir = if t.whole {
        root.join("backups")
    } else {
        root.join("data/backups")
    };
    assert!(
        !backup_dir.join("restore-journal.json").exists(),
        "{what}: journal left\n{}",
        text(&after)
    );
    let staging_left: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".staging-"))
        .collect();
    assert!(staging_left.is_empty(), "{what}: {staging_left:?}");

    for (i, (name, live)) in dbs(root).iter().enumerate() {
        let found = inspect(live).unwrap_or_else(|e| panic!("{what}: live {name}: {e}"));
        let content = dump(live);
        assert!(
            content == t.restored[i] || content == t.old[i],
            "{what}: live {name} is a mix of old and restored data\n{}",
            text(&after)
        );
        if found {
            continue;
        }
        // Not live: the application's row must be in a copy lifeboat kept
        // and named, itself intact.
        let file = live.file_name().unwrap().to_string_lossy().into_owned();
        let kept: Vec<PathBuf> = kept_copies(root, &file)
            .into_iter()
            .filter(|p| inspect(p).unwrap_or_else(|e| panic!("{what}: {}: {e}", p.display())))
            .collect();
        assert!(
            !kept.is_empty(),
            "{what}: the application's write to {name} is lost\n{}",
            text(&after)
        );
        let stderr = String::from_utf8_lossy(&after.stderr);
        let named = kept.iter().any(|p| {
            p.ancestors()
                .any(|a| a != root && stderr.contains(&a.display().to_string()))
        });
        assert!(named, "{what}: {kept:?} not named in the message\n{stderr}");
    }
    true
}

fn kill_everywhere(whole: bool, undo: bool) {
    let probe = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=none", "true"])
        .output();
    match probe {
        Err(_) => {
            assert!(
                std::env::var_os("LIFEBOAT_REQUIRE_GH").is_none(),
                "strace is required under CI"
            );
            eprintln!("SKIPPED: strace is not installed");
            return;
        }
        // A container without ptrace: nothing can inject faults here.
        Ok(out) if !out.status.success() => {
            eprintln!("SKIPPED: strace cannot trace here: {}", text(&out));
            return;
        }
        Ok(_) => {}
    }
    let t = Template::new(whole, undo);
    let mut points = BTreeMap::new();
    for syscall in SYSCALLS {
        let mut n = 1;
        while kill_at(&t, syscall, n) {
            n += 1;
            assert!(n < 200, "{syscall}: the run never completes");
        }
        points.insert(syscall, n - 1);
    }
    eprintln!(
        "{} (tag {}): kill points {points:?}",
        t.args.join(" "),
        t.tag
    );
    // The swap itself was among them.
    let moves = if whole {
        points["renameat2"]
    } else {
        points["rename"]
    };
    assert!(moves >= 2, "{points:?}");
}

#[test]
fn a_per_file_restore_killed_at_any_syscall_loses_no_write() {
    kill_everywhere(false, false);
}

#[test]
fn a_whole_directory_restore_killed_at_any_syscall_loses_no_write() {
    kill_everywhere(true, false);
}

#[test]
fn an_undo_killed_at_any_syscall_loses_no_write() {
    kill_everywhere(false, true);
}

/// The data belongs to an application account; root's `restore` is killed
/// mid-swap. `health` is CRITICAL; the owner's hourly run finds root's
/// journal (one place for the configuration) and finishes the restore, as
/// what root staged belongs to the data's owner; the files are the owner's.
/// And the reverse: the owner's crashed restore is finished by root.
#[test]
fn crashed_restores_are_found_and_finished_across_accounts() {
    use std::os::unix::process::ExitStatusExt;
    let Some(setpriv) = setpriv() else { return };
    let app = App::new();
    let (tasks, notes) = two_databases(&app, "", 60);
    let root = app.root().to_path_buf();
    let chown = |dir: &Path| chown_to_app(dir);
    chown(&root);
    let as_owner = |args: &[&str]| {
        as_app(setpriv, &crate::support::lifeboat_bin())
            .arg("--config")
            .arg(app.config_path())
            .args(args)
            .current_dir(&root)
            .output()
            .unwrap()
    };
    let out = as_owner(&["--json", "snapshot"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tag = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    let restored = vec![dump(&tasks), dump(&notes)];
    demo::exec(&tasks, "DELETE FROM tasks WHERE id > 30;");
    chown(&root);

    let out = app
        .cmd(&["restore", &tag])
        .env("LIFEBOAT_TEST_CRASH_AT", "swap")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out));
    let journal = app.backup_dir().join("restore-journal.json");
    assert!(journal.exists());

    // Symptom for a monitor: CRITICAL while the journal exists.
    let out = as_owner(&["health"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("interrupted restore"), "{}", text(&out));
    // The owner's hourly run finds root's journal (one place for the
    // configuration) and, since everything root staged belongs to the
    // data's owner, finishes the restore before taking its snapshot.
    let out = as_owner(&["snapshot"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("was completed"), "{}", text(&out));
    assert!(!journal.exists());
    assert_eq!(vec![dump(&tasks), dump(&notes)], restored);
    assert_eq!(app.last_run()["command"], "snapshot");
    assert_eq!(app.last_run()["status"], "success");
    // (The hourly slot now holds this snapshot of the restored data.)
    let tag = app.last_run()["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    for (_, db) in dbs(&root) {
        owned_by_app(&db);
    }

    // The reverse: the owner's own restore is killed mid-swap; root's next
    // command finishes it, and the files stay the owner's (renames keep
    // owners), so the owner's backups go on.
    chown(&root);
    demo::exec(&tasks, "DELETE FROM tasks WHERE id > 10;");
    chown(&root);
    let out = as_app(setpriv, &crate::support::lifeboat_bin())
        .arg("--config")
        .arg(app.config_path())
        .args(["restore", &tag])
        .env("LIFEBOAT_TEST_CRASH_AT", "swap")
        .current_dir(&root)
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out));
    assert!(journal.exists());
    let out = app.run(&["restore"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("was completed"), "{}", text(&out));
    assert_eq!(vec![dump(&tasks), dump(&notes)], restored);
    for (_, db) in dbs(&root) {
        owned_by_app(&db);
    }
    let out = as_owner(&["snapshot"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// `sudo lifeboat restore`, over existing data and on a fresh machine: every
/// file and directory it writes belongs to the application's account (the
/// owner of the file replaced, else of the data directory, else of its
/// parent), with the mode of the file it replaces, so the application's
/// first write after the recovery succeeds.
#[test]
fn a_root_restore_leaves_files_the_application_can_write() {
    use std::os::unix::fs::PermissionsExt;
    let Some(setpriv) = setpriv() else { return };
    let app = App::new();
    let (_, notes) = two_databases(&app, "", 40);
    let root = app.root().to_path_buf();
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o640)).unwrap();
    // The application's files: the snapshot records that they are its.
    chown_to_app(&root);
    let out = app.run(&["--json", "snapshot"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tag = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    chown_to_app(&root);
    let app_writes = |db: &Path| {
        as_app(setpriv, Path::new("sqlite3"))
            .arg(db)
            .arg("CREATE TABLE IF NOT EXISTS w(x); INSERT INTO w VALUES (1);")
            .output()
            .unwrap()
    };

    // Over existing data.
    let out = app.run(&["restore", &tag, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (_, db) in dbs(&root) {
        owned_by_app(&db);
        let out = app_writes(&db);
        assert!(out.status.success(), "{}: {}", db.display(), text(&out));
    }
    let mode = std::fs::metadata(&notes).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "the replaced file's mode");

    // A fresh machine: no data directory; its parent is the account's.
    std::fs::remove_dir_all(app.data_dir().join("db")).unwrap();
    for e in std::fs::read_dir(app.data_dir()).unwrap().flatten() {
        if e.file_name() != "backups" {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let out = app.run(&["restore", &tag, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    owned_by_app(&app.data_dir().join("db"));
    for (_, db) in dbs(&root) {
        owned_by_app(&db);
        let out = app_writes(&db);
        assert!(out.status.success(), "{}: {}", db.display(), text(&out));
    }
}
