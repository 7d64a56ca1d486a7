//! Fixtures for tests against the real `gh`: the gh binaries to test with,
//! the GitHub Releases emulator (`gh_emulator.py`), and the environment
//! that points gh at it.
//!
//! gh binaries: `$LIFEBOAT_TEST_GH` (a `:`-separated list), else
//! `/usr/bin/gh` and `/opt/lifeboat-gh/bin/gh` (see `.ci/install-gh.sh`).
//! A missing gh (or python3) skips the test with a message on stderr, unless
//! `LIFEBOAT_REQUIRE_GH=1`, which makes it fail (CI sets it).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const REPO: &str = "o/r";
const DEFAULT_GH: &[&str] = &["/usr/bin/gh", "/opt/lifeboat-gh/bin/gh"];

/// One gh binary under test.
#[derive(Debug, Clone)]
pub struct GhBin {
    pub path: PathBuf,
    /// `gh version 2.23.0 (...)`, for assertion messages.
    pub version: String,
}

fn required() -> bool {
    std::env::var("LIFEBOAT_REQUIRE_GH").is_ok_and(|v| v == "1")
}

/// The gh binaries to run a test against; empty means "skip" (after a
/// visible message), and a missing one panics under `LIFEBOAT_REQUIRE_GH=1`.
pub fn gh_bins(test: &str) -> Vec<GhBin> {
    let wanted: Vec<PathBuf> = match std::env::var("LIFEBOAT_TEST_GH") {
        Ok(list) if !list.is_empty() => list.split(':').map(PathBuf::from).collect(),
        _ => DEFAULT_GH.iter().map(PathBuf::from).collect(),
    };
    let python = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for path in wanted {
        match Command::new(&path).arg("--version").output() {
            Ok(out) if out.status.success() && python => found.push(GhBin {
                version: String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
                path,
            }),
            _ => missing.push(path.display().to_string()),
        }
    }
    if !python {
        missing.push("python3 (runs the GitHub emulator)".into());
    }
    if !missing.is_empty() {
        let msg = format!(
            "{test}: missing {}; install with .ci/install-gh.sh (or set LIFEBOAT_TEST_GH)",
            missing.join(", ")
        );
        if required() {
            panic!("LIFEBOAT_REQUIRE_GH=1 and {msg}");
        }
        // Straight to the process's stderr: the test harness captures
        // `eprintln!` of passing tests, and a skip must be seen.
        let _ = writeln!(std::io::stderr(), "SKIPPED (partly or wholly) {msg}");
    }
    found
}

/// A running emulator; killed when dropped.
pub struct Emulator {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Emulator {
    /// Start the emulator with the repository `o/r` (private, not empty).
    pub fn start() -> Emulator {
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/gh_emulator.py");
        let mut child = Command::new("python3")
            .arg(&script)
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .args(["--repo", REPO])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start python3 gh_emulator.py");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("emulator did not start: {line:?}"));
        let emu = Emulator { child, port, dir };
        std::fs::create_dir_all(emu.gh_config_dir()).unwrap();
        emu
    }

    pub fn gh_config_dir(&self) -> PathBuf {
        self.dir.path().join("gh-config")
    }

    /// Point a gh (or a lifeboat that runs gh) at this emulator.
    pub fn env(&self, cmd: &mut Command) {
        for var in [
            "GITHUB_TOKEN",
            "GH_ENTERPRISE_TOKEN",
            "GITHUB_ENTERPRISE_TOKEN",
            "http_proxy",
            "https_proxy",
            "HTTPS_PROXY",
            "no_proxy",
            "GH_REPO",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("GH_HOST", "github.localhost")
            .env("GH_TOKEN", "lifeboat-test-token")
            .env("GH_CONFIG_DIR", self.gh_config_dir())
            .env("HTTP_PROXY", format!("http://127.0.0.1:{}", self.port))
            .env("NO_PROXY", "");
    }

    /// A wrapper script that runs `gh` with this emulator's environment, for
    /// tests that drive the library in-process (no global env changes).
    pub fn wrapper(&self, gh: &GhBin) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let name = gh.path.to_string_lossy().replace('/', "_");
        let path = self.dir.path().join(format!("gh{name}.sh"));
        let script = format!(
            "#!/bin/sh\nunset GITHUB_TOKEN GH_ENTERPRISE_TOKEN GITHUB_ENTERPRISE_TOKEN http_proxy no_proxy GH_REPO\n\
             export GH_HOST=github.localhost GH_TOKEN=lifeboat-test-token GH_CONFIG_DIR='{}' \
             HTTP_PROXY='http://127.0.0.1:{}' NO_PROXY=''\nexec '{}' \"$@\"\n",
            self.gh_config_dir().display(),
            self.port,
            gh.path.display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// One request to a control endpoint; returns the body (panics on non-2xx).
    pub fn control(&self, method: &str, path: &str, body: &str) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "{method} /_control/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        assert!(head.contains(" 200 "), "control {method} {path}: {head}");
        body.to_string()
    }

    pub fn faults(&self, rules: serde_json::Value) {
        self.control("POST", "faults", &rules.to_string());
    }

    pub fn settings(&self, settings: serde_json::Value) {
        self.control("POST", "settings", &settings.to_string());
    }

    pub fn set_repo(&self, private: bool, empty: bool) {
        self.control(
            "POST",
            "repo",
            &serde_json::json!({"repo": REPO, "private": private, "empty": empty}).to_string(),
        );
    }

    pub fn delete_repo(&self) {
        self.control("DELETE", &format!("repo/{REPO}"), "");
    }

    /// Add a release directly (draft or not) with the given assets.
    pub fn add_release(&self, tag: &str, draft: bool, assets: &[(&str, &[u8])]) -> u64 {
        let assets: Vec<serde_json::Value> = assets
            .iter()
            .map(|(name, bytes)| {
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                serde_json::json!({"name": name, "hex": hex})
            })
            .collect();
        let out = self.control(
            "POST",
            "release",
            &serde_json::json!({"repo": REPO, "tag": tag, "draft": draft, "assets": assets})
                .to_string(),
        );
        serde_json::from_str::<serde_json::Value>(&out).unwrap()["id"]
            .as_u64()
            .unwrap()
    }

    /// The repository's state: `{"releases": [...], "tags": [...], ...}`.
    pub fn repo_state(&self) -> serde_json::Value {
        let state: serde_json::Value =
            serde_json::from_str(&self.control("GET", "state", "")).unwrap();
        state[REPO].clone()
    }

    /// The releases of `o/r` with this tag (drafts included).
    pub fn releases_for(&self, tag: &str) -> Vec<serde_json::Value> {
        self.repo_state()["releases"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r["tag_name"] == tag)
            .collect()
    }

    /// Every request the emulator saw, one line each.
    pub fn log(&self) -> String {
        self.control("GET", "log", "")
    }

    /// How many requests of `op` the emulator saw.
    pub fn count(&self, op: &str) -> usize {
        self.log()
            .lines()
            .filter(|l| l.ends_with(&format!(" op={op}")))
            .count()
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `[github]` section for a config using this gh.
pub fn github_config(gh: &Path, timeout: &str) -> String {
    format!(
        "[github]\nrepo = \"{REPO}\"\ngh = \"{}\"\ntimeout = \"{timeout}\"\nbackoff = \"10ms\"\n",
        gh.display()
    )
}
