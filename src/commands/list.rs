//! `lifeboat list`: every snapshot, local and remote, newest first, with
//! what is needed to pick a restore point: when, what kind, how big, where,
//! and (for local ones, from the manifest) the databases and their schema
//! versions.

use super::Global;
use crate::error::{Error, Result};
use crate::human;
use crate::remote::{self, RemoteSnapshot};
use crate::snapshot::{self, archive};
use crate::tag::{Kind, Tag};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// List snapshots, newest first.
///
/// DATE is `2026-11-22` (a whole day, UTC) or RFC 3339
/// (`2026-11-22T09:30:00Z`); both bounds are inclusive.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only snapshots in backup_dir.
    #[arg(long, conflicts_with = "remote")]
    pub local: bool,
    /// Only snapshots on the remote.
    #[arg(long)]
    pub remote: bool,
    /// Only snapshots taken at or after DATE.
    #[arg(long, value_name = "DATE", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// Only snapshots taken at or before DATE (a bare date includes that day).
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    pub until: Option<DateTime<Utc>>,
    /// Only scheduled or only manual snapshots.
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    Manual,
    Scheduled,
}

#[derive(Debug, Serialize)]
struct Row {
    tag: Tag,
    kind: Kind,
    taken: DateTime<Utc>,
    age_secs: i64,
    /// The archive's size (the local file's when both exist).
    size: u64,
    /// `local`, `remote` or `both`.
    #[serde(rename = "where")]
    place: &'static str,
    local: Option<LocalCopy>,
    remote: Option<RemoteSnapshot>,
}

#[derive(Debug, Serialize)]
struct LocalCopy {
    path: PathBuf,
    bytes: u64,
    databases: Vec<DatabaseSummary>,
    /// Why the manifest could not be read (the archive is damaged).
    manifest_error: Option<String>,
}

#[derive(Debug, Serialize)]
struct DatabaseSummary {
    name: String,
    schema_version: i64,
    bytes: u64,
}

#[derive(Debug, Serialize)]
struct Output {
    snapshots: Vec<Row>,
    /// Set when the remote could not be listed (only local ones are shown).
    remote_error: Option<String>,
}

pub fn run(global: &Global, args: ListArgs) -> Result<i32> {
    let config = global.load_config()?;
    let now = Utc::now();
    let mut local = BTreeMap::new();
    if !args.remote {
        for (tag, path) in snapshot::list_local(&config.backup_dir)? {
            if wanted(&args, &tag) {
                local.insert(tag, describe_local(&tag, path));
            }
        }
    }
    let mut remote_error = None;
    let mut remote_rows = BTreeMap::new();
    if !args.local {
        match list_remote(&config, args.remote) {
            Ok(list) => {
                for s in list.into_iter().filter(|s| wanted(&args, &s.tag)) {
                    remote_rows.insert(s.tag, s);
                }
            }
            Err(e) if !args.remote => {
                eprintln!("warning: cannot list the remote, showing local snapshots only: {e}");
                remote_error = Some(e.message);
            }
            Err(e) => return Err(e),
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
                age_secs: (now - tag.time()).num_seconds().max(0),
                size: l
                    .as_ref()
                    .map_or_else(|| r.as_ref().map_or(0, |r| r.size), |l| l.bytes),
                place: match (&l, &r) {
                    (Some(_), Some(_)) => "both",
                    (Some(_), None) => "local",
                    _ => "remote",
                },
                local: l,
                remote: r,
            }
        })
        .collect();

    if global.json {
        global.print_json(&Output {
            snapshots: rows,
            remote_error,
        });
    } else {
        print_table(&rows);
    }
    Ok(0)
}

fn wanted(args: &ListArgs, tag: &Tag) -> bool {
    let kind_ok = match args.kind {
        None => true,
        Some(KindArg::Manual) => tag.is_manual(),
        Some(KindArg::Scheduled) => !tag.is_manual(),
    };
    kind_ok
        && args.since.is_none_or(|s| tag.time() >= s)
        && args.until.is_none_or(|u| tag.time() <= u)
}

/// The remote's snapshots; `Ok(empty)` when none is configured, unless
/// `--remote` asked for it explicitly.
fn list_remote(config: &crate::config::Config, required: bool) -> Result<Vec<RemoteSnapshot>> {
    match remote::from_config(config)? {
        Some(r) => r.list(),
        None if required => Err(Error::usage("--remote: no remote is configured")
            .with_hint("add [github] or [remote.dir] to the config")),
        None => Ok(vec![]),
    }
}

fn describe_local(tag: &Tag, path: PathBuf) -> LocalCopy {
    let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
    let manifest = archive::read_manifest(&path, Some(tag)).map(|r| r.manifest);
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
        manifest_error,
    }
}

fn print_table(rows: &[Row]) {
    if rows.is_empty() {
        println!("no snapshots");
        return;
    }
    println!(
        "{:<29} {:<9} {:<19} {:>7} {:>9}  {:<6} DATABASES",
        "TAG", "KIND", "TAKEN (UTC)", "AGE", "SIZE", "WHERE"
    );
    for r in rows {
        let dbs = match &r.local {
            Some(LocalCopy {
                manifest_error: Some(e),
                ..
            }) => format!("(unreadable: {e})"),
            Some(l) => l
                .databases
                .iter()
                .map(|d| format!("{} v{}", d.name, d.schema_version))
                .collect::<Vec<_>>()
                .join(", "),
            None => "-".to_string(),
        };
        let place = match &r.remote {
            Some(s) if s.draft => format!("{} (draft)", r.place),
            _ => r.place.to_string(),
        };
        println!(
            "{:<29} {:<9} {:<19} {:>7} {:>9}  {:<6} {dbs}",
            r.tag.to_string(),
            r.kind.to_string(),
            r.taken.format("%Y-%m-%d %H:%M:%S").to_string(),
            human::age(r.age_secs),
            human::bytes(r.size),
            place
        );
    }
}

fn parse_date(s: &str, end_of_day: bool) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        format!("`{s}` is not a date: use 2026-11-22 or RFC 3339 (2026-11-22T09:30:00Z)")
    })?;
    let time = if end_of_day {
        day.and_hms_opt(23, 59, 59)
    } else {
        day.and_hms_opt(0, 0, 0)
    };
    Ok(time.expect("valid time of day").and_utc())
}

fn parse_since(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    parse_date(s, false)
}

fn parse_until(s: &str) -> std::result::Result<DateTime<Utc>, String> {
    parse_date(s, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(
            parse_since("2026-11-22").unwrap().to_rfc3339(),
            "2026-11-22T00:00:00+00:00"
        );
        assert_eq!(
            parse_until("2026-11-22").unwrap().to_rfc3339(),
            "2026-11-22T23:59:59+00:00"
        );
        assert_eq!(
            parse_until("2026-11-22T10:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2026-11-22T08:00:00+00:00"
        );
        assert!(parse_since("22/11/2026").unwrap_err().contains("RFC 3339"));
    }
}
