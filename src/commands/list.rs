//! `lifeboat list`: every snapshot, local and remote, newest first
//! ([`crate::ops::list`]), as a table or JSON.

use super::Global;
use crate::error::Result;
use crate::human;
use crate::ops::list::{ListOptions, LocalCopy, Row, list};
use crate::tag::Kind;
use chrono::{DateTime, NaiveDate, Utc};

/// List snapshots, newest first.
///
/// DATE is `2026-11-22` (a whole day, UTC) or RFC 3339
/// (`2026-11-22T09:30:00Z`); both bounds are inclusive.
///
/// AGE is by this machine's clock. A snapshot dated in the future (a clock
/// was ahead when it was taken, or the tag was planted) shows its age as it
/// is, `in 6h`, and a warning follows the table; in --json its `age_secs` is
/// negative and `future` is true (more than 5 minutes ahead). `drill` and
/// `verify --latest` skip such snapshots.
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

pub fn run(global: &Global, args: ListArgs) -> Result<i32> {
    let config = global.load_config()?;
    let opts = ListOptions {
        local_only: args.local,
        remote_only: args.remote,
        since: args.since,
        until: args.until,
        kind: args.kind.map(|k| match k {
            KindArg::Manual => Kind::Manual,
            KindArg::Scheduled => Kind::Scheduled,
        }),
    };
    let listing = list(&config, &opts)?;
    if let Some(e) = &listing.remote_error {
        warnln!("warning: cannot list the remote, showing local snapshots only: {e}");
    }
    if global.json {
        global.print_json(&listing);
    } else {
        print_table(&listing.snapshots);
    }
    let future: Vec<String> = listing
        .snapshots
        .iter()
        .filter(|r| r.future)
        .map(|r| r.tag.to_string())
        .collect();
    if !future.is_empty() {
        // On stderr, like the remote warning: --json stays one document.
        warnln!(
            "warning: {} snapshot(s) dated in the future by this machine's clock ({}): a clock was ahead when they were taken, or they were planted; drill and verify --latest skip them",
            future.len(),
            future.join(", ")
        );
    }
    Ok(0)
}

fn print_table(rows: &[Row]) {
    if rows.is_empty() {
        outln!("no snapshots");
        return;
    }
    outln!(
        "{:<29} {:<9} {:<19} {:>7} {:>9}  {:<6} DATABASES",
        "TAG",
        "KIND",
        "TAKEN (UTC)",
        "AGE",
        "SIZE",
        "WHERE"
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
        outln!(
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
