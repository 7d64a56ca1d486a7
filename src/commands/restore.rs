//! `lifeboat restore <tag>`: the staged restore, `--dry-run`, `--undo`, and
//! (with no tag) the list of snapshots to choose from.

use super::Global;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::restore::{self, Options, RestoreReport, Source, UndoReport};
use crate::runrecord::RunRecord;
use crate::tag::Tag;
use std::collections::BTreeMap;

/// Restore a snapshot: verify, unpack into a staging directory, migrate,
/// check, and only then swap it in, keeping the previous data for `--undo`.
///
/// Without a tag, lists the available snapshots (local and remote) and exits 2.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The snapshot to restore, e.g. snap-20261122T014500Z.
    #[arg(value_name = "TAG", conflicts_with = "undo")]
    pub tag: Option<String>,
    /// Where to take the archive from (default: the local copy if present
    /// and intact, else the configured remote).
    #[arg(long, value_enum, value_name = "SOURCE")]
    pub from: Option<FromArg>,
    /// Restore only this database; the others stay as they are.
    #[arg(long, value_name = "NAME")]
    pub db: Option<String>,
    /// Run every check (download, verify, unpack, migrate, integrity, row
    /// counts) and stop before touching live data.
    #[arg(long, conflicts_with = "undo")]
    pub dry_run: bool,
    /// Restore even if a live database seems to be in use.
    #[arg(long)]
    pub force: bool,
    /// Keep the staging directory when the restore stops before the swap.
    #[arg(long)]
    pub keep_staging: bool,
    /// Put back the data the last restore replaced.
    #[arg(long, conflicts_with_all = ["from", "db"])]
    pub undo: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FromArg {
    Local,
    Github,
    Dir,
}

pub fn run(global: &Global, args: RestoreArgs) -> Result<i32> {
    let config = global.load_config()?;
    if args.tag.is_none() && !args.undo {
        // Even a listing finishes an interrupted restore first: the data
        // should not stay half-swapped until someone restores again.
        let lock = Lock::acquire(&config.backup_dir, "restore", config.snapshot.lock_timeout)?;
        restore::recover(&config)?;
        drop(lock);
        return list_available(global, &config);
    }
    let started = chrono::Utc::now();
    let record_path = config.last_run_path();
    let previous = RunRecord::load(&record_path).ok().flatten();
    let record = RunRecord::start("restore", started);
    let outcome = (|| {
        let _lock = Lock::acquire(&config.backup_dir, "restore", config.snapshot.lock_timeout)?;
        restore::recover(&config)?;
        if args.undo {
            return restore::undo(&config, args.force).map(Done::Undo);
        }
        let raw = args.tag.as_deref().unwrap_or_default();
        let tag = Tag::parse(raw).ok_or_else(|| {
            Error::usage(format!("`{raw}` is not a snapshot tag"))
                .with_hint("tags look like snap-20261122T014500Z; `lifeboat restore` lists them")
        })?;
        let opts = Options {
            tag,
            source: match args.from {
                None => Source::Auto,
                Some(FromArg::Local) => Source::Local,
                Some(FromArg::Github) => Source::Github,
                Some(FromArg::Dir) => Source::Dir,
            },
            only: args.db.clone(),
            dry_run: args.dry_run,
            force: args.force,
            keep_staging: args.keep_staging,
        };
        restore::restore(&config, &opts).map(Done::Restore)
    })();
    if let Err(e) = &outcome {
        tracing::error!(
            tag = args.tag.as_deref().unwrap_or("--undo"),
            kind = ?e.kind,
            error = %e.message,
            "restore refused or failed"
        );
    }
    record.finish(
        outcome.as_ref().map(|_| ()),
        previous.as_ref(),
        &record_path,
    )?;
    match outcome? {
        Done::Restore(r) if global.json => global.print_json(&r),
        Done::Undo(u) if global.json => global.print_json(&u),
        Done::Restore(r) => print_restore(&config, &r),
        Done::Undo(u) => print_undo(&u),
    }
    Ok(0)
}

enum Done {
    Restore(RestoreReport),
    Undo(UndoReport),
}

pub(crate) fn print_restore(config: &Config, r: &RestoreReport) {
    let s = &r.stage;
    println!(
        "{} {} (taken {} on {})",
        if r.dry_run { "dry run of" } else { "restored" },
        s.tag,
        s.snapshot_ts
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        s.host
    );
    println!("source: {}", s.source);
    for db in &s.databases {
        let migrations = if db.migrations.is_empty() {
            "no migrations needed".to_string()
        } else {
            let files: Vec<&str> = db.migrations.iter().map(|m| m.file.as_str()).collect();
            format!("migrated with {}", files.join(", "))
        };
        println!(
            "database {}: schema v{} -> v{} ({migrations}); {} ok; foreign_key_check ok",
            db.name, db.schema_from, db.schema_to, db.check
        );
    }
    println!("row counts (expected from the manifest, found after migration):");
    for db in &s.databases {
        print!("{}", restore::checks::render(&db.name, &db.row_counts));
    }
    if r.dry_run {
        println!(
            "dry run: every check passed; live data in {} was not touched",
            config.data_dir.display()
        );
        if let Some(k) = &r.kept_staging {
            println!("staged copy kept in {}", k.display());
        }
        return;
    }
    if let Some(mode) = r.mode {
        let how = match mode {
            restore::swap::Mode::WholeDirectory => "one atomic directory exchange",
            restore::swap::Mode::PerFile => "journaled per-file renames",
        };
        println!("swapped into {} by {how}", config.data_dir.display());
    }
    match &r.pre_restore {
        Some(p) => {
            println!("the previous data is kept in {}", p.display());
            println!("to undo: lifeboat restore --undo");
        }
        None => println!("there was no previous data to keep"),
    }
}

fn print_undo(u: &UndoReport) {
    println!(
        "put back {} from {}",
        u.databases.join(", "),
        u.restored_from.display()
    );
    if let Some(p) = &u.pre_restore {
        println!("the data it replaced is kept in {}", p.display());
    }
}

#[derive(serde::Serialize)]
struct Available {
    tag: Tag,
    local: bool,
    remote: bool,
    bytes: Option<u64>,
}

/// No tag: show what could be restored, then exit 2 (nothing was done).
fn list_available(global: &Global, config: &Config) -> Result<i32> {
    let mut rows: BTreeMap<Tag, Available> = BTreeMap::new();
    for (tag, path) in crate::snapshot::list_local(&config.backup_dir)? {
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
    let mut remote_note = None;
    match crate::remote::from_config(config) {
        Ok(Some(remote)) => match remote.list() {
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
            }
            Err(e) => {
                remote_note = Some(format!("cannot list {}: {}", remote.describe(), e.message))
            }
        },
        Ok(None) => remote_note = Some("no remote configured".to_string()),
        Err(e) => remote_note = Some(e.message),
    }
    let rows: Vec<Available> = rows.into_values().rev().collect();
    if global.json {
        global.print_json(&rows);
    } else {
        println!("{:<28} {:<14} {:>12}", "TAG", "WHERE", "BYTES");
        for r in &rows {
            let place = match (r.local, r.remote) {
                (true, true) => "local+remote",
                (true, false) => "local",
                _ => "remote",
            };
            let bytes = r.bytes.map_or("-".to_string(), |b| b.to_string());
            println!("{:<28} {place:<14} {bytes:>12}", r.tag.to_string());
        }
        if rows.is_empty() {
            println!("(no snapshots found)");
        }
    }
    if let Some(note) = remote_note {
        eprintln!("note: {note}");
    }
    eprintln!("choose one: lifeboat restore <TAG> (add --dry-run to only check it)");
    Ok(2)
}
