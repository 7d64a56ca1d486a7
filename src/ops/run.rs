//! The one wrapper every state-changing operation runs in.
//!
//! [`recorded`] takes the run lock, finishes or rolls back an interrupted
//! restore, runs the operation, writes `last_run.json` (whatever happened)
//! and refreshes the metrics file. [`drilled`] does the same for a restore
//! drill, whose record is `drill.json` and which needs no lock (it works in
//! its own scratch directory). [`locked`] is the first two steps alone, for
//! work that changes nothing worth recording (a dry run, a listing).
//!
//! Usage and configuration errors (exit code 2) are not runs: nothing was
//! attempted, so nothing is recorded and the metrics are not touched. A
//! typo at 3 a.m. must not page anyone.
//!
//! A run stopped by SIGINT, SIGTERM or SIGHUP ([`crate::interrupt`]) is a
//! failed run like any other: the operation returns an `interrupted` error
//! at its next check point (a gh call stops at once), and it is recorded
//! here before the lock is released.

use super::Env;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::Lock;
use crate::record::{DrillRecord, RunRecord};

/// The state of one run, handed to the operation.
pub struct Run<'a> {
    pub config: &'a Config,
    /// Filled in by the operation; written when it returns.
    pub record: RunRecord,
}

/// Run `body` as one recorded run of `command` (`snapshot`, `backup-now`,
/// `restore`, `prune`, `migrate`). Returns its value and the record as
/// written.
pub fn recorded<T>(
    config: &Config,
    env: &Env,
    command: &str,
    body: impl FnOnce(&mut Run) -> Result<T>,
) -> Result<(T, RunRecord)> {
    let store = config.store();
    let mut run = Run {
        config,
        record: RunRecord::start(command, chrono::Utc::now()),
    };
    // The lock is held until the record is written, and the record this
    // run carries facts forward from is read under it: a run that waited
    // for another must build on that one's record, not on what was there
    // before it.
    let mut lock = None;
    let mut previous = None;
    let outcome = (|| {
        lock = Some(Lock::acquire(
            &store,
            command,
            config.snapshot.lock_timeout,
        )?);
        previous = RunRecord::load(&store.last_run()).ok().flatten();
        // What it did is shown to the person running lifeboat as it happens.
        crate::restore::recover(config)?;
        // A stop that came while waiting for the lock: nothing started yet.
        crate::interrupt::check()?;
        body(&mut run)
    })();
    let outcome = match outcome {
        Err(e) if is_usage(&e) => return Err(e),
        other => other,
    };
    if lock.is_none() {
        // Not ours to hold (another run has it): the newest record we can see.
        previous = RunRecord::load(&store.last_run()).ok().flatten();
    }
    let written = run.record.finish(
        outcome.as_ref().map(|_| ()),
        previous.as_ref(),
        &store.last_run(),
    );
    crate::metrics::refresh(config, env.metrics_file.as_deref());
    drop(lock);
    // The snapshot this run took, even when a later step (the push) failed,
    // and a failed push, which fails the run (exit 1) with the snapshot kept.
    let backup = crate::record::run::is_backup_command(command);
    // A partial snapshot's error (the databases it lacks) comes first.
    let (tag, push_error) = match &written {
        Ok(record) if backup => {
            let partial = record
                .error
                .as_ref()
                .filter(|_| record.status == crate::record::Status::Partial)
                .map(|e| (e.message.clone(), e.hint.clone()));
            let push = record
                .pushes()
                .into_iter()
                .find_map(|p| p.error.as_ref().map(|e| (&p.remote, e)))
                .map(|(remote, e)| {
                    let tag = record.snapshot.as_ref().map(|s| s.tag.to_string());
                    (
                        format!(
                            "snapshot {} was taken but not pushed to {remote}: {}",
                            tag.unwrap_or_default(),
                            e.message
                        ),
                        e.hint.clone(),
                    )
                });
            (
                record.snapshot.as_ref().map(|s| s.tag.to_string()),
                partial.or(push),
            )
        }
        _ => (None, None),
    };
    let result = match (outcome, written) {
        (Ok(value), Ok(record)) => Ok((value, record)),
        (Ok(_), Err(write)) => Err(write),
        // `finish` folded the lost record into the run's own error.
        (Err(_), Err(folded)) => Err(folded),
        (Err(run_error), Ok(_)) => Err(run_error),
    };
    let error = match &result {
        Err(e) => Some((e.message.clone(), e.hint.clone())),
        Ok(_) => push_error,
    };
    let status = match (&result, &error) {
        (Ok((_, record)), Some(_)) if record.status == crate::record::Status::Partial => {
            crate::record::Status::Partial
        }
        (_, None) => crate::record::Status::Success,
        (_, Some(_)) => crate::record::Status::Failed,
    };
    notify(config, command, status, tag, error, previous.as_ref());
    result
}

/// The `[notify]` hooks for a recorded run, after its record is written and
/// its lock released (a hook can neither change the outcome nor hold up
/// the next run for longer than `[notify] timeout`).
fn notify(
    config: &Config,
    command: &str,
    status: crate::record::Status,
    tag: Option<String>,
    error: Option<(String, Option<String>)>,
    previous: Option<&RunRecord>,
) {
    let path = config.store().last_run();
    crate::notify::run_hooks(
        &config.notify,
        &crate::notify::Outcome {
            command,
            status,
            tag,
            error,
            previous,
            failed_before: None,
            record_path: &path,
        },
    );
}

/// Run `body` as a restore drill recorded in `drill.json`. The record
/// starts as a failure and `body` fills it in; [`recorded`]'s rules apply.
pub fn drilled<T>(
    config: &Config,
    env: &Env,
    record: &mut DrillRecord,
    body: impl FnOnce(&mut DrillRecord) -> Result<T>,
) -> Result<T> {
    let path = config.store().drill_record();
    let previous = DrillRecord::load(&path).ok().flatten();
    let clock = std::time::Instant::now();
    let outcome = body(record);
    if let Err(e) = &outcome
        && is_usage(e)
    {
        return outcome;
    }
    record.finished_at = chrono::Utc::now();
    record.duration_secs = clock.elapsed().as_secs_f64();
    match &outcome {
        Ok(_) => record.outcome = crate::record::Outcome::Success,
        Err(e) => record.error = Some(e.into()),
    }
    let saved = record.save(previous.as_ref(), &path);
    crate::metrics::refresh(config, env.metrics_file.as_deref());
    // The daily drill failing is exactly what a failure ping is for.
    let failure = match &outcome {
        Ok(_) => None,
        Err(e) => Some((e.message.clone(), e.hint.clone())),
    };
    crate::notify::run_hooks(
        &config.notify,
        &crate::notify::Outcome {
            command: "drill",
            status: match failure {
                None => crate::record::Status::Success,
                Some(_) => crate::record::Status::Failed,
            },
            tag: record.tag.map(|t| t.to_string()),
            error: failure,
            previous: None,
            failed_before: Some(
                previous
                    .as_ref()
                    .is_some_and(|p| p.outcome == crate::record::Outcome::Failed),
            ),
            record_path: &path,
        },
    );
    match (outcome, saved) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => {
            // The drill passed but no record says so: report it as what it is.
            record.outcome = crate::record::Outcome::Failed;
            Err(e.context("the drill passed, but its record could not be written"))
        }
        (Err(e), Ok(())) => Err(e),
        (Err(e), Err(save)) => Err(Error {
            message: format!(
                "{}\n  (the drill record could not be written either: {})",
                e.message, save.message
            ),
            ..e
        }),
    }
}

/// The lock and the recovery of an interrupted restore, without a record:
/// for work that changes nothing (`prune --dry-run`, the restore listing).
pub fn locked<T>(config: &Config, command: &str, body: impl FnOnce() -> Result<T>) -> Result<T> {
    let _lock = Lock::acquire(&config.store(), command, config.snapshot.lock_timeout)?;
    crate::restore::recover(config)?;
    body()
}

fn is_usage(e: &Error) -> bool {
    e.exit_code() == 2
}
