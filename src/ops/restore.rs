//! Restore: the staged restore of one snapshot (or its dry run), `--undo`,
//! and the list of snapshots to choose from. The pipeline itself is
//! [`crate::restore`]; this module runs it as a recorded run.

use super::Env;
use super::run::{locked, recorded};
use crate::config::Config;
use crate::error::{Error, Kind, Result};
use crate::restore::{self, RestoreReport, UndoReport};
use crate::tag::{Installation, Scope, Tag};
use std::collections::BTreeMap;
use std::path::PathBuf;

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

/// Which snapshot a restore takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Tag(Tag),
    /// The newest not dated in the future ([`latest`]).
    Latest,
}

/// `lifeboat restore TAG|latest` with its conveniences.
#[derive(Debug, Clone)]
pub struct Request {
    pub which: Which,
    pub source: Source,
    pub only: Option<String>,
    pub dry_run: bool,
    pub force: bool,
    pub keep_staging: bool,
    pub to: Option<PathBuf>,
    /// Restore only when none of the configured databases (or `only`)
    /// exists live.
    pub if_missing: bool,
    /// With `latest`: no snapshot anywhere is a success (a first boot).
    pub allow_empty: bool,
    /// Restore a snapshot of this other installation (moving an
    /// installation to a new name); without it, only this installation's
    /// snapshots (and unnamed ones) are restored.
    pub installation: Option<Installation>,
}

/// What a [`Request`] came to.
#[derive(Debug)]
pub enum Outcome {
    /// A restore ran (or its dry run); `notes` say what "latest" passed over.
    Restored {
        report: Box<RestoreReport>,
        notes: Vec<String>,
    },
    /// `--if-missing` and these live databases exist: nothing was done (not
    /// a run: nothing is recorded).
    AlreadyPresent(Vec<PathBuf>),
    /// `latest --allow-empty` and there is no snapshot at all: nothing was
    /// done (not a run).
    NoSnapshot { notes: Vec<String> },
}

/// Run a [`Request`]: check `--if-missing`, resolve `latest`, then
/// [`restore`] (one recorded run). "Nothing to do" (databases present, or
/// no snapshot with `allow_empty`) records nothing. No snapshot at all
/// without `allow_empty` is an error (exit 1), not recorded either: no
/// restore was attempted.
pub fn request(config: &Config, env: &Env, req: &Request) -> Result<Outcome> {
    if req.to.is_none() {
        crate::restore::check_data_dir(&config.data_dir)?;
    }
    if req.if_missing {
        let present = existing_databases(config, req.only.as_deref())?;
        if !present.is_empty() {
            return Ok(Outcome::AlreadyPresent(present));
        }
    }
    let scope = match req.installation {
        Some(name) => Scope::Of(name),
        None => Scope::Own,
    };
    let (tag, notes) = match req.which {
        Which::Tag(tag) if !scope.admits(&config.owner(), &tag) => {
            let mut e = not_ours(config, &tag);
            if let Some(asked) = req.installation {
                e.message
                    .push_str(&format!(" (--installation {asked} names another one)"));
            }
            return Err(e);
        }
        Which::Tag(tag) => (tag, vec![]),
        Which::Latest => {
            let latest = latest(config, req.source, scope)?;
            match latest.tag {
                Some(tag) => (tag, latest.notes),
                None if req.allow_empty => {
                    return Ok(Outcome::NoSnapshot {
                        notes: latest.notes,
                    });
                }
                None => {
                    return Err(Error::refused(
                        "there is no snapshot to restore: none in backup_dir, none on the remote",
                    )
                    .with_hint(
                        "on a first boot, add --allow-empty to succeed when there is nothing to restore",
                    ));
                }
            }
        }
    };
    let opts = RestoreOptions {
        tag,
        source: req.source,
        only: req.only.clone(),
        dry_run: req.dry_run,
        force: req.force,
        keep_staging: req.keep_staging,
        to: req.to.clone(),
    };
    let report = restore(config, env, &opts)?;
    Ok(Outcome::Restored {
        report: Box::new(report),
        notes,
    })
}

/// The refusal of a snapshot another installation took: restoring its data
/// over this installation's is a mistake unless asked for by name.
fn not_ours(config: &Config, tag: &Tag) -> Error {
    let theirs = tag
        .installation()
        .map_or("no installation (an unnamed snapshot)".to_string(), |n| {
            format!("installation `{n}`")
        });
    let ours = config
        .installation
        .map_or("has no installation name".to_string(), |n| {
            format!("is installation `{n}`")
        });
    let hint = match tag.installation() {
        Some(n) => format!(
            "to restore another installation's data here (moving it to a new name), add \
             --installation {n}; `lifeboat list --all` shows every installation's snapshots"
        ),
        None => "an unnamed snapshot is restored without --installation".to_string(),
    };
    Error::usage(format!(
        "snapshot {tag} was taken by {theirs}, and this configuration {ours}"
    ))
    .with_hint(hint)
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

/// "latest": the newest snapshot the restore could take from `source`,
/// not counting snapshots dated in the future by this machine's clock
/// ([`crate::clock::newest_not_in_future`], the choice `drill` and `verify
/// --latest` make).
#[derive(Debug)]
pub struct Latest {
    /// `None` when there is no snapshot at all (and the listing succeeded).
    pub tag: Option<Tag>,
    /// The future-dated tags passed over, and a remote that could not be
    /// listed when local snapshots were found.
    pub notes: Vec<String>,
}

/// Find "latest" for a restore from `source`. When the remote cannot be
/// listed and nothing local exists, that is an error, never "no snapshot":
/// `--if-missing --allow-empty` must not start a fresh machine with empty
/// databases because the network was down.
pub fn latest(config: &Config, source: Source, scope: Scope) -> Result<Latest> {
    let now = chrono::Utc::now();
    let choice = available(config, scope)?;
    // The remotes `source` takes from: every one, none, or the named one.
    let first = config.remote().map(|r| r.kind());
    let named = match source {
        Source::Github => Some("github"),
        Source::Dir => Some("dir"),
        Source::Rclone => Some("rclone"),
        Source::Remote => first,
        Source::Auto | Source::Local => None,
    };
    let tags: Vec<Tag> = choice
        .snapshots
        .iter()
        .filter(|a| match (source, named) {
            (Source::Auto, _) => true,
            (Source::Local, _) => a.local,
            (_, Some(name)) => a.on.contains(&name),
            (_, None) => false,
        })
        .map(|a| a.tag)
        .collect();
    let tags = match scope {
        Scope::Own => config.owner().latest_pool(&tags),
        _ => tags,
    };
    // A remote that could not be listed may hold a newer snapshot (or the
    // only one): with nothing else to choose from, or when it is the one
    // asked for, that is an error, never "no snapshot" (`--if-missing
    // --allow-empty` must not start a fresh machine with empty databases
    // because a drive was unplugged); otherwise a note.
    let failed: Vec<&String> = choice
        .failed
        .iter()
        .filter(|(name, _)| match source {
            Source::Auto => true,
            Source::Local => false,
            _ => Some(*name) == named,
        })
        .map(|(_, why)| why)
        .collect();
    if !failed.is_empty() && (tags.is_empty() || source != Source::Auto) {
        let why: Vec<&str> = failed.iter().map(|s| s.as_str()).collect();
        return Err(Error::new(Kind::RemoteTransient, why.join("; ")).with_hint(
            "check the remote with `lifeboat doctor`, or restore from another source with --from",
        ));
    }
    let newest = crate::clock::newest_not_in_future(&tags, now);
    let mut notes = newest.notes(now);
    if tags.is_empty() {
        return Ok(Latest { tag: None, notes });
    }
    let place = match source {
        Source::Local => "in backup_dir",
        Source::Auto => "locally or on the remote",
        _ => "on the remote",
    };
    let tag = newest.chosen(now, place, "lifeboat restore")?;
    for why in failed {
        notes.push(format!(
            "{why}: chose among the snapshots the other sources hold"
        ));
    }
    Ok(Latest {
        tag: Some(tag),
        notes,
    })
}

/// `--if-missing`: the configured databases (all, or `only`) that exist
/// live. A restore with `--if-missing` goes ahead only when this is empty.
pub fn existing_databases(config: &Config, only: Option<&str>) -> Result<Vec<PathBuf>> {
    let dbs = match only {
        Some(name) => vec![config.database(name)?],
        None => config.databases.iter().collect(),
    };
    Ok(dbs
        .into_iter()
        .map(|d| d.live_path(&config.data_dir))
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .collect())
}

/// One snapshot that could be restored.
#[derive(Debug, serde::Serialize)]
pub struct Available {
    pub tag: Tag,
    pub local: bool,
    pub remote: bool,
    /// The remotes holding it, by name.
    pub on: Vec<&'static str>,
    pub bytes: Option<u64>,
}

/// What could be restored, newest first, and why the remote's part may be
/// missing.
#[derive(Debug)]
pub struct Choice {
    pub snapshots: Vec<Available>,
    /// The remotes that could not be listed: (name, why).
    pub failed: Vec<(&'static str, String)>,
}

/// Finish (or roll back) an interrupted restore, under the lock, and do
/// nothing else: what even a listing of restore points does first.
pub fn recover_only(config: &Config) -> Result<()> {
    crate::restore::check_data_dir(&config.data_dir)?;
    locked(config, "restore", || Ok(()))
}

/// The snapshots a restore can choose from. Even a listing finishes an
/// interrupted restore first: the data should not stay half-swapped until
/// someone restores again.
pub fn available(config: &Config, scope: Scope) -> Result<Choice> {
    // The lock only for the recovery: listing a remote can take a while,
    // and the hourly snapshot must not wait for it.
    locked(config, "restore", || Ok(()))?;
    let owner = config.owner();
    {
        let mut rows: BTreeMap<Tag, Available> = BTreeMap::new();
        for (tag, path) in config.store().archives()? {
            if !scope.admits(&owner, &tag) {
                continue;
            }
            rows.insert(
                tag,
                Available {
                    tag,
                    local: true,
                    remote: false,
                    on: vec![],
                    bytes: std::fs::metadata(&path).ok().map(|m| m.len()),
                },
            );
        }
        // Every remote's listing; "cannot list" only when none could be
        // listed (one that is down does not hide what the others have).
        let remotes = crate::remote::open_all(config);
        let mut failures = Vec::new();
        for remote in &remotes {
            match remote.list() {
                Ok(list) => {
                    for s in list
                        .into_iter()
                        .filter(|s| !s.draft && scope.admits(&owner, &s.tag))
                    {
                        let row = rows.entry(s.tag).or_insert(Available {
                            tag: s.tag,
                            local: false,
                            remote: false,
                            on: vec![],
                            bytes: Some(s.size),
                        });
                        row.remote = true;
                        row.on.push(remote.name());
                    }
                }
                Err(e) => {
                    tracing::warn!(remote = %remote.describe(), error = %e.message, "cannot list the remote");
                    failures.push((
                        remote.name(),
                        format!("cannot list {}: {}", remote.describe(), e.message),
                    ));
                }
            }
        }
        Ok(Choice {
            snapshots: rows.into_values().rev().collect(),
            failed: failures,
        })
    }
}
