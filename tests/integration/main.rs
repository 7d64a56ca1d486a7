//! lifeboat's integration tests: one binary, one module per area, all
//! driving the real `lifeboat` binary against real SQLite files.

#[path = "../support/mod.rs"]
mod support;

mod demo;
mod health;
mod remote;
mod restore;
mod retention;
mod snapshot;
mod verify;
