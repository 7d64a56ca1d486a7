//! Prometheus text exposition for node_exporter's textfile collector,
//! rewritten after every recorded run (snapshot, backup-now, restore, prune,
//! migrate, drill) when `--metrics-file` or `[health] metrics_file` names a
//! file. `docs/formats.md` lists every series.
//!
//! The file is rewritten whole and atomically (temp + fsync + rename): the
//! collector must never read half of it. Everything comes from records
//! lifeboat already has (`last_run.json`, `drill.json`, the local
//! archives); writing metrics never costs a network call. Each kind of run
//! has its own series (`command="snapshot"`, `"restore"`, ...), carried
//! forward in the records, so a failed restore never hides how the last
//! backup went.

use crate::config::Config;
use crate::error::{IoContext, Result};
use crate::fsutil;
use crate::health::Status as HealthStatus;
use crate::record::{DrillRecord, Outcome, PushStatus, RunKind, RunRecord, Status};
use crate::snapshot::archive;
use crate::tag::{Kind, Tag};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Rewrite the metrics file from the records on disk, when one is
/// configured (`file` overrides the config). A failure to write metrics is
/// logged, never fatal: the run itself is what matters.
pub fn refresh(config: &Config, file: Option<&Path>) {
    let Some(path) = file
        .map(Path::to_path_buf)
        .or_else(|| config.health.metrics_file.clone())
    else {
        return;
    };
    let store = config.store();
    let record = RunRecord::load(&store.last_run()).ok().flatten();
    let drill = DrillRecord::load(&store.drill_record()).ok().flatten();
    let local = store.archives().unwrap_or_default();
    let health = crate::health::probe(config, Utc::now()).status;
    let text = render(record.as_ref(), drill.as_ref(), &local, health);
    match write_public(&path, text.as_bytes()) {
        Ok(()) => tracing::debug!(path = %path.display(), "metrics written"),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e.message, "cannot write metrics")
        }
    }
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
    health: HealthStatus,
) -> String {
    let mut out = Exposition::default();
    let ts = |t: DateTime<Utc>| t.timestamp_millis() as f64 / 1000.0;

    out.gauge(
        "lifeboat_build_info",
        "The lifeboat version that wrote this file (always 1).",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1.0,
    );
    out.gauge(
        "lifeboat_health_status",
        "What `lifeboat health` says now: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
        &[],
        f64::from(health.exit_code()),
    );

    // The newest run of each kind, each in its own series: the runs map
    // carries them forward, and drill.json holds the drill's.
    let mut runs: Vec<(&str, f64, bool, f64)> = Vec::new();
    for kind in RunKind::ALL {
        if kind == RunKind::Drill {
            if let Some(d) = drill {
                runs.push((
                    kind.label(),
                    ts(d.finished_at),
                    d.outcome == Outcome::Success,
                    d.duration_secs,
                ));
            }
        } else if let Some(r) = record.and_then(|r| r.runs_or_seeded().remove(kind.label())) {
            runs.push((
                kind.label(),
                ts(r.finished_at),
                r.status == Status::Success,
                r.duration_secs,
            ));
        }
    }
    for (name, help, value) in [
        (
            "lifeboat_last_run_timestamp_seconds",
            "When the newest run of each kind finished (Unix time).",
            0,
        ),
        (
            "lifeboat_last_run_success",
            "1 if the newest run of each kind succeeded, else 0.",
            1,
        ),
        (
            "lifeboat_run_duration_seconds",
            "Duration of the newest run of each kind.",
            2,
        ),
    ] {
        out.family(name, "gauge", help);
        for (command, at, ok, duration) in &runs {
            let v = match value {
                0 => *at,
                1 => f64::from(u8::from(*ok)),
                _ => *duration,
            };
            out.sample(name, &[("command", command)], v);
        }
    }
    let backup_ok = record
        .and_then(|r| r.last_backup.as_ref())
        .map(|b| b.status == Status::Success);
    if let Some(ok) = backup_ok {
        out.gauge(
            "lifeboat_last_backup_success",
            "1 if the newest backup run (snapshot or backup-now) succeeded, else 0.",
            &[],
            f64::from(u8::from(ok)),
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

    // One series per remote: a remote that is down shows as such while the
    // others keep succeeding.
    let pushes: Vec<&crate::record::PushResult> = record
        .map(|r| r.pushes())
        .unwrap_or_default()
        .into_iter()
        .filter(|p| p.status != PushStatus::Skipped)
        .collect();
    if !pushes.is_empty() {
        for (name, help, value) in [
            (
                "lifeboat_remote_push_success",
                "1 if the last push to the remote succeeded, else 0.",
                0,
            ),
            (
                "lifeboat_remote_push_attempts",
                "Attempts used by the last push.",
                1,
            ),
            (
                "lifeboat_remote_refused_snapshots",
                "Snapshots the remote refuses for good (too large), kept only on this machine.",
                2,
            ),
        ] {
            out.family(name, "gauge", help);
            for p in &pushes {
                let v = match value {
                    0 => f64::from(u8::from(p.status == PushStatus::Pushed)),
                    1 => f64::from(p.attempts),
                    _ => p.refused.len() as f64,
                };
                out.sample(name, &[("remote", &p.remote)], v);
            }
        }
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

    // Per remote, by name (`remote` in records from before several remotes).
    if let Some(r) = record.and_then(|r| r.retention.as_ref()) {
        let sweeps = r.remote_sweeps();
        if !sweeps.is_empty() {
            out.family(
                "lifeboat_remote_snapshots",
                "gauge",
                "Snapshots on each remote after its last retention sweep (all kinds).",
            );
            for (name, sweep) in &sweeps {
                out.sample(
                    "lifeboat_remote_snapshots",
                    &[("remote", name)],
                    sweep.kept as f64,
                );
            }
        }
        out.family(
            "lifeboat_retention_failed_deletions",
            "gauge",
            "Deletions the last retention sweep could not make.",
        );
        let places = r.local.iter().map(|s| ("local", s)).chain(sweeps);
        for (place, sweep) in places {
            out.sample(
                "lifeboat_retention_failed_deletions",
                &[("where", place)],
                sweep.failed.len() as f64,
            );
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
    use crate::record::{LastSuccess, PushResult, RetentionResult, SweepResult};

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
        let summary = |command: &str, status| crate::record::RunSummary {
            command: command.into(),
            status,
            finished_at: t,
            duration_secs: 1.5,
            error: None,
        };
        r.runs
            .insert("snapshot".into(), summary("snapshot", Status::Success));
        // A failed restore after it keeps its own series.
        r.runs
            .insert("restore".into(), summary("restore", Status::Failed));
        r.push = Some(PushResult {
            remote: "dir:/mnt/\"nas\"".into(),
            status: PushStatus::Pushed,
            attempts: 2,
            pushed: vec![],
            error: None,
            refused: vec![],
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
            remotes: Default::default(),
        });
        let text = render(Some(&r), None, &[], HealthStatus::Warning);
        for needle in [
            "lifeboat_last_run_timestamp_seconds{command=\"snapshot\"} 1795348800\n",
            "lifeboat_last_run_success{command=\"snapshot\"} 1\n",
            "lifeboat_last_run_success{command=\"restore\"} 0\n",
            "lifeboat_health_status 1\n",
            "lifeboat_build_info{version=\"",
            "lifeboat_run_duration_seconds{command=\"snapshot\"} 1.5\n",
            "lifeboat_last_success_timestamp_seconds 1795348800\n",
            "lifeboat_snapshot_archive_bytes 1234\n",
            "lifeboat_remote_push_attempts{remote=\"dir:/mnt/\\\"nas\\\"\"} 2\n",
            "lifeboat_snapshots{where=\"local\",kind=\"manual\"} 0\n",
            "lifeboat_last_drill_success_timestamp_seconds 0\n",
            "# TYPE lifeboat_database_bytes gauge\n",
            "lifeboat_remote_snapshots{remote=\"remote\"} 5\n",
            "lifeboat_retention_failed_deletions{where=\"remote\"} 0\n",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
