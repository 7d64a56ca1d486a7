//! The commands agree with each other and with what they record. `verify`,
//! `drill` and `restore --dry-run` reach one verdict on a snapshot: a
//! foreign-key orphan the source already had is a note, not damage, while a
//! damaged page or a migration step that fails on the data fails all three.
//! A failed `migrate` is recorded as a failed `migrate` run, after its safety
//! snapshot. A usage error is not a run: it changes no record, no metric and
//! no health verdict. And the metrics file keeps one series per command, so
//! a failed restore does not hide that the last snapshot succeeded.

use crate::support::obs::*;
use crate::support::{App, sqlite, text};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

// ---------------------------------------------------------------------------
// Fixtures

/// The first step of the ladder, and the schema the `app` database is at.
const STEP_1: &str = "CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT NOT NULL);\n";
/// A second step that cannot run on the `app` database: `t.x` has a duplicate.
const FAILING_STEP: &str = "0002_unique_x.sql";

/// An app whose database `app` (`db/app.db`) is at `user_version` 1, as its
/// ladder's only step (`0001_init.sql`) leaves it, with `dup` twice in `t.x`.
fn ladder_app() -> App {
    let app = App::new();
    sqlite(
        &app.data_dir().join("db/app.db"),
        &format!(
            "{STEP_1} INSERT INTO t(x) VALUES ('dup'), ('dup'), ('once'); PRAGMA user_version = 1;"
        ),
    );
    let ladder = app.root().join("ladder");
    std::fs::create_dir_all(&ladder).unwrap();
    std::fs::write(ladder.join("0001_init.sql"), STEP_1).unwrap();
    app.write_config(
        "[[database]]\nname = \"app\"\npath = \"db/app.db\"\nmigrations = \"ladder\"\n",
    );
    app
}

/// Add step 2, which fails on this data and is rolled back.
fn add_failing_step(app: &App) {
    std::fs::write(
        app.root().join("ladder").join(FAILING_STEP),
        "CREATE UNIQUE INDEX t_x_unique ON t(x);\n",
    )
    .unwrap();
}

fn user_version(db: &Path) -> i64 {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

// ---------------------------------------------------------------------------
// 1. One verdict for verify, drill and restore --dry-run

/// A good snapshot of the tasks app.
fn clean() -> (App, String) {
    let app = tasks_app("");
    let tag = snapshot(&app);
    (app, tag)
}

/// A child row whose parent never existed, in the source itself: the
/// snapshot is a faithful copy, so judging it damaged would refuse every
/// snapshot this application ever had.
fn orphan_foreign_key() -> (App, String) {
    let app = App::new();
    // rusqlite's bundled SQLite enforces foreign keys by default; an
    // application on stock SQLite does not, which is how orphans get in.
    sqlite(
        &app.data_dir().join("db/family.db"),
        "PRAGMA foreign_keys = OFF;
         CREATE TABLE parent(id INTEGER PRIMARY KEY);
         CREATE TABLE child(id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent(id));
         INSERT INTO parent(id) VALUES (1);
         INSERT INTO child(id, parent_id) VALUES (1, 1), (2, 99);",
    );
    app.write_config("[[database]]\nname = \"family\"\npath = \"db/family.db\"\n");
    let tag = snapshot(&app);
    (app, tag)
}

/// A damaged table page behind a manifest whose sha256 matches it: only
/// SQLite's integrity check can see it.
fn corrupted() -> (App, String) {
    let (app, tag) = clean();
    corrupt_page_keep_checksums(&archive_path(&app, &tag));
    (app, tag)
}

/// A snapshot at v1 whose ladder now has a step 2 that fails on its data.
/// The step is added after the snapshot, so the snapshot itself succeeds.
fn migration_fails() -> (App, String) {
    let app = ladder_app();
    let tag = snapshot(&app);
    add_failing_step(&app);
    (app, tag)
}

#[test]
fn verify_drill_and_dry_run_restore_reach_one_verdict() {
    type Make = fn() -> (App, String);
    let cases: [(&str, Make, i32); 4] = [
        ("clean", clean, 0),
        ("orphan foreign key", orphan_foreign_key, 0),
        ("corrupted", corrupted, 1),
        ("migration fails", migration_fails, 1),
    ];
    // Every disagreement is collected, so one run shows the whole table.
    let mut wrong = Vec::new();
    for (case, make, want) in cases {
        // No remote: the drill drills the local archive.
        let (app, tag) = make();
        let commands: [&[&str]; 3] = [
            &["verify", &tag],
            &["drill", "--tag", &tag],
            &["restore", &tag, "--dry-run", "--force"],
        ];
        for args in commands {
            let out = app.run(args);
            let all = text(&out);
            let run = format!("{case}: `lifeboat {}`", args.join(" "));
            if out.status.code() != Some(want) {
                wrong.push(format!("{run} must exit {want}\n{all}"));
            }
            if case == "orphan foreign key" {
                // Accepted, but not silently: the finding is named (the
                // line a clean dry run prints, `foreign_key_check ok`, is
                // not a finding)...
                if !all
                    .replace("foreign_key_check ok", "")
                    .contains("foreign_key_check")
                {
                    wrong.push(format!("{run} must name foreign_key_check\n{all}"));
                }
                // ...and not called damage.
                if all.to_lowercase().contains("damaged") {
                    wrong.push(format!("{run} must not say `damaged`\n{all}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n-----\n"));
}

// ---------------------------------------------------------------------------
// 2. A failed migration is a failed `migrate` run

#[test]
fn a_failed_migration_is_recorded_as_a_failed_migrate_run() {
    let app = ladder_app();
    add_failing_step(&app);
    let out = expect(&app, &["migrate"], 1);

    // The step ran in a transaction: the live database is where it was.
    assert_eq!(
        user_version(&app.data_dir().join("db/app.db")),
        1,
        "{}",
        text(&out)
    );
    // The safety snapshot was taken first, and holds the database at v1.
    let archives = app.archives();
    assert_eq!(archives.len(), 1, "{archives:?}\n{}", text(&out));
    let manifest =
        lifeboat::snapshot::archive::read_manifest(&app.backup_dir().join(&archives[0]), None)
            .unwrap()
            .manifest;
    assert_eq!(manifest.reason.as_deref(), Some("pre-migrate"));
    assert_eq!(manifest.databases[0].schema_version, 1);

    // The run recorded is the migration, not its safety snapshot: a monitor
    // must see that the last thing lifeboat did failed, and why.
    let record = app.last_run();
    assert_eq!(record["command"], "migrate", "{record}\n{}", text(&out));
    assert_eq!(record["status"], "failed", "{record}");
    let message = record["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(FAILING_STEP), "{record}");
}

// ---------------------------------------------------------------------------
// 3. Usage errors are not runs

/// `line` without the words that start with a digit: ages ("3s ago") move
/// with the clock, the verdict must not.
fn without_numbers(line: &str) -> String {
    let words: Vec<&str> = line
        .split_whitespace()
        .filter(|w| !w.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    words.join(" ")
}

/// Everything a monitor reads: the run and drill records, the metrics file,
/// and `health`'s exit code and first line.
fn observed(app: &App) -> BTreeMap<&'static str, String> {
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let health = app.run(&["health"]);
    let stdout = String::from_utf8_lossy(&health.stdout).into_owned();
    let first = without_numbers(stdout.lines().next().unwrap_or_default());
    BTreeMap::from([
        (
            "last_run.json",
            read(&app.backup_dir().join("last_run.json")),
        ),
        ("drill.json", read(&app.backup_dir().join("drill.json"))),
        ("metrics", read(&app.root().join("lifeboat.prom"))),
        (
            "health",
            format!("exit {:?}: {first}", health.status.code()),
        ),
    ])
}

/// The lines of `before` gone from `after` (`-`) and new in it (`+`).
fn changed_lines(before: &str, after: &str) -> String {
    let gone = before.lines().filter(|l| !after.lines().any(|a| a == *l));
    let new = after.lines().filter(|l| !before.lines().any(|b| b == *l));
    let mut out: Vec<String> = gone.map(|l| format!("- {l}")).collect();
    out.extend(new.map(|l| format!("+ {l}")));
    if out.is_empty() {
        return "(the same lines, reordered or with other whitespace)".to_string();
    }
    out.join("\n")
}

/// An app with a dir remote and a metrics file, one pushed snapshot and a
/// drill (so that health is OK: from WARNING, "no restore drill yet", a
/// usage error recorded as a failed run would not change the verdict).
/// Returns the snapshot's tag and what a monitor sees.
fn healthy_app() -> (App, String, BTreeMap<&'static str, String>) {
    let app =
        tasks_app("[remote.dir]\npath = \"remote\"\n[health]\nmetrics_file = \"lifeboat.prom\"\n");
    app.set_up_remote();
    let tag = snapshot(&app);
    expect(&app, &["drill"], 0);
    let seen = observed(&app);
    assert!(
        seen["health"].starts_with("exit Some(0): LIFEBOAT OK"),
        "{seen:#?}"
    );
    for file in ["last_run.json", "drill.json", "metrics"] {
        assert!(!seen[file].is_empty(), "{file} was written: {seen:#?}");
    }
    (app, tag, seen)
}

#[test]
fn usage_errors_change_no_record_metric_or_health() {
    let absent = "snap-20200101T000000Z";
    // `TAG` stands for the existing snapshot's tag.
    let usage_errors: [&[&str]; 7] = [
        // Not a tag.
        &["restore", "newest"],
        // Nothing was ever restored.
        &["restore", "--undo"],
        // No [github] section.
        &["restore", "TAG", "--from", "github"],
        // A tag that is neither local nor on the remote.
        &["restore", absent, "--dry-run"],
        &["drill", "--tag", absent],
        &["verify", absent],
        // No such database in the config.
        &["migrate", "--db", "nosuchdb"],
    ];
    let mut wrong = Vec::new();
    for args in usage_errors {
        // Each from the same healthy state, so each one is judged alone.
        let (app, tag, before) = healthy_app();
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "TAG" { tag.as_str() } else { a })
            .collect();
        let out = app.run(&args);
        let after = observed(&app);
        let mut problems = Vec::new();
        if out.status.code() != Some(2) {
            problems.push("it must exit 2".to_string());
        }
        for (what, was) in &before {
            if after[what] != *was {
                let diff = changed_lines(was, &after[what]);
                problems.push(format!("it changed {what}:\n{diff}"));
            }
        }
        if !problems.is_empty() {
            let run = args.join(" ");
            let problems = problems.join("\n");
            wrong.push(format!("`lifeboat {run}`: {problems}\n{}", text(&out)));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n-----\n"));
}

// ---------------------------------------------------------------------------
// 4. Metrics keep the snapshot series after a failed restore

/// Every sample called `name`, whichever family the parser put it in (an
/// `info` family drops the suffix from its name, a sample keeps it).
fn samples_named<'a>(metrics: &'a Value, name: &str) -> Vec<&'a Value> {
    metrics
        .as_object()
        .unwrap()
        .values()
        .flat_map(|f| f["samples"].as_array().unwrap())
        .filter(|s| s[0] == name)
        .collect()
}

#[test]
fn metrics_keep_the_snapshot_series_after_a_failed_restore() {
    let app = tasks_app("[health]\nmetrics_file = \"lifeboat.prom\"\n");
    let prom = app.root().join("lifeboat.prom");
    let success =
        |m: &Value, command: &str| sample(m, "lifeboat_last_run_success", &[("command", command)]);
    snapshot(&app);
    assert_eq!(success(&parse_prometheus(&prom), "snapshot"), 1.0);

    // backup-now is a snapshot run too: it shares the `snapshot` series.
    let manual = take(&app, "backup-now");
    assert_eq!(success(&parse_prometheus(&prom), "snapshot"), 1.0);

    flip_middle_byte(&archive_path(&app, &manual));
    let out = expect(&app, &["restore", &manual, "--force"], 1);
    let m = parse_prometheus(&prom);
    // An alert on a failed backup must not fire because a restore failed,
    // nor one on a failed restore go quiet at the next snapshot.
    assert_eq!(success(&m, "snapshot"), 1.0, "{}", text(&out));
    assert_eq!(success(&m, "restore"), 0.0, "{}", text(&out));
    let when = sample(
        &m,
        "lifeboat_last_run_timestamp_seconds",
        &[("command", "restore")],
    );
    assert!(when > 0.0, "{m}");

    let build = samples_named(&m, "lifeboat_build_info");
    assert!(
        build
            .iter()
            .any(|s| s[2] == 1.0 && s[1]["version"].as_str().is_some_and(|v| !v.is_empty())),
        "lifeboat_build_info {{version=...}} 1: {m}"
    );
    let health = sample(&m, "lifeboat_health_status", &[]);
    assert!(
        (0.0..=3.0).contains(&health) && health.fract() == 0.0,
        "lifeboat_health_status {health}: {m}"
    );
}
