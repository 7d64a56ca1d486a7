//! `lifeboat version` (also `lifeboat --version`): the build (version,
//! commit, dirty tree, target, bundled SQLite) and the external tools found
//! on PATH, from [`crate::ops::about`].

use super::Global;
use crate::error::Result;
use crate::ops::about::{VersionReport, version};

#[derive(Debug, Default, clap::Args)]
pub struct VersionArgs {}

pub fn run(global: &Global, _args: VersionArgs) -> Result<i32> {
    let report = version();
    if global.json {
        global.print_json(&report);
    } else {
        print_text(&report);
    }
    Ok(0)
}

fn print_text(r: &VersionReport) {
    let dirty = match r.dirty {
        Some(true) => " (dirty tree)",
        Some(false) => "",
        None => " (tree state unknown)",
    };
    outln!("lifeboat {}", r.version);
    outln!("commit:  {}{dirty}", r.commit);
    outln!("target:  {}", r.target);
    outln!("sqlite:  {} (bundled)", r.sqlite);
    for t in &r.tools {
        let found = match (&t.path, &t.version) {
            (None, _) => "not found".to_string(),
            (Some(p), Some(v)) => format!("{v} ({})", p.display()),
            (Some(p), None) => format!("version unknown ({})", p.display()),
        };
        outln!("{:<8} {found}", format!("{}:", t.name));
    }
}
