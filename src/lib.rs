//! lifeboat: hot, consistent, off-machine snapshots of an application's vital
//! SQLite databases, and restores that never leave live data worse.
//!
//! Three layers (`docs/architecture.md` draws them):
//! - [`commands`]: the command line. Parse arguments, call one operation,
//!   print its report. Nothing imports from it.
//! - [`ops`]: the operations (backup, push, prune, restore, undo, verify,
//!   drill, migrate, list, doctor, demo), each a function taking plain
//!   options and returning a typed report; [`ops::run`] is the one wrapper
//!   that locks, recovers, records and refreshes the metrics.
//! - The pipeline parts the operations are made of:
//!   - [`config`]: `lifeboat.toml`, validated up front.
//!   - [`store`]: where every file lives (the backup directory, and
//!     restore's area beside the data).
//!   - [`snapshot`]: hot copy through SQLite's backup API, manifest, archive
//!     (parallel gzip or zstd), and the hostile-input-safe archive reader.
//!   - [`check`]: the one database checker verify, drill and restore share.
//!   - [`remote`]: the backends (GitHub releases through `gh`, a plain
//!     directory), each with its own readiness checks.
//!   - [`retention`]: the pure grandfather-father-son plan, and the sweeps.
//!   - [`migrate`]: migration ladders (`NNNN_description.sql`).
//!   - [`restore`]: obtain, stage, swap; recovery of an interrupted restore,
//!     and undo.
//!   - [`record`] / [`health`] / [`metrics`]: what the runs did, whether
//!     that is good, and the same for Prometheus.
//!   - [`schedule`]: cron, systemd and launchd jobs rendered for this config.
//!   - [`human`] and [`progress`]: what people read.
//!
//! Shared plumbing: [`audit`] (the audit log), [`error`] (errors with hints and exit codes), [`fsutil`]
//! (temp file + fsync + rename), [`hash`] (sha256), [`lock`] (one run at a
//! time), [`interrupt`] (Ctrl-C and other stop signals end a run at a safe
//! point), [`tag`] (snapshot names carry their UTC time), [`clock`] (what
//! counts as the future, and the newest snapshot that is not), [`par`] (work
//! on every core), [`provenance`] (git facts).

pub mod accounts;
pub mod audit;
pub mod check;
pub mod child;
pub mod clock;
pub mod commands;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod hash;
pub mod health;
pub mod human;
pub mod interrupt;
pub mod lock;
pub mod metrics;
pub mod migrate;
pub mod notify;
pub mod ops;
pub mod par;
pub mod progress;
pub mod provenance;
pub mod record;
pub mod remote;
pub mod restore;
pub mod retention;
pub mod schedule;
pub mod snapshot;
pub mod sqlext;
pub mod store;
pub mod tag;

pub use error::{Error, Result};
