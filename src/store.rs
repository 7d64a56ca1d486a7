//! Where every file lives: the one owner of the on-disk layout.
//!
//! Two places hold lifeboat's files, and every path in them is computed
//! here and nowhere else:
//!
//! - [`Store`], the backup directory (`backup_dir`): the archives
//!   `<tag>.tar.gz|zst`, the push queue (`<tag>.pending-push` markers), the
//!   run lock, the records `last_run.json` and `drill.json`, and the
//!   transient names of a run in progress (`.staging-<tag>/` for a snapshot's
//!   copies or a download, `.<name>.<pid>.tmp` for a file being written,
//!   `.verify-<pid>-*`/`.drill-<pid>-*` scratch directories).
//! - [`DataArea`], restore's own things beside the data directory:
//!   `<data>.staging-<tag>/`, `<data>.pre-restore-<time>/` and
//!   `<data>.restore-journal.json` (or, when beside is impossible, the same
//!   names under `<data_dir>/.lifeboat`).
//!
//! The names follow one rule that makes cleanup safe: whatever lifeboat
//! leaves behind after a crash carries a name it can recognise (a tag that
//! parses, a pid, a `.tmp` suffix), and nothing else is ever removed.
//! `docs/formats.md` lists them.

use crate::error::{Error, IoContext, Result};
use crate::tag::{Format, Tag};
use std::path::{Path, PathBuf};

const STAGING_PREFIX: &str = ".staging-";
const PENDING_SUFFIX: &str = ".pending-push";

/// The backup directory.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(backup_dir: &Path) -> Store {
        Store {
            dir: backup_dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Create the directory (0700) if needed.
    pub fn create(&self) -> Result<()> {
        crate::fsutil::private_dir(&self.dir)
    }

    pub fn lock_file(&self) -> PathBuf {
        self.dir.join("lifeboat.lock")
    }

    pub fn last_run(&self) -> PathBuf {
        self.dir.join("last_run.json")
    }

    pub fn drill_record(&self) -> PathBuf {
        self.dir.join("drill.json")
    }

    /// Where rendered cron jobs send their output without journald.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("lifeboat.log")
    }

    /// The id of the drive each directory remote was found on, keyed by
    /// the remote's description (`dir:/path`): a different drive mounted at
    /// the same path is then recognised instead of written to.
    pub fn remote_ids(&self) -> PathBuf {
        self.dir.join("remote-ids.json")
    }

    /// Where the archive of `tag` in `format` goes.
    pub fn archive(&self, tag: &Tag, format: Format) -> PathBuf {
        self.dir.join(tag.archive_name(format))
    }

    /// The local archive of `tag`, in whichever format it was written.
    pub fn find_archive(&self, tag: &Tag) -> Option<PathBuf> {
        Format::ALL
            .iter()
            .map(|f| self.archive(tag, *f))
            .find(|p| p.is_file())
    }

    /// Every archive, oldest first. Names that do not parse as
    /// `<tag>.tar.gz|zst` are not lifeboat's and are ignored.
    pub fn archives(&self) -> Result<Vec<(Tag, PathBuf)>> {
        let mut out: Vec<(Tag, PathBuf)> = self
            .file_names()?
            .into_iter()
            .filter_map(|name| Tag::from_archive_name(&name).map(|(t, _)| (t, self.dir.join(name))))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The names of the regular files in the directory (empty when it does
    /// not exist yet): what the local retention plan is made from.
    pub fn file_names(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(format!("cannot list {}", self.dir.display()), e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.ctx(format!("cannot list {}", self.dir.display()))?;
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }

    /// Delete every archive of `tag`; one already gone is fine.
    pub fn delete_archive(&self, tag: &Tag) -> Result<()> {
        for format in Format::ALL {
            let path = self.archive(tag, format);
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(format!("cannot delete {}", path.display()), e)),
            }
        }
        crate::fsutil::sync_dir(&self.dir)
    }

    /// A snapshot's private working directory (its copies, or a download).
    /// A leftover one is removed by [`Store::clean_stale`].
    pub fn staging(&self, tag: &Tag) -> PathBuf {
        self.dir.join(format!("{STAGING_PREFIX}{tag}"))
    }

    fn pending_marker(&self, tag: &Tag) -> PathBuf {
        self.dir.join(format!("{tag}{PENDING_SUFFIX}"))
    }

    /// Queue `tag` for pushing (durably).
    pub fn mark_pending(&self, tag: &Tag) -> Result<()> {
        crate::fsutil::write_atomic(&self.pending_marker(tag), b"")
    }

    /// Take `tag` off the push queue: pushed, or its archive never came to be.
    pub fn clear_pending(&self, tag: &Tag) {
        let _ = std::fs::remove_file(self.pending_marker(tag));
        let _ = crate::fsutil::sync_dir(&self.dir);
    }

    /// Tags whose push has not been confirmed, oldest first.
    pub fn pending(&self) -> Vec<Tag> {
        let mut tags: Vec<Tag> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(PENDING_SUFFIX).and_then(Tag::parse)
            })
            .collect();
        tags.sort();
        tags
    }

    /// Remove what an interrupted run left: staging directories and
    /// temporary files. Only names lifeboat itself makes are touched.
    pub fn clean_stale(&self) -> Result<()> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(format!("cannot list {}", self.dir.display()), e)),
        };
        for entry in entries {
            let entry = entry.ctx(format!("cannot list {}", self.dir.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if let Some(rest) = name.strip_prefix(STAGING_PREFIX) {
                if Tag::parse(rest).is_some() {
                    tracing::info!(path = %path.display(), "removing staging directory of an interrupted run");
                    std::fs::remove_dir_all(&path)
                        .ctx(format!("cannot remove {}", path.display()))?;
                }
            } else if name.starts_with('.') && name.ends_with(".tmp") {
                let stem = name.trim_start_matches('.');
                let is_ours = stem.starts_with("snap-")
                    || stem.starts_with("last_run.json")
                    || stem.starts_with("drill.json");
                if is_ours {
                    tracing::info!(path = %path.display(), "removing temporary file of an interrupted run");
                    std::fs::remove_file(&path).ctx(format!("cannot remove {}", path.display()))?;
                }
            }
        }
        Ok(())
    }

    /// A private scratch directory for unpacking, removed when dropped. It
    /// goes in the backup directory (same filesystem as the archives,
    /// already sized for them), or in the system temp directory when the
    /// backup directory is read-only.
    ///
    /// Its name carries the process id (`.<purpose>-<pid>-<random>`), so
    /// that the directory of a killed run, which would otherwise keep a full
    /// copy of the databases forever, is recognised and removed by the next.
    pub fn scratch(&self, purpose: &str) -> Result<tempfile::TempDir> {
        remove_abandoned(&self.dir, purpose);
        let prefix = format!(".{purpose}-{}-", std::process::id());
        tempfile::Builder::new()
            .prefix(&prefix)
            .tempdir_in(&self.dir)
            .or_else(|_| tempfile::Builder::new().prefix(&prefix).tempdir())
            .map_err(|e| Error::io("cannot create a scratch directory", e))
    }
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

const PRE_RESTORE: &str = ".pre-restore-";
const JOURNAL: &str = ".restore-journal.json";

/// Restore's own area beside the data directory.
#[derive(Debug, Clone)]
pub struct DataArea {
    data_dir: PathBuf,
}

impl DataArea {
    pub fn new(data_dir: &Path) -> DataArea {
        DataArea {
            data_dir: data_dir.to_path_buf(),
        }
    }

    /// Where restore keeps its own things (staging, pre-restore copies, the
    /// journal): a directory and a name prefix. Normally beside the data
    /// directory (`<parent>/<name>.staging-<tag>`), where nothing of the
    /// application lives. When that is impossible - the data directory is
    /// a mount point (renames would cross filesystems) or its parent is not
    /// writable (`/var/lib/<app>`) - inside it, under hidden `.lifeboat.*`
    /// names, which are still on the data's filesystem.
    pub fn area(&self) -> (PathBuf, String) {
        let data_dir = &self.data_dir;
        let inside = (data_dir.to_path_buf(), ".lifeboat".to_string());
        let beside = data_dir.parent().zip(data_dir.file_name());
        let Some((parent, name)) = beside else {
            return inside;
        };
        #[cfg(debug_assertions)]
        if std::env::var_os("LIFEBOAT_TEST_STAGE_INSIDE").is_some() {
            return inside;
        }
        use std::os::unix::fs::MetadataExt;
        let dev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.dev());
        let mount_point = matches!((dev(data_dir), dev(parent)), (Some(a), Some(b)) if a != b);
        if mount_point || (data_dir.is_dir() && !writable(parent)) {
            return inside;
        }
        (parent.to_path_buf(), name.to_string_lossy().into_owned())
    }

    /// `<name><suffix>` in the [`DataArea::area`]: e.g. `data.staging-<tag>`.
    fn sibling(&self, suffix: &str) -> PathBuf {
        let (dir, prefix) = self.area();
        dir.join(format!("{prefix}{suffix}"))
    }

    /// Where a restore unpacks and checks `tag` before the swap.
    pub fn staging(&self, tag: &Tag) -> PathBuf {
        self.sibling(&format!("{STAGING_PREFIX}{tag}"))
    }

    /// The swap journal.
    pub fn journal(&self) -> PathBuf {
        self.sibling(JOURNAL)
    }

    /// Describes where pre-restore copies go, for messages.
    pub fn pre_restore_pattern(&self) -> PathBuf {
        self.sibling(&format!("{PRE_RESTORE}*"))
    }

    /// A fresh `<data_dir>.pre-restore-<time>[-n]` name that sorts after
    /// every existing one, so that `--undo` always finds the newest.
    pub fn new_pre_restore(&self) -> PathBuf {
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let base = self.sibling(&format!("{PRE_RESTORE}{stamp}"));
        let n = self
            .pre_restore_entries()
            .into_iter()
            .filter(|((s, _), _)| *s == stamp)
            .map(|((_, n), _)| n + 1)
            .max();
        match n {
            None if std::fs::symlink_metadata(&base).is_err() => base,
            n => with_suffix(&base, &format!("-{}", n.unwrap_or(2).max(2))),
        }
    }

    /// Every pre-restore directory, oldest first.
    pub fn pre_restore_dirs(&self) -> Vec<PathBuf> {
        self.pre_restore_entries()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// Pre-restore directories with their (time stamp, sequence) keys, sorted.
    fn pre_restore_entries(&self) -> Vec<((String, u32), PathBuf)> {
        let (parent, name) = self.area();
        let prefix = format!("{name}{PRE_RESTORE}");
        let mut found: Vec<((String, u32), PathBuf)> = std::fs::read_dir(&parent)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let rest = name.strip_prefix(&prefix)?.to_string();
                let (stamp, n) = match rest.split_once('-') {
                    Some((s, n)) => (s.to_string(), n.parse().ok()?),
                    None => (rest, 1),
                };
                Some(((stamp, n), e.path()))
            })
            .collect();
        found.sort();
        found
    }

    /// What an interrupted restore can leave in the area besides its
    /// journal: staging directories (`.staging-<tag>`), exchange probes
    /// (`.staging-*.xprobe-*`) and a journal write that never reached its
    /// rename. Returns (path, is a staging directory).
    pub fn leftovers(&self) -> Vec<(PathBuf, bool)> {
        let (parent, name) = self.area();
        let prefix = format!("{name}{STAGING_PREFIX}");
        let journal_tmp = format!(".{name}{JOURNAL}.");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&journal_tmp) && file.ends_with(".tmp") {
                out.push((entry.path(), false));
                continue;
            }
            let Some(rest) = file.strip_prefix(&prefix) else {
                continue;
            };
            if Tag::parse(rest).is_some() {
                out.push((entry.path(), true));
            } else if rest.contains(XPROBE) {
                out.push((entry.path(), false));
            }
        }
        out
    }
}

/// The infix of the scratch directories that probe for `RENAME_EXCHANGE`.
pub const XPROBE: &str = ".xprobe-";

fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// `p` with `suffix` appended to its last component.
pub fn with_suffix(p: &Path, suffix: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let scratch = Store::new(dir.path()).scratch("drill").unwrap();
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
    fn archives_and_queue_ignore_foreign_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let tag = Tag::parse("snap-20261122T014500Z").unwrap();
        for name in [
            "snap-20261122T014500Z.tar.gz",
            "snap-2026.tar.gz",
            "notes.txt",
            "snap-20261122T014500Z.tar.gz.bak",
        ] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        assert_eq!(
            store.archives().unwrap(),
            vec![(tag, store.archive(&tag, Format::Gzip))]
        );
        store.mark_pending(&tag).unwrap();
        std::fs::write(dir.path().join("x.pending-push"), b"").unwrap();
        assert_eq!(store.pending(), vec![tag]);
        store.clear_pending(&tag);
        assert!(store.pending().is_empty());
        store.delete_archive(&tag).unwrap();
        assert!(store.find_archive(&tag).is_none());
        assert!(dir.path().join("snap-2026.tar.gz").exists());
    }

    #[test]
    fn pre_restore_names_sort_newest_last() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let area = DataArea::new(&data);
        let first = area.new_pre_restore();
        std::fs::create_dir(&first).unwrap();
        let second = area.new_pre_restore();
        std::fs::create_dir(&second).unwrap();
        assert_eq!(area.pre_restore_dirs(), vec![first, second]);
        assert_eq!(area.journal(), dir.path().join("data.restore-journal.json"));
    }
}
