//! `lifeboat version`: what this binary is (crate version, the commit and
//! dirtiness recorded by `build.rs`, target, bundled SQLite) and which
//! external tools it would use (`gh`, `rclone` on PATH, with their versions,
//! each asked with a short timeout).

use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// How long a tool may take to print its version.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Clone, Serialize)]
pub struct VersionReport {
    pub version: String,
    /// The git commit built from, or "unknown" (no git or no repository).
    pub commit: String,
    /// Whether the work tree had uncommitted changes; None when unknown.
    pub dirty: Option<bool>,
    pub target: String,
    pub sqlite: String,
    pub tools: Vec<Tool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: String,
    /// Where it was found on PATH; None: not found.
    pub path: Option<PathBuf>,
    /// The first line of its `--version`, if it printed one in time.
    pub version: Option<String>,
}

/// The build's own facts, without probing any tool.
pub fn build_info() -> VersionReport {
    VersionReport {
        version: env!("CARGO_PKG_VERSION").to_string(),
        commit: env!("LIFEBOAT_GIT_COMMIT").to_string(),
        dirty: match env!("LIFEBOAT_GIT_DIRTY") {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        target: env!("LIFEBOAT_TARGET").to_string(),
        sqlite: rusqlite::version().to_string(),
        tools: vec![],
    }
}

/// [`build_info`] plus the tools found on PATH.
pub fn version() -> VersionReport {
    VersionReport {
        tools: ["gh", "rclone"].iter().map(|name| probe(name)).collect(),
        ..build_info()
    }
}

fn probe(name: &str) -> Tool {
    let path = which::which(name).ok();
    let version = path.as_ref().and_then(|p| {
        let mut cmd = std::process::Command::new(p);
        cmd.arg("--version");
        match crate::child::run(&mut cmd, PROBE_TIMEOUT) {
            Ok(crate::child::Ended::Exited { stdout, .. }) => String::from_utf8_lossy(&stdout)
                .lines()
                .next()
                .map(|l| l.trim().to_string())
                .filter(|l| !l.is_empty()),
            _ => None,
        }
    });
    Tool {
        name: name.to_string(),
        path,
        version,
    }
}
