//! The rclone remote against the real `rclone`: its local backend through a
//! named remote in a private rclone.conf, and WebDAV served by `rclone
//! serve webdav` on loopback, stopped in the middle of an upload. What is
//! on the remote is checked independently of lifeboat (the served
//! directory on disk, `sha256sum`, `sqlite3 .dump`).
//!
//! A missing rclone skips these tests with a message, unless
//! `LIFEBOAT_REQUIRE_RCLONE=1` (CI sets it), which makes them fail.

use crate::support::obs::{expect, snapshot, stdout, tasks_app};
use crate::support::{App, sqlite, text};
use std::fs;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MARKER: &str = ".lifeboat-remote";

/// Keep every snapshot (every tier off).
const KEEP_ALL: &str =
    "[retention]\nhourly = 0\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n";

/// Keep the newest scheduled snapshot only: the next one deletes the one
/// before, on the remote too.
const KEEP_ONE: &str =
    "[retention]\nhourly = 1\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n";

/// `rclone` if it runs; `None` skips the test (after a message), and a
/// missing rclone panics under `LIFEBOAT_REQUIRE_RCLONE=1`.
fn rclone(test: &str) -> Option<PathBuf> {
    let bin = PathBuf::from("rclone");
    if Command::new(&bin)
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return Some(bin);
    }
    let msg = format!("{test}: rclone is not installed (apt-get install rclone)");
    if std::env::var("LIFEBOAT_REQUIRE_RCLONE").is_ok_and(|v| v == "1") {
        panic!("LIFEBOAT_REQUIRE_RCLONE=1 and {msg}");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {msg}");
    None
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// sha256 by `sha256sum`, not by lifeboat.
fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn dump(db: &Path) -> String {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(".dump")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn next_second() {
    std::thread::sleep(Duration::from_millis(1100));
}

fn pending(app: &App, tag: &str) -> PathBuf {
    app.backup_dir().join(format!("{tag}.pending-push.rclone"))
}

/// `[remote.rclone]` for the remote `remote` of `conf`.
fn section(remote: &str, conf: &Path, extra: &str) -> String {
    format!(
        "[remote.rclone]\nremote = \"{remote}\"\nconfig = \"{}\"\ntimeout = \"20s\"\nattempts = 2\nbackoff = \"200ms\"\n{extra}",
        conf.display()
    )
}

/// The whole life of a snapshot on rclone's local backend, through a
/// remote named in a private rclone.conf: set up, push, list, restore on a
/// fresh machine, retention deleting only lifeboat's own objects.
#[test]
fn local_backend_push_list_restore_prune() {
    let Some(_) = rclone("local_backend_push_list_restore_prune") else {
        return;
    };
    let place = tempfile::tempdir().unwrap();
    let conf = place.path().join("rclone.conf");
    fs::write(&conf, "[usb]\ntype = local\n").unwrap();
    let root = place.path().join("drive/lifeboat");
    fs::create_dir(place.path().join("drive")).unwrap();
    let remote = format!("usb:{}", root.display());
    let app = tasks_app(&format!("{KEEP_ONE}{}", section(&remote, &conf, "")));

    // Not set up yet: doctor names the fix and changes nothing.
    let out = expect(&app, &["doctor"], 1);
    assert!(
        stdout(&out).contains("does not exist") && stdout(&out).contains("lifeboat doctor --fix"),
        "{}",
        text(&out)
    );
    assert!(!root.exists());
    let out = expect(&app, &["doctor", "--fix"], 0);
    let shown = stdout(&out);
    assert!(
        shown.contains(&format!("fixed: created {remote}"))
            && shown.contains("fixed: marked")
            && shown.contains("size and sha256"),
        "{shown}"
    );
    let marker: serde_json::Value =
        serde_json::from_slice(&fs::read(root.join(MARKER)).unwrap()).unwrap();
    assert_eq!(marker["marker_version"], 1, "{marker}");
    // Foreign objects beside the snapshots.
    for foreign in ["notes.tar.gz", "snap-2026.tar.gz", "README"] {
        fs::write(root.join(foreign), b"not lifeboat's").unwrap();
    }

    let first = snapshot(&app);
    let archive = root.join(format!("{first}.tar.gz"));
    assert_eq!(
        sha256sum(&archive),
        sha256sum(&app.backup_dir().join(format!("{first}.tar.gz")))
    );
    assert_eq!(
        fs::metadata(&archive).unwrap().permissions().mode() & 0o777,
        0o600,
        "rclone writes the archive privately"
    );
    assert_eq!(
        app.last_run()["push"]["status"],
        "pushed",
        "{:#}",
        app.last_run()
    );
    let out = expect(&app, &["list", "--remote"], 0);
    assert!(stdout(&out).contains(&first), "{}", text(&out));
    assert!(!stdout(&out).contains("snap-2026 "), "{}", text(&out));

    // A fresh machine with the same configuration restores it.
    let fresh = App::new();
    fs::create_dir_all(fresh.root()).unwrap();
    fs::write(
        fresh.config_path(),
        fs::read_to_string(app.config_path()).unwrap(),
    )
    .unwrap();
    let out = expect(&fresh, &["restore", "latest", "--from", "rclone"], 0);
    assert!(
        stdout(&out).contains(&format!("rclone:{remote}")),
        "{}",
        text(&out)
    );
    let live = app.data_dir().join("db/tasks.db");
    assert_eq!(dump(&fresh.data_dir().join("db/tasks.db")), dump(&live));

    // The next scheduled snapshot replaces the first, there too; foreign
    // objects stay.
    next_second();
    sqlite(&live, "INSERT INTO t(x) VALUES ('second');");
    let second = snapshot(&app);
    assert_eq!(
        names(&root),
        [
            MARKER.to_string(),
            "README".into(),
            "notes.tar.gz".into(),
            "snap-2026.tar.gz".into(),
            format!("{second}.tar.gz"),
        ]
    );
    let out = expect(&app, &["--json", "list", "--remote"], 0);
    assert!(!stdout(&out).contains(&first), "{}", text(&out));
}

/// A free TCP port on loopback (bound, then released for the server).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `rclone serve PROTOCOL` of `root` on 127.0.0.1:`port`, user `u`.
struct Server(Child);

impl Server {
    fn start(root: &Path, port: u16) -> Server {
        Server::serve("webdav", root, port)
    }

    fn serve(protocol: &str, root: &Path, port: u16) -> Server {
        let child = Command::new("rclone")
            .args([
                "serve",
                protocol,
                "--config",
                "/dev/null",
                "--log-level",
                "ERROR",
            ])
            .arg(root)
            .args(["--addr", &format!("127.0.0.1:{port}")])
            .args(["--user", "u", "--pass", "secret-pw"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "rclone serve {protocol} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Server(child)
    }

    /// SIGKILL: the server vanishes mid-request.
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real network protocol: WebDAV served by rclone on loopback, with a
/// password (obscured in the rclone.conf, as `rclone config` writes it).
/// The server is killed while an upload of a few MiB is in progress: the
/// run fails as transient after its attempts, the snapshot stays queued,
/// nothing half-written is listed; back up, the next run pushes it.
#[test]
fn webdav_on_loopback_and_a_server_stopped_mid_upload() {
    let Some(bin) = rclone("webdav_on_loopback_and_a_server_stopped_mid_upload") else {
        return;
    };
    let place = tempfile::tempdir().unwrap();
    let served = place.path().join("served");
    fs::create_dir(&served).unwrap();
    let port = free_port();
    let server = Server::start(&served, port);
    let obscured = Command::new(&bin)
        .args(["obscure", "secret-pw"])
        .output()
        .unwrap();
    let obscured = String::from_utf8(obscured.stdout).unwrap();
    let conf = place.path().join("rclone.conf");
    fs::write(
        &conf,
        format!(
            "[dav]\ntype = webdav\nurl = http://127.0.0.1:{port}\nvendor = other\nuser = u\npass = {}\n",
            obscured.trim()
        ),
    )
    .unwrap();
    let app = tasks_app(&format!("{KEEP_ALL}{}", section("dav:lifeboat", &conf, "")));
    // A few MiB that do not compress, so that an upload takes a while.
    sqlite(
        &app.data_dir().join("db/tasks.db"),
        "CREATE TABLE blobs(b BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 48)
           INSERT INTO blobs(b) SELECT randomblob(65536) FROM n;",
    );
    let root = served.join("lifeboat");

    let out = expect(&app, &["doctor", "--fix"], 0);
    let shown = stdout(&out);
    assert!(
        shown.contains("fixed: created dav:lifeboat") && shown.contains("fixed: marked"),
        "{shown}"
    );
    // WebDAV has no hashes: size only, and doctor says so.
    assert!(
        shown.contains("WARN") && shown.contains("confirmed by size only"),
        "{shown}"
    );
    assert!(root.join(MARKER).is_file());

    let first = snapshot(&app);
    let local = app.backup_dir().join(format!("{first}.tar.gz"));
    assert!(fs::metadata(&local).unwrap().len() > 2 << 20, "a few MiB");
    assert_eq!(
        sha256sum(&root.join(format!("{first}.tar.gz"))),
        sha256sum(&local)
    );
    let out = expect(&app, &["list", "--remote"], 0);
    assert!(stdout(&out).contains(&first), "{}", text(&out));

    // The server goes away in the middle of the next upload (throttled to
    // about 1 MiB/s so that there is a middle).
    next_second();
    let mut run = app.cmd(&["snapshot"]);
    run.env("RCLONE_BWLIMIT", "1M")
        .env("RCLONE_LOW_LEVEL_RETRIES", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = run.spawn().unwrap();
    let started = Instant::now();
    let uploading = loop {
        let partial = fs::read_dir(&root).unwrap().flatten().find(|e| {
            e.file_name().to_string_lossy().ends_with(".partial")
                && e.metadata().is_ok_and(|m| m.len() > 0)
        });
        if let Some(p) = partial {
            break p.file_name().to_string_lossy().into_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no upload started: {:?}",
            names(&root)
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    server.kill();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let record = app.last_run();
    let second = record["snapshot"]["tag"].as_str().unwrap().to_string();
    assert_eq!(uploading, format!(".{second}.tar.gz.partial"));
    assert_eq!(record["push"]["status"], "failed", "{record:#}");
    assert_eq!(
        record["push"]["error"]["kind"], "remote_transient",
        "{record:#}"
    );
    assert!(
        stderr(&out).contains("gave up after 2 attempt(s)"),
        "{}",
        text(&out)
    );
    assert!(!stderr(&out).contains("secret-pw"), "{}", text(&out));
    assert!(pending(&app, &second).exists(), "{second} is still queued");
    assert!(!root.join(format!("{second}.tar.gz")).exists());

    // Back up: the half-written upload is not a snapshot.
    let _server = Server::start(&served, port);
    let out = expect(&app, &["--json", "list", "--remote"], 0);
    assert!(
        stdout(&out).contains(&first) && !stdout(&out).contains(&second),
        "{}",
        text(&out)
    );
    // The next run pushes the queue, oldest first.
    next_second();
    let third = snapshot(&app);
    let pushed = app.last_run()["push"]["pushed"].clone();
    assert_eq!(pushed, serde_json::json!([second, third]), "{pushed}");
    assert!(!pending(&app, &second).exists());
    for tag in [&first, &second, &third] {
        assert_eq!(
            sha256sum(&root.join(format!("{tag}.tar.gz"))),
            sha256sum(&app.backup_dir().join(format!("{tag}.tar.gz"))),
            "{tag}"
        );
    }
    assert!(
        !names(&root).iter().any(|n| n.ends_with(".partial")),
        "{:?}",
        names(&root)
    );
}

/// SFTP served by rclone on loopback: a backend with md5 and sha1 but no
/// sha256, so uploads are confirmed by size and md5 (the archive's md5
/// computed by `rclone hashsum`); pushed, listed, restored elsewhere.
#[test]
fn sftp_on_loopback_confirms_by_md5() {
    let Some(bin) = rclone("sftp_on_loopback_confirms_by_md5") else {
        return;
    };
    let place = tempfile::tempdir().unwrap();
    let served = place.path().join("served");
    fs::create_dir(&served).unwrap();
    let port = free_port();
    let _server = Server::serve("sftp", &served, port);
    let obscured = Command::new(&bin)
        .args(["obscure", "secret-pw"])
        .output()
        .unwrap();
    let conf = place.path().join("rclone.conf");
    fs::write(
        &conf,
        format!(
            "[nas]\ntype = sftp\nhost = 127.0.0.1\nport = {port}\nuser = u\npass = {}\n",
            String::from_utf8(obscured.stdout).unwrap().trim()
        ),
    )
    .unwrap();
    let app = tasks_app(&format!(
        "{KEEP_ALL}{}",
        section("nas:backups/myapp", &conf, "")
    ));
    fs::create_dir(served.join("backups")).unwrap();
    let out = expect(&app, &["doctor", "--fix"], 0);
    let shown = stdout(&out);
    assert!(
        shown.contains("fixed: marked") && shown.contains("confirmed by size and md5"),
        "{shown}"
    );
    let root = served.join("backups/myapp");
    let tag = snapshot(&app);
    assert_eq!(
        sha256sum(&root.join(format!("{tag}.tar.gz"))),
        sha256sum(&app.backup_dir().join(format!("{tag}.tar.gz")))
    );
    let out = expect(&app, &["list", "--remote"], 0);
    assert!(stdout(&out).contains(&tag), "{}", text(&out));
    // Restored from the remote alone, beside the live data.
    fs::remove_file(app.backup_dir().join(format!("{tag}.tar.gz"))).unwrap();
    let elsewhere = place.path().join("elsewhere");
    expect(
        &app,
        &[
            "restore",
            &tag,
            "--from",
            "rclone",
            "--to",
            &elsewhere.display().to_string(),
        ],
        0,
    );
    assert_eq!(
        dump(&elsewhere.join("db/tasks.db")),
        dump(&app.data_dir().join("db/tasks.db"))
    );
}

/// Processes whose command line mentions `needle` (other than this test).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(needle) && entry.file_name() != std::process::id().to_string().as_str()
        {
            found.push(format!(
                "{}: {cmdline}",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found
}

/// SIGTERM in the middle of an upload: lifeboat kills rclone and waits for
/// it before it exits (128 + 15); no rclone is left acting on the remote;
/// the half-written upload is not a snapshot, and the snapshot is queued.
#[test]
fn a_stop_signal_mid_upload_leaves_no_rclone() {
    let Some(_) = rclone("a_stop_signal_mid_upload_leaves_no_rclone") else {
        return;
    };
    let place = tempfile::tempdir().unwrap();
    let conf = place.path().join("rclone.conf");
    fs::write(&conf, "").unwrap();
    let root = place.path().join("remote");
    let app = tasks_app(&format!(
        "{KEEP_ALL}{}",
        section(&root.display().to_string(), &conf, "")
    ));
    sqlite(
        &app.data_dir().join("db/tasks.db"),
        "CREATE TABLE blobs(b BLOB);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 48)
           INSERT INTO blobs(b) SELECT randomblob(65536) FROM n;",
    );
    expect(&app, &["doctor", "--fix"], 0);
    let mut run = app.cmd(&["snapshot"]);
    run.env("RCLONE_BWLIMIT", "512k")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = run.spawn().unwrap();
    let started = Instant::now();
    while !fs::read_dir(&root).unwrap().flatten().any(|e| {
        e.file_name().to_string_lossy().ends_with(".partial")
            && e.metadata().is_ok_and(|m| m.len() > 0)
    }) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no upload started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let needle = root.display().to_string();
    assert!(
        !processes_mentioning(&needle).is_empty(),
        "rclone is uploading"
    );
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    let left = processes_mentioning(&needle);
    assert!(left.is_empty(), "rclone outlived lifeboat: {left:?}");
    let tag = app.last_run()["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(pending(&app, &tag).exists(), "{tag} is still queued");
    assert!(!root.join(format!("{tag}.tar.gz")).exists());
    let out = expect(&app, &["--json", "list", "--remote"], 0);
    assert!(!stdout(&out).contains(&tag), "{}", text(&out));
}

/// A directory without the marker (a mistyped path, a bucket of other
/// things) is never written to: doctor and push name `doctor --fix`. A
/// missing rclone binary names its installation.
#[test]
fn an_unmarked_path_is_refused() {
    let Some(_) = rclone("an_unmarked_path_is_refused") else {
        return;
    };
    let place = tempfile::tempdir().unwrap();
    let conf = place.path().join("rclone.conf");
    fs::write(&conf, "").unwrap();
    let root = place.path().join("other-things");
    fs::create_dir(&root).unwrap();
    fs::write(root.join("photo.jpg"), b"not lifeboat's").unwrap();
    let app = tasks_app(&format!(
        "{KEEP_ALL}{}",
        section(&root.display().to_string(), &conf, "")
    ));

    let out = expect(&app, &["doctor"], 1);
    let shown = stdout(&out);
    assert!(
        shown.contains("FAIL identity")
            && shown.contains("not marked as a lifeboat remote")
            && shown.contains("lifeboat doctor --fix"),
        "{}",
        text(&out)
    );
    let out = expect(&app, &["snapshot"], 1);
    let err = stderr(&out);
    assert!(
        err.contains("not marked as a lifeboat remote") && err.contains("lifeboat doctor --fix"),
        "{}",
        text(&out)
    );
    let record = app.last_run();
    assert_eq!(
        record["push"]["error"]["kind"], "remote_permanent",
        "{record:#}"
    );
    let tag = record["snapshot"]["tag"].as_str().unwrap().to_string();
    assert!(pending(&app, &tag).exists());
    assert_eq!(names(&root), ["photo.jpg"]);
    let out = expect(&app, &["list", "--remote"], 1);
    assert!(stderr(&out).contains("not marked"), "{}", text(&out));

    // Marked, the queued snapshot goes with the next run.
    expect(&app, &["doctor", "--fix"], 0);
    next_second();
    let next = snapshot(&app);
    assert!(root.join(format!("{tag}.tar.gz")).is_file());
    assert!(root.join(format!("{next}.tar.gz")).is_file());

    // No rclone at all.
    app.write_config(&format!(
        "{}{}",
        crate::support::obs::TASKS,
        section(
            &root.display().to_string(),
            &conf,
            "rclone = \"/nonexistent/rclone\"\n"
        )
    ));
    let out = expect(&app, &["doctor"], 1);
    assert!(
        stdout(&out).contains("FAIL rclone") && stdout(&out).contains("apt-get install rclone"),
        "{}",
        text(&out)
    );
}
