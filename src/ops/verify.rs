//! Verify: check snapshots end to end without touching live data. Each
//! archive (local, or downloaded from the remote) is unpacked into a
//! scratch directory and judged by the restore pipeline's own steps 2-6
//! ([`crate::restore::stage::stage_archive`]: manifest, sha256, migrations,
//! the database checker), so `verify`, `drill` and `restore --dry-run`
//! reach the same verdict on the same archive. `--latest` is the newest
//! snapshot not dated in the future, like the drill's choice
//! ([`crate::clock::newest_not_in_future`]).

use crate::config::Config;
use crate::error::{Error, Result};
use crate::remote::Remote;
use crate::restore::stage::{self, Staged};
use crate::tag::{Owner, Tag};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Which snapshots to check.
#[derive(Debug, Clone)]
pub enum Which {
    Tag(Tag),
    Latest,
    All,
}

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub which: Which,
    /// Check the remote's copies (downloading each) instead of the local ones.
    pub remote: bool,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub snapshots: Vec<Verdict>,
    /// What the choice of snapshots skipped, and why (`--latest` passing
    /// over snapshots dated in the future).
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Verdict {
    pub tag: Tag,
    /// `local` or the remote's description.
    pub source: String,
    pub ok: bool,
    /// Why the archive as a whole was refused (unreadable, altered, a
    /// manifest this code cannot restore).
    pub error: Option<String>,
    pub databases: Vec<DatabaseVerdict>,
    /// Notes about the snapshot as a whole (a configured database it lacks).
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct DatabaseVerdict {
    pub name: String,
    /// The path inside the archive.
    pub path: String,
    /// Size of the database file, as the manifest records it.
    pub bytes: u64,
    pub ok: bool,
    /// `ok`, or why the database checker refused it.
    pub integrity: String,
    /// Schema version in the snapshot, and after the migration ladder
    /// (equal when none ran, or when the check failed before it).
    pub schema_version: i64,
    pub restored_schema_version: i64,
    /// Rows in the tables the manifest counted (after migration).
    pub rows: u64,
    /// Findings that do not refuse (foreign-key rows the snapshot had).
    pub notes: Vec<String>,
}

/// Check the snapshots `opts` names. `Err` only for a usage error (no such
/// snapshot), a remote that cannot be listed, or `--latest` when every
/// snapshot is dated in the future; every other failure is in its
/// snapshot's verdict, so `--all` goes on past a bad one.
pub fn verify(config: &Config, opts: &VerifyOptions) -> Result<VerifyReport> {
    let now = Utc::now();
    let (snapshots, notes): (Vec<Verdict>, Vec<String>) = if opts.remote {
        let remote = config.remote().map(crate::remote::open).ok_or_else(|| {
            Error::usage("--remote: no remote is configured").with_hint(
                "add [remote.dir], [github] or [remote.rclone] to the config, or drop --remote",
            )
        })?;
        let mut listed: Vec<Tag> = remote
            .list()?
            .into_iter()
            .filter(|s| !s.draft)
            .map(|s| s.tag)
            .collect();
        listed.sort();
        let place = format!("on {}", remote.describe());
        let (chosen, notes) = select(&listed, &opts.which, &place, now, &config.owner())?;
        let verdicts = chosen
            .into_iter()
            .map(|tag| {
                check_one(config, &tag, &remote.describe(), |dir| {
                    download(remote.as_ref(), &tag, dir)
                })
            })
            .collect();
        (verdicts, notes)
    } else {
        let local = config.store().archives()?;
        let tags: Vec<Tag> = local.iter().map(|(t, _)| *t).collect();
        let place = format!("in {}", config.backup_dir.display());
        let (chosen, notes) = select(&tags, &opts.which, &place, now, &config.owner())?;
        let verdicts = chosen
            .into_iter()
            .map(|tag| {
                let path = local
                    .iter()
                    .find(|(t, _)| *t == tag)
                    .expect("selected")
                    .1
                    .clone();
                check_one(config, &tag, "local", |_| Ok(path))
            })
            .collect();
        (verdicts, notes)
    };
    Ok(VerifyReport {
        ok: snapshots.iter().all(|v| v.ok),
        snapshots,
        notes,
    })
}

fn download(remote: &dyn Remote, tag: &Tag, dir: &Path) -> Result<PathBuf> {
    remote.download(tag, dir)
}

/// Pick the tags `which` asks for from `available` (sorted oldest first)
/// and return them newest first, with notes on what the choice skipped.
/// `Latest` is the newest snapshot not dated in the future as of `now`; a
/// named tag or `All` includes future-dated ones (asked for by name, or
/// every one).
pub fn select(
    available: &[Tag],
    which: &Which,
    place: &str,
    now: DateTime<Utc>,
    owner: &Owner,
) -> Result<(Vec<Tag>, Vec<String>)> {
    if let Which::Tag(tag) = which {
        if !available.contains(tag) {
            return Err(Error::usage(format!("no snapshot {tag} {place}"))
                .with_hint("`lifeboat list` shows the snapshots there are"));
        }
        return Ok((vec![*tag], vec![]));
    }
    // `--latest` and `--all` judge this installation's snapshots (and the
    // unnamed ones); another installation's are verified by name.
    let own: Vec<Tag> = match which {
        Which::Latest => owner.latest_pool(available),
        _ => available
            .iter()
            .copied()
            .filter(|t| owner.sees(t))
            .collect(),
    };
    let available = own.as_slice();
    if available.is_empty() {
        return Err(
            Error::usage(format!("there are no snapshots {place}")).with_hint(
                "take one with `lifeboat snapshot`; verify --remote checks the remote's copies",
            ),
        );
    }
    Ok(match which {
        Which::All => (available.iter().rev().copied().collect(), vec![]),
        _ => {
            let newest = crate::clock::newest_not_in_future(available, now);
            let tag = newest.chosen(now, place, "lifeboat verify")?;
            (vec![tag], newest.notes(now))
        }
    })
}

/// Fetch (a local path, or a download into the scratch directory) and check
/// one snapshot.
fn check_one(
    config: &Config,
    tag: &Tag,
    source: &str,
    fetch: impl FnOnce(&Path) -> Result<PathBuf>,
) -> Verdict {
    let mut verdict = Verdict {
        tag: *tag,
        source: source.to_string(),
        ok: false,
        error: None,
        databases: vec![],
        notes: vec![],
    };
    let result = (|| {
        let scratch = config.store().scratch("verify")?;
        let download = scratch.path().join("download");
        let unpacked = scratch.path().join("unpacked");
        crate::fsutil::create_dir_all_private(&download)?;
        let archive = fetch(&download)?;
        stage::stage_archive(config, tag, &archive, &unpacked)
    })();
    match result {
        Ok(staged) => {
            verdict.ok = staged.failed.is_empty();
            verdict.notes = staged.notes.clone();
            verdict.databases = database_verdicts(staged);
        }
        Err(e) => verdict.error = Some(e.to_string()),
    }
    if verdict.ok {
        tracing::info!(%tag, source, "snapshot verified");
    } else {
        let failed = verdict.databases.iter().find(|d| !d.ok);
        crate::audit::log(crate::audit::Event::VerificationFailed {
            tag: tag.to_string(),
            source: source.to_string(),
            by: "verify".into(),
            error: verdict
                .error
                .clone()
                .or_else(|| failed.map(|d| d.integrity.clone()))
                .unwrap_or_default(),
        });
        tracing::info!(%tag, source, error = verdict.error.as_deref().unwrap_or("database check failed"), "snapshot failed verification");
    }
    verdict
}

/// One verdict per database of the manifest, in its order.
fn database_verdicts(staged: Staged) -> Vec<DatabaseVerdict> {
    let Staged {
        report,
        failed,
        manifest,
        ..
    } = staged;
    manifest
        .databases
        .iter()
        .map(|entry| {
            let mut v = DatabaseVerdict {
                name: entry.name.clone(),
                path: entry.path.clone(),
                bytes: entry.bytes,
                ok: false,
                integrity: String::new(),
                schema_version: entry.schema_version,
                restored_schema_version: entry.schema_version,
                rows: 0,
                notes: vec![],
            };
            if let Some(d) = report.databases.iter().find(|d| d.name == entry.name) {
                v.ok = true;
                v.integrity = "ok".into();
                v.restored_schema_version = d.checked.schema_to;
                v.rows = d.checked.rows();
                v.notes = d.checked.notes.clone();
            } else if let Some((_, e)) = failed.iter().find(|(n, _)| *n == entry.name) {
                v.integrity = e.message.clone();
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::Kind;
    use chrono::TimeDelta;

    #[test]
    fn latest_is_the_newest_not_in_the_future() {
        let now: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
        let tag = |hours| Tag::new(now + TimeDelta::hours(hours), Kind::Scheduled);
        let (old, real, future) = (tag(-3), tag(-1), tag(6));
        let available = [old, real, future];
        let me = Owner {
            installation: None,
            adopt_unnamed: false,
        };

        let (chosen, notes) = select(&available, &Which::Latest, "in /b", now, &me).unwrap();
        assert_eq!(chosen, vec![real]);
        assert_eq!(notes.len(), 1);
        assert!(notes[0].starts_with(&format!("skipped {future}: dated 6h in the future")));

        // Every one, or one by name: the future-dated one too, without notes.
        let (all, notes) = select(&available, &Which::All, "in /b", now, &me).unwrap();
        assert_eq!((all, notes.len()), (vec![future, real, old], 0));
        let (named, _) = select(&available, &Which::Tag(future), "in /b", now, &me).unwrap();
        assert_eq!(named, vec![future]);

        let e = select(&[future], &Which::Latest, "in /b", now, &me).unwrap_err();
        assert!(
            e.message
                .contains("every snapshot in /b is dated in the future")
        );
        assert_eq!(e.exit_code(), 1, "a refusal, not a usage error");
    }

    #[test]
    fn latest_and_all_are_this_installations_unless_named() {
        let now: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
        let at = |hours| Tag::new(now + TimeDelta::hours(hours), Kind::Scheduled);
        let a = crate::tag::Installation::parse("a");
        let b = crate::tag::Installation::parse("b");
        let (unnamed, mine, theirs) = (at(-3), at(-2).of(a), at(-1).of(b));
        let available = [unnamed, mine, theirs];
        let me = Owner {
            installation: a,
            adopt_unnamed: false,
        };
        let (chosen, _) = select(&available, &Which::Latest, "in /b", now, &me).unwrap();
        assert_eq!(chosen, vec![mine], "not b's newer one");
        let (all, _) = select(&available, &Which::All, "in /b", now, &me).unwrap();
        assert_eq!(all, vec![mine, unnamed]);
        let (named, _) = select(&available, &Which::Tag(theirs), "in /b", now, &me).unwrap();
        assert_eq!(named, vec![theirs]);
        // A neighbour's unnamed snapshot newer than this installation's own
        // is not "latest": it cannot be this one's.
        let newer_unnamed = Tag::new(now - TimeDelta::minutes(30), Kind::Scheduled);
        let (chosen, _) = select(
            &[unnamed, mine, theirs, newer_unnamed],
            &Which::Latest,
            "in /b",
            now,
            &me,
        )
        .unwrap();
        assert_eq!(chosen, vec![mine]);
    }
}
