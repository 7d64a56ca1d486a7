//! Where every file lives: the one owner of the on-disk layout.
//!
//! Two places hold lifeboat's files, and every path in them is computed
//! here and nowhere else:
//!
//! - [`Store`], the backup directory (`backup_dir`): the archives
//!   `<tag>.tar.gz|zst`, one push queue per remote (`<tag>.pending-push.<remote>`
//!   markers, empty, or holding the remote's refusal of that archive; a
//!   `<tag>.pending-push` from before several remotes counts for each), the
//!   run lock, the records `last_run.json` and `drill.json`, the restore
//!   journal `restore-journal.json`, the audit log `audit.jsonl`, the ids of
//!   the drives directory remotes live on (`remote-ids.json`), and the
//!   transient names of a run in
//!   progress (`.staging-<tag>/` for a snapshot's copies or a download,
//!   `.verify-<pid>-*`/`.drill-<pid>-*` scratch directories; a file being
//!   written is `.<name>.<pid>.tmp` beside it, named by
//!   `fsutil::temp_sibling` for every atomic write, here or elsewhere).
//! - [`DataArea`], restore's own directories beside the data directory:
//!   `<data>.staging-<tag>/`, `<data>.pre-restore-<seq>-<time>/` and
//!   `<data>.set-aside-<seq>/` (or, when beside is impossible, the same
//!   names under `<data_dir>/.lifeboat`). They must be on the data's
//!   filesystem, so that putting files in place is a rename.
//!
//! Every account that runs lifeboat with the same configuration computes the
//! same paths: the restore journal lives in the backup directory (named by
//! the configuration alone), and whether restore's area is beside or inside
//! the data directory is decided from what the filesystem says about the
//! data's owner, not from who is asking. A `sudo lifeboat restore` that
//! crashes leaves its journal where the owner's hourly job looks.
//!
//! The names follow one rule that makes cleanup safe: whatever lifeboat
//! leaves behind after a crash carries a name it can recognise (a tag that
//! parses, a pid, a `.tmp` suffix), and nothing else is ever removed.
//! `docs/formats.md` lists them.

use crate::error::{Error, IoContext, Result};
use crate::tag::{Format, Tag};
use std::path::{Path, PathBuf};

/// A remote's refusal of one archive, kept in its push-queue marker: the
/// queue skips it (it would hold up every later snapshot) until the remote
/// or lifeboat's version changes, since either may take it then.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PushRefusal {
    /// The remote's description (`github:owner/name`).
    pub remote: String,
    pub message: String,
    #[serde(default)]
    pub hint: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
    pub lifeboat_version: String,
}

impl PushRefusal {
    /// Does it still hold for `remote` and this lifeboat?
    pub fn holds_for(&self, remote: &str) -> bool {
        self.remote == remote && self.lifeboat_version == env!("CARGO_PKG_VERSION")
    }
}

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

    /// The journal of a restore's swap: present only while a swap is in
    /// flight, or after one was interrupted.
    pub fn restore_journal(&self) -> PathBuf {
        self.dir.join("restore-journal.json")
    }

    /// The audit log (see [`crate::audit`]); rotated copies get `.1`...
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.jsonl")
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

    /// `<tag>.pending-push.<remote>`: `tag` waits to be pushed to `remote`.
    fn pending_marker(&self, tag: &Tag, remote: &str) -> PathBuf {
        self.dir.join(format!("{tag}{PENDING_SUFFIX}.{remote}"))
    }

    /// `<tag>.pending-push`, written before there were several remotes: it
    /// counts for every remote until each has taken the snapshot.
    fn legacy_marker(&self, tag: &Tag) -> PathBuf {
        self.dir.join(format!("{tag}{PENDING_SUFFIX}"))
    }

    /// Queue `tag` for pushing to `remote` (durably).
    pub fn mark_pending(&self, tag: &Tag, remote: &str) -> Result<()> {
        crate::fsutil::write_atomic(&self.pending_marker(tag, remote), b"")
    }

    /// Take `tag` off `remote`'s queue: pushed there, or its archive never
    /// came to be. A legacy marker first becomes one per remote of
    /// `remotes` (all configured), so the others still push it.
    pub fn clear_pending(&self, tag: &Tag, remote: &str, remotes: &[&str]) {
        let legacy = self.legacy_marker(tag);
        if legacy.exists() {
            for other in remotes.iter().filter(|r| **r != remote) {
                let marker = self.pending_marker(tag, other);
                if !marker.exists() && self.mark_pending(tag, other).is_err() {
                    // Keep the legacy marker: it still queues it everywhere.
                    return;
                }
            }
            let _ = std::fs::remove_file(&legacy);
        }
        let _ = std::fs::remove_file(self.pending_marker(tag, remote));
        let _ = crate::fsutil::sync_dir(&self.dir);
    }

    /// Record that `remote` refused `tag`'s archive for good (see
    /// [`crate::remote::PushFailure::archive_refused`]): the refusal is
    /// written into its push-queue marker, which stays, so local retention
    /// still keeps the archive while it is on no remote.
    pub fn mark_refused(&self, tag: &Tag, remote: &str, refusal: &PushRefusal) -> Result<()> {
        crate::fsutil::write_json_atomic(&self.pending_marker(tag, remote), refusal)
    }

    /// Why `remote` refused `tag`'s archive, if it did. An empty marker
    /// (the usual queue entry) is no refusal.
    pub fn refusal(&self, tag: &Tag, remote: &str) -> Option<PushRefusal> {
        let bytes = std::fs::read(self.pending_marker(tag, remote)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Tags waiting to be pushed to `remote`, oldest first.
    pub fn pending(&self, remote: &str) -> Vec<Tag> {
        self.queued(remote)
    }

    /// Tags waiting to be pushed to any of `remotes` (the configured ones),
    /// oldest first: local retention keeps their archives. A queue of a
    /// remote no longer configured does not count, or its archives would
    /// be kept forever; its markers stay, for when it is configured again.
    ///
    /// A refused archive is kept only while it is on no remote: refused by
    /// every configured remote. Refused by one and taken by another, it is
    /// off the machine and retention treats it like any other.
    pub fn pending_anywhere(&self, remotes: &[&str]) -> Vec<Tag> {
        let mut tags: Vec<Tag> = remotes.iter().flat_map(|r| self.pending(r)).collect();
        // Legacy markers count for every remote, configured or not.
        tags.extend(self.legacy_pending());
        tags.sort();
        tags.dedup();
        tags.retain(|tag| {
            let waiting = remotes
                .iter()
                .any(|r| self.pending_marker(tag, r).exists() && self.refusal(tag, r).is_none());
            let refused_everywhere =
                !remotes.is_empty() && remotes.iter().all(|r| self.refusal(tag, r).is_some());
            waiting || refused_everywhere || self.legacy_marker(tag).exists()
        });
        tags
    }

    /// Tags with a marker from before several remotes.
    fn legacy_pending(&self) -> Vec<Tag> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(PENDING_SUFFIX).and_then(Tag::parse)
            })
            .collect()
    }

    fn queued(&self, remote: &str) -> Vec<Tag> {
        let mut tags: Vec<Tag> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let (tag, rest) = name.split_once(PENDING_SUFFIX)?;
                let tag = Tag::parse(tag)?;
                let whose = rest.strip_prefix('.');
                let wanted = match whose {
                    // Legacy: every remote's.
                    None => rest.is_empty(),
                    Some(r) => r == remote,
                };
                wanted.then_some(tag)
            })
            .collect();
        tags.sort();
        tags.dedup();
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
            if name.starts_with(".lifeboat-parts-") && entry.file_type().is_ok_and(|t| t.is_dir()) {
                // The parts of an archive a killed push was uploading.
                tracing::info!(path = %path.display(), "removing the parts of an interrupted push");
                std::fs::remove_dir_all(&path).ctx(format!("cannot remove {}", path.display()))?;
            } else if let Some(rest) = name.strip_prefix(STAGING_PREFIX) {
                if Tag::parse(rest).is_some() {
                    tracing::info!(path = %path.display(), "removing staging directory of an interrupted run");
                    std::fs::remove_dir_all(&path)
                        .ctx(format!("cannot remove {}", path.display()))?;
                }
            } else if name.starts_with('.') && name.ends_with(".tmp") {
                let stem = name.trim_start_matches('.');
                let is_ours = stem.starts_with("snap-")
                    || stem.starts_with("last_run.json")
                    || stem.starts_with("drill.json")
                    || stem.starts_with("restore-journal.json")
                    || stem.starts_with("remote-ids.json");
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
const SET_ASIDE: &str = ".set-aside-";
/// Where lifeboat 0.1 kept the journal, in the area (read for a crash
/// that such a version left behind).
const LEGACY_JOURNAL: &str = ".restore-journal.json";

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

    /// Where restore keeps its own directories (staging, pre-restore
    /// copies, set-aside files): a directory and a name prefix. Normally
    /// beside the data directory (`<parent>/<name>.staging-<tag>`), where
    /// nothing of the application lives. When that is impossible - the data
    /// directory is a mount point (renames would cross filesystems) or its
    /// parent is not writable by the data's owner (`/var/lib/<app>`) -
    /// inside it, under hidden `.lifeboat.*` names, which are still on the
    /// data's filesystem.
    ///
    /// The choice depends on the filesystem only (owners and modes), never
    /// on the account asking, so root and the data's owner agree on it.
    pub fn area(&self) -> (PathBuf, String) {
        let inside = self.inside();
        let Some(beside) = self.beside() else {
            return inside;
        };
        #[cfg(debug_assertions)]
        if std::env::var_os("LIFEBOAT_TEST_STAGE_INSIDE").is_some() {
            return inside;
        }
        use std::os::unix::fs::MetadataExt;
        let data = std::fs::metadata(&self.data_dir).ok();
        let parent = std::fs::metadata(&beside.0).ok();
        let mount_point = matches!((&data, &parent), (Some(a), Some(b)) if a.dev() != b.dev());
        let owner_cannot_write = match (&data, &parent) {
            (Some(d), Some(p)) => !writable_by(p, d.uid(), d.gid()),
            _ => false,
        };
        if mount_point || owner_cannot_write {
            return inside;
        }
        beside
    }

    fn beside(&self) -> Option<(PathBuf, String)> {
        let parent = self.data_dir.parent()?;
        let name = self.data_dir.file_name()?;
        Some((parent.to_path_buf(), name.to_string_lossy().into_owned()))
    }

    fn inside(&self) -> (PathBuf, String) {
        (self.data_dir.clone(), ".lifeboat".to_string())
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

    /// Where `--keep-staging` keeps a refused staging directory: a name the
    /// next run's cleanup does not recognise as a leftover.
    pub fn kept(&self, staging: &Path) -> PathBuf {
        with_suffix(staging, ".kept")
    }

    /// Two scratch directories beside `near` that probe whether the
    /// filesystem can exchange directories (removed at once; a killed
    /// run's are leftovers).
    pub fn exchange_probes(near: &Path) -> (PathBuf, PathBuf) {
        let pid = std::process::id();
        (
            with_suffix(near, &format!("{XPROBE}{pid}-a")),
            with_suffix(near, &format!("{XPROBE}{pid}-b")),
        )
    }

    /// Journals an older lifeboat may have left in the area (beside or
    /// inside), newest location first.
    pub fn legacy_journals(&self) -> Vec<PathBuf> {
        let (dir, prefix) = self.inside();
        let mut out: Vec<PathBuf> = self
            .beside()
            .map(|(d, p)| d.join(format!("{p}{LEGACY_JOURNAL}")))
            .into_iter()
            .collect();
        out.push(dir.join(format!("{prefix}{LEGACY_JOURNAL}")));
        out
    }

    /// Describes where pre-restore copies go, for messages.
    pub fn pre_restore_pattern(&self) -> PathBuf {
        self.sibling(&format!("{PRE_RESTORE}*"))
    }

    /// Fresh names for one swap: its pre-restore directory,
    /// `<data>.pre-restore-<seq>-<time>`, and where it sets aside files it
    /// finds in its way after a crash (written by the application),
    /// `<data>.set-aside-<seq>` (created only then; never removed by
    /// lifeboat). `seq` is one more than any existing one, so `--undo`
    /// finds the newest by sequence, whatever the clock did between two
    /// restores.
    pub fn new_swap_places(&self) -> (PathBuf, PathBuf) {
        let seq = self.next_sequence();
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        (
            self.sibling(&format!("{PRE_RESTORE}{seq:06}-{stamp}")),
            self.sibling(&format!("{SET_ASIDE}{seq:06}")),
        )
    }

    fn next_sequence(&self) -> u64 {
        let set_aside = self
            .entries(SET_ASIDE)
            .into_iter()
            .filter_map(|(rest, _)| rest.parse::<u64>().ok());
        let pre = self
            .pre_restore_entries()
            .into_iter()
            .filter_map(|(key, _)| match key {
                PreKey::Sequence(n) => Some(n),
                PreKey::Legacy(..) => None,
            });
        pre.chain(set_aside).max().unwrap_or(0) + 1
    }

    /// Every pre-restore directory, oldest first, in both possible areas
    /// (an earlier restore may have been run by another account).
    pub fn pre_restore_dirs(&self) -> Vec<PathBuf> {
        self.pre_restore_entries()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }

    /// When a pre-restore directory was made, from its name (the swap's
    /// time, `<seq>-<time>` or lifeboat 0.1's `<time>[-n]`); `None` for a
    /// path whose name is not a pre-restore name.
    pub fn pre_restore_time(path: &Path) -> Option<chrono::DateTime<chrono::Utc>> {
        let name = path.file_name()?.to_string_lossy().into_owned();
        let (_, rest) = name.rsplit_once(PRE_RESTORE)?;
        PreKey::parse(rest)?;
        let stamp = match rest.split_once('-') {
            Some((seq, stamp)) if seq.bytes().all(|b| b.is_ascii_digit()) => stamp,
            Some((stamp, _)) => stamp,
            None => rest,
        };
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
            .ok()
            .map(|t| t.and_utc())
    }

    /// Pre-restore directories with their order keys, sorted: those named
    /// by lifeboat 0.1 (`<time>[-n]`, ordered by name) before every
    /// sequenced one (`<seq>-<time>`, ordered by sequence).
    fn pre_restore_entries(&self) -> Vec<(PreKey, PathBuf)> {
        let mut found: Vec<(PreKey, PathBuf)> = self
            .entries(PRE_RESTORE)
            .into_iter()
            .filter_map(|(rest, path)| Some((PreKey::parse(&rest)?, path)))
            .collect();
        found.sort();
        found
    }

    /// Directories named `<prefix><infix><rest>` in the area beside and in
    /// the one inside, as (rest, path).
    fn entries(&self, infix: &str) -> Vec<(String, PathBuf)> {
        let mut areas: Vec<(PathBuf, String)> = self.beside().into_iter().collect();
        areas.push(self.inside());
        let mut out = Vec::new();
        for (dir, name) in areas {
            let prefix = format!("{name}{infix}");
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if !e.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let file = e.file_name().to_string_lossy().into_owned();
                if let Some(rest) = file.strip_prefix(&prefix) {
                    out.push((rest.to_string(), e.path()));
                }
            }
        }
        out
    }

    /// What an interrupted restore can leave in the area besides its
    /// journal: staging directories (`.staging-<tag>`), exchange probes
    /// (`.staging-*.xprobe-*`) and a legacy journal write that never
    /// reached its rename. Returns (path, is a staging directory).
    pub fn leftovers(&self) -> Vec<(PathBuf, bool)> {
        let (parent, name) = self.area();
        let prefix = format!("{name}{STAGING_PREFIX}");
        let journal_tmp = format!(".{name}{LEGACY_JOURNAL}.");
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

/// The order of pre-restore directories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum PreKey {
    /// `<time>[-n]`, as lifeboat 0.1 named them: older than any sequenced one.
    Legacy(String, u32),
    /// `<seq>-<time>`.
    Sequence(u64),
}

impl PreKey {
    fn parse(rest: &str) -> Option<PreKey> {
        let is_stamp = |s: &str| chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").is_ok();
        match rest.split_once('-') {
            Some((seq, stamp)) if seq.bytes().all(|b| b.is_ascii_digit()) && is_stamp(stamp) => {
                seq.parse().ok().map(PreKey::Sequence)
            }
            Some((stamp, n)) if is_stamp(stamp) => {
                Some(PreKey::Legacy(stamp.to_string(), n.parse().ok()?))
            }
            None if is_stamp(rest) => Some(PreKey::Legacy(rest.to_string(), 1)),
            _ => None,
        }
    }
}

/// Whether a directory with metadata `dir` is writable by the account
/// `uid` (primary group `gid`), from its mode bits. Supplementary groups
/// and ACLs are not consulted: when in doubt the area goes inside the data
/// directory, which always works.
fn writable_by(dir: &std::fs::Metadata, uid: u32, gid: u32) -> bool {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mode = dir.permissions().mode();
    uid == 0
        || (dir.uid() == uid && mode & 0o200 != 0)
        || (dir.gid() == gid && mode & 0o020 != 0)
        || mode & 0o002 != 0
}

/// Where `restore TAG --to DIR` stages and checks before placing the
/// result into `DIR`: `<DIR>.staging-<tag>`, beside `DIR` (so on its
/// filesystem, and the placement is one rename), never inside the data
/// area.
pub fn placement_staging(to: &Path, tag: &Tag) -> PathBuf {
    with_suffix(to, &format!("{STAGING_PREFIX}{tag}"))
}

/// The infix of the scratch directories that probe for `RENAME_EXCHANGE`.
pub const XPROBE: &str = ".xprobe-";

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
    fn pre_restore_times_come_from_the_name() {
        let t = |name: &str| DataArea::pre_restore_time(Path::new(name)).map(|t| t.to_rfc3339());
        let when = Some("2026-11-22T01:45:00+00:00".to_string());
        assert_eq!(t("/srv/data.pre-restore-000004-20261122T014500Z"), when);
        assert_eq!(t("/srv/data.pre-restore-20261122T014500Z"), when);
        assert_eq!(t("/srv/data.pre-restore-20261122T014500Z-2"), when);
        assert_eq!(t("/srv/data.pre-restore-mine"), None);
        assert_eq!(t("/srv/data.set-aside-000004"), None);
    }

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
        store.mark_pending(&tag, "dir").unwrap();
        std::fs::write(dir.path().join("x.pending-push"), b"").unwrap();
        std::fs::write(dir.path().join("x.pending-push.dir"), b"").unwrap();
        assert_eq!(store.pending("dir"), vec![tag]);
        assert!(
            store.pending("github").is_empty(),
            "each remote its own queue"
        );
        assert_eq!(store.pending_anywhere(&["dir", "github"]), vec![tag]);
        assert!(
            store.pending_anywhere(&["github"]).is_empty(),
            "a remote no longer configured keeps nothing"
        );
        // Refused by one remote and taken by another: off the machine.
        let refusal = PushRefusal {
            remote: "github:o/r".into(),
            message: "too large".into(),
            hint: None,
            at: chrono::Utc::now(),
            lifeboat_version: env!("CARGO_PKG_VERSION").into(),
        };
        store.mark_refused(&tag, "github", &refusal).unwrap();
        store.clear_pending(&tag, "dir", &["dir", "github"]);
        assert!(store.pending_anywhere(&["dir", "github"]).is_empty());
        // Refused by every remote: on none, so kept.
        store.mark_refused(&tag, "dir", &refusal).unwrap();
        assert_eq!(store.pending_anywhere(&["dir", "github"]), vec![tag]);
        store.clear_pending(&tag, "dir", &["dir", "github"]);
        store.clear_pending(&tag, "github", &["dir", "github"]);
        store.mark_pending(&tag, "dir").unwrap();
        store.clear_pending(&tag, "dir", &["dir", "github"]);
        assert!(store.pending("dir").is_empty());
        assert!(
            store
                .pending_anywhere(&["dir", "github", "rclone"])
                .is_empty()
        );

        // A marker from before several remotes: every remote's, until each
        // has taken the snapshot.
        let old = Tag::parse("snap-20261122T004500Z").unwrap();
        std::fs::write(dir.path().join(format!("{old}.pending-push")), b"").unwrap();
        assert_eq!(store.pending("dir"), vec![old]);
        assert_eq!(store.pending("github"), vec![old]);
        store.clear_pending(&old, "dir", &["dir", "github", "rclone"]);
        assert!(store.pending("dir").is_empty());
        assert_eq!(store.pending("github"), vec![old]);
        assert_eq!(store.pending("rclone"), vec![old]);
        store.clear_pending(&old, "github", &["dir", "github", "rclone"]);
        store.clear_pending(&old, "rclone", &["dir", "github", "rclone"]);
        assert!(
            store
                .pending_anywhere(&["dir", "github", "rclone"])
                .is_empty()
        );
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
        // Names lifeboat 0.1 made sort first, by time then number.
        let legacy = ["20261130T090000Z", "20261130T090000Z-2", "20261201T000000Z"]
            .map(|n| dir.path().join(format!("data.pre-restore-{n}")));
        for p in &legacy {
            std::fs::create_dir(p).unwrap();
        }
        let (first, _) = area.new_swap_places();
        std::fs::create_dir(&first).unwrap();
        // A set-aside directory (from a recovery) counts for the sequence.
        let (_, aside) = area.new_swap_places();
        std::fs::create_dir(&aside).unwrap();
        let (third, third_aside) = area.new_swap_places();
        std::fs::create_dir(&third).unwrap();
        let name = |p: &Path| p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name(&first).starts_with("data.pre-restore-000001-"),
            "{first:?}"
        );
        assert_eq!(name(&aside), "data.set-aside-000002");
        assert!(
            name(&third).starts_with("data.pre-restore-000003-"),
            "{third:?}"
        );
        assert_eq!(name(&third_aside), "data.set-aside-000003");
        let mut want = legacy.to_vec();
        want.extend([first, third]);
        assert_eq!(area.pre_restore_dirs(), want);
        // Foreign names are not pre-restore copies.
        std::fs::create_dir(dir.path().join("data.pre-restore-notes")).unwrap();
        assert_eq!(area.pre_restore_dirs().len(), 5);
    }

    #[test]
    fn the_sequence_ignores_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        let area = DataArea::new(&data);
        // A copy named in the future (the clock was ahead) is still older
        // than the next one.
        let future = dir.path().join("data.pre-restore-000007-20991231T235959Z");
        std::fs::create_dir(&future).unwrap();
        let (next, _) = area.new_swap_places();
        std::fs::create_dir(&next).unwrap();
        assert_eq!(area.pre_restore_dirs(), vec![future, next]);
    }

    #[test]
    fn the_area_is_decided_by_the_data_owner_not_the_caller() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let parent = dir.path().join("parent");
        let data = parent.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let area = DataArea::new(&data);
        assert_eq!(area.area(), (parent.clone(), "data".to_string()));
        // A parent its owner cannot write: inside, even for root.
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o555)).unwrap();
        let decided = area.area();
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o755)).unwrap();
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            assert_eq!(decided, (data.clone(), ".lifeboat".to_string()));
        }
    }
}
