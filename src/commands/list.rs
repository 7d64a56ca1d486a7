//! `lifeboat list`: every snapshot, local and remote, newest first
//! ([`crate::ops::list`]), as a table or JSON.

use super::Global;
use crate::error::Result;
use crate::human;
use crate::ops::list::{ListOptions, LocalCopy, Row, list};
use crate::tag::{Kind, Scope};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

/// List snapshots, newest first.
///
/// DATE is `2026-11-22` (a whole day, UTC), the TAKEN column's own
/// `2026-11-22 09:30:00` (UTC), RFC 3339 (`2026-11-22T09:30:00Z`), or a
/// duration back from now (`30m`, `24h`, `7d`); both bounds are inclusive.
///
/// REASON is a manual snapshot's `backup-now --reason`, read from the local
/// archive's manifest (`?` for a manual snapshot only on the remote).
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
    /// Every installation's snapshots, not only this one's (and the
    /// unnamed ones from before installation names).
    #[arg(long, conflicts_with = "installation")]
    pub all: bool,
    /// Only the snapshots of installation NAME (another one sharing the remote).
    #[arg(long, value_name = "NAME", value_parser = super::parse_installation)]
    pub installation: Option<crate::tag::Installation>,
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
        scope: match (args.all, args.installation) {
            (true, _) => Scope::All,
            (_, Some(name)) => Scope::Of(name),
            _ => Scope::Own,
        },
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

pub(crate) fn print_table(rows: &[Row]) {
    if rows.is_empty() {
        outln!("no snapshots");
        return;
    }
    let dbs: Vec<String> = rows
        .iter()
        .map(|r| match &r.local {
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
        })
        .collect();
    let width = dbs.iter().map(String::len).chain([9]).max().unwrap_or(9);
    outln!(
        "{:<29} {:<9} {:<19} {:>7} {:>9}  {:<6} {:<width$}  REASON",
        "TAG",
        "KIND",
        "TAKEN (UTC)",
        "AGE",
        "SIZE",
        "WHERE",
        "DATABASES"
    );
    for (r, dbs) in rows.iter().zip(dbs) {
        let place = match &r.remote {
            Some(s) if s.draft => format!("{} (draft)", r.on.join("+")),
            _ => r.on.join("+"),
        };
        // Only a local manifest carries the reason; a remote-only manual
        // snapshot's is unknown until downloaded.
        let reason = match (&r.local, r.kind) {
            (
                Some(LocalCopy {
                    reason: Some(why), ..
                }),
                _,
            ) => why.replace(['\n', '\t'], " "),
            (None, Kind::Manual) => "?".to_string(),
            _ => "-".to_string(),
        };
        outln!(
            "{:<29} {:<9} {:<19} {:>7} {:>9}  {:<6} {dbs:<width$}  {reason}",
            r.tag.to_string(),
            r.kind.to_string(),
            r.taken.format("%Y-%m-%d %H:%M:%S").to_string(),
            human::age(r.age_secs),
            human::bytes(r.size),
            place
        );
    }
}

/// A bound for --since/--until: RFC 3339, the TAKEN column's own format
/// (`2026-11-22 09:30:00`, UTC; also with a `T`), a date (a whole day,
/// UTC), or a duration back from now (`30m`, `24h`, `7d`).
fn parse_date(s: &str, end_of_day: bool) -> std::result::Result<DateTime<Utc>, String> {
    parse_date_at(s, end_of_day, Utc::now())
}

fn parse_date_at(
    s: &str,
    end_of_day: bool,
    now: DateTime<Utc>,
) -> std::result::Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Ok(t.and_utc());
        }
    }
    if s.starts_with(|c: char| c.is_ascii_digit())
        && s.ends_with(|c: char| c.is_ascii_alphabetic())
        && let Ok(d) = crate::config::parse_duration(s)
    {
        let back = chrono::TimeDelta::from_std(d).map_err(|_| format!("`{s}` is too long ago"))?;
        return now
            .checked_sub_signed(back)
            .ok_or_else(|| format!("`{s}` is too long ago"));
    }
    let day = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        format!(
            "`{s}` is not a date: use 2026-11-22, 2026-11-22 09:30:00 (UTC, as list shows it), \
             RFC 3339 (2026-11-22T09:30:00Z) or a duration back from now (24h, 7d)"
        )
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
        assert_eq!(
            parse_since("2026-11-22 09:30:00").unwrap().to_rfc3339(),
            "2026-11-22T09:30:00+00:00"
        );
        let now: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
        assert_eq!(
            parse_date_at("24h", false, now).unwrap().to_rfc3339(),
            "2026-11-21T12:00:00+00:00"
        );
        assert_eq!(
            parse_date_at("7d", true, now).unwrap().to_rfc3339(),
            "2026-11-15T12:00:00+00:00"
        );
        assert!(parse_since("7x").is_err());
    }
}
