//! Shared fixtures for the integration tests: a temporary application with
//! its config, and a way to run the real `lifeboat` binary against it.
#![allow(dead_code)]

pub mod demo;
pub mod faketime;
pub mod gh;
pub mod obs;
pub mod process;
pub mod tarball;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The built `lifeboat` binary.
pub fn lifeboat_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lifeboat"))
}

/// A temporary application: `root/lifeboat.toml`, `root/data/...`.
pub struct App {
    pub dir: tempfile::TempDir,
}

impl App {
    /// An empty app directory; call [`App::write_config`] next.
    pub fn new() -> App {
        App {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    pub fn backup_dir(&self) -> PathBuf {
        self.data_dir().join("backups")
    }

    pub fn config_path(&self) -> PathBuf {
        self.root().join("lifeboat.toml")
    }

    /// Write `lifeboat.toml` with `data_dir = "data"` followed by `body`.
    pub fn write_config(&self, body: &str) {
        std::fs::create_dir_all(self.data_dir()).unwrap();
        std::fs::write(self.config_path(), format!("data_dir = \"data\"\n{body}")).unwrap();
    }

    /// A `lifeboat` command with `--config` set and a clean environment.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(lifeboat_bin());
        c.arg("--config").arg(self.config_path()).args(args);
        c.env_remove("LIFEBOAT_CONFIG").env_remove("LIFEBOAT_LOG");
        c.current_dir(self.root());
        c
    }

    /// Set up the configured `[remote.dir]` as the documentation says:
    /// `lifeboat doctor --fix` creates the directory (its parent must
    /// exist) and marks it as a lifeboat remote; nothing is pushed to an
    /// unmarked directory.
    pub fn set_up_remote(&self) {
        let out = self.run(&["doctor", "--fix"]);
        assert!(out.status.success(), "doctor --fix: {}", text(&out));
    }

    /// Run lifeboat and return its output.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run lifeboat")
    }

    /// The archives in the backup dir (names), sorted.
    pub fn archives(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.backup_dir())
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

    pub fn last_run(&self) -> serde_json::Value {
        let bytes =
            std::fs::read(self.backup_dir().join("last_run.json")).expect("last_run.json exists");
        serde_json::from_slice(&bytes).expect("last_run.json is JSON")
    }
}

/// Stdout and stderr together, for assertion messages.
pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Create a small SQLite database at `path` with `sql`.
pub fn sqlite(path: &Path, sql: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

/// `dir` and everything under it, directories included (links not followed).
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    if dir.is_dir() {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            out.extend(walk(&e.path()));
        }
    }
    out
}
