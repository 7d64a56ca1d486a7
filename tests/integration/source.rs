//! How `snapshot` reads a live database in the states real deployments leave
//! it in (issue 13, items 3, 4 and 6): a writer killed mid-transaction (a hot
//! rollback journal, an uncommitted WAL tail), a backup account that may read
//! but not write the data directory, a read-only mount, and an application
//! holding `locking_mode=EXCLUSIVE`. Expected states come from the sqlite3
//! CLI on independent copies, never from lifeboat.

use crate::support::process::DbHolder;
use crate::support::tarball::read_entries;
use crate::support::{App, text};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The backup account in the read-only tests (nobody).
const BACKUP_ID: u32 = 65534;

fn sqlite3(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("the sqlite3 CLI is installed");
    assert!(out.status.success(), "sqlite3 {sql}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", db.display()))
}

fn read(p: &Path) -> Option<Vec<u8>> {
    std::fs::read(p).ok()
}

/// A writer that commits 1000 rows, then in one transaction overwrites them
/// and adds 3000 large rows with a 10-page cache (so that, in rollback mode,
/// uncommitted pages reach the database file), and is killed by SIGKILL
/// before it commits.
fn crashed_writer(db: &Path, journal_mode: &str) {
    let script = "import sqlite3, sys, os, signal\n\
        c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
        c.execute('PRAGMA journal_mode=' + sys.argv[2])\n\
        c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v)')\n\
        c.execute('BEGIN')\n\
        c.executemany('INSERT INTO t(v) VALUES (?)', [('committed %d' % i,) for i in range(1000)])\n\
        c.execute('COMMIT')\n\
        c.execute('PRAGMA cache_size=10')\n\
        c.execute('BEGIN')\n\
        c.execute(\"UPDATE t SET v = 'never committed'\")\n\
        c.executemany('INSERT INTO t(v) VALUES (randomblob(1000))', [()] * 3000)\n\
        os.kill(os.getpid(), signal.SIGKILL)\n";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(db)
        .arg(journal_mode)
        .status()
        .expect("python3 runs");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the writer was killed"
    );
}

/// The state SQLite recovers from the live files, found independently: the
/// database with its journal or WAL copied to another directory and opened
/// there by the sqlite3 CLI.
fn reference_dump(db: &Path) -> String {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("ref.db");
    std::fs::copy(db, &copy).unwrap();
    for suffix in ["-journal", "-wal"] {
        if sibling(db, suffix).exists() {
            std::fs::copy(sibling(db, suffix), sibling(&copy, suffix)).unwrap();
        }
    }
    let dump = sqlite3(&copy, ".dump");
    assert_eq!(sqlite3(&copy, "SELECT count(*) FROM t").trim(), "1000");
    assert!(!dump.contains("never committed"));
    dump
}

/// The database `name` in the newest archive, written to a file, dumped.
fn archived_dump(backup_dir: &Path, name: &str) -> String {
    let archives = archives_in(backup_dir);
    let last = archives.last().expect("an archive was written");
    let entries = read_entries(&backup_dir.join(last));
    let (_, data) = entries
        .iter()
        .find(|(n, _)| n.ends_with(&format!("/{name}")))
        .unwrap_or_else(|| panic!("{name} in the archive"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, data).unwrap();
    sqlite3(&file, ".dump")
}

/// The archives in `dir` (names), sorted.
fn archives_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tar.gz") || n.ends_with(".tar.zst"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// `setpriv` (util-linux), to run as the backup account; `None` (skipped,
/// with a message) unless this runs as root.
fn setpriv() -> Option<&'static str> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs as root: these tests must run"
        );
        eprintln!("skipped: needs root to play the backup account");
        return None;
    }
    let found = ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    Some(found.expect("setpriv (util-linux) is installed"))
}

/// An application whose data directory belongs to root (0755, files 0644),
/// with a backup directory that belongs to the backup account: it may read
/// the data, not write it.
struct ReadOnlyApp {
    app: App,
    backups: PathBuf,
}

impl ReadOnlyApp {
    fn new(databases: &[&str]) -> ReadOnlyApp {
        let app = App::new();
        let backups = app.root().join("backups");
        let mut config = format!(
            "backup_dir = \"{}\"\n[snapshot]\nbusy_timeout = \"1s\"\n",
            backups.display()
        );
        for db in databases {
            config.push_str(&format!(
                "[[database]]\nname = \"{db}\"\npath = \"{db}.db\"\n"
            ));
        }
        app.write_config(&config);
        std::fs::create_dir_all(&backups).unwrap();
        std::os::unix::fs::chown(&backups, Some(BACKUP_ID), Some(BACKUP_ID)).unwrap();
        for d in [app.root(), &app.data_dir()] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        ReadOnlyApp { app, backups }
    }

    fn db(&self, name: &str) -> PathBuf {
        self.app.data_dir().join(format!("{name}.db"))
    }

    /// Every file of the data directory readable, nothing writable, by others.
    fn lock_down(&self) {
        for e in std::fs::read_dir(self.app.data_dir()).unwrap().flatten() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }

    fn snapshot_as_backup_account(&self, setpriv: &str) -> Output {
        Command::new(setpriv)
            .arg(format!("--reuid={BACKUP_ID}"))
            .arg(format!("--regid={BACKUP_ID}"))
            .args(["--clear-groups", "--"])
            .arg(crate::support::lifeboat_bin())
            .arg("--config")
            .arg(self.app.config_path())
            .arg("snapshot")
            .env_remove("LIFEBOAT_CONFIG")
            .env_remove("LIFEBOAT_LOG")
            .current_dir("/")
            .output()
            .unwrap()
    }
}

fn one_db_app(journal_mode: &str) -> (App, PathBuf) {
    let app = App::new();
    app.write_config(
        "[snapshot]\nbusy_timeout = \"1s\"\n[[database]]\nname = \"app\"\npath = \"app.db\"\n",
    );
    let db = app.data_dir().join("app.db");
    crate::support::sqlite(
        &db,
        &format!(
            "PRAGMA journal_mode={journal_mode}; CREATE TABLE t(id INTEGER PRIMARY KEY, v);
             INSERT INTO t(v) VALUES ('committed');"
        ),
    );
    (app, db)
}

/// A writer killed mid-transaction: the snapshot succeeds with the last
/// committed state; the live files are left for the application's next
/// open, which finds that same state.
fn crashed_writer_is_backed_up(journal_mode: &str, tail: &str) {
    let app = App::new();
    app.write_config(
        "[snapshot]\nbusy_timeout = \"1s\"\n[[database]]\nname = \"app\"\npath = \"app.db\"\n",
    );
    std::fs::create_dir_all(app.data_dir()).unwrap();
    let db = app.data_dir().join("app.db");
    crashed_writer(&db, journal_mode);
    let tail_file = sibling(&db, tail);
    let left = std::fs::read(&tail_file).expect("the crash left its journal or WAL");
    if tail == "-journal" {
        // Hot: synced header, so SQLite must roll it back.
        assert_eq!(
            &left[..8],
            &[0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7]
        );
    } else {
        assert!(left.len() > 1_000_000, "uncommitted frames in the WAL");
    }
    let expected = reference_dump(&db);
    let (db_before, tail_before) = (read(&db), read(&tail_file));

    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(archived_dump(&app.backup_dir(), "app.db"), expected);
    // lifeboat wrote neither the database nor its journal or WAL.
    assert!(read(&db) == db_before, "the live database was written");
    assert!(
        read(&tail_file) == tail_before,
        "the live {tail} was written"
    );
    // What the application finds on its next open: the same state.
    assert_eq!(sqlite3(&db, ".dump"), expected);
}

#[test]
fn a_hot_journal_left_by_a_killed_writer_is_rolled_back_in_a_private_copy() {
    crashed_writer_is_backed_up("delete", "-journal");
}

#[test]
fn a_wal_left_by_a_killed_writer_is_backed_up_without_its_uncommitted_tail() {
    crashed_writer_is_backed_up("wal", "-wal");
}

/// A backup account that may read, not write, the data: a WAL database of a
/// stopped application (no -shm to read, none can be created), a
/// rollback-journal one, one with a hot journal and one with a crashed
/// writer's WAL are all backed up, and nothing is created in the data
/// directory.
#[test]
fn a_read_only_account_backs_up_every_state_it_can_read() {
    let Some(setpriv) = setpriv() else { return };
    let ro = ReadOnlyApp::new(&["stopped", "journal", "hot", "crashed"]);
    crate::support::sqlite(
        &ro.db("stopped"),
        "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES ('stopped');",
    );
    crate::support::sqlite(
        &ro.db("journal"),
        "CREATE TABLE t(x); INSERT INTO t VALUES ('journal');",
    );
    crashed_writer(&ro.db("hot"), "delete");
    crashed_writer(&ro.db("crashed"), "wal");
    assert!(!sibling(&ro.db("stopped"), "-wal").exists());
    ro.lock_down();
    let expected_hot = reference_dump(&ro.db("hot"));
    let expected_crashed = reference_dump(&ro.db("crashed"));
    let before = listing(&ro.app.data_dir());

    let out = ro.snapshot_as_backup_account(setpriv);
    assert!(out.status.success(), "{}", text(&out));
    // Nothing created, removed or written in the data directory.
    assert!(listing(&ro.app.data_dir()) == before);
    assert_eq!(archived_dump(&ro.backups, "hot.db"), expected_hot);
    assert_eq!(archived_dump(&ro.backups, "crashed.db"), expected_crashed);
    for name in ["stopped", "journal"] {
        assert_eq!(
            archived_dump(&ro.backups, &format!("{name}.db")),
            sqlite3(&ro.db(name), ".dump")
        );
    }
}

/// Every file under `dir` with its contents.
fn listing(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut v: Vec<_> = crate::support::walk(dir)
        .into_iter()
        .map(|p| {
            let data = if p.is_file() { read(&p) } else { None };
            (p, data)
        })
        .collect();
    v.sort();
    v
}

/// What cannot be read is one error naming the permission that is missing
/// and how to grant it.
#[test]
fn a_read_only_account_is_told_which_permission_is_missing() {
    let Some(setpriv) = setpriv() else { return };
    // The WAL of a crashed writer that the account may not read.
    let ro = ReadOnlyApp::new(&["app"]);
    crashed_writer(&ro.db("app"), "wal");
    ro.lock_down();
    std::fs::set_permissions(
        sibling(&ro.db("app"), "-wal"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = ro.snapshot_as_backup_account(setpriv);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(err.contains("may not read its -wal file"), "{err}");
    assert!(err.contains("setfacl -m u:nobody:"), "{err}");
    assert!(archives_in(&ro.backups).is_empty());

    // Committed data in a WAL with no -shm, in a directory the account may
    // not write: the -shm cannot be created.
    let ro = ReadOnlyApp::new(&["app"]);
    crashed_writer(&ro.db("app"), "wal");
    std::fs::remove_file(sibling(&ro.db("app"), "-shm")).unwrap();
    ro.lock_down();
    let out = ro.snapshot_as_backup_account(setpriv);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        err.contains(&format!(
            "no write permission on {}",
            ro.app.data_dir().display()
        )),
        "{err}"
    );
    assert!(err.contains("group-writable"), "{err}");
    assert!(!sibling(&ro.db("app"), "-shm").exists());
}

/// `dir` bind-mounted read-only at `at` until dropped.
struct ReadOnlyMount(PathBuf);

impl ReadOnlyMount {
    fn new(dir: &Path, at: &Path) -> Option<ReadOnlyMount> {
        std::fs::create_dir_all(at).unwrap();
        let bind = Command::new("mount")
            .arg("--bind")
            .arg(dir)
            .arg(at)
            .output()
            .unwrap();
        if !bind.status.success() {
            let msg = String::from_utf8_lossy(&bind.stderr);
            assert!(std::env::var_os("CI").is_none(), "mount --bind: {msg}");
            eprintln!("skipped: cannot bind-mount: {msg}");
            return None;
        }
        let mount = ReadOnlyMount(at.to_path_buf());
        let ro = Command::new("mount")
            .args(["-o", "remount,ro,bind"])
            .arg(at)
            .output()
            .unwrap();
        assert!(ro.status.success(), "remount ro: {ro:?}");
        Some(mount)
    }
}

impl Drop for ReadOnlyMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A WAL database on a read-only mount is backed up, whether the
/// application is stopped (no -shm: read immutable, under lifeboat's own
/// lock) or writing through another, writable path (through its -shm).
#[test]
fn a_wal_database_on_a_read_only_mount_is_backed_up() {
    let app = App::new();
    let source = app.root().join("volume");
    let mounted = app.root().join("ro");
    let db = source.join("app.db");
    crate::support::sqlite(
        &db,
        "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES ('stopped');",
    );
    let Some(_mount) = ReadOnlyMount::new(&source, &mounted) else {
        return;
    };
    let backups = app.root().join("backups");
    std::fs::write(
        app.config_path(),
        format!(
            "data_dir = \"{}\"\nbackup_dir = \"{}\"\n[snapshot]\nbusy_timeout = \"1s\"\n\
             [[database]]\nname = \"app\"\npath = \"app.db\"\n",
            mounted.display(),
            backups.display()
        ),
    )
    .unwrap();
    assert!(!sibling(&db, "-shm").exists());
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(archived_dump(&backups, "app.db"), sqlite3(&db, ".dump"));
    assert!(!sibling(&db, "-shm").exists());

    // The application writes through the writable path and keeps the
    // database open: its last commit is in the WAL only.
    let holder = DbHolder::start(
        &db,
        "c.execute('PRAGMA wal_autocheckpoint=0'); c.execute(\"INSERT INTO t VALUES ('running')\")",
    );
    let out = app.run(&["snapshot"]);
    drop(holder);
    assert!(out.status.success(), "{}", text(&out));
    let dump = archived_dump(&backups, "app.db");
    assert!(dump.contains("'running'"), "{dump}");
}

/// An application holding the database with `locking_mode=EXCLUSIVE`: the
/// error says so, names the process, and does not suggest a longer busy
/// timeout, which cannot help.
fn exclusive_holder_is_named(journal_mode: &str) {
    let (app, db) = one_db_app(journal_mode);
    let holder = DbHolder::start(
        &db,
        "c.execute('PRAGMA locking_mode=EXCLUSIVE'); c.execute(\"INSERT INTO t(v) VALUES ('held')\")",
    );
    let out = app.run(&["snapshot"]);
    let pid = holder.id();
    drop(holder);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        err.contains(&format!("process {pid} (python3) holds an exclusive lock")),
        "{err}"
    );
    assert!(err.contains("locking_mode=EXCLUSIVE"), "{err}");
    assert!(err.contains("lifeboat backup-now"), "{err}");
    assert!(!err.contains("busy_timeout"), "{err}");
    assert!(app.archives().is_empty());
}

#[test]
fn an_exclusive_lock_in_wal_mode_is_named() {
    exclusive_holder_is_named("wal");
}

#[test]
fn an_exclusive_lock_in_rollback_mode_is_named() {
    exclusive_holder_is_named("delete");
}

/// A long write transaction is not mistaken for an exclusive lock: there,
/// a longer busy timeout does help.
#[test]
fn a_long_write_transaction_still_suggests_the_busy_timeout() {
    let (app, db) = one_db_app("delete");
    let holder = DbHolder::start(
        &db,
        "c.execute('PRAGMA cache_size=10'); c.execute('BEGIN'); \
         c.executemany('INSERT INTO t(v) VALUES (randomblob(1000))', [()] * 500)",
    );
    let out = app.run(&["snapshot"]);
    let pid = holder.id();
    drop(holder);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        err.contains(&format!("process {pid} (python3) was writing")),
        "{err}"
    );
    assert!(err.contains("busy_timeout"), "{err}");
}
