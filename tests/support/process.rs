//! Other processes for the tests: an application holding a database open or
//! locked, a small filesystem that fills up, and a drive that is plugged in
//! and out.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A python3 process connected to a database (autocommit), having run
/// `statements` (Python lines using `c`), kept alive until dropped: an
/// application in a long transaction or with an idle connection.
pub struct DbHolder(Child);

impl DbHolder {
    pub fn start(db: &Path, statements: &str) -> DbHolder {
        let script = format!(
            "import sqlite3, sys, time\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
             {statements}\n\
             print('ready', flush=True)\n\
             time.sleep(600)\n"
        );
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(db)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the holder could not start");
        DbHolder(child)
    }

    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// An exclusive lock, as a rollback-journal writer mid-transaction holds.
    pub fn exclusive(db: &Path) -> DbHolder {
        DbHolder::start(db, "c.execute('BEGIN EXCLUSIVE')")
    }
}

impl Drop for DbHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A small tmpfs mounted for the test's lifetime. `None`, with a visible
/// message, where mounting is not allowed; under CI (which runs as root and
/// must run these tests) that is a failure instead.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(at: &Path, size: &str, test: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output()
            .unwrap();
        if out.status.success() {
            return Some(Tmpfs(at.to_path_buf()));
        }
        let msg = format!(
            "cannot mount a tmpfs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(std::env::var_os("CI").is_none(), "{test}: {msg}");
        eprintln!("SKIPPED {test}: {msg}");
        None
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// `drive` bind-mounted at `at` until dropped: a drive plugged in at its
/// mount point. Dropping it unplugs the drive; what it holds stays in
/// `drive` for the next plug-in. (Needs what [`Tmpfs`] needs: call it once
/// a `Tmpfs` was mounted.)
pub struct Plugged(PathBuf);

impl Plugged {
    pub fn plug(drive: &Path, at: &Path) -> Plugged {
        let out = Command::new("mount")
            .arg("--bind")
            .arg(drive)
            .arg(at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mount --bind {} {}: {}",
            drive.display(),
            at.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Plugged(at.to_path_buf())
    }
}

impl Drop for Plugged {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
