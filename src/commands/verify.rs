//! `lifeboat verify`: check snapshots end to end without touching live data.

use super::Global;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::remote;
use crate::snapshot::{self, archive::Limits};
use crate::tag::Tag;
use crate::verify::{self, DatabaseCheck};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Check snapshots: archive readable, manifest valid, every sha256,
/// `PRAGMA integrity_check` on each database (in a scratch directory), row
/// counts equal to the manifest.
///
/// Exit 0 only when every snapshot checked passes, 1 otherwise.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["tag", "latest", "all"])))]
pub struct VerifyArgs {
    /// The snapshot to check (`lifeboat list` shows them).
    #[arg(value_name = "TAG")]
    pub tag: Option<String>,
    /// Check the newest snapshot.
    #[arg(long)]
    pub latest: bool,
    /// Check every snapshot.
    #[arg(long)]
    pub all: bool,
    /// Check the remote's copies: download each one first.
    #[arg(long)]
    pub remote: bool,
}

#[derive(Debug, Serialize)]
struct Verdict {
    tag: Tag,
    /// `local` or the remote's description.
    source: String,
    ok: bool,
    error: Option<String>,
    databases: Vec<DatabaseCheck>,
}

#[derive(Debug, Serialize)]
struct Output {
    ok: bool,
    snapshots: Vec<Verdict>,
}

pub fn run(global: &Global, args: VerifyArgs) -> Result<i32> {
    let config = global.load_config()?;
    let verdicts = if args.remote {
        verify_remote(&config, &args)?
    } else {
        verify_local(&config, &args)?
    };
    let ok = verdicts.iter().all(|v| v.ok);
    if global.json {
        global.print_json(&Output {
            ok,
            snapshots: verdicts,
        });
    } else {
        for v in &verdicts {
            print_verdict(v);
        }
    }
    Ok(if ok { 0 } else { 1 })
}

fn print_verdict(v: &Verdict) {
    if v.ok {
        let rows: u64 = v.databases.iter().map(|d| d.rows).sum();
        println!(
            "OK    {} ({}): {} database(s), {rows} rows; sha256, integrity_check and row counts match",
            v.tag,
            v.source,
            v.databases.len()
        );
        return;
    }
    println!(
        "FAIL  {} ({}): {}",
        v.tag,
        v.source,
        v.error.as_deref().unwrap_or("a database failed its checks")
    );
    for d in v.databases.iter().filter(|d| !d.ok()) {
        if d.integrity != "ok" {
            println!("      {}: {}", d.name, d.integrity);
        }
        for m in &d.mismatches {
            println!("      {}: {m}", d.name);
        }
    }
}

/// Pick the tags the arguments ask for from `available` (oldest first).
fn select(available: &[Tag], args: &VerifyArgs, place: &str) -> Result<Vec<Tag>> {
    if let Some(name) = &args.tag {
        let tag = Tag::parse(name).ok_or_else(|| {
            Error::usage(format!("`{name}` is not a snapshot tag"))
                .with_hint("tags look like snap-20261122T014500Z; `lifeboat list` shows them")
        })?;
        if !available.contains(&tag) {
            return Err(Error::usage(format!("no snapshot {tag} {place}"))
                .with_hint("`lifeboat list` shows the snapshots there are"));
        }
        return Ok(vec![tag]);
    }
    if available.is_empty() {
        return Err(
            Error::usage(format!("there are no snapshots {place}")).with_hint(
                "take one with `lifeboat snapshot`; verify --remote checks the remote's copies",
            ),
        );
    }
    Ok(if args.all {
        available.iter().rev().copied().collect()
    } else {
        available.last().copied().into_iter().collect()
    })
}

fn limits(config: &Config) -> Limits {
    Limits {
        max_total_bytes: config.restore.max_unpacked_bytes,
    }
}

fn verify_local(config: &Config, args: &VerifyArgs) -> Result<Vec<Verdict>> {
    let local = snapshot::list_local(&config.backup_dir)?;
    let tags: Vec<Tag> = local.iter().map(|(t, _)| *t).collect();
    let place = format!("in {}", config.backup_dir.display());
    let chosen = select(&tags, args, &place)?;
    let mut out = Vec::new();
    for tag in chosen {
        let path = &local.iter().find(|(t, _)| *t == tag).expect("selected").1;
        out.push(check_one(config, &tag, "local", |_| Ok(path.clone())));
    }
    Ok(out)
}

fn verify_remote(config: &Config, args: &VerifyArgs) -> Result<Vec<Verdict>> {
    let remote = remote::from_config(config)?.ok_or_else(|| {
        Error::usage("--remote: no remote is configured")
            .with_hint("add [github] or [remote.dir] to the config, or drop --remote")
    })?;
    let mut listed: Vec<Tag> = remote
        .list()?
        .into_iter()
        .filter(|s| !s.draft)
        .map(|s| s.tag)
        .collect();
    listed.sort();
    let chosen = select(&listed, args, &format!("on {}", remote.describe()))?;
    let source = remote.describe();
    Ok(chosen
        .into_iter()
        .map(|tag| check_one(config, &tag, &source, |dir| remote.download(&tag, dir)))
        .collect())
}

/// Fetch (a local path, or a download into the scratch directory) and check
/// one snapshot. Every failure becomes the verdict, so `--all` goes on.
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
    };
    let result = (|| {
        let scratch = verify::scratch_dir(&config.backup_dir, "verify")?;
        let download = scratch.path().join("download");
        let unpacked = scratch.path().join("unpacked");
        crate::fsutil::create_dir_all_private(&download)?;
        crate::fsutil::create_dir_all_private(&unpacked)?;
        let archive = fetch(&download)?;
        verify::unpack_and_check(&archive, Some(tag), &unpacked, limits(config))
    })();
    match result {
        Ok((_, checks)) => {
            verdict.ok = checks.iter().all(DatabaseCheck::ok);
            verdict.databases = checks;
        }
        Err(e) => verdict.error = Some(e.to_string()),
    }
    if verdict.ok {
        tracing::info!(%tag, source, "snapshot verified");
    } else {
        tracing::error!(%tag, source, error = verdict.error.as_deref().unwrap_or("database check failed"), "snapshot failed verification");
    }
    verdict
}
