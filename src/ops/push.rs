//! Pushing one remote's queue: every snapshot whose push to it was never
//! confirmed (a `<tag>.pending-push.<remote>` marker in the backup
//! directory), oldest first, then the one just taken. Each remote has its
//! own queue, so a remote that is down holds up nothing for the others.
//!
//! A snapshot is queued before its archive can exist under its final name
//! ([`crate::snapshot::take`]) and taken off the queue only once the remote
//! confirms the upload, so a crash at any moment leaves no archive that is
//! neither pushed nor queued; the local sweep never deletes a queued one.
//!
//! An archive the remote can never take as it is (GitHub: 2 GiB and more)
//! must not stand in front of every later snapshot: its refusal is written
//! into its marker, the queue goes on past it in this run and every later
//! one, and each run's record lists it (`push.refused`) so that `health`
//! keeps warning. It stays queued, so it stays local. A refusal holds for
//! one remote and one lifeboat version: a new remote or an upgrade tries
//! it again.

use crate::record::{ErrorRecord, PushResult, PushStatus, RefusedPush};
use crate::remote::Remote;
use crate::snapshot::Snapshot;
use crate::store::{PushRefusal, Store};

/// Push every pending snapshot (oldest first), then `snap`. Stops at the
/// first failure, or when lifeboat is asked to stop (an `interrupted`
/// failure): the rest stay queued for the next run. A refused archive is
/// passed over (see the module's documentation); the run fails only when
/// it is `snap`'s.
pub fn push_pending(
    store: &Store,
    remote: &dyn Remote,
    snap: &Snapshot,
    remotes: &[&str],
) -> PushResult {
    push_queue(store, remote, Some(snap), remotes)
}

/// Push `remote`'s queue, oldest first; `current` is the snapshot this run
/// took (queued again here in case its marker was lost), if any.
pub fn push_queue(
    store: &Store,
    remote: &dyn Remote,
    current: Option<&Snapshot>,
    remotes: &[&str],
) -> PushResult {
    let name = remote.name();
    let current_tag = current.map(|s| s.tag);
    let mut result = PushResult {
        remote: remote.describe(),
        status: PushStatus::Pushed,
        attempts: 0,
        pushed: vec![],
        error: None,
        refused: vec![],
    };
    // `snapshot::take` queued the snapshot before its archive existed; a
    // listing that fails must not be mistaken for "every archive is gone".
    let queued = match current {
        Some(snap) => store.mark_pending(&snap.tag, name),
        None => Ok(()),
    };
    let local = match queued.and_then(|()| store.archives()) {
        Ok(local) => local,
        Err(e) => {
            result.status = PushStatus::Failed;
            result.error = Some((&e).into());
            return result;
        }
    };
    for tag in store.pending(name) {
        if let Err(stop) = crate::interrupt::check() {
            result.status = PushStatus::Failed;
            result.error = Some((&crate::Error::from(stop)).into());
            break;
        }
        let Some((_, archive)) = local.iter().find(|(t, _)| *t == tag) else {
            // The archive is gone (removed by hand): nothing left to push.
            tracing::warn!(%tag, "pending push has no local archive; dropping it");
            store.clear_pending(&tag, name, remotes);
            continue;
        };
        if let Some(refusal) = store
            .refusal(&tag, name)
            .filter(|r| r.holds_for(&result.remote))
        {
            result.refused.push(RefusedPush {
                tag,
                error: ErrorRecord {
                    kind: crate::error::Kind::RemotePermanent,
                    message: refusal.message,
                    hint: refusal.hint,
                },
            });
            continue;
        }
        let notes = if let Some(snap) = current.filter(|s| s.tag == tag) {
            snap.manifest.summary()
        } else {
            format!("lifeboat snapshot {tag}")
        };
        match remote.push(&tag, archive, &notes) {
            Ok(outcome) => {
                result.attempts = outcome.attempts;
                result.pushed.push(tag);
                store.clear_pending(&tag, name, remotes);
                crate::audit::log(crate::audit::Event::SnapshotPushed {
                    tag: tag.to_string(),
                    remote: result.remote.clone(),
                    attempts: outcome.attempts,
                });
                tracing::info!(%tag, remote = %result.remote, attempts = outcome.attempts, "snapshot pushed");
            }
            Err(failure) if failure.archive_refused => {
                tracing::warn!(%tag, remote = %result.remote, error = %failure.message, "the remote refuses this archive; pushing the later ones past it");
                let refusal = PushRefusal {
                    remote: result.remote.clone(),
                    message: failure.error.message.clone(),
                    hint: failure.error.hint.clone(),
                    at: chrono::Utc::now(),
                    lifeboat_version: env!("CARGO_PKG_VERSION").to_string(),
                };
                // Unrecorded, the refusal is met again next run: no harm.
                if let Err(e) = store.mark_refused(&tag, name, &refusal) {
                    tracing::warn!(%tag, error = %e.message, "cannot record the refusal");
                }
                result.refused.push(RefusedPush {
                    tag,
                    error: (&failure.error).into(),
                });
                if Some(tag) == current_tag {
                    result.status = PushStatus::Failed;
                    result.error = Some((&failure.error).into());
                }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::{Checks, PushFailure, PushOutcome, RemoteSnapshot};
    use crate::tag::Tag;
    use std::cell::RefCell;
    use std::path::{Path, PathBuf};

    /// A remote that refuses one archive for good and takes the others,
    /// counting the calls (the real backends cannot show that a call was
    /// *not* made: GitHub's size check makes none either way).
    struct Picky {
        refuses: Tag,
        calls: RefCell<Vec<Tag>>,
    }

    impl Remote for Picky {
        fn name(&self) -> &'static str {
            "picky"
        }
        fn describe(&self) -> String {
            "test:picky".into()
        }
        fn check(&self, _: bool) -> Checks {
            Checks::default()
        }
        fn push(&self, tag: &Tag, _: &Path, _: &str) -> Result<PushOutcome, PushFailure> {
            self.calls.borrow_mut().push(*tag);
            if *tag == self.refuses {
                return Err(PushFailure::archive_refused(crate::Error::new(
                    crate::error::Kind::RemotePermanent,
                    "too large",
                )));
            }
            Ok(PushOutcome { attempts: 1 })
        }
        fn list(&self) -> crate::Result<Vec<RemoteSnapshot>> {
            Ok(vec![])
        }
        fn download(&self, _: &Tag, _: &Path) -> crate::Result<PathBuf> {
            unreachable!()
        }
        fn delete(&self, _: &Tag) -> crate::Result<()> {
            unreachable!()
        }
    }

    fn snapshot(store: &Store, tag: &str) -> Snapshot {
        let tag = Tag::parse(tag).unwrap();
        let archive = store.dir().join(format!("{tag}.tar.gz"));
        std::fs::write(&archive, b"archive").unwrap();
        store.mark_pending(&tag, "picky").unwrap();
        let mut manifest = crate::snapshot::manifest::sample();
        manifest.tag = tag;
        Snapshot {
            tag,
            archive,
            archive_bytes: 7,
            manifest,
            failed: vec![],
        }
    }

    #[test]
    fn a_refused_archive_is_passed_over_and_remembered_per_remote_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path());
        let big = snapshot(&store, "snap-20261101T000000Z");
        let remote = Picky {
            refuses: big.tag,
            calls: RefCell::default(),
        };
        let next = snapshot(&store, "snap-20261101T010000Z");
        let r = push_pending(&store, &remote, &next, &["picky"]);
        assert_eq!(r.status, PushStatus::Pushed);
        assert_eq!(r.pushed, vec![next.tag]);
        assert_eq!(r.refused.len(), 1);
        assert_eq!(
            store.pending("picky"),
            vec![big.tag],
            "still queued, so kept locally"
        );
        assert!(
            store
                .refusal(&big.tag, "picky")
                .unwrap()
                .holds_for("test:picky")
        );

        // The next run does not ask again.
        let third = snapshot(&store, "snap-20261101T020000Z");
        remote.calls.borrow_mut().clear();
        let r = push_pending(&store, &remote, &third, &["picky"]);
        assert_eq!(*remote.calls.borrow(), vec![third.tag]);
        assert_eq!(r.refused[0].tag, big.tag);
        assert_eq!(r.refused[0].error.message, "too large");

        // Another lifeboat version (it may split archives) tries again.
        let mut refusal = store.refusal(&big.tag, "picky").unwrap();
        refusal.lifeboat_version = "0.0.1".into();
        store.mark_refused(&big.tag, "picky", &refusal).unwrap();
        remote.calls.borrow_mut().clear();
        let fourth = snapshot(&store, "snap-20261101T030000Z");
        push_pending(&store, &remote, &fourth, &["picky"]);
        assert_eq!(*remote.calls.borrow(), vec![big.tag, fourth.tag]);

        // When the refused one is the snapshot just taken, the run fails.
        let fifth = snapshot(&store, "snap-20261101T040000Z");
        let remote = Picky {
            refuses: fifth.tag,
            calls: RefCell::default(),
        };
        let r = push_pending(&store, &remote, &fifth, &["picky"]);
        assert_eq!(r.status, PushStatus::Failed);
        assert_eq!(r.error.unwrap().message, "too large");
    }
}
