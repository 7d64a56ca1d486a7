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

/// The manifest format this code writes. A new field that old readers can
/// ignore does not bump it; a change in meaning does. Version 2 records the
/// source's foreign-key state, file owner and mode, and the databases a
/// partial snapshot lacks: a checker that trusted a version 2 reader's rules
/// on a version 1 manifest would refuse faithful snapshots, so the rules
/// depend on the version (see `docs/formats.md`).
pub const MANIFEST_VERSION: u32 = 2;

/// Every manifest version this code reads. Version 1 has none of version
/// 2's records; readers treat each as unknown.
pub const READABLE_VERSIONS: [u32; 2] = [1, 2];

/// The hint of a manifest no lifeboat writes.
const ALTERED: &str = "no lifeboat writes such a manifest: the archive was altered; restore \
                       another snapshot (`lifeboat list` shows them), nothing live was touched";

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
    /// The installation that took it (version 2; also in its tag). `None`
    /// for an unnamed snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub installation: Option<String>,
    pub sqlite_version: String,
    pub databases: Vec<DatabaseEntry>,
    /// `data_dir`'s owner and mode when the snapshot was taken, which a
    /// restore that has to create `data_dir` gives it. Version 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<FileOwnership>,
    /// Configured databases this snapshot does not hold, and why (a partial
    /// snapshot, or an optional database that did not exist yet). Version 2.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedDatabase>,
}

/// A configured database left out of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SkippedDatabase {
    pub name: String,
    /// Its path relative to `data_dir`, as configured.
    pub path: String,
    /// Why: the error that stopped its copy, or that an optional database
    /// did not exist yet.
    pub reason: String,
    /// `true` when the database is declared `optional` and did not exist:
    /// nothing went wrong.
    #[serde(default)]
    pub optional: bool,
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
    /// What `PRAGMA foreign_key_check` reported on the copy as taken.
    /// `None` in version 1 manifests: the state is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_keys: Option<ForeignKeyState>,
    /// The live file's owner and mode when it was copied, which a restore
    /// on a machine without the file gives it. `None` in version 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileOwnership>,
}

/// A database's foreign-key state: SQLite does not enforce foreign keys
/// unless the application turns them on, so a faithful copy of real data
/// may hold rows whose parent is missing, or declarations SQLite cannot
/// check. Recording them lets a restore tell the data's own faults from
/// damage (see `crate::check`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForeignKeyState {
    /// Rows `foreign_key_check` lists, counted per child and parent table,
    /// sorted.
    #[serde(default)]
    pub violations: Vec<ForeignKeyCount>,
    /// The error `foreign_key_check` stops with when a foreign key names a
    /// column that is not unique or a table that does not exist ("foreign
    /// key mismatch ..."). Then there are no counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mismatch: Option<String>,
}

impl ForeignKeyState {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty() && self.mismatch.is_none()
    }

    /// Rows without their parent, in all tables.
    pub fn rows(&self) -> u64 {
        self.violations.iter().map(|v| v.rows).sum()
    }

    /// One line for people: "60 rows (blob → rcvfrom: 60)" or the mismatch.
    pub fn describe(&self) -> String {
        if let Some(m) = &self.mismatch {
            return m.clone();
        }
        let parts: Vec<String> = self
            .violations
            .iter()
            .map(|v| format!("{} → {}: {}", v.table, v.parent, v.rows))
            .collect();
        format!(
            "{} row{} without their parent ({})",
            self.rows(),
            if self.rows() == 1 { "" } else { "s" },
            parts.join(", ")
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ForeignKeyCount {
    /// The table holding the rows.
    pub table: String,
    /// The table they reference.
    pub parent: String,
    pub rows: u64,
}

/// Who owned a live database file and its permission bits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOwnership {
    /// Permission bits, as octal text ("0644").
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    /// Names on the machine that took the snapshot; a restore elsewhere
    /// looks the names up first (ids differ between machines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

impl FileOwnership {
    /// The permission bits, if `mode` is well-formed octal without set-id
    /// or sticky bits (a manifest is untrusted: a restore never creates a
    /// set-id file).
    pub fn mode_bits(&self) -> Option<u32> {
        let m = u32::from_str_radix(&self.mode, 8).ok()?;
        (m <= 0o777 && !self.mode.is_empty()).then_some(m)
    }

    /// The recorded owner on this machine: the account and group of the
    /// recorded names (ids differ between machines), each falling back to
    /// `fallback`'s. A manifest is untrusted: it may not make files root's
    /// (id 0) unless `fallback` is root's already.
    pub fn owner_here(&self, fallback: Option<(u32, u32)>) -> Option<(u32, u32)> {
        let uid = self
            .user
            .as_deref()
            .and_then(crate::accounts::uid_of)
            .filter(|&u| u != 0 || fallback.is_some_and(|f| f.0 == 0))
            .or(fallback.map(|o| o.0))?;
        let gid = self
            .group
            .as_deref()
            .and_then(crate::accounts::gid_of)
            .filter(|&g| g != 0 || fallback.is_some_and(|f| f.1 == 0))
            .or(fallback.map(|o| o.1))?;
        Some((uid, gid))
    }
}

/// A recorded mode as a restore applies it: never writable by others (a
/// manifest is untrusted, and a world-writable data directory lets any
/// account plant links in it).
pub fn safe_mode(mode: u32) -> u32 {
    mode & !0o002
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
        let known = READABLE_VERSIONS
            .iter()
            .any(|v| version.manifest_version == serde_json::json!(v));
        if !known {
            return Err(Error::archive(format!(
                "MANIFEST.json has manifest_version {}, but this lifeboat ({}) reads only versions {}",
                version.manifest_version,
                env!("CARGO_PKG_VERSION"),
                READABLE_VERSIONS.map(|v| v.to_string()).join(" and ")
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
        let named = self.tag.installation().map(|i| i.to_string());
        if self.installation.is_some() && self.installation != named {
            return Err(Error::archive(format!(
                "MANIFEST.json says installation {:?} but its tag {} says {:?}",
                self.installation.as_deref().unwrap_or(""),
                self.tag,
                named.as_deref().unwrap_or("none")
            ))
            .with_hint(ALTERED));
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
            if let Some(f) = &db.file
                && f.mode_bits().is_none()
            {
                return Err(Error::archive(format!(
                    "MANIFEST.json records mode `{}` for `{}`: not plain permission bits",
                    f.mode, db.name
                ))
                .with_hint(ALTERED));
            }
        }
        if let Some(f) = &self.data_dir
            && f.mode_bits().is_none()
        {
            return Err(Error::archive(format!(
                "MANIFEST.json records mode `{}` for data_dir: not plain permission bits",
                f.mode
            ))
            .with_hint(ALTERED));
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
        installation: None,
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
            foreign_keys: Some(ForeignKeyState::default()),
            file: Some(FileOwnership {
                mode: "0644".into(),
                uid: 1000,
                gid: 1000,
                user: Some("app".into()),
                group: None,
            }),
        }],
        data_dir: None,
        skipped: vec![],
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
        v["manifest_version"] = 3.into();
        let err = Manifest::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(
            err.message.contains("manifest_version 3"),
            "{}",
            err.message
        );

        // Version 1 manifests (no records) still read, with every record unknown.
        let mut v: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        v["manifest_version"] = 1.into();
        v["databases"][0]
            .as_object_mut()
            .unwrap()
            .remove("foreign_keys");
        v["databases"][0].as_object_mut().unwrap().remove("file");
        let old = Manifest::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(old.databases[0].foreign_keys, None);
        assert_eq!(old.databases[0].file, None);

        // Untrusted: root only when the fallback is root's already.
        let root_owned = FileOwnership {
            mode: "0666".into(),
            uid: 0,
            gid: 0,
            user: Some("root".into()),
            group: Some("root".into()),
        };
        assert_eq!(
            root_owned.owner_here(Some((1000, 1000))),
            Some((1000, 1000))
        );
        assert_eq!(root_owned.owner_here(Some((0, 0))), Some((0, 0)));
        assert_eq!(safe_mode(0o666), 0o664);
        let mut m = sample();
        m.data_dir = Some(FileOwnership {
            mode: "4755".into(),
            ..root_owned
        });
        assert!(
            Manifest::from_json(&m.to_json()).is_err(),
            "data_dir's mode is checked too"
        );

        for bad in ["4755", "1777", "rw", "", "99"] {
            let mut m = sample();
            m.databases[0].file.as_mut().unwrap().mode = bad.into();
            let err = Manifest::from_json(&m.to_json()).unwrap_err();
            assert!(
                err.message.contains("not plain permission"),
                "{bad}: {}",
                err.message
            );
        }

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
