//! Pushing the queue: every snapshot whose push was never confirmed
//! (a `<tag>.pending-push` marker in the backup directory), oldest first,
//! then the one just taken.
//!
//! A snapshot is queued before its archive can exist under its final name
//! ([`crate::snapshot::take`]) and taken off the queue only once the remote
//! confirms the upload, so a crash at any moment leaves no archive that is
//! neither pushed nor queued; the local sweep never deletes a queued one.

use crate::record::{PushResult, PushStatus};
use crate::remote::Remote;
use crate::snapshot::Snapshot;
use crate::store::Store;

/// Push every pending snapshot (oldest first), then `snap`. Stops at the
/// first failure, or when lifeboat is asked to stop (an `interrupted`
/// failure): the rest stay queued for the next run.
pub fn push_pending(store: &Store, remote: &dyn Remote, snap: &Snapshot) -> PushResult {
    let mut result = PushResult {
        remote: remote.describe(),
        status: PushStatus::Pushed,
        attempts: 0,
        pushed: vec![],
        error: None,
    };
    // `snapshot::take` queued the snapshot before its archive existed; a
    // listing that fails must not be mistaken for "every archive is gone".
    let local = match store
        .mark_pending(&snap.tag)
        .and_then(|()| store.archives())
    {
        Ok(local) => local,
        Err(e) => {
            result.status = PushStatus::Failed;
            result.error = Some((&e).into());
            return result;
        }
    };
    for tag in store.pending() {
        if let Err(stop) = crate::interrupt::check() {
            result.status = PushStatus::Failed;
            result.error = Some((&crate::Error::from(stop)).into());
            break;
        }
        let Some((_, archive)) = local.iter().find(|(t, _)| *t == tag) else {
            // The archive is gone (removed by hand): nothing left to push.
            tracing::warn!(%tag, "pending push has no local archive; dropping it");
            store.clear_pending(&tag);
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
                store.clear_pending(&tag);
                crate::audit::log(crate::audit::Event::SnapshotPushed {
                    tag: tag.to_string(),
                    remote: result.remote.clone(),
                    attempts: outcome.attempts,
                });
                tracing::info!(%tag, remote = %result.remote, attempts = outcome.attempts, "snapshot pushed");
            }
            Err(failure) => {
                tracing::info!(%tag, remote = %result.remote, attempts = failure.attempts, error = %failure.message, "push failed");
                result.status = PushStatus::Failed;
                result.attempts = failure.attempts;
                result.error = Some((&failure.error).into());
                break;
            }
        }
    }
    result
}
