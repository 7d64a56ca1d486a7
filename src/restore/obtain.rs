//! Step 1: find the snapshot's archive, locally or on a remote.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::fsutil;
use crate::remote::{self, Remote};
use crate::tag::Tag;
use std::path::{Path, PathBuf};

/// Where to take the archive from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The local copy if present and intact, else the configured remote.
    Auto,
    /// Only `backup_dir`.
    Local,
    /// The configured remote, whichever it is.
    Remote,
    /// The `[github]` remote.
    Github,
    /// The `[remote.dir]` remote.
    Dir,
    /// The `[remote.rclone]` remote.
    Rclone,
}

/// An archive ready to read. A downloaded one lives in a private directory
/// that is removed when this is dropped.
pub struct Obtained {
    pub path: PathBuf,
    /// `local:<path>` or the remote's description.
    pub from: String,
    download_dir: Option<PathBuf>,
}

impl Drop for Obtained {
    fn drop(&mut self) {
        if let Some(dir) = &self.download_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

pub fn local(config: &Config, tag: &Tag) -> Result<Obtained> {
    let path = config.store().find_archive(tag).ok_or_else(|| {
        Error::usage(format!(
            "snapshot {tag} is not in {}",
            config.backup_dir.display()
        ))
        .with_hint("`lifeboat restore` without a tag lists the snapshots; `--from github|dir|rclone` downloads one")
    })?;
    Ok(Obtained {
        from: format!("local:{}", path.display()),
        path,
        download_dir: None,
    })
}

/// The remote `source` names (`Auto`/`Remote`: the configured one).
pub fn remote_for(config: &Config, source: Source) -> Result<Box<dyn Remote>> {
    let wanted = match source {
        Source::Github => Some("github"),
        Source::Dir => Some("dir"),
        Source::Rclone => Some("rclone"),
        Source::Auto | Source::Remote | Source::Local => None,
    };
    let found = match wanted {
        Some(kind) => config.remotes.iter().find(|r| r.kind() == kind),
        None => config.remote(),
    };
    found.map(remote::open).ok_or_else(|| {
        let what = match wanted {
            Some("github") => "[github] ",
            Some("rclone") => "[remote.rclone] ",
            Some(_) => "[remote.dir] ",
            None => "",
        };
        Error::usage(format!(
            "no {what}remote is configured in {}",
            config.file.display()
        ))
        .with_hint("add a [github], [remote.dir] or [remote.rclone] section, or restore from a local archive")
    })
}

/// Refuse, as a usage error, a tag that `remote` says it does not have: a
/// typo is not a failed restore. When the remote cannot even be listed,
/// the download that follows reports why.
pub fn require_listed(config: &Config, remote: &dyn Remote, tag: &Tag) -> Result<()> {
    match remote.list() {
        Ok(listed) if !listed.iter().any(|s| s.tag == *tag) => Err(Error::usage(format!(
            "snapshot {tag} is not in {} nor on {}",
            config.backup_dir.display(),
            remote.describe()
        ))
        .with_hint("`lifeboat restore` without a tag lists the available snapshots")),
        _ => Ok(()),
    }
}

/// Download `tag` into a private `.staging-<tag>` directory of `backup_dir`
/// (removed by the next run if this one dies).
pub fn download(config: &Config, remote: &dyn Remote, tag: &Tag) -> Result<Obtained> {
    let store = config.store();
    let dir = store.staging(tag);
    if dir.exists() {
        std::fs::remove_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot remove stale {}", dir.display()), e))?;
    }
    store.create()?;
    fsutil::private_dir(&dir)?;
    let from = remote.describe();
    tracing::info!(%tag, remote = %from, "downloading snapshot");
    match download_showing_progress(remote, tag, &dir) {
        Ok(path) => Ok(Obtained {
            path,
            from,
            download_dir: Some(dir),
        }),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e.context(format!("cannot download {tag} from {from}")))
        }
    }
}

/// `remote.download`, with a byte counter on a terminal. Remotes have no
/// progress callback (gh reports none that lifeboat could read), so the
/// counter watches the bytes arriving under `dir` instead.
fn download_showing_progress(remote: &dyn Remote, tag: &Tag, dir: &Path) -> Result<PathBuf> {
    let bar = crate::progress::bytes("download", None);
    if bar.is_hidden() {
        return remote.download(tag, dir);
    }
    let finished = std::sync::atomic::AtomicBool::new(false);
    let got = std::thread::scope(|s| {
        s.spawn(|| {
            use std::sync::atomic::Ordering;
            while !finished.load(Ordering::Relaxed) {
                bar.set_position(bytes_under(dir));
                bar.tick();
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        let got = remote.download(tag, dir);
        finished.store(true, std::sync::atomic::Ordering::Relaxed);
        got
    });
    match &got {
        // What arrived, and how fast, stays on the terminal.
        Ok(path) => {
            bar.set_position(std::fs::metadata(path).map_or(0, |m| m.len()));
            bar.finish();
        }
        Err(_) => bar.finish_and_clear(),
    }
    got
}

/// Total size of the regular files under `dir` (not following links).
fn bytes_under(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => bytes_under(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}
