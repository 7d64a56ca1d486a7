//! Setting lifeboat up and living with it: `version` (and `--version`),
//! shell completions loaded by a real bash, the man page rendered by a real
//! `man -l`, `init` followed by `doctor` and `snapshot`, the `[notify]`
//! hooks run as real processes (success, failure, recovery, a failing hook,
//! a hanging hook), and provenance under a parent repository.

use crate::support::obs::{self, expect, json, stdout, tasks_app};
use crate::support::{App, lifeboat_bin, sqlite, text};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

#[test]
fn version_names_build_sqlite_and_the_tools_on_path() {
    let bin = tempfile::tempdir().unwrap();
    script(bin.path(), "gh", "echo 'gh version 9.8.7 (test)'");
    let run = |args: &[&str]| {
        Command::new(lifeboat_bin())
            .args(args)
            .env("PATH", bin.path())
            .output()
            .unwrap()
    };
    let out = run(&["version", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v = json(&out);
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let commit = v["commit"].as_str().unwrap();
    assert!(
        commit == "unknown"
            || (commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
        "{commit}"
    );
    let sqlite_version = v["sqlite"].as_str().unwrap();
    assert!(sqlite_version.starts_with("3."), "{sqlite_version}");
    assert!(v["target"].as_str().unwrap().contains("linux"), "{v}");
    assert_eq!(v["tools"][0]["name"], "gh");
    assert_eq!(v["tools"][0]["version"], "gh version 9.8.7 (test)");
    assert_eq!(v["tools"][1]["name"], "rclone");
    assert!(v["tools"][1]["path"].is_null(), "{v}");

    // --version is the same report as text.
    let out = run(&["--version"]);
    assert!(out.status.success(), "{}", text(&out));
    let t = stdout(&out);
    assert!(
        t.starts_with(&format!("lifeboat {}\n", env!("CARGO_PKG_VERSION"))),
        "{t}"
    );
    assert!(t.contains(&format!("sqlite:  {sqlite_version}")), "{t}");
    assert!(t.contains("gh version 9.8.7"), "{t}");
    assert!(t.contains("rclone:  not found"), "{t}");

    // A tool that hangs is given up on after a short timeout.
    script(bin.path(), "gh", "sleep 60");
    let started = Instant::now();
    let out = run(&["version", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(json(&out)["tools"][0]["version"].is_null());
}

#[test]
fn bash_loads_the_completions() {
    let cmd = format!(
        "source <('{}' completions bash) && complete -p lifeboat",
        lifeboat_bin().display()
    );
    let out = Command::new("bash").args(["-c", &cmd]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let t = stdout(&out);
    assert!(
        t.contains("complete") && t.trim_end().ends_with(" lifeboat"),
        "{t}"
    );
    // The completion function knows the subcommands.
    let out = Command::new(lifeboat_bin())
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = stdout(&out);
    for sub in ["snapshot", "restore", "init", "completions"] {
        assert!(script.contains(sub), "{sub} missing");
    }
}

#[test]
fn man_renders_the_man_page() {
    let has_man = Command::new("man")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_man {
        assert!(
            std::env::var_os("LIFEBOAT_REQUIRE_MAN").is_none(),
            "man is required (LIFEBOAT_REQUIRE_MAN is set) but not installed"
        );
        eprintln!("SKIPPED man_renders_the_man_page: `man` is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("lifeboat.1");
    let out = Command::new(lifeboat_bin()).arg("man").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    std::fs::write(&page, &out.stdout).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let t = String::from_utf8_lossy(&out.stdout).replace(['\u{8}'], "");
    assert!(t.contains("NAME"), "{t}");
    assert!(t.contains("lifeboat"), "{t}");
    assert!(t.contains("SNAPSHOT") && t.contains("INIT"), "{t}");
    assert!(!t.contains(".SH"), "unrendered roff: {t}");
}

#[test]
fn init_then_doctor_then_snapshot() {
    let app = App::new();
    let data = app.root().join("srv");
    sqlite(
        &data.join("app.db"),
        "CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    );
    sqlite(
        &data.join("queue/Jobs Queue.sqlite3"),
        "PRAGMA journal_mode=WAL; CREATE TABLE j(x);",
    );
    // Not databases: a WAL-looking file, an SQLite header copy named -shm,
    // a text file, and anything under a hidden directory.
    std::fs::copy(data.join("app.db"), data.join("orphan.db-journal")).unwrap();
    std::fs::copy(data.join("app.db"), data.join("queue/x.db-shm")).unwrap();
    std::fs::write(data.join("notes.db"), "not sqlite").unwrap();
    std::fs::create_dir_all(data.join(".hidden")).unwrap();
    std::fs::copy(data.join("app.db"), data.join(".hidden/old.db")).unwrap();

    let remote = app.root().join("remote");
    let out = app.run(&[
        "init",
        "--scan",
        data.to_str().unwrap(),
        "--remote-dir",
        remote.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let t = stdout(&out);
    assert!(t.contains("doctor --fix"), "{t}");
    let written = std::fs::read_to_string(app.config_path()).unwrap();
    assert!(
        written.contains("name = \"app\"\npath = \"app.db\""),
        "{written}"
    );
    assert!(
        written.contains("name = \"jobs_queue\"\npath = \"queue/Jobs Queue.sqlite3\""),
        "{written}"
    );
    assert_eq!(written.matches("\n[[database]]\n").count(), 2, "{written}");
    assert!(written.contains("\n# "), "commented: {written}");

    // Never overwritten.
    let again = app.run(&[
        "init",
        "--db",
        &format!("x={}", data.join("app.db").display()),
    ]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    assert!(text(&again).contains("already exists"), "{}", text(&again));
    assert_eq!(std::fs::read_to_string(app.config_path()).unwrap(), written);

    expect(&app, &["doctor", "--fix"], 0);
    let tag = obs::snapshot(&app);
    let names: Vec<String> = std::fs::read_dir(&remote)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().any(|n| n.starts_with(&tag)), "{names:?}");
    expect(&app, &["verify", &tag], 0);
    // Every next step init printed is a command lifeboat accepts.
    for line in t.lines().filter_map(|l| l.trim().strip_prefix("lifeboat ")) {
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = std::process::Command::new(crate::support::lifeboat_bin())
            .args(&args)
            .current_dir(app.root())
            .output()
            .unwrap();
        assert!(out.status.code() != Some(2), "{line}: {}", text(&out));
    }
}

#[test]
fn init_with_named_databases_and_errors() {
    let app = App::new();
    let data = app.root().join("d");
    sqlite(&data.join("a/main.db"), "CREATE TABLE t(x);");
    sqlite(&data.join("b/aux.db"), "CREATE TABLE t(x);");
    let out = app.run(&[
        "init",
        "--db",
        &format!("main={}", data.join("a/main.db").display()),
        "--db",
        &format!("aux={}", data.join("b/aux.db").display()),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let written = std::fs::read_to_string(app.config_path()).unwrap();
    assert!(
        written.contains(&format!(
            "data_dir = \"{}\"",
            data.canonicalize().unwrap().display()
        )),
        "{written}"
    );
    assert!(
        written.contains("path = \"a/main.db\"") && written.contains("path = \"b/aux.db\""),
        "{written}"
    );
    expect(&app, &["doctor"], 1); // no remote configured: doctor says so
    obs::snapshot(&app);

    // A file that is not SQLite is refused, and nothing is written.
    let other = App::new();
    std::fs::write(other.root().join("x.db"), "hello").unwrap();
    let out = other.run(&[
        "init",
        "--db",
        &format!("x={}", other.root().join("x.db").display()),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!other.config_path().exists());
}

// ---------------------------------------------------------------------------
// [notify] hooks

/// A hook that writes its LIFEBOAT_* environment to `<dir>/<event>.env`.
fn env_hook(dir: &Path) -> String {
    format!(
        "[\"sh\", \"-c\", \"env | grep ^LIFEBOAT_ | sort > \\\"$0/$LIFEBOAT_EVENT.env\\\"\", \"{}\"]",
        dir.display()
    )
}

fn read_env(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn clear(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
}

#[test]
fn hooks_are_told_success_failure_and_recovery() {
    let out_dir = tempfile::tempdir().unwrap();
    let hook = env_hook(out_dir.path());
    let app = tasks_app(&format!(
        "[notify]\non_success = {hook}\non_failure = {hook}\non_recovery = {hook}\ntimeout = \"10s\"\n"
    ));

    let tag = obs::snapshot(&app);
    let env = read_env(&out_dir.path().join("success.env"));
    assert_eq!(env["LIFEBOAT_EVENT"], "success");
    assert_eq!(env["LIFEBOAT_STATUS"], "success");
    assert_eq!(env["LIFEBOAT_COMMAND"], "snapshot");
    assert_eq!(env["LIFEBOAT_TAG"], tag);
    assert_eq!(env["LIFEBOAT_ERROR"], "");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&env["LIFEBOAT_RECORD"]).unwrap()).unwrap();
    assert_eq!(record["status"], "success");
    assert!(!out_dir.path().join("failure.env").exists());
    assert!(!out_dir.path().join("recovery.env").exists());

    // Failure: the database is gone.
    clear(out_dir.path());
    let db = app.data_dir().join("db/tasks.db");
    let aside = app.root().join("tasks.db.aside");
    std::fs::rename(&db, &aside).unwrap();
    let out = app.run(&["backup-now"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let env = read_env(&out_dir.path().join("failure.env"));
    assert_eq!(env["LIFEBOAT_EVENT"], "failure");
    assert_eq!(env["LIFEBOAT_STATUS"], "failed");
    assert_eq!(env["LIFEBOAT_COMMAND"], "backup-now");
    assert!(env["LIFEBOAT_ERROR"].contains("tasks"), "{env:?}");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&env["LIFEBOAT_RECORD"]).unwrap()).unwrap();
    assert_eq!(record["status"], "failed");
    assert!(!out_dir.path().join("success.env").exists());

    // The next success is also a recovery; the one after is not.
    clear(out_dir.path());
    std::fs::rename(&aside, &db).unwrap();
    obs::take(&app, "backup-now");
    assert_eq!(
        read_env(&out_dir.path().join("success.env"))["LIFEBOAT_EVENT"],
        "success"
    );
    let env = read_env(&out_dir.path().join("recovery.env"));
    assert_eq!(env["LIFEBOAT_EVENT"], "recovery");
    assert_eq!(env["LIFEBOAT_STATUS"], "success");
    clear(out_dir.path());
    obs::take(&app, "backup-now");
    assert!(out_dir.path().join("success.env").exists());
    assert!(!out_dir.path().join("recovery.env").exists());
}

/// The daily drill is the run whose failure most needs a ping.
#[test]
fn a_failing_drill_tells_the_hooks_and_its_next_pass_is_a_recovery() {
    let out_dir = tempfile::tempdir().unwrap();
    let hook = env_hook(out_dir.path());
    let app = tasks_app(&format!(
        "[notify]\non_success = {hook}\non_failure = {hook}\non_recovery = {hook}\ntimeout = \"10s\"\n"
    ));
    let tag = obs::snapshot(&app);
    let archive = obs::archive_path(&app, &tag);
    let pristine = std::fs::read(&archive).unwrap();
    obs::flip_middle_byte(&archive);
    clear(out_dir.path());
    let out = app.run(&["drill"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let env = read_env(&out_dir.path().join("failure.env"));
    assert_eq!(env["LIFEBOAT_COMMAND"], "drill");
    assert_eq!(env["LIFEBOAT_TAG"], tag);
    assert!(env["LIFEBOAT_RECORD"].ends_with("drill.json"), "{env:?}");
    assert!(!env["LIFEBOAT_ERROR"].is_empty());

    clear(out_dir.path());
    std::fs::write(&archive, pristine).unwrap();
    let out = app.run(&["drill"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        read_env(&out_dir.path().join("recovery.env"))["LIFEBOAT_COMMAND"],
        "drill"
    );
}

#[test]
fn a_failing_hook_does_not_fail_the_run() {
    let app = tasks_app(
        "[notify]\non_success = [\"sh\", \"-c\", \"echo hook-broke >&2; exit 1\"]\n\
         on_failure = [\"/nonexistent/hook\"]\n",
    );
    let out = expect(&app, &["snapshot"], 0);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("notify hook failed") && err.contains("hook-broke"),
        "{err}"
    );
    assert_eq!(app.last_run()["status"], "success");
}

#[test]
fn a_hanging_hook_is_killed_at_the_timeout() {
    let marker = tempfile::tempdir().unwrap();
    let pidfile = marker.path().join("pid");
    let app = tasks_app(&format!(
        "[notify]\non_success = [\"sh\", \"-c\", \"sleep 300 & echo $! > {}; wait\"]\ntimeout = \"1s\"\n",
        pidfile.display()
    ));
    let started = Instant::now();
    let out = expect(&app, &["snapshot"], 0);
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(8),
        "the run waited {took:?} for its hook"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("killed"), "{err}");
    assert_eq!(app.last_run()["status"], "success");
    // The hook's whole process group is gone, its background sleep included.
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
    {
        assert!(Instant::now() < deadline, "hook child {pid} still running");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_empty_hook_is_a_config_error() {
    let app = tasks_app("[notify]\non_failure = []\n");
    let out = expect(&app, &["snapshot"], 2);
    assert!(
        text(&out).contains("[notify] on_failure is empty"),
        "{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------

#[test]
fn an_app_dir_inside_a_parent_repository_records_no_commit() {
    let app = tasks_app("");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(app.root())
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    // The parent: a repository at the app's root with one commit.
    git(&["init", "-q"]);
    std::fs::write(app.root().join("README"), "parent").unwrap();
    git(&["add", "README"]);
    git(&["commit", "-qm", "parent"]);
    // The application: an untracked directory inside it.
    let app_dir = app.root().join("apps/myapp");
    std::fs::create_dir_all(&app_dir).unwrap();
    let config = std::fs::read_to_string(app.config_path()).unwrap();
    std::fs::write(
        app.config_path(),
        format!("app_dir = \"apps/myapp\"\n{config}"),
    )
    .unwrap();
    let tag = obs::snapshot(&app);
    let manifest = read_manifest(&obs::archive_path(&app, &tag));
    assert!(manifest["app_commit"].is_null(), "{manifest}");
    assert!(manifest["app_branch"].is_null(), "{manifest}");

    // The repository's own work tree is recorded.
    std::fs::write(app.config_path(), config).unwrap();
    let tag = obs::take(&app, "backup-now");
    let manifest = read_manifest(&obs::archive_path(&app, &tag));
    assert_eq!(
        manifest["app_commit"].as_str().map(str::len),
        Some(40),
        "{manifest}"
    );
}

fn read_manifest(archive: &Path) -> serde_json::Value {
    let out = Command::new("tar")
        .arg("-xzOf")
        .arg(archive)
        .arg("--wildcards")
        .arg("*/MANIFEST.json")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_failed_push_tells_the_hook_its_tag_and_hint() {
    let out_dir = tempfile::tempdir().unwrap();
    let hook = env_hook(out_dir.path());
    // A directory remote that doctor --fix never marked: the push is refused.
    let app = tasks_app(&format!(
        "[remote.dir]\npath = \"remote\"\n[notify]\non_failure = {hook}\non_recovery = {hook}\n"
    ));
    std::fs::create_dir_all(app.root().join("remote")).unwrap();
    let out = app.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let env = read_env(&out_dir.path().join("failure.env"));
    assert_eq!(env["LIFEBOAT_STATUS"], "failed");
    assert!(env["LIFEBOAT_TAG"].starts_with("snap-"), "{env:?}");
    assert!(
        app.archives()
            .iter()
            .any(|a| a.starts_with(&env["LIFEBOAT_TAG"]))
    );
    assert!(env["LIFEBOAT_HINT"].contains("mounted"), "{env:?}");
    assert!(env["LIFEBOAT_ERROR"].contains("not pushed"), "{env:?}");
    assert!(!out_dir.path().join("recovery.env").exists());

    // Once the remote is set up, the next run pushes: a recovery.
    app.set_up_remote();
    expect(&app, &["backup-now"], 0);
    let env = read_env(&out_dir.path().join("recovery.env"));
    assert_eq!(env["LIFEBOAT_STATUS"], "success");
}
