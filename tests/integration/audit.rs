//! The audit log, read as its reader would: after a realistic sequence of
//! runs (snapshots pushed to a directory remote, retention deleting, a
//! restore and its undo, a damaged archive that fails verification, a
//! hostile one that restore refuses), `audit.jsonl` holds one JSON line per
//! event, in order, with who did it and why.

use crate::support::obs::{expect, flip_middle_byte, json, tasks_app};
use crate::support::{tarball, text};
use serde_json::Value;

fn events(app: &crate::support::App) -> Vec<Value> {
    let path = app.backup_dir().join("audit.jsonl");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the audit log is private");
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

#[test]
fn the_audit_log_records_who_did_what_to_which_snapshot() {
    let app = tasks_app("[remote.dir]\npath = \"remote\"\n[retention]\nmanual = 1\n");
    std::fs::create_dir_all(app.root().join("remote")).unwrap();
    app.set_up_remote();
    let first = json(&expect(&app, &["--json", "backup-now"], 0))["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    let second = json(&expect(&app, &["--json", "backup-now"], 0))["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    let e = events(&app);
    let created: Vec<&str> = of(&e, "snapshot_created")
        .iter()
        .map(|v| v["tag"].as_str().unwrap())
        .collect();
    assert_eq!(created, [first.as_str(), second.as_str()]);
    assert_eq!(of(&e, "snapshot_pushed").len(), 2, "{e:?}");
    // `manual = 1`: the second run's sweep deleted the first, locally and
    // on the remote, and says which rule let it go.
    let deleted = of(&e, "snapshot_deleted");
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    for d in &deleted {
        assert_eq!(d["tag"], first.as_str());
        assert!(d["reason"].as_str().unwrap().contains("manual"), "{d}");
    }
    assert!(deleted.iter().any(|d| d["place"] == "local"));
    assert!(
        deleted
            .iter()
            .any(|d| d["place"].as_str().unwrap().starts_with("dir:"))
    );
    for v in &e {
        assert!(
            v["account"].is_string() && v["uid"].is_u64() && v["time"].is_string(),
            "{v}"
        );
    }

    // A restore and its undo, with the account, snapshot and source.
    expect(&app, &["restore", &second, "--force"], 0);
    expect(&app, &["restore", "--undo", "--force"], 0);
    let e = events(&app);
    let restores = of(&e, "restore");
    assert_eq!(restores.len(), 2, "{restores:?}");
    assert_eq!(restores[0]["what"], second.as_str());
    assert_eq!(restores[0]["outcome"], "success");
    assert!(
        restores[0]["source"]
            .as_str()
            .unwrap()
            .starts_with("local:")
    );
    assert_eq!(restores[0]["databases"][0], "tasks");
    assert_eq!(restores[1]["what"], "undo");

    // A typo is not an event.
    expect(&app, &["restore", "newest"], 2);
    assert_eq!(of(&events(&app), "restore").len(), 2);

    // A damaged archive: verify fails, and says so in the log.
    let archive = app.backup_dir().join(format!("{second}.tar.gz"));
    let pristine = std::fs::read(&archive).unwrap();
    flip_middle_byte(&archive);
    expect(&app, &["verify", &second], 1);
    let failed = of(&events(&app), "verification_failed")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["tag"], second.as_str());
    assert_eq!(failed[0]["by"], "verify");

    // A hostile archive: the refused entry is named.
    std::fs::write(&archive, &pristine).unwrap();
    let entries = tarball::read_entries(&archive);
    let (manifest_name, manifest) = &entries[0];
    let (db_name, db) = &entries[1];
    let evil = format!("{second}/../../escape");
    tarball::write(
        &archive,
        &[
            tarball::Entry::file(manifest_name, manifest),
            tarball::Entry::file(&evil, b"pwned"),
            tarball::Entry::file(db_name, db),
        ],
    );
    let out = app.run(&["restore", &second, "--from", "local", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let e = events(&app);
    let refused = of(&e, "archive_entry_refused");
    assert!(
        refused.iter().any(|r| r["entry"] == evil.as_str()),
        "{refused:?}"
    );
    let last = of(&e, "restore").last().cloned().unwrap().clone();
    assert_eq!(last["outcome"], "failed");
    assert!(
        last["error"].as_str().unwrap().contains("refusing entry"),
        "{last}"
    );
}
