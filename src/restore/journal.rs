//! The swap journal: how a multi-file swap becomes all-or-nothing.
//!
//! Before the first live file moves, the whole list of moves is written to
//! `<data_dir>.restore-journal.json` (or `<data_dir>/.lifeboat.restore-journal.json`,
//! see [`crate::store::DataArea`]) with temp + fsync + rename, in state
//! `swapping`. Each move is one `rename(2)` (or one `renameat2` exchange),
//! atomic by itself and fsynced. When all are done the journal flips to
//! `committed`, then the leftovers are cleaned up and the journal removed.
//!
//! A run killed in between leaves the journal behind. The next lifeboat run
//! ([`super::recover`]) reads it: `swapping` is rolled back move by move in
//! reverse (each undo is again one rename, so a crash during recovery is
//! recovered by the run after), `committed` is only cleaned up. The live data
//! is therefore exactly the old set or exactly the new one.
//!
//! Whether a move happened is read from the filesystem, not remembered:
//! a move happened iff its target now has the inode of what was moved.

use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub const JOURNAL_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Swapping,
    Committed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    /// `rename(from, to)`; `ino` is the inode of what will be moved.
    Rename {
        from: PathBuf,
        to: PathBuf,
        ino: u64,
    },
    /// `renameat2(a, b, RENAME_EXCHANGE)`; `a_ino` is `a`'s inode beforehand.
    Exchange { a: PathBuf, b: PathBuf, a_ino: u64 },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub journal_version: u32,
    /// What is being put in place: a snapshot tag, or `undo`.
    pub what: String,
    pub state: State,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Where the new files come from; removed once committed or rolled back.
    pub staging: PathBuf,
    /// `staging` holds the user's own data (an undo puts a pre-restore copy
    /// back): after a rollback it is that data again, so only its empty
    /// directories may be removed, never its files.
    #[serde(default)]
    pub staging_is_user_data: bool,
    /// Where the old files go.
    pub pre_restore: PathBuf,
    pub ops: Vec<Op>,
}

impl Journal {
    pub fn load(path: &Path) -> Result<Option<Journal>> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        let journal: Journal = serde_json::from_slice(&bytes).map_err(|e| {
            Error::refused(format!(
                "the restore journal {} is unreadable: {e}",
                path.display()
            ))
            .with_hint(
                "an interrupted restore left it; compare the data directory with its \
                 .pre-restore-* sibling by hand, then remove the journal",
            )
        })?;
        if journal.journal_version != JOURNAL_VERSION {
            return Err(Error::refused(format!(
                "the restore journal {} has version {}; this lifeboat knows {JOURNAL_VERSION}",
                path.display(),
                journal.journal_version
            ))
            .with_hint("finish it with the lifeboat version that wrote it"));
        }
        Ok(Some(journal))
    }

    fn save(&self, path: &Path) -> Result<()> {
        fsutil::write_json_atomic(path, self)
    }

    /// Write the journal, perform every move, commit, clean up.
    pub fn run(mut self, journal_path: &Path) -> Result<()> {
        self.state = State::Swapping;
        self.save(journal_path)?;
        super::crash_point("journal");
        for (i, op) in self.ops.iter().enumerate() {
            if let Err(e) = perform(op) {
                // Put back what already moved; the journal stays if even
                // that fails, for the next run to finish.
                rollback(&self)?;
                finish(&self, journal_path)?;
                return Err(e.context("the swap failed and was rolled back"));
            }
            if i == 0 {
                super::crash_point("swap");
            }
        }
        super::crash_point("swapped");
        self.state = State::Committed;
        self.save(journal_path)?;
        super::crash_point("committed");
        finish(&self, journal_path)
    }
}

/// Undo every move that happened, newest first. Moves that cannot be undone
/// because something new took the old name are reported, not forced.
pub fn rollback(journal: &Journal) -> Result<()> {
    let mut conflicts = Vec::new();
    for op in journal.ops.iter().rev() {
        match op {
            Op::Rename { from, to, ino } => {
                if inode(to) != Some(*ino) {
                    continue; // never happened
                }
                if exists(from) {
                    conflicts.push(format!("{} and {}", from.display(), to.display()));
                    continue;
                }
                if let Some(parent) = from.parent() {
                    fsutil::create_dir_all_private(parent)?;
                }
                rename(to, from)?;
            }
            Op::Exchange { a, b, a_ino } => {
                if inode(b) == Some(*a_ino) {
                    exchange(a, b)?;
                }
            }
        }
    }
    if !conflicts.is_empty() {
        return Err(Error::refused(format!(
            "could not roll back an interrupted restore: both of {} exist",
            conflicts.join("; ")
        ))
        .with_hint(
            "something recreated a live file after the crash; keep the right one, remove the \
             other, then run lifeboat again (it finishes the rollback)",
        ));
    }
    Ok(())
}

/// After a commit or a rollback: drop the staging area, drop the
/// pre-restore directory if nothing is in it, remove the journal.
pub fn finish(journal: &Journal, journal_path: &Path) -> Result<()> {
    if journal.staging_is_user_data {
        remove_empty_tree(&journal.staging);
    } else if exists(&journal.staging) {
        std::fs::remove_dir_all(&journal.staging)
            .ctx(format!("cannot remove {}", journal.staging.display()))?;
    }
    remove_empty_tree(&journal.pre_restore);
    std::fs::remove_file(journal_path).ctx(format!("cannot remove {}", journal_path.display()))?;
    if let Some(parent) = journal_path.parent() {
        fsutil::sync_dir(parent)?;
    }
    Ok(())
}

pub fn perform(op: &Op) -> Result<()> {
    match op {
        Op::Rename { from, to, .. } => {
            if let Some(parent) = to.parent() {
                fsutil::create_dir_all_private(parent)?;
            }
            rename(from, to)
        }
        Op::Exchange { a, b, .. } => exchange(a, b),
    }
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    // Never replace: every target is a fresh name, and a file there means
    // something changed under us.
    if exists(to) {
        return Err(Error::refused(format!(
            "cannot move {} to {}: the target exists",
            from.display(),
            to.display()
        )));
    }
    std::fs::rename(from, to).ctx(format!(
        "cannot move {} to {}",
        from.display(),
        to.display()
    ))?;
    for dir in [from.parent(), to.parent()].into_iter().flatten() {
        fsutil::sync_dir(dir)?;
    }
    Ok(())
}

/// Swap two paths atomically (Linux `renameat2(RENAME_EXCHANGE)`).
pub fn exchange(a: &Path, b: &Path) -> Result<()> {
    exchange_raw(a, b).ctx(format!(
        "cannot exchange {} and {}",
        a.display(),
        b.display()
    ))?;
    for dir in [a.parent(), b.parent()].into_iter().flatten() {
        fsutil::sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(target_os = "linux")]
pub fn exchange_raw(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: two valid NUL-terminated paths relative to the cwd.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub fn exchange_raw(_a: &Path, _b: &Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::ENOSYS))
}

pub fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

pub fn inode(p: &Path) -> Option<u64> {
    std::fs::symlink_metadata(p).ok().map(|m| m.ino())
}

/// Remove `dir` and its subdirectories if they hold no files. Anything that
/// is not an empty directory stays.
pub fn remove_empty_tree(dir: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(dir) else {
        return true;
    };
    if !meta.is_dir() {
        return false;
    }
    let mut empty = true;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            empty &= remove_empty_tree(&entry.path());
        }
    }
    empty && std::fs::remove_dir(dir).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &Path, ops: Vec<Op>) -> Journal {
        Journal {
            journal_version: JOURNAL_VERSION,
            what: "test".into(),
            state: State::Swapping,
            started_at: chrono::Utc::now(),
            staging: dir.join("staging"),
            staging_is_user_data: false,
            pre_restore: dir.join("pre"),
            ops,
        }
    }

    #[test]
    fn rollback_undoes_exactly_the_moves_that_happened() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("live")).unwrap();
        std::fs::create_dir_all(d.join("staging")).unwrap();
        std::fs::write(d.join("live/a.db"), "old").unwrap();
        std::fs::write(d.join("staging/a.db"), "new").unwrap();
        let ops = vec![
            Op::Rename {
                from: d.join("live/a.db"),
                to: d.join("pre/a.db"),
                ino: inode(&d.join("live/a.db")).unwrap(),
            },
            Op::Rename {
                from: d.join("staging/a.db"),
                to: d.join("live/a.db"),
                ino: inode(&d.join("staging/a.db")).unwrap(),
            },
        ];
        let j = journal(d, ops);
        // Only the first move happened (a crash between the two).
        perform(&j.ops[0]).unwrap();
        rollback(&j).unwrap();
        assert_eq!(std::fs::read(d.join("live/a.db")).unwrap(), b"old");
        // Both happened; rolling back twice is harmless.
        perform(&j.ops[0]).unwrap();
        perform(&j.ops[1]).unwrap();
        assert_eq!(std::fs::read(d.join("live/a.db")).unwrap(), b"new");
        rollback(&j).unwrap();
        rollback(&j).unwrap();
        assert_eq!(std::fs::read(d.join("live/a.db")).unwrap(), b"old");
        assert_eq!(std::fs::read(d.join("staging/a.db")).unwrap(), b"new");
    }

    #[test]
    fn a_failing_move_rolls_back_the_earlier_ones() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("live")).unwrap();
        std::fs::create_dir_all(d.join("staging")).unwrap();
        std::fs::write(d.join("live/a.db"), "old a").unwrap();
        std::fs::write(d.join("live/b.db"), "old b").unwrap();
        std::fs::write(d.join("staging/a.db"), "new a").unwrap();
        let ops = vec![
            Op::Rename {
                from: d.join("live/a.db"),
                to: d.join("pre/a.db"),
                ino: inode(&d.join("live/a.db")).unwrap(),
            },
            Op::Rename {
                from: d.join("staging/a.db"),
                to: d.join("live/a.db"),
                ino: inode(&d.join("staging/a.db")).unwrap(),
            },
            // Refused: the target exists (something we did not plan for).
            Op::Rename {
                from: d.join("staging/a.db"),
                to: d.join("live/b.db"),
                ino: 1,
            },
        ];
        let jpath = d.join("journal.json");
        let err = journal(d, ops).run(&jpath).unwrap_err();
        assert!(err.message.contains("rolled back"), "{}", err.message);
        assert_eq!(std::fs::read(d.join("live/a.db")).unwrap(), b"old a");
        assert_eq!(std::fs::read(d.join("live/b.db")).unwrap(), b"old b");
        assert!(!jpath.exists());
        assert!(!d.join("pre").exists(), "the empty pre-restore dir is gone");
    }

    #[test]
    fn exchange_swaps_directories_and_rolls_back_by_inode() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir_all(d.join("a")).unwrap();
        std::fs::create_dir_all(d.join("b")).unwrap();
        std::fs::write(d.join("a/x"), "A").unwrap();
        std::fs::write(d.join("b/x"), "B").unwrap();
        let op = Op::Exchange {
            a: d.join("a"),
            b: d.join("b"),
            a_ino: inode(&d.join("a")).unwrap(),
        };
        let j = journal(d, vec![op.clone()]);
        rollback(&j).unwrap(); // not performed: nothing to undo
        assert_eq!(std::fs::read(d.join("b/x")).unwrap(), b"B");
        perform(&op).unwrap();
        assert_eq!(std::fs::read(d.join("b/x")).unwrap(), b"A");
        rollback(&j).unwrap();
        assert_eq!(std::fs::read(d.join("b/x")).unwrap(), b"B");
    }
}
