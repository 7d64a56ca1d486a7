//! Durable file operations. Every write that matters goes through here:
//! write a temporary file beside the target, fsync it, rename it over the
//! target, fsync the directory. A crash at any point leaves either the old
//! file or the new one, never a torn one.

use crate::error::{IoContext, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Create `dir` (and parents) with mode 0700 if missing. An existing
/// directory keeps its mode: tightening a directory the user chose is not
/// ours to do, except for lifeboat's own `backup_dir` (see [`private_dir`]).
pub fn create_dir_all_private(dir: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .ctx(format!("cannot create directory {}", dir.display()))
}

/// Create `dir` if needed and make sure it is 0700: it holds copies of the
/// user's data.
pub fn private_dir(dir: &Path) -> Result<()> {
    create_dir_all_private(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .ctx(format!("cannot set permissions on {}", dir.display()))
}

/// Open a new file for writing with mode 0600, failing if it exists.
pub fn create_private(path: &Path) -> Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .ctx(format!("cannot create {}", path.display()))
}

/// fsync a directory so that a rename or unlink inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .ctx(format!("cannot sync directory {}", dir.display()))
}

/// A temporary sibling name for `target`: hidden, and ending in `.tmp` so
/// that stale ones are recognisable and never mistaken for finished files.
pub fn temp_sibling(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

/// Write `bytes` to `target` atomically (0600).
pub fn write_atomic(target: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_sibling(target);
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(bytes)
            .ctx(format!("cannot write {}", tmp.display()))?;
        f.sync_all().ctx(format!("cannot sync {}", tmp.display()))?;
        drop(f);
        commit(&tmp, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Rename a finished, fsynced temporary file into place and make the rename
/// durable.
pub fn commit(tmp: &Path, target: &Path) -> Result<()> {
    fs::rename(tmp, target).ctx(format!(
        "cannot rename {} to {}",
        tmp.display(),
        target.display()
    ))?;
    sync_dir(target.parent().unwrap_or(Path::new(".")))
}

/// Write a value as pretty JSON, atomically.
pub fn write_json_atomic<T: serde::Serialize>(target: &Path, value: &T) -> Result<()> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("lifeboat's records always serialise");
    bytes.push(b'\n');
    write_atomic(target, &bytes)
}

/// The owner (uid, gid) of `path`, not following a final symlink.
pub fn owner_of(path: &Path) -> Option<(u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).ok().map(|m| (m.uid(), m.gid()))
}

/// When lifeboat runs as root (`sudo lifeboat restore`), give `path` to
/// `owner`: what it writes among an application's data must stay the
/// application's, or the application's next write fails right after a
/// recovery. A caller that is not root owns what it creates already, and
/// may not give it away.
pub fn give_to(path: &Path, owner: Option<(u32, u32)>) -> Result<()> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .ctx(format!("cannot give {} to uid {uid}", path.display()))
}

/// [`create_dir_all_private`], where every directory it creates takes the
/// owner of the nearest directory that already existed (see [`give_to`]).
pub fn create_dir_all_owned_like_parent(dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut existing = Some(dir);
    while let Some(d) = existing {
        if fs::symlink_metadata(d).is_ok() {
            break;
        }
        missing.push(d.to_path_buf());
        existing = d.parent();
    }
    create_dir_all_private(dir)?;
    let owner = existing.and_then(owner_of);
    for d in missing.iter().rev() {
        give_to(d, owner)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.json");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
