//! Restore: the staged restore of one snapshot (or its dry run), `--undo`,
//! and the list of snapshots to choose from. The pipeline itself is
//! [`crate::restore`]; this module runs it as a recorded run.

use super::Env;
use super::run::{locked, recorded};
use crate::config::Config;
use crate::error::Result;
use crate::restore::{self, RestoreReport, UndoReport};
use crate::tag::Tag;
use std::collections::BTreeMap;

pub use crate::restore::{Options as RestoreOptions, Source};

/// Restore a snapshot (or check it, with `dry_run`), as one recorded run.
pub fn restore(config: &Config, env: &Env, opts: &RestoreOptions) -> Result<RestoreReport> {
    let result = recorded(config, env, "restore", |_| restore::restore(config, opts));
    if let Err(e) = &result {
        tracing::debug!(tag = %opts.tag, kind = ?e.kind, error = %e.message, "restore refused or failed");
    }
    let ok = result.as_ref().ok().map(|(r, _)| r);
    audit(
        opts.tag.to_string(),
        ok.map(|r| r.stage.source.clone()),
        opts.dry_run,
        &result,
        ok.map(|r| r.stage.databases.iter().map(|d| d.name.clone()).collect()),
    );
    result.map(|(report, _)| report)
}

/// Every restore and undo, successful or not (a usage error is not one).
fn audit<T>(
    what: String,
    source: Option<String>,
    dry_run: bool,
    result: &Result<T>,
    databases: Option<Vec<String>>,
) {
    if result.as_ref().is_err_and(|e| e.exit_code() == 2) {
        return;
    }
    crate::audit::log(crate::audit::Event::Restore {
        what,
        source,
        dry_run,
        outcome: result.into(),
        databases: databases.unwrap_or_default(),
        error: result.as_ref().err().map(|e| e.message.clone()),
    });
}

/// Put back the data the last restore replaced, as one recorded run.
pub fn undo(config: &Config, env: &Env, force: bool) -> Result<UndoReport> {
    let result = recorded(config, env, "restore", |_| restore::undo(config, force));
    if let Err(e) = &result {
        tracing::debug!(kind = ?e.kind, error = %e.message, "undo refused or failed");
    }
    let ok = result.as_ref().ok().map(|(r, _)| r);
    audit(
        "undo".into(),
        ok.map(|r| r.restored_from.display().to_string()),
        false,
        &result,
        ok.map(|r| r.databases.clone()),
    );
    result.map(|(report, _)| report)
}

/// One snapshot that could be restored.
#[derive(Debug, serde::Serialize)]
pub struct Available {
    pub tag: Tag,
    pub local: bool,
    pub remote: bool,
    pub bytes: Option<u64>,
}

/// What could be restored, newest first, and why the remote's part may be
/// missing.
#[derive(Debug)]
pub struct Choice {
    pub snapshots: Vec<Available>,
    pub remote_note: Option<String>,
}

/// The snapshots a restore can choose from. Even a listing finishes an
/// interrupted restore first: the data should not stay half-swapped until
/// someone restores again.
pub fn available(config: &Config) -> Result<Choice> {
    // The lock only for the recovery: listing a remote can take a while,
    // and the hourly snapshot must not wait for it.
    locked(config, "restore", || Ok(()))?;
    {
        let mut rows: BTreeMap<Tag, Available> = BTreeMap::new();
        for (tag, path) in config.store().archives()? {
            rows.insert(
                tag,
                Available {
                    tag,
                    local: true,
                    remote: false,
                    bytes: std::fs::metadata(&path).ok().map(|m| m.len()),
                },
            );
        }
        let remote_note = match config.remote().map(crate::remote::open) {
            Some(remote) => match remote.list() {
                Ok(list) => {
                    for s in list.into_iter().filter(|s| !s.draft) {
                        let row = rows.entry(s.tag).or_insert(Available {
                            tag: s.tag,
                            local: false,
                            remote: false,
                            bytes: Some(s.size),
                        });
                        row.remote = true;
                    }
                    None
                }
                Err(e) => Some(format!("cannot list {}: {}", remote.describe(), e.message)),
            },
            None => Some("no remote configured".to_string()),
        };
        Ok(Choice {
            snapshots: rows.into_values().rev().collect(),
            remote_note,
        })
    }
}
