//! `MANIFEST.json`: what a snapshot holds, where it came from, and what a
//! restore must find. It is the first entry of every archive, so a reader can
//! judge the archive (version, sizes, checksums) before unpacking anything.
//! The format is documented in `docs/formats.md`.

use crate::error::{Error, Result};
use crate::tag::{Kind, Tag};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path};

/// The manifest format this code writes and the only one it reads. A new
/// field that old readers can ignore does not bump it; a change in meaning does.
pub const MANIFEST_VERSION: u32 = 1;

/// Manifests larger than this are refused unread (a hostile archive could
/// otherwise make the reader allocate without bound).
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub manifest_version: u32,
    pub tag: Tag,
    pub kind: Kind,
    /// Why a manual snapshot was taken (`backup-now --reason`).
    #[serde(default)]
    pub reason: Option<String>,
    pub snapshot_ts: DateTime<Utc>,
    pub lifeboat_version: String,
    pub app_version: Option<String>,
    pub app_commit: Option<String>,
    pub app_branch: Option<String>,
    pub app_dirty: Option<bool>,
    pub host: String,
    pub sqlite_version: String,
    pub databases: Vec<DatabaseEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseEntry {
    /// Logical name from the config.
    pub name: String,
    /// Path relative to `data_dir`, and (under `<tag>/`) inside the archive.
    pub path: String,
    /// `PRAGMA user_version` of the copy.
    pub schema_version: i64,
    pub application_id: i64,
    pub page_size: u64,
    /// The source's journal mode when copied (`wal`, `delete`, ...). The copy
    /// itself is always a single file in `delete` mode.
    pub journal_mode: String,
    /// Size of the copied file in bytes.
    pub bytes: u64,
    /// Lowercase hex sha256 of the copied file.
    pub sha256: String,
    /// Rows per ordinary table (and per countable virtual table).
    pub row_counts: BTreeMap<String, u64>,
    /// Virtual tables whose module was not available to count them.
    #[serde(default)]
    pub uncountable_tables: Vec<String>,
    /// Why each of `uncountable_tables` could not be counted (a module or
    /// a collation the application defines). Absent in older manifests.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub uncountable_reasons: BTreeMap<String, String>,
}

impl Manifest {
    /// The entry name of the manifest inside the archive.
    pub fn entry_name(tag: &Tag) -> String {
        format!("{tag}/MANIFEST.json")
    }

    /// Parse and validate a manifest read from an archive. Unknown versions
    /// and malformed paths are refused: a manifest is untrusted input.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest> {
        #[derive(Deserialize)]
        struct VersionOnly {
            manifest_version: serde_json::Value,
        }
        let version: VersionOnly = serde_json::from_slice(bytes)
            .map_err(|e| Error::archive(format!("MANIFEST.json is not valid: {e}")))?;
        if version.manifest_version != serde_json::json!(MANIFEST_VERSION) {
            return Err(Error::archive(format!(
                "MANIFEST.json has manifest_version {}, but this lifeboat ({}) reads only version {MANIFEST_VERSION}",
                version.manifest_version,
                env!("CARGO_PKG_VERSION")
            ))
            .with_hint("restore it with the lifeboat version that wrote it (see lifeboat_version in the manifest), or upgrade lifeboat"));
        }
        let m: Manifest = serde_json::from_slice(bytes)
            .map_err(|e| Error::archive(format!("MANIFEST.json is not valid: {e}")))?;
        m.validate()?;
        Ok(m)
    }

    fn validate(&self) -> Result<()> {
        if self.kind != self.tag.kind() {
            return Err(Error::archive(format!(
                "MANIFEST.json says kind {} but its tag {} is {}",
                self.kind,
                self.tag,
                self.tag.kind()
            )));
        }
        if self
            .databases
            .iter()
            .try_fold(0u64, |t, d| t.checked_add(d.bytes))
            .is_none()
        {
            return Err(Error::archive(
                "MANIFEST.json declares database sizes whose total overflows: it is hostile or corrupt",
            ));
        }
        let mut names = std::collections::HashSet::new();
        let mut paths = std::collections::HashSet::new();
        for db in &self.databases {
            let path_ok = !db.path.is_empty()
                && !db.path.contains('\\')
                && Path::new(&db.path)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
                && db.path != "MANIFEST.json";
            if !path_ok {
                return Err(Error::archive(format!(
                    "MANIFEST.json declares database `{}` at unsafe path `{}`",
                    db.name, db.path
                )));
            }
            if !names.insert(db.name.as_str()) || !paths.insert(db.path.as_str()) {
                return Err(Error::archive(format!(
                    "MANIFEST.json declares database `{}` ({}) twice",
                    db.name, db.path
                )));
            }
            if db.sha256.len() != 64 || !db.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::archive(format!(
                    "MANIFEST.json has a malformed sha256 for `{}`",
                    db.name
                )));
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serialises");
        v.push(b'\n');
        v
    }

    pub fn database(&self, name: &str) -> Option<&DatabaseEntry> {
        self.databases.iter().find(|d| d.name == name)
    }

    /// The declared size of all databases. Saturates: a hostile manifest
    /// must not wrap the total below the size limit ([`Manifest::from_json`]
    /// refuses such a manifest outright).
    pub fn total_bytes(&self) -> u64 {
        self.databases
            .iter()
            .fold(0u64, |total, d| total.saturating_add(d.bytes))
    }

    /// A short human summary, used as release notes and by `demo`.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} ({}) taken {} on {}\n",
            self.tag,
            self.kind,
            self.snapshot_ts
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            self.host
        );
        if let Some(reason) = &self.reason {
            s.push_str(&format!("reason: {reason}\n"));
        }
        if self.app_commit.is_some() || self.app_version.is_some() {
            s.push_str(&format!(
                "app: {} {}{}\n",
                self.app_version.as_deref().unwrap_or("-"),
                self.app_commit
                    .as_deref()
                    .map(|c| &c[..c.len().min(12)])
                    .unwrap_or("-"),
                if self.app_dirty == Some(true) {
                    " (dirty)"
                } else {
                    ""
                }
            ));
        }
        for db in &self.databases {
            let rows: u64 = db.row_counts.values().sum();
            s.push_str(&format!(
                "  {:<12} {:<32} schema v{:<3} {:>10} bytes {:>8} rows in {} tables\n",
                db.name,
                db.path,
                db.schema_version,
                db.bytes,
                rows,
                db.row_counts.len()
            ));
        }
        s
    }
}

#[cfg(test)]
pub(crate) fn sample() -> Manifest {
    let tag = Tag::parse("snap-20261122T014500Z").unwrap();
    Manifest {
        manifest_version: MANIFEST_VERSION,
        tag,
        kind: Kind::Scheduled,
        reason: None,
        snapshot_ts: tag.time(),
        lifeboat_version: "0.1.0".into(),
        app_version: None,
        app_commit: None,
        app_branch: None,
        app_dirty: None,
        host: "h".into(),
        sqlite_version: "3.50.0".into(),
        databases: vec![DatabaseEntry {
            name: "tasks".into(),
            path: "db/tasks.db".into(),
            schema_version: 3,
            application_id: 0,
            page_size: 4096,
            journal_mode: "wal".into(),
            bytes: 8192,
            sha256: "0".repeat(64),
            row_counts: BTreeMap::from([("tasks".to_string(), 2)]),
            uncountable_tables: vec![],
            uncountable_reasons: BTreeMap::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let m = sample();
        assert_eq!(Manifest::from_json(&m.to_json()).unwrap(), m);

        let mut v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        v["manifest_version"] = 2.into();
        let err = Manifest::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            err.message.contains("manifest_version 2"),
            "{}",
            err.message
        );

        let mut m = sample();
        let mut second = m.databases[0].clone();
        second.name = "other".into();
        second.path = "other.db".into();
        second.bytes = u64::MAX - m.databases[0].bytes + 1;
        m.databases.push(second);
        assert_eq!(m.total_bytes(), u64::MAX, "saturates instead of wrapping");
        let err = Manifest::from_json(&m.to_json()).unwrap_err();
        assert!(err.message.contains("overflows"), "{}", err.message);

        for bad in ["../etc/passwd", "/abs.db", "a/../b.db", "", "MANIFEST.json"] {
            let mut m = sample();
            m.databases[0].path = bad.into();
            let err = Manifest::from_json(&m.to_json()).unwrap_err();
            assert!(
                err.message.contains("unsafe path"),
                "{bad}: {}",
                err.message
            );
        }
    }
}
