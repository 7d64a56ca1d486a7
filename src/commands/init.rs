//! `lifeboat init`: write a commented `lifeboat.toml` (to `--config`, else
//! `$LIFEBOAT_CONFIG`, else `./lifeboat.toml`) for the databases given with
//! `--db NAME=PATH` or found by `--scan DIR`, refusing to overwrite an
//! existing file ([`crate::ops::init`]).

use super::Global;
use crate::config;
use crate::error::Result;
use crate::ops::init::{InitOptions, init};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// A database to back up, as NAME=PATH (repeatable).
    #[arg(long = "db", value_name = "NAME=PATH", value_parser = parse_db)]
    pub databases: Vec<(String, PathBuf)>,
    /// Find SQLite databases (by their header) under DIR.
    #[arg(long, value_name = "DIR")]
    pub scan: Option<PathBuf>,
    /// data_dir (default: the --scan directory, else the deepest directory
    /// holding every database).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configure a directory remote ([remote.dir]) at PATH.
    #[arg(long, value_name = "PATH", conflicts_with = "github")]
    pub remote_dir: Option<PathBuf>,
    /// Configure a GitHub remote ([github] repo = OWNER/NAME).
    #[arg(long, value_name = "OWNER/NAME")]
    pub github: Option<String>,
    /// This installation's name (default: `<host>-<directory of the
    /// configuration>`), written into the configuration once.
    #[arg(long, value_name = "NAME", value_parser = super::parse_installation)]
    pub installation: Option<crate::tag::Installation>,
}

fn parse_db(s: &str) -> std::result::Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err("expected NAME=PATH, e.g. app=/srv/app/data/app.db".into()),
    }
}

pub fn run(global: &Global, args: InitArgs) -> Result<i32> {
    let report = init(&InitOptions {
        file: config::locate(global.config.as_deref()),
        databases: args.databases,
        scan: args.scan,
        data_dir: args.data_dir,
        remote_dir: args.remote_dir,
        github: args.github,
        installation: args.installation,
    })?;
    if global.json {
        global.print_json(&report);
        return Ok(0);
    }
    outln!("wrote {}", report.file.display());
    outln!("installation: {}", report.installation);
    outln!("data_dir: {}", report.data_dir.display());
    for db in &report.databases {
        outln!("  {}: {}", db.name, db.path.display());
    }
    outln!("next:");
    for step in &report.next {
        outln!("  {step}");
    }
    Ok(0)
}
