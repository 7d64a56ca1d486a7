//! List: every snapshot, local and remote, newest first, with what is
//! needed to pick a restore point: when, what kind, how big, where, and
//! (for local ones, from the manifest) the databases and their schema
//! versions. Ages are what this machine's clock makes them: a snapshot
//! dated in the future has a negative age and is flagged, never shown as
//! "0s" old.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::remote::RemoteSnapshot;
use crate::snapshot::archive;
use crate::tag::{Kind, Owner, Scope, Tag};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only the local archives.
    pub local_only: bool,
    /// Only the remote's snapshots (an error when none is configured).
    pub remote_only: bool,
    /// Only snapshots taken at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only snapshots taken at or before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Whose snapshots: this installation's (and unnamed ones) by default.
    pub scope: Scope,
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub tag: Tag,
    pub kind: Kind,
    pub taken: DateTime<Utc>,
    /// Seconds since `taken` by this machine's clock; negative for a tag
    /// dated in the future.
    pub age_secs: i64,
    /// Dated further in the future than [`crate::clock::ALLOWED_SKEW`]: a
    /// clock was ahead when it was taken, or the tag was planted. `drill`
    /// and `verify --latest` skip it.
    pub future: bool,
    /// The archive's size (the local file's when both exist).
    pub size: u64,
    /// `local`, `remote` or `both`.
    #[serde(rename = "where")]
    pub place: &'static str,
    /// Every place holding it: `local`, then each remote by name (`dir`,
    /// `github`, `rclone`) in the configuration's order.
    pub on: Vec<String>,
    pub local: Option<LocalCopy>,
    pub remote: Option<RemoteSnapshot>,
}

#[derive(Debug, Serialize)]
pub struct LocalCopy {
    pub path: PathBuf,
    pub bytes: u64,
    pub databases: Vec<DatabaseSummary>,
    /// A manual snapshot's `backup-now --reason`, from its manifest.
    pub reason: Option<String>,
    /// Why the manifest could not be read (the archive is damaged).
    pub manifest_error: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct DatabaseSummary {
    pub name: String,
    pub schema_version: i64,
    pub bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Listing {
    pub snapshots: Vec<Row>,
    /// Set when the remote could not be listed (only local ones are shown).
    pub remote_error: Option<String>,
}

/// The snapshots `opts` asks for, newest first. A remote that cannot be
/// listed is a warning (in `remote_error`) unless only the remote was asked.
pub fn list(config: &Config, opts: &ListOptions) -> Result<Listing> {
    let now = Utc::now();
    let owner = config.owner();
    let mut local = BTreeMap::new();
    if !opts.remote_only {
        for (tag, path) in config.store().archives()? {
            if wanted(opts, &owner, &tag) {
                local.insert(tag, describe_local(&tag, path));
            }
        }
    }
    let mut remote_error = None;
    // Per tag: the first remote's listing, and every remote holding it.
    let mut remote_rows: BTreeMap<Tag, RemoteSnapshot> = BTreeMap::new();
    let mut holders: BTreeMap<Tag, Vec<String>> = BTreeMap::new();
    if !opts.local_only {
        let remotes = crate::remote::open_all(config);
        if remotes.is_empty() && opts.remote_only {
            return Err(Error::usage("--remote: no remote is configured")
                .with_hint("add [remote.dir], [github] or [remote.rclone] to the config"));
        }
        let mut failures = Vec::new();
        for remote in &remotes {
            match remote.list() {
                Ok(list) => {
                    for s in list.into_iter().filter(|s| wanted(opts, &owner, &s.tag)) {
                        holders
                            .entry(s.tag)
                            .or_default()
                            .push(remote.name().to_string());
                        remote_rows.entry(s.tag).or_insert(s);
                    }
                }
                Err(e) => {
                    tracing::debug!(remote = %remote.describe(), error = %e, "cannot list the remote");
                    failures.push((remote.describe(), e));
                }
            }
        }
        // Only the remotes asked for, and every one failed: that is the answer.
        if opts.remote_only && failures.len() == remotes.len() && !failures.is_empty() {
            return Err(failures.remove(0).1);
        }
        if !failures.is_empty() {
            remote_error = Some(
                failures
                    .iter()
                    .map(|(r, e)| format!("{r}: {}", e.message))
                    .collect::<Vec<_>>()
                    .join("; "),
            );
        }
    }

    let mut tags: Vec<Tag> = local.keys().chain(remote_rows.keys()).copied().collect();
    tags.sort_by(|a, b| b.cmp(a));
    tags.dedup();
    let rows: Vec<Row> = tags
        .into_iter()
        .map(|tag| {
            let l = local.remove(&tag);
            let r = remote_rows.remove(&tag);
            Row {
                tag,
                kind: tag.kind(),
                taken: tag.time(),
                age_secs: (now - tag.time()).num_seconds(),
                future: crate::clock::ahead(tag.time(), now).is_some(),
                size: l
                    .as_ref()
                    .map_or_else(|| r.as_ref().map_or(0, |r| r.size), |l| l.bytes),
                place: match (&l, &r) {
                    (Some(_), Some(_)) => "both",
                    (Some(_), None) => "local",
                    _ => "remote",
                },
                on: l
                    .as_ref()
                    .map(|_| "local".to_string())
                    .into_iter()
                    .chain(holders.remove(&tag).unwrap_or_default())
                    .collect(),
                local: l,
                remote: r,
            }
        })
        .collect();

    Ok(Listing {
        snapshots: rows,
        remote_error,
    })
}

fn wanted(opts: &ListOptions, owner: &Owner, tag: &Tag) -> bool {
    opts.scope.admits(owner, tag)
        && opts.kind.is_none_or(|k| tag.kind() == k)
        && opts.since.is_none_or(|s| tag.time() >= s)
        && opts.until.is_none_or(|u| tag.time() <= u)
}

fn describe_local(tag: &Tag, path: PathBuf) -> LocalCopy {
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let manifest = archive::read_manifest(&path, Some(tag)).map(|r| r.manifest);
    let reason = manifest.as_ref().ok().and_then(|m| m.reason.clone());
    let (databases, manifest_error) = match manifest {
        Ok(m) => (
            m.databases
                .iter()
                .map(|d| DatabaseSummary {
                    name: d.name.clone(),
                    schema_version: d.schema_version,
                    bytes: d.bytes,
                })
                .collect(),
            None,
        ),
        Err(e) => (vec![], Some(e.message)),
    };
    LocalCopy {
        path,
        bytes,
        databases,
        reason,
        manifest_error,
    }
}
