//! Snapshots of real databases: consistency under a concurrent writer
//! process, fidelity of the copy, bad input, SIGKILL at any moment, and the
//! run lock. Archives are opened with the real `tar`, databases compared with
//! the real `sqlite3` CLI where an independent reader matters.

use crate::support::process::{DbHolder, Tmpfs};
use crate::support::{App, sqlite, tarball, text, walk};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ACCOUNTS: i64 = 200;
const START_BALANCE: i64 = 1_000;

/// A bank database: the writer moves money between accounts (the total is
/// invariant) and logs each transfer. `filler_mb` of blobs make the copy
/// span many backup steps.
fn bank_db(path: &Path, journal_mode: &str, filler_mb: usize) {
    sqlite(
        path,
        &format!(
            "PRAGMA journal_mode={journal_mode};
             CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
             CREATE TABLE ledger(id INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, amount INTEGER, note TEXT);
             CREATE TABLE meta(transfers INTEGER NOT NULL);
             INSERT INTO meta VALUES (0);
             CREATE TABLE filler(id INTEGER PRIMARY KEY, data BLOB);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {max})
               INSERT INTO accounts SELECT i, {START_BALANCE} FROM n;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {filler})
               INSERT INTO filler(data) SELECT randomblob(65536) FROM n;
             PRAGMA user_version = 7;",
            max = ACCOUNTS - 1,
            filler = filler_mb * 16,
        ),
    );
}

/// Check a copied bank database: integrity, and both invariants.
fn check_bank(db: &Path) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok", "{}", db.display());
    let total: i64 = conn
        .query_row("SELECT sum(balance) FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        total,
        ACCOUNTS * START_BALANCE,
        "money created or lost in {}",
        db.display()
    );
    let transfers: i64 = conn
        .query_row("SELECT transfers FROM meta", [], |r| r.get(0))
        .unwrap();
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM ledger", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        transfers,
        rows,
        "ledger and meta disagree in {}",
        db.display()
    );
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        mode, "delete",
        "the copy must be a single self-contained file"
    );
    rows
}

/// Extract an archive with the real `tar` and return the directory.
fn untar(archive: &Path, into: &Path) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    let flag = if archive.to_string_lossy().ends_with(".zst") {
        "--zstd"
    } else {
        "-z"
    };
    let out = Command::new("tar")
        .arg(flag)
        .arg("-xf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    into.to_path_buf()
}

fn writer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/writer.py")
}

struct Writer {
    child: std::process::Child,
    stop: PathBuf,
}

impl Writer {
    fn start(db: &Path, dir: &Path) -> Writer {
        let stop = dir.join("writer.stop");
        let child = Command::new("python3")
            .arg(writer_script())
            .arg(db)
            .arg(&stop)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the writer");
        let ready = PathBuf::from(format!("{}.ready", stop.display()));
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            assert!(Instant::now() < deadline, "writer did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Writer { child, stop }
    }

    fn stop(self) -> serde_json::Value {
        std::fs::write(&self.stop, b"").unwrap();
        let out = self.child.wait_with_output().unwrap();
        let stats: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("writer prints JSON");
        assert!(out.status.success(), "the writer saw errors: {stats}");
        stats
    }
}

fn consistency_under_load(journal_mode: &str) {
    let app = App::new();
    let db = app.data_dir().join("bank.db");
    bank_db(&db, journal_mode, 24);
    // Every retention tier 0 keeps everything: all three snapshots are checked.
    app.write_config(
        "[[database]]\nname = \"bank\"\npath = \"bank.db\"\n[snapshot]\nbusy_timeout = \"30s\"\n\
         [retention]\nhourly = 0\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n",
    );
    let writer = Writer::start(&db, app.root());
    for _ in 0..3 {
        let out = app.run(&["snapshot"]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let stats = writer.stop();
    eprintln!(
        "{journal_mode}: writer committed {} transactions during 3 snapshots; commit wait p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        stats["commits"], stats["p50_ms"], stats["p99_ms"], stats["max_ms"]
    );
    assert_eq!(stats["error_count"], 0);
    assert!(
        stats["commits"].as_u64().unwrap() > 0,
        "the writer never committed"
    );

    let archives = app.archives();
    assert_eq!(archives.len(), 3, "{archives:?}");
    let mut seen = Vec::new();
    for (i, name) in archives.iter().enumerate() {
        let dir = untar(
            &app.backup_dir().join(name),
            &app.root().join(format!("x{i}")),
        );
        let tag = name.trim_end_matches(".tar.gz");
        seen.push(check_bank(&dir.join(tag).join("bank.db")));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(tag).join("MANIFEST.json")).unwrap())
                .unwrap();
        assert_eq!(manifest["databases"][0]["journal_mode"], journal_mode);
        assert_eq!(manifest["databases"][0]["schema_version"], 7);
        assert_eq!(manifest["databases"][0]["row_counts"]["ledger"], seen[i]);
    }
    // The live database is consistent too, and has moved on.
    check_bank_live(&db);
}

fn check_bank_live(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let total: i64 = conn
        .query_row("SELECT sum(balance) FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, ACCOUNTS * START_BALANCE);
}

#[test]
fn consistent_under_concurrent_writer_wal() {
    consistency_under_load("wal");
}

#[test]
fn consistent_under_concurrent_writer_rollback_journal() {
    consistency_under_load("delete");
}

/// `.dump` through the real sqlite3 CLI, plus the header fields `.dump`
/// does not show.
fn dump(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(".dump")
        .output()
        .expect("sqlite3 CLI installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conn = rusqlite::Connection::open(db).unwrap();
    let p = |q: &str| {
        conn.query_row(&format!("PRAGMA {q}"), [], |r| r.get::<_, i64>(0))
            .unwrap()
    };
    format!(
        "user_version={} application_id={} page_size={}\n{}",
        p("user_version"),
        p("application_id"),
        p("page_size"),
        String::from_utf8_lossy(&out.stdout)
    )
}

#[test]
fn copy_is_faithful() {
    let app = App::new();
    let db = app.data_dir().join("nested/dir/rich.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    // Built with the sqlite3 CLI: an independent SQLite, with FTS5.
    let sql = "PRAGMA page_size = 8192;
        PRAGMA journal_mode = WAL;
        PRAGMA application_id = 1718185579;
        PRAGMA user_version = 42;
        CREATE TABLE strict_t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL) STRICT;
        CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
        CREATE TABLE gen(a INTEGER, b INTEGER, c INTEGER GENERATED ALWAYS AS (a + b) VIRTUAL,
                         d TEXT GENERATED ALWAYS AS (a || '-' || b) STORED);
        CREATE VIRTUAL TABLE docs USING fts5(title, body);
        CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);
        CREATE TRIGGER strict_ins AFTER INSERT ON strict_t BEGIN INSERT INTO audit(what) VALUES ('ins ' || new.name); END;
        CREATE VIEW high AS SELECT name FROM strict_t WHERE score > 0.5;
        CREATE INDEX strict_score ON strict_t(score);
        INSERT INTO strict_t(name, score) VALUES ('a', 0.25), ('b', 0.75), ('c', 1.5);
        INSERT INTO kv VALUES ('big', randomblob(3000000)), ('small', x'00ff');
        INSERT INTO gen(a, b) VALUES (1, 2), (30, 40);
        INSERT INTO docs VALUES ('lifeboat', 'hot snapshots of sqlite'), ('restic', 'general backups');";
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg(sql)
        .output()
        .expect("sqlite3 CLI installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    app.write_config("[[database]]\nname = \"rich\"\npath = \"nested/dir/rich.db\"\n");
    let before = dump(&db);

    let out = app.run(&["snapshot", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let archive = &app.archives()[0];
    let dir = untar(&app.backup_dir().join(archive), &app.root().join("x"));
    let copy = dir
        .join(archive.trim_end_matches(".tar.gz"))
        .join("nested/dir/rich.db");
    assert_eq!(dump(&copy), before);
    assert!(before.contains("user_version=42 application_id=1718185579 page_size=8192"));

    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            dir.join(archive.trim_end_matches(".tar.gz"))
                .join("MANIFEST.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let entry = &manifest["databases"][0];
    assert_eq!(entry["path"], "nested/dir/rich.db");
    assert_eq!(entry["page_size"], 8192);
    assert_eq!(entry["application_id"], 1718185579);
    assert_eq!(entry["row_counts"]["strict_t"], 3);
    assert_eq!(entry["row_counts"]["docs"], 2);
    assert_eq!(entry["row_counts"]["audit"], 3);
    let sha = lifeboat::hash::sha256_file(&copy).unwrap();
    assert_eq!(entry["sha256"], sha);
    assert_eq!(manifest["manifest_version"], 2);
    assert_eq!(manifest["kind"], "scheduled");
    assert!(manifest["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(
        manifest["sqlite_version"]
            .as_str()
            .is_some_and(|v| v.starts_with('3'))
    );
}

fn hash(path: &Path) -> Option<Vec<u8>> {
    std::fs::read(path).ok()
}

/// A bad source gives one clear error, exit 1, and the source untouched;
/// it fails alone: the good database beside it is still backed up, and the
/// run is recorded as partial.
fn assert_refused(app: &App, source: &Path, needle: &str) {
    let before = hash(source);
    let out = app.run(&["snapshot"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains(needle), "expected `{needle}` in:\n{all}");
    assert!(all.contains("hint:"), "the error names a fix:\n{all}");
    assert_only_the_good_database_was_backed_up(app);
    let record = app.last_run();
    assert_eq!(record["status"], "partial");
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains(needle),
        "{record}"
    );
    assert_eq!(hash(source), before, "the source was modified");
    let leftovers = leftovers(app);
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

/// One archive, holding `good` only, with `bad` named among the skipped.
fn assert_only_the_good_database_was_backed_up(app: &App) {
    let archives = app.archives();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let (_, bytes) = tarball::read_entries(&app.backup_dir().join(&archives[0])).remove(0);
    let manifest: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let names: Vec<&str> = manifest["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["good"], "{manifest:#}");
    assert_eq!(manifest["skipped"][0]["name"], "bad", "{manifest:#}");
}

/// What a partial snapshot left in `backup_dir` beyond its record, lock,
/// archive and audit log: no staging files or temporary copies.
fn leftovers(app: &App) -> Vec<String> {
    std::fs::read_dir(app.backup_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !["last_run.json", "lifeboat.lock", "remote-ids.json"].contains(&n.as_str()))
        // What a snapshot that was taken leaves: its archive, its audit line.
        .filter(|n| !n.ends_with(".tar.gz") && !n.starts_with("audit.jsonl"))
        .collect()
}

fn one_db_app(path: &str) -> App {
    let app = App::new();
    app.write_config(&format!(
        "[[database]]\nname = \"good\"\npath = \"good.db\"\n[[database]]\nname = \"bad\"\npath = \"{path}\"\n[snapshot]\nbusy_timeout = \"300ms\"\n"
    ));
    sqlite(
        &app.data_dir().join("good.db"),
        "CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    );
    app
}

#[test]
fn missing_database_is_refused() {
    let app = one_db_app("missing.db");
    assert_refused(&app, &app.data_dir().join("missing.db"), "does not exist");
}

#[test]
fn non_sqlite_file_is_refused() {
    let app = one_db_app("notes.db");
    std::fs::write(
        app.data_dir().join("notes.db"),
        "these are my notes, not a database\n".repeat(10),
    )
    .unwrap();
    assert_refused(
        &app,
        &app.data_dir().join("notes.db"),
        "is not a SQLite database",
    );
}

#[test]
fn empty_file_is_refused() {
    let app = one_db_app("empty.db");
    std::fs::write(app.data_dir().join("empty.db"), b"").unwrap();
    assert_refused(&app, &app.data_dir().join("empty.db"), "is empty (0 bytes)");
}

#[test]
fn directory_is_refused() {
    let app = one_db_app("adir.db");
    std::fs::create_dir_all(app.data_dir().join("adir.db")).unwrap();
    assert_refused(&app, &app.data_dir().join("adir.db/none"), "is a directory");
}

#[test]
fn unreadable_database_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let app = one_db_app("secret.db");
    let db = app.data_dir().join("secret.db");
    sqlite(&db, "CREATE TABLE t(x);");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::File::open(&db).is_ok() {
        // root reads anything: run lifeboat as an unprivileged user instead.
        let Some(setpriv) = which_setpriv() else {
            panic!("running as root without setpriv: cannot test unreadable files");
        };
        open_up(app.root());
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o000)).unwrap();
        let before = hash(&db);
        let out = Command::new(setpriv)
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(crate::support::lifeboat_bin())
            .arg("--config")
            .arg(app.config_path())
            .arg("snapshot")
            .output()
            .unwrap();
        let all = text(&out);
        assert_eq!(out.status.code(), Some(1), "{all}");
        assert!(
            all.contains("cannot open") && all.contains("Permission denied"),
            "{all}"
        );
        assert!(all.contains("hint:"), "{all}");
        assert_only_the_good_database_was_backed_up(&app);
        assert_eq!(app.last_run()["status"], "partial");
        assert_eq!(hash(&db), before);
        return;
    }
    assert_refused(&app, &db, "Permission denied");
}

fn which_setpriv() -> Option<PathBuf> {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Let an unprivileged user reach the app (but not the unreadable file):
/// every directory from / down to the app, and the binary.
fn open_up(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for dir in walk(root) {
        let mode = if dir.is_dir() { 0o777 } else { 0o666 };
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let mut p = root.to_path_buf();
    while let Some(parent) = p.parent() {
        let meta = std::fs::metadata(parent).unwrap();
        if meta.permissions().mode() & 0o001 == 0 {
            let _ = std::fs::set_permissions(
                parent,
                std::fs::Permissions::from_mode(meta.permissions().mode() | 0o011),
            );
        }
        p = parent.to_path_buf();
    }
}

#[test]
fn locked_database_past_busy_timeout_is_refused() {
    let app = one_db_app("busy.db");
    let db = app.data_dir().join("busy.db");
    sqlite(
        &db,
        "PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    );
    // A writer whose transaction outgrew its cache: it holds the exclusive
    // lock until it commits, so a longer busy timeout would help. (An
    // application that keeps the lock without writing is told apart: see
    // `source.rs`.)
    let holder = DbHolder::start(
        &db,
        "c.execute('PRAGMA cache_size=10'); c.execute('BEGIN'); \
         c.executemany('INSERT INTO t VALUES (randomblob(1000))', [()] * 500)",
    );
    let before = hash(&db);
    let out = app.run(&["snapshot"]);
    drop(holder);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("database is locked"), "{all}");
    assert!(all.contains("busy_timeout"), "{all}");
    assert_only_the_good_database_was_backed_up(&app);
    assert_eq!(app.last_run()["status"], "partial");
    assert_eq!(hash(&db), before);
}

#[test]
fn second_run_waits_then_names_the_holder() {
    let app = App::new();
    let db = app.data_dir().join("busy.db");
    sqlite(&db, "PRAGMA journal_mode=DELETE; CREATE TABLE t(x);");
    app.write_config(
        "[[database]]\nname = \"busy\"\npath = \"busy.db\"\n[snapshot]\nbusy_timeout = \"20s\"\nlock_timeout = \"1s\"\n",
    );
    // The first run waits on the database (held by another process) while
    // holding lifeboat's lock.
    let holder = DbHolder::exclusive(&db);
    let mut first = app
        .cmd(&["snapshot"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = app.backup_dir().join("lifeboat.lock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&lock)
        .map(|s| s.is_empty())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "first run never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let out = app.run(&["backup-now"]);
    let waited = started.elapsed();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("pid {}", first.id())),
        "names the holder: {all}"
    );
    assert!(
        waited >= Duration::from_millis(900),
        "gave up without waiting: {waited:?}"
    );
    drop(holder);
    assert!(
        first.wait().unwrap().success(),
        "the first run completes once the database is free"
    );
    assert_eq!(app.archives().len(), 1);
}

/// Start `lifeboat snapshot` `times` times and SIGKILL it after 0, `step_ms`,
/// 2×`step_ms`, ... milliseconds; `check(delay_ms)` runs after each kill.
fn kill_snapshots(app: &App, times: u64, step_ms: u64, check: impl Fn(u64)) {
    for i in 0..times {
        let delay_ms = i * step_ms;
        let mut child = app
            .cmd(&["snapshot"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        check(delay_ms);
    }
}

#[test]
fn sigkill_at_any_moment_leaves_no_finished_looking_archive() {
    let app = App::new();
    let db = app.data_dir().join("big.db");
    bank_db(&db, "wal", 16);
    app.write_config("[[database]]\nname = \"big\"\npath = \"big.db\"\n");
    kill_snapshots(&app, 8, 37, |_| {
        for name in app.archives() {
            let path = app.backup_dir().join(&name);
            let limits = lifeboat::snapshot::archive::Limits {
                max_total_bytes: u64::MAX,
            };
            lifeboat::snapshot::archive::read(&path, None, None, limits)
                .unwrap_or_else(|e| panic!("{name} looks finished but is not: {e}"));
        }
    });
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let leftovers: Vec<String> = std::fs::read_dir(app.backup_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the next run cleans up: {leftovers:?}"
    );
}

#[test]
fn backup_now_is_manual_with_reason_and_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = App::new();
    sqlite(&app.data_dir().join("a.db"), "CREATE TABLE t(x);");
    app.write_config("[[database]]\nname = \"a\"\npath = \"a.db\"\n");
    let out = app.run(&["backup-now", "--reason", "before schema surgery", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["snapshot"]["kind"], "manual");
    assert_eq!(result["snapshot"]["reason"], "before schema surgery");
    let name = &app.archives()[0];
    assert!(name.ends_with("-manual.tar.gz"), "{name}");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&app.backup_dir()), 0o700);
    assert_eq!(mode(&app.backup_dir().join(name)), 0o600);
    assert_eq!(mode(&app.backup_dir().join("last_run.json")), 0o600);
}

#[test]
fn bad_config_exits_2_and_writes_nothing() {
    let app = App::new();
    sqlite(&app.data_dir().join("a.db"), "CREATE TABLE t(x);");
    for (body, needle) in [
        (
            "[[database]]\nname = \"a\"\npath = \"a.db\"\n[retention]\nhourli = 3\n",
            "hourli",
        ),
        (
            "[[database]]\nname = \"a\"\npath = \"/etc/passwd\"\n",
            "absolute",
        ),
        (
            "[[database]]\nname = \"a\"\npath = \"a.db\"\n[[database]]\nname = \"a\"\npath = \"b.db\"\n",
            "twice",
        ),
        ("[[database]\nname = ", "invalid config"),
    ] {
        app.write_config(body);
        let out = app.run(&["snapshot"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains(needle), "{needle}: {}", text(&out));
        assert!(
            !app.backup_dir().exists(),
            "nothing is written on a config error"
        );
    }
    let out = App::new().run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("cannot read config"));
}

#[test]
fn full_disk_fails_cleanly_and_is_recorded() {
    // Too small for the copy; then room for the copy but not the archive.
    full_disk("768k");
    full_disk("2600k");
}

fn full_disk(size: &str) {
    let app = App::new();
    let db = app.data_dir().join("big.db");
    // Random bytes do not compress: neither the copy nor the archive fits.
    sqlite(
        &db,
        "CREATE TABLE b(x BLOB); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 32)
         INSERT INTO b SELECT randomblob(65536) FROM n;",
    );
    app.write_config("[[database]]\nname = \"big\"\npath = \"big.db\"\n");
    let Some(_fs) = Tmpfs::mount(
        &app.backup_dir(),
        size,
        "full_disk_fails_cleanly_and_is_recorded",
    ) else {
        return;
    };
    let before = hash(&db);
    let out = app.run(&["snapshot"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    eprintln!(
        "backup_dir on a {size} tmpfs: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(
        all.contains("full") || all.contains("No space left"),
        "names the problem: {all}"
    );
    assert!(
        all.contains("hint:") && all.contains("free space"),
        "names the fix: {all}"
    );
    assert!(app.archives().is_empty());
    let leftovers = leftovers(&app);
    assert!(
        leftovers.is_empty(),
        "nothing half-written is left: {leftovers:?}"
    );
    let record = app.last_run();
    assert_eq!(record["status"], "failed");
    assert_eq!(hash(&db), before, "the source is untouched");
}

#[test]
fn long_database_paths_round_trip() {
    // Names past tar's 100-byte field use GNU long-name entries, which the
    // reader resolves itself (it refuses every other extension header).
    let app = App::new();
    let rel = format!("{}/deep.db", ["nested-directory-level"; 6].join("/"));
    sqlite(
        &app.data_dir().join(&rel),
        "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);",
    );
    app.write_config(&format!(
        "[[database]]\nname = \"deep\"\npath = \"{rel}\"\n"
    ));
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let name = &app.archives()[0];
    let tag = name.trim_end_matches(".tar.gz");
    assert!(format!("{tag}/{rel}").len() > 100);
    let out = app.run(&["verify", tag]);
    assert!(out.status.success(), "{}", text(&out));
    let dir = untar(&app.backup_dir().join(name), &app.root().join("x"));
    assert_eq!(
        std::fs::read(dir.join(tag).join(&rel)).unwrap().len() as u64,
        std::fs::metadata(app.data_dir().join(&rel)).unwrap().len()
    );
}

/// One byte of the compressed stream is flipped between the compressor and
/// the file (debug builds only): the check that follows the archive as it is
/// written must catch it, so nothing is renamed into place, queued or pushed,
/// and the run fails on the record. Both formats, early and late in the file.
#[test]
fn an_archive_damaged_on_its_way_to_disk_is_never_kept_or_pushed() {
    for compression in ["gzip", "zstd"] {
        for at in ["100", "2000000"] {
            let app = App::new();
            bank_db(&app.data_dir().join("bank.db"), "wal", 8);
            let remote = app.root().join("offsite");
            app.write_config(&format!(
                "[[database]]\nname = \"bank\"\npath = \"bank.db\"\n[snapshot]\ncompression = \"{compression}\"\n[remote.dir]\npath = \"{}\"\n",
                remote.display()
            ));
            app.set_up_remote();
            let out = app
                .cmd(&["snapshot"])
                .env("LIFEBOAT_TEST_CORRUPT_ARCHIVE_AT", at)
                .output()
                .unwrap();
            let what = format!("{compression}, byte {at}: {}", text(&out));
            assert_eq!(out.status.code(), Some(1), "{what}");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("does not read back"),
                "{what}"
            );
            assert!(app.archives().is_empty(), "{what}");
            let left = leftovers(&app);
            assert!(left.is_empty(), "{what}: left behind {left:?}");
            let pushed = std::fs::read_dir(&remote)
                .unwrap()
                .flatten()
                .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
                .count();
            assert_eq!(pushed, 0, "{what}");
            assert_eq!(app.last_run()["status"], "failed", "{what}");

            // Without the fault the same app snapshots and pushes.
            let out = app.run(&["snapshot"]);
            assert!(out.status.success(), "{compression}: {}", text(&out));
            assert_eq!(app.archives().len(), 1);
        }
    }
}

#[test]
fn sigkill_never_leaves_an_archive_that_is_neither_pushed_nor_queued() {
    let app = App::new();
    let db = app.data_dir().join("big.db");
    bank_db(&db, "wal", 16);
    let remote = app.root().join("offsite");
    // Every tier 0 but manual: retention keeps everything, so only the push
    // queue is under test.
    app.write_config(&format!(
        "[[database]]\nname = \"big\"\npath = \"big.db\"\n[remote.dir]\npath = \"{}\"\n\
         [retention]\nhourly = 0\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n",
        remote.display()
    ));
    app.set_up_remote();
    let on_remote = |name: &str| remote.join(name).exists();
    let queued = |name: &str| {
        let tag = name.trim_end_matches(".tar.gz");
        app.backup_dir()
            .join(format!("{tag}.pending-push.dir"))
            .exists()
    };
    kill_snapshots(&app, 10, 45, |delay_ms| {
        for name in app.archives() {
            assert!(
                on_remote(&name) || queued(&name),
                "{name} is neither on the remote nor queued for a push (after a kill at {delay_ms} ms)"
            );
        }
    });
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    for name in app.archives() {
        assert!(on_remote(&name), "{name} was not pushed by the next run");
        assert!(!queued(&name), "{name} is still queued after its push");
    }
}

#[test]
fn progress_is_drawn_on_a_terminal_and_never_otherwise() {
    let app = App::new();
    bank_db(&app.data_dir().join("bank.db"), "wal", 24);
    app.write_config("[[database]]\nname = \"bank\"\npath = \"bank.db\"\n");
    // Not a terminal (as under cron): no progress at all.
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains('%'),
        "{}",
        text(&out)
    );
    // Under a pseudo-terminal (util-linux `script`): pages copied, then bytes packed.
    let command = format!(
        "{} --config {} backup-now",
        crate::support::lifeboat_bin().display(),
        app.config_path().display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .expect("script(1) runs");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("bank") && shown.contains("archive") && shown.contains('%'),
        "{shown}"
    );
    // -q draws nothing, even on a terminal.
    let out = Command::new("script")
        .args(["-qec", &format!("{command} -q"), "/dev/null"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains('%'));
}
