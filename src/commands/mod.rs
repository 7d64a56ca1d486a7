//! The command line: one module per subcommand, each with a clap `Args`
//! struct and a `run` that turns the arguments into an operation's options
//! (see [`crate::ops`]), calls that one operation, and prints its report as
//! text or `--json`. No logic lives here; nothing in the library imports
//! from here.
//!
//! `run` returns the process exit code on success (0, or a monitoring status
//! for `health`) and an [`Error`](crate::Error) otherwise, which `main` prints and maps to
//! its exit code (2 for config/usage, 128 + the signal for an interrupted
//! run, 1 for any other failed run).

#[macro_use]
pub mod out;

pub mod completions;
pub mod demo;
pub mod doctor;
pub mod drill;
pub mod health;
pub mod init;
pub mod json;
pub mod list;
pub mod migrate;
pub mod prune;
pub mod restore;
pub mod schedule;
pub mod snapshot;
pub mod sync;
pub mod verify;
pub mod version;

use crate::config::{self, Config};
use crate::error::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// A tag argument, or a usage error that says what tags look like.
pub(crate) fn parse_tag(s: &str) -> Result<crate::tag::Tag> {
    crate::tag::Tag::parse(s).ok_or_else(|| {
        crate::Error::usage(format!("`{s}` is not a snapshot tag"))
            .with_hint("tags look like snap-myapp-20261122T014500Z; `lifeboat list` shows them")
    })
}

/// An installation name argument (`--installation NAME`).
pub(crate) fn parse_installation(s: &str) -> Result<crate::tag::Installation> {
    crate::tag::Installation::parse(s).ok_or_else(|| {
        crate::Error::usage(format!("`{s}` is not an installation name"))
            .with_hint("installation names are lowercase letters, digits and `-`; `lifeboat list --all` shows them in the tags")
    })
}

/// Hot, consistent, off-machine snapshots of vital SQLite databases.
///
/// Exit codes: 0 success, 1 the run failed, 2 usage or configuration error
/// (nothing was attempted), 128+N stopped by signal N at a safe point and
/// recorded as interrupted (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). `health`
/// uses monitoring-plugin codes 0-3.
#[derive(Debug, Parser)]
#[command(name = "lifeboat", about, long_about = None, arg_required_else_help = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    /// Print the version, commit, SQLite version and tools found (as `lifeboat version`).
    #[arg(short = 'V', long = "version")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

impl Cli {
    /// The subcommand to run: `--version` alone is `version`; neither is a
    /// usage error.
    pub fn into_command(self) -> Result<(Global, Command)> {
        match (self.command, self.version) {
            (Some(c), _) => Ok((self.global, c)),
            (None, true) => Ok((self.global, Command::Version(Default::default()))),
            (None, false) => Err(crate::Error::usage("no command given")
                .with_hint("`lifeboat --help` lists the commands")),
        }
    }
}

/// Options accepted before or after the subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Configuration file (default: $LIFEBOAT_CONFIG, else ./lifeboat.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Print the result as one JSON object on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output (-v info, -vv debug, -vvv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors; no progress bars.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Write Prometheus metrics to PATH after the run (overrides [health] metrics_file).
    #[arg(long, global = true, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Global {
    /// Locate and load the configuration (exit code 2 on any problem).
    pub fn load_config(&self) -> Result<Config> {
        let config = Config::load(&config::locate(self.config.as_deref()))?;
        crate::audit::open(&config.store());
        Ok(config)
    }

    /// How operations should report beside their results.
    pub fn env(&self) -> crate::ops::Env {
        crate::ops::Env {
            metrics_file: self.metrics_file.clone(),
        }
    }

    /// Print a command's successful result as its JSON document on stdout
    /// (see [`json`]): `"ok": true`.
    pub fn print_json<T: serde::Serialize>(&self, value: &T) {
        json::print(value, true, None);
    }

    /// Print a command's result as its JSON document, `ok` and (on
    /// failure) the final error from `outcome`, then pass `outcome` on:
    /// for commands whose report is worth reading even when they fail.
    pub fn print_json_outcome<T: serde::Serialize>(
        &self,
        value: &T,
        outcome: Result<i32>,
    ) -> Result<i32> {
        json::print(value, matches!(outcome, Ok(0)), outcome.as_ref().err());
        outcome
    }
}

// In the order a user meets them: take, find, restore, check, maintain, set up.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take a scheduled snapshot, push it, and sweep old ones (the hourly job).
    Snapshot(snapshot::SnapshotArgs),
    /// Take a manual snapshot now, before a risky operation.
    BackupNow(snapshot::BackupNowArgs),
    /// List snapshots, local and remote, newest first.
    List(list::ListArgs),
    /// Restore a snapshot through staged checks (no tag: list snapshots).
    Restore(restore::RestoreArgs),
    /// Check snapshots end to end: sha256, integrity_check, row counts.
    Verify(verify::VerifyArgs),
    /// A real test restore into a scratch directory, timed, recorded in drill.json.
    Drill(drill::DrillArgs),
    /// Is the backup healthy? Reads only last_run.json and drill.json (exit 0-3).
    Health(health::HealthArgs),
    /// Apply the retention policy now (local archives and remote) and show why each snapshot is kept.
    Prune(prune::PruneArgs),
    /// Push to each remote the snapshots it lacks (a newly added one catches up).
    Sync(sync::SyncArgs),
    /// Apply the migration ladders to the live databases (after a snapshot).
    Migrate(migrate::MigrateArgs),
    /// Check that the remote is ready (gh, login, repository); --fix creates it.
    Doctor(doctor::DoctorArgs),
    /// Print cron, systemd or launchd jobs for this config and binary.
    Schedule(schedule::ScheduleArgs),
    /// Run the whole loop (snapshot, disaster, restore) on a throwaway demo application.
    Demo(demo::DemoArgs),
    /// Write a commented lifeboat.toml for the given or discovered databases.
    Init(init::InitArgs),
    /// Print the version, commit, target, bundled SQLite, and the gh/rclone found.
    Version(version::VersionArgs),
    /// Print shell completions: `source <(lifeboat completions bash)`.
    Completions(completions::CompletionsArgs),
    /// Print the man page (roff): `lifeboat man | man -l -`.
    Man(completions::ManArgs),
}

pub fn run(global: &Global, command: Command) -> Result<i32> {
    crate::progress::init(!global.quiet && !global.json);
    match command {
        Command::Snapshot(args) => snapshot::run_scheduled(global, args),
        Command::BackupNow(args) => snapshot::run_manual(global, args),
        Command::List(args) => list::run(global, args),
        Command::Restore(args) => restore::run(global, args),
        Command::Verify(args) => verify::run(global, args),
        Command::Drill(args) => drill::run(global, args),
        Command::Health(args) => health::run(global, args),
        Command::Prune(args) => prune::run(global, args),
        Command::Sync(args) => sync::run(global, args),
        Command::Migrate(args) => migrate::run(global, args),
        Command::Doctor(args) => doctor::run(global, args),
        Command::Schedule(args) => schedule::run(global, args),
        Command::Demo(args) => demo::run(global, args),
        Command::Init(args) => init::run(global, args),
        Command::Version(args) => version::run(global, args),
        Command::Completions(args) => completions::completions(global, args),
        Command::Man(args) => completions::man(global, args),
    }
}
