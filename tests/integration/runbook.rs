//! docs/runbook.md, executed: each test follows one procedure of the
//! runbook, command by command, against real databases, the real binary and
//! the `dir` remote, so that the runbook cannot rot. A test's name is the
//! procedure's heading.

use crate::support::{App, sqlite, text};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

/// A process holding an EXCLUSIVE lock on a rollback-journal database, like
/// an application stuck in a long transaction.
struct DbLocker(std::process::Child);

impl DbLocker {
    fn start(db: &Path) -> DbLocker {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(
                "import sqlite3, sys, time\n\
                 c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                 c.execute('BEGIN EXCLUSIVE')\n\
                 print('locked', flush=True)\n\
                 time.sleep(600)\n",
            )
            .arg(db)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        DbLocker(child)
    }
}

impl Drop for DbLocker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    let locker = DbLocker::start(&db);
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

    // The dead run's pid is still written in the lock file, but the kernel
    // released the lock with the process: nothing to delete by hand.
    assert!(
        std::fs::read_to_string(&lock_file)
            .unwrap()
            .contains(&holder)
    );
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
