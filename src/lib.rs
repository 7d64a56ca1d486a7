//! lifeboat: hot, consistent, off-machine snapshots of an application's vital
//! SQLite databases, and restores that never leave live data worse.
//!
//! The pipeline, and the module that owns each step:
//! - [`config`]: `lifeboat.toml`, validated up front.
//! - [`snapshot`]: hot copy through SQLite's backup API, manifest, archive.
//! - [`remote`]: pushing, listing, downloading and deleting snapshots
//!   (GitHub releases through `gh`, or a plain directory).
//! - [`retention`]: the pure grandfather-father-son plan, and the sweeps.
//! - [`restore`]: stage, verify, migrate, check, swap.
//! - [`runrecord`] / [`health`]: what the last run did, and whether that is good.
//! - [`commands`]: one module per subcommand.

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
pub mod progress;
pub mod provenance;
pub mod remote;
pub mod restore;
pub mod retention;
pub mod runrecord;
pub mod snapshot;
pub mod tag;
pub mod verify;

pub use error::{Error, Result};
