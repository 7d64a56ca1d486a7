//! Several remotes at once (3-2-1): a directory, GitHub (the emulator, the
//! real gh) and rclone (the real rclone, its local backend). Each remote
//! has its own queue: one that is down (an unmounted drive, GitHub
//! answering 500s) holds up nothing for the others, warns by name in
//! `health` and the metrics, and catches up when it comes back; each
//! remote's retention converges on the same set of snapshots. A restore
//! takes the first remote that serves an intact copy; `sync` fills a
//! remote added later.

use crate::support::faketime::with_clock;
use crate::support::gh::{Emulator, GhBin, gh_bins, github_config};
use crate::support::obs::{json, parse_prometheus, sample};
use crate::support::{App, sqlite, text};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Each remote keeps the two newest hourly snapshots, nothing else.
const POLICY: &str =
    "[retention]\nhourly = 2\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n";

struct Three {
    app: App,
    emu: Emulator,
    drive: tempfile::TempDir,
    bucket: tempfile::TempDir,
}

impl Three {
    fn dir(&self) -> PathBuf {
        self.drive.path().join("lifeboat")
    }

    fn rclone_dir(&self) -> PathBuf {
        self.bucket.path().join("lifeboat")
    }

    fn run_at(&self, args: &[&str], offset: &str) -> Output {
        let mut cmd = self.app.cmd(args);
        self.emu.env(&mut cmd);
        with_clock(&mut cmd, offset).output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.app.cmd(args);
        self.emu.env(&mut cmd);
        cmd.output().unwrap()
    }

    /// Tags on each remote, independently of lifeboat.
    fn on_dir(&self) -> BTreeSet<String> {
        tags_in(&self.dir())
    }

    fn on_rclone(&self) -> BTreeSet<String> {
        tags_in(&self.rclone_dir())
    }

    fn on_github(&self) -> BTreeSet<String> {
        self.emu.repo_state()["releases"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|r| r["draft"] == false)
            .map(|r| r["tag_name"].as_str().unwrap().to_string())
            .collect()
    }

    fn local(&self) -> BTreeSet<String> {
        self.app
            .archives()
            .iter()
            .map(|n| n.trim_end_matches(".tar.gz").to_string())
            .collect()
    }
}

fn tags_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()?
                        .strip_suffix(".tar.gz")
                        .filter(|n| n.starts_with("snap-"))
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn rclone_installed() -> bool {
    let ok = std::process::Command::new("rclone")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok && std::env::var("LIFEBOAT_REQUIRE_RCLONE").is_ok_and(|v| v == "1") {
        panic!("LIFEBOAT_REQUIRE_RCLONE=1 and rclone is not installed");
    }
    ok
}

fn three(gh: &GhBin) -> Three {
    let emu = Emulator::start();
    let drive = tempfile::tempdir().unwrap();
    let bucket = tempfile::tempdir().unwrap();
    let app = App::new();
    sqlite(
        &app.data_dir().join("app.db"),
        "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3);",
    );
    let t = Three {
        app,
        emu,
        drive,
        bucket,
    };
    t.app.write_config(&format!(
        "installation = \"shop\"\n[[database]]\nname = \"app\"\npath = \"app.db\"\n{POLICY}\
         [remote.dir]\npath = \"{}\"\n[remote.rclone]\nremote = \"{}\"\ntimeout = \"30s\"\nbackoff = \"10ms\"\nattempts = 2\n{}",
        t.dir().display(),
        t.rclone_dir().display(),
        github_config(&gh.path, "30s")
    ));
    let out = t.run(&["doctor", "--fix"]);
    assert!(out.status.success(), "{}", text(&out));
    t
}

#[test]
fn a_remote_that_is_down_holds_up_nothing_and_catches_up() {
    if !rclone_installed() {
        return;
    }
    let Some(gh) = gh_bins("several remotes").into_iter().next() else {
        return;
    };
    let t = three(&gh);
    let metrics = t.app.root().join("metrics.prom");
    let metrics_arg = metrics.to_str().unwrap().to_string();

    // Hour 1: every remote receives it.
    let out = t.run_at(&["--json", "snapshot"], "-6h");
    assert!(out.status.success(), "{}", text(&out));
    let rec = json(&out);
    let pushes = rec["pushes"].as_array().unwrap();
    let names: Vec<&str> = pushes
        .iter()
        .map(|p| p["remote"].as_str().unwrap())
        .collect();
    assert!(
        names[0].starts_with("dir:")
            && names[1].starts_with("github:")
            && names[2].starts_with("rclone:"),
        "nearest first: {names:?}"
    );
    assert!(pushes.iter().all(|p| p["status"] == "pushed"), "{rec:#}");
    let first = rec["snapshot"]["tag"].as_str().unwrap().to_string();
    for (what, on) in [
        ("dir", t.on_dir()),
        ("github", t.on_github()),
        ("rclone", t.on_rclone()),
    ] {
        assert!(on.contains(&first), "{what}: {on:?}");
    }

    // Hour 2: the drive is unplugged. The others still receive it; the run
    // fails naming the drive; health and the metrics say which remote.
    let parked = t.drive.path().join("unplugged");
    std::fs::rename(t.dir(), &parked).unwrap();
    let out = t.run_at(&["--metrics-file", &metrics_arg, "snapshot"], "-5h");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("not pushed to dir:"), "{}", text(&out));
    let second = t.app.last_run()["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(t.on_github().contains(&second) && t.on_rclone().contains(&second));
    let health = t.run(&["health"]);
    let said = text(&health);
    assert!(
        said.contains("to dir:") && said.contains("failed") && said.contains("it is on github:"),
        "{said}"
    );
    let prom = parse_prometheus(&metrics);
    let dir_remote = format!("dir:{}", t.dir().display());
    assert_eq!(
        sample(
            &prom,
            "lifeboat_remote_push_success",
            &[("remote", &dir_remote)]
        ),
        0.0
    );
    assert_eq!(
        sample(
            &prom,
            "lifeboat_remote_push_success",
            &[("remote", &format!("github:{}", crate::support::gh::REPO))]
        ),
        1.0
    );

    // Hour 3: back. The drive catches up on what it missed.
    std::fs::rename(&parked, t.dir()).unwrap();
    let out = t.run_at(&["snapshot"], "-4h");
    assert!(out.status.success(), "{}", text(&out));
    assert!(t.on_dir().contains(&second), "{:?}", t.on_dir());

    // Hours 4-5: GitHub answers 500 to every release creation, then recovers.
    t.emu.faults(serde_json::json!([
        {"op": "release_create", "times": 0, "action": "status", "status": 500}
    ]));
    let out = t.run_at(&["snapshot"], "-3h");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let fourth = t.app.last_run()["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(t.on_dir().contains(&fourth) && t.on_rclone().contains(&fourth));
    assert!(!t.on_github().contains(&fourth));
    t.emu.faults(serde_json::json!([]));
    let out = t.run_at(&["snapshot"], "-2h");
    assert!(out.status.success(), "{}", text(&out));

    // Converged: every remote, and the local directory, keep the same two.
    let local = t.local();
    assert_eq!(local.len(), 2, "{local:?}");
    assert_eq!(t.on_dir(), local);
    assert_eq!(t.on_github(), local);
    assert_eq!(t.on_rclone(), local);
    let health = t.run(&["health"]);
    assert!(!text(&health).contains("failed"), "{}", text(&health));

    // list says where each snapshot lives.
    let out = t.run(&["--json", "list"]);
    assert!(out.status.success(), "{}", text(&out));
    let listed = json(&out);
    for row in listed["snapshots"].as_array().unwrap() {
        assert_eq!(
            row["on"],
            serde_json::json!(["local", "dir", "github", "rclone"]),
            "{row:#}"
        );
    }
}

#[test]
fn a_restore_takes_the_first_remote_that_serves_it_and_sync_fills_a_new_one() {
    if !rclone_installed() {
        return;
    }
    let Some(gh) = gh_bins("several remotes: restore and sync")
        .into_iter()
        .next()
    else {
        return;
    };
    let t = three(&gh);
    let out = t.run(&["--json", "snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let tag = json(&out)["snapshot"]["tag"].as_str().unwrap().to_string();

    // A fresh machine: no local archive; the drive is not plugged in, so
    // the restore goes on to GitHub, the next remote.
    std::fs::remove_dir_all(t.app.backup_dir()).unwrap();
    std::fs::remove_file(t.app.data_dir().join("app.db")).unwrap();
    let parked = t.drive.path().join("unplugged");
    std::fs::rename(t.dir(), &parked).unwrap();
    let out = t.run(&["restore", "latest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("trying the next remote"),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains("github:"), "{}", text(&out));
    let count: i64 = rusqlite::Connection::open(t.app.data_dir().join("app.db"))
        .unwrap()
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(count, 3);
    std::fs::rename(&parked, t.dir()).unwrap();
    // Or from one named remote.
    let out = t.run(&["restore", &tag, "--from", "rclone", "--force"]);
    assert!(out.status.success(), "{}", text(&out));

    // A remote added later lacks what was taken before: sync fills it.
    let out = t.run(&["backup-now"]);
    assert!(out.status.success(), "{}", text(&out));
    let mine = t.local();
    std::fs::remove_dir_all(t.rclone_dir()).unwrap();
    let out = t.run(&["doctor", "--fix"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(t.on_rclone().is_empty());
    let out = t.run(&["sync", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(t.on_rclone().is_empty(), "a dry run pushes nothing");
    let out = t.run(&["--json", "sync"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = json(&out);
    let rclone = report["remotes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "rclone")
        .unwrap()
        .clone();
    assert_eq!(
        rclone["missing"].as_array().unwrap().len(),
        mine.len(),
        "{report:#}"
    );
    assert_eq!(t.on_rclone(), mine);
    // The others lacked nothing.
    for r in report["remotes"].as_array().unwrap() {
        if r["name"] != "rclone" {
            assert!(r["missing"].as_array().unwrap().is_empty(), "{report:#}");
        }
    }
}

/// Two installations share all three remotes for a simulated day and a
/// half, both running in the same second every hour: each remote ends up
/// holding exactly each installation's own policy's snapshots (what each
/// keeps locally), neither deletes the other's, and each drill judges its
/// own data.
#[test]
fn two_installations_share_three_remotes_for_a_day_and_a_half() {
    if !rclone_installed() {
        return;
    }
    let Some(gh) = gh_bins("two installations, three remotes")
        .into_iter()
        .next()
    else {
        return;
    };
    let a = three(&gh);
    // B: its own machine, the same three remotes (and the same emulator).
    let b = App::new();
    sqlite(
        &b.data_dir().join("app.db"),
        "CREATE TABLE t(x); INSERT INTO t VALUES ('b');",
    );
    let config = std::fs::read_to_string(a.app.config_path())
        .unwrap()
        .replace("installation = \"shop\"", "installation = \"blog\"")
        .replace("hourly = 2\ndaily = 0", "hourly = 3\ndaily = 2");
    std::fs::write(b.config_path(), config).unwrap();
    let policy = std::fs::read_to_string(a.app.config_path())
        .unwrap()
        .replace("hourly = 2\ndaily = 0", "hourly = 4\ndaily = 2");
    std::fs::write(a.app.config_path(), policy).unwrap();
    let cmd = |app: &App, args: &[&str], offset: &str| {
        let mut c = app.cmd(args);
        a.emu.env(&mut c);
        with_clock(&mut c, offset);
        c
    };
    for hours_ago in (1..=36).rev() {
        let offset = format!("-{hours_ago}h");
        let runs: Vec<_> = [&a.app, &b]
            .iter()
            .map(|app| cmd(app, &["snapshot"], &offset).spawn().unwrap())
            .collect();
        for run in runs {
            let out = run.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", text(&out));
        }
    }
    let local = |app: &App| -> BTreeSet<String> {
        app.archives()
            .iter()
            .map(|n| n.trim_end_matches(".tar.gz").to_string())
            .collect()
    };
    let (mine, theirs) = (local(&a.app), local(&b));
    // Each its own policy: 4 hourly (+ a daily one) against 3 (+ one);
    // how many dailies the hourly ones cover depends on the time of day.
    assert!((4..=6).contains(&mine.len()), "{mine:?}");
    assert!((3..=5).contains(&theirs.len()), "{theirs:?}");
    assert!(mine.iter().all(|t| t.starts_with("snap-shop-")));
    assert!(theirs.iter().all(|t| t.starts_with("snap-blog-")));
    let both: BTreeSet<String> = mine.union(&theirs).cloned().collect();
    assert_eq!(a.on_dir(), both, "dir");
    assert_eq!(a.on_github(), both, "github");
    assert_eq!(a.on_rclone(), both, "rclone");
    // Each drill judges its own data.
    let out = cmd(&b, &["--json", "drill"], "+0").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        json(&out)["tag"]
            .as_str()
            .unwrap()
            .starts_with("snap-blog-"),
        "{}",
        text(&out)
    );
}

/// With several remotes, one that cannot be listed is never taken for
/// "no snapshot": a first boot with the drive unplugged fails instead of
/// starting with empty databases; `latest --from NAME` chooses from that
/// remote's own listing; `prune` sweeps the remotes it can list and names
/// the one it could not (found by review).
#[test]
fn a_remote_that_cannot_be_listed_is_never_taken_for_no_snapshot() {
    if !rclone_installed() {
        return;
    }
    let Some(gh) = gh_bins("several remotes: one unlisted").into_iter().next() else {
        return;
    };
    let t = three(&gh);
    // A snapshot only the drive has (GitHub and rclone refuse it this run).
    t.emu.faults(serde_json::json!([
        {"op": "release_create", "times": 0, "action": "status", "status": 500}
    ]));
    std::fs::rename(t.rclone_dir(), t.bucket.path().join("gone")).unwrap();
    let out = t.run(&["--json", "snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let only_on_dir = json(&out)["snapshot"]["tag"].as_str().unwrap().to_string();
    std::fs::rename(t.bucket.path().join("gone"), t.rclone_dir()).unwrap();
    t.emu.faults(serde_json::json!([]));
    assert!(t.on_dir().contains(&only_on_dir));

    // `latest --from rclone` is rclone's newest, not the drive's.
    let out = t.run(&["restore", "latest", "--from", "rclone", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        !text(&out).contains(&only_on_dir) || text(&out).contains("no snapshot"),
        "{}",
        text(&out)
    );

    // A first boot with the drive unplugged: not "nothing to restore".
    std::fs::remove_dir_all(t.app.backup_dir()).unwrap();
    std::fs::remove_file(t.app.data_dir().join("app.db")).unwrap();
    let parked = t.drive.path().join("unplugged");
    std::fs::rename(t.dir(), &parked).unwrap();
    let out = t.run(&["restore", "latest", "--if-missing", "--allow-empty"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("cannot list dir:"), "{}", text(&out));
    assert!(!t.app.data_dir().join("app.db").exists());

    // prune sweeps what it can list and names what it could not.
    let out = t.run(&["--json", "prune", "--remote", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = json(&out);
    assert!(
        !report["remotes"].as_array().unwrap().is_empty(),
        "the others were still swept: {report:#}"
    );
    assert!(text(&out).contains("dir:"), "{}", text(&out));
    std::fs::rename(&parked, t.dir()).unwrap();
}
