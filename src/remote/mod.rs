//! Where snapshots go off the machine.
//!
//! A remote is a small self-contained backend implementing [`Remote`]:
//! check that it is ready (what `doctor` reports and fixes), push an archive
//! under its tag, list what is there, download one, delete one. Each
//! snapshot is one object on the remote, named by its tag, so the remote's
//! listing is the input retention plans on. Each backend is built from its
//! own [`RemoteConfig`] variant by [`open`], and nothing outside its module
//! knows how it works. Backends:
//! - [`github::GithubRemote`]: one GitHub release per snapshot, through `gh`.
//! - [`dir::DirRemote`]: a plain directory (external drive, NAS mount).
//! - [`rclone::RcloneRemote`]: any rclone backend (S3, B2, SFTP, WebDAV,
//!   ...), through the `rclone` CLI.

pub mod dir;
pub mod github;
pub mod marker;
pub mod rclone;

use crate::config::RemoteConfig;
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
    /// The consecutive parts the archive is kept as (GitHub: an archive
    /// over the part size, since assets must be under 2 GiB); empty when it
    /// is one object. `size` is then their total.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<RemotePart>,
}

/// One part of an archive kept in parts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemotePart {
    pub name: String,
    pub size: u64,
    pub sha256: Option<String>,
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
    /// The remote can never take this archive as it is (GitHub: 2 GiB and
    /// more), though it takes others: the push queue sets it aside rather
    /// than let it hold up every later snapshot.
    pub archive_refused: bool,
}

impl PushFailure {
    pub fn new(error: crate::Error, attempts: u32) -> PushFailure {
        PushFailure {
            error,
            attempts,
            archive_refused: false,
        }
    }

    /// A refusal of this archive only; see [`PushFailure::archive_refused`].
    pub fn archive_refused(error: crate::Error) -> PushFailure {
        PushFailure {
            error,
            attempts: 0,
            archive_refused: true,
        }
    }
}

impl From<crate::Error> for PushFailure {
    fn from(error: crate::Error) -> Self {
        PushFailure::new(error, 0)
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
    /// The remote's name in the configuration, which is its kind (`dir`,
    /// `github`, `rclone`): what `restore --from` takes, and what names its
    /// push queue in `backup_dir`.
    fn name(&self) -> &'static str;

    /// A short description for messages and records: `github:owner/name`.
    fn describe(&self) -> String;

    /// Is the remote ready to receive snapshots? Every failed check names
    /// its fix; `fix` performs the fixes that are safe to automate.
    fn check(&self, fix: bool) -> Checks;

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

/// Run `f` until it succeeds, fails other than transiently, or `attempts`
/// are used up; the wait doubles from `backoff` (at most 5 minutes) and is
/// cut short when `stopping` says so (the next attempt then fails as
/// interrupted without starting anything). Returns the attempts used, on
/// failure too. Every backend retries through this.
pub fn retrying<T>(
    what: &str,
    attempts: u32,
    backoff: std::time::Duration,
    stopping: impl Fn() -> bool,
    mut f: impl FnMut() -> Result<T>,
) -> std::result::Result<(T, u32), (crate::Error, u32)> {
    use crate::error::Kind;
    use std::time::{Duration, Instant};
    let attempts = attempts.max(1);
    let mut delay = backoff;
    let mut attempt = 1;
    loop {
        match f() {
            Ok(v) => return Ok((v, attempt)),
            Err(e) if e.kind == Kind::RemoteTransient && attempt < attempts => {
                tracing::warn!(attempt, error = %e.message, retry_in = ?delay, "{what} failed; retrying");
                let until = Instant::now() + delay;
                while !stopping() {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(Duration::from_millis(50)));
                }
                delay = delay.saturating_mul(2).min(Duration::from_secs(300));
                attempt += 1;
            }
            Err(e) if e.kind == Kind::RemoteTransient => {
                let e = e.context(format!("{what}: gave up after {attempt} attempt(s)"));
                return Err((e, attempt));
            }
            Err(e) => return Err((e.context(what), attempt)),
        }
    }
}

/// The backends of every configured remote, in the configuration's order.
pub fn open_all(config: &crate::config::Config) -> Vec<Box<dyn Remote>> {
    config.remotes.iter().map(open).collect()
}

/// The backend for one remote section of the config.
pub fn open(config: &RemoteConfig) -> Box<dyn Remote> {
    match config {
        RemoteConfig::Github(g) => Box::new(github::GithubRemote::new(g.clone())),
        RemoteConfig::Dir(d) => Box::new(dir::DirRemote::new(d.clone())),
        RemoteConfig::Rclone(r) => Box::new(rclone::RcloneRemote::new(r.clone())),
    }
}

/// The outcome of one readiness check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Ok,
    Fail,
    /// Works, but not as safely as it should: reported, does not fail.
    Warn,
    Skipped,
}

#[derive(Debug, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: CheckStatus,
    pub detail: String,
    /// What to do about a failed check.
    pub fix: Option<String>,
}

/// What [`Remote::check`] found, in order, and what its fixes changed.
#[derive(Debug, Default, serde::Serialize)]
pub struct Checks {
    pub checks: Vec<Check>,
    pub fixed: Vec<String>,
}

impl Checks {
    pub fn ok(&mut self, name: &'static str, detail: impl Into<String>) {
        self.push(name, CheckStatus::Ok, detail.into(), None);
    }

    pub fn fail(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(name, CheckStatus::Fail, detail.into(), Some(fix.into()));
    }

    /// A check that passes with a caveat the user should act on.
    pub fn warn(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(name, CheckStatus::Warn, detail.into(), Some(fix.into()));
    }

    /// Checks that cannot run because an earlier one failed.
    pub fn skip(&mut self, names: &[&'static str], why: &str) {
        for name in names {
            self.push(name, CheckStatus::Skipped, why.to_string(), None);
        }
    }

    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.status != CheckStatus::Fail)
    }

    fn push(
        &mut self,
        name: &'static str,
        status: CheckStatus,
        detail: String,
        fix: Option<String>,
    ) {
        self.checks.push(Check {
            name,
            status,
            detail,
            fix,
        });
    }
}
