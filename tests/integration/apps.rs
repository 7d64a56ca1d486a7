//! The real-application corpus: databases made by software nobody on this
//! project wrote (Django's `migrate`, sqlite-utils with FTS4 and FTS5, a
//! Fossil repository, an application with its own collation and function
//! in indexes, SpatiaLite), each taken through snapshot → verify → drill →
//! a bad write by the application → restore, and the restored database
//! compared with a copy of the source taken before the damage, by tools
//! that are not lifeboat: `sqldiff` (Debian's sqlite3-tools), `sqlite3
//! .dump`, and the header pragmas. Every verdict must be ok and every
//! restore identical.
//!
//! The software is installed by `.ci/run` (`.ci/install-extra.sh` and its
//! `pip_install` line). Without it a case is skipped with the reason
//! printed, unless `LIFEBOAT_REQUIRE_APPS=1` (CI sets it): then it fails.

use crate::support::obs::{archive_path, expect, stdout, take};
use crate::support::{App, text};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The application defining `unicase` and `slugify()` (Anki-like).
const APP_DEFINED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/app_defined.py");

/// Whether every tool is here: a program on PATH, `py:MODULE` importable by
/// python3, or `sqlite3:EXTENSION` loadable by the sqlite3 shell.
fn have(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            let ok = if let Some(module) = t.strip_prefix("py:") {
                Command::new("python3")
                    .args(["-c", &format!("import {module}")])
                    .output()
                    .is_ok_and(|o| o.status.success())
            } else if let Some(ext) = t.strip_prefix("sqlite3:") {
                Command::new("sqlite3")
                    .args([":memory:", &format!(".load {ext}"), "SELECT 1"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            } else {
                which::which(t).is_ok()
            };
            !ok
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "not installed: {} (.ci/install-extra.sh and the pip_install line of .ci/run install them)",
        missing.join(", ")
    );
    if std::env::var("LIFEBOAT_REQUIRE_APPS").is_ok_and(|v| v == "1") {
        panic!("LIFEBOAT_REQUIRE_APPS=1 and {msg}");
    }
    eprintln!("skipped: {msg}");
    false
}

/// Run a program, insisting on success; its stdout.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn sh(program: &str, args: &[&str], dir: &Path) -> String {
    run(Command::new(program).args(args).current_dir(dir))
}

/// The header facts an application depends on.
fn pragmas(db: &Path) -> String {
    sh(
        "sqlite3",
        &[
            &db.to_string_lossy(),
            "PRAGMA page_size; PRAGMA user_version; PRAGMA application_id; PRAGMA journal_mode; \
             PRAGMA auto_vacuum; PRAGMA encoding;",
        ],
        db.parent().unwrap(),
    )
}

/// The whole database as SQL: `sqlite3 .dump`, or the application's own
/// dump where SQLite's tools cannot read it without its definitions.
type Dumper = fn(&Path) -> String;

fn sqlite3_dump(db: &Path) -> String {
    sh(
        "sqlite3",
        &[&db.to_string_lossy(), ".dump"],
        db.parent().unwrap(),
    )
}

fn app_defined_dump(db: &Path) -> String {
    sh(
        "python3",
        &[APP_DEFINED, "dump", &db.to_string_lossy()],
        db.parent().unwrap(),
    )
}

/// One application's database under lifeboat.
struct Case {
    name: &'static str,
    /// Relative to data_dir.
    path: &'static str,
    /// Extra lines of its `[[database]]` section.
    config: &'static str,
    dump: Dumper,
    /// Whether `sqldiff` can read it (it cannot without the application's
    /// collation on a WITHOUT ROWID key).
    sqldiff: bool,
}

/// The row of the corpus table this case printed.
struct Outcome {
    tables: usize,
    rows: u64,
    /// Tables the snapshot could not count (virtual tables whose module is
    /// missing), with the reason.
    uncounted: Vec<String>,
    notes: Vec<String>,
}

/// snapshot → verify → drill → `damage` → restore → compare. Panics on any
/// verdict that is not ok and on any difference.
fn round_trip(app: &App, case: &Case, damage: impl FnOnce(&Path)) -> Outcome {
    let db = app.data_dir().join(case.path);
    app.write_config(&format!(
        "[[database]]\nname = \"{}\"\npath = \"{}\"\n{}",
        case.name, case.path, case.config
    ));
    // The source as the application left it, copied while nothing runs.
    let reference_dir = app.root().join("reference");
    std::fs::create_dir_all(&reference_dir).unwrap();
    let reference = reference_dir.join("source.db");
    std::fs::copy(&db, &reference).unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if wal.exists() {
        std::fs::copy(&wal, reference_dir.join("source.db-wal")).unwrap();
    }
    let want_dump = (case.dump)(&reference);
    let want_pragmas = pragmas(&reference);

    let tag = take(app, "snapshot");
    let verify = expect(app, &["verify", &tag], 0);
    let drill = expect(app, &["drill", "--tag", &tag], 0);
    let manifest = lifeboat::snapshot::archive::read_manifest(
        &archive_path(app, &tag),
        Some(&tag.parse().unwrap()),
    )
    .unwrap()
    .manifest;
    let entry = &manifest.databases[0];

    damage(&db);
    assert_ne!(
        (case.dump)(&db),
        want_dump,
        "{}: the damage changed nothing",
        case.name
    );

    let restore = app.run(&["restore", &tag]);
    assert!(
        restore.status.success(),
        "{}: restore\n{}",
        case.name,
        text(&restore)
    );

    let got_dump = (case.dump)(&db);
    assert!(
        got_dump == want_dump,
        "{}: the restored database's dump differs from the source's",
        case.name
    );
    assert_eq!(pragmas(&db), want_pragmas, "{}: header pragmas", case.name);
    if case.sqldiff {
        let diff = sh(
            "sqldiff",
            &[&reference.to_string_lossy(), &db.to_string_lossy()],
            app.root(),
        );
        assert_eq!(diff, "", "{}: sqldiff source restored", case.name);
    }

    let mut notes: Vec<String> = Vec::new();
    for line in [&verify, &drill, &restore]
        .iter()
        .flat_map(|o| stdout(o).lines().map(str::to_string).collect::<Vec<_>>())
    {
        let line = line.trim().trim_start_matches("note: ").to_string();
        let noted = [
            "not checked",
            "not counted",
            "table by table",
            "foreign_key_check",
        ]
        .iter()
        .any(|w| line.contains(w));
        if noted && !notes.contains(&line) {
            notes.push(line);
        }
    }
    let result = Outcome {
        tables: entry.row_counts.len() + entry.uncountable_tables.len(),
        rows: entry.row_counts.values().sum(),
        uncounted: entry
            .uncountable_tables
            .iter()
            .map(|t| {
                let why = entry.uncountable_reasons.get(t).map_or("?", |r| r.as_str());
                format!("{t} ({why})")
            })
            .collect(),
        notes,
    };
    println!(
        "corpus | {} | {} tables | {} rows | snapshot ok, verify ok, drill ok, restore ok | identical: yes (.dump{}, pragmas)",
        case.name,
        result.tables,
        result.rows,
        if case.sqldiff { ", sqldiff" } else { "" }
    );
    for u in &result.uncounted {
        println!("corpus | {} | uncounted: {u}", case.name);
    }
    for n in &result.notes {
        println!("corpus | {} | note: {}", case.name, n.trim());
    }
    result
}

#[test]
fn django_migrate_database_round_trips() {
    if !have(&["sqlite3", "sqldiff", "py:django"]) {
        return;
    }
    let app = App::new();
    let site = app.data_dir().join("site");
    std::fs::create_dir_all(&site).unwrap();
    sh(
        "python3",
        &["-m", "django", "startproject", "mysite", "."],
        &site,
    );
    sh("python3", &["manage.py", "migrate", "-v0"], &site);
    sh(
        "python3",
        &[
            "manage.py",
            "shell",
            "-v0",
            "-c",
            "from django.contrib.auth.models import User, Group\n\
             g = Group.objects.create(name='staff')\n\
             for i in range(30):\n    User.objects.create(username=f'user{i}', email=f'u{i}@example.com').groups.add(g)",
        ],
        &site,
    );
    let case = Case {
        name: "django",
        path: "site/db.sqlite3",
        config: "",
        dump: sqlite3_dump,
        sqldiff: true,
    };
    let r = round_trip(&app, &case, |_| {
        // The bad delete, through the application's ORM (it cascades).
        sh(
            "python3",
            &[
                "manage.py",
                "shell",
                "-v0",
                "-c",
                "from django.contrib.auth.models import User\nUser.objects.filter(id__gt=3).delete()",
            ],
            &site,
        );
    });
    assert!(
        r.tables >= 10 && r.rows > 60,
        "{} tables, {} rows",
        r.tables,
        r.rows
    );
}

#[test]
fn sqlite_utils_fts4_and_fts5_database_in_wal_mode_round_trips() {
    if !have(&["sqlite3", "sqldiff", "py:sqlite_utils"]) {
        return;
    }
    let app = App::new();
    let dir = app.data_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let docs: Vec<serde_json::Value> = (1..=200)
        .map(|i| {
            let tags = ["a", "b"][..i % 3].to_vec();
            serde_json::json!({
                "id": i,
                "title": format!("Document {i}"),
                "body": "lorem ipsum dolor sit amet ".repeat(i % 5 + 1),
                "tags": tags,
            })
        })
        .collect();
    std::fs::write(dir.join("docs.json"), serde_json::to_vec(&docs).unwrap()).unwrap();
    let su = |args: &[&str]| {
        let mut a = vec!["-m", "sqlite_utils"];
        a.extend_from_slice(args);
        sh("python3", &a, &dir)
    };
    su(&["insert", "app.db", "docs", "docs.json", "--pk", "id"]);
    su(&["insert", "app.db", "notes", "docs.json", "--pk", "id"]);
    su(&[
        "enable-fts",
        "app.db",
        "docs",
        "title",
        "body",
        "--fts5",
        "--create-triggers",
    ]);
    su(&[
        "enable-fts",
        "app.db",
        "notes",
        "title",
        "body",
        "--fts4",
        "--create-triggers",
    ]);
    su(&["enable-wal", "app.db"]);
    let case = Case {
        name: "sqlite-utils",
        path: "app.db",
        config: "",
        dump: sqlite3_dump,
        sqldiff: true,
    };
    let r = round_trip(&app, &case, |_| {
        // (Not `notes`: sqlite-utils' FTS4 delete trigger fails with "SQL
        // logic error" on the application's own database, lifeboat or not.)
        su(&["query", "app.db", "DELETE FROM docs WHERE id % 3 = 0"]);
    });
    assert!(
        r.tables >= 10,
        "FTS shadow tables counted too: {}",
        r.tables
    );
    // Both full-text indexes answer after the restore.
    let hits = su(&["search", "app.db", "docs", "lorem", "--limit", "500"]);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&hits)
            .unwrap()
            .len(),
        200
    );
    let hits = su(&["search", "app.db", "notes", "lorem", "--limit", "500"]);
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&hits)
            .unwrap()
            .len(),
        200
    );
}

#[test]
fn fossil_repository_with_its_foreign_key_zeros_round_trips() {
    if !have(&["sqlite3", "sqldiff", "fossil"]) {
        return;
    }
    let app = App::new();
    let repo_dir = app.data_dir().join("fossil");
    std::fs::create_dir_all(&repo_dir).unwrap();
    let work = app.root().join("checkout");
    std::fs::create_dir_all(&work).unwrap();
    let home = app.root().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let fossil = |args: &[&str], dir: &Path| {
        run(Command::new("fossil")
            .args(args)
            .current_dir(dir)
            .env("HOME", &home)
            .env("USER", "lifeboat"))
    };
    fossil(&["init", "-A", "lifeboat", "repo.fossil"], &repo_dir);
    fossil(
        &[
            "open",
            "--force",
            &repo_dir.join("repo.fossil").to_string_lossy(),
        ],
        &work,
    );
    for i in 0..3 {
        std::fs::write(
            work.join(format!("file{i}.txt")),
            format!("version {i}\n").repeat(50),
        )
        .unwrap();
        fossil(&["add", &format!("file{i}.txt")], &work);
        fossil(
            &["commit", "-m", &format!("commit {i}"), "--no-warnings"],
            &work,
        );
    }
    fossil(&["close", "--force"], &work);
    let repo = repo_dir.join("repo.fossil");
    // Fossil stores 0 for "none" in columns declared as foreign keys: the
    // source already fails foreign_key_check, by design.
    let violations = sh(
        "sqlite3",
        &[&repo.to_string_lossy(), "PRAGMA foreign_key_check"],
        &repo_dir,
    );
    assert!(
        !violations.trim().is_empty(),
        "expected Fossil's by-design violations"
    );
    let case = Case {
        name: "fossil",
        path: "fossil/repo.fossil",
        config: "",
        dump: sqlite3_dump,
        sqldiff: true,
    };
    let r = round_trip(&app, &case, |db| {
        sh(
            "sqlite3",
            &[
                &db.to_string_lossy(),
                "DELETE FROM event; DELETE FROM blob WHERE rid > 2;",
            ],
            &repo_dir,
        );
    });
    assert!(
        r.notes.iter().any(|n| n.contains("foreign_key_check")),
        "the by-design violations are reported as a note: {:?}",
        r.notes
    );
    // Fossil itself is content with the restored repository.
    let out = fossil(
        &["test-integrity", "-R", &repo.to_string_lossy()],
        &repo_dir,
    );
    assert!(out.contains("0 errors") || !out.contains("error"), "{out}");
}

#[test]
fn a_database_with_the_applications_own_collation_and_function_round_trips() {
    if !have(&["sqlite3", "python3"]) {
        return;
    }
    let app = App::new();
    std::fs::create_dir_all(app.data_dir()).unwrap();
    let db = app.data_dir().join("collection.anki2");
    sh(
        "python3",
        &[APP_DEFINED, "create", &db.to_string_lossy()],
        app.root(),
    );
    // SQLite's own tools cannot read all of it: what lifeboat meets too.
    let out = Command::new("sqlite3")
        .args([&db.to_string_lossy(), "SELECT count(*) FROM tags"].map(|s| s.to_string()))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unicase"),
        "{}",
        text(&out)
    );
    let case = Case {
        name: "app-defined",
        path: "collection.anki2",
        config: "",
        dump: app_defined_dump,
        sqldiff: false,
    };
    let r = round_trip(&app, &case, |db| {
        sh(
            "python3",
            &[APP_DEFINED, "damage", &db.to_string_lossy()],
            app.root(),
        );
    });
    // Every table counted, including the WITHOUT ROWID one keyed by unicase.
    assert_eq!(
        (r.tables, r.rows),
        (5, 120 + 80 + 3 + 120 + 120),
        "{:?}",
        r.notes
    );
    let notes = r.notes.join("\n");
    for needed in [
        "index `notes_sfld` uses collation `unicase`, which lifeboat cannot load",
        "index `posts_slug` uses function `slugify()`",
        "table `tags`",
    ] {
        assert!(
            notes.contains(needed),
            "missing note {needed:?} in:\n{notes}"
        );
    }
    // sqldiff can compare the tables it can read.
    for table in ["notes", "posts", "cards"] {
        let diff = sh(
            "sqldiff",
            &[
                "--table",
                table,
                &app.root().join("reference/source.db").to_string_lossy(),
                &db.to_string_lossy(),
            ],
            app.root(),
        );
        assert_eq!(diff, "", "sqldiff --table {table}");
    }
}

#[test]
fn a_spatialite_database_round_trips_with_and_without_the_extension() {
    if !have(&["sqlite3", "sqldiff", "sqlite3:mod_spatialite"]) {
        return;
    }
    for config in ["extensions = [\"mod_spatialite\"]\n", ""] {
        let app = App::new();
        let dir = app.data_dir();
        std::fs::create_dir_all(&dir).unwrap();
        let spatial = |db: &Path, sql: &str| {
            sh(
                "sqlite3",
                &[&db.to_string_lossy(), ".load mod_spatialite", sql],
                &dir,
            )
        };
        let db = dir.join("geo.sqlite");
        spatial(
            &db,
            "SELECT InitSpatialMetadata(1);
             CREATE TABLE places(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             SELECT AddGeometryColumn('places', 'geom', 4326, 'POINT', 'XY');
             SELECT CreateSpatialIndex('places', 'geom');
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60)
               INSERT INTO places(name, geom) SELECT 'place ' || i, MakePoint(i * 0.1, i * 0.2, 4326) FROM n;",
        );
        let case = Case {
            name: if config.is_empty() {
                "spatialite-without-extension"
            } else {
                "spatialite"
            },
            path: "geo.sqlite",
            config,
            dump: sqlite3_dump,
            sqldiff: true,
        };
        let r = round_trip(&app, &case, |db| {
            spatial(db, "DELETE FROM places WHERE id % 2 = 0;");
        });
        assert!(r.rows > 60, "{} rows", r.rows);
        // Its virtual tables are counted when the extension is declared,
        // and recorded as uncounted, with the reason, when it is not.
        if config.is_empty() {
            assert!(
                r.uncounted.iter().any(|u| u.contains("SpatialIndex (table `SpatialIndex` needs virtual table module `VirtualSpatialIndex`")),
                "{:?}",
                r.uncounted
            );
        } else {
            assert_eq!(r.uncounted, Vec::<String>::new());
        }
    }
}

#[test]
fn an_extension_that_does_not_load_is_named_with_its_fix() {
    let app = App::new();
    crate::support::sqlite(
        &app.data_dir().join("geo.db"),
        "CREATE TABLE t(x); INSERT INTO t VALUES (1);",
    );
    app.write_config(
        "[[database]]\nname = \"geo\"\npath = \"geo.db\"\nextensions = [\"lifeboat_no_such_extension\"]\n",
    );
    let out = expect(&app, &["snapshot"], 1);
    let all = text(&out);
    assert!(
        all.contains("cannot load SQLite extension `lifeboat_no_such_extension`"),
        "{all}"
    );
    assert!(
        all.contains("extensions"),
        "the hint names the setting: {all}"
    );
    // doctor finds it before any snapshot does.
    let out = app.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("FAIL extensions")
            && text(&out).contains("`lifeboat_no_such_extension`"),
        "{}",
        text(&out)
    );
    // A value that is not a library name is refused when the config loads.
    app.write_config("[[database]]\nname = \"geo\"\npath = \"geo.db\"\nextensions = [\"\"]\n");
    let out = expect(&app, &["snapshot"], 2);
    assert!(
        text(&out).contains("is not a library name"),
        "{}",
        text(&out)
    );
}
