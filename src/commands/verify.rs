//! `lifeboat verify`: check snapshots end to end without touching live data
//! ([`crate::ops::verify`]).

use super::Global;
use crate::error::Result;
use crate::ops::verify::{Verdict, VerifyOptions, Which, verify};

/// Check snapshots: archive readable, manifest valid, every sha256, then in
/// a scratch directory the same checks a restore runs (migrations,
/// `PRAGMA integrity_check`, foreign keys, row counts).
///
/// Exit 0 only when every snapshot checked passes, 1 otherwise.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["tag", "latest", "all"])))]
pub struct VerifyArgs {
    /// The snapshot to check (`lifeboat list` shows them); `latest` is
    /// --latest.
    #[arg(value_name = "TAG")]
    pub tag: Option<String>,
    /// Check the newest snapshot (not counting snapshots dated in the
    /// future by this machine's clock: those are skipped with a note).
    #[arg(long)]
    pub latest: bool,
    /// Check every snapshot.
    #[arg(long)]
    pub all: bool,
    /// Check the remote's copies: download each one first.
    #[arg(long)]
    pub remote: bool,
}

pub fn run(global: &Global, args: VerifyArgs) -> Result<i32> {
    let config = global.load_config()?;
    let which = match (&args.tag, args.all) {
        (Some(tag), _) if tag == "latest" => Which::Latest,
        (Some(tag), _) => Which::Tag(super::parse_tag(tag)?),
        (None, true) => Which::All,
        (None, false) => Which::Latest,
    };
    let report = verify(
        &config,
        &VerifyOptions {
            which,
            remote: args.remote,
        },
    )?;
    if global.json {
        return global.print_json_outcome(&report, Ok(if report.ok { 0 } else { 1 }));
    } else {
        // What --latest passed over comes first: it explains why the
        // snapshot checked is not the one with the newest tag.
        for n in &report.notes {
            outln!("note: {n}");
        }
        for v in &report.snapshots {
            print_verdict(v);
        }
    }
    Ok(if report.ok { 0 } else { 1 })
}

fn print_verdict(v: &Verdict) {
    if v.ok {
        let rows: u64 = v.databases.iter().map(|d| d.rows).sum();
        let partial = v
            .databases
            .iter()
            .flat_map(|d| &d.notes)
            .any(|n| crate::check::is_unchecked(n));
        outln!(
            "OK    {} ({}): {} database(s), {rows} rows; sha256, migrations, integrity_check, foreign keys and row counts pass{}",
            v.tag,
            v.source,
            v.databases.len(),
            if partial {
                " (except what the notes say was not checked)"
            } else {
                ""
            }
        );
        let notes = v.databases.iter().flat_map(|d| &d.notes).chain(&v.notes);
        for n in notes {
            outln!("      note: {n}");
        }
        return;
    }
    outln!(
        "FAIL  {} ({}): {}",
        v.tag,
        v.source,
        v.error.as_deref().unwrap_or("a database failed its checks")
    );
    for d in v.databases.iter().filter(|d| !d.ok) {
        outln!("      {}: {}", d.name, d.integrity);
    }
}
