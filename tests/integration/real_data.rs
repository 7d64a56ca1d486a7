//! What real deployments hold, snapshotted and restored faithfully: one
//! database that cannot be copied fails alone (a partial snapshot, exit 1,
//! recorded and reported by `health`); an optional database that does not
//! exist yet is skipped with a note; the foreign-key state of the live data
//! is recorded in the manifest and a restore reproduces it, refusing only a
//! state that differs from the recorded one; version 1 manifests (no
//! record) still restore, with a warning; a restore onto a fresh machine
//! gives the data directory and the databases the recorded owner and mode.

use crate::support::obs::*;
use crate::support::{App, sqlite, tarball, text};
use serde_json::Value;
use std::path::Path;

/// `[[database]]` entries: `tasks` (real), plus `more`.
fn config(more: &str, remote: &Path) -> String {
    format!(
        "{TASKS}{more}\n[remote.dir]\npath = \"{}\"\n",
        remote.display()
    )
}

fn manifest(archive: &Path) -> Value {
    let (_, bytes) = tarball::read_entries(archive).remove(0);
    serde_json::from_slice(&bytes).unwrap()
}

fn health_problems(app: &App) -> (Option<i32>, String) {
    let out = app.run(&["--json", "health"]);
    (out.status.code(), json(&out)["problems"].to_string())
}

#[test]
fn a_database_that_cannot_be_copied_fails_alone() {
    let remote = tempfile::tempdir().unwrap();
    let remote_path = remote.path().join("r");
    let app = tasks_app("");
    // `empty`: a 0-byte file; `gone`: never created; `junk`: not SQLite.
    std::fs::write(app.data_dir().join("empty.db"), b"").unwrap();
    std::fs::write(
        app.data_dir().join("junk.db"),
        b"this is not a database at all",
    )
    .unwrap();
    app.write_config(&config(
        "[[database]]\nname = \"empty\"\npath = \"empty.db\"\n\
         [[database]]\nname = \"gone\"\npath = \"gone.db\"\n\
         [[database]]\nname = \"junk\"\npath = \"junk.db\"\n",
        &remote_path,
    ));
    app.set_up_remote();
    // A complete snapshot first, so there is something retention could prune.
    let out = app.run(&["--json", "snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = text(&out);
    for name in ["`empty`", "`gone`", "`junk`"] {
        assert!(err.contains(name), "names {name}: {err}");
    }
    assert!(err.contains("is partial"), "{err}");

    let rec = app.last_run();
    assert_eq!(rec["status"], "partial", "{rec:#}");
    let failed: Vec<&str> = rec["snapshot"]["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["empty", "gone", "junk"]);
    assert!(
        rec["snapshot"]["failed"][1]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{rec:#}"
    );
    // The database that could be copied is in the archive, and pushed.
    let archives = app.archives();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let m = manifest(&app.backup_dir().join(&archives[0]));
    assert_eq!(m["manifest_version"], 2);
    assert_eq!(m["databases"].as_array().unwrap().len(), 1);
    assert_eq!(m["databases"][0]["name"], "tasks");
    let skipped: Vec<(&str, bool)> = m["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap(),
                s["optional"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [("empty", false), ("gone", false), ("junk", false)]
    );
    assert_eq!(rec["push"]["status"], "pushed", "{rec:#}");
    let on_remote = crate::support::walk(&remote_path);
    assert!(
        on_remote
            .iter()
            .any(|p| p.to_string_lossy().ends_with(&archives[0])),
        "{on_remote:?}"
    );
    // A partial snapshot does not prune, and is not a last success.
    assert!(rec["retention"].is_null(), "{rec:#}");
    assert!(rec["last_success"].is_null(), "{rec:#}");
    // Health warns, naming each database.
    let (code, problems) = health_problems(&app);
    assert_ne!(code, Some(0), "{problems}");
    assert!(problems.contains("was partial"), "{problems}");
    assert!(problems.contains("`gone`"), "{problems}");
    // verify and restore say why the snapshot lacks them.
    let tag = rec["snapshot"]["tag"].as_str().unwrap().to_string();
    let out = app.run(&["verify", &tag]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("could not be copied when the snapshot was taken"),
        "{}",
        text(&out)
    );

    // Fixed: the next run is complete, and health forgets the warning.
    for db in ["empty.db", "junk.db"] {
        std::fs::remove_file(app.data_dir().join(db)).unwrap();
    }
    for db in ["empty.db", "gone.db", "junk.db"] {
        sqlite(
            &app.data_dir().join(db),
            "CREATE TABLE x(v); INSERT INTO x VALUES (1);",
        );
    }
    let out = app.run(&["--json", "backup-now"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rec = app.last_run();
    assert_eq!(rec["status"], "success");
    assert!(!rec["last_success"].is_null());
    let (_, problems) = health_problems(&app);
    assert!(!problems.contains("partial"), "{problems}");
}

#[test]
fn when_no_database_can_be_copied_the_run_fails_and_writes_no_archive() {
    let app = App::new();
    app.write_config(
        "[[database]]\nname = \"a\"\npath = \"a.db\"\n[[database]]\nname = \"b\"\npath = \"b.db\"\n",
    );
    let out = app.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no database could be copied"),
        "{}",
        text(&out)
    );
    assert_eq!(app.last_run()["status"], "failed");
    assert!(app.archives().is_empty());
}

#[test]
fn an_optional_database_that_does_not_exist_yet_is_skipped_without_a_warning() {
    let app = tasks_app("[[database]]\nname = \"cache\"\npath = \"cache.db\"\noptional = true\n");
    let out = app.run(&["--json", "snapshot"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let rec = app.last_run();
    assert_eq!(rec["status"], "success", "{rec:#}");
    assert_eq!(rec["snapshot"]["skipped"], serde_json::json!(["cache"]));
    let archive = app.backup_dir().join(&app.archives()[0]);
    let m = manifest(&archive);
    assert_eq!(m["skipped"][0]["name"], "cache");
    assert_eq!(m["skipped"][0]["optional"], true);
    // Drill and health: no complaint about it.
    let out = app.run(&["drill"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (code, problems) = health_problems(&app);
    assert_eq!(code, Some(0), "{problems}");

    let first = app.last_run()["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    // Once it exists it is backed up; broken, it fails like any other.
    sqlite(
        &app.data_dir().join("cache.db"),
        "CREATE TABLE c(v); INSERT INTO c VALUES (1);",
    );
    let tag = take(&app, "backup-now");
    let m = manifest(&archive_path(&app, &tag));
    assert_eq!(m["databases"].as_array().unwrap().len(), 2);
    std::fs::write(app.data_dir().join("cache.db"), b"garbage, not SQLite").unwrap();
    let out = app.run(&["backup-now"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(app.last_run()["status"], "partial");

    // A whole restore of the snapshot taken before it existed restores the
    // rest and leaves it as it is; asked for by name, it says why not.
    let cache = std::fs::read(app.data_dir().join("cache.db")).unwrap();
    let out = app.run(&["restore", &first, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("is not in snapshot"), "{}", text(&out));
    assert_eq!(
        std::fs::read(app.data_dir().join("cache.db")).unwrap(),
        cache
    );
    let out = app.run(&["restore", &first, "--db", "cache", "--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("it is optional"), "{}", text(&out));
}

/// A database with rows whose parent is missing (foreign keys are not
/// enforced unless the application turns them on), as real applications
/// leave them.
fn orphans_app() -> App {
    let app = App::new();
    sqlite(
        &app.data_dir().join("app.db"),
        "PRAGMA foreign_keys = OFF;
         CREATE TABLE parent(id INTEGER PRIMARY KEY);
         CREATE TABLE child(id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id));
         INSERT INTO parent VALUES (1);
         INSERT INTO child(p) VALUES (1), (0), (0), (42);",
    );
    app.write_config("[[database]]\nname = \"app\"\npath = \"app.db\"\n");
    app
}

#[test]
fn the_live_datas_foreign_key_state_is_recorded_and_reproduced() {
    let app = orphans_app();
    let live = app.data_dir().join("app.db");
    let tag = snapshot(&app);
    let archive = archive_path(&app, &tag);
    let m = manifest(&archive);
    assert_eq!(
        m["databases"][0]["foreign_keys"],
        serde_json::json!({"violations": [{"table": "child", "parent": "parent", "rows": 3}]})
    );
    // verify, drill and restore pass with a note, and the restore holds the
    // orphans exactly (compared with sqlite3's own dump).
    for args in [
        vec!["verify", &tag],
        vec!["drill"],
        vec!["restore", &tag, "--dry-run"],
    ] {
        let out = app.run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("already in the live data when the snapshot was taken"),
            "{args:?}: {}",
            text(&out)
        );
    }
    let dump = |p: &Path| {
        let out = std::process::Command::new("sqlite3")
            .arg(p)
            .arg(".dump")
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let before = dump(&live);
    sqlite(&live, "DELETE FROM child;");
    let out = app.run(&["restore", &tag, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(dump(&live), before);

    // An archive whose data's state is not the recorded one is refused,
    // even with matching checksums, and nothing live is touched.
    tarball::rebuild(&archive, true, |m, _| {
        m["databases"][0]["foreign_keys"] = serde_json::json!({"violations": []});
    });
    let live_bytes = std::fs::read(&live).unwrap();
    for args in [vec!["verify", &tag], vec!["restore", &tag, "--force"]] {
        let out = app.run(&args);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains("differs from the one recorded"),
            "{args:?}: {}",
            text(&out)
        );
    }
    assert_eq!(std::fs::read(&live).unwrap(), live_bytes);

    // A version 1 manifest recorded nothing: a warning, not a refusal.
    tarball::rebuild(&archive, true, |m, _| {
        m["manifest_version"] = 1.into();
        let db = m["databases"][0].as_object_mut().unwrap();
        db.remove("foreign_keys");
        db.remove("file");
        m.as_object_mut().unwrap().remove("data_dir");
    });
    let out = app.run(&["restore", &tag, "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("warning: this snapshot's manifest records no foreign-key state"),
        "{}",
        text(&out)
    );
    assert_eq!(dump(&live), before);
}

/// A restore onto a fresh machine, run as root: the data directory and the
/// database get the recorded mode and the recorded owner, looked up by name.
#[test]
fn a_fresh_machine_restore_gives_back_the_recorded_owner_and_mode() {
    fresh_machine_restore(false);
}

/// The same with the default `backup_dir`, inside `data_dir`: the run's
/// lock creates `data_dir` before the restore looks (found by review), and
/// lifeboat's own directory there stays root's.
#[test]
fn a_fresh_machine_restore_with_backups_inside_data_dir_gives_back_owner_and_mode() {
    fresh_machine_restore(true);
}

fn fresh_machine_restore(backups_inside: bool) {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to play root and the application's account");
        return;
    }
    const NOBODY: u32 = 65534;
    let root = tempfile::tempdir().unwrap();
    let srv = root.path().join("srv");
    let data = srv.join("app");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("db/app.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    sqlite(
        &db,
        "PRAGMA journal_mode=WAL; CREATE TABLE t(v); INSERT INTO t VALUES (1);",
    );
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o640)).unwrap();
    for p in [&data, &data.join("db"), &db] {
        std::os::unix::fs::chown(p, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let config = root.path().join("lifeboat.toml");
    let backups = if backups_inside {
        data.join("backups")
    } else {
        root.path().join("backups")
    };
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\nbackup_dir = \"{}\"\n[[database]]\nname = \"app\"\npath = \"db/app.db\"\n",
            data.display(),
            backups.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(crate::support::lifeboat_bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--json", "snapshot"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let tag = json(&out)["snapshot"]["tag"].as_str().unwrap().to_string();
    let m = manifest(&backups.join(format!("{tag}.tar.gz")));
    assert_eq!(m["databases"][0]["file"]["mode"], "0640", "{m:#}");
    assert_eq!(m["databases"][0]["file"]["user"], "nobody", "{m:#}");
    assert_eq!(m["data_dir"]["mode"], "0750", "{m:#}");

    // The machine is lost: only /srv (root's) is left, and the archive
    // (brought back into backup_dir by the operator, when it is inside).
    let kept = root.path().join("kept.tar.gz");
    std::fs::copy(backups.join(format!("{tag}.tar.gz")), &kept).unwrap();
    std::fs::remove_dir_all(&data).unwrap();
    if backups_inside {
        std::fs::create_dir_all(&backups).unwrap();
        std::fs::copy(&kept, backups.join(format!("{tag}.tar.gz"))).unwrap();
    }
    let out = run(&["restore", &tag]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for (p, mode) in [(&data, 0o750), (&db, 0o640)] {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY), "{}", p.display());
        assert_eq!(m.mode() & 0o777, mode, "{}", p.display());
    }
    // The directory the restore created on the way is the account's too.
    let m = std::fs::metadata(data.join("db")).unwrap();
    assert_eq!((m.uid(), m.gid()), (NOBODY, NOBODY), "data/db");
    if backups_inside {
        let m = std::fs::metadata(&backups).unwrap();
        assert_eq!(m.uid(), 0, "lifeboat's own directory stays root's");
    }
    // The application's first write succeeds, as its own account.
    let out = std::process::Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
            "--",
        ])
        .arg("sqlite3")
        .arg(&db)
        .arg("INSERT INTO t VALUES (2); SELECT count(*) FROM t;")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
}

/// While snapshots are partial, a manual `prune` keeps the newest complete
/// one, whatever the policy: it holds the newest copy of what they lack
/// (found by review).
#[test]
fn prune_keeps_the_newest_complete_snapshot_while_later_ones_are_partial() {
    use crate::support::faketime::with_clock;
    let app = tasks_app(
        "[[database]]\nname = \"notes\"\npath = \"notes.db\"\n\
         [retention]\nhourly = 1\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n",
    );
    sqlite(
        &app.data_dir().join("notes.db"),
        "CREATE TABLE n(v); INSERT INTO n VALUES (1);",
    );
    let run = |offset: &str| {
        with_clock(&mut app.cmd(&["snapshot"]), offset)
            .output()
            .unwrap()
    };
    let out = run("-3h");
    assert!(out.status.success(), "{}", text(&out));
    let complete = app.last_run()["snapshot"]["tag"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(app.data_dir().join("notes.db"), b"").unwrap();
    for offset in ["-2h", "-1h"] {
        let out = run(offset);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    }
    let out = app.run(&["prune"]);
    assert!(out.status.success(), "{}", text(&out));
    let left = app.archives();
    assert!(
        left.iter().any(|a| a.starts_with(&complete)),
        "{complete} was pruned: {left:?}\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains("newest complete snapshot"),
        "{}",
        text(&out)
    );
}
