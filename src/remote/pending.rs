//! The push queue.
//!
//! Before a push starts, an empty `<tag>.pending-push` marker is written
//! beside the archive; it is removed once the remote confirms the upload. A
//! marker that survives (push failed, process killed) means "push me first
//! next time", and the local sweep never deletes a snapshot that has one.

use super::Remote;
use crate::config::Config;
use crate::runrecord::{PushResult, PushStatus};
use crate::snapshot::{self, Snapshot};
use crate::tag::Tag;
use std::path::{Path, PathBuf};

const PENDING_SUFFIX: &str = ".pending-push";

fn marker(backup_dir: &Path, tag: &Tag) -> PathBuf {
    backup_dir.join(format!("{tag}{PENDING_SUFFIX}"))
}

/// Queue `tag` for pushing (durably).
pub fn mark(backup_dir: &Path, tag: &Tag) -> crate::Result<()> {
    crate::fsutil::write_atomic(&marker(backup_dir, tag), b"")
}

/// Take `tag` off the queue: pushed, or its archive never came to be.
pub fn clear(backup_dir: &Path, tag: &Tag) {
    let _ = std::fs::remove_file(marker(backup_dir, tag));
    let _ = crate::fsutil::sync_dir(backup_dir);
}

/// Tags whose push has not been confirmed, oldest first.
pub fn pending_pushes(backup_dir: &Path) -> Vec<Tag> {
    let mut tags: Vec<Tag> = std::fs::read_dir(backup_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(PENDING_SUFFIX).and_then(Tag::parse)
        })
        .collect();
    tags.sort();
    tags
}

/// Push every pending snapshot (oldest first), then `snap`. Stops at the
/// first failure: the rest stay pending for the next run.
pub fn push_pending(config: &Config, remote: &dyn Remote, snap: &Snapshot) -> PushResult {
    let mut result = PushResult {
        remote: remote.describe(),
        status: PushStatus::Pushed,
        attempts: 0,
        pushed: vec![],
        error: None,
    };
    // `snapshot::take` queued the snapshot before its archive existed; a
    // listing that fails must not be mistaken for "every archive is gone".
    let local = match mark(&config.backup_dir, &snap.tag)
        .and_then(|()| snapshot::list_local(&config.backup_dir))
    {
        Ok(local) => local,
        Err(e) => {
            result.status = PushStatus::Failed;
            result.error = Some((&e).into());
            return result;
        }
    };
    for tag in pending_pushes(&config.backup_dir) {
        let Some((_, archive)) = local.iter().find(|(t, _)| *t == tag) else {
            // The archive is gone (removed by hand): nothing left to push.
            tracing::warn!(%tag, "pending push has no local archive; dropping it");
            clear(&config.backup_dir, &tag);
            continue;
        };
        let notes = if tag == snap.tag {
            snap.manifest.summary()
        } else {
            format!("lifeboat snapshot {tag}")
        };
        match remote.push(&tag, archive, &notes) {
            Ok(outcome) => {
                result.attempts = outcome.attempts;
                result.pushed.push(tag);
                clear(&config.backup_dir, &tag);
                tracing::info!(%tag, remote = %result.remote, attempts = outcome.attempts, "snapshot pushed");
            }
            Err(failure) => {
                tracing::error!(%tag, remote = %result.remote, attempts = failure.attempts, error = %failure.message, "push failed");
                result.status = PushStatus::Failed;
                result.attempts = failure.attempts;
                result.error = Some((&failure.error).into());
                break;
            }
        }
    }
    result
}
