//! Finishing what a killed restore left behind; run at the start of every
//! command that changes data (by the run wrapper, `ops::run`), so a
//! half-restored data directory is never snapshotted.

use super::journal::{Journal, State, exists};
use crate::config::Config;
use crate::error::{Error, IoContext, Result};

/// Finish what an interrupted restore left: a journal in state `swapping` is
/// abandoned when nothing had moved yet, else rolled forward (see
/// [`super::journal`]); one in state `committed` is cleaned up; stale
/// staging directories are removed. A journal that cannot be acted on (an
/// application has the files open, another account's files, a journal from
/// an older lifeboat) refuses, so no snapshot is taken of a half-swapped
/// state. Returns what was done, one line per action (also shown to the
/// person running lifeboat). The caller holds the lock.
pub fn recover(config: &Config) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let area = config.data_area();
    for legacy in area.legacy_journals() {
        if exists(&legacy) {
            return Err(Error::refused(format!(
                "an interrupted restore by an older lifeboat left {}",
                legacy.display()
            ))
            .with_hint(
                "finish it with the lifeboat version that wrote it (any command does), or \
                 compare the data directory with its .pre-restore-* copy by hand and remove \
                 the journal; until then nothing is snapshotted or restored",
            ));
        }
    }
    let jpath = config.store().restore_journal();
    if let Some(j) = Journal::load(&jpath)? {
        // Moving files an application has open would lose its writes: a
        // half-restored data directory in use is the user's to stop first.
        let busy: Vec<String> = j
            .pending_live()
            .into_iter()
            .filter_map(|(name, path)| {
                super::swap::in_use(&path)
                    .map(|why| format!("`{name}` ({}): {why}", path.display()))
            })
            .collect();
        if !busy.is_empty() {
            return Err(Error::refused(format!(
                "an interrupted restore ({}, started {}) must be finished, but {}",
                j.what,
                j.started_at,
                busy.join("; ")
            ))
            .with_hint(
                "stop the application, then run lifeboat again: it finishes the restore and \
                 sets aside anything the application wrote in its way; nothing is snapshotted \
                 until then",
            ));
        }
        let was_committed = j.state == State::Committed;
        let outcome = j.recover(&jpath).map_err(|e| {
            let hint = match e.kind {
                // Usually another account's restore (`sudo lifeboat restore`):
                // its directories are not ours to move files in.
                crate::error::Kind::Io => format!(
                    "{}; if another account (root?) ran the restore, run any lifeboat command \
                     as that account to finish it. Until then nothing is snapshotted",
                    e.hint
                        .clone()
                        .unwrap_or_else(|| "fix the cause above".into())
                ),
                _ => e.hint.clone().unwrap_or_default(),
            };
            e.context(format!(
                "cannot finish an interrupted restore ({}, started {}); the journal {} stays",
                j.what,
                j.started_at,
                jpath.display()
            ))
            .with_hint(hint)
        })?;
        let line = if was_committed {
            format!(
                "an interrupted restore ({}, started {}) had completed; its leftovers were cleaned up",
                j.what, j.started_at
            )
        } else if !outcome.moved {
            format!(
                "an interrupted restore ({}, started {}) had not changed anything yet and was abandoned: the live data is as it was",
                j.what, j.started_at
            )
        } else {
            format!(
                "an interrupted restore ({}, started {}) was completed: the live data is the restored data; the previous data is in {}",
                j.what,
                j.started_at,
                j.pre_restore.display()
            )
        };
        tracing::warn!(what = %j.what, "{line}");
        done.push(line);
        for (name, dir) in outcome.set_aside {
            let line = format!(
                "database `{name}`: files written after the crash stood in the restore's way and were set aside in {}",
                dir.display()
            );
            tracing::warn!("{line}");
            done.push(line);
        }
    }
    for (path, staging) in area.leftovers() {
        if staging {
            std::fs::remove_dir_all(&path).ctx(format!("cannot remove {}", path.display()))?;
            done.push(format!(
                "removed the staging directory of an interrupted restore: {}",
                path.display()
            ));
        } else if path.is_dir() {
            std::fs::remove_dir_all(&path).ctx(format!("cannot remove {}", path.display()))?;
        } else {
            // A journal write that never reached its rename.
            let _ = std::fs::remove_file(&path);
        }
    }
    config.store().clean_stale()?;
    for line in &done {
        crate::progress::notice(&format!("lifeboat: {line}"));
    }
    Ok(done)
}
