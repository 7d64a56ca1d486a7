//! Prometheus text exposition for node_exporter's textfile collector,
//! written after each snapshot run and each drill when `--metrics-file` or
//! `[health] metrics_file` names a file.
//!
//! The file is rewritten whole and atomically (temp + fsync + rename): the
//! collector must never read half of it. Everything comes from records
//! lifeboat already has (the run, `drill.json`, the local archives); writing
//! metrics never costs a network call.

use crate::commands::Global;
use crate::config::Config;
use crate::drill::{DrillRecord, Outcome};
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::runrecord::{PushStatus, RunRecord, Status};
use crate::snapshot::{self, archive};
use crate::tag::{Kind, Tag};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Write the metrics file after a run when one is configured. A failure to
/// write metrics is logged, never fatal: the backup itself succeeded.
pub fn write_if_configured(config: &Config, global: &Global, record: &RunRecord) {
    let drill = DrillRecord::load(&config.drill_path()).ok().flatten();
    write_with(config, global, Some(record), drill.as_ref());
}

/// Rewrite the metrics file from the records on disk (after a drill).
pub fn refresh_if_configured(config: &Config, global: &Global) {
    let record = RunRecord::load(&config.last_run_path()).ok().flatten();
    let drill = DrillRecord::load(&config.drill_path()).ok().flatten();
    write_with(config, global, record.as_ref(), drill.as_ref());
}

fn write_with(
    config: &Config,
    global: &Global,
    record: Option<&RunRecord>,
    drill: Option<&DrillRecord>,
) {
    let Some(path) = target(config, global) else {
        return;
    };
    let local = snapshot::list_local(&config.backup_dir).unwrap_or_default();
    let text = render(record, drill, &local);
    match write_public(&path, text.as_bytes()) {
        Ok(()) => tracing::debug!(path = %path.display(), "metrics written"),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e.message, "cannot write metrics")
        }
    }
}

fn target(config: &Config, global: &Global) -> Option<PathBuf> {
    global
        .metrics_file
        .clone()
        .or_else(|| config.health.metrics_file.clone())
}

/// Atomic like [`fsutil::write_atomic`], but world-readable (0644): the
/// collector usually runs as another user, and the file holds no data, only
/// times, sizes and counts.
fn write_public(target: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let tmp = fsutil::temp_sibling(target);
    let _ = std::fs::remove_file(&tmp);
    let result = (|| {
        let mut f = fsutil::create_private(&tmp)?;
        f.write_all(bytes)
            .ctx(format!("cannot write {}", tmp.display()))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))
            .ctx(format!("cannot set permissions on {}", tmp.display()))?;
        f.sync_all().ctx(format!("cannot sync {}", tmp.display()))?;
        drop(f);
        fsutil::commit(&tmp, target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The exposition text. Families appear even without a sample where a zero
/// is meaningful (never succeeded = timestamp 0), so alerts on
/// `time() - x > threshold` fire rather than going silent.
pub fn render(
    record: Option<&RunRecord>,
    drill: Option<&DrillRecord>,
    local: &[(Tag, PathBuf)],
) -> String {
    let mut out = Exposition::default();
    let ts = |t: DateTime<Utc>| t.timestamp_millis() as f64 / 1000.0;

    if let Some(r) = record {
        out.gauge(
            "lifeboat_last_run_timestamp_seconds",
            "When the last lifeboat run finished (Unix time).",
            &[("command", &r.command)],
            ts(r.finished_at),
        );
        out.gauge(
            "lifeboat_last_run_success",
            "1 if the last lifeboat run succeeded, else 0.",
            &[("command", &r.command)],
            f64::from(u8::from(r.status == Status::Success)),
        );
        out.gauge(
            "lifeboat_run_duration_seconds",
            "Duration of the last lifeboat run.",
            &[("command", &r.command)],
            r.duration_secs,
        );
    }
    let success = record.and_then(|r| r.last_success.as_ref());
    out.gauge(
        "lifeboat_last_success_timestamp_seconds",
        "When the newest successful snapshot finished (Unix time; 0 = never).",
        &[],
        success.map_or(0.0, |s| ts(s.finished_at)),
    );
    if let Some(s) = success {
        out.gauge(
            "lifeboat_snapshot_archive_bytes",
            "Size of the newest successful snapshot's archive.",
            // No tag label: a new series every hour would churn the TSDB.
            &[],
            s.archive_bytes as f64,
        );
        out.gauge(
            "lifeboat_last_snapshot_pushed",
            "1 if the newest successful snapshot reached the remote, else 0.",
            &[],
            f64::from(u8::from(s.pushed)),
        );
    }

    // Per-database sizes: from this run's snapshot, else from the newest
    // local archive's manifest (one small read).
    let databases: Vec<(String, u64)> = match record.and_then(|r| r.snapshot.as_ref()) {
        Some(s) => s
            .databases
            .iter()
            .map(|d| (d.name.clone(), d.bytes))
            .collect(),
        None => local
            .last()
            .and_then(|(t, p)| archive::read_manifest(p, Some(t)).ok())
            .map(|r| r.manifest)
            .map(|m| {
                m.databases
                    .iter()
                    .map(|d| (d.name.clone(), d.bytes))
                    .collect()
            })
            .unwrap_or_default(),
    };
    out.family(
        "lifeboat_database_bytes",
        "gauge",
        "Size of each database in the newest snapshot.",
    );
    for (db, bytes) in &databases {
        out.sample("lifeboat_database_bytes", &[("db", db)], *bytes as f64);
    }

    if let Some(p) = record.and_then(|r| r.push.as_ref())
        && p.status != PushStatus::Skipped
    {
        out.gauge(
            "lifeboat_remote_push_attempts",
            "Attempts used by the last push.",
            &[("remote", &p.remote)],
            f64::from(p.attempts),
        );
    }

    // Local counts are a directory listing. A per-kind remote count would
    // need a network call, which metrics never make (the retention sweep's
    // result counts what it kept, but not by kind): `where="remote"` is left
    // out here, and the sweep's total is exported below instead.
    out.family(
        "lifeboat_snapshots",
        "gauge",
        "Snapshots kept, by place and kind.",
    );
    for kind in [Kind::Scheduled, Kind::Manual] {
        let n = local.iter().filter(|(t, _)| t.kind() == kind).count();
        out.sample(
            "lifeboat_snapshots",
            &[("where", "local"), ("kind", &kind.to_string())],
            n as f64,
        );
    }

    if let Some(kept) = record
        .and_then(|r| r.retention.as_ref())
        .and_then(|r| r.remote.as_ref())
        .map(|s| s.kept)
    {
        out.gauge(
            "lifeboat_remote_snapshots",
            "Snapshots on the remote after the last retention sweep (all kinds).",
            &[],
            kept as f64,
        );
    }
    if let Some(r) = record.and_then(|r| r.retention.as_ref()) {
        out.family(
            "lifeboat_retention_failed_deletions",
            "gauge",
            "Deletions the last retention sweep could not make.",
        );
        for (place, sweep) in [("local", &r.local), ("remote", &r.remote)] {
            if let Some(s) = sweep {
                out.sample(
                    "lifeboat_retention_failed_deletions",
                    &[("where", place)],
                    s.failed.len() as f64,
                );
            }
        }
    }

    out.gauge(
        "lifeboat_last_drill_success_timestamp_seconds",
        "When the newest successful restore drill finished (Unix time; 0 = never).",
        &[],
        drill.and_then(|d| d.last_success_at).map_or(0.0, ts),
    );
    if let Some(d) = drill {
        out.gauge(
            "lifeboat_last_drill_success",
            "1 if the last restore drill succeeded, else 0.",
            &[],
            f64::from(u8::from(d.outcome == Outcome::Success)),
        );
        out.gauge(
            "lifeboat_last_drill_duration_seconds",
            "Measured recovery time of the last restore drill.",
            &[],
            d.duration_secs,
        );
    }
    out.0
}

#[derive(Default)]
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        self.0
            .push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            self.0.push_str(&format!("{{{}}}", inner.join(",")));
        }
        self.0.push_str(&format!(" {value}\n"));
    }

    fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.family(name, "gauge", help);
        self.sample(name, labels, value);
    }
}

/// Label values escape backslash, double quote and newline.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runrecord::{LastSuccess, PushResult, RetentionResult, SweepResult};

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
    }

    #[test]
    fn render_has_every_family() {
        let t: DateTime<Utc> = "2026-11-22T12:00:00Z".parse().unwrap();
        let mut r = RunRecord::start("snapshot", t);
        r.finished_at = t;
        r.duration_secs = 1.5;
        r.push = Some(PushResult {
            remote: "dir:/mnt/\"nas\"".into(),
            status: PushStatus::Pushed,
            attempts: 2,
            pushed: vec![],
            error: None,
        });
        r.last_success = Some(LastSuccess {
            tag: Tag::new(t, Kind::Scheduled),
            finished_at: t,
            archive_bytes: 1234,
            pushed: true,
        });
        r.retention = Some(RetentionResult {
            local: Some(SweepResult::default()),
            remote: Some(SweepResult {
                kept: 5,
                ..SweepResult::default()
            }),
        });
        let text = render(Some(&r), None, &[]);
        for needle in [
            "lifeboat_last_run_timestamp_seconds{command=\"snapshot\"} 1795348800\n",
            "lifeboat_last_run_success{command=\"snapshot\"} 1\n",
            "lifeboat_run_duration_seconds{command=\"snapshot\"} 1.5\n",
            "lifeboat_last_success_timestamp_seconds 1795348800\n",
            "lifeboat_snapshot_archive_bytes 1234\n",
            "lifeboat_remote_push_attempts{remote=\"dir:/mnt/\\\"nas\\\"\"} 2\n",
            "lifeboat_snapshots{where=\"local\",kind=\"manual\"} 0\n",
            "lifeboat_last_drill_success_timestamp_seconds 0\n",
            "# TYPE lifeboat_database_bytes gauge\n",
            "lifeboat_remote_snapshots 5\n",
            "lifeboat_retention_failed_deletions{where=\"remote\"} 0\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
