//! docs/runbook.md, executed: each test follows one procedure of the
//! runbook, command by command, against real databases, the real binary and
//! the `dir` remote, so that the runbook cannot rot. A test's name is the
//! procedure's heading.

use crate::support::gh::{Emulator, GhBin, gh_bins, github_config};
use crate::support::process::{DbHolder, Tmpfs};
use crate::support::{App, sqlite, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// One machine: an application directory with its config, and (for the
/// GitHub remote) the emulator gh talks to instead of github.com.
struct Machine<'a> {
    app: App,
    emulator: Option<&'a Emulator>,
}

impl<'a> Machine<'a> {
    fn new(config_body: &str, emulator: Option<&'a Emulator>) -> Machine<'a> {
        let app = App::new();
        app.write_config(config_body);
        Machine { app, emulator }
    }

    /// A machine with only the config file: no data directory at all.
    fn fresh(config_body: &str, emulator: Option<&'a Emulator>) -> Machine<'a> {
        let app = App::new();
        std::fs::write(
            app.config_path(),
            format!("data_dir = \"data\"\n{config_body}"),
        )
        .unwrap();
        Machine { app, emulator }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.app.cmd(args);
        if let Some(e) = self.emulator {
            e.env(&mut cmd);
        }
        cmd.output().unwrap()
    }

    /// Run a step that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lifeboat {}: {}",
            args.join(" "),
            text(&out)
        );
        stdout(&out)
    }

    fn db(&self, name: &str) -> PathBuf {
        self.app.data_dir().join(name)
    }

    /// Take a snapshot and return its tag (the first word printed).
    fn snapshot(&self, command: &str) -> String {
        let out = self.ok(&[command]);
        out.split_whitespace().next().unwrap().to_string()
    }
}

fn query(db: &Path, sql: &str) -> String {
    let out = Command::new("sqlite3").arg(db).arg(sql).output().unwrap();
    assert!(out.status.success(), "sqlite3 {sql}: {}", text(&out));
    stdout(&out).trim().to_string()
}

/// Two databases of an application, the way the runbook's examples have them.
const DATABASES: &str = "[[database]]\nname = \"tasks\"\npath = \"db/tasks.db\"\n\
                         [[database]]\nname = \"notes\"\npath = \"notes.db\"\n";

/// Keep every snapshot: the tests take several within one hour, which the
/// default policy would thin out to one.
const KEEP_ALL: &str =
    "[retention]\nhourly = 0\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n";

fn create_databases(m: &Machine) {
    sqlite(
        &m.db("db/tasks.db"),
        "PRAGMA journal_mode=WAL;
         CREATE TABLE tasks(id INTEGER PRIMARY KEY, title TEXT NOT NULL);
         INSERT INTO tasks(title) VALUES ('write the runbook'), ('test it');",
    );
    sqlite(
        &m.db("notes.db"),
        "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT);
         INSERT INTO notes(body) VALUES ('first');",
    );
}

/// Seconds tick between snapshots so that their tags differ and order.
fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Wait until `cond` holds, or panic after `secs`.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runbook: "The lock is held (by a dead or a hung process)".
#[test]
fn lock_held_by_a_dead_or_hung_process() {
    let app = App::new();
    app.write_config(
        "[snapshot]\nbusy_timeout = \"120s\"\nlock_timeout = \"1s\"\n\
         [[database]]\nname = \"tasks\"\npath = \"tasks.db\"\n",
    );
    let db = app.data_dir().join("tasks.db");
    sqlite(&db, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");

    // A run that hangs: it holds lifeboat's lock while it waits for a
    // database that another process keeps locked.
    let locker = DbHolder::exclusive(&db);
    let mut hung = app
        .cmd(&["snapshot"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock_file = app.backup_dir().join("lifeboat.lock");
    let holder = format!("pid {} (snapshot)", hung.id());
    wait_for(30, "the first run to take the lock", || {
        std::fs::read_to_string(&lock_file).is_ok_and(|s| s.contains(&holder))
    });

    // Symptom: the next run gives up, naming the holder.
    let out = app.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("another lifeboat run holds") && stderr(&out).contains(&holder),
        "{}",
        text(&out)
    );

    // Step 1: `cat <backup_dir>/lifeboat.lock` names the holder.
    let cat = Command::new("cat").arg(&lock_file).output().unwrap();
    let pid = stdout(&cat)
        .split_whitespace()
        .nth(1)
        .expect("pid N (command)")
        .to_string();
    assert_eq!(pid, hung.id().to_string());

    // Step 2: `ps -o pid,etime,args -p PID`: alive, and hung (it waits for
    // the database); so `kill PID`.
    let ps = Command::new("ps")
        .args(["-o", "pid,etime,args", "-p", &pid])
        .output()
        .unwrap();
    assert!(
        ps.status.success() && stdout(&ps).contains("snapshot"),
        "{}",
        text(&ps)
    );
    let kill = Command::new("kill").arg(&pid).output().unwrap();
    assert!(kill.status.success(), "{}", text(&kill));
    hung.wait().unwrap();
    // The cause of the hang goes away (here: the stuck transaction ends).
    drop(locker);

    // Whether the run stopped at a safe point (it clears the lock file) or
    // died at once (its pid stays written there), the kernel released the
    // lock with the process: nothing to delete by hand.
    let ps = Command::new("ps").args(["-p", &pid]).output().unwrap();
    assert!(!ps.status.success(), "{pid} should be gone");

    // Step 3: `lifeboat snapshot` runs, and cleans the killed run's leftovers.
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(app.archives().len(), 1, "{:?}", app.archives());
    let leftovers: Vec<String> = std::fs::read_dir(app.backup_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(app.last_run()["status"], "success");
}

/// Runbook 1: "Disaster recovery on a fresh machine", for any remote.
fn fresh_machine_recovery(remote: &str, emulator: Option<&Emulator>) {
    let body = format!("{DATABASES}{KEEP_ALL}{remote}");
    // The old machine, while it lived: two hourly snapshots, pushed.
    let (older, newer) = {
        let old = Machine::new(&body, emulator);
        // Set up as the README says.
        old.ok(&["doctor", "--fix"]);
        create_databases(&old);
        let older = old.snapshot("snapshot");
        next_second();
        sqlite(
            &old.db("db/tasks.db"),
            "INSERT INTO tasks(title) VALUES ('after the first');",
        );
        let newer = old.snapshot("snapshot");
        (older, newer)
    }; // ... and now it is gone.

    // Steps 1-3: a new machine with lifeboat, gh logged in (the emulator's
    // token) and only the config file.
    let new = Machine::fresh(&body, emulator);
    assert!(!new.app.data_dir().exists());

    // Step 4: lifeboat doctor.
    assert!(new.ok(&["doctor"]).contains("all checks passed"));

    // Step 5: lifeboat list --remote, newest first.
    let list = new.ok(&["list", "--remote"]);
    let (at_newer, at_older) = (list.find(&newer), list.find(&older));
    assert!(
        at_newer.is_some() && at_older.is_some() && at_newer < at_older,
        "{list}"
    );
    // `lifeboat restore` with no tag prints the same table and exits 2.
    let choose = new.run(&["restore"]);
    assert_eq!(choose.status.code(), Some(2), "{}", text(&choose));
    assert!(stdout(&choose).contains(&newer), "{}", text(&choose));

    // Step 6: rehearse, then restore `latest` (the newest).
    let dry = new.ok(&["restore", "latest", "--dry-run"]);
    assert!(dry.contains("every check passed"), "{dry}");
    assert!(dry.contains(&newer), "{dry}");
    assert!(
        !new.db("db/tasks.db").exists(),
        "a dry run must not touch the data"
    );
    let restored = new.ok(&["restore", "latest"]);
    assert!(
        restored.contains(&format!("restored {newer}")),
        "{restored}"
    );
    assert!(restored.contains("integrity_check ok"), "{restored}");

    // Step 7: check with sqlite3.
    let tasks = new.db("db/tasks.db");
    assert_eq!(
        query(
            &tasks,
            "PRAGMA integrity_check; SELECT count(*) FROM tasks;"
        ),
        "ok\n3"
    );
    assert_eq!(
        query(&new.db("notes.db"), "SELECT body FROM notes;"),
        "first"
    );
    // Another point in time, and back with --undo.
    new.ok(&["restore", &older]);
    assert_eq!(query(&tasks, "SELECT count(*) FROM tasks;"), "2");
    let undo = new.ok(&["restore", "--undo"]);
    assert!(undo.contains("put back"), "{undo}");
    assert_eq!(query(&tasks, "SELECT count(*) FROM tasks;"), "3");

    // Step 8: resume the backups, prove they restore, schedule them.
    next_second();
    new.ok(&["snapshot"]);
    new.ok(&["drill"]);
    let health = new.run(&["health"]);
    assert_eq!(health.status.code(), Some(0), "{}", text(&health));
    assert!(
        stdout(&health).starts_with("LIFEBOAT OK"),
        "{}",
        text(&health)
    );
    assert!(
        new.ok(&["schedule", "--print", "systemd"])
            .contains("ExecStart=")
    );
}

#[test]
fn fresh_machine_recovery_from_a_dir_remote() {
    let remote = tempfile::tempdir().unwrap();
    fresh_machine_recovery(
        &format!("[remote.dir]\npath = \"{}\"\n", remote.path().display()),
        None,
    );
}

#[test]
fn fresh_machine_recovery_from_github() {
    for gh in gh_bins("runbook: fresh machine recovery from GitHub") {
        let emulator = Emulator::start();
        fresh_machine_recovery(&github_config(&gh.path, "60s"), Some(&emulator));
    }
}

/// Runbook 2: "Restore one database".
#[test]
fn restore_one_database() {
    let remote = tempfile::tempdir().unwrap();
    let m = Machine::new(
        &format!(
            "{DATABASES}[remote.dir]\npath = \"{}\"\n",
            remote.path().display()
        ),
        None,
    );
    m.ok(&["doctor", "--fix"]);
    create_databases(&m);
    let tag = m.snapshot("snapshot");
    // Later: new notes, and a bad DELETE in tasks.
    sqlite(
        &m.db("notes.db"),
        "INSERT INTO notes(body) VALUES ('newer');",
    );
    sqlite(&m.db("db/tasks.db"), "DELETE FROM tasks;");

    let list = m.ok(&["list"]);
    assert!(list.contains(&tag), "{list}");
    m.ok(&["restore", &tag, "--db", "tasks", "--dry-run"]);
    assert_eq!(
        query(&m.db("db/tasks.db"), "SELECT count(*) FROM tasks;"),
        "0"
    );
    let out = m.ok(&["restore", &tag, "--db", "tasks"]);
    assert!(!out.contains("database notes"), "{out}");

    assert_eq!(
        query(&m.db("db/tasks.db"), "SELECT count(*) FROM tasks;"),
        "2"
    );
    // The other database keeps its newer data.
    assert_eq!(
        query(&m.db("notes.db"), "SELECT group_concat(body) FROM notes;"),
        "first,newer"
    );
    // And --undo puts the replaced tasks back.
    m.ok(&["restore", "--undo"]);
    assert_eq!(
        query(&m.db("db/tasks.db"), "SELECT count(*) FROM tasks;"),
        "0"
    );
    assert_eq!(
        query(&m.db("notes.db"), "SELECT group_concat(body) FROM notes;"),
        "first,newer"
    );
}

/// Runbook 3: "A push failed" (an external drive that is not mounted).
#[test]
fn failed_push_is_pushed_by_the_next_run() {
    let mnt = tempfile::tempdir().unwrap();
    let mount_point = mnt.path().join("usb");
    let remote = mount_point.join("lifeboat");
    let m = Machine::new(
        &format!(
            "{DATABASES}{KEEP_ALL}[remote.dir]\npath = \"{}\"\n",
            remote.display()
        ),
        None,
    );
    create_databases(&m);
    // The drive, set up once while mounted at usb/.
    std::fs::create_dir(&mount_point).unwrap();
    m.ok(&["doctor", "--fix"]);
    // Unplugged: what is left at usb/ is the empty mount point.
    let drive = mnt.path().join("drive");
    std::fs::rename(&mount_point, &drive).unwrap();
    std::fs::create_dir(&mount_point).unwrap();

    // Symptoms.
    let out = m.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("was taken but not pushed"),
        "{}",
        text(&out)
    );
    let unpushed = stdout(&out).split_whitespace().next().unwrap().to_string();
    let health = m.run(&["health"]);
    assert_eq!(health.status.code(), Some(1), "{}", text(&health));
    assert!(
        stdout(&health).starts_with("LIFEBOAT WARNING - push of")
            && stdout(&health).contains("only on this machine"),
        "{}",
        text(&health)
    );
    assert!(
        m.app
            .backup_dir()
            .join(format!("{unpushed}.pending-push.dir"))
            .exists()
    );

    // Step 1: the cause.
    let doctor = m.run(&["doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(
        stdout(&doctor).contains("is the drive mounted?"),
        "{}",
        text(&doctor)
    );
    assert_eq!(
        std::fs::read_dir(&mount_point).unwrap().count(),
        0,
        "nothing written under the bare mount point"
    );

    // Step 2: fix it (the drive is mounted), then run a snapshot now.
    std::fs::remove_dir(&mount_point).unwrap();
    std::fs::rename(&drive, &mount_point).unwrap();
    m.ok(&["doctor"]);
    next_second();
    let newer = m.snapshot("snapshot");
    let pushed: Vec<String> = m.app.last_run()["push"]["pushed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(pushed, [unpushed.clone(), newer.clone()]);
    let list = m.ok(&["list", "--remote"]);
    assert!(list.contains(&unpushed) && list.contains(&newer), "{list}");
    let health = m.run(&["health"]);
    assert!(!stdout(&health).contains("push of"), "{}", text(&health));
    assert!(
        !m.app
            .backup_dir()
            .join(format!("{unpushed}.pending-push.dir"))
            .exists()
    );
}

/// Runbook 4: "The repository was deleted".
#[test]
fn repository_deleted() {
    for gh in gh_bins("runbook: repository deleted") {
        repository_deleted_with(&gh);
    }
}

fn repository_deleted_with(gh: &GhBin) {
    let emulator = Emulator::start();
    let m = Machine::new(
        &format!("{DATABASES}{KEEP_ALL}{}", github_config(&gh.path, "60s")),
        Some(&emulator),
    );
    create_databases(&m);
    let older = m.snapshot("snapshot");
    next_second();
    let manual = m.snapshot("backup-now");
    emulator.delete_repo();

    // Symptoms.
    next_second();
    let out = m.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}: {}", gh.version, text(&out));
    let doctor = m.run(&["doctor"]);
    assert!(
        stdout(&doctor).contains("does not exist"),
        "{}: {}",
        gh.version,
        text(&doctor)
    );

    // Step 1: lifeboat doctor --fix.
    let fix = m.ok(&["doctor", "--fix"]);
    assert!(fix.contains("created private repository"), "{fix}");
    assert_eq!(emulator.repo_state()["private"], true);

    // Step 2: mark every local archive pending, then snapshot.
    let backup_dir = m.app.backup_dir();
    let script = "cd \"$1\" && for f in snap-*.tar.gz snap-*.tar.zst; do \
                  [ -e \"$f\" ] && touch \"${f%.tar.*}.pending-push\"; done; true";
    let sh = Command::new("sh")
        .args(["-c", script, "sh"])
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert!(sh.status.success(), "{}", text(&sh));
    next_second();
    let newest = m.snapshot("snapshot");
    let list = m.ok(&["list", "--remote"]);
    for tag in [&older, &manual, &newest] {
        assert!(
            list.contains(tag.as_str()),
            "{}: {tag} missing from\n{list}",
            gh.version
        );
    }
}

/// Runbook 5: "The repository was made public".
#[test]
fn repository_made_public() {
    for gh in gh_bins("runbook: repository made public") {
        let emulator = Emulator::start();
        let m = Machine::new(
            &format!("{DATABASES}{}", github_config(&gh.path, "60s")),
            Some(&emulator),
        );
        create_databases(&m);
        m.snapshot("snapshot");
        emulator.set_repo(false, false);

        // Symptom: doctor fails loudly.
        let doctor = m.run(&["doctor"]);
        assert_eq!(doctor.status.code(), Some(1), "{}", text(&doctor));
        assert!(
            stdout(&doctor).contains("WARNING: the backup repository is PUBLIC"),
            "{}: {}",
            gh.version,
            text(&doctor)
        );
        assert!(
            stdout(&doctor).contains("--visibility private"),
            "{}",
            text(&doctor)
        );

        // Step 1: make it private. The emulator does not implement the REST
        // call behind `gh repo edit --visibility private`; its control
        // endpoint makes the same change.
        emulator.set_repo(true, false);
        let doctor = m.ok(&["doctor"]);
        assert!(doctor.contains("ok   private"), "{doctor}");
        // The snapshots are still there: they are the backups.
        assert_eq!(
            m.ok(&["list", "--remote"])
                .lines()
                .filter(|l| l.starts_with("snap-"))
                .count(),
            1
        );
    }
}

/// Runbook 6: "The disk is full".
#[test]
fn disk_full() {
    let db = "[[database]]\nname = \"blobs\"\npath = \"blobs.db\"\n";
    let m = Machine::new(db, None);
    // backup_dir on a small disk of its own.
    let backup_dir = m.app.root().join("backups");
    let Some(_disk) = Tmpfs::mount(&backup_dir, "1600k", "runbook disk_full") else {
        return;
    };
    std::fs::write(
        m.app.config_path(),
        format!("data_dir = \"data\"\nbackup_dir = \"backups\"\n{db}"),
    )
    .unwrap();
    // About 400 KB that does not compress: two archives fit, a third does not.
    sqlite(
        &m.db("blobs.db"),
        "CREATE TABLE b(x BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
           INSERT INTO b SELECT randomblob(4000) FROM n;",
    );
    let before = std::fs::read(m.db("blobs.db")).unwrap();
    let first = m.snapshot("backup-now");
    next_second();
    let second = m.snapshot("backup-now");
    next_second();

    // Symptom.
    let out = m.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("No space left on device"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(m.db("blobs.db")).unwrap(),
        before,
        "live data changed"
    );
    let names: Vec<String> = std::fs::read_dir(&backup_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with('.')),
        "a partial file was left behind: {names:?}"
    );

    // Step 1: what takes the space.
    let df = Command::new("df")
        .arg("-h")
        .arg(&backup_dir)
        .output()
        .unwrap();
    assert!(
        df.status.success() && stdout(&df).contains("tmpfs"),
        "{}",
        text(&df)
    );
    let list = m.ok(&["list", "--local"]);
    assert!(list.contains(&first) && list.contains(&second), "{list}");

    // Step 2: the plan, then a smaller policy applied now.
    let plan = m.ok(&["prune", "--dry-run"]);
    assert!(
        plan.contains("manual 1/20") && plan.contains("manual 2/20"),
        "{plan}"
    );
    let config = std::fs::read_to_string(m.app.config_path()).unwrap();
    std::fs::write(
        m.app.config_path(),
        format!("{config}[retention]\nmanual = 1\n"),
    )
    .unwrap();
    let pruned = m.ok(&["prune", "--local"]);
    assert!(pruned.contains(&first), "{pruned}");
    assert!(!backup_dir.join(format!("{first}.tar.gz")).exists());
    assert!(backup_dir.join(format!("{second}.tar.gz")).exists());

    // Step 3: a snapshot now, and health.
    let newest = m.snapshot("snapshot");
    assert!(backup_dir.join(format!("{newest}.tar.gz")).exists());
    let health = m.run(&["health"]);
    assert!(
        !stdout(&health).contains("CRITICAL") && stdout(&health).contains(&newest),
        "{}",
        text(&health)
    );
}

/// Runbook 8: "The newest snapshot is corrupt: restore an older one".
#[test]
fn corrupt_newest_snapshot_restore_an_older_one() {
    let remote = tempfile::tempdir().unwrap();
    let m = Machine::new(
        &format!(
            "{DATABASES}{KEEP_ALL}[remote.dir]\npath = \"{}\"\n",
            remote.path().display()
        ),
        None,
    );
    m.ok(&["doctor", "--fix"]);
    create_databases(&m);
    let older = m.snapshot("snapshot");
    next_second();
    sqlite(
        &m.db("db/tasks.db"),
        "INSERT INTO tasks(title) VALUES ('second');",
    );
    let newest = m.snapshot("snapshot");
    // Both copies of the newest snapshot are damaged (one flipped byte).
    for copy in [
        m.app.backup_dir().join(format!("{newest}.tar.gz")),
        remote.path().join(format!("{newest}.tar.gz")),
    ] {
        let mut bytes = std::fs::read(&copy).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(&copy, bytes).unwrap();
    }
    sqlite(&m.db("db/tasks.db"), "DELETE FROM tasks;");
    let live = std::fs::read(m.db("db/tasks.db")).unwrap();

    // Symptom: the restore refuses and the live data stays as it was.
    let out = m.run(&["restore", &newest]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(std::fs::read(m.db("db/tasks.db")).unwrap(), live);
    let latest = m.run(&["verify", "--latest"]);
    assert_eq!(latest.status.code(), Some(1), "{}", text(&latest));

    // Step 1: which snapshots are good, here and on the remote.
    for args in [
        &["verify", "--all"][..],
        &["verify", "--all", "--remote"][..],
    ] {
        let out = m.run(args);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let report = stdout(&out);
        assert!(
            report
                .lines()
                .any(|l| l.starts_with("FAIL") && l.contains(&newest))
                && report
                    .lines()
                    .any(|l| l.starts_with("OK") && l.contains(&older)),
            "{report}"
        );
    }
    assert!(m.ok(&["list"]).contains(&older));

    // Step 2: restore the newest good one.
    m.ok(&["restore", &older, "--dry-run"]);
    m.ok(&["restore", &older]);
    assert_eq!(
        query(
            &m.db("db/tasks.db"),
            "PRAGMA integrity_check; SELECT count(*) FROM tasks;"
        ),
        "ok\n2"
    );

    // Step 3: a fresh snapshot is the newest again, and it verifies.
    next_second();
    m.ok(&["snapshot"]);
    m.ok(&["verify", "--latest"]);
}

/// Runbook 9: "A restore was interrupted" (killed mid-swap; the application
/// started again and wrote; the procedure finishes it).
#[test]
fn interrupted_restore_is_finished_by_the_next_command() {
    use std::os::unix::process::ExitStatusExt;
    let m = Machine::new(DATABASES, None);
    create_databases(&m);
    let tag = m.snapshot("snapshot");
    sqlite(&m.db("db/tasks.db"), "DELETE FROM tasks;");
    let out = m
        .app
        .cmd(&["restore", &tag])
        .env("LIFEBOAT_TEST_CRASH_AT", "swap")
        .output()
        .unwrap();
    assert_eq!(out.status.signal(), Some(9), "{}", text(&out));

    // Symptoms: health is CRITICAL, the hourly snapshot refuses while the
    // application has the half-restored files open.
    let health = m.run(&["health"]);
    assert_eq!(health.status.code(), Some(2), "{}", text(&health));
    assert!(stdout(&health).contains("an interrupted restore is not finished"));
    let app = DbHolder::start(&m.db("notes.db"), "c.execute('SELECT 1').fetchall()");
    let out = m.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("must be finished, but `notes`"),
        "{}",
        text(&out)
    );

    // 1. Stop the application. 2. Run any command: it finishes the restore.
    drop(app);
    let out = m.run(&["restore"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(stderr(&out).contains("was completed"), "{}", text(&out));
    // 3. Check, then the backups resume.
    assert_eq!(query(&m.db("db/tasks.db"), "PRAGMA integrity_check;"), "ok");
    assert_eq!(
        query(&m.db("db/tasks.db"), "SELECT count(*) FROM tasks;"),
        "2"
    );
    m.ok(&["snapshot"]);
    let health = m.run(&["health"]);
    assert!(
        !stdout(&health).contains("interrupted restore"),
        "{}",
        text(&health)
    );
}

/// Runbook 10: "Clock skew: a record or snapshot from the future".
#[test]
fn clock_skew_a_record_or_snapshot_from_the_future() {
    use crate::support::faketime::with_clock;
    let remote = tempfile::tempdir().unwrap();
    let m = Machine::new(
        &format!(
            "{DATABASES}{KEEP_ALL}[remote.dir]\npath = \"{}\"\n",
            remote.path().display()
        ),
        None,
    );
    create_databases(&m);
    m.ok(&["doctor", "--fix"]);
    let real = m.snapshot("snapshot");
    m.ok(&["drill"]);

    // The clock runs 6 hours ahead for a snapshot and a drill.
    for args in [&["snapshot"][..], &["drill"][..]] {
        let out = with_clock(&mut m.app.cmd(args), "+6h").output().unwrap();
        assert!(out.status.success(), "{args:?} at +6h: {}", text(&out));
    }

    // Symptoms, back at the real time.
    let health = m.run(&["health"]);
    assert_eq!(health.status.code(), Some(1), "{}", text(&health));
    assert!(
        stdout(&health).starts_with("LIFEBOAT WARNING - clock skew: the last drill is "),
        "{}",
        text(&health)
    );
    let latest = m.ok(&["verify", "--latest"]);
    assert!(
        latest.starts_with("note: skipped snap-") && latest.contains(&real),
        "{latest}"
    );

    // Step 1: the clock (this machine's is right; fixing it is not tested).
    assert!(
        Command::new("date")
            .arg("-u")
            .output()
            .unwrap()
            .status
            .success()
    );

    // Step 2: the snapshot from the future, checked by name.
    let out = m.run(&["list"]);
    assert!(out.status.success(), "{}", text(&out));
    let future = stdout(&out)
        .lines()
        .find(|l| l.contains(" in 5h 59m ") || l.contains(" in 6h "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no snapshot from the future in {}", text(&out)))
        .to_string();
    assert!(
        stderr(&out).contains("dated in the future") && stderr(&out).contains(&future),
        "{}",
        text(&out)
    );
    m.ok(&["verify", &future]);

    // Step 3: a snapshot and a drill at the right time; health is OK.
    m.ok(&["snapshot"]);
    let drill = m.ok(&["drill"]);
    assert!(
        drill.contains(&format!("note: skipped {future}")),
        "{drill}"
    );
    let health = m.run(&["health"]);
    assert_eq!(health.status.code(), Some(0), "{}", text(&health));
    assert!(
        stdout(&health).starts_with("LIFEBOAT OK"),
        "{}",
        text(&health)
    );
}

/// Runbook: "A database was not backed up (a partial snapshot)". The backup
/// account cannot read `notes.db`; the other database is still backed up.
#[test]
fn partial_snapshot_then_fixed() {
    use std::os::unix::fs::PermissionsExt;
    let remote = tempfile::tempdir().unwrap();
    let m = Machine::new(
        &format!(
            "{DATABASES}[remote.dir]\npath = \"{}\"\n",
            remote.path().display()
        ),
        None,
    );
    create_databases(&m);
    m.ok(&["doctor", "--fix"]);
    m.snapshot("snapshot");
    m.ok(&["drill"]);
    // The application recreated notes.db as not a database (a bad deploy).
    let notes = m.db("notes.db");
    let good = std::fs::read(&notes).unwrap();
    std::fs::write(&notes, b"").unwrap();
    next_second();
    let out = m.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    // Symptoms.
    let health = m.run(&["health"]);
    assert_eq!(health.status.code(), Some(1), "{}", text(&health));
    assert!(
        stdout(&health)
            .starts_with("LIFEBOAT WARNING - last run (`snapshot`) was partial: snapshot "),
        "{}",
        text(&health)
    );
    assert!(
        stdout(&health).contains("database `notes` was not backed up"),
        "{}",
        text(&health)
    );
    // 1. Read why: the record names it, with its error and hint.
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.app.backup_dir().join("last_run.json")).unwrap())
            .unwrap();
    assert_eq!(rec["status"], "partial");
    assert_eq!(rec["snapshot"]["failed"][0]["name"], "notes");
    assert!(
        rec["snapshot"]["failed"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is empty (0 bytes)"),
        "{rec:#}"
    );
    assert!(
        rec["snapshot"]["failed"][0]["error"]["hint"].is_string(),
        "{rec:#}"
    );
    // 2. Fix it. 3. Snapshot now: the warning is gone.
    std::fs::write(&notes, &good).unwrap();
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o600)).unwrap();
    next_second();
    m.ok(&["backup-now", "--reason", "after fixing notes"]);
    let health = m.run(&["health"]);
    assert_eq!(health.status.code(), Some(0), "{}", text(&health));
}

/// Runbook 12: "A snapshot is too large for the remote". The too-large
/// archive is a queued leftover (sparse: 2 GiB of apparent size), as an
/// earlier run that took it would have left it.
#[test]
fn snapshot_too_large_for_the_remote() {
    let Some(gh) = gh_bins("runbook: a snapshot too large for the remote")
        .into_iter()
        .next()
    else {
        return;
    };
    let emulator = Emulator::start();
    // Parts of 2 MB: a 2 GiB archive would need more than 999.
    let m = Machine::new(
        &format!(
            "{DATABASES}{}part_size = 2000000\n",
            github_config(&gh.path, "60s")
        ),
        Some(&emulator),
    );
    create_databases(&m);
    let backups = m.app.backup_dir();
    std::fs::create_dir_all(&backups).unwrap();
    let big = "snap-20260102T030405Z";
    let archive = backups.join(format!("{big}.tar.gz"));
    std::fs::File::create(&archive)
        .unwrap()
        .set_len(2 * 1024 * 1024 * 1024)
        .unwrap();
    std::fs::write(backups.join(format!("{big}.pending-push")), b"").unwrap();

    // Later snapshots are pushed past it; health names it.
    let tag = m.snapshot("snapshot");
    assert_eq!(emulator.releases_for(&tag).len(), 1);
    m.ok(&["drill"]);
    let health = m.run(&["health"]);
    assert_eq!(health.status.code(), Some(1), "{}", text(&health));
    assert!(
        stdout(&health).starts_with(&format!(
            "LIFEBOAT WARNING - snapshot {big} cannot be pushed to"
        )),
        "{}",
        text(&health)
    );
    // 3. Drop it once it is safe elsewhere.
    std::fs::remove_file(&archive).unwrap();
    next_second();
    m.ok(&["snapshot"]);
    assert!(!backups.join(format!("{big}.pending-push")).exists());
    let health = m.run(&["health"]);
    assert_eq!(health.status.code(), Some(0), "{}", text(&health));
}
