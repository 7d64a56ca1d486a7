//! Drill: a real test restore of the newest remote snapshot (or a chosen
//! one) into a scratch directory, never the live one, through the restore
//! pipeline's own steps 2-6 (the same code a real restore runs before its
//! swap), timed and recorded in `drill.json` so that `health` can tell
//! whether recovery still works and how long it takes. Without a remote,
//! the newest local snapshot is drilled. "Newest" never means a snapshot
//! dated in the future ([`crate::clock::newest_not_in_future`]): those are
//! skipped and named in the record's notes.

use super::Env;
use super::run::drilled;
use crate::config::Config;
use crate::error::{Error, Kind, Result};
use crate::record::{DRILL_VERSION, DrillDatabase, DrillRecord, Outcome};
use crate::restore::stage;
use crate::tag::Tag;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default)]
pub struct DrillOptions {
    /// Drill this snapshot instead of the newest one.
    pub tag: Option<Tag>,
}

/// Run the drill and record it. The record is returned whether the drill
/// passed or not (with the error when it did not); usage errors are not
/// drills and return `Err` with nothing recorded.
pub fn drill(config: &Config, env: &Env, opts: &DrillOptions) -> Result<(DrillRecord, Result<()>)> {
    let started_at = Utc::now();
    let mut record = DrillRecord {
        record_version: DRILL_VERSION,
        outcome: Outcome::Failed,
        tag: None,
        source: "local".into(),
        started_at,
        finished_at: started_at,
        duration_secs: 0.0,
        error: None,
        databases: vec![],
        notes: vec![],
        last_success_at: None,
        last_success_tag: None,
    };
    let result = drilled(config, env, &mut record, |record| {
        drill_into(config, opts.tag, started_at, record)
    });
    match result {
        Err(e) if e.exit_code() == 2 => Err(e),
        result => {
            let tag = record.tag.map(|t| t.to_string()).unwrap_or_default();
            match &result {
                Ok(()) => {
                    tracing::info!(tag, source = %record.source, duration_secs = record.duration_secs, "restore drill succeeded")
                }
                Err(e) => {
                    tracing::debug!(tag, source = %record.source, duration_secs = record.duration_secs, error = %e.message, "restore drill failed");
                    crate::audit::log(crate::audit::Event::VerificationFailed {
                        tag: tag.clone(),
                        source: record.source.clone(),
                        by: "drill".into(),
                        error: e.message.clone(),
                    });
                }
            }
            Ok((record, result))
        }
    }
}

/// Pick and fetch one snapshot, then run steps 2-6 on it, filling in
/// `record`. `now` is the drill's start: what "in the future" is judged by.
fn drill_into(
    config: &Config,
    wanted: Option<Tag>,
    now: DateTime<Utc>,
    record: &mut DrillRecord,
) -> Result<()> {
    // The whole drill lives in its own scratch directory, which the hourly
    // run's stale-file cleanup never touches: the drill needs no lock and
    // never delays a snapshot.
    let scratch = config.store().scratch("drill")?;
    let download = scratch.path().join("download");
    let staged = scratch.path().join("staged");
    crate::fsutil::create_dir_all_private(&download)?;

    let (tag, archive) = match config.remote().map(crate::remote::open) {
        Some(remote) => {
            record.source = remote.describe();
            let tags: Vec<Tag> = remote
                .list()?
                .into_iter()
                .filter(|s| !s.draft)
                .map(|s| s.tag)
                .collect();
            let tag = choose(
                &tags,
                wanted,
                &format!("on {}", record.source),
                now,
                record,
                &config.owner(),
            )?;
            record.tag = Some(tag);
            tracing::info!(%tag, source = %record.source, "drill: downloading");
            (tag, remote.download(&tag, &download)?)
        }
        None => {
            record
                .notes
                .push("no remote configured: drilled the local archive".into());
            let local = config.store().archives()?;
            let tags: Vec<Tag> = local.iter().map(|(t, _)| *t).collect();
            let place = format!("in {}", config.backup_dir.display());
            let tag = choose(&tags, wanted, &place, now, record, &config.owner())?;
            record.tag = Some(tag);
            let path = local
                .into_iter()
                .find(|(t, _)| *t == tag)
                .expect("chosen")
                .1;
            (tag, path)
        }
    };

    let checked = stage::stage_archive(config, &tag, &archive, &staged)?;
    if let Some((_, e)) = checked.failed.into_iter().next() {
        return Err(e);
    }
    record.databases = checked
        .report
        .databases
        .iter()
        .map(|d| DrillDatabase {
            name: d.name.clone(),
            schema_version: d.checked.schema_from,
            restored_schema_version: d.checked.schema_to,
            bytes: std::fs::metadata(staged.join(&d.staged)).map_or(0, |m| m.len()),
            rows: d.checked.rows(),
        })
        .collect();
    for d in &checked.report.databases {
        record.notes.extend(d.checked.notes.iter().cloned());
    }
    record.notes.extend(checked.notes);
    Ok(())
}

/// The snapshot to drill: `wanted` when named (even one dated in the
/// future: asking by name is deliberate), else the newest one not in the
/// future, with the skipped ones noted in the record.
fn choose(
    available: &[Tag],
    wanted: Option<Tag>,
    place: &str,
    now: DateTime<Utc>,
    record: &mut DrillRecord,
    owner: &crate::tag::Owner,
) -> Result<Tag> {
    // Unless one is named, drill this installation's snapshots only: a
    // passing drill of another installation's data would prove nothing.
    let own: Vec<Tag>;
    let available = if wanted.is_some() {
        available
    } else {
        own = owner.latest_pool(available);
        &own
    };
    match wanted {
        Some(t) if available.contains(&t) => Ok(t),
        Some(t) => Err(Error::usage(format!("no snapshot {t} {place}"))
            .with_hint("`lifeboat list` shows the snapshots there are")),
        None if available.is_empty() => Err(Error::new(
            Kind::Refused,
            format!("no snapshot {place} to drill"),
        )
        .with_hint("take and push one with `lifeboat snapshot`")),
        None => {
            let newest = crate::clock::newest_not_in_future(available, now);
            record.notes.extend(newest.notes(now));
            newest.chosen(now, place, "lifeboat drill --tag")
        }
    }
}
