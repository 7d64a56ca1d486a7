//! The hot copy: SQLite's online backup API from a live database into a
//! private single-file copy, while the application keeps writing.
//!
//! Consistency comes from the read transaction opened on the source before
//! the first page is copied:
//! - In WAL mode it pins one snapshot of the database. Writers in other
//!   processes keep committing to the WAL, but the backup reads through the
//!   pinned snapshot, so it never restarts and never blocks them.
//! - In rollback-journal mode it holds a SHARED lock, so writers cannot
//!   commit until the copy is done: a rollback-journal database cannot be
//!   copied consistently any other way. The mode is recorded in the manifest.
//!
//! How the source is opened in the states a real deployment leaves it in
//! (a crashed writer's hot journal, an account that may only read, a
//! read-only mount, an application holding an exclusive lock) is
//! `source.rs`: lifeboat never writes the live database or its journal.

use super::manifest::DatabaseEntry;
use crate::error::{Error, IoContext, Result};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Pages copied per backup step: large enough that stepping costs nothing,
/// small enough for smooth progress.
const PAGES_PER_STEP: i32 = 4096;

/// Page cache of each connection, in KiB (SQLite's default is 2000).
const CACHE_KIB: u32 = 2048;

/// Progress callback: (pages copied, total pages).
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

/// Check that `path` is a readable SQLite database before opening it:
/// SQLite opens lazily and would only fail at the first read, with a vaguer
/// message.
pub fn check_source(name: &str, path: &Path) -> Result<()> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::database(format!("database `{name}`: {shown} does not exist"))
            .with_hint("check data_dir and the database's path in the config; has the application created it yet?"),
        _ => Error::io(format!("database `{name}`: cannot stat {shown}"), e),
    })?;
    if meta.is_dir() {
        return Err(Error::database(format!(
            "database `{name}`: {shown} is a directory, not a SQLite database"
        ))
        .with_hint("point the database's path at the .db file itself"));
    }
    if meta.len() == 0 {
        return Err(Error::database(format!(
            "database `{name}`: {shown} is empty (0 bytes), not a SQLite database"
        ))
        .with_hint("an empty file usually means the application never wrote it; check the path"));
    }
    let mut head = [0u8; 16];
    let mut file = std::fs::File::open(path).map_err(|e| {
        let err = Error::database(format!("database `{name}`: cannot open {shown}: {e}"));
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            err.with_hint(super::source::grant_hint(path.parent()))
        } else {
            err
        }
    })?;
    let n = file
        .read(&mut head)
        .ctx(format!("database `{name}`: cannot read {shown}"))?;
    if n < 16 || &head != SQLITE_HEADER {
        return Err(Error::database(format!(
            "database `{name}`: {shown} is not a SQLite database (it does not start with \"SQLite format 3\")"
        ))
        .with_hint("check the database's path in the config"));
    }
    Ok(())
}

/// Copy the live database `src` into a new file `dest` (which must not
/// exist) and describe the copy. `dest` is left in `journal_mode=DELETE`
/// but not fsynced: it is a staging file, and the archive made from it is
/// what must be durable.
pub fn hot_copy(
    name: &str,
    archive_path: &str,
    src: &Path,
    dest: &Path,
    busy_timeout: Duration,
    extensions: &[String],
    progress: Progress<'_>,
) -> Result<DatabaseEntry> {
    check_source(name, src)?;
    let ctx = |e: rusqlite::Error| db_error(name, src, busy_timeout, e);

    // The source, in a read transaction: the live file, or a private
    // rolled-back copy of it (see `source.rs`).
    let scratch = super::source::scratch_for(dest);
    let source = super::source::open(name, src, &scratch, busy_timeout)?;
    let journal_mode = source.journal_mode.clone();

    let mut copy = Connection::open_with_flags(
        dest,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        Error::io(
            format!("cannot create {}", dest.display()),
            std::io::Error::other(e),
        )
    })?;
    // The copy is a private staging file, not the durable artifact: the
    // archive built from it is fsynced before it is renamed into place, and a
    // crash leaves only a staging directory that the next run removes. So
    // no fsync here: SQLite would otherwise sync the copy at the end, and
    // the kernel would have to write it out even though it is deleted
    // minutes later. A small cache for the same reason as the source's.
    copy.execute_batch(&format!(
        "PRAGMA synchronous = OFF; PRAGMA cache_size = -{CACHE_KIB};"
    ))
    .map_err(|e| Error::database(format!("database `{name}`: cannot set up the copy: {e}")))?;
    // What the application loads to use its database, for counting rows.
    crate::sqlext::load_extensions(&copy, name, extensions)?;
    let copy_started = Instant::now();
    {
        let backup = Backup::new(source.conn(), &mut copy).map_err(ctx)?;
        let deadline = Instant::now() + busy_timeout;
        loop {
            match backup.step(PAGES_PER_STEP).map_err(ctx)? {
                StepResult::Done => break,
                StepResult::More => {}
                // Only the destination could be busy (the source is pinned),
                // and it is our private file; wait briefly, but never forever.
                StepResult::Busy | StepResult::Locked => {
                    if Instant::now() >= deadline {
                        return Err(ctx(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                            Some("backup step stayed busy".into()),
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {}
            }
            let p = backup.progress();
            progress((p.pagecount - p.remaining) as u64, p.pagecount as u64);
        }
        let p = backup.progress();
        progress(p.pagecount as u64, p.pagecount as u64);
    }
    source.finish()?;

    // One self-contained file: the copy carries the source's WAL flag in its
    // header until told otherwise.
    let copy_err =
        |e: rusqlite::Error| Error::database(format!("database `{name}`: the copy failed: {e}"));
    copy.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get::<_, String>(0))
        .map_err(copy_err)?;
    let pragma = |p: &str| {
        copy.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0))
            .map_err(copy_err)
    };
    let schema_version = pragma("user_version")?;
    let application_id = pragma("application_id")?;
    let page_size = pragma("page_size")? as u64;
    let copied_ms = copy_started.elapsed().as_millis() as u64;
    // The file is final now (reads do not write it): hash it on another
    // core while counting rows, which reads most of it too.
    let counted_started = Instant::now();
    let (counted, sha256) = std::thread::scope(|s| {
        let hasher = s.spawn(|| crate::hash::sha256_file(dest));
        let counted = count_rows(&copy).map_err(copy_err);
        let sha256 = hasher.join().unwrap_or_else(|_| {
            Err(Error::new(
                crate::error::Kind::Io,
                "the hashing thread panicked",
            ))
        });
        (counted, sha256)
    });
    let (row_counts, uncountable) = counted?;
    let sha256 = sha256?;
    // The data's own foreign-key faults, recorded so that a restore can
    // tell them from damage. A check that cannot run leaves the state
    // unknown, which checkers treat as they treat old manifests.
    let foreign_keys = match super::facts::foreign_key_check(&copy) {
        Ok(found) => Some(found.state()),
        Err(e) => {
            tracing::warn!(db = name, error = %e, "foreign_key_check could not run on the copy");
            None
        }
    };
    copy.close().map_err(|(_, e)| copy_err(e))?;
    let bytes = std::fs::metadata(dest)
        .ctx(format!("cannot stat {}", dest.display()))?
        .len();
    tracing::debug!(
        db = name,
        copied_ms,
        counted_and_hashed_ms = counted_started.elapsed().as_millis() as u64,
        "hot copy phases"
    );

    Ok(DatabaseEntry {
        name: name.to_string(),
        path: archive_path.to_string(),
        schema_version,
        application_id,
        page_size,
        journal_mode,
        bytes,
        sha256,
        row_counts,
        uncountable_tables: uncountable.keys().cloned().collect(),
        uncountable_reasons: uncountable,
        foreign_keys,
        // The caller knows the live path the application uses.
        file: None,
    })
}

/// Row counts of every ordinary table and every virtual table whose module
/// is available; the tables that cannot be counted, each with the reason.
///
/// A table is counted through its own b-tree when the plain count needs a
/// collation or function that only the application defines (SQLite counts
/// through the smallest index, whose key may use one): `NOT INDEXED` for a
/// rowid table, the cells of its b-tree pages (`dbstat`) for a WITHOUT
/// ROWID table, whose primary key is the table. Neither compares keys, so
/// neither needs the collation.
pub fn count_rows(
    conn: &Connection,
) -> rusqlite::Result<(BTreeMap<String, u64>, BTreeMap<String, String>)> {
    let mut stmt = conn.prepare(
        "SELECT name, sql LIKE 'CREATE VIRTUAL TABLE%' FROM sqlite_schema
         WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name",
    )?;
    let tables: Vec<(String, bool)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut counts = BTreeMap::new();
    let mut uncountable = BTreeMap::new();
    for (table, is_virtual) in tables {
        let quoted = format!("\"{}\"", table.replace('"', "\"\""));
        let count = |sql: &str| conn.query_row(sql, [], |r| r.get::<_, i64>(0));
        let mut result = count(&format!("SELECT count(*) FROM {quoted}"));
        if !is_virtual
            && let Err(e) = &result
            && crate::sqlext::missing(e).is_some()
            && let Ok(n) = count(&format!("SELECT count(*) FROM {quoted} NOT INDEXED"))
                .or_else(|_| count_cells(conn, &table))
        {
            result = Ok(n);
        }
        match result {
            Ok(n) => {
                counts.insert(table, n as u64);
            }
            Err(e) if is_virtual || crate::sqlext::missing(&e).is_some() => {
                let why = match crate::sqlext::missing(&e) {
                    Some(m) => format!(
                        "{}, which lifeboat cannot load",
                        crate::sqlext::explain(conn, &table, &m)
                    ),
                    None => e.to_string(),
                };
                uncountable.insert(table, why);
            }
            Err(e) => return Err(e),
        }
    }
    Ok((counts, uncountable))
}

/// The rows of a WITHOUT ROWID table, read off its b-tree pages: an index
/// b-tree holds each row once, in a leaf or an interior cell.
fn count_cells(conn: &Connection, table: &str) -> rusqlite::Result<i64> {
    let without_rowid: bool = conn.query_row(
        "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1",
        [table],
        |r| r.get(0),
    )?;
    if !without_rowid {
        return Err(rusqlite::Error::QueryReturnedNoRows);
    }
    conn.query_row(
        "SELECT coalesce(sum(ncell), 0) FROM dbstat('main') WHERE name = ?1",
        [table],
        |r| r.get(0),
    )
}

thread_local! {
    /// The busy timeout of the copy running on this thread (SQLite calls
    /// the busy handler on the thread that runs the statement).
    static BUSY_LIMIT_MS: std::cell::Cell<u64> = const { std::cell::Cell::new(5_000) };
}

/// How long to keep retrying a locked source: `busy_timeout`, in 10 ms
/// steps, unless a stop was asked for (Ctrl-C, SIGTERM). SQLite's own busy
/// timeout would keep a `kill`ed run waiting the whole timeout for an
/// application's long transaction.
/// Give `conn` lifeboat's busy handler, waiting up to `busy_timeout`.
pub(super) fn set_busy_handler(
    conn: &mut Connection,
    busy_timeout: Duration,
) -> rusqlite::Result<()> {
    BUSY_LIMIT_MS.with(|l| l.set(busy_timeout.as_millis() as u64));
    conn.busy_handler(Some(wait_if_busy))
}

fn wait_if_busy(attempts: i32) -> bool {
    const STEP_MS: u64 = 10;
    if crate::interrupt::received().is_some() {
        return false;
    }
    let waited = u64::try_from(attempts).unwrap_or(0) * STEP_MS;
    if waited >= BUSY_LIMIT_MS.with(|l| l.get()) {
        return false;
    }
    std::thread::sleep(Duration::from_millis(STEP_MS));
    true
}

pub(super) fn db_error(
    name: &str,
    path: &Path,
    busy_timeout: Duration,
    e: rusqlite::Error,
) -> Error {
    if let Some(stop) = crate::interrupt::received() {
        return Error::from(stop).context(format!("database `{name}`"));
    }
    let busy = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked)
    );
    if matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DiskFull)) {
        // Only the copy is written, so the full disk is the one under backup_dir.
        return Error::new(
            crate::error::Kind::Io,
            format!("database `{name}`: the disk holding the copy is full ({e})"),
        )
        .with_hint(
            "free space on the disk holding backup_dir (or `lifeboat prune`) and run again",
        );
    }
    let err = Error::database(format!("database `{name}` ({}): {e}", path.display()));
    if busy {
        err.with_hint(format!(
            "another process held a lock on it for longer than the busy timeout ({} ms); \
             retry, or raise [snapshot] busy_timeout",
            busy_timeout.as_millis()
        ))
    } else if matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    ) {
        err.with_hint("the file is damaged or not a SQLite database")
    } else {
        err
    }
}
