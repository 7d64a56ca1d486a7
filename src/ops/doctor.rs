//! Doctor: is the remote ready to receive snapshots? Each backend checks
//! itself ([`crate::remote::Remote::check`]); this asks each configured one
//! and says so when there is none. Then what the configuration itself can
//! get wrong: no installation name, a declared SQLite extension that does
//! not load.

use crate::config::Config;
use crate::remote::{Check, CheckStatus, Checks};

#[derive(Debug, serde::Serialize)]
pub struct DoctorReport {
    pub ok: bool,
    /// The remote checked, `github:owner/name` or `dir:/path`; `none`.
    pub remote: String,
    pub checks: Vec<Check>,
    /// What `--fix` changed.
    pub fixed: Vec<String>,
}

/// Run every check of each configured remote (and its safe fixes, when
/// `fix`), then the configuration's own.
pub fn doctor(config: &Config, fix: bool) -> DoctorReport {
    let remotes = crate::remote::open_all(config);
    let mut checks = Checks::default();
    if remotes.is_empty() {
        checks.fail(
            "remote configured",
            "no remote is configured: snapshots stay on this machine",
            "add [remote.dir] path = \"/mnt/backups\", [github] repo = \"owner/name\" or \
             [remote.rclone] remote = \"name:path\" to the config",
        );
    }
    let several = remotes.len() > 1;
    for remote in &remotes {
        let mut found = remote.check(fix);
        if several {
            // Say whose each check is.
            for c in &mut found.checks {
                c.detail = format!("{}: {}", remote.name(), c.detail);
            }
        }
        checks.checks.append(&mut found.checks);
        checks.fixed.append(&mut found.fixed);
    }
    let remote = match remotes.len() {
        0 => "none".to_string(),
        _ => remotes
            .iter()
            .map(|r| r.describe())
            .collect::<Vec<_>>()
            .join(", "),
    };
    installation(config, &mut checks);
    extensions(config, &mut checks);
    DoctorReport {
        ok: checks.passed(),
        remote,
        checks: checks.checks,
        fixed: checks.fixed,
    }
}

/// Without a name, snapshots are unnamed: another installation sharing the
/// remote would take them for its own (and prune them). A warning, not a
/// failure: a remote used by one installation only is safe as it is.
fn installation(config: &Config, checks: &mut Checks) {
    match config.installation {
        Some(name) => checks.ok(
            "installation name",
            format!("`{name}`: snapshots are tagged snap-{name}-…"),
        ),
        None => checks.warn(
            "installation name",
            "none: snapshots are unnamed, and another installation sharing this remote would \
             take them for its own",
            format!(
                "add `installation = \"{}\"` at the top of {} (unique per remote; see \
                 docs/configuration.md, \"Installation names\", for adopting the unnamed snapshots)",
                crate::ops::init::default_installation(&config.file),
                config.file.display()
            ),
        ),
    }
}

/// Every declared SQLite extension loads: found now rather than by the
/// next snapshot (which would then count and check that database without
/// it) or, worse, by a restore on the day it is needed.
fn extensions(config: &Config, checks: &mut Checks) {
    for db in config.databases.iter().filter(|d| !d.extensions.is_empty()) {
        let loaded = rusqlite::Connection::open_in_memory()
            .map_err(|e| crate::Error::database(e.to_string()))
            .and_then(|conn| crate::sqlext::load_extensions(&conn, &db.name, &db.extensions));
        match loaded {
            Ok(()) => checks.ok(
                "extensions",
                format!("database `{}`: {} load", db.name, db.extensions.join(", ")),
            ),
            Err(e) => checks.fail(
                "extensions",
                e.message,
                e.hint
                    .unwrap_or_else(|| "fix `extensions` in the config".into()),
            ),
        }
    }
}

impl DoctorReport {
    /// Whether a check found the repository public (worth shouting about).
    pub fn public_repository(&self) -> bool {
        self.checks
            .iter()
            .any(|c| c.name == "private" && c.status == CheckStatus::Fail)
    }
}
