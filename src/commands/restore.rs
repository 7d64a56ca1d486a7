//! `lifeboat restore <tag>`: the staged restore, `--dry-run`, `--undo`, and
//! (with no tag) the list of snapshots to choose from
//! ([`crate::ops::restore`]).

use super::Global;
use crate::config::Config;
use crate::error::Result;
use crate::ops::restore::{self as ops, Outcome, Request, Source, Which};
use crate::restore::{self, RestoreReport, UndoReport};

/// Restore a snapshot: verify, unpack into a staging directory, migrate,
/// check, and only then swap it in, keeping the previous data for `--undo`.
///
/// TAG `latest` is the newest snapshot, local or remote (with --from, from
/// there), not counting snapshots dated in the future by this machine's
/// clock.
///
/// Without a tag, prints `lifeboat list`'s table and exits 2.
///
/// --if-missing (first boots, containers): restore only when none of the
/// configured databases exists; when one does, nothing is done, one line
/// goes to stderr, and the exit status is 0. When there is no snapshot at
/// all, `restore latest` exits 1 (nothing recorded), or 0 with
/// --allow-empty. None of these "nothing to do" cases is a recorded run.
///
/// --to DIR: stage and check everything, then place the databases into DIR
/// (at their paths under data_dir), which must not exist or be empty; live
/// data is not touched.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The snapshot to restore, e.g. snap-myapp-20261122T014500Z, or `latest`.
    #[arg(value_name = "TAG", conflicts_with = "undo")]
    pub tag: Option<String>,
    /// Restore only when none of the configured databases exists (else do
    /// nothing and exit 0).
    #[arg(long, requires = "tag", conflicts_with = "to")]
    pub if_missing: bool,
    /// With `latest`: when there is no snapshot anywhere, exit 0 instead of 1
    /// (a first boot). A remote that cannot be listed is still an error.
    #[arg(long, requires = "tag")]
    pub allow_empty: bool,
    /// Place the checked databases into DIR (new or empty) instead of
    /// data_dir; live data is untouched.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["undo", "dry_run"])]
    pub to: Option<std::path::PathBuf>,
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
    /// Restore a snapshot of installation NAME, another installation sharing
    /// the remote (moving it to this machine or to a new name). Without it,
    /// a snapshot another installation took is refused, and `latest` is
    /// this installation's newest.
    #[arg(long, value_name = "NAME", value_parser = super::parse_installation, conflicts_with = "undo")]
    pub installation: Option<crate::tag::Installation>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FromArg {
    Local,
    Github,
    Dir,
    Rclone,
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
    let which = if raw == "latest" {
        Which::Latest
    } else {
        Which::Tag(super::parse_tag(raw)?)
    };
    let to = match args.to {
        Some(dir) => Some(
            std::path::absolute(&dir)
                .map_err(|e| crate::Error::usage(format!("--to {}: {e}", dir.display())))?,
        ),
        None => None,
    };
    let req = Request {
        which,
        source: match args.from {
            None => Source::Auto,
            Some(FromArg::Local) => Source::Local,
            Some(FromArg::Github) => Source::Github,
            Some(FromArg::Dir) => Source::Dir,
            Some(FromArg::Rclone) => Source::Rclone,
        },
        only: args.db,
        dry_run: args.dry_run,
        force: args.force,
        keep_staging: args.keep_staging,
        to,
        if_missing: args.if_missing,
        allow_empty: args.allow_empty,
        installation: args.installation,
    };
    match ops::request(&config, &env, &req)? {
        Outcome::Restored { report, notes } => {
            for n in &notes {
                noteln!("note: {n}");
            }
            if global.json {
                global.print_json(&report);
            } else {
                print_restore(&config, &report);
            }
        }
        Outcome::AlreadyPresent(present) => {
            let names: Vec<String> = present.iter().map(|p| p.display().to_string()).collect();
            warnln!(
                "nothing restored (--if-missing): already present: {}",
                names.join(", ")
            );
        }
        Outcome::NoSnapshot { notes } => {
            for n in &notes {
                noteln!("note: {n}");
            }
            noteln!("nothing restored (--allow-empty): there is no snapshot to restore");
        }
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
        let fk = if !c.notes.iter().any(|n| n.contains("foreign_key_check")) {
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
    for l in &r.through_links {
        outln!(
            "database {}: {} is a symbolic link; {} through it: {}{}",
            l.name,
            l.link.display(),
            if r.dry_run {
                "would restore"
            } else {
                "restored"
            },
            l.target.display(),
            if r.dry_run {
                ""
            } else {
                " was replaced, the link is unchanged"
            }
        );
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
    if let Some(dir) = &r.placed_in {
        outln!(
            "placed into {}; live data in {} was not touched",
            dir.display(),
            config.data_dir.display()
        );
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

/// No tag: show what could be restored (exactly `lifeboat list`'s table),
/// then exit 2 (nothing was done).
fn list_available(global: &Global, config: &Config) -> Result<i32> {
    // Even a listing finishes an interrupted restore first.
    ops::recover_only(config)?;
    let listing = crate::ops::list::list(config, &crate::ops::list::ListOptions::default())?;
    if let Some(e) = &listing.remote_error {
        warnln!("warning: cannot list the remote, showing local snapshots only: {e}");
    }
    if global.json {
        // `ok` is false: nothing was restored (exit 2).
        global.print_json_outcome(&listing, Ok(2))?;
    } else {
        super::list::print_table(&listing.snapshots);
    }
    noteln!(
        "choose one: lifeboat restore <TAG> or lifeboat restore latest (add --dry-run to only check it)"
    );
    Ok(2)
}
