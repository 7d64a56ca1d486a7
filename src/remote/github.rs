//! GitHub releases as a remote, driven through the `gh` CLI.

use super::{PushOutcome, Remote, RemoteSnapshot};
use crate::error::{Error, Result};
use crate::tag::Tag;
use std::path::{Path, PathBuf};

pub struct GithubRemote {
    config: crate::config::GithubConfig,
}

impl GithubRemote {
    pub fn new(config: crate::config::GithubConfig) -> GithubRemote {
        GithubRemote { config }
    }
}

impl Remote for GithubRemote {
    fn describe(&self) -> String {
        format!("github:{}", self.config.repo)
    }
    fn push(&self, _tag: &Tag, _archive: &Path, _notes: &str) -> Result<PushOutcome> {
        Err(Error::new(
            crate::error::Kind::RemotePermanent,
            "github remote: not built yet",
        ))
    }
    fn list(&self) -> Result<Vec<RemoteSnapshot>> {
        Err(Error::new(
            crate::error::Kind::RemotePermanent,
            "github remote: not built yet",
        ))
    }
    fn download(&self, _tag: &Tag, _dest_dir: &Path) -> Result<PathBuf> {
        Err(Error::new(
            crate::error::Kind::RemotePermanent,
            "github remote: not built yet",
        ))
    }
    fn delete(&self, _tag: &Tag) -> Result<()> {
        Err(Error::new(
            crate::error::Kind::RemotePermanent,
            "github remote: not built yet",
        ))
    }
}
