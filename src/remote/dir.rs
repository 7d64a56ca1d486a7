//! A plain directory as a remote (external drive, NAS mount).

use super::{PushOutcome, Remote, RemoteSnapshot};
use crate::error::{Error, Result};
use crate::tag::Tag;
use std::path::{Path, PathBuf};

pub struct DirRemote {
    root: PathBuf,
}

impl DirRemote {
    pub fn new(root: PathBuf) -> DirRemote {
        DirRemote { root }
    }
}

impl Remote for DirRemote {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }
    fn push(&self, _tag: &Tag, _archive: &Path, _notes: &str) -> Result<PushOutcome> {
        Err(Error::new(
            crate::error::Kind::RemotePermanent,
            "dir remote: not built yet",
        ))
    }
    fn list(&self) -> Result<Vec<RemoteSnapshot>> {
        Err(Error::new(
            crate::error::Kind::RemotePermanent,
            "dir remote: not built yet",
        ))
    }
    fn download(&self, _tag: &Tag, _dest_dir: &Path) -> Result<PathBuf> {
        Err(Error::new(
            crate::error::Kind::RemotePermanent,
            "dir remote: not built yet",
        ))
    }
    fn delete(&self, _tag: &Tag) -> Result<()> {
        Err(Error::new(
            crate::error::Kind::RemotePermanent,
            "dir remote: not built yet",
        ))
    }
}
