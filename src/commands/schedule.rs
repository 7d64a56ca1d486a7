//! `lifeboat schedule`: the hourly snapshot and the daily drill as cron,
//! systemd or launchd jobs ([`crate::ops::schedule`]), printed or written.

use super::Global;
use crate::error::{IoContext, Result};
use crate::ops::schedule::{ScheduleOptions, schedule};
use crate::schedule::Scheduler;
use std::path::PathBuf;

/// Print (or write) the job definitions that run `lifeboat snapshot` hourly
/// and `lifeboat drill` daily, with the absolute paths of this config and
/// this binary filled in.
///
/// System jobs run as the owner of data_dir; `--user` renders jobs for your
/// own crontab or `systemctl --user`. launchd jobs are always LaunchAgents.
#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// The scheduler to render for.
    #[arg(long, value_enum, value_name = "SCHEDULER")]
    pub print: Scheduler,
    /// Render user-level jobs (a personal crontab, `systemctl --user`).
    #[arg(long)]
    pub user: bool,
    /// Write the files into DIR (e.g. /etc/systemd/system) instead of
    /// printing them.
    #[arg(long, value_name = "DIR")]
    pub write: Option<PathBuf>,
}

pub fn run(global: &Global, args: ScheduleArgs) -> Result<i32> {
    let config = global.load_config()?;
    let lifeboat = std::env::current_exe()
        .and_then(|p| p.canonicalize())
        .ctx("cannot find the path of the running lifeboat binary")?;
    let report = schedule(
        &config,
        &ScheduleOptions {
            scheduler: args.print,
            user: args.user,
            write: args.write.clone(),
            lifeboat,
        },
    )?;
    if global.json {
        global.print_json(&report);
        return Ok(0);
    }
    let (files, written, warnings) = (&report.files, &report.written, &report.warnings);
    for w in warnings {
        warnln!("warning: {w}");
    }
    if args.write.is_some() {
        for p in written {
            noteln!("wrote {}", p.display());
        }
    } else if files.len() == 1 {
        out!("{}", files[0].content);
    } else {
        for (i, f) in files.iter().enumerate() {
            if i > 0 {
                outln!();
            }
            let marker = if args.print == Scheduler::Launchd {
                ("<!-- ", " -->")
            } else {
                ("# ", "")
            };
            outln!(
                "{}==> {}/{} <=={}",
                marker.0,
                f.install_dir,
                f.name,
                marker.1
            );
            out!("{}", f.content);
        }
    }
    if !global.quiet {
        noteln!("next:");
        for s in &report.next_steps {
            noteln!("  {s}");
        }
    }
    Ok(0)
}
