//! Stopping lifeboat in the middle of a push, with the real `gh` (every
//! installed version) against the GitHub emulator, whose upload stalls: no
//! gh may outlive lifeboat (issue 14: an orphaned gh deleted a release that
//! the next run had confirmed).
//!
//! Ctrl-C (SIGINT): lifeboat kills gh, records the run as interrupted, exits
//! 130 and leaves the snapshot queued. SIGKILL: lifeboat cannot react; the
//! kernel kills gh with it (the parent-death signal). Either way the next
//! run pushes the snapshot, and it stays published after the stall would
//! have ended, i.e. after a surviving gh would have acted.

use crate::support::gh::{Emulator, GhBin, gh_bins, github_config};
use crate::support::{App, sqlite, text};
use serde_json::json;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// How long the first upload stalls: long enough to signal lifeboat and run
/// it again, short enough that the test then sees what a gh that survived
/// would do once the stall ends.
const STALL_SECS: u64 = 15;

/// An app with one database, a `[github]` remote whose timeout never fires
/// during the test, and retention that keeps every snapshot (both runs fall
/// in one hour).
fn app(gh: &Path) -> App {
    let app = App::new();
    sqlite(
        &app.data_dir().join("app.db"),
        "CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3);",
    );
    app.write_config(&format!(
        "[[database]]\nname = \"app\"\npath = \"app.db\"\n{}\
         [retention]\nhourly = 0\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n",
        github_config(gh, "300s")
    ));
    app
}

/// A lifeboat started in the background, its output going to files (a pipe
/// nobody reads could block it).
struct Running {
    child: Child,
    out: tempfile::NamedTempFile,
    err: tempfile::NamedTempFile,
}

impl Running {
    fn start(app: &App, emu: &Emulator, args: &[&str]) -> Running {
        let out = tempfile::NamedTempFile::new().unwrap();
        let err = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = app.cmd(args);
        emu.env(&mut cmd);
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.reopen().unwrap())
            .stderr(err.reopen().unwrap())
            .spawn()
            .expect("start lifeboat");
        Running { child, out, err }
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) on our own child, not yet reaped (so the pid is
        // still its own).
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0);
    }

    /// What it wrote on stderr so far.
    fn stderr(&self) -> String {
        std::fs::read_to_string(self.err.path()).unwrap_or_default()
    }

    /// Wait for the exit (at most `limit`; killed and failed beyond).
    fn wait(mut self, limit: Duration) -> (std::process::ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("lifeboat did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let output = format!(
            "status: {status:?}\nstdout:\n{}\nstderr:\n{}",
            std::fs::read_to_string(self.out.path()).unwrap_or_default(),
            self.stderr()
        );
        (status, output)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Live processes (zombies excluded) other than `except` that carry this
/// emulator's proxy in their environment: the gh processes lifeboat
/// started for this test, and nothing of any other test's.
fn gh_processes(emu: &Emulator, except: libc::pid_t) -> Vec<String> {
    let proxy = format!("HTTP_PROXY=http://127.0.0.1:{}", emu.port);
    let mut found = vec![];
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<libc::pid_t>() else {
            continue;
        };
        if pid == except {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ
            .split(|b| *b == 0)
            .any(|var| var == proxy.as_bytes())
        {
            continue;
        }
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or("?");
        if state == "Z" || stat.is_empty() {
            continue;
        }
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        found.push(format!(
            "{pid} [{state}] {}",
            String::from_utf8_lossy(&cmdline).replace('\0', " ")
        ));
    }
    found
}

/// Poll `ready` every 20 ms for up to `limit`.
fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Start `lifeboat snapshot` with the first upload stalled; return it once
/// the upload is under way (and gh is seen running it), with that time.
fn start_stalled_push(app: &App, emu: &Emulator, gh: &GhBin) -> (Running, Instant) {
    emu.faults(json!([
        {"op": "upload", "nth": 1, "times": 1, "action": "stall", "seconds": STALL_SECS}
    ]));
    let running = Running::start(app, emu, &["snapshot"]);
    wait_until(
        Duration::from_secs(60),
        &format!("{}: the upload starts", gh.version),
        || emu.count("upload") >= 1,
    );
    let stalled_at = Instant::now();
    let procs = gh_processes(emu, running.pid());
    assert!(
        !procs.is_empty(),
        "{}: gh is uploading (the process check can see it)",
        gh.version
    );
    (running, stalled_at)
}

fn pending_marker(app: &App, tag: &str) -> std::path::PathBuf {
    app.backup_dir().join(format!("{tag}.pending-push.github"))
}

/// The archive of `tag` in the backup directory: its name and bytes.
fn archive_of(app: &App, tag: &str) -> (String, Vec<u8>) {
    let name = app
        .archives()
        .into_iter()
        .find(|n| n.starts_with(&format!("{tag}.tar.")))
        .unwrap_or_else(|| panic!("no local archive for {tag}"));
    let bytes = std::fs::read(app.backup_dir().join(&name)).unwrap();
    (name, bytes)
}

/// `tag` has one release, published, holding its local archive (name and
/// size; the digest is `remote.rs`'s concern).
fn assert_published(app: &App, emu: &Emulator, gh: &GhBin, tag: &str, when: &str) {
    let rels = emu.releases_for(tag);
    assert_eq!(
        rels.len(),
        1,
        "{} {when}: one release for {tag}: {rels:#?}",
        gh.version
    );
    assert_eq!(rels[0]["draft"], false, "{} {when}: published", gh.version);
    let (name, bytes) = archive_of(app, tag);
    let assets = rels[0]["assets"].as_array().unwrap();
    assert!(
        assets
            .iter()
            .any(|a| a["name"] == name.as_str() && a["size"] == bytes.len() as u64),
        "{} {when}: {tag} holds {name} ({} bytes): {assets:#?}",
        gh.version,
        bytes.len()
    );
}

/// After the interrupted run: the next snapshot pushes the queued one
/// first, the remote and `last_run.json` agree, and nothing changes once
/// the stall is over (no late gh).
fn next_run_converges(app: &App, emu: &Emulator, gh: &GhBin, first: &str, stalled_at: Instant) {
    emu.faults(json!([]));
    std::thread::sleep(Duration::from_millis(1100)); // a new tag second
    let mut cmd = app.cmd(&["snapshot"]);
    emu.env(&mut cmd);
    let out = cmd.output().expect("run lifeboat");
    assert!(out.status.success(), "{}: {}", gh.version, text(&out));
    let record = app.last_run();
    let second = record["snapshot"]["tag"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!(record["status"], "success", "{}: {record:#}", gh.version);
    assert_eq!(
        record["push"]["pushed"],
        json!([first, second]),
        "{}: the queued snapshot first",
        gh.version
    );
    assert!(
        !pending_marker(app, first).exists(),
        "{}: confirmed, so no longer queued",
        gh.version
    );
    assert_published(app, emu, gh, first, "after the next run");
    assert_published(app, emu, gh, &second, "after the next run");

    // A gh that survived would act when its stalled upload ends: wait past
    // that, then the remote must still hold what the record says.
    let quiet_until = stalled_at + Duration::from_secs(STALL_SECS + 4);
    std::thread::sleep(quiet_until.saturating_duration_since(Instant::now()));
    assert_eq!(
        gh_processes(emu, 0),
        Vec::<String>::new(),
        "{}: no gh left",
        gh.version
    );
    assert_published(app, emu, gh, first, "after the stall");
    assert_published(app, emu, gh, &second, "after the stall");
    assert_eq!(app.last_run()["push"]["pushed"], json!([first, second]));
}

#[test]
fn ctrl_c_during_a_stalled_upload_stops_gh_and_records_the_run() {
    for gh in gh_bins("ctrl_c_during_a_stalled_upload_stops_gh_and_records_the_run") {
        let emu = Emulator::start();
        let app = app(&gh.path);
        let (running, stalled_at) = start_stalled_push(&app, &emu, &gh);
        let pid = running.pid();
        running.signal(libc::SIGINT);
        let (status, output) = running.wait(Duration::from_secs(30));
        assert_eq!(status.code(), Some(130), "{}: {output}", gh.version);
        // Stopped by lifeboat, not by the stall ending (gh giving up).
        assert!(
            stalled_at.elapsed() < Duration::from_secs(STALL_SECS),
            "{}: lifeboat waited for the stalled upload",
            gh.version
        );
        assert!(
            output.contains("interrupted by SIGINT"),
            "{}: {output}",
            gh.version
        );
        // lifeboat waited for gh before it exited: nothing left, at once.
        assert_eq!(
            gh_processes(&emu, pid),
            Vec::<String>::new(),
            "{}: gh outlived lifeboat",
            gh.version
        );

        let record = app.last_run();
        assert_eq!(record["status"], "failed", "{}: {record:#}", gh.version);
        assert_eq!(record["error"]["kind"], "interrupted", "{}", gh.version);
        assert_eq!(record["push"]["status"], "failed", "{}", gh.version);
        assert_eq!(record["push"]["error"]["kind"], "interrupted");
        assert_eq!(record["runs"]["snapshot"]["status"], "failed");
        let first = record["snapshot"]["tag"].as_str().unwrap().to_string();
        assert!(
            pending_marker(&app, &first).exists(),
            "{}: the snapshot stays queued",
            gh.version
        );
        // The stopped gh created a draft at most; nothing was published.
        assert!(
            emu.releases_for(&first).iter().all(|r| r["draft"] == true),
            "{}",
            gh.version
        );

        next_run_converges(&app, &emu, &gh, &first, stalled_at);
    }
}

#[test]
fn sigkill_during_a_stalled_upload_takes_gh_with_it() {
    for gh in gh_bins("sigkill_during_a_stalled_upload_takes_gh_with_it") {
        let emu = Emulator::start();
        let app = app(&gh.path);
        let (running, stalled_at) = start_stalled_push(&app, &emu, &gh);
        let pid = running.pid();
        running.signal(libc::SIGKILL);
        let (status, output) = running.wait(Duration::from_secs(30));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{output}");
        // The kernel kills gh as lifeboat dies (within moments).
        wait_until(
            Duration::from_secs(10),
            &format!("{}: gh dies with lifeboat", gh.version),
            || gh_processes(&emu, pid).is_empty(),
        );

        // No record of the killed run; its snapshot is queued.
        assert!(
            !app.backup_dir().join("last_run.json").exists(),
            "{}",
            gh.version
        );
        let queued: Vec<String> = std::fs::read_dir(app.backup_dir())
            .unwrap()
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_string_lossy()
                    .strip_suffix(".pending-push.github")
                    .map(str::to_string)
            })
            .collect();
        assert_eq!(queued.len(), 1, "{}: {queued:?}", gh.version);
        let first = queued[0].clone();
        // ...and its archive is there to be pushed (panics if not).
        archive_of(&app, &first);

        next_run_converges(&app, &emu, &gh, &first, stalled_at);
    }
}

#[test]
fn repeated_signals_stop_once_with_the_first_ones_exit_code() {
    // One gh version suffices: this is about lifeboat's handling.
    let Some(gh) = gh_bins("repeated_signals_stop_once_with_the_first_ones_exit_code")
        .into_iter()
        .next()
    else {
        return;
    };
    let emu = Emulator::start();
    let app = app(&gh.path);
    emu.faults(json!([
        {"op": "release_list", "nth": 1, "times": 1, "action": "stall", "seconds": 60}
    ]));
    let running = Running::start(&app, &emu, &["snapshot"]);
    wait_until(Duration::from_secs(60), "the listing starts", || {
        emu.count("release_list") >= 1
    });
    let pid = running.pid();
    // Ctrl-C, then, once lifeboat has said it is stopping (its handler
    // writes that line after taking note of the signal), more stops: they
    // change nothing.
    running.signal(libc::SIGINT);
    wait_until(Duration::from_secs(30), "the stop is acknowledged", || {
        running.stderr().contains("lifeboat: interrupted")
    });
    running.signal(libc::SIGTERM);
    running.signal(libc::SIGINT);
    let (status, output) = running.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(130), "{output}");
    assert_eq!(gh_processes(&emu, pid), Vec::<String>::new());
    let record = app.last_run();
    assert_eq!(record["error"]["kind"], "interrupted", "{record:#}");
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted by SIGINT"),
        "{record:#}"
    );
    let tag = record["snapshot"]["tag"].as_str().unwrap();
    assert!(pending_marker(&app, tag).exists());
    assert_eq!(emu.count("release_create"), 0, "stopped before creating");
}
