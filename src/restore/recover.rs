//! Finishing what a killed restore left behind; run at the start of every
//! command that changes data.

use super::journal::{self, Journal, State};
use crate::config::Config;
use crate::error::{IoContext, Result};
use crate::tag::Tag;

/// Finish what an interrupted restore left: a journal in state `swapping` is
/// rolled back, one in state `committed` is cleaned up; stale staging
/// directories are removed. Returns what was done, one line per action (also
/// printed on stderr). The caller holds the lock.
pub fn recover(config: &Config) -> Result<Vec<String>> {
    let data_dir = &config.data_dir;
    let mut done = Vec::new();
    let jpath = journal::path(data_dir);
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
    {
        let (parent, name) = super::area(data_dir);
        let prefix = format!("{name}.staging-");
        let journal_tmp = format!(".{name}.restore-journal.json.");
        for entry in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with(&journal_tmp) && file.ends_with(".tmp") {
                // A journal write that never reached its rename.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let Some(rest) = file.strip_prefix(&prefix) else {
                continue;
            };
            let stale_staging = Tag::parse(rest).is_some();
            let probe = rest.contains(".xprobe-");
            if stale_staging || probe {
                let path = entry.path();
                std::fs::remove_dir_all(&path).ctx(format!("cannot remove {}", path.display()))?;
                if stale_staging {
                    done.push(format!(
                        "removed the staging directory of an interrupted restore: {}",
                        path.display()
                    ));
                }
            }
        }
    }
    crate::snapshot::clean_stale(&config.backup_dir)?;
    for line in &done {
        eprintln!("lifeboat: {line}");
    }
    Ok(done)
}
