//! A plain directory as a remote (external drive, NAS mount).
//!
//! Layout: `<root>/<tag>.tar.gz|zst`, each with a `<name>.sha256` sidecar in
//! `sha256sum` format (so `sha256sum -c` works by hand, and listing never
//! rereads archives). Files arrive as `.<name>.tmp`, are fsynced and checked
//! against the source, and only then renamed into place: a name that exists
//! is a complete copy. Only names that parse as lifeboat archives are ever
//! listed or deleted.

use super::{Checks, PushFailure, PushOutcome, Remote, RemoteSnapshot};
use crate::error::{Error, IoContext, Kind, Result};
use crate::fsutil;
use crate::hash::{self, Failed, sha256_file};
use crate::tag::Format;
use crate::tag::Tag;
use std::fs::{self, File};

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

const SIDECAR: &str = ".sha256";

pub struct DirRemote {
    root: PathBuf,
}

impl DirRemote {
    /// One push: a verified copy renamed into place.
    fn copy_in(&self, tag: &Tag, archive: &Path) -> Result<PushOutcome> {
        let root = self.root(true)?;
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

    pub fn new(root: PathBuf) -> DirRemote {
        DirRemote { root }
    }

    /// The root, which must be an existing directory. `create` makes a
    /// missing root (0700) when its parent exists; a missing parent usually
    /// means the drive is not mounted, and writing under an empty mount
    /// point would fill the wrong disk.
    fn root(&self, create: bool) -> Result<&Path> {
        let root = &self.root;
        match fs::metadata(root) {
            Ok(m) if m.is_dir() => Ok(root),
            Ok(_) => Err(Error::new(
                Kind::RemotePermanent,
                format!("remote directory {} is not a directory", root.display()),
            )
            .with_hint("point [remote.dir] path at a directory")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent_exists = root.parent().is_some_and(Path::is_dir);
                if create && parent_exists {
                    fs::DirBuilder::new()
                        .mode(0o700)
                        .create(root)
                        .map_err(|e| {
                            self.write_error(format!("cannot create {}", root.display()), e)
                        })?;
                    return Ok(root);
                }
                Err(Error::new(
                    Kind::RemotePermanent,
                    format!("remote directory {} does not exist", root.display()),
                )
                .with_hint(format!(
                    "is the external drive or NAS mounted? Mount it (or fix [remote.dir] path in the config); \
                     if it is mounted, create the directory with `mkdir -m 700 {}`",
                    root.display()
                )))
            }
            Err(e) => Err(Error::io(format!("cannot reach {}", root.display()), e)),
        }
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

/// `doctor` for a directory remote: it exists, is a directory, and is
/// writable. Nothing is fixed: creating it could fill an unmounted drive's
/// mount point.
fn check_root(path: &Path, report: &mut Checks) {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return report.fail(
                "directory",
                format!("{} is not a directory", path.display()),
                "point [remote.dir] path at a directory",
            );
        }
        Err(e) => {
            return report.fail(
                "directory",
                format!("{}: {e}", path.display()),
                format!(
                    "create it (`mkdir -p {}`) or mount the drive, then run doctor again",
                    path.display()
                ),
            );
        }
    }
    report.ok("directory", format!("{} exists", path.display()));
    match tempfile::Builder::new()
        .prefix(".lifeboat-doctor-")
        .tempfile_in(path)
    {
        Ok(_) => report.ok("writable", format!("{} is writable", path.display())),
        Err(e) => report.fail(
            "writable",
            format!("cannot write in {}: {e}", path.display()),
            "give the user running lifeboat write access (or remount read-write)",
        ),
    }
}

impl Remote for DirRemote {
    fn check(&self, _fix: bool) -> Checks {
        let mut report = Checks::default();
        check_root(&self.root, &mut report);
        report
    }

    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    fn push(&self, tag: &Tag, archive: &Path, _notes: &str) -> Result<PushOutcome, PushFailure> {
        // A local copy is one attempt: retrying a full or missing disk
        // within the same run would not help.
        self.copy_in(tag, archive)
            .map_err(|error| PushFailure { error, attempts: 1 })
    }

    fn list(&self) -> Result<Vec<RemoteSnapshot>> {
        let root = self.root(false)?;
        let mut out = Vec::new();
        let entries = fs::read_dir(root).ctx(format!("cannot list {}", root.display()))?;
        for entry in entries {
            let entry = entry.ctx(format!("cannot list {}", root.display()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some((tag, _)) = Tag::from_archive_name(&name) else {
                continue;
            };
            let meta = entry
                .metadata()
                .ctx(format!("cannot stat {}", entry.path().display()))?;
            if !meta.is_file() {
                continue;
            }
            out.push(RemoteSnapshot {
                tag,
                sha256: read_sidecar(&entry.path()),
                asset_name: name,
                size: meta.len(),
                draft: false,
            });
        }
        out.sort_by(|a, b| (a.tag, &a.asset_name).cmp(&(b.tag, &b.asset_name)));
        Ok(out)
    }

    fn download(&self, tag: &Tag, dest_dir: &Path) -> Result<PathBuf> {
        let root = self.root(false)?;
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
        let root = self.root(false)?;
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

    #[test]
    fn push_list_download_delete() {
        let src = tempfile::tempdir().unwrap();
        let mnt = tempfile::tempdir().unwrap();
        let root = mnt.path().join("lifeboat");
        let remote = DirRemote::new(root.clone());
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
        let mut left: Vec<String> = fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "notes.tar.gz",
                "snap-2026.tar.gz",
                "snap-20261120T110000Z-manual.tar.gz",
                "snap-20261120T110000Z-manual.tar.gz.sha256"
            ]
        );
    }

    #[test]
    fn a_damaged_copy_is_refused_and_leaves_nothing() {
        let src = tempfile::tempdir().unwrap();
        let root = tempfile::tempdir().unwrap();
        let remote = DirRemote::new(root.path().to_path_buf());
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
    fn an_unmounted_drive_is_named() {
        let mnt = tempfile::tempdir().unwrap();
        let remote = DirRemote::new(mnt.path().join("usb/lifeboat"));
        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T100000Z");
        let err = remote
            .push(&a, &archive(src.path(), &a, b"x"), "")
            .unwrap_err();
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert!(err.message.contains("does not exist"), "{err}");
        assert!(err.hint.as_ref().unwrap().contains("mounted"));
        assert!(!mnt.path().join("usb").exists(), "nothing created");
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
    }

    #[test]
    fn write_errors_name_the_remote() {
        let remote = DirRemote::new(PathBuf::from("/mnt/nas/lifeboat"));
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
        fs::set_permissions(root.path(), fs::Permissions::from_mode(0o500)).unwrap();
        let remote = DirRemote::new(root.path().to_path_buf());
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
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("precious");
        fs::write(&victim, b"keep me").unwrap();
        std::os::unix::fs::symlink(&victim, root.path().join("snap-20261120T100000Z.tar.gz"))
            .unwrap();
        let remote = DirRemote::new(root.path().to_path_buf());
        assert!(remote.list().unwrap().is_empty());
        assert!(
            remote
                .download(&tag("snap-20261120T100000Z"), outside.path())
                .is_err()
        );
        remote.delete(&tag("snap-20261120T100000Z")).unwrap();
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
    }

    #[test]
    fn dir_remote_checks() {
        let dir = tempfile::tempdir().unwrap();
        let report = DirRemote::new(dir.path().to_path_buf()).check(false);
        assert!(
            report
                .checks
                .iter()
                .all(|c| c.status == super::super::CheckStatus::Ok),
            "{report:?}"
        );
        let report = DirRemote::new(dir.path().join("missing")).check(false);
        assert_eq!(report.checks[0].status, super::super::CheckStatus::Fail);
        assert!(report.checks[0].fix.as_ref().unwrap().contains("mkdir -p"));
    }
}
