//! Facts a snapshot records about each database beyond its bytes, read the
//! same way when the snapshot is taken and when it is checked: the
//! foreign-key state (`PRAGMA foreign_key_check`) and the live file's owner
//! and mode. The manifest stores them ([`super::manifest`]); the checker
//! ([`crate::check`]) compares a restored copy's state with the recorded one,
//! so that faults the application's data already had are restored as they
//! were, and only a difference is refused.

use super::manifest::{FileOwnership, ForeignKeyCount, ForeignKeyState};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;

/// One row `foreign_key_check` lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignKeyRow {
    pub table: String,
    /// `None` for a WITHOUT ROWID table.
    pub rowid: Option<i64>,
    pub parent: String,
}

/// What `PRAGMA foreign_key_check` says of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForeignKeyFindings {
    /// The rows without their parent (none: the data is consistent).
    Rows(Vec<ForeignKeyRow>),
    /// The check stopped at a declaration SQLite cannot check: a foreign
    /// key to a column that is not unique, or to a table that does not
    /// exist. The application could not have had it enforced either.
    Mismatch(String),
}

impl ForeignKeyFindings {
    /// The summary a manifest records: rows counted per child and parent.
    pub fn state(&self) -> ForeignKeyState {
        match self {
            ForeignKeyFindings::Mismatch(m) => ForeignKeyState {
                violations: vec![],
                mismatch: Some(m.clone()),
            },
            ForeignKeyFindings::Rows(rows) => {
                let mut counts: BTreeMap<(&str, &str), u64> = BTreeMap::new();
                for r in rows {
                    *counts.entry((&r.table, &r.parent)).or_default() += 1;
                }
                ForeignKeyState {
                    violations: counts
                        .into_iter()
                        .map(|((table, parent), rows)| ForeignKeyCount {
                            table: table.to_string(),
                            parent: parent.to_string(),
                            rows,
                        })
                        .collect(),
                    mismatch: None,
                }
            }
        }
    }
}

/// Run `PRAGMA foreign_key_check` on `conn`. Rows come sorted, so two runs
/// over the same data compare equal. Any error other than a mismatch (a
/// damaged file, a missing collation) is returned as it is.
pub fn foreign_key_check(conn: &Connection) -> rusqlite::Result<ForeignKeyFindings> {
    let found = conn.prepare("PRAGMA foreign_key_check").and_then(|mut s| {
        s.query_map([], |r| {
            Ok(ForeignKeyRow {
                table: r.get(0)?,
                rowid: r.get(1)?,
                parent: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()
    });
    match found {
        Ok(mut rows) => {
            rows.sort_by(|a, b| {
                (&a.table, a.rowid, &a.parent).cmp(&(&b.table, b.rowid, &b.parent))
            });
            Ok(ForeignKeyFindings::Rows(rows))
        }
        Err(e) if e.to_string().contains("foreign key mismatch") => {
            Ok(ForeignKeyFindings::Mismatch(e.to_string()))
        }
        Err(e) => Err(e),
    }
}

/// The owner and permission bits of the file at `path`, following
/// symlinks: the file the application opens is the one whose owner matters.
pub fn ownership(path: &Path) -> Option<FileOwnership> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileOwnership {
        mode: format!("{:04o}", m.mode() & 0o777),
        uid: m.uid(),
        gid: m.gid(),
        user: crate::accounts::account_name(m.uid()),
        group: crate::accounts::group_name(m.gid()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(sql: &str) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        conn.execute_batch(sql).unwrap();
        conn
    }

    #[test]
    fn violations_are_counted_per_child_and_parent() {
        let conn = db("CREATE TABLE p(id INTEGER PRIMARY KEY);
             CREATE TABLE c(id INTEGER PRIMARY KEY, p REFERENCES p(id));
             CREATE TABLE d(id INTEGER PRIMARY KEY, p REFERENCES p(id));
             INSERT INTO p VALUES (1);
             INSERT INTO c VALUES (1, 1), (2, 0), (3, 7);
             INSERT INTO d VALUES (1, 9);");
        let state = foreign_key_check(&conn).unwrap().state();
        assert_eq!(
            state.violations,
            vec![
                ForeignKeyCount {
                    table: "c".into(),
                    parent: "p".into(),
                    rows: 2
                },
                ForeignKeyCount {
                    table: "d".into(),
                    parent: "p".into(),
                    rows: 1
                },
            ]
        );
        assert_eq!(state.rows(), 3);
        assert!(
            state.describe().starts_with("3 rows without their parent"),
            "{}",
            state.describe()
        );
    }

    #[test]
    fn a_mismatch_is_recorded_not_an_error() {
        let conn = db("CREATE TABLE p(id INTEGER, name TEXT);
             CREATE TABLE c(id INTEGER PRIMARY KEY, n REFERENCES p(name));
             INSERT INTO c VALUES (1, 'x');");
        let state = foreign_key_check(&conn).unwrap().state();
        assert!(state.violations.is_empty());
        assert!(
            state
                .mismatch
                .as_deref()
                .unwrap()
                .contains("foreign key mismatch")
        );
        assert!(!state.is_clean());
    }

    #[test]
    fn ownership_reads_the_link_target() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("app.db");
        std::fs::write(&file, b"x").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let o = ownership(&link).unwrap();
        assert_eq!(o.mode, "0640");
        assert_eq!(o.mode_bits(), Some(0o640));
    }
}
