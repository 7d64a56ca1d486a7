//! Step 7: put staged files in place of live ones.
//!
//! Two ways, both written down as a [`Journal`] before anything moves:
//! - Whole directory: when the data directory holds nothing but the declared
//!   databases (and their `-wal`/`-shm`/`-journal` files), the staging
//!   directory and the data directory are exchanged with one
//!   `renameat2(RENAME_EXCHANGE)`, and the old tree is then renamed to the
//!   pre-restore directory. The live data flips in one step.
//! - Per file: otherwise (the usual case: `backup_dir` defaults to
//!   `<data_dir>/backups`, and applications keep other files beside their
//!   databases). Each database, with its logs, moves aside into the
//!   pre-restore directory, then its staged copy moves in. Files lifeboat
//!   does not manage are never moved.
//!
//! A database path that is a symbolic link is swapped through it: its unit
//! names the link's target ([`super::links`]), so the whole-directory
//! exchange (which would move the link) is never used then.
//!
//! Before the journal is written each live database is *settled*: opened
//! and closed once, as the application's next open would, so that SQLite
//! rolls back a hot journal and checkpoints a leftover `-wal`. A settled
//! database is one file, so moving it aside is one rename that can never
//! separate a database from its log, and the pre-restore copy is exactly
//! what the application would have found.

pub use super::journal::SIDECARS;
use super::journal::{JOURNAL_VERSION, Journal, State, Swap, Unit, inode};
use crate::error::{Error, IoContext, Result};
use crate::snapshot::manifest::FileOwnership;
use crate::store::with_suffix;
use rusqlite::{Connection, OpenFlags};
use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One database to put in place: its file under the staging directory and
/// its live path under the data directory (both relative).
#[derive(Debug, Clone)]
pub struct Item {
    pub name: String,
    pub staged: PathBuf,
    pub live: PathBuf,
    /// The owner and mode the snapshot recorded, for a database with no
    /// live file to take them from (a fresh machine).
    pub recorded: Option<FileOwnership>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// One `renameat2(RENAME_EXCHANGE)` of the staging and data directories.
    WholeDirectory,
    /// Per-file renames under the journal.
    PerFile,
}

/// Where a swap puts things.
pub struct Places<'a> {
    pub data_dir: &'a Path,
    pub staging: &'a Path,
    /// The old files (must not exist yet).
    pub pre_restore: &'a Path,
    /// Files found in the way during a recovery (created only if needed).
    pub set_aside: &'a Path,
}

/// Build the journal that swaps `items` from `staging` into `data_dir`,
/// moving what they replace into `pre_restore`.
pub fn plan(what: &str, at: &Places, items: &[Item], whole: bool) -> Result<(Mode, Journal)> {
    // Everything a root restore stages or sets aside belongs to the data's
    // owner: the application can use what goes live, and the owner's own
    // hourly run can finish a swap that root's was killed in.
    let owner = crate::fsutil::owner_of(at.data_dir);
    // A database path that is a symbolic link is swapped through it: its
    // unit names the target (refused here, before anything moves, when
    // that cannot be done safely; see `links`).
    let lives = resolve(at.data_dir, items, at.staging)?;
    give_tree(at.staging, owner)?;
    for (item, live) in items.iter().zip(&lives) {
        keep_owner_and_mode(
            live,
            &at.staging.join(&item.staged),
            item.recorded.as_ref(),
            owner,
        )?;
        settle(live);
    }
    let mut journal = Journal {
        journal_version: JOURNAL_VERSION,
        what: what.to_string(),
        state: State::Swapping,
        started_at: chrono::Utc::now(),
        staging: at.staging.to_path_buf(),
        staging_is_user_data: false,
        pre_restore: at.pre_restore.to_path_buf(),
        set_aside: at.set_aside.to_path_buf(),
        swap: Swap::PerFile { units: vec![] },
    };
    let through_links = items
        .iter()
        .zip(&lives)
        .any(|(i, l)| *l != at.data_dir.join(&i.live));
    if whole && !through_links && whole_directory_possible(at.data_dir, at.staging, items) {
        copy_modes(at.data_dir, at.staging)?;
        journal.swap = Swap::WholeDirectory {
            data_dir: at.data_dir.to_path_buf(),
            staged_ino: ino(at.staging)?,
        };
        return Ok((Mode::WholeDirectory, journal));
    }
    let mut units = Vec::new();
    for (item, live) in items.iter().zip(lives) {
        let old = SIDECARS
            .iter()
            .filter_map(|s| inode(&with_suffix(&live, s)).map(|i| (s.to_string(), i)))
            .collect();
        let staged = at.staging.join(&item.staged);
        units.push(Unit {
            name: item.name.clone(),
            staged_ino: ino(&staged)?,
            aside: at.pre_restore.join(&item.live),
            live,
            staged,
            old,
        });
    }
    journal.swap = Swap::PerFile { units };
    Ok((Mode::PerFile, journal))
}

/// Where each item's live files really are: its path under `data_dir`, or
/// the target of the symbolic link found there ([`super::links`]).
pub fn resolve(data_dir: &Path, items: &[Item], area_dir: &Path) -> Result<Vec<PathBuf>> {
    let dbs: Vec<(String, PathBuf)> = items
        .iter()
        .map(|i| (i.name.clone(), i.live.clone()))
        .collect();
    Ok(super::links::resolve_all(data_dir, &dbs, area_dir)?
        .into_iter()
        .map(|(_, l)| l.path)
        .collect())
}

/// Open and close the live database once, as the application's next open
/// would: SQLite rolls back a hot journal and checkpoints and removes a
/// leftover `-wal`. A database that does not open (damaged: replacing it is
/// the point) is left as it is, and its files move as a unit anyway.
fn settle(live: &Path) {
    if !live.is_file() {
        return;
    }
    let settled = Connection::open_with_flags(
        live,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .and_then(|c| {
        c.busy_timeout(Duration::from_millis(500))?;
        c.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })?;
        c.close().map_err(|(_, e)| e)
    });
    if let Err(e) = settled {
        tracing::info!(path = %live.display(), error = %e, "the live database could not be settled; its files move together");
    }
}

fn ino(p: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(p)
        .map(|m| m.ino())
        .ctx(format!("cannot stat {}", p.display()))
}

/// The whole-directory exchange is only right when it moves nothing but
/// managed files: every entry of the data directory must be a declared
/// database file (or sidecar) or a directory leading to one, the data
/// directory must not be a mount point, and the filesystem must support the
/// exchange.
fn whole_directory_possible(data_dir: &Path, staging: &Path, items: &[Item]) -> bool {
    if items.iter().any(|i| i.staged != i.live) {
        return false;
    }
    let Ok(meta) = std::fs::symlink_metadata(data_dir) else {
        return false;
    };
    if !meta.is_dir() {
        return false;
    }
    // A mount point cannot be renamed; its files can.
    use std::os::unix::fs::MetadataExt;
    let parent_dev = data_dir
        .parent()
        .and_then(|p| std::fs::metadata(p).ok())
        .map(|m| m.dev());
    if parent_dev != Some(meta.dev()) {
        return false;
    }
    let mut files = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    for item in items {
        for suffix in SIDECARS {
            files.insert(with_suffix(&item.live, suffix));
        }
        let mut p = item.live.parent();
        while let Some(d) = p.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(d.to_path_buf());
            p = d.parent();
        }
    }
    only_managed(data_dir, Path::new(""), &files, &dirs) && exchange_supported(staging)
}

fn only_managed(
    root: &Path,
    rel: &Path,
    files: &BTreeSet<PathBuf>,
    dirs: &BTreeSet<PathBuf>,
) -> bool {
    let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
        return false;
    };
    for entry in entries {
        let Ok(entry) = entry else { return false };
        let child = rel.join(entry.file_name());
        let Ok(kind) = entry.file_type() else {
            return false;
        };
        let ok = if kind.is_dir() {
            dirs.contains(&child) && only_managed(root, &child, files, dirs)
        } else {
            kind.is_file() && files.contains(&child)
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Try an exchange of two scratch directories beside `near`.
fn exchange_supported(near: &Path) -> bool {
    let (a, b) = crate::store::DataArea::exchange_probes(near);
    let ok = std::fs::create_dir(&a).is_ok()
        && std::fs::create_dir(&b).is_ok()
        && super::journal::exchange_raw(&a, &b).is_ok();
    let _ = std::fs::remove_dir(&a);
    let _ = std::fs::remove_dir(&b);
    ok
}

/// The staged tree replaces the data directory itself: give it the data
/// directory's permissions (and its subdirectories' where they exist), not
/// the 0700 of a private staging area.
fn copy_modes(data_dir: &Path, staging: &Path) -> Result<()> {
    let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o7777);
    if let Ok(m) = mode(data_dir) {
        std::fs::set_permissions(staging, std::fs::Permissions::from_mode(m))
            .ctx(format!("cannot set permissions on {}", staging.display()))?;
    }
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(staging.join(&rel)) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let child = rel.join(entry.file_name());
                if let Ok(m) = mode(&data_dir.join(&child)) {
                    let _ = std::fs::set_permissions(
                        staging.join(&child),
                        std::fs::Permissions::from_mode(m),
                    );
                }
                stack.push(child);
            }
        }
    }
    Ok(())
}

/// A restored database keeps the permissions and, under root, the owner of
/// the file it replaces (the application may rely on group access, and must
/// be able to write it). With nothing to replace (a fresh machine), it gets
/// the mode the snapshot recorded and the recorded owner looked up by name
/// (ids differ between machines), else the data directory's owner. Staged
/// files are 0600 until then.
fn keep_owner_and_mode(
    live: &Path,
    staged: &Path,
    recorded: Option<&FileOwnership>,
    data_owner: Option<(u32, u32)>,
) -> Result<()> {
    let set_mode = |mode: u32| {
        std::fs::set_permissions(staged, std::fs::Permissions::from_mode(mode))
            .ctx(format!("cannot set permissions on {}", staged.display()))
    };
    match std::fs::metadata(live) {
        Ok(m) if m.is_file() => {
            set_mode(m.permissions().mode() & 0o7777)?;
            crate::fsutil::give_to(staged, crate::fsutil::owner_of(live))
        }
        _ => {
            let Some(recorded) = recorded else {
                return crate::fsutil::give_to(staged, data_owner);
            };
            if let Some(mode) = recorded.mode_bits() {
                set_mode(crate::snapshot::manifest::safe_mode(mode))?;
            }
            crate::fsutil::give_to(staged, recorded.owner_here(data_owner))
        }
    }
}

/// Give `dir` and every directory under it to `owner` (root only; files
/// are given one by one by [`keep_owner_and_mode`]).
fn give_tree(dir: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    crate::fsutil::give_to(dir, owner)?;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            give_tree(&entry.path(), owner)?;
        }
    }
    Ok(())
}

/// Is the database at `path` in use by another process? First the
/// processes that have it (or its `-wal`/`-shm`/`-journal`) open, read from
/// `/proc` (an idle connection holds no lock, in any journal mode); then,
/// for processes `/proc` does not show us (another account's), the `-shm`
/// file's DMS lock (held by every open WAL connection) and an exclusive
/// SQLite lock with a short timeout.
pub fn in_use(path: &Path) -> Option<String> {
    if !path.is_file() {
        return None;
    }
    if let Some((pid, command)) = open_by_another_process(path) {
        return Some(format!("process {pid} ({command}) has it open"));
    }
    if let Some(pid) = shm_holder(&with_suffix(path, "-shm")) {
        return Some(format!("process {pid} has it open"));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.busy_timeout(Duration::from_millis(500)).ok()?;
    match conn.execute_batch("BEGIN EXCLUSIVE; ROLLBACK;") {
        Ok(()) => None,
        Err(e)
            if matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ) =>
        {
            Some("another process holds a lock on it".to_string())
        }
        // A damaged database is not "in use"; replacing it is the point.
        Err(_) => None,
    }
}

/// A process other than this one with an open file descriptor on the
/// database or one of its logs: its pid and command name. Linux only
/// (`/proc/<pid>/fd`); processes of other accounts are invisible to a
/// non-root caller and are left to the lock probes.
fn open_by_another_process(db: &Path) -> Option<(u32, String)> {
    use std::os::unix::fs::MetadataExt;
    let wanted: BTreeSet<(u64, u64)> = SIDECARS
        .iter()
        .filter_map(|s| std::fs::metadata(with_suffix(db, s)).ok())
        .map(|m| (m.dev(), m.ino()))
        .collect();
    let me = std::process::id();
    for proc_entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = proc_entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(proc_entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            // metadata() follows the fd's link to the open file itself.
            let Ok(m) = std::fs::metadata(fd.path()) else {
                continue;
            };
            if wanted.contains(&(m.dev(), m.ino())) {
                let command = std::fs::read_to_string(proc_entry.path().join("comm"))
                    .map(|c| c.trim().to_string())
                    .unwrap_or_else(|_| "?".into());
                return Some((pid, command));
            }
        }
    }
    None
}

/// The pid holding a lock on the DMS byte of a `-shm` file, if any.
fn shm_holder(shm: &Path) -> Option<i32> {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::File::open(shm).ok()?;
    // SAFETY: a zeroed flock is a valid value; F_GETLK only reads our fd.
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as _;
    fl.l_whence = libc::SEEK_SET as _;
    fl.l_start = 128; // SQLite's "dead man switch" byte in the shm file
    fl.l_len = 1;
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut fl) };
    (rc == 0 && fl.l_type != libc::F_UNLCK as libc::c_short).then_some(fl.l_pid)
}

/// Refuse when any of the live databases is in use.
pub fn refuse_in_use(dbs: &[(String, PathBuf)]) -> Result<()> {
    for (name, path) in dbs {
        if let Some(why) = in_use(path) {
            return Err(Error::refused(format!(
                "database `{name}` ({}) is in use: {why}",
                path.display()
            ))
            .with_hint(
                "stop the application first (a restore under a running application loses its \
                 writes), or pass --force if you are sure; nothing was changed",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_linked_database_is_planned_per_file_on_its_target_and_the_link_stays() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        for dir in ["data", "volume", "staging"] {
            std::fs::create_dir(p.join(dir)).unwrap();
        }
        std::fs::write(p.join("volume/app.db"), "old").unwrap();
        std::fs::write(p.join("staging/app.db"), "new").unwrap();
        std::os::unix::fs::symlink("../volume/app.db", p.join("data/app.db")).unwrap();
        let items = [Item {
            name: "app".into(),
            staged: "app.db".into(),
            live: "app.db".into(),
            recorded: None,
        }];
        let places = Places {
            data_dir: &p.join("data"),
            staging: &p.join("staging"),
            pre_restore: &p.join("pre"),
            set_aside: &p.join("aside"),
        };
        let (mode, journal) = plan("t", &places, &items, true).unwrap();
        assert_eq!(mode, Mode::PerFile);
        let Swap::PerFile { units } = &journal.swap else {
            panic!("per file")
        };
        let target = std::fs::canonicalize(p.join("volume/app.db")).unwrap();
        assert_eq!(units[0].live, target);
        assert_eq!(units[0].aside, p.join("pre/app.db"));
        journal.run(&p.join("journal.json")).unwrap();
        let read = |r: &str| std::fs::read_to_string(p.join(r)).unwrap();
        assert_eq!(read("data/app.db"), "new", "read through the link");
        assert_eq!(read("volume/app.db"), "new");
        assert_eq!(read("pre/app.db"), "old");
        assert!(!p.join("data/app.db-wal").exists());
        let link = std::fs::symlink_metadata(p.join("data/app.db")).unwrap();
        assert!(link.file_type().is_symlink());
    }
}
