//! A plain directory as a remote (external drive, NAS mount).
//!
//! Layout: `<root>/<tag>.tar.gz|zst`, each with a `<name>.sha256` sidecar in
//! `sha256sum` format (so `sha256sum -c` works by hand, and listing never
//! rereads archives). Files arrive as `.<name>.tmp`, are fsynced and checked
//! against the source, and only then renamed into place: a name that exists
//! is a complete copy. Only names that parse as lifeboat archives are ever
//! listed or deleted.
//!
//! The root carries a marker, `.lifeboat-remote` (a random id), and the id
//! found there is remembered in `backup_dir` ([`crate::store::Store::remote_ids`]).
//! A drive's mount point is an ordinary empty directory while the drive is
//! unplugged: without the marker, lifeboat would "push" to the machine's own
//! disk, under the mount point, where the copies vanish from sight once the
//! drive is back. So nothing is read from or written to a root without the
//! marker, or with another drive's marker, except in two cases:
//! `lifeboat doctor --fix` creates and marks a new remote (an explicit step),
//! and a directory that already holds lifeboat archives, from before markers
//! existed, is marked by the first push or delete, as long as this machine
//! remembers no other id for it.

use super::marker::{self, Marker};
use super::{Checks, PushFailure, PushOutcome, Remote, RemoteSnapshot};
use crate::config::DirRemoteConfig;
use crate::error::{Error, IoContext, Kind, Result};
use crate::fsutil;
use crate::hash::{self, Failed, sha256_file};
use crate::tag::Format;
use crate::tag::{Installation, Tag};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

const SIDECAR: &str = ".sha256";

/// The marker's name at the root of a directory remote.
pub const MARKER: &str = marker::NAME;
/// The prefix of `doctor`'s probe for a writable root.
const PROBE_PREFIX: &str = ".lifeboat-doctor-";

/// What a remote-ids.json entry remembers.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Remembered {
    id: String,
    /// When this machine first saw the id (information only).
    since: chrono::DateTime<chrono::Utc>,
}

/// Whether an operation writes to the remote. A read never writes there
/// (nor marks a directory); a write marks an adopted directory first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

pub struct DirRemote {
    root: PathBuf,
    data_dir: PathBuf,
    remote_ids: PathBuf,
    /// Leftovers of killed pushes are removed once per process.
    cleaned: AtomicBool,
}

impl DirRemote {
    pub fn new(config: DirRemoteConfig) -> DirRemote {
        DirRemote {
            root: config.path,
            data_dir: config.data_dir,
            remote_ids: config.remote_ids,
            cleaned: AtomicBool::new(false),
        }
    }

    /// One push: a verified copy renamed into place.
    fn copy_in(&self, tag: &Tag, archive: &Path) -> Result<PushOutcome> {
        let source_name = archive.file_name().unwrap_or_default().to_string_lossy();
        let format = match Tag::from_archive_name(&source_name) {
            Some((t, format)) if t == *tag => format,
            _ => {
                return Err(Error::usage(format!(
                    "{} is not the archive of {tag}",
                    archive.display()
                )));
            }
        };
        let root = self.identified(Access::Write)?;
        if !self.cleaned.swap(true, Ordering::Relaxed) {
            remove_leftovers(root, tag.installation());
        }
        let name = tag.archive_name(format);
        let target = root.join(&name);
        let tmp = root.join(format!(".{name}.tmp"));
        // No sidecar may describe bytes other than the archive beside it.
        let _ = fs::remove_file(sidecar(&target));
        let digest = copy_verified(archive, &tmp, &target, None, |tmp| {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(tmp)
                .map_err(|e| self.write_error(format!("cannot create {}", tmp.display()), e))
        })?;
        fsutil::write_atomic(&sidecar(&target), format!("{digest}  {name}\n").as_bytes())?;
        // A copy in the other format (a changed `compression`) is the same
        // snapshot; keep exactly one.
        let other = match format {
            Format::Gzip => Format::Zstd,
            Format::Zstd => Format::Gzip,
        };
        let stale = root.join(tag.archive_name(other));
        if fs::symlink_metadata(&stale).is_ok() {
            let _ = fs::remove_file(sidecar(&stale));
            let _ = fs::remove_file(&stale);
        }
        tracing::info!(%tag, remote = %self.describe(), "archive copied and verified");
        Ok(PushOutcome { attempts: 1 })
    }

    /// The root, which must be an existing directory. It is never created
    /// here: a missing root usually means the drive is not mounted, and only
    /// `doctor --fix` makes a new remote.
    fn existing_root(&self) -> Result<&Path> {
        let root = &self.root;
        match fs::metadata(root) {
            Ok(m) if m.is_dir() => Ok(root),
            Ok(_) => Err(Error::new(
                Kind::RemotePermanent,
                format!("remote directory {} is not a directory", root.display()),
            )
            .with_hint("point [remote.dir] path at a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let hint = match self.remembered().ok().flatten() {
                    Some(known) => format!(
                        "is the drive mounted? Mount the drive holding remote {} (or fix [remote.dir] path in the config)",
                        known.id
                    ),
                    None => format!(
                        "is the drive mounted? Mount the external drive or NAS (or fix [remote.dir] path in the config); \
                         if this is a new remote, create and mark it with `lifeboat doctor --fix`{}",
                        self.parent_note()
                    ),
                };
                Err(Error::new(
                    Kind::RemotePermanent,
                    format!("remote directory {} does not exist", root.display()),
                )
                .with_hint(hint))
            }
            Err(e) => Err(Error::io(format!("cannot reach {}", root.display()), e)),
        }
    }

    /// Why `doctor --fix` could not create the root, when that is so.
    fn parent_note(&self) -> String {
        match self.root.parent() {
            Some(p) if !p.is_dir() => format!(" (its parent {} must exist first)", p.display()),
            _ => String::new(),
        }
    }

    /// The root, once it is known to be this remote's drive: it carries the
    /// marker with the id this machine remembers for it (a write remembers
    /// the id the first time), or, when this machine remembers none, it
    /// already holds lifeboat archives (a remote from before markers; a
    /// write marks it). Anything else is refused, naming what was found.
    fn identified(&self, access: Access) -> Result<&Path> {
        let root = self.existing_root()?;
        let remembered = self.remembered()?;
        match read_marker(root)? {
            Some(marker) => match remembered {
                Some(known) if known.id != marker.id => Err(self.mismatch(&known, &marker.id)),
                Some(_) => Ok(root),
                None => {
                    if access == Access::Write {
                        self.remember(&marker.id)?;
                    }
                    Ok(root)
                }
            },
            None => {
                if remembered.is_none() && holds_lifeboat_archives(root)? {
                    if access == Access::Write {
                        let id = self.mark(root)?;
                        tracing::warn!(remote = %self.describe(), %id, "marked the directory as a lifeboat remote: it already held lifeboat archives");
                    }
                    return Ok(root);
                }
                Err(self.unmarked(remembered.as_ref()))
            }
        }
    }

    /// A root without the marker (and not adoptable).
    fn unmarked(&self, remembered: Option<&Remembered>) -> Error {
        let root = self.root.display();
        match remembered {
            Some(known) => Error::new(
                Kind::RemotePermanent,
                format!(
                    "remote directory {root} has no {MARKER} marker, but this machine remembers remote {} there",
                    known.id
                ),
            )
            .with_hint(format!(
                "is the drive mounted? Mount the drive holding remote {} at {root}; \
                 if that drive is lost and this directory replaces it, remove the \"{}\" entry from {} \
                 and run `lifeboat doctor --fix`",
                known.id,
                self.describe(),
                self.remote_ids.display()
            )),
            None => Error::new(
                Kind::RemotePermanent,
                format!("remote directory {root} is not marked as a lifeboat remote (no {MARKER})"),
            )
            .with_hint(format!(
                "is the drive mounted? An empty mount point looks like this; mount the drive at {root}. \
                 If this is a new remote, mark it with `lifeboat doctor --fix`"
            )),
        }
    }

    /// Another drive's marker at the root.
    fn mismatch(&self, known: &Remembered, found: &str) -> Error {
        let root = self.root.display();
        Error::new(
            Kind::RemotePermanent,
            format!(
                "remote directory {root} is remote {found}, but this machine pushes to remote {} there: a different drive is mounted",
                known.id
            ),
        )
        .with_hint(format!(
            "mount the drive holding remote {} at {root}; if drive {found} is meant to replace it, \
             remove the \"{}\" entry from {} and run `lifeboat doctor --fix`",
            known.id,
            self.describe(),
            self.remote_ids.display()
        ))
    }

    /// The id this machine remembers for this remote, if any.
    fn remembered(&self) -> Result<Option<Remembered>> {
        Ok(self.remembered_ids()?.remove(&self.describe()))
    }

    fn remembered_ids(&self) -> Result<BTreeMap<String, Remembered>> {
        let path = &self.remote_ids;
        let bytes = match fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(Kind::Io, format!("{} is damaged: {e}", path.display())).with_hint(
                "it only remembers which drive each directory remote is: remove it and run `lifeboat doctor --fix`",
            )
        })
    }

    /// Remember `id` as this remote's (durably, before anything is written
    /// to the remote on its strength).
    fn remember(&self, id: &str) -> Result<()> {
        let mut ids = self.remembered_ids()?;
        ids.insert(
            self.describe(),
            Remembered {
                id: id.to_string(),
                since: chrono::Utc::now(),
            },
        );
        if let Some(dir) = self.remote_ids.parent() {
            fsutil::private_dir(dir)?;
        }
        fsutil::write_json_atomic(&self.remote_ids, &ids)?;
        tracing::info!(remote = %self.describe(), %id, "remembered the remote's id");
        Ok(())
    }

    /// Write a new marker at `root` (which has none) and remember its id.
    fn mark(&self, root: &Path) -> Result<String> {
        let marker = Marker::new()?;
        let id = marker.id.clone();
        let bytes = marker.to_bytes();
        // The marker first: a crash before the id is remembered leaves a
        // marked drive that the next use learns, never a remembered id
        // without its marker (which reads as "the drive is not mounted").
        fsutil::write_atomic(&root.join(MARKER), &bytes).map_err(|e| Error {
            hint: e
                .hint
                .or_else(|| Some(format!("make {} writable by this user", root.display()))),
            ..e
        })?;
        self.remember(&id)?;
        Ok(id)
    }

    /// An I/O error while writing to the remote, with a hint that names it.
    fn write_error(&self, context: String, err: std::io::Error) -> Error {
        let hint = match err.raw_os_error() {
            Some(libc::EACCES) | Some(libc::EPERM) => Some(format!(
                "the remote directory {} is not writable by this user: fix its owner or permissions",
                self.root.display()
            )),
            Some(libc::EROFS) => Some(format!(
                "the drive holding {} is mounted read-only: remount it read-write",
                self.root.display()
            )),
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Some(
                "the remote drive is full: free space there, or prune it with `lifeboat prune --remote`"
                    .into(),
            ),
            _ => None,
        };
        let err = Error::io(context, err);
        match hint {
            Some(h) => err.with_hint(h),
            None => err,
        }
    }

    /// The archive of `tag` on the remote, whichever format it has.
    fn find(&self, root: &Path, tag: &Tag) -> Option<PathBuf> {
        [Format::Gzip, Format::Zstd]
            .iter()
            .map(|f| root.join(tag.archive_name(*f)))
            .find(|p| fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
    }
}

/// The marker at `root`: `None` when there is none, an error when it cannot
/// be read or is not one this lifeboat understands.
fn read_marker(root: &Path) -> Result<Option<Marker>> {
    let path = root.join(MARKER);
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
    };
    let mut bytes = Vec::new();
    file.take(marker::MAX_BYTES)
        .read_to_end(&mut bytes)
        .ctx(format!("cannot read {}", path.display()))?;
    let fix = format!(
        "if this directory is your lifeboat remote, remove {} and run `lifeboat doctor --fix` to mark it again",
        path.display()
    );
    Marker::parse(&bytes, &path.display().to_string(), &fix).map(Some)
}

/// Whether `root` holds a lifeboat archive with its sidecar: what every
/// push has left since directory remotes exist, and what an empty mount
/// point, or a directory of other things, does not hold.
fn holds_lifeboat_archives(root: &Path) -> Result<bool> {
    let entries = fs::read_dir(root).ctx(format!("cannot list {}", root.display()))?;
    for entry in entries {
        let entry = entry.ctx(format!("cannot list {}", root.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if Tag::from_archive_name(&name).is_some()
            && entry.file_type().is_ok_and(|t| t.is_file())
            && fs::symlink_metadata(sidecar(&entry.path())).is_ok_and(|m| m.is_file())
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether `name` is a temporary file a lifeboat process of installation
/// `mine` leaves in a remote directory when it is killed: `.<archive>.tmp`
/// (a copy), the sidecar's or the marker's `.<name>.<pid>.tmp`
/// ([`fsutil::write_atomic`]; for the marker `..lifeboat-remote.<pid>.tmp`),
/// or doctor's `.lifeboat-doctor-*` probe. Another installation's copies
/// are not: it may be pushing into the same directory right now (its runs
/// are not under this machine's lock).
fn is_leftover(name: &str, mine: Option<Installation>) -> bool {
    if name.starts_with(PROBE_PREFIX) {
        return true;
    }
    let Some(stem) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let ours = |archive: &str| {
        Tag::from_archive_name(archive).is_some_and(|(t, _)| t.installation() == mine)
    };
    if Tag::from_archive_name(stem).is_some() {
        return ours(stem);
    }
    let Some((target, pid)) = stem.rsplit_once('.') else {
        return false;
    };
    let pid_like = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    let ours = target == MARKER || target.strip_suffix(SIDECAR).is_some_and(ours);
    pid_like && ours
}

/// Remove the temporary files killed pushes left at `root`: only names
/// lifeboat makes, only regular files (never what a symlink points to).
/// The run lock keeps a second push of this installation out meanwhile;
/// other installations' temporary copies are left alone.
fn remove_leftovers(root: &Path, mine: Option<Installation>) {
    for entry in fs::read_dir(root).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        // Doctor's probes and marker writes carry no installation: another
        // installation's may be in progress, so only old ones are left over.
        let anyones = name.starts_with(PROBE_PREFIX) || name.starts_with(&format!(".{MARKER}."));
        let old = || {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600))
        };
        if is_leftover(&name, mine)
            && entry.file_type().is_ok_and(|t| t.is_file())
            && (!anyones || old())
        {
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a temporary file of an interrupted push")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a temporary file of an interrupted push")
                }
            }
        }
    }
}

fn sidecar(archive: &Path) -> PathBuf {
    let mut name = archive.file_name().unwrap_or_default().to_os_string();
    name.push(SIDECAR);
    archive.with_file_name(name)
}

/// The digest recorded in a sidecar, if it holds a well-formed one.
fn read_sidecar(archive: &Path) -> Option<String> {
    let text = fs::read_to_string(sidecar(archive)).ok()?;
    let digest = text.split_whitespace().next()?;
    (digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| digest.to_ascii_lowercase())
}

/// Copy `src` into `output` (the new file `dst`), fsync it, and return the
/// size and sha256 of what was read.
fn copy_hashed(src: &Path, mut output: File, dst: &Path) -> Result<(u64, String)> {
    let mut input = File::open(src).ctx(format!("cannot open {}", src.display()))?;
    let (size, digest) = hash::copy_hashed(&mut input, &mut output).map_err(|f| match f {
        Failed::Read(e) => Error::io(format!("cannot read {}", src.display()), e),
        Failed::Write(e) => Error::io(format!("cannot write {}", dst.display()), e),
    })?;
    output
        .sync_all()
        .ctx(format!("cannot sync {}", dst.display()))?;
    Ok((size, hash::hex(&digest)))
}

/// Copy `src` to `target` through `tmp` (created by `create`), accepting the
/// copy only when its size and sha256, read back from the disk, match what
/// was read from `src` and `expect` when given. Returns the sha256. The
/// temporary file never survives a failure.
fn copy_verified(
    src: &Path,
    tmp: &Path,
    target: &Path,
    expect: Option<&str>,
    create: impl FnOnce(&Path) -> Result<File>,
) -> Result<String> {
    let _ = fs::remove_file(tmp);
    let output = create(tmp)?;
    let result = (|| {
        let (size, read_digest) = copy_hashed(src, output, tmp)?;
        let expect = expect.unwrap_or(&read_digest);
        let written = fs::metadata(tmp).ctx(format!("cannot stat {}", tmp.display()))?;
        let written_digest = sha256_file(tmp)?;
        if written.len() != size || written_digest != expect || read_digest != expect {
            return Err(Error::archive(format!(
                "copy of {} to {} does not match: sha256 {written_digest}, expected {expect}",
                src.display(),
                target.display()
            ))
            .with_hint("the source or the destination drive is damaged or was changed during the copy; run again, and check the drive if it repeats"));
        }
        fsutil::commit(tmp, target)?;
        Ok(written_digest)
    })();
    if result.is_err() {
        let _ = fs::remove_file(tmp);
    }
    result
}

impl DirRemote {
    /// `doctor` for a directory remote: it exists, is a writable directory,
    /// carries the marker with the id this machine remembers, and is not on
    /// the disk of the data it backs up. `fix` creates a missing root whose
    /// parent exists (unless an id is remembered: then the drive is what is
    /// missing), marks a root that has no marker and remembers its id;
    /// it never replaces a marker or forgets a remembered id (that would
    /// undo the very check that tells one drive from another).
    fn doctor(&self, fix: bool) -> Checks {
        let mut report = Checks::default();
        let later = ["writable", "identity", "off this disk"];
        let path = &self.root;
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                report.ok("directory", format!("{} exists", path.display()));
            }
            Ok(_) => {
                report.fail(
                    "directory",
                    format!("{} is not a directory", path.display()),
                    "point [remote.dir] path at a directory",
                );
                report.skip(&later, "no remote directory");
                return report;
            }
            Err(e) => {
                let parent_exists = path.parent().is_some_and(Path::is_dir);
                // A remembered id means this remote exists somewhere: on a
                // drive that is not mounted, not in a new directory here.
                let remembered = self.remembered().ok().flatten();
                let creatable = fix
                    && parent_exists
                    && remembered.is_none()
                    && e.kind() == std::io::ErrorKind::NotFound;
                if !creatable {
                    let fix_text = if let Some(known) = &remembered {
                        format!(
                            "is the drive mounted? Mount the drive holding remote {} so that {} is on it",
                            known.id,
                            path.display()
                        )
                    } else if parent_exists {
                        format!(
                            "is the drive mounted? Mount the drive; if this is a new remote, \
                             `lifeboat doctor --fix` creates and marks {}",
                            path.display()
                        )
                    } else {
                        format!(
                            "mount the drive (or fix [remote.dir] path); for a new remote, \
                             create its parent and run `lifeboat doctor --fix`{}",
                            self.parent_note()
                        )
                    };
                    report.fail("directory", format!("{}: {e}", path.display()), fix_text);
                    report.skip(&later, "no remote directory");
                    return report;
                }
                // Only the last component: a missing parent is a missing
                // drive or a mistyped path, never something to create.
                match fs::DirBuilder::new().mode(0o700).create(path) {
                    Ok(()) => {
                        report.fixed.push(format!("created {}", path.display()));
                        report.ok("directory", format!("{} created", path.display()));
                    }
                    Err(e) => {
                        report.fail(
                            "directory",
                            format!("cannot create {}: {e}", path.display()),
                            "give the user running lifeboat write access to its parent",
                        );
                        report.skip(&later, "no remote directory");
                        return report;
                    }
                }
            }
        }
        match tempfile::Builder::new()
            .prefix(PROBE_PREFIX)
            .tempfile_in(path)
        {
            Ok(_) => report.ok("writable", format!("{} is writable", path.display())),
            Err(e) => report.fail(
                "writable",
                format!("cannot write in {}: {e}", path.display()),
                "give the user running lifeboat write access (or remount read-write)",
            ),
        }
        self.check_identity(fix, &mut report);
        self.check_off_disk(&mut report);
        report
    }

    fn check_identity(&self, fix: bool, report: &mut Checks) {
        const NAME: &str = "identity";
        let remembered = match self.remembered() {
            Ok(r) => r,
            Err(e) => return report.fail(NAME, e.message, e.hint.unwrap_or_default()),
        };
        let marker = match read_marker(&self.root) {
            Ok(m) => m,
            Err(e) => return report.fail(NAME, e.message, e.hint.unwrap_or_default()),
        };
        let shown = self.root.display();
        match (marker, remembered) {
            (Some(marker), Some(known)) if known.id != marker.id => {
                let e = self.mismatch(&known, &marker.id);
                report.fail(NAME, e.message, e.hint.unwrap_or_default());
            }
            (Some(marker), Some(_)) => {
                report.ok(NAME, format!("{shown} is remote {}", marker.id));
            }
            (Some(marker), None) if fix => match self.remember(&marker.id) {
                Ok(()) => {
                    report
                        .fixed
                        .push(format!("remembered remote {} at {shown}", marker.id));
                    report.ok(NAME, format!("{shown} is remote {}", marker.id));
                }
                Err(e) => report.fail(NAME, e.message, e.hint.unwrap_or_default()),
            },
            (Some(marker), None) => report.ok(
                NAME,
                format!(
                    "{shown} is remote {} (remembered by the next push)",
                    marker.id
                ),
            ),
            (None, Some(known)) => {
                let e = self.unmarked(Some(&known));
                report.fail(NAME, e.message, e.hint.unwrap_or_default());
            }
            (None, None) if fix => match self.mark(&self.root) {
                Ok(id) => {
                    report
                        .fixed
                        .push(format!("marked {shown} as lifeboat remote {id}"));
                    report.ok(NAME, format!("{shown} is remote {id}"));
                }
                Err(e) => report.fail(NAME, e.message, e.hint.unwrap_or_default()),
            },
            (None, None) => match holds_lifeboat_archives(&self.root) {
                Ok(true) => report.ok(
                    NAME,
                    format!("{shown} holds lifeboat archives but no {MARKER} yet: the next push marks it"),
                ),
                Ok(false) => {
                    let e = self.unmarked(None);
                    report.fail(NAME, e.message, e.hint.unwrap_or_default());
                }
                Err(e) => report.fail(NAME, e.message, e.hint.unwrap_or_default()),
            },
        }
    }

    /// A copy on the disk that holds the data does not survive that disk.
    fn check_off_disk(&self, report: &mut Checks) {
        const NAME: &str = "off this disk";
        // Before a restore on a fresh machine data_dir may not exist yet:
        // it will be created on the disk of its nearest existing ancestor.
        let data = self.data_dir.ancestors().find(|p| p.exists());
        let (Some(data), Ok(remote)) = (data, fs::metadata(&self.root)) else {
            return report.skip(&[NAME], "cannot stat the data directory");
        };
        match fs::metadata(data) {
            Ok(d) if d.dev() == remote.dev() => report.warn(
                NAME,
                format!(
                    "{} is on the same filesystem as data_dir {}: a copy there does not survive the loss of this disk",
                    self.root.display(),
                    self.data_dir.display()
                ),
                "point [remote.dir] path at another disk (an external drive or a NAS mount)",
            ),
            Ok(_) => report.ok(
                NAME,
                format!(
                    "{} is not on the filesystem of data_dir",
                    self.root.display()
                ),
            ),
            Err(e) => report.skip(&[NAME], &format!("cannot stat {}: {e}", data.display())),
        }
    }
}

impl Remote for DirRemote {
    fn check(&self, fix: bool) -> Checks {
        self.doctor(fix)
    }

    fn name(&self) -> &'static str {
        "dir"
    }

    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    fn push(&self, tag: &Tag, archive: &Path, _notes: &str) -> Result<PushOutcome, PushFailure> {
        // A local copy is one attempt: retrying a full or missing disk
        // within the same run would not help.
        self.copy_in(tag, archive)
            .map_err(|error| PushFailure::new(error, 1))
    }

    fn list(&self) -> Result<Vec<RemoteSnapshot>> {
        let root = self.identified(Access::Read)?;
        let mut out = Vec::new();
        let entries = fs::read_dir(root).ctx(format!("cannot list {}", root.display()))?;
        for entry in entries {
            let entry = entry.ctx(format!("cannot list {}", root.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((tag, _)) = Tag::from_archive_name(&name) else {
                continue;
            };
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                // Deleted between the listing and now: another
                // installation sharing the directory pruned its own.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(Error::io(
                        format!("cannot stat {}", entry.path().display()),
                        e,
                    ));
                }
            };
            if !meta.is_file() {
                continue;
            }
            out.push(RemoteSnapshot {
                tag,
                sha256: read_sidecar(&entry.path()),
                asset_name: name,
                size: meta.len(),
                draft: false,
                parts: vec![],
            });
        }
        out.sort_by(|a, b| (a.tag, &a.asset_name).cmp(&(b.tag, &b.asset_name)));
        Ok(out)
    }

    fn download(&self, tag: &Tag, dest_dir: &Path) -> Result<PathBuf> {
        let root = self.identified(Access::Read)?;
        let source = self.find(root, tag).ok_or_else(|| {
            Error::new(
                Kind::RemotePermanent,
                format!("snapshot {tag} is not on {}", self.describe()),
            )
            .with_hint("`lifeboat list` shows the snapshots that exist")
        })?;
        let name = source.file_name().unwrap_or_default();
        let target = dest_dir.join(name);
        let tmp = fsutil::temp_sibling(&target);
        let expect = read_sidecar(&source);
        if expect.is_none() {
            tracing::warn!(%tag, "no .sha256 sidecar on the remote; the archive's own checksums still apply");
        }
        copy_verified(
            &source,
            &tmp,
            &target,
            expect.as_deref(),
            fsutil::create_private,
        )?;
        Ok(target)
    }

    fn delete(&self, tag: &Tag) -> Result<()> {
        let root = self.identified(Access::Write)?;
        for format in [Format::Gzip, Format::Zstd] {
            let archive = root.join(tag.archive_name(format));
            // The archive goes first: a sidecar without its archive is
            // harmless, the reverse would list without a digest.
            for path in [archive.clone(), sidecar(&archive)] {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(
                            self.write_error(format!("cannot delete {}", path.display()), e)
                        );
                    }
                }
            }
        }
        fsutil::sync_dir(root)
    }
}

#[cfg(test)]
mod tests {
    use super::super::CheckStatus;
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tag(s: &str) -> Tag {
        Tag::parse(s).unwrap()
    }

    /// A source archive in `dir` (content does not matter to the remote).
    fn archive(dir: &Path, tag: &Tag, body: &[u8]) -> PathBuf {
        let path = dir.join(tag.archive_name(Format::Gzip));
        fs::write(&path, body).unwrap();
        path
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// The remote at `root` of a machine whose `data_dir` and `backup_dir`
    /// are under `machine`.
    fn remote_at(root: &Path, machine: &Path) -> DirRemote {
        DirRemote::new(DirRemoteConfig {
            path: root.to_path_buf(),
            data_dir: machine.join("data"),
            remote_ids: machine.join("data/backups/remote-ids.json"),
        })
    }

    /// A remote set up the documented way: `doctor --fix`.
    fn set_up(root: &Path, machine: &Path) -> DirRemote {
        let remote = remote_at(root, machine);
        let report = remote.check(true);
        assert!(report.passed(), "{report:?}");
        remote
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn status(report: &Checks, name: &str) -> CheckStatus {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {report:?}"))
            .status
    }

    fn check<'a>(report: &'a Checks, name: &str) -> &'a super::super::Check {
        report.checks.iter().find(|c| c.name == name).unwrap()
    }

    fn marker_id(root: &Path) -> String {
        read_marker(root).unwrap().unwrap().id
    }

    #[test]
    fn push_list_download_delete() {
        let src = tempfile::tempdir().unwrap();
        let mnt = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let root = mnt.path().join("lifeboat");
        let remote = set_up(&root, machine.path());
        let a = tag("snap-20261120T100000Z");
        let b = tag("snap-20261120T110000Z-manual");
        remote
            .push(&a, &archive(src.path(), &a, b"aaaa"), "")
            .unwrap();
        remote
            .push(&b, &archive(src.path(), &b, b"bbbbbb"), "")
            .unwrap();
        // Pushing again converges on the same single copy.
        remote
            .push(&a, &archive(src.path(), &a, b"aaaa"), "")
            .unwrap();
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&root.join("snap-20261120T100000Z.tar.gz")), 0o600);
        assert_eq!(mode(&root.join(MARKER)), 0o600);
        fs::write(root.join("notes.tar.gz"), b"not ours").unwrap();
        fs::write(root.join("snap-2026.tar.gz"), b"not ours").unwrap();

        let listing = remote.list().unwrap();
        assert_eq!(listing.len(), 2, "{listing:?}");
        assert_eq!(listing[0].tag, a);
        assert_eq!(listing[0].size, 4);
        assert_eq!(listing[0].asset_name, "snap-20261120T100000Z.tar.gz");
        assert_eq!(
            listing[0].sha256.as_deref(),
            Some(
                sha256_file(&src.path().join("snap-20261120T100000Z.tar.gz"))
                    .unwrap()
                    .as_str()
            )
        );
        assert!(!listing[1].draft);

        let dest = tempfile::tempdir().unwrap();
        let got = remote.download(&b, dest.path()).unwrap();
        assert_eq!(fs::read(&got).unwrap(), b"bbbbbb");
        assert_eq!(fs::read_dir(dest.path()).unwrap().count(), 1);

        remote.delete(&a).unwrap();
        remote.delete(&a).unwrap(); // already gone counts as done
        assert_eq!(
            names(&root),
            [
                MARKER,
                "notes.tar.gz",
                "snap-2026.tar.gz",
                "snap-20261120T110000Z-manual.tar.gz",
                "snap-20261120T110000Z-manual.tar.gz.sha256"
            ]
        );
    }

    #[test]
    fn the_marker_and_the_remembered_id() {
        let mnt = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let root = mnt.path().join("lifeboat");
        let report = remote_at(&root, machine.path()).check(true);
        assert_eq!(status(&report, "identity"), CheckStatus::Ok, "{report:?}");
        let id = marker_id(&root);
        assert_eq!(id.len(), 32);
        assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        let marker: serde_json::Value =
            serde_json::from_slice(&fs::read(root.join(MARKER)).unwrap()).unwrap();
        assert_eq!(marker["marker_version"], 1);
        assert_eq!(marker["lifeboat_version"], env!("CARGO_PKG_VERSION"));
        assert!(marker["created_at"].is_string());
        let ids: serde_json::Value = serde_json::from_slice(
            &fs::read(machine.path().join("data/backups/remote-ids.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(ids[format!("dir:{}", root.display())]["id"], id.as_str());
        assert_eq!(
            report.fixed,
            [
                format!("created {}", root.display()),
                format!("marked {} as lifeboat remote {id}", root.display())
            ]
        );
        // Running it again changes nothing.
        let again = remote_at(&root, machine.path()).check(true);
        assert!(again.fixed.is_empty(), "{again:?}");
        assert_eq!(marker_id(&root), id);

        // Another machine (a fresh one, restoring) sees the marker and
        // remembers it with its first write, not with a read.
        let other = tempfile::tempdir().unwrap();
        let remote = remote_at(&root, other.path());
        let report = remote.check(false);
        assert!(report.passed(), "{report:?}");
        assert!(
            check(&report, "identity")
                .detail
                .contains("remembered by the next push")
        );
        remote.list().unwrap();
        assert!(!other.path().join("data/backups/remote-ids.json").exists());
        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T100000Z");
        remote.push(&a, &archive(src.path(), &a, b"a"), "").unwrap();
        assert!(other.path().join("data/backups/remote-ids.json").exists());
    }

    #[test]
    fn an_unmounted_drive_is_named() {
        let mnt = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let remote = remote_at(&mnt.path().join("usb/lifeboat"), machine.path());
        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T100000Z");
        let err = remote
            .push(&a, &archive(src.path(), &a, b"x"), "")
            .unwrap_err();
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert!(err.message.contains("does not exist"), "{err}");
        assert!(err.hint.as_ref().unwrap().contains("is the drive mounted?"));
        assert!(
            remote
                .list()
                .unwrap_err()
                .message
                .contains("does not exist")
        );
        assert!(
            remote.delete(&a).is_err(),
            "deleting from a missing drive is not 'done'"
        );
        // Not even doctor --fix creates a root whose parent is missing.
        let report = remote.check(true);
        assert_eq!(status(&report, "directory"), CheckStatus::Fail);
        assert!(report.fixed.is_empty());
        assert!(!mnt.path().join("usb").exists(), "nothing created");
    }

    /// The unplugged drive: its mount point is an empty directory on the
    /// machine's own disk. Nothing is read or written there.
    #[test]
    fn an_empty_directory_without_marker_is_refused() {
        let mount_point = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let remote = remote_at(mount_point.path(), machine.path());
        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T100000Z");
        let err = remote
            .push(&a, &archive(src.path(), &a, b"x"), "")
            .unwrap_err();
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert!(err.message.contains("not marked"), "{err}");
        let hint = err.hint.clone().unwrap();
        assert!(
            hint.contains("is the drive mounted?") && hint.contains("lifeboat doctor --fix"),
            "{hint}"
        );
        assert!(remote.list().unwrap_err().message.contains("not marked"));
        assert!(remote.download(&a, src.path()).is_err());
        assert!(remote.delete(&a).is_err());
        // Foreign files do not make it a remote either.
        fs::write(mount_point.path().join("lost+found.txt"), b"").unwrap();
        assert!(remote.list().is_err());
        // Nor do archive names without their sidecars (a copy by hand).
        fs::write(mount_point.path().join(a.archive_name(Format::Gzip)), b"").unwrap();
        assert!(remote.list().is_err());
        assert_eq!(
            names(mount_point.path()),
            ["lost+found.txt", "snap-20261120T100000Z.tar.gz"]
        );
        assert!(!machine.path().join("data").exists(), "nothing remembered");

        let report = remote.check(false);
        assert_eq!(status(&report, "identity"), CheckStatus::Fail);
        assert!(
            check(&report, "identity")
                .fix
                .as_ref()
                .unwrap()
                .contains("is the drive mounted?")
        );
        assert!(!mount_point.path().join(MARKER).exists());
    }

    /// A remote from before markers: it holds lifeboat archives, so it is
    /// evidently the right directory. Reads use it as it is; the first
    /// write marks it and remembers its id.
    #[test]
    fn a_directory_with_archives_is_adopted() {
        let root = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let old = tag("snap-20261120T100000Z");
        let name = old.archive_name(Format::Gzip);
        fs::write(root.path().join(&name), b"old").unwrap();
        fs::write(
            root.path().join(format!("{name}.sha256")),
            format!("{}  {name}\n", "0".repeat(64)),
        )
        .unwrap();
        let remote = remote_at(root.path(), machine.path());
        let report = remote.check(false);
        assert!(report.passed(), "{report:?}");
        assert!(
            check(&report, "identity")
                .detail
                .contains("the next push marks it")
        );
        assert_eq!(remote.list().unwrap().len(), 1);
        assert!(!root.path().join(MARKER).exists(), "a read writes nothing");

        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T110000Z");
        remote.push(&a, &archive(src.path(), &a, b"a"), "").unwrap();
        let id = marker_id(root.path());
        assert_eq!(remote.remembered().unwrap().unwrap().id, id);
        assert_eq!(remote.list().unwrap().len(), 2);
    }

    /// Once this machine knows the remote's id, a directory without the
    /// marker is not adopted, archives or not: the old copies lifeboat once
    /// wrote under an empty mount point look exactly like that.
    #[test]
    fn no_adoption_once_an_id_is_remembered() {
        let mount_point = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let remote = set_up(&mount_point.path().join("myapp"), machine.path());
        let id = marker_id(&mount_point.path().join("myapp"));
        // The drive is unplugged; underneath, copies from an old lifeboat.
        let root = mount_point.path().join("myapp");
        fs::remove_file(root.join(MARKER)).unwrap();
        let old = tag("snap-20261120T100000Z");
        let name = old.archive_name(Format::Gzip);
        fs::write(root.join(&name), b"old").unwrap();
        fs::write(root.join(format!("{name}.sha256")), "x").unwrap();
        let err = remote.list().unwrap_err();
        assert!(
            err.message.contains("no .lifeboat-remote marker") && err.message.contains(&id),
            "{err}"
        );
        let hint = err.hint.unwrap();
        assert!(hint.contains("is the drive mounted?"), "{hint}");
        assert!(hint.contains("remote-ids.json"), "{hint}");
        // doctor --fix does not paper over it.
        let report = remote.check(true);
        assert_eq!(status(&report, "identity"), CheckStatus::Fail);
        assert!(!root.join(MARKER).exists());
        // Nor does it create the directory under the bare mount point.
        fs::remove_dir_all(&root).unwrap();
        let report = remote.check(true);
        assert_eq!(status(&report, "directory"), CheckStatus::Fail);
        let fix = check(&report, "directory").fix.clone().unwrap();
        assert!(
            fix.contains("is the drive mounted?") && fix.contains(&id),
            "{fix}"
        );
        assert!(report.fixed.is_empty());
        assert!(!root.exists());
    }

    #[test]
    fn a_different_drive_is_refused_naming_both_ids() {
        let root = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let remote = set_up(root.path(), machine.path());
        let ours = marker_id(root.path());
        // Another drive, marked by another machine, mounted at the path.
        fs::remove_file(root.path().join(MARKER)).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        set_up(root.path(), elsewhere.path());
        let theirs = marker_id(root.path());
        assert_ne!(ours, theirs);

        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T100000Z");
        let err = remote
            .push(&a, &archive(src.path(), &a, b"x"), "")
            .unwrap_err();
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert!(
            err.message.contains(&ours)
                && err.message.contains(&theirs)
                && err.message.contains("different drive"),
            "{err}"
        );
        assert!(err.hint.as_ref().unwrap().contains("remote-ids.json"));
        assert!(remote.list().is_err());
        assert!(remote.delete(&a).is_err());
        assert!(remote.download(&a, src.path()).is_err());
        assert_eq!(names(root.path()), [MARKER]);

        // doctor says the same, and --fix does not accept the stranger.
        let report = remote.check(true);
        assert_eq!(status(&report, "identity"), CheckStatus::Fail);
        assert!(report.fixed.is_empty(), "{report:?}");
        // Forgetting the old drive, as the hint says, then --fix.
        fs::remove_file(machine.path().join("data/backups/remote-ids.json")).unwrap();
        let report = remote.check(true);
        assert!(report.passed(), "{report:?}");
        assert_eq!(report.fixed.len(), 1, "{report:?}");
        remote.push(&a, &archive(src.path(), &a, b"x"), "").unwrap();
        assert_eq!(marker_id(root.path()), theirs);
    }

    #[test]
    fn damaged_markers_and_records_are_named() {
        let root = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let remote = set_up(root.path(), machine.path());
        let marker = root.path().join(MARKER);
        fs::write(&marker, b"{not json").unwrap();
        let err = remote.list().unwrap_err();
        assert!(err.message.contains("not a valid remote marker"), "{err}");
        fs::write(
            &marker,
            br#"{"marker_version": 2, "id": "x", "created_at": "2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        let err = remote.list().unwrap_err();
        assert!(err.message.contains("marker_version 2"), "{err}");
        assert!(err.hint.unwrap().contains("newer lifeboat"));
        fs::write(
            &marker,
            br#"{"marker_version": 1, "id": "../x", "created_at": "2030-01-01T00:00:00Z"}"#,
        )
        .unwrap();
        assert!(remote.list().is_err());

        let ids = machine.path().join("data/backups/remote-ids.json");
        fs::write(&ids, b"[").unwrap();
        let err = remote.list().unwrap_err();
        assert!(err.message.contains("remote-ids.json"), "{err}");
        assert_eq!(status(&remote.check(false), "identity"), CheckStatus::Fail);
    }

    #[test]
    fn doctor_creates_only_the_last_component() {
        let mnt = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let root = mnt.path().join("myapp");
        let remote = remote_at(&root, machine.path());
        let report = remote.check(false);
        assert_eq!(status(&report, "directory"), CheckStatus::Fail);
        assert_eq!(status(&report, "identity"), CheckStatus::Skipped);
        assert!(!root.exists(), "no --fix, nothing created");
        let report = remote.check(true);
        assert!(report.passed(), "{report:?}");
        assert_eq!(mode(&root), 0o700);
        assert!(root.join(MARKER).is_file());
        // Same disk as data_dir: a warning, not a failure.
        assert_eq!(status(&report, "off this disk"), CheckStatus::Warn);
        assert!(
            check(&report, "off this disk")
                .detail
                .contains("same filesystem as data_dir")
        );
    }

    #[test]
    fn leftovers_of_killed_pushes_are_removed_and_nothing_else() {
        let root = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let remote = set_up(root.path(), machine.path());
        let r = root.path();
        let ours = [
            ".snap-20261120T090000Z.tar.gz.tmp",
            ".snap-20261120T090000Z-manual.tar.zst.tmp",
            ".snap-20261120T090000Z.tar.gz.sha256.4242.tmp",
            "..lifeboat-remote.77.tmp",
            ".lifeboat-doctor-a1B2c3",
        ];
        for name in ours {
            fs::write(r.join(name), b"partial").unwrap();
            // Old enough to be nobody's write in progress.
            let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
            File::options()
                .write(true)
                .open(r.join(name))
                .unwrap()
                .set_modified(two_hours_ago)
                .unwrap();
        }
        let foreign = [
            ".notes.tmp",
            ".snap-2026.tar.gz.tmp",
            ".snap-20261120T090000Z.tar.gz.sha256.tmp",
            ".snap-20261120T090000Z.tar.gz.sha256.12x.tmp",
            "snap-20261120T090000Z.tar.gz.tmp",
            // Another installation's copies and doctor probe in progress:
            // it shares the directory, not this machine's lock.
            ".lifeboat-doctor-fresh1",
            ".snap-other-20261120T090000Z.tar.gz.tmp",
            ".snap-other-20261120T090000Z.tar.gz.sha256.4242.tmp",
        ];
        for name in foreign {
            fs::write(r.join(name), b"keep").unwrap();
        }
        // A link and a directory with our names: never followed or emptied.
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("precious");
        fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, r.join(".snap-20261120T080000Z.tar.gz.tmp")).unwrap();
        fs::create_dir(r.join(".snap-20261120T070000Z.tar.gz.tmp")).unwrap();
        fs::write(r.join(".snap-20261120T070000Z.tar.gz.tmp/x"), b"").unwrap();

        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T100000Z");
        remote.push(&a, &archive(src.path(), &a, b"a"), "").unwrap();
        let left = names(r);
        for name in ours {
            assert!(!left.contains(&name.to_string()), "{name} left: {left:?}");
        }
        for name in foreign {
            assert!(left.contains(&name.to_string()), "{name} removed: {left:?}");
        }
        assert!(left.contains(&".snap-20261120T080000Z.tar.gz.tmp".to_string()));
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert!(r.join(".snap-20261120T070000Z.tar.gz.tmp/x").exists());
    }

    #[test]
    fn a_damaged_copy_is_refused_and_leaves_nothing() {
        let src = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let remote = set_up(root.path(), machine.path());
        let a = tag("snap-20261120T100000Z");
        remote
            .push(&a, &archive(src.path(), &a, b"good bytes"), "")
            .unwrap();
        fs::write(
            root.path().join(a.archive_name(Format::Gzip)),
            b"bad bytes!",
        )
        .unwrap();
        let dest = tempfile::tempdir().unwrap();
        let err = remote.download(&a, dest.path()).unwrap_err();
        assert_eq!(err.kind, Kind::Archive);
        assert!(err.message.contains("does not match"), "{err}");
        assert_eq!(
            fs::read_dir(dest.path()).unwrap().count(),
            0,
            "no partial file"
        );
    }

    #[test]
    fn write_errors_name_the_remote() {
        let remote = remote_at(Path::new("/mnt/nas/lifeboat"), Path::new("/srv/app"));
        for (errno, words) in [
            (libc::EACCES, "not writable"),
            (libc::EROFS, "read-only"),
            (libc::ENOSPC, "prune --remote"),
        ] {
            let err = remote.write_error(
                "cannot create x".into(),
                std::io::Error::from_raw_os_error(errno),
            );
            let hint = err.hint.unwrap();
            assert!(hint.contains(words), "{errno}: {hint}");
        }
    }

    #[test]
    fn an_unwritable_root_is_named() {
        if unsafe { libc::geteuid() } == 0 {
            eprintln!("skipped: root ignores directory permissions");
            return;
        }
        let root = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let remote = set_up(root.path(), machine.path());
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o500)).unwrap();
        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T100000Z");
        let err = remote
            .push(&a, &archive(src.path(), &a, b"x"), "")
            .unwrap_err();
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(err.message.contains("cannot create"), "{err}");
        assert!(err.hint.as_ref().unwrap().contains("not writable"));
    }

    #[test]
    fn symlinks_and_foreign_names_are_not_listed_or_deleted() {
        let root = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("precious");
        fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, root.path().join("snap-20261120T100000Z.tar.gz"))
            .unwrap();
        let remote = set_up(root.path(), machine.path());
        assert!(remote.list().unwrap().is_empty());
        assert!(
            remote
                .download(&tag("snap-20261120T100000Z"), outside.path())
                .is_err()
        );
        remote.delete(&tag("snap-20261120T100000Z")).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    }
}
