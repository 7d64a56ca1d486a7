//! Whether the backups are good, judged from `last_run.json` and
//! `drill.json` alone: no network, no lock, no writes, so a monitoring probe
//! can run it every minute against a read-only backup directory.
//!
//! [`evaluate`] is a pure function of those two records, the `[health]`
//! thresholds and the current time; the command only reads the files and
//! prints the [`Report`]. Statuses and exit codes follow the monitoring-plugin
//! convention (OK 0, WARNING 1, CRITICAL 2, UNKNOWN 3).
//!
//! Ages are what the clock says they are: a record written while a clock was
//! ahead has a negative age and is a "clock skew" WARNING ([`crate::clock`]),
//! never "0s ago" and fresh.

use crate::clock;
use crate::config::HealthConfig;
use crate::human;
use crate::record::{DrillRecord, Outcome};
use crate::record::{ErrorRecord, PushStatus, RunRecord, Status as RunStatus};
use crate::tag::Tag;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    pub fn exit_code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }
}

/// What the command found on disk for one record file.
#[derive(Debug, Clone)]
pub enum Found<T> {
    Missing,
    Unreadable(String),
    Present(T),
}

impl<T> Found<T> {
    pub fn from_load(loaded: crate::Result<Option<T>>) -> Found<T> {
        match loaded {
            Ok(Some(t)) => Found::Present(t),
            Ok(None) => Found::Missing,
            Err(e) => Found::Unreadable(e.message),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub status: Status,
    pub message: String,
}

/// The verdict, and the facts behind it (the `--json` object).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub exit_code: i32,
    pub summary: String,
    pub checked_at: DateTime<Utc>,
    pub problems: Vec<Problem>,
    pub last_run: Option<LastRunFacts>,
    pub last_success: Option<LastSuccessFacts>,
    pub remote: RemoteFacts,
    pub retention_failures: Vec<RetentionFailure>,
    pub drill: DrillFacts,
    pub thresholds: Thresholds,
    /// Every recorded time that is in the future by more than
    /// [`clock::ALLOWED_SKEW`], furthest ahead first.
    pub clock_skew: Vec<FutureTime>,
}

/// A recorded time from the future.
#[derive(Debug, Clone, Serialize)]
pub struct FutureTime {
    /// What carries it, in words: "the last run (`snapshot`)", "the last
    /// drill", ...
    pub what: String,
    pub at: DateTime<Utc>,
    pub ahead_secs: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastRunFacts {
    pub command: String,
    pub status: RunStatus,
    pub finished_at: DateTime<Utc>,
    /// Negative for a time in the future, like every `age_secs` here.
    pub age_secs: i64,
    pub duration_secs: f64,
    pub error: Option<ErrorRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LastSuccessFacts {
    pub tag: Tag,
    pub finished_at: DateTime<Utc>,
    pub age_secs: i64,
    pub archive_bytes: u64,
    pub pushed: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RemoteFacts {
    pub configured: bool,
    /// The last run's push: `pushed`, `failed`, `skipped`; `None` when the
    /// last run did not get as far as pushing.
    pub last_push: Option<PushStatus>,
    pub remote: Option<String>,
    pub attempts: Option<u32>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetentionFailure {
    /// `local`, or the remote's name (`dir`, `github`, `rclone`; `remote` in
    /// records from before several remotes).
    pub place: String,
    pub tag: Tag,
    pub error: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DrillFacts {
    /// `missing`, `unreadable` or `present`.
    pub state: &'static str,
    pub outcome: Option<Outcome>,
    pub tag: Option<Tag>,
    pub source: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
    pub age_secs: Option<i64>,
    /// The measured recovery time of the last drill.
    pub duration_secs: Option<f64>,
    pub error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_success_age_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Thresholds {
    pub warn_after_secs: u64,
    pub critical_after_secs: u64,
    pub drill_max_age_secs: u64,
}

/// Judge the records of `config`'s backup directory as of `now`: what
/// `lifeboat health` prints and the metrics' status gauge exports.
pub fn probe(config: &crate::config::Config, now: DateTime<Utc>) -> Report {
    let store = config.store();
    let record = Found::from_load(RunRecord::load(&store.last_run()));
    let drill = Found::from_load(DrillRecord::load(&store.drill_record()));
    let report = evaluate(
        &record,
        &drill,
        &config.health,
        config.remote().is_some(),
        now,
    );
    // A restore journal means a swap was interrupted and not yet finished:
    // until a lifeboat run finishes it, no backup is taken. One stat, no
    // network, like everything else here.
    let journal = store.restore_journal();
    if !journal.exists() {
        return report;
    }
    let mut problems = report.problems.clone();
    problems.insert(
        0,
        Problem {
            status: Status::Critical,
            message: format!(
                "an interrupted restore is not finished ({}): no backup runs until it is; run any lifeboat command as the account that ran the restore",
                journal.display()
            ),
        },
    );
    finish(report, problems)
}

/// Judge the records. `remote_configured` says whether the config names a
/// remote (an unpushed snapshot is only a problem when there is one).
pub fn evaluate(
    record: &Found<RunRecord>,
    drill: &Found<DrillRecord>,
    cfg: &HealthConfig,
    remote_configured: bool,
    now: DateTime<Utc>,
) -> Report {
    // Not clamped: a negative age is a clock that was ahead, and says so
    // below, instead of passing for "0s ago".
    let age = |t: DateTime<Utc>| (now - t).num_seconds();
    let mut problems = Vec::new();
    let mut problem = |status, message: String| problems.push(Problem { status, message });

    let drill_facts = drill_facts(drill, &age);
    let mut report = Report {
        status: Status::Ok,
        exit_code: 0,
        summary: String::new(),
        checked_at: now,
        problems: vec![],
        last_run: None,
        last_success: None,
        remote: RemoteFacts {
            configured: remote_configured,
            last_push: None,
            remote: None,
            attempts: None,
            error: None,
        },
        retention_failures: vec![],
        drill: drill_facts,
        thresholds: Thresholds {
            warn_after_secs: cfg.warn_after.as_secs(),
            critical_after_secs: cfg.critical_after.as_secs(),
            drill_max_age_secs: cfg.drill_max_age.as_secs(),
        },
        clock_skew: vec![],
    };

    let rec = match record {
        Found::Present(r) => r,
        Found::Missing => {
            problem(
                Status::Unknown,
                "no last_run.json: lifeboat has not run yet (or backup_dir is wrong)".into(),
            );
            return finish(report, problems);
        }
        Found::Unreadable(e) => {
            problem(Status::Unknown, format!("cannot read last_run.json: {e}"));
            return finish(report, problems);
        }
    };

    report.last_run = Some(LastRunFacts {
        command: rec.command.clone(),
        status: rec.status,
        finished_at: rec.finished_at,
        age_secs: age(rec.finished_at),
        duration_secs: rec.duration_secs,
        error: rec.error.clone(),
    });

    // Freshness of the newest successful snapshot.
    match &rec.last_success {
        None => problem(
            Status::Critical,
            "no snapshot has ever succeeded".to_string(),
        ),
        Some(s) => {
            let secs = age(s.finished_at);
            report.last_success = Some(LastSuccessFacts {
                tag: s.tag,
                finished_at: s.finished_at,
                age_secs: secs,
                archive_bytes: s.archive_bytes,
                pushed: s.pushed,
            });
            let stale = |limit: std::time::Duration, status, word| {
                (secs > limit.as_secs() as i64).then(|| {
                    (
                        status,
                        format!(
                            "last successful snapshot {} is {} old ({word} after {})",
                            s.tag,
                            human::age(secs),
                            human::duration(limit)
                        ),
                    )
                })
            };
            if let Some((status, msg)) = stale(cfg.critical_after, Status::Critical, "critical")
                .or_else(|| stale(cfg.warn_after, Status::Warning, "warning"))
            {
                problem(status, msg);
            }
        }
    }

    // The last run itself, and the last backup run when another command
    // (prune, restore) ran since.
    // A partial snapshot's error names each database it lacks and why.
    let ended = |status: RunStatus| match status {
        RunStatus::Partial => "was partial",
        _ => "failed",
    };
    if rec.status != RunStatus::Success {
        let why = rec
            .error
            .as_ref()
            .map_or("no error recorded".to_string(), |e| e.message.clone());
        problem(
            Status::Warning,
            format!("last run (`{}`) {}: {why}", rec.command, ended(rec.status)),
        );
    }
    if let Some(b) = rec.last_backup.as_ref().filter(|b| {
        b.status != RunStatus::Success && !crate::record::run::is_backup_command(&rec.command)
    }) {
        let why = b
            .error
            .as_ref()
            .map_or("no error recorded".to_string(), |e| e.message.clone());
        problem(
            Status::Warning,
            format!(
                "last backup run (`{}`, {}) {}: {why}",
                b.command,
                human::ago(age(b.finished_at)),
                ended(b.status)
            ),
        );
    }

    // Off the machine? Each remote on its own: one that is down is named,
    // and the others still count. `remote` reports the first failing one
    // (else the first).
    let pushes = rec.pushes();
    let shown = pushes
        .iter()
        .find(|p| p.status == PushStatus::Failed)
        .or(pushes.first());
    if let Some(p) = shown {
        report.remote.last_push = Some(p.status);
        report.remote.remote = Some(p.remote.clone());
        report.remote.attempts = Some(p.attempts);
        report.remote.error = p.error.as_ref().map(|e| e.message.clone());
    }
    let this_tag = rec.snapshot.as_ref().map(|s| s.tag);
    let elsewhere: Vec<&str> = pushes
        .iter()
        .filter(|p| p.status == PushStatus::Pushed)
        .map(|p| p.remote.as_str())
        .collect();
    for p in &pushes {
        let failed = p.status == PushStatus::Failed;
        // Archives the remote refuses for good: later ones were pushed past
        // them, but each is on this machine only until someone acts.
        for r in p
            .refused
            .iter()
            .filter(|r| !(failed && Some(r.tag) == this_tag))
        {
            problem(
                Status::Warning,
                format!(
                    "snapshot {} cannot be pushed to {}: {}; it is not on that remote{}",
                    r.tag,
                    p.remote,
                    r.error.message,
                    r.error
                        .hint
                        .as_deref()
                        .map(|h| format!(" (fix: {h})"))
                        .unwrap_or_default()
                ),
            );
        }
        if failed {
            let tag = this_tag.map(|t| t.to_string());
            let where_else = if elsewhere.is_empty() {
                "the snapshot is only on this machine".to_string()
            } else {
                format!("it is on {}", elsewhere.join(", "))
            };
            problem(
                Status::Warning,
                format!(
                    "push of {} to {} failed: {}; {where_else}",
                    tag.as_deref().unwrap_or("the snapshot"),
                    p.remote,
                    p.error
                        .as_ref()
                        .map_or("no error recorded", |e| e.message.as_str())
                ),
            );
        }
    }
    let any_failed = pushes.iter().any(|p| p.status == PushStatus::Failed);
    if !any_failed
        && let Some(s) = rec.last_success.as_ref().filter(|s| !s.pushed)
        && remote_configured
    {
        problem(
            Status::Warning,
            format!(
                "snapshot {} was not pushed: it is only on this machine",
                s.tag
            ),
        );
    }

    // Retention.
    if let Some(r) = &rec.retention {
        let sweeps = r
            .local
            .iter()
            .map(|s| ("local", s))
            .chain(r.remote_sweeps());
        for (place, sweep) in sweeps {
            for f in &sweep.failed {
                report.retention_failures.push(RetentionFailure {
                    place: place.to_string(),
                    tag: f.tag,
                    error: f.error.clone(),
                });
            }
        }
        if let Some(first) = report.retention_failures.first() {
            problem(
                Status::Warning,
                format!(
                    "retention could not delete {} snapshot(s); first: {} ({}): {}",
                    report.retention_failures.len(),
                    first.tag,
                    first.place,
                    first.error
                ),
            );
        }
    }

    // Restore drills.
    let max = cfg.drill_max_age;
    match (drill, report.drill.last_success_age_secs) {
        (Found::Unreadable(e), _) => problem(
            Status::Warning,
            format!("cannot read drill.json: {e}; no successful restore drill is known"),
        ),
        (_, None) => problem(
            Status::Warning,
            "no restore drill has ever succeeded (run `lifeboat drill`)".to_string(),
        ),
        (_, Some(secs)) if secs > max.as_secs() as i64 => problem(
            Status::Warning,
            format!(
                "last successful restore drill was {} ago (drill_max_age {})",
                human::age(secs),
                human::duration(max)
            ),
        ),
        _ => {}
    }

    // Clocks. Every time above was judged by this machine's clock; one from
    // the future means that clock, or the one that wrote the record, is
    // wrong, and the freshness checks above cannot be trusted either way.
    report.clock_skew = future_times(rec, drill, now);
    // One problem, naming the time furthest ahead: one wrong clock usually
    // stamps several places at once; the JSON lists them all.
    if let Some(first) = report.clock_skew.first() {
        problem(
            Status::Warning,
            format!(
                "clock skew: {} is {} by this machine's clock (at {}); \
                 ages and freshness cannot be trusted until the clocks agree",
                first.what,
                human::ago(-first.ahead_secs),
                first.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
        );
    }

    finish(report, problems)
}

/// The recorded times that are in the future as of `now`, furthest ahead
/// first.
fn future_times(
    rec: &RunRecord,
    drill: &Found<DrillRecord>,
    now: DateTime<Utc>,
) -> Vec<FutureTime> {
    let mut times: Vec<(String, DateTime<Utc>)> =
        vec![(format!("the last run (`{}`)", rec.command), rec.finished_at)];
    if let Some(s) = &rec.last_success {
        times.push((
            format!("the last successful snapshot {}", s.tag),
            s.finished_at,
        ));
    }
    if let Some(b) = &rec.last_backup {
        times.push((
            format!("the last backup run (`{}`)", b.command),
            b.finished_at,
        ));
    }
    for (kind, r) in &rec.runs {
        times.push((
            format!("the last {kind} run (`{}`)", r.command),
            r.finished_at,
        ));
    }
    if let Found::Present(d) = drill {
        times.push(("the last drill".into(), d.finished_at));
        if let Some(t) = d.last_success_at {
            times.push(("the last successful drill".into(), t));
        }
    }
    let mut future: Vec<FutureTime> = times
        .into_iter()
        .filter_map(|(what, at)| {
            clock::ahead(at, now).map(|by| FutureTime {
                what,
                at,
                ahead_secs: by.num_seconds(),
            })
        })
        .collect();
    // Furthest ahead first; for equal times, in the order above (the last
    // run before the entries it is carried into).
    future.sort_by_key(|f| std::cmp::Reverse(f.at));
    future
}

fn drill_facts(drill: &Found<DrillRecord>, age: &dyn Fn(DateTime<Utc>) -> i64) -> DrillFacts {
    let mut f = DrillFacts {
        state: "missing",
        outcome: None,
        tag: None,
        source: None,
        finished_at: None,
        age_secs: None,
        duration_secs: None,
        error: None,
        last_success_at: None,
        last_success_age_secs: None,
    };
    match drill {
        Found::Missing => {}
        Found::Unreadable(e) => {
            f.state = "unreadable";
            f.error = Some(e.clone());
        }
        Found::Present(d) => {
            f.state = "present";
            f.outcome = Some(d.outcome);
            f.tag = d.tag;
            f.source = Some(d.source.clone());
            f.finished_at = Some(d.finished_at);
            f.age_secs = Some(age(d.finished_at));
            f.duration_secs = Some(d.duration_secs);
            f.error = d.error.as_ref().map(|e| e.message.clone());
            f.last_success_at = d.last_success_at;
            f.last_success_age_secs = d.last_success_at.map(age);
        }
    }
    f
}

fn finish(mut report: Report, problems: Vec<Problem>) -> Report {
    report.status = problems
        .iter()
        .map(|p| p.status)
        .max()
        .unwrap_or(Status::Ok);
    report.exit_code = report.status.exit_code();
    let worst = problems.iter().find(|p| p.status == report.status);
    let snapshot = report.last_success.as_ref().map(|s| {
        format!(
            "last snapshot {} {}, {}, {}",
            s.tag,
            human::ago(s.age_secs),
            match (s.pushed, report.remote.configured) {
                (true, _) => "pushed",
                (false, true) => "NOT pushed",
                (false, false) => "local only (no remote)",
            },
            human::bytes(s.archive_bytes)
        )
    });
    let mut summary = format!("LIFEBOAT {} - ", report.status.label());
    match (worst, snapshot) {
        (None, Some(snap)) => summary.push_str(&snap),
        (None, None) => summary.push_str("no problems found"),
        (Some(p), snap) => {
            summary.push_str(&p.message);
            if problems.len() > 1 {
                summary.push_str(&format!(" (+{} more)", problems.len() - 1));
            }
            if let Some(snap) = snap.filter(|_| report.status != Status::Critical) {
                summary.push_str(&format!("; {snap}"));
            }
        }
    }
    report.summary = summary;
    report.problems = problems;
    report
}

/// The longest first line (before the perfdata) a monitoring plugin
/// should print: the monitoring-plugins guidelines ask for a short status
/// line; the details follow on the next lines.
pub const FIRST_LINE_MAX: usize = 100;

/// `text` cut to `max` characters (an ellipsis marks the cut; the full
/// text is on the problem lines below the first line).
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

impl Report {
    /// The performance data of the first line, after its ` | `, in the
    /// monitoring-plugins grammar `label=value[UOM];[warn];[crit];[min];[max]`:
    /// `age` of the last successful snapshot in seconds with the warning and
    /// critical thresholds, its archive `size` in bytes, and `drill_age`,
    /// the age of the last successful drill with its warning threshold.
    /// A value not known (never succeeded) is `U`. With several remotes
    /// there would be one `push_ok_<remote>` per remote; there is at most
    /// one today, and its state is in `push_ok` (1 pushed, 0 failed or not
    /// pushed) when a remote is configured.
    pub fn perfdata(&self) -> String {
        let t = &self.thresholds;
        let age = self
            .last_success
            .as_ref()
            .map_or("U".to_string(), |s| format!("{}s", s.age_secs));
        let size = self
            .last_success
            .as_ref()
            .map_or("U".to_string(), |s| format!("{}B", s.archive_bytes));
        let drill = self
            .drill
            .last_success_age_secs
            .map_or("U".to_string(), |s| format!("{s}s"));
        let mut p = format!(
            "age={age};{};{};0; size={size};;;0; drill_age={drill};{};;0;",
            t.warn_after_secs, t.critical_after_secs, t.drill_max_age_secs
        );
        if self.remote.configured {
            let pushed = self.last_success.as_ref().is_some_and(|s| s.pushed)
                && self.remote.last_push != Some(PushStatus::Failed);
            p.push_str(&format!(" push_ok={};1:;;0;1", u8::from(pushed)));
        }
        p
    }

    /// The plugin's status line (before the perfdata), at most
    /// [`FIRST_LINE_MAX`] characters: status, the worst problem (cut to
    /// fit), the age and size of the last successful snapshot. The full
    /// `summary` (in --json) and the problem lines carry the rest.
    pub fn first_line(&self) -> String {
        let head = format!("LIFEBOAT {} - ", self.status.label());
        // Without a problem: the snapshot with its tag and whether it is
        // off the machine; beside a problem (which says what is wrong with
        // it): only its age and size, to leave the problem room.
        let short = self.problems.iter().any(|p| p.status == self.status);
        let snap = self.last_success.as_ref().map(|s| {
            if short {
                let unpushed = !s.pushed && self.remote.configured;
                return format!(
                    "snapshot {}, {}{}",
                    human::ago(s.age_secs),
                    if unpushed { "NOT pushed, " } else { "" },
                    human::bytes(s.archive_bytes)
                );
            }
            format!(
                "last snapshot {} {}, {}, {}",
                s.tag,
                human::ago(s.age_secs),
                match (s.pushed, self.remote.configured) {
                    (true, _) => "pushed",
                    (false, true) => "NOT pushed",
                    (false, false) => "local only (no remote)",
                },
                human::bytes(s.archive_bytes)
            )
        });
        let worst = self.problems.iter().find(|p| p.status == self.status);
        let line = match (worst, snap) {
            (None, Some(snap)) => format!("{head}{snap}"),
            (None, None) => format!("{head}no problems found"),
            (Some(p), snap) => {
                let more = match self.problems.len() {
                    1 => String::new(),
                    n => format!(" (+{} more)", n - 1),
                };
                let tail = snap.map_or(String::new(), |s| format!("; {s}"));
                let room = FIRST_LINE_MAX
                    .saturating_sub(head.chars().count() + more.chars().count())
                    .saturating_sub(tail.chars().count());
                // The problem's start, then the snapshot's age and size.
                format!("{head}{}{more}{tail}", cut(&p.message, room.max(36)))
            }
        };
        cut(&line, FIRST_LINE_MAX)
    }

    /// The summary line, then one line per problem, then the facts.
    pub fn render_text(&self) -> String {
        let mut out = format!("{} | {}\n", self.first_line(), self.perfdata());
        for p in &self.problems {
            out.push_str(&format!("{}: {}\n", p.status.label(), p.message));
        }
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if let Some(r) = &self.last_run {
            // A snapshot whose push failed is recorded as a successful
            // snapshot, but the run exited 1: say both.
            let status = match self.remote.last_push {
                Some(PushStatus::Failed) if crate::record::run::is_backup_command(&r.command) => {
                    "took its snapshot but the push FAILED (exit 1)".to_string()
                }
                _ => format!("{:?}", r.status).to_lowercase(),
            };
            out.push_str(&format!(
                "last run:      {} {} at {} ({}, took {:.1}s)\n",
                r.command,
                status,
                at(r.finished_at),
                human::ago(r.age_secs),
                r.duration_secs
            ));
        }
        if let Some(s) = &self.last_success {
            out.push_str(&format!(
                "last success:  {} at {} ({}), {}\n",
                s.tag,
                at(s.finished_at),
                human::ago(s.age_secs),
                human::bytes(s.archive_bytes)
            ));
        }
        let remote = match (&self.remote.remote, self.remote.last_push) {
            _ if !self.remote.configured => {
                "none configured: snapshots stay on this machine".to_string()
            }
            (Some(r), Some(p)) => format!(
                "{r}, last push {}{}",
                format!("{p:?}").to_lowercase(),
                self.remote
                    .attempts
                    .filter(|a| *a > 0)
                    .map_or(String::new(), |a| format!(" ({a} attempt(s))"))
            ),
            _ => "configured; the last run did not push".to_string(),
        };
        out.push_str(&format!("remote:        {remote}\n"));
        let d = &self.drill;
        let drill = match (d.state, d.outcome, d.finished_at) {
            ("present", Some(o), Some(t)) => {
                format!(
                    "last drill {} at {} ({}) of {} from {}, recovery time {:.1}s",
                    format!("{o:?}").to_lowercase(),
                    at(t),
                    human::ago(d.age_secs.unwrap_or(0)),
                    d.tag.map_or("-".to_string(), |t| t.to_string()),
                    d.source.as_deref().unwrap_or("-"),
                    d.duration_secs.unwrap_or(0.0)
                ) + &d
                    .error
                    .as_ref()
                    .filter(|_| o == Outcome::Failed)
                    .map_or(String::new(), |e| format!(": {e}"))
            }
            ("unreadable", ..) => "drill.json unreadable".to_string(),
            _ => "never run".to_string(),
        };
        out.push_str(&format!("drill:         {drill}\n"));
        out.push_str(&format!(
            "thresholds:    warn after {}, critical after {}, drill max age {}\n",
            human::age(self.thresholds.warn_after_secs as i64),
            human::age(self.thresholds.critical_after_secs as i64),
            human::age(self.thresholds.drill_max_age_secs as i64)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::drill;
    use crate::record::run::{
        FailedDeletion, LastSuccess, PushResult, RetentionResult, SweepResult,
    };
    use chrono::Duration as D;
    use std::time::Duration;

    fn cfg() -> HealthConfig {
        HealthConfig {
            cadence: Duration::from_secs(3600),
            warn_after: Duration::from_secs(2 * 3600),
            critical_after: Duration::from_secs(4 * 3600),
            drill_max_age: Duration::from_secs(7 * 86_400),
            metrics_file: None,
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    /// A successful snapshot run that finished `mins` minutes ago, pushed.
    fn ok_run(mins: i64) -> RunRecord {
        let t = now() - D::minutes(mins);
        let mut r = RunRecord::start("snapshot", t - D::seconds(2));
        r.finished_at = t;
        r.push = Some(PushResult {
            remote: "dir:/mnt/nas".into(),
            status: PushStatus::Pushed,
            attempts: 1,
            pushed: vec![],
            error: None,
            refused: vec![],
        });
        r.last_success = Some(LastSuccess {
            tag: Tag::new(t, crate::tag::Kind::Scheduled),
            finished_at: t,
            archive_bytes: 3_100_000,
            pushed: true,
        });
        r
    }

    fn fresh_drill() -> Found<DrillRecord> {
        Found::Present(drill::sample(drill::Outcome::Success, now() - D::hours(20)))
    }

    fn eval(record: RunRecord) -> Report {
        evaluate(&Found::Present(record), &fresh_drill(), &cfg(), true, now())
    }

    fn assert_status(r: &Report, status: Status, needle: &str) {
        assert_eq!(r.status, status, "{}", r.render_text());
        assert_eq!(r.exit_code, status.exit_code());
        assert!(
            r.summary
                .starts_with(&format!("LIFEBOAT {} - ", status.label())),
            "{}",
            r.summary
        );
        assert!(
            r.problems.iter().any(|p| p.message.contains(needle)),
            "no problem mentions {needle:?}: {}",
            r.render_text()
        );
    }

    #[test]
    fn fresh_pushed_drilled_is_ok() {
        let r = eval(ok_run(14));
        assert_eq!(r.status, Status::Ok, "{}", r.render_text());
        assert!(r.problems.is_empty());
        let tag = Tag::new(now() - D::minutes(14), crate::tag::Kind::Scheduled);
        assert_eq!(
            r.summary,
            format!("LIFEBOAT OK - last snapshot {tag} 14m ago, pushed, 3.1 MB")
        );
        assert_eq!(r.last_success.as_ref().unwrap().age_secs, 14 * 60);
    }

    #[test]
    fn age_thresholds() {
        // Exactly at the threshold is still fine; past it is not.
        assert_eq!(eval(ok_run(120)).status, Status::Ok);
        assert_status(&eval(ok_run(121)), Status::Warning, "warning after 2h");
        assert_eq!(eval(ok_run(240)).status, Status::Warning);
        assert_status(&eval(ok_run(241)), Status::Critical, "critical after 4h");
    }

    #[test]
    fn never_succeeded_is_critical() {
        let mut r = ok_run(1);
        r.last_success = None;
        r.status = RunStatus::Failed;
        let report = eval(r);
        assert_status(&report, Status::Critical, "no snapshot has ever succeeded");
        assert!(report.summary.contains("never") || report.summary.contains("ever"));
    }

    #[test]
    fn failed_run_with_fresh_earlier_success_warns() {
        let mut r = ok_run(30);
        r.finished_at = now() - D::minutes(1);
        r.status = RunStatus::Failed;
        r.push = None;
        r.error = Some(ErrorRecord {
            kind: crate::error::Kind::Database,
            message: "database `tasks`: /d/tasks.db does not exist".into(),
            hint: None,
        });
        let report = eval(r);
        assert_status(&report, Status::Warning, "does not exist");
        // The earlier success is still reported.
        assert!(
            report.summary.contains("last snapshot"),
            "{}",
            report.summary
        );
    }

    #[test]
    fn a_successful_prune_does_not_hide_a_failed_backup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last_run.json");
        let earlier = ok_run(30);
        let failure = crate::Error::database("database `tasks`: /d/tasks.db does not exist");
        let failed = RunRecord::start("snapshot", now() - D::minutes(2))
            .finish(Err(&failure), Some(&earlier), &path)
            .unwrap();
        let prune = RunRecord::start("prune", now() - D::minutes(1))
            .finish(Ok(()), Some(&failed), &path)
            .unwrap();
        assert_eq!(prune.status, RunStatus::Success);
        // Evaluated at the fixed test clock: the carried-forward success is
        // fresh then, so the warning comes from the failed backup alone.
        let report = eval(prune);
        assert_status(&report, Status::Warning, "last backup run (`snapshot`");
        assert!(report.render_text().contains("does not exist"));
    }

    #[test]
    fn failed_push_warns() {
        let mut r = ok_run(5);
        let p = r.push.as_mut().unwrap();
        p.status = PushStatus::Failed;
        p.error = Some(ErrorRecord {
            kind: crate::error::Kind::RemoteTransient,
            message: "network unreachable".into(),
            hint: None,
        });
        r.last_success.as_mut().unwrap().pushed = false;
        let report = eval(r);
        assert_status(&report, Status::Warning, "only on this machine");
        assert_eq!(report.problems.len(), 1, "one problem, not two");
        assert_eq!(report.remote.last_push, Some(PushStatus::Failed));
        assert_eq!(report.remote.error.as_deref(), Some("network unreachable"));
    }

    #[test]
    fn a_refused_archive_warns_naming_the_snapshot_the_remote_and_the_fix() {
        let mut r = ok_run(5);
        let tag = Tag::parse("snap-20261101T000000Z").unwrap();
        r.push
            .as_mut()
            .unwrap()
            .refused
            .push(crate::record::RefusedPush {
                tag,
                error: ErrorRecord {
                    kind: crate::error::Kind::RemotePermanent,
                    message: "the archive is 3000000000 bytes".into(),
                    hint: Some("copy it somewhere safe".into()),
                },
            });
        let report = eval(r);
        assert_status(
            &report,
            Status::Warning,
            "snapshot snap-20261101T000000Z cannot be pushed to dir:/mnt/nas: the archive is 3000000000 bytes; \
             it is not on that remote (fix: copy it somewhere safe)",
        );
    }

    #[test]
    fn unpushed_snapshot_after_failed_run_warns_only_with_a_remote() {
        let mut r = ok_run(5);
        r.push = None;
        r.last_success.as_mut().unwrap().pushed = false;
        assert_status(&eval(r.clone()), Status::Warning, "was not pushed");
        let without_remote = evaluate(&Found::Present(r), &fresh_drill(), &cfg(), false, now());
        assert_eq!(without_remote.status, Status::Ok);
        assert!(without_remote.summary.contains("local only"));
    }

    #[test]
    fn failed_retention_deletion_warns() {
        let mut r = ok_run(5);
        let tag = Tag::parse("snap-20261101T000000Z").unwrap();
        r.retention = Some(RetentionResult {
            local: Some(SweepResult::default()),
            remote: Some(SweepResult {
                kept: 3,
                deleted: vec![],
                failed: vec![FailedDeletion {
                    tag,
                    error: "HTTP 503".into(),
                }],
            }),
            remotes: Default::default(),
        });
        let report = eval(r);
        assert_status(&report, Status::Warning, "could not delete 1 snapshot");
        assert_eq!(report.retention_failures[0].place, "remote");
    }

    #[test]
    fn drill_rules() {
        let run = Found::Present(ok_run(5));
        let check = |drill: Found<DrillRecord>| evaluate(&run, &drill, &cfg(), true, now());
        assert_status(&check(Found::Missing), Status::Warning, "ever succeeded");
        assert_status(
            &check(Found::Unreadable("bad json".into())),
            Status::Warning,
            "cannot read drill.json",
        );
        let stale = drill::sample(drill::Outcome::Success, now() - D::days(8));
        assert_status(
            &check(Found::Present(stale)),
            Status::Warning,
            "drill_max_age 7d",
        );
        // A failed drill with an earlier success inside drill_max_age is
        // reported but not a problem by itself.
        let mut failed = drill::sample(drill::Outcome::Failed, now() - D::hours(1));
        failed.last_success_at = Some(now() - D::days(2));
        let report = check(Found::Present(failed.clone()));
        assert_eq!(report.status, Status::Ok, "{}", report.render_text());
        assert!(report.render_text().contains("last drill failed"));
        failed.last_success_at = None;
        assert_status(
            &check(Found::Present(failed)),
            Status::Warning,
            "ever succeeded",
        );
    }

    #[test]
    fn missing_or_unreadable_record_is_unknown() {
        for record in [Found::Missing, Found::Unreadable("expected value".into())] {
            let r = evaluate(&record, &fresh_drill(), &cfg(), true, now());
            assert_eq!(r.status, Status::Unknown);
            assert_eq!(r.exit_code, 3);
            assert!(
                r.summary.starts_with("LIFEBOAT UNKNOWN - "),
                "{}",
                r.summary
            );
        }
    }

    #[test]
    fn a_run_from_the_future_is_clock_skew_not_fresh() {
        // Recorded while the clock was 6h ahead; judged at the real time.
        let report = eval(ok_run(-6 * 60));
        assert_status(
            &report,
            Status::Warning,
            "clock skew: the last run (`snapshot`) is 6h in the future by this machine's clock",
        );
        assert!(
            report.summary.starts_with("LIFEBOAT WARNING - clock skew"),
            "{}",
            report.summary
        );
        // The facts say how far ahead, never a clamped "0s ago".
        let s = report.last_success.as_ref().unwrap();
        assert_eq!(s.age_secs, -6 * 3600);
        assert!(
            report.summary.contains(" 6h in the future, pushed"),
            "{}",
            report.summary
        );
        let text = report.render_text();
        assert!(!text.contains("0s ago"), "{text}");
        assert!(text.contains("(6h in the future, took"), "{text}");
        // One problem, however many places recorded the wrong time.
        assert_eq!(report.problems.len(), 1, "{text}");
        assert_eq!(report.clock_skew.len(), 2, "the run and the success");
        assert_eq!(report.clock_skew[0].ahead_secs, 6 * 3600);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["last_run"]["age_secs"], -6 * 3600);
        assert_eq!(json["clock_skew"][0]["what"], "the last run (`snapshot`)");
    }

    #[test]
    fn within_the_allowed_skew_is_fine() {
        let ahead = crate::clock::ALLOWED_SKEW.num_minutes();
        let report = eval(ok_run(-ahead));
        assert_eq!(report.status, Status::Ok, "{}", report.render_text());
        assert!(report.clock_skew.is_empty());
        // Still shown as it is, not as "0s ago".
        assert!(
            report.summary.contains(&format!("{ahead}m in the future")),
            "{}",
            report.summary
        );
        assert_status(&eval(ok_run(-ahead - 1)), Status::Warning, "clock skew");
    }

    #[test]
    fn a_future_time_anywhere_in_the_records_warns() {
        // A prune run recorded from the future, carried forward in `runs`
        // behind a correct snapshot run.
        let mut r = ok_run(5);
        r.runs.insert(
            "prune".into(),
            crate::record::run::RunSummary {
                command: "prune".into(),
                status: RunStatus::Success,
                finished_at: now() + D::hours(3),
                duration_secs: 0.1,
                error: None,
            },
        );
        assert_status(
            &eval(r),
            Status::Warning,
            "clock skew: the last prune run (`prune`) is 3h in the future",
        );

        // A drill from the future: neither fresh nor "0s ago".
        let future = drill::sample(drill::Outcome::Success, now() + D::days(2));
        let report = evaluate(
            &Found::Present(ok_run(5)),
            &Found::Present(future),
            &cfg(),
            true,
            now(),
        );
        assert_status(
            &report,
            Status::Warning,
            "clock skew: the last drill is 2d in the future",
        );
        assert_eq!(report.drill.age_secs, Some(-2 * 86_400));
        assert!(
            report.render_text().contains("(2d in the future) of"),
            "{}",
            report.render_text()
        );
    }

    #[test]
    fn a_future_success_with_a_stale_drill_reports_both() {
        let stale = drill::sample(drill::Outcome::Success, now() - D::days(8));
        let report = evaluate(
            &Found::Present(ok_run(-600)),
            &Found::Present(stale),
            &cfg(),
            true,
            now(),
        );
        assert_status(&report, Status::Warning, "clock skew");
        assert_status(&report, Status::Warning, "drill_max_age 7d");
        // A negative age is never "older than the threshold" either.
        assert!(
            !report.problems.iter().any(|p| p.message.contains("old (")),
            "{}",
            report.render_text()
        );
    }

    #[test]
    fn worst_problem_leads_the_summary() {
        let mut r = ok_run(300);
        r.push.as_mut().unwrap().status = PushStatus::Failed;
        let report = evaluate(&Found::Present(r), &Found::Missing, &cfg(), true, now());
        assert_eq!(report.status, Status::Critical);
        assert!(
            report.summary.contains("critical after"),
            "{}",
            report.summary
        );
        assert!(report.summary.contains("(+2 more)"), "{}", report.summary);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["status"], "CRITICAL");
        assert_eq!(json["last_success"]["age_secs"], 300 * 60);
        assert_eq!(json["drill"]["state"], "missing");
    }
}
