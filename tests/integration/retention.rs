//! Retention: `lifeboat prune` on a backup dir full of tags, and the sweep of
//! a directory remote after real snapshots.

use crate::support::{App, sqlite, text};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// hourly 3 and daily 2 (other tiers off), one manual snapshot.
const POLICY: &str =
    "[retention]\nhourly = 3\ndaily = 2\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 1\n";

const SCHEDULED: [&str; 7] = [
    "snap-20261119T200000Z",
    "snap-20261119T210000Z",
    "snap-20261119T220000Z",
    "snap-20261119T230000Z",
    "snap-20261120T000000Z",
    "snap-20261120T010000Z",
    "snap-20261120T020000Z",
];
const MANUAL: [&str; 2] = [
    "snap-20261118T100000Z-manual",
    "snap-20261119T100000Z-manual",
];
const FOREIGN: [&str; 3] = ["notes.tar.gz", "snap-2026.tar.gz", "README"];

fn app_with_tags(extra_config: &str) -> App {
    let app = App::new();
    sqlite(
        &app.data_dir().join("app.db"),
        "CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    );
    app.write_config(&format!(
        "[[database]]\nname = \"app\"\npath = \"app.db\"\n{POLICY}{extra_config}"
    ));
    let dir = app.backup_dir();
    fs::create_dir_all(&dir).unwrap();
    // prune only looks at names: empty files stand in for archives, in both
    // formats.
    for (i, tag) in SCHEDULED.iter().chain(&MANUAL).enumerate() {
        let ext = if i % 3 == 0 { "tar.zst" } else { "tar.gz" };
        fs::write(dir.join(format!("{tag}.{ext}")), b"").unwrap();
    }
    for name in FOREIGN {
        fs::write(dir.join(name), b"not lifeboat's").unwrap();
    }
    app
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Tag name -> (decision, reasons) from a section of `prune --json`.
fn decisions(section: &Value) -> BTreeMap<String, (String, Vec<String>)> {
    section["plan"]
        .as_array()
        .expect("plan is an array")
        .iter()
        .map(|e| {
            let reasons = e["reasons"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_string())
                .collect();
            (
                e["name"].as_str().unwrap().to_string(),
                (e["decision"].as_str().unwrap().to_string(), reasons),
            )
        })
        .collect()
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)))
}

#[test]
fn dry_run_prints_the_plan_and_deletes_nothing() {
    let app = app_with_tags("");
    let before = files(&app.backup_dir());
    let out = app.run(&["prune", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = json(&out);
    assert_eq!(report["dry_run"], true);
    assert!(report["remote"].is_null(), "no remote configured");
    let d = decisions(&report["local"]);
    let kept: Vec<&str> = d
        .iter()
        .filter(|(_, (decision, _))| decision == "keep")
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        kept,
        [
            "notes.tar.gz",
            "snap-2026.tar.gz",
            "snap-20261119T100000Z-manual",
            "snap-20261119T230000Z",
            "snap-20261120T000000Z",
            "snap-20261120T010000Z",
            "snap-20261120T020000Z",
        ]
    );
    assert_eq!(
        d["snap-20261120T020000Z"].1,
        ["newest", "hourly 1/3", "daily 2026-11-20"]
    );
    assert_eq!(d["snap-20261119T230000Z"].1, ["daily 2026-11-19"]);
    assert_eq!(d["snap-20261119T100000Z-manual"].1, ["manual 1/1"]);
    assert_eq!(d["notes.tar.gz"].1, ["not a lifeboat tag, never deleted"]);
    assert_eq!(d["snap-20261118T100000Z-manual"].0, "delete");
    assert!(
        !d.contains_key("README"),
        "only archive-like names are listed"
    );
    let after: Vec<String> = files(&app.backup_dir())
        .into_iter()
        .filter(|f| f != "lifeboat.lock")
        .collect();
    assert_eq!(after, before, "a dry run deletes nothing");
    assert!(!app.backup_dir().join("last_run.json").exists());

    // The table says the same.
    let out = app.run(&["prune", "--dry-run"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("9 snapshot(s), keep 5, would delete 4"),
        "{table}"
    );
    assert!(
        table
            .lines()
            .any(|l| l.contains("snap-20261119T220000Z") && l.contains("delete")),
        "{table}"
    );
}

#[test]
fn prune_deletes_per_plan_and_spares_foreign_and_pending() {
    let app = app_with_tags("");
    let dir = app.backup_dir();
    fs::write(dir.join("snap-20261119T210000Z.pending-push"), b"").unwrap();
    let out = app.run(&["prune"]);
    assert!(out.status.success(), "{}", text(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table
            .lines()
            .any(|l| l.contains("snap-20261119T210000Z") && l.contains("pending push")),
        "{table}"
    );
    let left = files(&dir);
    for gone in [
        "snap-20261119T200000Z",
        "snap-20261119T220000Z",
        "snap-20261118T100000Z-manual",
    ] {
        assert!(
            !left.iter().any(|f| f.starts_with(gone)),
            "{gone}: {left:?}"
        );
    }
    for kept in [
        "snap-20261119T210000Z.tar.gz",
        "snap-20261119T210000Z.pending-push",
        "snap-20261120T020000Z.tar.zst",
        "snap-20261119T100000Z-manual.tar.gz",
    ] {
        assert!(left.iter().any(|f| f == kept), "{kept}: {left:?}");
    }
    for name in FOREIGN {
        assert_eq!(fs::read(dir.join(name)).unwrap(), b"not lifeboat's");
    }

    let record = app.last_run();
    assert_eq!(record["command"], "prune");
    assert_eq!(record["status"], "success");
    assert_eq!(record["retention"]["local"]["kept"], 6);
    assert_eq!(
        record["retention"]["local"]["deleted"],
        serde_json::json!([
            "snap-20261119T220000Z",
            "snap-20261119T200000Z",
            "snap-20261118T100000Z-manual"
        ])
    );
    // Idempotent: a second run finds nothing to delete.
    let out = app.run(&["prune", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(json(&out)["local"]["deleted"], serde_json::json!([]));
}

#[test]
fn a_failed_deletion_is_recorded_and_fails_the_run() {
    let app = app_with_tags("");
    // A directory under an archive's name cannot be removed as a file (even
    // by root); the plan sees the tag through its other, regular file.
    fs::create_dir(app.backup_dir().join("snap-20261119T200000Z.tar.gz")).unwrap();
    let out = app.run(&["prune"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 deletion(s) failed"), "{stderr}");
    assert!(stderr.contains("snap-20261119T200000Z"), "{stderr}");
    let record = app.last_run();
    assert_eq!(record["status"], "failed");
    assert_eq!(
        record["retention"]["local"]["failed"][0]["tag"],
        "snap-20261119T200000Z"
    );
    // The other deletions went ahead.
    assert!(
        !files(&app.backup_dir())
            .iter()
            .any(|f| f.starts_with("snap-20261119T220000Z"))
    );
}

#[test]
fn remote_requires_a_remote() {
    let app = app_with_tags("");
    let out = app.run(&["prune", "--remote"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no remote is configured"));
}

// ---------------------------------------------------------------------------
// The directory remote, through real snapshots.

fn app_with_dir_remote(policy: &str) -> App {
    let app = App::new();
    sqlite(
        &app.data_dir().join("app.db"),
        "CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);",
    );
    app.write_config(&format!(
        "[[database]]\nname = \"app\"\npath = \"app.db\"\n[remote.dir]\npath = \"nas/lifeboat\"\n{policy}"
    ));
    // The NAS is mounted at `nas`; doctor --fix makes and marks the remote.
    fs::create_dir(app.root().join("nas")).unwrap();
    app.set_up_remote();
    app
}

fn sha256(path: &Path) -> String {
    lifeboat::hash::sha256_file(path).unwrap()
}

#[test]
fn snapshot_pushes_to_the_dir_remote_and_sweeps_it() {
    let app = app_with_dir_remote(
        "[retention]\nhourly = 2\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n",
    );
    let nas = app.root().join("nas/lifeboat");
    fs::create_dir_all(&nas).unwrap();
    for tag in [
        "snap-20200101T100000Z",
        "snap-20200101T110000Z",
        "snap-20200101T120000Z",
    ] {
        fs::write(nas.join(format!("{tag}.tar.gz")), b"old").unwrap();
    }
    fs::write(nas.join("family-photos.tar.gz"), b"not lifeboat's").unwrap();

    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let record = app.last_run();
    assert_eq!(record["push"]["status"], "pushed", "{record:#}");
    let tag = record["snapshot"]["tag"].as_str().unwrap().to_string();
    let archive = record["snapshot"]["archive"].as_str().unwrap().to_string();

    // The copy is byte-identical, private, and has its checksum beside it.
    let local = app.backup_dir().join(&archive);
    let remote = nas.join(&archive);
    assert_eq!(sha256(&remote), sha256(&local));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&remote).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let sidecar = fs::read_to_string(nas.join(format!("{archive}.sha256"))).unwrap();
    assert_eq!(sidecar, format!("{}  {archive}\n", sha256(&local)));

    // hourly = 2: the new snapshot and the newest old one stay.
    assert_eq!(
        record["retention"]["remote"]["deleted"],
        serde_json::json!(["snap-20200101T110000Z", "snap-20200101T100000Z"])
    );
    assert_eq!(
        files(&nas),
        [
            ".lifeboat-remote".to_string(),
            "family-photos.tar.gz".to_string(),
            "snap-20200101T120000Z.tar.gz".to_string(),
            archive.clone(),
            format!("{archive}.sha256"),
        ]
    );

    // prune --remote plans on the remote alone, and deletes with it.
    let out = app.run(&["prune", "--remote", "--dry-run", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = json(&out);
    assert!(report["local"].is_null());
    let d = decisions(&report["remote"]);
    assert_eq!(d.len(), 2, "foreign names are not listed: {d:?}");
    // The last successful snapshot holds every database: always kept.
    assert_eq!(
        d[&tag].1,
        ["newest", "hourly 1/2", "newest complete snapshot"]
    );
    assert_eq!(d["snap-20200101T120000Z"].1, ["hourly 2/2"]);

    app.write_config(
        "[[database]]\nname = \"app\"\npath = \"app.db\"\n[remote.dir]\npath = \"nas/lifeboat\"\n[retention]\nhourly = 1\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n"
    );
    let out = app.run(&["prune", "--remote", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        json(&out)["remote"]["deleted"],
        serde_json::json!(["snap-20200101T120000Z"])
    );
    assert!(!nas.join("snap-20200101T120000Z.tar.gz").exists());
    assert!(nas.join("family-photos.tar.gz").exists());
    assert!(local.exists(), "--remote leaves local archives alone");
}

#[test]
fn unpushed_snapshots_stay_local_until_pushed() {
    let app = app_with_dir_remote(
        "[retention]\nhourly = 1\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n",
    );
    // The drive is unplugged: its mount point nas/ is an empty directory.
    fs::rename(app.root().join("nas"), app.root().join("drive")).unwrap();
    fs::create_dir(app.root().join("nas")).unwrap();
    for _ in 0..2 {
        let out = app.run(&["snapshot"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("does not exist"), "{stderr}");
        assert!(stderr.contains("mounted"), "{stderr}");
        // The remote sweep waits until every snapshot is pushed.
        assert!(app.last_run()["retention"]["remote"].is_null());
        assert!(!app.last_run()["retention"]["local"].is_null());
    }
    assert!(
        files(&app.root().join("nas")).is_empty(),
        "nothing written to an unmounted drive"
    );
    // hourly = 1 keeps only the newest, but the older one was never pushed.
    assert_eq!(app.archives().len(), 2, "{:?}", app.archives());

    // Plugged in again.
    fs::remove_dir(app.root().join("nas")).unwrap();
    fs::rename(app.root().join("drive"), app.root().join("nas")).unwrap();
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let record = app.last_run();
    assert_eq!(record["push"]["pushed"].as_array().unwrap().len(), 3);
    // Now pushed, the older two are swept on both sides.
    assert_eq!(app.archives().len(), 1, "{:?}", app.archives());
    assert_eq!(
        record["retention"]["local"]["deleted"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        record["retention"]["remote"]["deleted"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let nas = app.root().join("nas/lifeboat");
    assert_eq!(files(&nas).len(), 3, "{:?}", files(&nas));
    assert_eq!(files(&nas)[0], ".lifeboat-remote");
    assert_eq!(files(&nas)[1], app.archives()[0]);
}
