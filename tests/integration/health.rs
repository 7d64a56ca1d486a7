//! Health, drills, metrics and logs, each state reached by real runs of the
//! binary (records are aged by rewriting their timestamps, never faked).

use crate::support::obs::*;
use crate::support::{App, text};
use serde_json::Value;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

const HOUR: i64 = 3600;

fn health(app: &App, code: i32) -> (String, Value) {
    let out = expect(app, &["health"], code);
    let json = json(&expect(app, &["--json", "health"], code));
    assert_eq!(json["exit_code"], code);
    (stdout(&out), json)
}

fn problems(json: &Value) -> String {
    json["problems"].to_string()
}

/// Names, sizes and mtimes of everything in backup_dir.
fn listing(app: &App) -> BTreeMap<String, (u64, std::time::SystemTime)> {
    std::fs::read_dir(app.backup_dir())
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                (m.len(), m.modified().unwrap()),
            )
        })
        .collect()
}

#[test]
fn fresh_snapshot_and_drill_are_ok_and_health_writes_nothing() {
    let app = tasks_app("");
    let tag = snapshot(&app);

    // No drill yet: a warning, and the summary still describes the snapshot.
    let (out, json) = health(&app, 1);
    assert!(
        out.starts_with("LIFEBOAT WARNING - no restore drill"),
        "{out}"
    );
    assert!(out.contains(&tag), "{out}");
    assert_eq!(json["drill"]["state"], "missing");

    expect(&app, &["drill"], 0);
    // Tests run as root, where a read-only mode proves nothing: instead,
    // nothing in backup_dir (nor the directory itself) may change.
    let dir_mtime = || {
        std::fs::metadata(app.backup_dir())
            .unwrap()
            .modified()
            .unwrap()
    };
    let (before, dir_before) = (listing(&app), dir_mtime());
    let (out, json) = health(&app, 0);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with(&format!("LIFEBOAT OK - last snapshot {tag} ")),
        "{out}"
    );
    assert!(first.contains("local only (no remote)"), "{out}");
    assert_eq!(json["status"], "OK");
    assert_eq!(json["last_success"]["tag"], tag.as_str());
    assert!(json["last_success"]["age_secs"].as_i64().unwrap() < 60);
    assert!(json["last_success"]["archive_bytes"].as_u64().unwrap() > 0);
    assert_eq!(json["drill"]["outcome"], "success");
    assert_eq!(json["drill"]["tag"], tag.as_str());
    assert_eq!(json["remote"]["configured"], false);
    assert_eq!(json["problems"].as_array().unwrap().len(), 0);
    // No lock file, no temp file, nothing touched.
    assert_eq!(listing(&app), before, "health must not write");
    assert_eq!(
        dir_mtime(),
        dir_before,
        "health must not create or remove anything"
    );
}

#[test]
fn aged_record_warns_then_goes_critical() {
    let app = tasks_app("[health]\ncadence = \"1h\"\n");
    snapshot(&app);
    expect(&app, &["drill"], 0);
    let record = app.backup_dir().join("last_run.json");
    let keys = ["started_at", "finished_at", "last_success.finished_at"];

    age_record(&record, &keys, chrono::Duration::hours(3));
    let (out, json) = health(&app, 1);
    assert!(
        out.starts_with("LIFEBOAT WARNING - last successful snapshot"),
        "{out}"
    );
    assert!(problems(&json).contains("warning after 2h"), "{json}");
    assert!(json["last_success"]["age_secs"].as_i64().unwrap() >= 3 * HOUR);
    assert_eq!(json["thresholds"]["warn_after_secs"], 2 * HOUR);

    age_record(&record, &keys, chrono::Duration::hours(2));
    let (out, json) = health(&app, 2);
    assert!(
        out.starts_with("LIFEBOAT CRITICAL - last successful snapshot"),
        "{out}"
    );
    assert!(problems(&json).contains("critical after 4h"), "{json}");
    assert_eq!(json["status"], "CRITICAL");
}

#[test]
fn failed_run_warns_while_the_earlier_success_is_fresh() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    expect(&app, &["drill"], 0);
    std::fs::remove_file(app.data_dir().join("db/tasks.db")).unwrap();
    expect(&app, &["snapshot"], 1);

    let (out, json) = health(&app, 1);
    assert!(
        out.starts_with("LIFEBOAT WARNING - last run (`snapshot`) failed"),
        "{out}"
    );
    assert!(out.contains("does not exist"), "{out}");
    assert_eq!(json["last_run"]["status"], "failed");
    assert_eq!(json["last_run"]["error"]["kind"], "database");
    assert_eq!(json["last_success"]["tag"], tag.as_str());
}

#[test]
fn no_success_ever_is_critical() {
    let app = App::new();
    app.write_config(TASKS);
    expect(&app, &["snapshot"], 1);
    let (out, json) = health(&app, 2);
    assert!(
        out.starts_with("LIFEBOAT CRITICAL - no snapshot has ever succeeded"),
        "{out}"
    );
    assert!(json["last_success"].is_null());
}

#[test]
fn failed_push_warns_that_the_snapshot_is_only_local() {
    // A "remote directory" that is a regular file: every push fails.
    let app = tasks_app("[remote.dir]\npath = \"not-a-dir\"\n");
    std::fs::write(app.root().join("not-a-dir"), b"").unwrap();
    let out = expect(&app, &["snapshot"], 1);
    assert!(text(&out).contains("not pushed"), "{}", text(&out));

    let (out, json) = health(&app, 1);
    assert!(out.contains("NOT pushed"), "{out}");
    assert!(
        problems(&json).contains("the snapshot is only on this machine"),
        "{json}"
    );
    assert_eq!(json["remote"]["configured"], true);
    assert_eq!(json["remote"]["last_push"], "failed");
    assert!(json["remote"]["error"].is_string(), "{json}");
    assert_eq!(json["last_success"]["pushed"], false);
}

#[test]
fn failed_retention_deletion_warns() {
    let app =
        tasks_app("[retention]\nhourly = 1\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\n");
    let tag = snapshot(&app);
    expect(&app, &["drill"], 0);
    // An expired snapshot that cannot be deleted: a directory under its
    // other archive name cannot be removed as a file (even by root).
    let old = "snap-20200101T000000Z";
    copy_as(&archive_path(&app, &tag), old);
    std::fs::create_dir(app.backup_dir().join(format!("{old}.tar.zst"))).unwrap();
    expect(&app, &["snapshot"], 0);

    let (out, json) = health(&app, 1);
    assert!(
        out.starts_with("LIFEBOAT WARNING - retention could not delete 1 snapshot(s)"),
        "{out}"
    );
    assert_eq!(json["retention_failures"][0]["tag"], old);
    assert_eq!(json["retention_failures"][0]["place"], "local");
}

#[test]
fn missing_or_corrupt_record_or_config_is_unknown() {
    let app = tasks_app("");
    let (out, json) = health(&app, 3);
    assert!(
        out.starts_with("LIFEBOAT UNKNOWN - no last_run.json"),
        "{out}"
    );
    assert_eq!(json["status"], "UNKNOWN");

    std::fs::create_dir_all(app.backup_dir()).unwrap();
    std::fs::write(app.backup_dir().join("last_run.json"), b"{\"status\": ").unwrap();
    let (out, json) = health(&app, 3);
    assert!(out.contains("not a valid run record"), "{out}");
    assert_eq!(json["status"], "UNKNOWN");

    std::fs::write(app.config_path(), "data_dir = 3\n").unwrap();
    let (out, json) = health(&app, 3);
    assert!(
        out.starts_with("LIFEBOAT UNKNOWN - invalid config"),
        "{out}"
    );
    assert_eq!(json["status"], "UNKNOWN");
}

#[test]
fn stale_or_unreadable_drill_warns() {
    let app = tasks_app("[health]\ndrill_max_age = \"7d\"\n");
    snapshot(&app);
    expect(&app, &["drill"], 0);
    let drill = app.backup_dir().join("drill.json");
    age_record(
        &drill,
        &["started_at", "finished_at", "last_success_at"],
        chrono::Duration::days(8),
    );
    let (out, json) = health(&app, 1);
    assert!(
        out.starts_with("LIFEBOAT WARNING - last successful restore drill was 8d ago"),
        "{out}"
    );
    assert!(json["drill"]["last_success_age_secs"].as_i64().unwrap() >= 8 * 24 * HOUR);

    std::fs::write(&drill, b"garbage").unwrap();
    let (out, json) = health(&app, 1);
    assert!(out.contains("cannot read drill.json"), "{out}");
    assert_eq!(json["drill"]["state"], "unreadable");
}

#[test]
fn drill_records_success_and_keeps_it_over_a_failure() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    let out = expect(&app, &["--json", "drill"], 0);
    let rec = json(&out);
    assert_eq!(rec["outcome"], "success");
    assert_eq!(rec["tag"], tag.as_str());
    assert_eq!(rec["source"], "local");
    assert!(rec["duration_secs"].as_f64().unwrap() > 0.0);
    assert_eq!(rec["databases"][0]["name"], "tasks");
    assert_eq!(rec["databases"][0]["rows"], ROWS);
    assert_eq!(rec["databases"][0]["schema_version"], 3);
    let on_disk: Value =
        serde_json::from_slice(&std::fs::read(app.backup_dir().join("drill.json")).unwrap())
            .unwrap();
    assert_eq!(on_disk["last_success_at"], rec["finished_at"]);
    let mode = std::fs::metadata(app.backup_dir().join("drill.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    // The live database is not what a drill restores into.
    let live = app.data_dir().join("db/tasks.db");
    let live_before = std::fs::read(&live).unwrap();

    corrupt_page_keep_checksums(&archive_path(&app, &tag));
    let out = expect(&app, &["drill"], 1);
    assert!(text(&out).contains("integrity_check"), "{}", text(&out));
    let failed: Value =
        serde_json::from_slice(&std::fs::read(app.backup_dir().join("drill.json")).unwrap())
            .unwrap();
    assert_eq!(failed["outcome"], "failed");
    assert_eq!(failed["error"]["kind"], "refused");
    assert_eq!(failed["last_success_at"], rec["finished_at"]);
    assert_eq!(std::fs::read(&live).unwrap(), live_before);
    // No scratch directory is left behind.
    let leftovers: Vec<String> = std::fs::read_dir(app.backup_dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".drill-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // The earlier success is within drill_max_age: health stays OK.
    let (out, json) = health(&app, 0);
    assert!(out.contains("last drill failed"), "{out}");
    assert_eq!(json["drill"]["outcome"], "failed");
}

#[test]
fn drill_of_an_unknown_tag_is_a_usage_error_and_not_recorded() {
    let app = tasks_app("");
    snapshot(&app);
    let out = expect(&app, &["drill", "--tag", "snap-20000101T000000Z"], 2);
    assert!(
        text(&out).contains("no snapshot snap-20000101T000000Z"),
        "{}",
        text(&out)
    );
    assert!(!app.backup_dir().join("drill.json").exists());
}

#[test]
fn metrics_parse_with_the_reference_parser() {
    let app = tasks_app("[health]\nmetrics_file = \"lifeboat.prom\"\n");
    let flag_file = app.root().join("flag.prom");
    let out = expect(
        &app,
        &[
            "--json",
            "--metrics-file",
            flag_file.to_str().unwrap(),
            "snapshot",
        ],
        0,
    );
    let run = json(&out);
    // --metrics-file wins over [health] metrics_file.
    assert!(!app.root().join("lifeboat.prom").exists());
    let m = parse_prometheus(&flag_file);
    for family in [
        "lifeboat_last_run_timestamp_seconds",
        "lifeboat_last_success_timestamp_seconds",
        "lifeboat_last_run_success",
        "lifeboat_run_duration_seconds",
        "lifeboat_snapshot_archive_bytes",
        "lifeboat_database_bytes",
        "lifeboat_snapshots",
        "lifeboat_last_drill_success_timestamp_seconds",
    ] {
        assert_eq!(m[family]["type"], "gauge", "{family}: {m}");
    }
    assert_eq!(
        sample(&m, "lifeboat_last_run_success", &[("command", "snapshot")]),
        1.0
    );
    let finished: chrono::DateTime<chrono::Utc> =
        run["finished_at"].as_str().unwrap().parse().unwrap();
    let ts = sample(&m, "lifeboat_last_run_timestamp_seconds", &[]);
    assert!((ts - finished.timestamp_millis() as f64 / 1000.0).abs() < 0.01);
    assert!(sample(&m, "lifeboat_last_success_timestamp_seconds", &[]) > 1.7e9);
    assert_eq!(
        sample(&m, "lifeboat_snapshot_archive_bytes", &[]),
        run["snapshot"]["archive_bytes"].as_f64().unwrap()
    );
    assert_eq!(
        sample(&m, "lifeboat_database_bytes", &[("db", "tasks")]),
        run["snapshot"]["databases"][0]["bytes"].as_f64().unwrap()
    );
    let local = |kind| {
        sample(
            &m,
            "lifeboat_snapshots",
            &[("where", "local"), ("kind", kind)],
        )
    };
    assert_eq!((local("scheduled"), local("manual")), (1.0, 0.0));
    assert_eq!(
        sample(&m, "lifeboat_last_drill_success_timestamp_seconds", &[]),
        0.0
    );
    let mode = std::fs::metadata(&flag_file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644, "readable by the collector");

    // [health] metrics_file, refreshed by a drill and a manual snapshot.
    expect(&app, &["drill"], 0);
    expect(&app, &["backup-now"], 0);
    let m = parse_prometheus(&app.root().join("lifeboat.prom"));
    assert!(sample(&m, "lifeboat_last_drill_success_timestamp_seconds", &[]) > 1.7e9);
    assert_eq!(sample(&m, "lifeboat_last_drill_success", &[]), 1.0);
    assert_eq!(local("scheduled"), 1.0);
    let local = |kind| {
        sample(
            &m,
            "lifeboat_snapshots",
            &[("where", "local"), ("kind", kind)],
        )
    };
    assert_eq!((local("scheduled"), local("manual")), (1.0, 1.0));
    // backup-now is a snapshot run: it moves the `snapshot` series; the
    // drill has its own.
    assert_eq!(
        sample(&m, "lifeboat_last_run_success", &[("command", "snapshot")]),
        1.0
    );
    assert_eq!(
        sample(&m, "lifeboat_last_run_success", &[("command", "drill")]),
        1.0
    );
}

#[test]
fn failed_run_metrics_say_so() {
    let app = tasks_app("[health]\nmetrics_file = \"lifeboat.prom\"\n");
    snapshot(&app);
    std::fs::remove_file(app.data_dir().join("db/tasks.db")).unwrap();
    expect(&app, &["snapshot"], 1);
    let m = parse_prometheus(&app.root().join("lifeboat.prom"));
    assert_eq!(sample(&m, "lifeboat_last_run_success", &[]), 0.0);
    // The earlier success is still reported, with its database sizes.
    assert!(sample(&m, "lifeboat_last_success_timestamp_seconds", &[]) > 1.7e9);
    assert!(sample(&m, "lifeboat_database_bytes", &[("db", "tasks")]) > 0.0);
}

#[test]
fn json_logs_carry_the_snapshot_tag() {
    let app = tasks_app("");
    let out = expect(
        &app,
        &["--log-format", "json", "-v", "--json", "snapshot"],
        0,
    );
    let tag = json(&out)["snapshot"]["tag"].as_str().unwrap().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let events: Vec<Value> = stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let written = events
        .iter()
        .find(|e| e["fields"]["message"] == "snapshot written and verified")
        .unwrap_or_else(|| panic!("no snapshot event in {stderr}"));
    assert_eq!(written["fields"]["tag"], tag.as_str());
    assert_eq!(written["level"], "INFO");
    assert!(written["fields"]["archive_bytes"].as_u64().unwrap() > 0);
    assert!(
        events
            .iter()
            .any(|e| e["fields"]["db"] == "tasks" && e["fields"]["bytes"].as_u64().is_some()),
        "{stderr}"
    );
}

#[test]
fn drill_downloads_from_the_dir_remote() {
    let app = tasks_app("[remote.dir]\npath = \"remote\"\n");
    app.set_up_remote();
    let tag = snapshot(&app);
    // Only the remote copy is left: the drill has to fetch it.
    std::fs::remove_file(archive_path(&app, &tag)).unwrap();
    let rec = json(&expect(&app, &["--json", "drill"], 0));
    let remote = app.root().join("remote");
    assert_eq!(rec["source"], format!("dir:{}", remote.display()));
    assert_eq!(rec["tag"], tag.as_str());
    assert_eq!(rec["databases"][0]["rows"], ROWS);
    assert_eq!(
        app.archives().len(),
        0,
        "the download stays in the scratch dir"
    );

    let (out, report) = health(&app, 0);
    assert!(out.contains(", pushed, "), "{out}");
    assert_eq!(report["remote"]["last_push"], "pushed");
    assert_eq!(report["drill"]["source"], rec["source"]);

    // A damaged remote copy fails the drill; the earlier success is kept.
    flip_middle_byte(&remote.join(format!("{tag}.tar.gz")));
    let out = expect(&app, &["--json", "drill"], 1);
    let failed = json(&out);
    assert_eq!(failed["outcome"], "failed", "{}", text(&out));
    assert_eq!(failed["last_success_at"], rec["finished_at"]);
}

#[test]
fn drill_downloads_from_the_gh_emulator() {
    use crate::support::gh::{Emulator, gh_bins, github_config};
    for gh in gh_bins("drill_downloads_from_the_gh_emulator") {
        let emu = Emulator::start();
        let app = tasks_app(&github_config(&gh.path, "30s"));
        let run = |args: &[&str], code: i32| {
            let mut cmd = app.cmd(args);
            emu.env(&mut cmd);
            let out = cmd.output().unwrap();
            assert_eq!(
                out.status.code(),
                Some(code),
                "{} {args:?}\n{}",
                gh.version,
                text(&out)
            );
            out
        };
        let tag = json(&run(&["--json", "snapshot"], 0))["snapshot"]["tag"]
            .as_str()
            .unwrap()
            .to_string();
        std::fs::remove_file(archive_path(&app, &tag)).unwrap();

        let rec = json(&run(&["--json", "drill"], 0));
        assert_eq!(rec["source"], "github:o/r", "{}", gh.version);
        assert_eq!(rec["tag"], tag.as_str());
        assert_eq!(rec["databases"][0]["rows"], ROWS);
        assert!(
            app.archives().is_empty(),
            "the download stays in the scratch dir"
        );
        // health never calls gh: no emulator environment needed.
        let (out, _) = health(&app, 0);
        assert!(out.contains(", pushed, "), "{out}");

        let listed = json(&run(&["--json", "list", "--remote"], 0));
        assert_eq!(listed["snapshots"][0]["tag"], tag.as_str());
        assert_eq!(listed["snapshots"][0]["where"], "remote");
        let verified = json(&run(&["--json", "verify", "--remote", "--latest"], 0));
        assert_eq!(verified["snapshots"][0]["source"], "github:o/r");
    }
}

#[test]
fn drill_runs_the_migration_ladder_in_the_scratch_copy() {
    // The snapshot is at schema v3; the application's ladder now reaches v4.
    let app = tasks_app("migrations = \"ladder\"\n");
    let ladder = app.root().join("ladder");
    std::fs::create_dir_all(&ladder).unwrap();
    for v in 1..=3 {
        std::fs::write(ladder.join(format!("000{v}_step.sql")), "SELECT 1;\n").unwrap();
    }
    std::fs::write(
        ladder.join("0004_add_done.sql"),
        "ALTER TABLE t ADD COLUMN done INTEGER NOT NULL DEFAULT 0;\n",
    )
    .unwrap();
    let tag = snapshot(&app);
    let rec = json(&expect(&app, &["--json", "drill"], 0));
    assert_eq!(rec["tag"], tag.as_str());
    assert_eq!(rec["databases"][0]["schema_version"], 3);
    assert_eq!(rec["databases"][0]["restored_schema_version"], 4);
    assert_eq!(rec["databases"][0]["rows"], ROWS);
    // Only the scratch copy was migrated.
    let live = rusqlite::Connection::open(app.data_dir().join("db/tasks.db")).unwrap();
    let v: i64 = live
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 3);
}
