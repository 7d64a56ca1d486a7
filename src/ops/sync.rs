//! Sync: fill each remote (or one) with this installation's snapshots it
//! lacks, from the local archives, like restic's `copy`. A remote added to
//! the configuration, or one that was down for a while and is pruned
//! behind, catches up this way instead of holding only what was taken
//! after it came.
//!
//! A missing snapshot is put on that remote's push queue and the queue is
//! pushed at once ([`super::push::push_queue`]): what cannot be pushed now
//! stays queued, so the hourly run pushes it (and its record and `health`
//! say so), and local retention keeps it meanwhile. A remote that cannot be
//! listed is reported and the others are still filled.

use super::run::locked;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::record::{PushResult, PushStatus};
use crate::tag::Tag;

#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Only this remote (`dir`, `github`, `rclone`); else every one.
    pub remote: Option<String>,
    /// Say what would be pushed, push nothing.
    pub dry_run: bool,
}

#[derive(Debug, serde::Serialize)]
pub struct SyncReport {
    pub dry_run: bool,
    pub remotes: Vec<RemoteSync>,
}

#[derive(Debug, serde::Serialize)]
pub struct RemoteSync {
    /// The remote's name in the configuration.
    pub name: String,
    /// `github:owner/name`, `dir:/path`, `rclone:remote:path`.
    pub remote: String,
    /// Local snapshots of this installation the remote did not have.
    pub missing: Vec<Tag>,
    /// The push of its queue (none for a dry run or when it could not be
    /// listed).
    pub push: Option<PushResult>,
    /// Why the remote could not be listed.
    pub error: Option<String>,
}

impl SyncReport {
    /// Exit 1 when a remote could not be listed or a push failed: what was
    /// not pushed stays queued for the next run.
    pub fn outcome(&self) -> Result<()> {
        let failed: Vec<String> = self
            .remotes
            .iter()
            .filter_map(|r| {
                r.error
                    .clone()
                    .or_else(|| {
                        r.push
                            .as_ref()
                            .and_then(|p| p.error.as_ref())
                            .map(|e| e.message.clone())
                    })
                    .map(|e| format!("{}: {e}", r.remote))
            })
            .collect();
        if failed.is_empty() {
            return Ok(());
        }
        Err(Error::new(
            crate::error::Kind::RemoteTransient,
            format!("sync did not finish: {}", failed.join("; ")),
        )
        .with_hint(
            "what was not pushed stays queued: the next snapshot run pushes it, or run \
             `lifeboat sync` again; `lifeboat doctor` checks the remote",
        ))
    }
}

pub fn sync(config: &Config, opts: &SyncOptions) -> Result<SyncReport> {
    let remotes = crate::remote::open_all(config);
    if remotes.is_empty() {
        return Err(Error::usage("sync: no remote is configured")
            .with_hint("add [remote.dir], [github] or [remote.rclone] to the config"));
    }
    if let Some(want) = &opts.remote
        && !remotes.iter().any(|r| r.name() == want)
    {
        let names: Vec<&str> = remotes.iter().map(|r| r.name()).collect();
        return Err(Error::usage(format!(
            "sync --remote {want}: no such remote; configured: {}",
            names.join(", ")
        )));
    }
    let names: Vec<&str> = remotes.iter().map(|r| r.name()).collect();
    // Under the lock: a snapshot run must not push the same queue at once.
    locked(config, "sync", || {
        let store = config.store();
        let owner = config.owner();
        let local: Vec<Tag> = store
            .archives()?
            .into_iter()
            .map(|(t, _)| t)
            .filter(|t| owner.owns(t))
            .collect();
        let mut report = SyncReport {
            dry_run: opts.dry_run,
            remotes: vec![],
        };
        for remote in &remotes {
            if opts.remote.as_deref().is_some_and(|w| w != remote.name()) {
                continue;
            }
            let mut entry = RemoteSync {
                name: remote.name().to_string(),
                remote: remote.describe(),
                missing: vec![],
                push: None,
                error: None,
            };
            match remote.list() {
                Err(e) => entry.error = Some(e.message),
                Ok(listed) => {
                    let there: Vec<Tag> =
                        listed.iter().filter(|s| !s.draft).map(|s| s.tag).collect();
                    // A snapshot this remote refuses for good is not asked again.
                    entry.missing = local
                        .iter()
                        .copied()
                        .filter(|t| !there.contains(t))
                        .filter(|t| {
                            store
                                .refusal(t, remote.name())
                                .is_none_or(|r| !r.holds_for(&remote.describe()))
                        })
                        .collect();
                    if !opts.dry_run {
                        for tag in &entry.missing {
                            store.mark_pending(tag, remote.name())?;
                        }
                        let pushed = super::push::push_queue(&store, remote.as_ref(), None, &names);
                        let stop = pushed.status == PushStatus::Failed
                            && pushed
                                .error
                                .as_ref()
                                .is_some_and(|e| e.kind == crate::error::Kind::Interrupted);
                        entry.push = Some(pushed);
                        if stop {
                            report.remotes.push(entry);
                            break;
                        }
                    }
                }
            }
            report.remotes.push(entry);
        }
        crate::interrupt::check()?;
        Ok(report)
    })
}
