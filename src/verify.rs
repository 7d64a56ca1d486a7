//! Checking a snapshot without touching live data: unpack it into a private
//! directory through the hostile-safe reader (manifest, declared files only,
//! sizes, sha256), then open each database there and run
//! `PRAGMA integrity_check` and compare its row counts and schema version with
//! the manifest. Used by `lifeboat verify`, which checks a snapshot as
//! stored; `lifeboat drill` goes through the restore pipeline instead
//! (migrations included).

use crate::error::{Error, Result};
use crate::snapshot::archive::{self, Limits};
use crate::snapshot::hotcopy;
use crate::snapshot::manifest::{DatabaseEntry, Manifest};
use crate::tag::Tag;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::Path;

/// How one database in a snapshot fared.
#[derive(Debug, Clone, Serialize)]
pub struct DatabaseCheck {
    pub name: String,
    pub path: String,
    pub schema_version: i64,
    pub bytes: u64,
    pub rows: u64,
    /// `ok`, or what `PRAGMA integrity_check` (or opening the file) reported.
    pub integrity: String,
    /// Differences from the manifest: row counts per table, schema version.
    pub mismatches: Vec<String>,
}

impl DatabaseCheck {
    pub fn ok(&self) -> bool {
        self.integrity == "ok" && self.mismatches.is_empty()
    }
}

/// Unpack `archive` into `dest` (an empty private directory) and check every
/// database in it. `Err` means the archive itself is unreadable, altered or
/// hostile; a damaged database is reported in its [`DatabaseCheck`].
pub fn unpack_and_check(
    archive_path: &Path,
    expect_tag: Option<&Tag>,
    dest: &Path,
    limits: Limits,
) -> Result<(Manifest, Vec<DatabaseCheck>)> {
    // `read` also decompresses to the end of the stream, past the tar end
    // marker, so damage in gzip's trailer or the last zstd frame is caught.
    let read = archive::read(archive_path, expect_tag, Some(dest), limits)?;
    // Each database on its own core; the reports stay in manifest order.
    let checks = crate::par::try_map_ordered(&read.manifest.databases, |db| {
        Ok::<_, std::convert::Infallible>(check_database(&dest.join(&db.path), db))
    })
    .unwrap_or_else(|never| match never {});
    Ok((read.manifest, checks))
}

/// Integrity, schema version and row counts of one unpacked database.
pub fn check_database(file: &Path, entry: &DatabaseEntry) -> DatabaseCheck {
    let mut check = DatabaseCheck {
        name: entry.name.clone(),
        path: entry.path.clone(),
        schema_version: entry.schema_version,
        bytes: entry.bytes,
        rows: 0,
        integrity: String::new(),
        mismatches: vec![],
    };
    if let Err(e) = inspect(file, entry, &mut check) {
        check.integrity = e.message;
    }
    tracing::info!(
        db = %check.name,
        integrity = %check.integrity,
        rows = check.rows,
        mismatches = check.mismatches.len(),
        "database checked"
    );
    check
}

fn inspect(file: &Path, entry: &DatabaseEntry, check: &mut DatabaseCheck) -> Result<()> {
    let fail = |what: &str, e: rusqlite::Error| {
        Error::database(format!("{what} failed on `{}`: {e}", entry.name))
    };
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| fail("opening", e))?;
    let problems: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<_>>()
        })
        .map_err(|e| fail("PRAGMA integrity_check", e))?;
    check.integrity = if problems == ["ok"] {
        "ok".to_string()
    } else {
        // The list can be long (one line per bad page); the first few name it.
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        format!("integrity_check: {}", shown.join("; "))
    };
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| fail("reading user_version", e))?;
    if version != entry.schema_version {
        check.mismatches.push(format!(
            "schema version: manifest says {}, the file has {version}",
            entry.schema_version
        ));
    }
    let (counts, _uncountable) =
        hotcopy::count_rows(&conn).map_err(|e| fail("counting rows", e))?;
    check.rows = counts.values().sum();
    check
        .mismatches
        .extend(row_mismatches(&entry.row_counts, &counts));
    Ok(())
}

fn row_mismatches(
    expected: &std::collections::BTreeMap<String, u64>,
    found: &std::collections::BTreeMap<String, u64>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (table, want) in expected {
        match found.get(table) {
            Some(got) if got == want => {}
            Some(got) => out.push(format!("{table}: expected {want} rows, found {got}")),
            None => out.push(format!("{table}: expected {want} rows, table missing")),
        }
    }
    for (table, got) in found {
        if !expected.contains_key(table) {
            out.push(format!("{table}: not in the manifest, found {got} rows"));
        }
    }
    out
}

/// A private scratch directory for unpacking, removed when dropped. It goes
/// in `backup_dir` (same filesystem as the archives, already sized for
/// them), or in the system temp directory when `backup_dir` is read-only.
///
/// Its name carries the process id (`.<purpose>-<pid>-<random>`), so that
/// the directory of a killed run, which would otherwise keep a full copy of
/// the databases forever, is recognised and removed by the next one.
pub fn scratch_dir(backup_dir: &Path, purpose: &str) -> Result<tempfile::TempDir> {
    remove_abandoned(backup_dir, purpose);
    let prefix = format!(".{purpose}-{}-", std::process::id());
    tempfile::Builder::new()
        .prefix(&prefix)
        .tempdir_in(backup_dir)
        .or_else(|_| tempfile::Builder::new().prefix(&prefix).tempdir())
        .map_err(|e| Error::io("cannot create a scratch directory", e))
}

/// Remove `.<purpose>-<pid>-*` directories whose process is gone. A reused
/// pid only means one is left for later: never a live run's directory.
fn remove_abandoned(dir: &Path, purpose: &str) {
    let prefix = format!(".{purpose}-");
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        // file_type() does not follow symlinks: only real directories go.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        if is_dir && pid > 0 && !process_alive(pid) {
            let path = entry.path();
            match std::fs::remove_dir_all(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed the scratch directory of a killed run")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove an abandoned scratch directory")
                }
            }
        }
    }
}

fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn abandoned_scratch_dirs_are_removed_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        // pid_max is at most 2^22 on Linux: this pid cannot be running.
        let dead = dir.path().join(".drill-99999999-abc");
        let live = dir
            .path()
            .join(format!(".drill-{}-abc", std::process::id()));
        let other = dir.path().join(".verify-99999999-abc");
        let file = dir.path().join(".drill-99999999-file");
        for d in [&dead, &live, &other] {
            std::fs::create_dir_all(d.join("db")).unwrap();
            std::fs::write(d.join("db/x.db"), b"x").unwrap();
        }
        std::fs::write(&file, b"not a directory").unwrap();
        let scratch = scratch_dir(dir.path(), "drill").unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && other.exists() && file.exists());
        let name = scratch
            .path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with(&format!(".drill-{}-", std::process::id())),
            "{name}"
        );
    }

    #[test]
    fn row_count_differences_are_named() {
        let want = BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 1)]);
        let got = BTreeMap::from([("a".to_string(), 3), ("c".to_string(), 0)]);
        assert_eq!(
            row_mismatches(&want, &got),
            [
                "a: expected 2 rows, found 3",
                "b: expected 1 rows, table missing",
                "c: not in the manifest, found 0 rows"
            ]
        );
        assert!(row_mismatches(&want, &want).is_empty());
    }

    #[test]
    fn a_real_database_checks_and_a_non_database_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.db");
        let conn = Connection::open(&file).unwrap();
        conn.execute_batch(
            "PRAGMA user_version=4; CREATE TABLE t(x); INSERT INTO t VALUES (1),(2);",
        )
        .unwrap();
        drop(conn);
        let mut entry = crate::snapshot::manifest::sample().databases.remove(0);
        entry.schema_version = 4;
        entry.row_counts = BTreeMap::from([("t".to_string(), 2)]);
        let check = check_database(&file, &entry);
        assert!(check.ok(), "{check:?}");
        assert_eq!(check.rows, 2);

        entry.row_counts.insert("t".into(), 3);
        entry.schema_version = 5;
        let check = check_database(&file, &entry);
        assert!(!check.ok());
        assert_eq!(check.mismatches.len(), 2, "{check:?}");

        std::fs::write(&file, vec![7u8; 8192]).unwrap();
        let check = check_database(&file, &entry);
        assert!(!check.ok());
        assert!(check.integrity.contains("not a database"), "{check:?}");
    }
}
