//! `lifeboat restore <tag>`: the staged restore, `--dry-run`, `--undo`, and
//! (with no tag) the list of snapshots to choose from
//! ([`crate::ops::restore`]).

use super::Global;
use crate::config::Config;
use crate::error::Result;
use crate::ops::restore::{self as ops, RestoreOptions, Source};
use crate::restore::{self, RestoreReport, UndoReport};

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
    let env = global.env();
    if args.undo {
        let report = ops::undo(&config, &env, args.force)?;
        if global.json {
            global.print_json(&report);
        } else {
            print_undo(&report);
        }
        return Ok(0);
    }
    let Some(raw) = args.tag.as_deref() else {
        return list_available(global, &config);
    };
    let opts = RestoreOptions {
        tag: super::parse_tag(raw)?,
        source: match args.from {
            None => Source::Auto,
            Some(FromArg::Local) => Source::Local,
            Some(FromArg::Github) => Source::Github,
            Some(FromArg::Dir) => Source::Dir,
        },
        only: args.db,
        dry_run: args.dry_run,
        force: args.force,
        keep_staging: args.keep_staging,
    };
    let report = ops::restore(&config, &env, &opts)?;
    if global.json {
        global.print_json(&report);
    } else {
        print_restore(&config, &report);
    }
    Ok(0)
}

pub(crate) fn print_restore(config: &Config, r: &RestoreReport) {
    let s = &r.stage;
    outln!(
        "{} {} (taken {} on {})",
        if r.dry_run { "dry run of" } else { "restored" },
        s.tag,
        s.snapshot_ts
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        s.host
    );
    outln!("source: {}", s.source);
    for db in &s.databases {
        let c = &db.checked;
        let migrations = if c.migrations.is_empty() {
            "no migrations needed".to_string()
        } else {
            let files: Vec<&str> = c.migrations.iter().map(|m| m.file.as_str()).collect();
            format!("migrated with {}", files.join(", "))
        };
        let fk = if c.notes.is_empty() {
            "foreign_key_check ok"
        } else {
            "foreign_key_check: see the note below"
        };
        outln!(
            "database {}: schema v{} -> v{} ({migrations}); {} ok; {fk}",
            db.name,
            c.schema_from,
            c.schema_to,
            c.check
        );
        for note in &c.notes {
            outln!("  note: {note}");
        }
    }
    outln!("row counts (expected from the manifest, found after migration):");
    for db in &s.databases {
        out!("{}", crate::check::render(&db.name, &db.checked.row_counts));
    }
    if r.dry_run {
        outln!(
            "dry run: every check passed; live data in {} was not touched",
            config.data_dir.display()
        );
        if let Some(k) = &r.kept_staging {
            outln!("staged copy kept in {}", k.display());
        }
        return;
    }
    if let Some(mode) = r.mode {
        let how = match mode {
            restore::swap::Mode::WholeDirectory => "one atomic directory exchange",
            restore::swap::Mode::PerFile => "journaled per-file renames",
        };
        outln!("swapped into {} by {how}", config.data_dir.display());
    }
    match &r.pre_restore {
        Some(p) => {
            outln!("the previous data is kept in {}", p.display());
            outln!("to undo: lifeboat restore --undo");
        }
        None => outln!("there was no previous data to keep"),
    }
}

fn print_undo(u: &UndoReport) {
    outln!(
        "put back {} from {}",
        u.databases.join(", "),
        u.restored_from.display()
    );
    if let Some(p) = &u.pre_restore {
        outln!("the data it replaced is kept in {}", p.display());
    }
}

/// No tag: show what could be restored, then exit 2 (nothing was done).
fn list_available(global: &Global, config: &Config) -> Result<i32> {
    let choice = ops::available(config)?;
    let rows = &choice.snapshots;
    if global.json {
        // An object (format 1), not the bare array of earlier versions;
        // `ok` is false: nothing was restored (exit 2).
        global.print_json_outcome(
            &serde_json::json!({ "snapshots": rows, "remote_note": choice.remote_note }),
            Ok(2),
        )?;
    } else {
        outln!("{:<28} {:<14} {:>12}", "TAG", "WHERE", "BYTES");
        for r in rows {
            let place = match (r.local, r.remote) {
                (true, true) => "local+remote",
                (true, false) => "local",
                _ => "remote",
            };
            let bytes = r.bytes.map_or("-".to_string(), |b| b.to_string());
            outln!("{:<28} {place:<14} {bytes:>12}", r.tag.to_string());
        }
        if rows.is_empty() {
            outln!("(no snapshots found)");
        }
    }
    if let Some(note) = &choice.remote_note {
        warnln!("note: {note}");
    }
    warnln!("choose one: lifeboat restore <TAG> (add --dry-run to only check it)");
    Ok(2)
}
