//! Finishing what a killed restore left behind; run at the start of every
//! command that changes data.

use super::journal::{self, Journal, State};
use crate::config::Config;
use crate::error::{IoContext, Result};

/// Finish what an interrupted restore left: a journal in state `swapping` is
/// rolled back, one in state `committed` is cleaned up; stale staging
/// directories are removed. Returns what was done, one line per action (also
/// printed on stderr). The caller holds the lock.
pub fn recover(config: &Config) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let area = config.data_area();
    let jpath = area.journal();
    if let Some(j) = Journal::load(&jpath)? {
        let line = match j.state {
            State::Swapping => {
                journal::rollback(&j)?;
                journal::finish(&j, &jpath)?;
                format!(
                    "an interrupted restore ({}, started {}) was rolled back: the live data is as it was before it",
                    j.what, j.started_at
                )
            }
            State::Committed => {
                journal::finish(&j, &jpath)?;
                format!(
                    "an interrupted restore ({}, started {}) had completed; its leftovers were cleaned up",
                    j.what, j.started_at
                )
            }
        };
        tracing::warn!(what = %j.what, "{line}");
        done.push(line);
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
