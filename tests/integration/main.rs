//! lifeboat's integration tests: one binary, one module per area, all
//! driving the real `lifeboat` binary against real SQLite files.

#[path = "../support/mod.rs"]
mod support;

mod agreement;
mod apps;
mod audit;
mod clock;
mod crash;
mod demo;
mod dir_remote;
mod health;
mod installations;
mod interrupt;
mod jobs;
mod layout;
mod links;
mod output;
mod rclone_remote;
mod real_data;
mod remote;
mod remotes;
mod restore;
mod restore_ux;
mod retention;
mod runbook;
mod setup;
mod snapshot;
mod source;
mod verify;
