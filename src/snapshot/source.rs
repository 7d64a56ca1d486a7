//! Opening the live database for the hot copy, in every state a real
//! deployment leaves it in: how the copy gets a consistent read of the last
//! committed state without ever writing the live files, and what it says
//! when it cannot.
//!
//! The rule: lifeboat never writes the live database or its `-journal`.
//! (It may update an existing `-shm`, as every reader does: that file is
//! SQLite's shared index, not data.) Four ways in, tried in this order:
//!
//! 1. **Read-only open** (`SQLITE_OPEN_READONLY`), the normal case: a read
//!    transaction pins a WAL snapshot or holds a SHARED lock. A WAL database
//!    left by a crashed writer needs no special care: reading it rebuilds
//!    the `-shm` index from the `-wal` (or, when the `-shm` cannot be
//!    written, SQLite reads the `-wal` into private memory, its documented
//!    "read-only `-shm`" mode); frames the writer never committed are
//!    ignored. So does an account that may read, not write, the files of a
//!    running WAL application.
//! 2. **Private rollback of a hot journal.** A rollback-journal writer killed
//!    mid-transaction leaves a hot `-journal`; SQLite refuses a read-only
//!    reader (`SQLITE_READONLY_ROLLBACK`) because the first reader must roll
//!    it back. We do not let our reader do it in the live file, even where
//!    the account could: the application's next open does exactly that, so
//!    the live files stay what the application would find anyway, and a
//!    backup tool that writes what it backs up (possibly as root) is a
//!    surprise nobody wants at 3 a.m. Instead, holding a SHARED lock on the
//!    live file (so no process can roll it back or write it meanwhile: both
//!    need an EXCLUSIVE lock), the database and its journal are copied into
//!    a private directory beside the staging copy, and SQLite rolls the copy
//!    back there: the same code, the same journal, the same result as the
//!    application's next open. This works for read-only accounts and
//!    read-only mounts too. (A journal naming a super-journal, from a
//!    transaction over attached databases, is resolved by SQLite against the
//!    live super-journal, as the application's open would; SQLite deletes a
//!    super-journal only when no live journal refers to it, and the live
//!    journal still does.)
//! 3. **`immutable=1` for a WAL database nobody has open**, when the account
//!    cannot create the `-shm` (a data directory it may not write, a
//!    read-only mount): `readonly_shm` cannot help since there is no `-shm`
//!    to read. `immutable` makes SQLite take no locks and assume nothing
//!    changes, which is only true if nothing writes the file during the
//!    copy; a read-only mount does not prove that (the application may write
//!    through another mount of the same files). So lifeboat proves it: it
//!    takes a SHARED lock on the database itself, then requires that there
//!    is no `-shm` and no `-wal` with content. In WAL mode, every change to
//!    the database file comes from a `-wal` through a connection that has
//!    the `-shm` (or, in exclusive locking mode, holds an EXCLUSIVE lock,
//!    which our SHARED lock refuses), and the `-shm` is only deleted by a
//!    last connection holding an EXCLUSIVE lock. So if there is still no
//!    `-shm` after the copy, nothing wrote the database during it; if there
//!    is one, the copy is thrown away and the error says to retry.
//! 4. Otherwise, **one error naming the missing permission** (read on the
//!    file, the `-wal` or the `-shm`, write on the directory to create the
//!    `-shm`) and how to grant it, or, when the database stayed locked for
//!    the whole busy timeout, **who holds the lock and what can help**: the
//!    holder's pid comes from `fcntl(F_GETLK)` on SQLite's lock bytes. In WAL
//!    mode only `locking_mode=EXCLUSIVE` holds the database file's
//!    EXCLUSIVE lock for longer than a moment, so no busy timeout can help;
//!    in rollback-journal mode a write transaction holds it too, and its
//!    journal then starts with the journal magic (written when the journal
//!    is synced, before the database is), which tells the two apart.
//!
//! POSIX locks belong to the process, and closing ANY descriptor of a file
//! drops all of the process's locks on it. So lifeboat takes its own lock
//! only while SQLite has the file closed (2.) or opened `immutable` (3.,
//! which takes no locks), reads the file through the locked descriptor, and
//! probes locks only after its connection to the file is closed.

use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::io::{Read, Seek};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// SQLite's lock bytes (see `os_unix.c`): PENDING, RESERVED, then the
/// SHARED range. An EXCLUSIVE lock is a write lock on the SHARED range.
const PENDING_BYTE: i64 = 0x4000_0000;
const RESERVED_BYTE: i64 = PENDING_BYTE + 1;
const SHARED_FIRST: i64 = PENDING_BYTE + 2;
const SHARED_SIZE: i64 = 510;

/// The first bytes of a rollback journal whose header was synced.
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

/// Page cache of the source connection, in KiB: every page is read once.
const CACHE_KIB: u32 = 2048;

/// How the copy reads the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Way {
    /// The live file, read-only.
    Live,
    /// A private copy of the database and its hot journal, rolled back.
    RolledBack,
    /// The live file opened `immutable`, under lifeboat's own SHARED lock.
    Immutable,
}

/// The database opened for the copy, in a read transaction.
pub struct Source {
    conn: Option<Connection>,
    /// As the manifest records it (lower case).
    pub journal_mode: String,
    pub way: Way,
    live: PathBuf,
    name: String,
    /// The private directory of a rolled-back copy, removed on drop.
    scratch: Option<PathBuf>,
    /// The descriptor holding lifeboat's own SHARED lock (`Immutable`): it
    /// must stay open while SQLite reads (SQLite's close releases the lock).
    guard: Option<std::fs::File>,
}

impl Source {
    pub fn conn(&self) -> &Connection {
        self.conn
            .as_ref()
            .expect("the source is open until finished")
    }

    /// End the read transaction, close the source, and check what must
    /// still hold for the copy to be the consistent state it claims to be.
    pub fn finish(mut self) -> Result<()> {
        if let Some(conn) = self.conn.take() {
            conn.execute_batch("COMMIT")
                .map_err(|e| Error::database(format!("database `{}`: {e}", self.name)))?;
        }
        self.guard.take();
        if self.way == Way::Immutable && wal_sidecars(&self.live).shm_exists {
            return Err(Error::database(format!(
                "database `{}`: the application opened {} while it was being copied \
                 (its -shm file appeared); the copy was discarded",
                self.name,
                self.live.display()
            ))
            .with_hint(
                "run the snapshot again (while the application runs, lifeboat reads the \
                 database through its -shm)",
            ));
        }
        Ok(())
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        // The connection first: then our descriptor, then the scratch copy.
        self.conn.take();
        self.guard.take();
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Open `live` for the copy, in a read transaction; `scratch` is a path
/// that does not exist yet, in the private staging directory, for a private
/// rollback.
pub fn open(name: &str, live: &Path, scratch: &Path, busy_timeout: Duration) -> Result<Source> {
    let source = |conn, journal_mode, way| Source {
        conn: Some(conn),
        journal_mode,
        way,
        live: live.to_path_buf(),
        name: name.to_string(),
        scratch: None,
        guard: None,
    };
    let err = match begin(live, OpenFlags::SQLITE_OPEN_READ_ONLY, busy_timeout) {
        Ok((conn, mode)) => return Ok(source(conn, mode, Way::Live)),
        Err(e) => e,
    };
    // The connection is closed now: lifeboat's own locks are safe to use.
    if extended_code(&err) == Some(rusqlite::ffi::SQLITE_READONLY_ROLLBACK) {
        tracing::info!(db = name, "hot journal: rolling back a private copy");
        return match private_rollback(name, live, scratch, busy_timeout) {
            Ok((conn, mode)) => {
                let mut s = source(conn, mode, Way::RolledBack);
                // Removed with the source.
                s.scratch = Some(scratch.to_path_buf());
                Ok(s)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(scratch);
                Err(e)
            }
        };
    }
    if is_busy(&err) {
        return Err(locked_error(name, live, busy_timeout, err));
    }
    let readonly = matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::ReadOnly) | Some(rusqlite::ErrorCode::CannotOpen)
    );
    if readonly && is_wal(live) {
        let side = wal_sidecars(live);
        if !side.shm_exists && side.wal_len == 0 {
            tracing::info!(
                db = name,
                "WAL database with no -shm: reading it immutable under a SHARED lock"
            );
            let (conn, guard) = immutable(name, live, busy_timeout)?;
            let mut s = source(conn, "wal".to_string(), Way::Immutable);
            s.guard = Some(guard);
            return Ok(s);
        }
        return Err(permission_error(name, live, &err));
    }
    Err(super::hotcopy::db_error(name, live, busy_timeout, err))
}

/// Where a private rolled-back copy for the staging copy `dest` goes.
pub fn scratch_for(dest: &Path) -> PathBuf {
    sibling(dest, ".rollback")
}

/// Open, set up, and start the read transaction that the copy runs in:
/// it pins a WAL snapshot or holds a SHARED lock.
fn begin(
    path: &Path,
    flags: OpenFlags,
    busy_timeout: Duration,
) -> rusqlite::Result<(Connection, String)> {
    let mut conn = Connection::open_with_flags(
        path,
        flags | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
    )?;
    super::hotcopy::set_busy_handler(&mut conn, busy_timeout)?;
    // Every page is read once: a large cache would only grow the process
    // with the database (peak memory must not depend on its size).
    conn.execute_batch(&format!("PRAGMA cache_size = -{CACHE_KIB}"))?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    conn.execute_batch("BEGIN")?;
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })?;
    Ok((conn, mode.to_lowercase()))
}

fn extended_code(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy) | Some(rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Whether the header says WAL (file format versions 2).
fn is_wal(path: &Path) -> bool {
    let mut head = [0u8; 20];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && head[18] == 2
        && head[19] == 2
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

struct Sidecars {
    shm_exists: bool,
    wal_len: u64,
}

fn wal_sidecars(db: &Path) -> Sidecars {
    Sidecars {
        shm_exists: std::fs::symlink_metadata(sibling(db, "-shm")).is_ok(),
        wal_len: std::fs::metadata(sibling(db, "-wal")).map_or(0, |m| m.len()),
    }
}

/// A POSIX read lock on SQLite's SHARED range, taken the way SQLite takes
/// it (through the PENDING byte, so a writer waiting for EXCLUSIVE keeps
/// its turn), held until dropped. Read the file only through `file`: closing
/// another descriptor of it would drop the lock.
struct SharedLock {
    file: std::fs::File,
}

impl SharedLock {
    fn take(path: &Path, busy_timeout: Duration) -> std::io::Result<Option<SharedLock>> {
        let file = std::fs::File::open(path)?;
        let deadline = Instant::now() + busy_timeout;
        loop {
            if crate::interrupt::received().is_some() {
                return Ok(None);
            }
            if set_lock(&file, libc::F_RDLCK, PENDING_BYTE, 1)? {
                let shared = set_lock(&file, libc::F_RDLCK, SHARED_FIRST, SHARED_SIZE)?;
                set_lock(&file, libc::F_UNLCK, PENDING_BYTE, 1)?;
                if shared {
                    return Ok(Some(SharedLock { file }));
                }
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn flock(kind: i32, start: i64, len: i64) -> libc::flock {
    // SAFETY: flock is plain data; zero is valid for every field.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind as libc::c_short;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l.l_start = start as libc::off_t;
    l.l_len = len as libc::off_t;
    l
}

/// Set or clear a lock without waiting; `false` if another process holds a
/// conflicting one.
fn set_lock(file: &std::fs::File, kind: i32, start: i64, len: i64) -> std::io::Result<bool> {
    let mut l = flock(kind, start, len);
    // SAFETY: a valid descriptor and a valid flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &mut l) } == 0 {
        return Ok(true);
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EACCES) => Ok(false),
        _ => Err(e),
    }
}

/// The process holding a lock that conflicts with `kind` on the range
/// (`Some(0)` when the holder's pid is not known, as over NFS).
fn lock_holder(file: &std::fs::File, kind: i32, start: i64, len: i64) -> Option<i32> {
    let mut l = flock(kind, start, len);
    // SAFETY: a valid descriptor and a valid flock.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut l) } != 0 {
        return None;
    }
    (l.l_type != libc::F_UNLCK as libc::c_short).then_some(l.l_pid)
}

fn io_err(name: &str, what: String, e: std::io::Error) -> Error {
    let denied = e.kind() == std::io::ErrorKind::PermissionDenied;
    let err = Error::database(format!("database `{name}`: {what}: {e}"));
    if denied {
        err.with_hint(grant_hint(None))
    } else {
        err
    }
}

/// Copy the database and its hot journal into `scratch` under a SHARED lock
/// on the live file, and let SQLite roll the copy back.
fn private_rollback(
    name: &str,
    live: &Path,
    scratch: &Path,
    busy_timeout: Duration,
) -> Result<(Connection, String)> {
    let journal = sibling(live, "-journal");
    let file_name = live.file_name().unwrap_or_default();
    crate::fsutil::private_dir(scratch)?;
    let copy = scratch.join(file_name);
    {
        let Some(lock) = SharedLock::take(live, busy_timeout)
            .map_err(|e| io_err(name, format!("cannot open {}", live.display()), e))?
        else {
            if let Some(stop) = crate::interrupt::received() {
                return Err(Error::from(stop).context(format!("database `{name}`")));
            }
            return Err(Error::database(format!(
                "database `{name}` ({}) has a hot journal (a writer crashed mid-transaction) \
                 and stayed locked for the busy timeout",
                live.display()
            ))
            .with_hint(
                "another process is rolling it back or writing it; run the snapshot again",
            ));
        };
        let mut file = &lock.file;
        file.rewind()
            .map_err(|e| io_err(name, format!("cannot read {}", live.display()), e))?;
        let mut out = std::fs::File::create(&copy)
            .map_err(|e| Error::io(format!("cannot create {}", copy.display()), e))?;
        std::io::copy(&mut file, &mut out)
            .map_err(|e| io_err(name, format!("cannot copy {}", live.display()), e))?;
        // A process holding RESERVED is writing a new journal, so the one
        // there is not hot (a hot one is rolled back before anyone writes);
        // the database itself is consistent under our SHARED lock.
        if lock_holder(&lock.file, libc::F_WRLCK, RESERVED_BYTE, 1).is_none() {
            match std::fs::copy(&journal, sibling(&copy, "-journal")) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    let err = Error::database(format!(
                        "database `{name}` has a hot journal (a writer crashed mid-transaction) \
                         that lifeboat cannot read: {}: {e}",
                        journal.display()
                    ));
                    return Err(if e.kind() == std::io::ErrorKind::PermissionDenied {
                        err.with_hint(format!(
                            "the last committed state needs the journal: {}; or let the \
                             application open the database once (it rolls the journal back)",
                            grant_hint(None)
                        ))
                    } else {
                        err
                    });
                }
            }
        }
        // Dropping the lock's descriptor releases the lock.
    }
    begin(&copy, OpenFlags::SQLITE_OPEN_READ_WRITE, busy_timeout).map_err(|e| {
        Error::database(format!(
            "database `{name}`: rolling back its hot journal in a private copy failed: {e}"
        ))
    })
}

/// Open a WAL database that has no `-shm` and no `-wal` content with
/// `immutable=1`, under lifeboat's own SHARED lock (see the file comment).
fn immutable(
    name: &str,
    live: &Path,
    busy_timeout: Duration,
) -> Result<(Connection, std::fs::File)> {
    let lock = SharedLock::take(live, busy_timeout)
        .map_err(|e| io_err(name, format!("cannot open {}", live.display()), e))?;
    let Some(lock) = lock else {
        return Err(locked_error(
            name,
            live,
            busy_timeout,
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                Some("database is locked".into()),
            ),
        ));
    };
    // Checked under the lock: a connection that opened it before would have
    // made the -shm, and none can remove it while we hold the lock.
    let side = wal_sidecars(live);
    if side.shm_exists || side.wal_len != 0 {
        return Err(Error::database(format!(
            "database `{name}`: the application opened {} while lifeboat was opening it",
            live.display()
        ))
        .with_hint("run the snapshot again"));
    }
    let uri = format!("file:{}?immutable=1", uri_path(live));
    let (conn, _) = begin(
        Path::new(&uri),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
        busy_timeout,
    )
    .map_err(|e| Error::database(format!("database `{name}` ({}): {e}", live.display())))?;
    Ok((conn, lock.file))
}

/// A path for a `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
}

/// How to give the backup account what it lacks.
pub(super) fn grant_hint(dir: Option<&Path>) -> String {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let account = crate::accounts::account_name(uid).unwrap_or_else(|| uid.to_string());
    let dir = dir.map_or_else(|| "<data_dir>".to_string(), |d| d.display().to_string());
    format!(
        "run lifeboat as the application's account, or give the backup account `{account}` \
         access: add it to the application's group and make the files group-readable and the \
         directory group-writable (chmod g+rw), or grant it with an ACL \
         (setfacl -m u:{account}:rwx {dir}; setfacl -m u:{account}:r <the database files>)"
    )
}

fn access(path: &Path, mode: i32) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: a valid NUL-terminated path. AT_EACCESS: the effective ids,
    // those SQLite opens files with.
    if unsafe { libc::faccessat(libc::AT_FDCWD, c.as_ptr(), mode, libc::AT_EACCESS) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// A WAL database that cannot be read: name the permission that is missing.
fn permission_error(name: &str, live: &Path, err: &rusqlite::Error) -> Error {
    let dir = live
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let wal = sibling(live, "-wal");
    let shm = sibling(live, "-shm");
    let head = format!(
        "database `{name}` ({}) cannot be read: {err}",
        live.display()
    );
    let denied = |p: &Path| matches!(access(p, libc::R_OK), Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied);
    for (file, what) in [(&wal, "-wal"), (&shm, "-shm")] {
        if file.exists() && denied(file) {
            return Error::database(format!(
                "{head}; this account may not read its {what} file {}, which holds part of \
                 the database (WAL mode)",
                file.display()
            ))
            .with_hint(grant_hint(Some(dir)));
        }
    }
    if !shm.exists() {
        return match access(dir, libc::W_OK) {
            Err(e) if e.raw_os_error() == Some(libc::EROFS) => Error::database(format!(
                "{head}; its -wal holds committed data, and reading it needs a -shm file \
                 that cannot be created on the read-only mount {}",
                dir.display()
            ))
            .with_hint(
                "let the application checkpoint and close it (its -wal is then emptied), or \
                 run lifeboat where the directory is writable",
            ),
            Err(_) => Error::database(format!(
                "{head}; reading a WAL database with content in its -wal needs its -shm file, \
                 which this account may not create: no write permission on {}",
                dir.display()
            ))
            .with_hint(grant_hint(Some(dir))),
            Ok(()) => Error::database(head),
        };
    }
    Error::database(head).with_hint(grant_hint(Some(dir)))
}

/// The database stayed locked for the whole busy timeout: who holds it, and
/// what can help.
fn locked_error(name: &str, live: &Path, busy_timeout: Duration, err: rusqlite::Error) -> Error {
    if let Some(stop) = crate::interrupt::received() {
        return Error::from(stop).context(format!("database `{name}`"));
    }
    let holder = std::fs::File::open(live)
        .ok()
        .and_then(|f| lock_holder(&f, libc::F_RDLCK, SHARED_FIRST, SHARED_SIZE));
    let Some(pid) = holder else {
        return super::hotcopy::db_error(name, live, busy_timeout, err);
    };
    let who = if pid > 0 {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        match comm.trim() {
            "" => format!("process {pid}"),
            c => format!("process {pid} ({c})"),
        }
    } else {
        "another process".to_string()
    };
    let secs = busy_timeout.as_secs_f64();
    let writing = !is_wal(live) && {
        let mut head = [0u8; 8];
        std::fs::File::open(sibling(live, "-journal"))
            .and_then(|mut f| f.read_exact(&mut head))
            .is_ok()
            && head == JOURNAL_MAGIC
    };
    if writing {
        return Error::database(format!(
            "database `{name}` ({}): {err}: {who} was writing it (a write transaction) for \
             longer than the busy timeout ({secs} s)",
            live.display()
        ))
        .with_hint("retry when the transaction is over, or raise [snapshot] busy_timeout");
    }
    Error::database(format!(
        "database `{name}` ({}): {who} holds an exclusive lock on it and kept it for the whole \
         busy timeout ({secs} s) without writing: the application keeps the database locked \
         (PRAGMA locking_mode=EXCLUSIVE, or a transaction begun with BEGIN EXCLUSIVE and left open)",
        live.display()
    ))
    .with_hint(
        "waiting longer does not help while it holds the lock: take the snapshot while the \
         application pauses or has closed the database, or have the application release the \
         lock (PRAGMA locking_mode=NORMAL, then any read) and run `lifeboat backup-now` itself",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_escape_what_a_uri_would_read() {
        assert_eq!(
            uri_path(Path::new("/srv/a%b/c?d#e.db")),
            "/srv/a%25b/c%3fd%23e.db"
        );
    }

    /// A database with a hot journal (the files of a writer caught
    /// mid-transaction, copied elsewhere: nobody holds a lock on the copy)
    /// is read rolled back, from a private copy, without touching it.
    #[test]
    fn a_hot_journal_is_rolled_back_in_a_private_copy() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let writer = Connection::open(&db).unwrap();
        writer
            .execute_batch(
                "CREATE TABLE t(x); INSERT INTO t VALUES ('committed');
                 PRAGMA cache_size = 10; BEGIN;
                 UPDATE t SET x = 'never committed';
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
                 INSERT INTO t SELECT randomblob(1000) FROM n;",
            )
            .unwrap();
        let crashed = dir.path().join("crashed");
        std::fs::create_dir(&crashed).unwrap();
        let live = crashed.join("app.db");
        std::fs::copy(&db, &live).unwrap();
        std::fs::copy(sibling(&db, "-journal"), sibling(&live, "-journal")).unwrap();
        drop(writer);
        let before = (
            std::fs::read(&live).unwrap(),
            std::fs::read(sibling(&live, "-journal")).unwrap(),
        );
        assert_eq!(&before.1[..8], &JOURNAL_MAGIC, "the journal is hot");

        let scratch = dir.path().join("staging").join("app.db.rollback");
        std::fs::create_dir(scratch.parent().unwrap()).unwrap();
        let source = open("app", &live, &scratch, Duration::from_secs(1)).unwrap();
        assert_eq!(source.way, Way::RolledBack);
        let rows: Vec<String> = source
            .conn()
            .prepare("SELECT x FROM t")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(rows, ["committed"]);
        source.finish().unwrap();
        assert!(!scratch.exists(), "the private copy is removed");
        let after = (
            std::fs::read(&live).unwrap(),
            std::fs::read(sibling(&live, "-journal")).unwrap(),
        );
        assert!(after == before, "the live files were not written");
    }

    fn wal_db(dir: &Path) -> PathBuf {
        let db = dir.join("app.db");
        let c = Connection::open(&db).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        drop(c);
        assert!(!sibling(&db, "-shm").exists() && !sibling(&db, "-wal").exists());
        db
    }

    /// lifeboat's own SHARED lock is SQLite's: another process cannot take
    /// the EXCLUSIVE lock that checkpointing on close, leaving WAL mode or
    /// rolling back a hot journal need.
    #[test]
    fn our_shared_lock_keeps_other_processes_from_writing() {
        let dir = tempfile::tempdir().unwrap();
        let db = wal_db(dir.path());
        let script = "import sqlite3, sys\n\
            c = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)\n\
            c.execute('PRAGMA locking_mode=EXCLUSIVE')\n\
            try:\n    c.execute('BEGIN EXCLUSIVE'); print('got it')\n\
            except sqlite3.OperationalError as e:\n    print(e)\n";
        let try_exclusive = || {
            let out = std::process::Command::new("python3")
                .args(["-c", script])
                .arg(&db)
                .output()
                .expect("python3 runs");
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        let lock = SharedLock::take(&db, Duration::from_secs(1))
            .unwrap()
            .unwrap();
        assert_eq!(try_exclusive(), "database is locked");
        drop(lock);
        assert_eq!(try_exclusive(), "got it");
    }

    /// The immutable copy is only kept if no -shm appeared meanwhile (an
    /// application that opened the database); it is refused outright if
    /// one is there when it starts.
    #[test]
    fn an_immutable_copy_is_discarded_when_the_database_was_opened_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let db = wal_db(dir.path());
        let (conn, guard) = immutable("app", &db, Duration::from_secs(1)).unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 1);
        let source = Source {
            conn: Some(conn),
            journal_mode: "wal".into(),
            way: Way::Immutable,
            live: db.clone(),
            name: "app".into(),
            scratch: None,
            guard: Some(guard),
        };
        std::fs::write(sibling(&db, "-shm"), b"").unwrap();
        let err = source.finish().unwrap_err().to_string();
        assert!(err.contains("its -shm file appeared"), "{err}");
        let err = immutable("app", &db, Duration::from_secs(1))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("opened"), "{err}");
    }
}
