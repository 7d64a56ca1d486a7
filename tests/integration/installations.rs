//! Installations sharing one remote keep apart: each snapshot's tag names
//! the installation that took it, so retention keeps exactly its own
//! policy's snapshots and never deletes another's, `drill` and "latest"
//! judge and restore only their own, a restore of another installation's
//! snapshot is refused unless asked for by name, and snapshots taken before
//! names existed stay listable and restorable and are pruned only once
//! adopted. The scheduled minute is derived from the name.

use crate::support::faketime::with_clock;
use crate::support::obs::{expect, json};
use crate::support::{App, sqlite, text};
use serde_json::Value;
use std::path::Path;

/// Each installation keeps its three newest hourly snapshots, nothing else.
const POLICY: &str =
    "[retention]\nhourly = 3\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n";

/// An installation `name` (or unnamed) whose database holds its own name,
/// pushing to the directory remote `remote`.
fn installation(name: Option<&str>, remote: &Path, extra: &str) -> App {
    let app = App::new();
    let who = name.unwrap_or("unnamed");
    sqlite(
        &app.data_dir().join("app.db"),
        &format!("CREATE TABLE who(name TEXT); INSERT INTO who VALUES ('{who}');"),
    );
    write_config(&app, name, remote, extra);
    app
}

fn write_config(app: &App, name: Option<&str>, remote: &Path, extra: &str) {
    let named = name.map_or(String::new(), |n| format!("installation = \"{n}\"\n"));
    std::fs::write(
        app.config_path(),
        format!(
            "{named}data_dir = \"data\"\n[[database]]\nname = \"app\"\npath = \"app.db\"\n\
             {POLICY}{extra}[remote.dir]\npath = \"{}\"\n",
            remote.display()
        ),
    )
    .unwrap();
}

fn remote_tags(remote: &Path) -> Vec<String> {
    let mut tags: Vec<String> = crate::support::walk(remote)
        .iter()
        .filter_map(|p| {
            p.file_name()?
                .to_str()?
                .strip_suffix(".tar.gz")
                .map(String::from)
        })
        .collect();
    tags.sort();
    tags
}

fn who(db: &Path) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("SELECT name FROM who", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn two_installations_sharing_a_remote_keep_exactly_their_own() {
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("shared");
    let a = installation(Some("shop-a"), &remote, "");
    let b = installation(Some("shop-b"), &remote, "");
    a.set_up_remote();
    // The second installation marks nothing: the remote is set up already.
    b.set_up_remote();

    // Eight simulated hours, both in the same second every hour (the
    // schedule used to be minute 17 everywhere).
    for hours_ago in (1..=8).rev() {
        let offset = format!("-{hours_ago}h");
        let runs: Vec<_> = [&a, &b]
            .iter()
            .map(|app| {
                with_clock(&mut app.cmd(&["snapshot"]), &offset)
                    .spawn()
                    .unwrap()
            })
            .collect();
        for run in runs {
            let out = run.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", text(&out));
        }
    }
    let tags = remote_tags(&remote);
    let of = |name: &str| -> Vec<&String> {
        tags.iter()
            .filter(|t| t.starts_with(&format!("snap-{name}-")))
            .collect()
    };
    assert_eq!(of("shop-a").len(), 3, "{tags:?}");
    assert_eq!(of("shop-b").len(), 3, "{tags:?}");
    assert_eq!(tags.len(), 6, "{tags:?}");
    // The same holds in each installation's own backup_dir.
    for (app, name) in [(&a, "shop-a"), (&b, "shop-b")] {
        let local = app.archives();
        assert_eq!(local.len(), 3, "{local:?}");
        assert!(
            local
                .iter()
                .all(|n| n.starts_with(&format!("snap-{name}-")))
        );
    }

    // list: its own; --all: both.
    let own = json(&expect(&a, &["--json", "list", "--remote"], 0));
    let listed: Vec<&str> = own["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tag"].as_str().unwrap())
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.iter().all(|t| t.starts_with("snap-shop-a-")));
    let all = json(&expect(&a, &["--json", "list", "--remote", "--all"], 0));
    assert_eq!(all["snapshots"].as_array().unwrap().len(), 6);

    // drill judges its own data.
    let out = a.run(&["drill"]);
    assert!(out.status.success(), "{}", text(&out));
    let drill: Value =
        serde_json::from_slice(&std::fs::read(a.backup_dir().join("drill.json")).unwrap()).unwrap();
    assert!(
        drill["tag"].as_str().unwrap().starts_with("snap-shop-a-"),
        "{drill:#}"
    );

    // A fresh machine with A's configuration restores A's newest.
    let fresh = App::new();
    std::fs::create_dir_all(fresh.data_dir()).unwrap();
    write_config(&fresh, Some("shop-a"), &remote, "");
    let out = fresh.run(&["restore", "latest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(who(&fresh.data_dir().join("app.db")), "shop-a");

    // B's snapshot by name: refused, unless asked for with --installation.
    let theirs = of("shop-b")[0].clone();
    let live = std::fs::read(fresh.data_dir().join("app.db")).unwrap();
    let out = fresh.run(&["restore", &theirs, "--force"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("installation `shop-b`")
            && text(&out).contains("--installation shop-b"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(fresh.data_dir().join("app.db")).unwrap(),
        live
    );
    let out = fresh.run(&["restore", &theirs, "--force", "--installation", "shop-b"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(who(&fresh.data_dir().join("app.db")), "shop-b");
}

#[test]
fn unnamed_snapshots_stay_restorable_and_are_pruned_only_once_adopted() {
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("r");
    // Before names: an unnamed installation takes two snapshots.
    let app = installation(None, &remote, "");
    app.set_up_remote();
    for hours_ago in [30, 29] {
        let out = with_clock(&mut app.cmd(&["snapshot"]), &format!("-{hours_ago}h"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let unnamed = remote_tags(&remote);
    assert_eq!(unnamed.len(), 2);
    assert!(
        unnamed.iter().all(|t| t.starts_with("snap-2")),
        "{unnamed:?}"
    );
    // doctor warns about the missing name, naming the fix.
    let out = app.run(&["doctor"]);
    assert!(
        text(&out).contains("installation name") && text(&out).contains("installation = \""),
        "{}",
        text(&out)
    );

    // Named now: four hourly snapshots; the policy keeps three of its own,
    // and the unnamed ones are left alone.
    write_config(&app, Some("shop"), &remote, "");
    for hours_ago in (1..=4).rev() {
        let out = with_clock(&mut app.cmd(&["snapshot"]), &format!("-{hours_ago}h"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let tags = remote_tags(&remote);
    assert_eq!(tags.len(), 5, "{tags:?}");
    assert!(unnamed.iter().all(|t| tags.contains(t)), "{tags:?}");
    // Listed, verified and restored as before (no --installation needed).
    let listed = json(&expect(&app, &["--json", "list", "--remote"], 0));
    assert_eq!(listed["snapshots"].as_array().unwrap().len(), 5);
    expect(&app, &["verify", "--remote", &unnamed[0]], 0);
    expect(&app, &["restore", &unnamed[0], "--force"], 0);

    // Adopted: retention manages them like its own.
    write_config(&app, Some("shop"), &remote, "");
    let config = std::fs::read_to_string(app.config_path()).unwrap();
    std::fs::write(
        app.config_path(),
        config.replace("manual = 0\n", "manual = 0\nadopt_unnamed = true\n"),
    )
    .unwrap();
    let out = app.run(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let tags = remote_tags(&remote);
    assert!(tags.iter().all(|t| t.starts_with("snap-shop-")), "{tags:?}");
    assert_eq!(tags.len(), 3, "{tags:?}");
}

#[test]
fn the_scheduled_minute_comes_from_the_installation_name() {
    let remote_dir = tempfile::tempdir().unwrap();
    for name in ["shop-a", "shop-b", "blog"] {
        let app = installation(Some(name), remote_dir.path(), "");
        let out = expect(&app, &["schedule", "--print", "cron"], 0);
        let cron = String::from_utf8_lossy(&out.stdout).into_owned();
        let minute = lifeboat::schedule::minute_for(name);
        let snapshot_line = cron
            .lines()
            .find(|l| !l.starts_with('#') && l.contains(" -v snapshot"))
            .unwrap_or_else(|| panic!("{cron}"));
        assert!(
            snapshot_line.starts_with(&format!("{minute:02} ")),
            "{name}: {snapshot_line}"
        );
        let out = expect(&app, &["schedule", "--print", "systemd"], 0);
        let units = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            units.contains(&format!("OnCalendar=*-*-* *:{minute:02}:00")),
            "{units}"
        );
    }
}

#[test]
fn a_bad_installation_name_is_a_config_error_naming_a_good_one() {
    let remote_dir = tempfile::tempdir().unwrap();
    let app = installation(Some("Shop Prod"), remote_dir.path(), "");
    let out = app.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not a valid installation name")
            && text(&out).contains("\"shop-prod\""),
        "{}",
        text(&out)
    );
}

/// A neighbour that has not been named yet pushes unnamed snapshots to the
/// shared remote: they are listed, but "latest" for a named installation is
/// its own newest, never a newer unnamed one (found by review).
#[test]
fn latest_is_never_a_neighbours_newer_unnamed_snapshot() {
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = remote_dir.path().join("shared");
    let a = installation(Some("shop-a"), &remote, "");
    let b = installation(None, &remote, "");
    a.set_up_remote();
    b.set_up_remote();
    for (app, offset) in [(&a, "-2h"), (&b, "-1h")] {
        let out = with_clock(&mut app.cmd(&["snapshot"]), offset)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    let fresh = App::new();
    std::fs::create_dir_all(fresh.data_dir()).unwrap();
    write_config(&fresh, Some("shop-a"), &remote, "");
    let out = fresh.run(&["restore", "latest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(who(&fresh.data_dir().join("app.db")), "shop-a");
    // drill and verify --latest judge the same one.
    let out = fresh.run(&["--json", "verify", "--remote", "--latest"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        json(&out)["snapshots"][0]["tag"]
            .as_str()
            .unwrap()
            .starts_with("snap-shop-a-"),
        "{}",
        text(&out)
    );
}
