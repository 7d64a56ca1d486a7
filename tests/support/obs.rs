//! Fixtures for health, list, verify, drill and metrics: an app with one
//! small database, JSON output, and ways to age or damage what lifeboat wrote.

use super::{App, sqlite, text};
use lifeboat::snapshot::archive::{self, ArchiveWriter, Format, Limits};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Output;

pub const TASKS: &str = "[[database]]\nname = \"tasks\"\npath = \"db/tasks.db\"\n";
pub const ROWS: u64 = 20;

/// An app with `db/tasks.db` (schema v3, table `t` with an index, 20 rows)
/// and `extra` appended to the config.
pub fn tasks_app(extra: &str) -> App {
    let app = App::new();
    sqlite(
        &app.data_dir().join("db/tasks.db"),
        &format!(
            "PRAGMA journal_mode=WAL; PRAGMA user_version=3;
             CREATE TABLE t(id INTEGER PRIMARY KEY, x TEXT NOT NULL);
             CREATE INDEX t_x ON t(x);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS})
               INSERT INTO t(x) SELECT printf('lifeboat-row-%02d', i) FROM n;"
        ),
    );
    app.write_config(&format!("{TASKS}{extra}"));
    app
}

/// Run and insist on exit code `code`.
pub fn expect(app: &App, args: &[&str], code: i32) -> Output {
    let out = app.run(args);
    assert_eq!(out.status.code(), Some(code), "{args:?}\n{}", text(&out));
    out
}

/// Stdout as one JSON value.
pub fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", text(out)))
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Take a scheduled snapshot and return its tag.
pub fn snapshot(app: &App) -> String {
    take(app, "snapshot")
}

/// Run `snapshot` or `backup-now` and return the tag. (Retention keeps one
/// scheduled snapshot per hour, so tests that need two use a manual one.)
pub fn take(app: &App, command: &str) -> String {
    let out = expect(app, &["--json", command], 0);
    json(&out)["snapshot"]["tag"]
        .as_str()
        .expect("tag")
        .to_string()
}

pub fn archive_path(app: &App, tag: &str) -> PathBuf {
    app.backup_dir().join(format!("{tag}.tar.gz"))
}

/// Move every timestamp in a JSON record file `by` into the past.
pub fn age_record(path: &Path, keys: &[&str], by: chrono::Duration) {
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for key in keys {
        let mut node = &mut v;
        for part in key.split('.') {
            node = &mut node[part];
        }
        let t: chrono::DateTime<chrono::Utc> = node
            .as_str()
            .unwrap_or_else(|| panic!("{key} in {}", path.display()))
            .parse()
            .unwrap();
        *node = Value::String((t - by).to_rfc3339());
    }
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// Flip one byte in the middle of a file (inside the compressed stream).
pub fn flip_middle_byte(path: &Path) {
    let len = std::fs::metadata(path).unwrap().len() as usize;
    flip_byte(path, len / 2);
}

/// Flip the byte at `offset`.
pub fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// Damage a table page of the snapshot's database and rewrite the archive
/// with a manifest whose sha256 matches the damaged file: only
/// `PRAGMA integrity_check` can tell.
pub fn corrupt_page_keep_checksums(archive_path: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_total_bytes: u64::MAX,
    };
    let mut manifest = archive::read(archive_path, None, Some(dir.path()), limits)
        .unwrap()
        .manifest;
    let entry = &mut manifest.databases[0];
    let db = dir.path().join(&entry.path);
    let (page_size, root): (usize, usize) = {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let ps: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let root: i64 = conn
            .query_row(
                "SELECT rootpage FROM sqlite_schema WHERE name = 't'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (ps as usize, root as usize)
    };
    let mut bytes = std::fs::read(&db).unwrap();
    let page = &mut bytes[(root - 1) * page_size..root * page_size];
    let needle = b"lifeboat-row-07";
    let at = page
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("row 7 is on the table's root page");
    // The table now disagrees with its index; the page itself still parses.
    page[at + needle.len() - 1] = b'X';
    std::fs::write(&db, &bytes).unwrap();
    entry.sha256 = lifeboat::hash::sha256_file(&db).unwrap();
    entry.bytes = bytes.len() as u64;
    let db_path = entry.path.clone();

    std::fs::remove_file(archive_path).unwrap();
    let mut w = ArchiveWriter::create(archive_path, &manifest.tag, Format::Gzip, 6).unwrap();
    w.append_manifest(&manifest).unwrap();
    w.append_file(&db_path, &db, &|_| {}).unwrap();
    w.finish(|| Ok(())).unwrap();
}

/// Write a copy of `src` as the snapshot `tag` (a consistent archive, as if
/// taken at that time) into the same directory.
pub fn copy_as(src: &Path, tag: &str) {
    let tag = lifeboat::tag::Tag::parse(tag).expect("a tag");
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_total_bytes: u64::MAX,
    };
    let mut manifest = archive::read(src, None, Some(dir.path()), limits)
        .unwrap()
        .manifest;
    manifest.tag = tag;
    manifest.kind = tag.kind();
    manifest.snapshot_ts = tag.time();
    let target = src.with_file_name(tag.archive_name(Format::Gzip));
    let mut w = ArchiveWriter::create(&target, &tag, Format::Gzip, 6).unwrap();
    w.append_manifest(&manifest).unwrap();
    for db in &manifest.databases {
        w.append_file(&db.path, &dir.path().join(&db.path), &|_| {})
            .unwrap();
    }
    w.finish(|| Ok(())).unwrap();
}

/// Parse a Prometheus text file with the reference parser (Python's
/// `prometheus_client`): family name -> {type, samples: [[name, labels, value]]}.
pub fn parse_prometheus(path: &Path) -> Value {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    out[fam.name] = {"type": fam.type, "samples": [[s.name, s.labels, s.value] for s in fam.samples]}
print(json.dumps(out))
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "prometheus_client could not parse {} (pip install prometheus_client):\n{}\n--- file:\n{}",
        path.display(),
        text(&out),
        std::fs::read_to_string(path).unwrap_or_default()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of the sample of `family` whose labels include `labels`.
pub fn sample(metrics: &Value, family: &str, labels: &[(&str, &str)]) -> f64 {
    let samples = metrics[family]["samples"]
        .as_array()
        .unwrap_or_else(|| panic!("no family {family} in {metrics}"));
    samples
        .iter()
        .find(|s| labels.iter().all(|(k, v)| s[1][*k] == *v))
        .unwrap_or_else(|| panic!("no {family}{labels:?} in {metrics}"))[2]
        .as_f64()
        .unwrap()
}
