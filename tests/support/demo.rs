//! The demo application's task store, built with the real migration ladder,
//! and a logical dump to compare databases by content.

use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The repository's `migrations/` directory.
pub fn ladder_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

/// Config lines declaring the demo `tasks` database at `db/tasks.db`.
pub fn tasks_db_config() -> String {
    format!(
        "[[database]]\nname = \"tasks\"\npath = \"db/tasks.db\"\nmigrations = \"{}\"\n",
        ladder_dir().display()
    )
}

/// Create the demo database at `path`, migrated to `version`, with `tasks`
/// tasks in three projects (every third one done, every other one due).
pub fn create(path: &Path, version: i64, tasks: usize, wal: bool) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    let mut conn = Connection::open(path).unwrap();
    if wal {
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))
            .unwrap();
    }
    let ladder = lifeboat::migrate::demo_ladder();
    ladder.run_to(&mut conn, version).unwrap();
    let tx = conn.transaction().unwrap();
    for p in 1..=3 {
        tx.execute(
            "INSERT INTO projects(id, name) VALUES (?1, ?2)",
            (p, format!("project {p}")),
        )
        .unwrap();
    }
    if version >= 2 {
        tx.execute_batch("INSERT INTO tags(name) VALUES ('home'), ('work');")
            .unwrap();
    }
    for i in 0..tasks {
        let due = (i % 2 == 0).then(|| format!("2026-12-{:02}", i % 28 + 1));
        tx.execute(
            "INSERT INTO tasks(id, project_id, title, done, due) VALUES (?1, ?2, ?3, ?4, ?5)",
            (
                i as i64 + 1,
                (i % 3) as i64 + 1,
                format!("task {i} {}", "x".repeat(i % 50)),
                (i % 3 == 0) as i64,
                due,
            ),
        )
        .unwrap();
        if version >= 2 && i % 4 == 0 {
            tx.execute(
                "INSERT INTO task_tags(task_id, tag_id) SELECT ?1, id FROM tags WHERE name = ?2",
                (i as i64 + 1, if i % 8 == 0 { "home" } else { "work" }),
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Every table's rows (as sorted debug strings) plus `user_version`: equal
/// dumps mean equal data.
pub fn dump(path: &Path) -> BTreeMap<String, Vec<String>> {
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    out.insert("#user_version".to_string(), vec![version.to_string()]);
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = stmt.column_count();
        let mut rows: Vec<String> = stmt
            .query_map([], |r| {
                let vals: Vec<rusqlite::types::Value> =
                    (0..n).map(|i| r.get(i)).collect::<rusqlite::Result<_>>()?;
                Ok(format!("{vals:?}"))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        rows.sort();
        out.insert(t, rows);
    }
    out
}

/// Run SQL against a database.
pub fn exec(path: &Path, sql: &str) {
    Connection::open(path).unwrap().execute_batch(sql).unwrap();
}

pub fn count(path: &Path, table: &str) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}
