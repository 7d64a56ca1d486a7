//! `drill.json`: the outcome of the last restore drill (`lifeboat drill`),
//! written atomically beside `last_run.json`. Its `duration_secs` is the
//! measured recovery time: download, unpack, checks and migrations of a real
//! snapshot, from start to a restorable staging directory.
//!
//! Like `last_run.json`, the time of the last successful drill is carried
//! forward across failed ones, so `health` can tell "the last drill failed"
//! from "no drill has succeeded for a week".

use super::ErrorRecord;
use crate::error::Result;
use crate::tag::Tag;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const DRILL_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillRecord {
    pub record_version: u32,
    pub outcome: Outcome,
    /// The snapshot restored; `None` when the drill failed before choosing one.
    #[serde(default)]
    pub tag: Option<Tag>,
    /// Where it came from: the remote's description, or `local`.
    pub source: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// The measured recovery time.
    pub duration_secs: f64,
    #[serde(default)]
    pub error: Option<ErrorRecord>,
    #[serde(default)]
    pub databases: Vec<DrillDatabase>,
    /// Notes on steps that were not run (and why).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The newest successful drill, carried forward across failed ones.
    #[serde(default)]
    pub last_success_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_success_tag: Option<Tag>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DrillDatabase {
    pub name: String,
    /// Schema version in the snapshot.
    pub schema_version: i64,
    /// Schema version after the migration ladder (equal when none ran).
    pub restored_schema_version: i64,
    pub bytes: u64,
    pub rows: u64,
}

impl DrillRecord {
    /// Read `drill.json`. `Ok(None)` when no drill has run yet.
    pub fn load(path: &Path) -> Result<Option<DrillRecord>> {
        super::load(path, "drill record", "the next `lifeboat drill`")
    }

    /// Carry the last success forward from `previous` (unless this drill
    /// succeeded) and write the record atomically to `path`.
    pub fn save(&mut self, previous: Option<&DrillRecord>, path: &Path) -> Result<()> {
        if self.outcome == Outcome::Success {
            self.last_success_at = Some(self.finished_at);
            self.last_success_tag = self.tag;
        } else if let Some(p) = previous {
            self.last_success_at = p.last_success_at;
            self.last_success_tag = p.last_success_tag;
        }
        super::save(path, self)
    }
}

#[cfg(test)]
pub(crate) fn sample(outcome: Outcome, finished_at: DateTime<Utc>) -> DrillRecord {
    DrillRecord {
        record_version: DRILL_VERSION,
        outcome,
        tag: Tag::parse("snap-20261122T014500Z"),
        source: "dir:/mnt/nas".into(),
        started_at: finished_at - chrono::Duration::seconds(3),
        finished_at,
        duration_secs: 3.0,
        error: None,
        databases: vec![],
        notes: vec![],
        last_success_at: (outcome == Outcome::Success).then_some(finished_at),
        last_success_tag: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_drill_carries_last_success_forward() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("drill.json");
        let t0 = Utc::now() - chrono::Duration::hours(5);
        let mut ok = sample(Outcome::Success, t0);
        ok.save(None, &path).unwrap();
        let mut failed = sample(Outcome::Failed, Utc::now());
        failed.save(Some(&ok), &path).unwrap();
        assert_eq!(failed.last_success_at, Some(t0));
        let loaded = DrillRecord::load(&path).unwrap().unwrap();
        assert_eq!(loaded.outcome, Outcome::Failed);
        assert_eq!(loaded.last_success_at, Some(t0));
        std::fs::write(&path, b"{not json").unwrap();
        let err = DrillRecord::load(&path).unwrap_err();
        assert!(
            err.message.contains("not a valid drill record"),
            "{}",
            err.message
        );
        assert!(
            DrillRecord::load(&dir.path().join("none"))
                .unwrap()
                .is_none()
        );
    }
}
