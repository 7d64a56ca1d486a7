//! Symlinked database files: where a restore (or `migrate`) really writes.
//!
//! A declared database path inside `data_dir` may be a symbolic link
//! (`data/app.db -> ../volume/app.db`): the application opens the target,
//! and SQLite keeps the `-wal`, `-shm` and `-journal` beside the *target*
//! (it resolves links before naming them). Replacing the link by a regular
//! file would leave the application on the damaged target, so a restore
//! goes **through** the link: the journal's unit names the resolved target,
//! its old files move aside into the pre-restore directory (at the
//! database's configured path, so `--undo` finds them as usual) and the
//! staged copy is renamed onto the target's name, in the target's
//! directory. The link itself is never moved, removed or rewritten.
//!
//! That is only safe when every rename stays on one filesystem and the
//! account can write the target's directory; otherwise the restore refuses
//! here, before anything is unpacked or moved, naming the link and why:
//! a dangling link, a loop, a target that is not a regular file, a target
//! directory on another filesystem than the restore's area (renames cannot
//! cross filesystems, and a copy would not be atomic), a target directory
//! this account cannot write, or, for a root restore, a link of another
//! account pointing at a file that is not that account's.
//!
//! The distinction with archive entries: a link *in the configuration's
//! data* (the database's own path) is the user's choice and is followed
//! deliberately, after these checks; a link met while *unpacking or
//! placing* an archive is never followed (the archive reader refuses link
//! entries, staging directories are created fresh, and `restore --to DIR`
//! refuses a `DIR` that is a link and only ever renames a fresh directory
//! onto it).

use crate::error::{Error, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where a declared database's files really are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// The path whose files a swap moves: the declared path, or, for a
    /// link, the fully resolved target.
    pub path: PathBuf,
    /// The declared path when it is a symbolic link (followed).
    pub link: Option<PathBuf>,
}

/// A database restored through a link, for the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Linked {
    pub name: String,
    /// The declared path (the link, left as it was).
    pub link: PathBuf,
    /// The file that was replaced.
    pub target: PathBuf,
}

/// Follow `at` (database `name`'s declared live path) if it is a symbolic
/// link: the target must exist, be a regular file, and sit in a directory
/// this account can write. A path that is not a link (or does not exist)
/// is returned as it is.
pub fn follow(name: &str, at: &Path) -> Result<Live> {
    let meta = match std::fs::symlink_metadata(at) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Live {
                path: at.to_path_buf(),
                link: None,
            });
        }
        Err(e) => {
            return Err(Error::io(
                format!("database `{name}`: cannot inspect {}", at.display()),
                e,
            ));
        }
    };
    if !meta.file_type().is_symlink() {
        return Ok(Live {
            path: at.to_path_buf(),
            link: None,
        });
    }
    let points_to = std::fs::read_link(at)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "?".into());
    let refuse = |why: String, hint: &str| {
        Error::refused(format!(
            "database `{name}`: {} is a symbolic link to {points_to}, {why}",
            at.display()
        ))
        .with_hint(format!("{hint}; nothing was changed"))
    };
    let target = match std::fs::canonicalize(at) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // Where the link leads, for the hint (not resolved: it does
            // not exist). A deleted file and an unmounted volume look the
            // same from here, and writing under an empty mount point would
            // put the data on the wrong filesystem: the user decides.
            let wanted = std::fs::read_link(at)
                .map(|t| at.parent().unwrap_or(Path::new("/")).join(t))
                .unwrap_or_else(|_| at.to_path_buf());
            return Err(refuse(
                "which does not exist (a dangling link)".into(),
                &format!(
                    "if the link's volume is not mounted, mount it; if the database file itself \
                     was deleted, create an empty one for the restore to replace (`touch {}`); \
                     then run again. lifeboat writes through a link, never over it",
                    wanted.display()
                ),
            ));
        }
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refuse(
                "which never reaches a file (a loop of links)".into(),
                "point the link at the database file",
            ));
        }
        Err(e) => {
            return Err(refuse(
                format!("which cannot be followed: {e}"),
                "make the link's target reachable by this account",
            ));
        }
    };
    match std::fs::metadata(&target) {
        Ok(m) if m.is_file() => {}
        _ => {
            return Err(refuse(
                format!("and {} is not a regular file", target.display()),
                "point the link at the database file itself",
            ));
        }
    }
    let dir = target.parent().unwrap_or(Path::new("/"));
    if !writable(dir) {
        return Err(refuse(
            format!(
                "in {}, which this account cannot write (the restored file is renamed in \
                 beside the target, with its -wal/-journal)",
                dir.display()
            ),
            "run lifeboat as the account that owns that directory (or root)",
        ));
    }
    Ok(Live {
        path: target,
        link: Some(at.to_path_buf()),
    })
}

/// [`follow`], then make sure a swap can rename files between `area_dir`
/// (where the staging and pre-restore directories are) and the directory
/// the live files are in: they must be on one filesystem. Checked for
/// every database, link or not (a subdirectory of `data_dir` may be a
/// mount point too), so a rename that would fail with EXDEV is refused
/// before anything moves.
pub fn for_swap(name: &str, at: &Path, area_dir: &Path) -> Result<Live> {
    let live = follow(name, at)?;
    refuse_planted_links(name, at, &live.path)?;
    let Some(dir) = nearest_existing_dir(&live.path) else {
        return Ok(live);
    };
    let (Ok(d), Ok(a)) = (std::fs::metadata(&dir), std::fs::metadata(area_dir)) else {
        return Ok(live);
    };
    if d.dev() != a.dev() {
        let what = match &live.link {
            Some(link) => format!(
                "{} is a symbolic link to {}, on another filesystem than",
                link.display(),
                live.path.display()
            ),
            None => format!("{} is on another filesystem than", live.path.display()),
        };
        return Err(Error::refused(format!(
            "database `{name}`: {what} the restore's staging area {} (a rename cannot \
             cross filesystems, so the swap could not be atomic)",
            area_dir.display()
        ))
        .with_hint(
            "link the data directory itself instead of the database file (or move the \
             database onto the data directory's filesystem); or restore with --to DIR on \
             that filesystem and move the files in by hand with the application stopped; \
             nothing was changed",
        ));
    }
    Ok(live)
}

/// A root restore writes through a symbolic link (of the database file, or
/// of any directory on its path) only if the link is root's or belongs to
/// the owner of where it leads: the rule of the kernel's
/// `fs.protected_symlinks`, for every link met. Otherwise the
/// application's account could plant a link (`app.db -> /etc/...`, or a
/// directory `db -> /etc`) and have a `sudo lifeboat restore` replace a
/// file that is not its own. An account restoring its own data has nothing
/// to gain from a link, so this is for root only.
pub fn refuse_planted_links(name: &str, at: &Path, target: &Path) -> Result<()> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    // The owner of where the path leads: the file, or (not there yet) the
    // nearest directory that exists.
    let Some(owner) = std::fs::metadata(target)
        .ok()
        .or_else(|| nearest_existing_dir(target).and_then(|d| std::fs::metadata(d).ok()))
        .map(|m| m.uid())
    else {
        return Ok(());
    };
    let links = links_on_the_way(at).map_err(|e| {
        Error::io(
            format!("database `{name}`: cannot follow {}", at.display()),
            e,
        )
    })?;
    if let Some((link, uid)) = links.iter().find(|(_, uid)| *uid != 0 && *uid != owner) {
        return Err(Error::refused(format!(
            "database `{name}`: {} is reached through the symbolic link {}, owned by uid {uid}, \
             but leads to something owned by uid {owner}: a root restore does not write through \
             another account's link",
            at.display(),
            link.display()
        ))
        .with_hint(
            "check where the link points; if it is right, make the link root's (`chown -h \
             root`) or give the target to the link's owner, or run the restore as the \
             application's account; nothing was changed",
        ));
    }
    Ok(())
}

/// Every symbolic link met while resolving `path` component by component
/// (directories and the file), with its owner.
fn links_on_the_way(path: &Path) -> std::io::Result<Vec<(PathBuf, u32)>> {
    use std::collections::VecDeque;
    use std::path::Component;
    let mut pending: VecDeque<PathBuf> = path
        .components()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut at = PathBuf::from("/");
    let mut links = Vec::new();
    while let Some(part) = pending.pop_front() {
        match part.components().next() {
            Some(Component::RootDir) => at = PathBuf::from("/"),
            Some(Component::ParentDir) => {
                at.pop();
            }
            Some(Component::Normal(n)) => {
                let next = at.join(n);
                match std::fs::symlink_metadata(&next) {
                    Ok(m) if m.file_type().is_symlink() => {
                        if links.len() >= 40 {
                            return Err(std::io::Error::from_raw_os_error(libc::ELOOP));
                        }
                        links.push((next.clone(), m.uid()));
                        let to = std::fs::read_link(&next)?;
                        let mut front: VecDeque<PathBuf> = to
                            .components()
                            .map(|c| PathBuf::from(c.as_os_str()))
                            .collect();
                        front.extend(pending);
                        pending = front;
                    }
                    // A missing part ends the walk: nothing further is a link.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                    Err(e) => return Err(e),
                    Ok(_) => at = next,
                }
            }
            _ => {}
        }
    }
    Ok(links)
}

/// Two declared databases must not resolve to one file (two links to one
/// target, or a link to another declared database): the swap would move
/// the same files twice.
pub fn refuse_shared(lives: &[(String, Live)]) -> Result<()> {
    for (i, (a, la)) in lives.iter().enumerate() {
        if let Some((b, _)) = lives[..i].iter().find(|(_, lb)| lb.path == la.path) {
            return Err(Error::refused(format!(
                "databases `{b}` and `{a}` are the same file, {} (through a symbolic link)",
                la.path.display()
            ))
            .with_hint("declare each database file once in the config; nothing was changed"));
        }
    }
    Ok(())
}

/// [`for_swap`] for each declared database `(name, path relative to
/// data_dir)`, then [`refuse_shared`].
pub fn resolve_all(
    data_dir: &Path,
    dbs: &[(String, PathBuf)],
    area_dir: &Path,
) -> Result<Vec<(String, Live)>> {
    let lives = dbs
        .iter()
        .map(|(name, rel)| Ok((name.clone(), for_swap(name, &data_dir.join(rel), area_dir)?)))
        .collect::<Result<Vec<_>>>()?;
    refuse_shared(&lives)?;
    Ok(lives)
}

/// The databases of `lives` that are links, for a report.
pub fn linked(lives: &[(String, Live)]) -> Vec<Linked> {
    lives
        .iter()
        .filter_map(|(name, l)| {
            l.link.as_ref().map(|link| Linked {
                name: name.clone(),
                link: link.clone(),
                target: l.path.clone(),
            })
        })
        .collect()
}

fn nearest_existing_dir(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .skip(1)
        .find(|d| std::fs::metadata(d).is_ok_and(|m| m.is_dir()))
        .map(Path::to_path_buf)
}

/// Whether this process may create and rename files in `dir` (its
/// effective ids, ACLs included: the kernel decides).
fn writable(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a valid NUL-terminated path; faccessat only reads it.
    unsafe {
        libc::faccessat(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::W_OK | libc::X_OK,
            libc::AT_EACCESS,
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_link_is_followed_to_its_target_and_a_plain_path_is_kept() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        std::fs::create_dir_all(p.join("data")).unwrap();
        std::fs::create_dir_all(p.join("volume")).unwrap();
        std::fs::write(p.join("volume/app.db"), "x").unwrap();
        symlink("../volume/app.db", p.join("data/app.db")).unwrap();
        // A chain: b -> app.db (the link) -> ../volume/app.db.
        symlink("app.db", p.join("data/b.db")).unwrap();
        let real = std::fs::canonicalize(p.join("volume/app.db")).unwrap();
        for n in ["app.db", "b.db"] {
            let live = for_swap("a", &p.join("data").join(n), p).unwrap();
            assert_eq!(live.path, real);
            assert_eq!(live.link, Some(p.join("data").join(n)));
        }
        let plain = follow("a", &p.join("data/none.db")).unwrap();
        assert_eq!((plain.path, plain.link), (p.join("data/none.db"), None));
        let lives = vec![
            (
                "a".to_string(),
                follow("a", &p.join("data/app.db")).unwrap(),
            ),
            ("b".to_string(), follow("b", &p.join("data/b.db")).unwrap()),
        ];
        let err = refuse_shared(&lives).unwrap_err();
        assert!(err.message.contains("same file"), "{}", err.message);
    }

    #[test]
    fn dangling_looping_and_directory_links_are_refused_with_a_hint() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path();
        symlink("missing/app.db", p.join("dangling.db")).unwrap();
        symlink("loop-b.db", p.join("loop-a.db")).unwrap();
        symlink("loop-a.db", p.join("loop-b.db")).unwrap();
        std::fs::create_dir(p.join("dir")).unwrap();
        symlink("dir", p.join("dir.db")).unwrap();
        for (n, needle) in [
            ("dangling.db", "does not exist"),
            ("loop-a.db", "loop"),
            ("dir.db", "not a regular file"),
        ] {
            let err = follow("a", &p.join(n)).unwrap_err();
            assert_eq!(err.kind, crate::error::Kind::Refused);
            assert!(err.message.contains(needle), "{n}: {}", err.message);
            assert!(err.message.contains("symbolic link"), "{}", err.message);
            assert!(err.hint.is_some());
        }
    }
}
