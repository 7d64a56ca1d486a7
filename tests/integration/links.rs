//! Symlinked database files (`data/app.db -> ../volume/app.db`, the
//! application opening the target): restore, `--undo` and `migrate` go
//! through the link, or refuse before touching anything; `restore --to`
//! writes regular files.

use crate::support::process::Tmpfs;
use crate::support::{App, demo, text};
use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const APP: &str = "[[database]]\nname = \"app\"\npath = \"app.db\"\n";
const LINK: &str = "../volume/app.db";

/// The application: python's sqlite3 on the *target* path, as an
/// application configured with the volume's path writes it.
fn writer(db: &Path, journal_mode: &str, sql: &str) {
    let script = "import sqlite3, sys\n\
                  c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                  c.execute('PRAGMA journal_mode=' + sys.argv[2])\n\
                  c.executescript(sys.argv[3])\n\
                  c.close()\n";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(db)
        .args([journal_mode, sql])
        .output()
        .expect("python3 runs");
    assert!(out.status.success(), "{}", text(&out));
}

const CREATE: &str = "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL);\n\
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300)\n\
    INSERT INTO notes SELECT i, 'note ' || i || printf('%.*c', i % 40, 'x') FROM n;\n\
    CREATE INDEX notes_body ON notes(body);";
const BAD_DELETE: &str = "DELETE FROM notes WHERE id % 3 = 0;";

/// `sqlite3 DB .dump`: the content, independently of lifeboat.
fn dump(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(".dump")
        .output()
        .expect("the sqlite3 CLI is installed");
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// An app whose `data/app.db` is a link to `../volume/app.db` (created by
/// the writer in `journal_mode`); returns the app and the target.
fn linked_app(journal_mode: &str) -> (App, PathBuf) {
    let app = App::new();
    app.write_config(APP);
    let target = app.root().join("volume/app.db");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    writer(&target, journal_mode, CREATE);
    symlink(LINK, app.data_dir().join("app.db")).unwrap();
    (app, target)
}

fn snapshot(app: &App) -> String {
    let out = app.run(&["--json", "snapshot"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string()
}

fn assert_ok(out: &Output) {
    assert!(out.status.success(), "{}", text(out));
}

/// The link is still a link, with the same text.
fn assert_link(app: &App, link: &str) {
    let at = app.data_dir().join("app.db");
    let meta = std::fs::symlink_metadata(&at).unwrap();
    assert!(
        meta.file_type().is_symlink(),
        "{} was replaced",
        at.display()
    );
    assert_eq!(std::fs::read_link(&at).unwrap(), Path::new(link));
}

/// No `-wal`, `-shm` or `-journal` beside the link's name.
fn assert_no_logs_beside_the_link(app: &App) {
    for s in ["-wal", "-shm", "-journal"] {
        let p = app.data_dir().join(format!("app.db{s}"));
        assert!(
            std::fs::symlink_metadata(&p).is_err(),
            "{} exists",
            p.display()
        );
    }
}

/// Everything under `root` (outside lifeboat's backup directory): files by
/// content, links by their text, directories by name.
fn tree(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == "data/backups" {
                continue;
            }
            let kind = e.file_type().unwrap();
            let v = if kind.is_symlink() {
                format!("link -> {}", std::fs::read_link(&p).unwrap().display())
            } else if kind.is_dir() {
                stack.push(p.clone());
                "dir".into()
            } else {
                let m = e.metadata().unwrap();
                format!(
                    "file {:o} {}:{} {}",
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    lifeboat::hash::sha256_file(&p).unwrap()
                )
            };
            out.insert(rel, v);
        }
    }
    out
}

/// `args` must fail with `needle` in its message and leave everything
/// (data, volume, the link) byte-identical.
fn assert_refused(app: &App, args: &[&str], needle: &str) -> Output {
    refused_with(app, args, needle, 1)
}

fn refused_with(app: &App, args: &[&str], needle: &str, code: i32) -> Output {
    let before = tree(app.root());
    let out = app.run(args);
    assert_eq!(out.status.code(), Some(code), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "expected `{needle}`:\n{}", text(&out));
    assert!(err.contains("hint:"), "{}", text(&out));
    assert_eq!(
        tree(app.root()),
        before,
        "something changed:\n{}",
        text(&out)
    );
    out
}

fn restore_and_undo_through_the_link(journal_mode: &str) {
    let (app, target) = linked_app(journal_mode);
    // The application's permissions on its file, kept by the restore (and,
    // when this runs as root, its owner: the application's account).
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o640)).unwrap();
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&target, Some(65534), Some(65534)).unwrap();
    }
    let good = dump(&target);
    let tag = snapshot(&app);
    writer(&target, journal_mode, BAD_DELETE);
    let damaged = dump(&target);
    assert_ne!(good, damaged);
    let target_ino = std::fs::metadata(&target).unwrap().ino();

    let out = app.run(&["restore", &tag]);
    assert_ok(&out);
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("is a symbolic link"), "{s}");
    assert!(s.contains(&target.display().to_string()), "{s}");
    assert_link(&app, LINK);
    assert_ne!(
        std::fs::metadata(&target).unwrap().ino(),
        target_ino,
        "the target was replaced"
    );
    assert_eq!(
        dump(&target),
        good,
        "the file the application uses is restored"
    );
    assert_eq!(
        std::fs::metadata(&target).unwrap().mode() & 0o777,
        0o640,
        "the target keeps its permissions"
    );
    if root {
        let m = std::fs::metadata(&target).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (65534, 65534),
            "the target keeps its owner"
        );
    }
    assert_no_logs_beside_the_link(&app);
    // The application's next write, through the target, works.
    writer(
        &target,
        journal_mode,
        "INSERT INTO notes VALUES (1000, 'after');",
    );
    let after = dump(&target);

    // The pre-restore copy is the damaged data, at the configured path.
    let pre: Vec<PathBuf> = std::fs::read_dir(app.root())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("data.pre-restore-"))
        .collect();
    assert_eq!(pre.len(), 1, "{pre:?}");
    assert_eq!(dump(&pre[0].join("app.db")), damaged);

    // --undo puts the damaged data back, through the link.
    let out = app.run(&["restore", "--undo"]);
    assert_ok(&out);
    assert_link(&app, LINK);
    assert_eq!(dump(&target), damaged);
    assert_no_logs_beside_the_link(&app);
    // And undoing the undo brings the restored data (with the write) back.
    assert_ok(&app.run(&["restore", "--undo"]));
    assert_link(&app, LINK);
    assert_eq!(dump(&target), after);

    // A dry run says it would go through the link, and changes nothing.
    let before = tree(app.root());
    let out = app.run(&["restore", &tag, "--dry-run"]);
    assert_ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("would restore through it"),
        "{}",
        text(&out)
    );
    assert_eq!(tree(app.root()), before);
}

#[test]
fn a_symlinked_wal_database_is_restored_and_undone_through_its_link() {
    restore_and_undo_through_the_link("WAL");
}

#[test]
fn a_symlinked_rollback_journal_database_is_restored_and_undone_through_its_link() {
    restore_and_undo_through_the_link("DELETE");
}

#[test]
fn a_chain_of_links_is_followed_to_the_file() {
    let (app, target) = linked_app("WAL");
    // data/app.db -> current.db -> ../volume/app.db
    std::fs::remove_file(app.data_dir().join("app.db")).unwrap();
    symlink(LINK, app.data_dir().join("current.db")).unwrap();
    symlink("current.db", app.data_dir().join("app.db")).unwrap();
    let good = dump(&target);
    let tag = snapshot(&app);
    writer(&target, "WAL", BAD_DELETE);
    assert_ok(&app.run(&["restore", &tag]));
    assert_link(&app, "current.db");
    assert_eq!(
        std::fs::read_link(app.data_dir().join("current.db")).unwrap(),
        Path::new(LINK)
    );
    assert_eq!(dump(&target), good);
}

#[test]
fn a_dangling_or_looping_link_is_refused_with_nothing_touched() {
    let (app, target) = linked_app("WAL");
    let good = dump(&target);
    let tag = snapshot(&app);
    // The volume is not mounted: the link dangles.
    std::fs::rename(app.root().join("volume"), app.root().join("volume.off")).unwrap();
    assert_refused(&app, &["restore", &tag], "does not exist (a dangling link)");
    assert_refused(&app, &["restore", &tag, "--dry-run"], "dangling link");
    // The file itself deleted: the hint's way out (an empty file for the
    // restore to replace) restores it through the link.
    std::fs::create_dir(app.root().join("volume")).unwrap();
    let out = assert_refused(&app, &["restore", &tag], "touch ");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("volume/app.db`"),
        "{}",
        text(&out)
    );
    std::fs::File::create(app.root().join("volume/app.db")).unwrap();
    assert_ok(&app.run(&["restore", &tag]));
    assert_link(&app, LINK);
    assert_eq!(dump(&app.root().join("volume/app.db")), good);
    std::fs::remove_dir_all(app.root().join("volume")).unwrap();
    // A loop of links.
    std::fs::rename(app.root().join("volume.off"), app.root().join("volume")).unwrap();
    let link = app.data_dir().join("app.db");
    std::fs::remove_file(&link).unwrap();
    symlink("app2.db", &link).unwrap();
    symlink("app.db", app.data_dir().join("app2.db")).unwrap();
    assert_refused(&app, &["restore", &tag], "a loop of links");
    assert!(app.archives().len() == 1);
}

#[test]
fn a_link_to_another_filesystem_is_refused_and_restore_to_a_directory_still_works() {
    let app = App::new();
    let mnt = app.root().join("mnt");
    let Some(_tmpfs) = Tmpfs::mount(&mnt, "16m", "links: another filesystem") else {
        return;
    };
    app.write_config(APP);
    let target = mnt.join("app.db");
    writer(&target, "WAL", CREATE);
    symlink("../mnt/app.db", app.data_dir().join("app.db")).unwrap();
    let good = dump(&target);
    let tag = snapshot(&app);
    writer(&target, "WAL", BAD_DELETE);
    let out = assert_refused(&app, &["restore", &tag], "on another filesystem");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--to"),
        "the hint names a way out: {}",
        text(&out)
    );
    // What the hint proposes: the checked database placed elsewhere, as a
    // regular file.
    let out_dir = app.root().join("restored");
    assert_ok(&app.run(&["restore", &tag, "--to", out_dir.to_str().unwrap()]));
    let placed = out_dir.join("app.db");
    assert!(std::fs::symlink_metadata(&placed).unwrap().is_file());
    assert_eq!(dump(&placed), good);
}

#[test]
fn restore_to_writes_regular_files_and_never_follows_a_link() {
    let (app, target) = linked_app("WAL");
    let good = dump(&target);
    let tag = snapshot(&app);
    writer(&target, "WAL", BAD_DELETE);
    let damaged = dump(&target);
    // `--to` naming a link to an empty directory: refused (a usage error),
    // not followed.
    let elsewhere = app.root().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let to_link = app.root().join("to-link");
    symlink(&elsewhere, &to_link).unwrap();
    refused_with(
        &app,
        &["restore", &tag, "--to", to_link.to_str().unwrap()],
        "is not a directory",
        2,
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    // A fresh directory: a regular file, the link and its target untouched.
    let out_dir = app.root().join("out");
    assert_ok(&app.run(&["restore", &tag, "--to", out_dir.to_str().unwrap()]));
    assert!(
        std::fs::symlink_metadata(out_dir.join("app.db"))
            .unwrap()
            .is_file()
    );
    assert_eq!(dump(&out_dir.join("app.db")), good);
    assert_link(&app, LINK);
    assert_eq!(dump(&target), damaged);
}

#[test]
fn migrate_writes_through_the_link() {
    let root = tempfile::tempdir().unwrap();
    let app = App::new();
    app.write_config(&demo::tasks_db_config());
    let target = root.path().join("volume/tasks.db");
    demo::create(&target, 2, 40, true);
    std::fs::create_dir_all(app.data_dir().join("db")).unwrap();
    symlink(&target, app.data_dir().join("db/tasks.db")).unwrap();
    let out = app.run(&["migrate"]);
    assert_ok(&out);
    let link = app.data_dir().join("db/tasks.db");
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_link(&link).unwrap(), target);
    assert_eq!(demo::dump(&target)["#user_version"], vec!["4"]);
    for s in ["-wal", "-shm", "-journal"] {
        let p = app.data_dir().join(format!("db/tasks.db{s}"));
        assert!(std::fs::symlink_metadata(&p).is_err(), "{}", p.display());
    }
    // Its safety snapshot holds the version-2 data: a restore of it goes
    // back through the link too (migrated forward again by the ladder).
    let tags = app.archives();
    assert_eq!(tags.len(), 1, "{tags:?}");
    demo::exec(&target, "DELETE FROM tasks;");
    let tag = tags[0].strip_suffix(".tar.gz").unwrap();
    assert_ok(&app.run(&["restore", tag]));
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(demo::count(&target, "tasks") > 0);

    // A dangling link: migrate refuses before its safety snapshot.
    std::fs::rename(&target, root.path().join("volume/gone.db")).unwrap();
    let out = app.run(&["migrate"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dangling link"),
        "{}",
        text(&out)
    );
    assert_eq!(app.archives().len(), 1, "no safety snapshot was taken");
}

#[test]
fn a_link_into_a_directory_the_restoring_account_cannot_write_is_refused() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to play the application's account");
        return;
    }
    let (app, target) = linked_app("WAL");
    std::fs::set_permissions(app.root(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let tag = snapshot(&app);
    writer(&target, "WAL", BAD_DELETE);
    // The data directory (and the backups in it) belong to nobody; the
    // volume stays root's (0755), so nobody reads the target but cannot
    // rename files in its directory.
    let status = Command::new("chown")
        .args(["-R", "-h", "65534:65534"])
        .arg(app.data_dir())
        .arg(app.config_path())
        .status()
        .unwrap();
    assert!(status.success());
    let before = tree(app.root());
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(crate::support::lifeboat_bin())
        .arg("--config")
        .arg(app.config_path())
        .args(["restore", &tag])
        .current_dir(app.root())
        .env_remove("LIFEBOAT_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("which this account cannot write"),
        "{}",
        text(&out)
    );
    assert_eq!(tree(app.root()), before);
}

// ---------------------------------------------------------------------------
// Crash safety through a link (the method of `crash.rs`, on a linked
// database): lifeboat killed as it enters its N-th rename, for every N.

type Dump = BTreeMap<String, Vec<String>>;
const APP_ROW: &str = "written by the application after the crash";
const NOTES: &str = "[[database]]\nname = \"notes\"\npath = \"notes.db\"\n";

fn content(db: &Path) -> Dump {
    let mut d = demo::dump(db);
    d.remove("app_writes");
    d
}

/// The application after the crash: opens the target (creating it if the
/// crash left none), commits a row, dies without closing (a live `-wal`).
fn application_writes(db: &Path) {
    let script = format!(
        "import os, sqlite3, sys\n\
         c = sqlite3.connect(sys.argv[1])\n\
         c.execute('PRAGMA journal_mode=WAL')\n\
         c.execute('CREATE TABLE IF NOT EXISTS app_writes(v TEXT)')\n\
         c.execute('INSERT INTO app_writes VALUES (?)', ('{APP_ROW}',))\n\
         c.commit()\n\
         os._exit(0)\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
}

/// Whether `db` passes integrity_check (panics otherwise) and holds the
/// application's row.
fn has_app_row(db: &Path, what: &str) -> bool {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "{what}: {}", db.display());
    conn.query_row(
        "SELECT count(*) FROM sqlite_schema WHERE name = 'app_writes'",
        [],
        |r| r.get::<_, i64>(0),
    )
    .unwrap()
        > 0
}

#[test]
fn a_restore_through_a_link_killed_at_any_rename_leaves_old_or_new_data_behind_the_link() {
    kill_at_every_rename(false);
}

#[test]
fn an_undo_through_a_link_killed_at_any_rename_leaves_old_or_new_data_behind_the_link() {
    kill_at_every_rename(true);
}

/// `restore <tag>` (or, with `undo`, `restore --undo` after it) killed at
/// each of its renames; the application writes; the next run recovers.
fn kill_at_every_rename(undo: bool) {
    let probe = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=none", "true"])
        .output();
    match probe {
        Ok(out) if out.status.success() => {}
        other => {
            assert!(
                std::env::var_os("CI").is_none(),
                "strace is required under CI: {other:?}"
            );
            eprintln!("SKIPPED: strace cannot run here");
            return;
        }
    }
    // The template: a linked WAL database and a plain rollback-journal one.
    let (app, target) = linked_app("WAL");
    std::fs::write(
        app.config_path(),
        format!("data_dir = \"data\"\n{APP}{NOTES}"),
    )
    .unwrap();
    let notes = app.data_dir().join("notes.db");
    crate::support::sqlite(&notes, "CREATE TABLE n(v); INSERT INTO n VALUES ('A');");
    let tag = snapshot(&app);
    let restored = [content(&target), content(&notes)];
    writer(&target, "WAL", BAD_DELETE);
    demo::exec(&notes, "UPDATE n SET v = 'B';");
    let damaged = [content(&target), content(&notes)];
    let (args, restored, old) = if undo {
        assert_ok(&app.run(&["restore", &tag]));
        (vec!["restore", "--undo"], damaged, restored)
    } else {
        (vec!["restore", tag.as_str()], restored, damaged)
    };

    let mut renames = 0;
    for syscall in ["rename", "renameat2"] {
        for n in 1.. {
            assert!(n < 200, "{syscall}: the restore never completes");
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            let status = Command::new("cp")
                .arg("-a")
                .arg(format!("{}/.", app.root().display()))
                .arg(root)
                .status()
                .unwrap();
            assert!(status.success());
            let config = root.join("lifeboat.toml");
            let out = Command::new("strace")
                .args(["-f", "-qq", "-o", "/dev/null"])
                .args(["-e", &format!("trace={syscall}")])
                .args(["-e", &format!("inject={syscall}:signal=KILL:when={n}")])
                .arg(crate::support::lifeboat_bin())
                .arg("--config")
                .arg(&config)
                .args(&args)
                .env_remove("LIFEBOAT_CONFIG")
                .current_dir(root)
                .output()
                .unwrap();
            use std::os::unix::process::ExitStatusExt;
            let killed = out.status.signal() == Some(9) || out.status.code() == Some(137);
            let (link, target, notes) = (
                root.join("data/app.db"),
                root.join("volume/app.db"),
                root.join("data/notes.db"),
            );
            if !killed {
                assert_eq!(out.status.code(), Some(0), "{syscall} #{n}: {}", text(&out));
                assert_eq!(content(&target), restored[0]);
                assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(LINK));
                break;
            }
            if syscall == "rename" {
                renames = n;
            }
            let what = format!("{} killed at {syscall} #{n}", args.join(" "));
            application_writes(&target);
            application_writes(&notes);
            let after = Command::new(crate::support::lifeboat_bin())
                .arg("--config")
                .arg(&config)
                .arg("restore")
                .env_remove("LIFEBOAT_CONFIG")
                .current_dir(root)
                .output()
                .unwrap();
            assert_eq!(after.status.code(), Some(2), "{what}: {}", text(&after));
            assert!(
                !root.join("data/backups/restore-journal.json").exists(),
                "{what}: journal left\n{}",
                text(&after)
            );
            // The link is intact and leads to a database that is entirely
            // the old or entirely the restored data.
            let meta = std::fs::symlink_metadata(&link).unwrap();
            assert!(
                meta.file_type().is_symlink(),
                "{what}: the link was replaced"
            );
            assert_eq!(
                std::fs::read_link(&link).unwrap(),
                Path::new(LINK),
                "{what}"
            );
            for (i, (name, db)) in [("app", &target), ("notes", &notes)]
                .into_iter()
                .enumerate()
            {
                let live_has_row = has_app_row(db, &what);
                let c = content(db);
                assert!(
                    c == restored[i] || c == old[i],
                    "{what}: {name} is a mix of old and restored data\n{}",
                    text(&after)
                );
                if live_has_row {
                    continue;
                }
                // Set aside or kept: in a copy lifeboat names.
                let file = db.file_name().unwrap().to_owned();
                let kept: Vec<PathBuf> = std::fs::read_dir(root)
                    .unwrap()
                    .flatten()
                    .filter(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.starts_with("data.pre-restore-") || n.starts_with("data.set-aside-")
                    })
                    .flat_map(|e| crate::support::walk(&e.path()))
                    .filter(|p| p.file_name() == Some(file.as_os_str()))
                    .filter(|p| has_app_row(p, &what))
                    .collect();
                assert!(
                    !kept.is_empty(),
                    "{what}: the write to {name} is lost\n{}",
                    text(&after)
                );
            }
            assert_no_logs_beside(&root.join("data"));
        }
    }
    eprintln!(
        "{} through a link: killed at {renames} renames",
        args.join(" ")
    );
    assert!(
        renames >= 2,
        "the swap was among the kill points: {renames}"
    );
}

fn assert_no_logs_beside(data: &Path) {
    for s in ["-wal", "-shm", "-journal"] {
        let p = data.join(format!("app.db{s}"));
        assert!(
            std::fs::symlink_metadata(&p).is_err(),
            "{} exists",
            p.display()
        );
    }
}

/// A root restore never writes through a link the application's account
/// planted to a file that is not that account's: the account could
/// otherwise have `sudo lifeboat restore` overwrite any file root can write.
#[test]
fn a_root_restore_refuses_another_accounts_link_to_a_file_not_its_own() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to play root and the application's account");
        return;
    }
    let (app, target) = linked_app("wal");
    let tag = snapshot(&app);
    // The application's account re-points the link at a root-only file.
    let victim = app.root().join("secret.conf");
    std::fs::write(&victim, "root's own file\n").unwrap();
    std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = app.data_dir().join("app.db");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    let out = refused_with(&app, &["restore", &tag, "--force"], "owned by uid 65534", 1);
    // The same through a link in the middle of the way (the volume's own).
    std::fs::remove_file(&link).unwrap();
    symlink(LINK, &link).unwrap();
    let volume_link = app.root().join("volume/app.db");
    let kept = app.root().join("volume/app.db.real");
    std::fs::rename(&volume_link, &kept).unwrap();
    symlink(&victim, &volume_link).unwrap();
    std::os::unix::fs::lchown(&volume_link, Some(65534), Some(65534)).unwrap();
    refused_with(&app, &["restore", &tag, "--force"], "owned by uid 65534", 1);
    std::fs::remove_file(&volume_link).unwrap();
    std::fs::rename(&kept, &volume_link).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chown -h root"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "root's own file\n"
    );
    // The account's link to the account's own file is followed.
    std::fs::remove_file(&link).unwrap();
    symlink(LINK, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(65534), Some(65534)).unwrap();
    std::os::unix::fs::chown(&target, Some(65534), Some(65534)).unwrap();
    assert_ok(&app.run(&["restore", &tag, "--force"]));
    assert_link(&app, LINK);
}
