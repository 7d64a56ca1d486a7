//! `lifeboat drill`: a real test restore of the newest remote snapshot into
//! a scratch directory, never the live one, through the restore pipeline's
//! own staging steps (the same code a real restore runs before its swap),
//! timed and recorded in `drill.json` so that `health` can tell whether
//! recovery still works and how long it takes.

use super::Global;
use crate::config::Config;
use crate::drill::{DRILL_VERSION, DrillDatabase, DrillRecord, Outcome};
use crate::error::{Error, Kind, Result};
use crate::remote;
use crate::restore::{self, Source};
use crate::snapshot;
use crate::tag::Tag;
use crate::verify;
use chrono::Utc;
use std::time::Instant;

/// Restore the newest remote snapshot (or --tag) into a scratch directory
/// and check it: download, archive checks, sha256, migrations,
/// integrity_check, foreign keys, row counts. Records the outcome and the
/// measured recovery time in drill.json.
///
/// Without a remote, the newest local snapshot is drilled instead.
#[derive(Debug, clap::Args)]
pub struct DrillArgs {
    /// Drill this snapshot instead of the newest one.
    #[arg(long, value_name = "TAG")]
    pub tag: Option<String>,
}

pub fn run(global: &Global, args: DrillArgs) -> Result<i32> {
    let config = global.load_config()?;
    let wanted = match &args.tag {
        Some(s) => Some(Tag::parse(s).ok_or_else(|| {
            Error::usage(format!("`{s}` is not a snapshot tag"))
                .with_hint("tags look like snap-20261122T014500Z; `lifeboat list` shows them")
        })?),
        None => None,
    };
    let path = config.drill_path();
    let previous = DrillRecord::load(&path).ok().flatten();
    let started_at = Utc::now();
    let clock = Instant::now();
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
    let result = drill(&config, wanted, &mut record);
    record.finished_at = Utc::now();
    record.duration_secs = clock.elapsed().as_secs_f64();
    match &result {
        // Asking for a tag that does not exist is a typo, not a failed drill.
        Err(e) if matches!(e.kind, Kind::Usage | Kind::Config) => return result.map(|()| 0),
        Err(e) => record.error = Some(e.into()),
        Ok(()) => record.outcome = Outcome::Success,
    }
    let record = record.save(previous.as_ref(), &path)?;
    crate::metrics::refresh_if_configured(&config, global);

    let tag = record.tag.map(|t| t.to_string()).unwrap_or_default();
    match &result {
        Ok(()) => {
            tracing::info!(tag, source = %record.source, duration_secs = record.duration_secs, "restore drill succeeded")
        }
        Err(e) => {
            tracing::error!(tag, source = %record.source, duration_secs = record.duration_secs, error = %e.message, "restore drill failed")
        }
    }
    if global.json {
        global.print_json(&record);
    } else if result.is_ok() {
        println!(
            "drill OK: {tag} from {} restored into a scratch directory and checked in {:.1}s",
            record.source, record.duration_secs
        );
        for d in &record.databases {
            let schema = if d.restored_schema_version == d.schema_version {
                format!("v{}", d.schema_version)
            } else {
                format!("v{} -> v{}", d.schema_version, d.restored_schema_version)
            };
            println!(
                "  {:<12} schema {schema:<10} {:>10} bytes {:>8} rows",
                d.name, d.bytes, d.rows
            );
        }
        for n in &record.notes {
            println!("  note: {n}");
        }
    }
    result.map(|()| 0)
}

/// Pick and fetch one snapshot, then run the restore pipeline's steps 1-6
/// (archive checks, unpack, migrations, integrity, row counts) on it,
/// filling in `record`.
fn drill(config: &Config, wanted: Option<Tag>, record: &mut DrillRecord) -> Result<()> {
    let scratch = verify::scratch_dir(&config.backup_dir, "drill")?;
    let download = scratch.path().join("download");
    let staged = scratch.path().join("staged");
    crate::fsutil::create_dir_all_private(&download)?;

    // The pipeline reads the archive as a local one. A downloaded archive is
    // handed to it through a config whose backup_dir is the scratch
    // download directory: the whole drill then lives in its own scratch
    // directory, which the hourly run's stale-file cleanup never touches, so
    // the drill needs no lock and never delays a snapshot.
    let mut from = config.clone();
    let tag = match remote::from_config(config)? {
        Some(remote) => {
            record.source = remote.describe();
            let mut tags: Vec<Tag> = remote
                .list()?
                .into_iter()
                .filter(|s| !s.draft)
                .map(|s| s.tag)
                .collect();
            tags.sort();
            let tag = choose(&tags, wanted, &record.source)?;
            record.tag = Some(tag);
            tracing::info!(%tag, source = %record.source, "drill: downloading");
            remote.download(&tag, &download)?;
            from.backup_dir = download.clone();
            tag
        }
        None => {
            record
                .notes
                .push("no remote configured: drilled the local archive".into());
            let tags: Vec<Tag> = snapshot::list_local(&config.backup_dir)?
                .into_iter()
                .map(|(t, _)| t)
                .collect();
            let tag = choose(&tags, wanted, "local")?;
            record.tag = Some(tag);
            tag
        }
    };

    let report = restore::stage_and_check(&from, &tag, Source::Local, &staged, None)?;
    record.databases = report
        .databases
        .iter()
        .map(|d| DrillDatabase {
            name: d.name.clone(),
            schema_version: d.schema_from,
            restored_schema_version: d.schema_to,
            bytes: std::fs::metadata(staged.join(&d.staged)).map_or(0, |m| m.len()),
            rows: d.row_counts.iter().filter_map(|r| r.found).sum(),
        })
        .collect();
    Ok(())
}

fn choose(available: &[Tag], wanted: Option<Tag>, place: &str) -> Result<Tag> {
    match wanted {
        Some(t) if available.contains(&t) => Ok(t),
        Some(t) => Err(Error::usage(format!("no snapshot {t} on {place}"))
            .with_hint("`lifeboat list` shows the snapshots there are")),
        None => available.last().copied().ok_or_else(|| {
            Error::new(Kind::Refused, format!("no snapshot on {place} to drill"))
                .with_hint("take and push one with `lifeboat snapshot`")
        }),
    }
}
