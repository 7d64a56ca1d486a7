//! The operations: everything lifeboat does, as library functions that
//! take a [`Config`](crate::config::Config), an [`Env`] and a plain option
//! struct, and return a typed report. The commands in `commands/` parse
//! arguments, call one operation and print its report; `demo` and
//! `migrate` call operations, never other commands.
//!
//! Every operation that changes state opens its run through [`run`]: the
//! lock, the recovery of an interrupted restore, the run record and the
//! metrics are taken care of there, in one place, so no operation can forget
//! a step.

pub mod about;
pub mod backup;
pub mod demo;
pub mod doctor;
pub mod drill;
pub mod init;
pub mod list;
pub mod migrate;
pub mod prune;
pub mod push;
pub mod restore;
pub mod run;
pub mod schedule;
pub mod sync;
pub mod verify;

use std::path::PathBuf;

/// How the caller wants an operation to report, beside its result.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Write the Prometheus metrics here after each recorded run
    /// (overrides `[health] metrics_file`).
    pub metrics_file: Option<PathBuf>,
}
