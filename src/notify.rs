//! `[notify]` hooks: commands run after a recorded run, told how it ended.
//!
//! `on_failure` runs after a failed run, `on_success` after a successful
//! one, and `on_recovery` after the first success following a failure of
//! the same kind of run (the previous record's `runs` entry for that kind;
//! both `on_success` and `on_recovery` run then). Each hook is an argv list,
//! run without a shell, after the run's record is written (by the run
//! wrapper, [`crate::ops::run`]: `recorded` for `last_run.json`, `drilled`
//! for a drill's `drill.json`), with the outcome in `LIFEBOAT_*`
//! environment variables and `LIFEBOAT_RECORD` naming the record file.
//!
//! A hook is best effort: it runs for at most `[notify] timeout` (its whole
//! process group is killed then), and a hook that cannot start, fails or
//! hangs is logged as a warning. It never changes the run's exit status and
//! never holds the run lock (it runs after the lock is released).

use crate::config::NotifyConfig;
use crate::record::{RunKind, RunRecord, Status};
use std::path::Path;
use std::process::Command;

/// Which hook an outcome calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Success,
    Failure,
    Recovery,
}

impl Event {
    pub fn name(self) -> &'static str {
        match self {
            Event::Success => "success",
            Event::Failure => "failure",
            Event::Recovery => "recovery",
        }
    }
}

/// What the hooks are told about one run.
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    pub command: &'a str,
    /// The run's final status (a run whose record could not be written failed).
    pub status: Status,
    pub tag: Option<String>,
    /// The failure's message and hint.
    pub error: Option<(String, Option<String>)>,
    /// The previous record (for `on_recovery`).
    pub previous: Option<&'a RunRecord>,
    /// Whether the same kind of run failed last time, when the caller knows
    /// it from a record of its own (a drill's `drill.json`); `None`: judged
    /// from `previous`.
    pub failed_before: Option<bool>,
    pub record_path: &'a Path,
}

/// The events one outcome raises, in the order their hooks run.
pub fn events(outcome: &Outcome) -> Vec<Event> {
    match outcome.status {
        // A partial snapshot exits 1: someone must fix the database it lacks.
        Status::Failed | Status::Partial => vec![Event::Failure],
        Status::Success => {
            let kind = RunKind::of(outcome.command);
            let failed_before = outcome.failed_before.unwrap_or(false)
                || kind
                .and_then(|kind| outcome.previous?.runs.get(kind.label()))
                .is_some_and(|prev| prev.status != Status::Success)
                // A snapshot whose push failed failed the run (exit 1),
                // though its record's status says the snapshot was taken.
                || (kind == Some(RunKind::Snapshot)
                    && outcome
                        .previous
                        .is_some_and(|p| p.pushes().iter().any(|p| p.error.is_some())));
            if failed_before {
                vec![Event::Success, Event::Recovery]
            } else {
                vec![Event::Success]
            }
        }
    }
}

/// Run the configured hooks for `outcome`. Never fails; problems are logged.
pub fn run_hooks(config: &NotifyConfig, outcome: &Outcome) {
    for event in events(outcome) {
        let argv = match event {
            Event::Success => &config.on_success,
            Event::Failure => &config.on_failure,
            Event::Recovery => &config.on_recovery,
        };
        if let Some(argv) = argv {
            run_one(argv, event, config.timeout, outcome);
        }
    }
}

fn run_one(argv: &[String], event: Event, timeout: std::time::Duration, outcome: &Outcome) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let status = match outcome.status {
        Status::Success => "success",
        Status::Partial => "partial",
        Status::Failed => "failed",
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LIFEBOAT_EVENT", event.name())
        .env("LIFEBOAT_STATUS", status)
        .env("LIFEBOAT_COMMAND", outcome.command)
        .env("LIFEBOAT_TAG", outcome.tag.as_deref().unwrap_or(""))
        .env(
            "LIFEBOAT_ERROR",
            outcome.error.as_ref().map(|e| e.0.as_str()).unwrap_or(""),
        )
        .env(
            "LIFEBOAT_HINT",
            outcome
                .error
                .as_ref()
                .and_then(|e| e.1.as_deref())
                .unwrap_or(""),
        )
        .env("LIFEBOAT_RECORD", outcome.record_path);
    let hook = format!("on_{}", event.name());
    match crate::child::run(&mut cmd, timeout) {
        Ok(crate::child::Ended::Exited { status, stderr, .. }) if !status.success() => {
            tracing::warn!(
                hook,
                program,
                %status,
                stderr = %String::from_utf8_lossy(&stderr).trim(),
                "notify hook failed (the run's outcome is unchanged)"
            )
        }
        Ok(crate::child::Ended::Exited { .. }) => {
            tracing::info!(hook, program, "notify hook ran")
        }
        Ok(crate::child::Ended::TimedOut | crate::child::Ended::Stopped(_)) => tracing::warn!(
            hook,
            program,
            ?timeout,
            "notify hook still running at [notify] timeout; killed (the run's outcome is unchanged)"
        ),
        Err(e) => tracing::warn!(
            hook,
            program,
            error = %e,
            "notify hook could not be started (the run's outcome is unchanged)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::RunSummary;

    fn previous(kind: &str, status: Status) -> RunRecord {
        let mut r = RunRecord::start("prune", chrono::Utc::now());
        r.runs.insert(
            kind.to_string(),
            RunSummary {
                command: kind.to_string(),
                status,
                finished_at: chrono::Utc::now(),
                duration_secs: 0.0,
                error: None,
            },
        );
        r
    }

    fn events_for(command: &str, status: Status, prev: Option<&RunRecord>) -> Vec<Event> {
        events(&Outcome {
            command,
            status,
            tag: None,
            error: None,
            previous: prev,
            failed_before: None,
            record_path: Path::new("/x"),
        })
    }

    #[test]
    fn a_drill_that_passes_after_failing_is_a_recovery() {
        let outcome = |failed_before| Outcome {
            command: "drill",
            status: Status::Success,
            tag: None,
            error: None,
            previous: None,
            failed_before: Some(failed_before),
            record_path: Path::new("/x"),
        };
        assert_eq!(
            events(&outcome(true)),
            vec![Event::Success, Event::Recovery]
        );
        assert_eq!(events(&outcome(false)), vec![Event::Success]);
    }

    #[test]
    fn recovery_is_per_kind_of_run() {
        let failed_snapshot = previous("snapshot", Status::Failed);
        // backup-now is a snapshot run: its success ends the snapshot failure.
        assert_eq!(
            events_for("backup-now", Status::Success, Some(&failed_snapshot)),
            [Event::Success, Event::Recovery]
        );
        // A prune's success does not.
        assert_eq!(
            events_for("prune", Status::Success, Some(&failed_snapshot)),
            [Event::Success]
        );
        assert_eq!(
            events_for(
                "snapshot",
                Status::Success,
                Some(&previous("snapshot", Status::Success))
            ),
            [Event::Success]
        );
        assert_eq!(
            events_for("snapshot", Status::Success, None),
            [Event::Success]
        );
        assert_eq!(
            events_for("snapshot", Status::Failed, Some(&failed_snapshot)),
            [Event::Failure]
        );
    }
}
