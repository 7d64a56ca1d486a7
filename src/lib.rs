//! lifeboat: hot, consistent, off-machine snapshots of an application's vital
//! SQLite databases, and restores that never leave live data worse.
//!
//! The pipeline, and the module that owns each step:
//! - [`config`]: `lifeboat.toml`, validated up front.
//! - [`snapshot`]: hot copy through SQLite's backup API, manifest, archive
//!   (parallel gzip or zstd), and the hostile-input-safe archive reader.
//! - [`remote`]: pushing, listing, downloading and deleting snapshots
//!   (GitHub releases through `gh`, or a plain directory), and the queue of
//!   snapshots not yet pushed.
//! - [`retention`]: the pure grandfather-father-son plan, and the sweeps.
//! - [`migrate`]: migration ladders (`NNNN_description.sql`).
//! - [`restore`]: obtain, verify, stage, migrate, check, swap; recovery of
//!   an interrupted restore, and undo.
//! - [`verify`] / [`drill`]: prove a snapshot restores without touching live data.
//! - [`runrecord`] / [`health`] / [`metrics`]: what the last run did, whether
//!   that is good, and the same for Prometheus.
//! - [`schedule`]: cron, systemd and launchd jobs rendered for this config.
//! - [`commands`]: one module per subcommand; [`human`] and [`progress`]
//!   format what people read.
//!
//! Shared plumbing: [`error`] (errors with hints and exit codes), [`fsutil`]
//! (temp file + fsync + rename), [`lock`] (one run at a time), [`tag`]
//! (snapshot names carry their UTC time), [`provenance`] (git facts).

pub mod commands;
pub mod config;
pub mod drill;
pub mod error;
pub mod fsutil;
pub mod health;
pub mod human;
pub mod lock;
pub mod metrics;
pub mod migrate;
pub mod par;
pub mod progress;
pub mod provenance;
pub mod remote;
pub mod restore;
pub mod retention;
pub mod runrecord;
pub mod schedule;
pub mod snapshot;
pub mod tag;
pub mod verify;

pub use error::{Error, Result};
