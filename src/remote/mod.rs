//! Where snapshots go off the machine.
//!
//! A remote is a small type implementing [`Remote`]: push an archive under
//! its tag, list what is there, download one, delete one. Each snapshot is one
//! object on the remote, named by its tag, so the remote's listing is the
//! input retention plans on. Implementations:
//! - [`github::GithubRemote`]: one GitHub release per snapshot, through `gh`.
//! - [`dir::DirRemote`]: a plain directory (external drive, NAS mount).

pub mod dir;
pub mod gh;
pub mod github;
pub mod pending;

use crate::config::Config;
use crate::error::Result;
use crate::tag::Tag;
use std::path::{Path, PathBuf};

/// One snapshot as the remote sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemoteSnapshot {
    pub tag: Tag,
    /// The archive's name on the remote (`<tag>.tar.gz` or `<tag>.tar.zst`).
    pub asset_name: String,
    pub size: u64,
    /// Lowercase hex sha256 of the archive, when the remote knows it.
    pub sha256: Option<String>,
    /// A GitHub draft release: an unfinished push that the next push converges.
    pub draft: bool,
}

/// What a successful push cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushOutcome {
    pub attempts: u32,
}

/// A failed push and the attempts it used (0 when it was refused before
/// the first one), so that `last_run.json` and the metrics can say how hard
/// lifeboat tried. Dereferences to the error.
#[derive(Debug)]
pub struct PushFailure {
    pub error: crate::Error,
    pub attempts: u32,
}

impl From<crate::Error> for PushFailure {
    fn from(error: crate::Error) -> Self {
        PushFailure { error, attempts: 0 }
    }
}

impl std::ops::Deref for PushFailure {
    type Target = crate::Error;
    fn deref(&self) -> &crate::Error {
        &self.error
    }
}

impl std::fmt::Display for PushFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

pub trait Remote {
    /// A short description for messages and records: `github:owner/name`.
    fn describe(&self) -> String;

    /// Upload `archive` as the snapshot `tag`. Must converge when an earlier
    /// attempt left a partial result, and confirm the upload before
    /// returning. `notes` is a short human summary of the manifest.
    fn push(&self, tag: &Tag, archive: &Path, notes: &str) -> Result<PushOutcome, PushFailure>;

    /// Every lifeboat snapshot on the remote (foreign names are ignored).
    fn list(&self) -> Result<Vec<RemoteSnapshot>>;

    /// Download the archive of `tag` into `dest_dir` and return its path. A
    /// partial download never survives under the final name.
    fn download(&self, tag: &Tag, dest_dir: &Path) -> Result<PathBuf>;

    /// Delete the snapshot `tag` from the remote.
    fn delete(&self, tag: &Tag) -> Result<()>;
}

/// The configured remote, if any.
pub fn from_config(config: &Config) -> Result<Option<Box<dyn Remote>>> {
    if let Some(g) = &config.github {
        return Ok(Some(Box::new(github::GithubRemote::new(g.clone()))));
    }
    if let Some(d) = &config.remote_dir {
        return Ok(Some(Box::new(dir::DirRemote::new(d.path.clone()))));
    }
    Ok(None)
}
