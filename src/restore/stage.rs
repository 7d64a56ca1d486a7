//! Steps 2-6: judge the archive by its manifest, unpack it into a staging
//! directory, migrate and check each staged database. Nothing here touches
//! live data.

use super::obtain::{self, Obtained, Source};
use crate::check::{self, Checked};
use crate::config::{Config, DatabaseConfig};
use crate::error::{Error, IoContext, Kind, Result};
use crate::migrate::MigrationRunner;
use crate::snapshot::archive::{self, Limits};
use crate::snapshot::manifest::FileOwnership;
use crate::snapshot::manifest::{DatabaseEntry, Manifest};
use crate::tag::Tag;
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

/// What steps 1-6 found: everything needed to put the staged files in place
/// (or, for a drill, to judge the snapshot).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageReport {
    pub tag: Tag,
    /// `local:<path>` or the remote's description.
    pub source: String,
    pub staging: PathBuf,
    pub manifest_version: u32,
    pub snapshot_ts: chrono::DateTime<chrono::Utc>,
    pub host: String,
    pub databases: Vec<StagedDb>,
    pub duration_secs: f64,
    /// `data_dir`'s owner and mode when the snapshot was taken, for a
    /// restore that creates `data_dir`.
    #[serde(skip)]
    pub recorded_data_dir: Option<FileOwnership>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct StagedDb {
    pub name: String,
    /// Relative path of the staged file under `staging`.
    pub staged: String,
    /// Relative path of the live file under `data_dir`.
    pub live: String,
    /// What the database checker found (schema versions, migrations,
    /// integrity, row counts, notes).
    #[serde(flatten)]
    pub checked: Checked,
    /// The live file's owner and mode when the snapshot was taken, which a
    /// restore with no file to replace gives the restored one.
    #[serde(skip)]
    pub recorded_file: Option<FileOwnership>,
}

/// Run steps 1-6 for `tag` into `dest_dir` (which must not exist or be an
/// empty directory; it is made 0700 and left in place, pass or fail, for the caller to use or
/// remove). `only` restricts the work to one database. Never touches
/// `data_dir`.
pub fn stage_and_check(
    config: &Config,
    tag: &Tag,
    source: Source,
    dest_dir: &Path,
    only: Option<&str>,
) -> Result<StageReport> {
    let started = std::time::Instant::now();
    let selected = select(config, only)?;
    let mut report = match source {
        Source::Auto => match config.store().find_archive(tag) {
            Some(_) => {
                let local = obtain::local(config, tag)?;
                match stage_from(config, tag, &local, dest_dir, &selected) {
                    Err(e) if e.kind == Kind::Archive && !config.remotes.is_empty() => {
                        tracing::warn!(%tag, error = %e.message, "the local archive is damaged; trying the remotes");
                        crate::progress::notice(&format!(
                            "warning: the local copy of {tag} is damaged ({}); trying the remotes",
                            e.message
                        ));
                        remove_dir(dest_dir)?;
                        from_remotes(config, tag, dest_dir, &selected).map_err(|r| {
                            // No remote has it: the local copy's damage is the news.
                            if r.kind == Kind::Usage {
                                e.context("and no remote has a copy")
                            } else {
                                r
                            }
                        })?
                    }
                    other => other?,
                }
            }
            None if config.remotes.is_empty() => {
                return Err(Error::usage(format!(
                    "snapshot {tag} is not in {} and no remote is configured in {}",
                    config.backup_dir.display(),
                    config.file.display()
                ))
                .with_hint("`lifeboat restore` without a tag lists the available snapshots"));
            }
            None => from_remotes(config, tag, dest_dir, &selected)?,
        },
        Source::Local => stage_from(
            config,
            tag,
            &obtain::local(config, tag)?,
            dest_dir,
            &selected,
        )?,
        remote => {
            let remote = obtain::remote_for(config, remote)?;
            obtain::require_listed(config, remote.as_ref(), tag)?;
            let got = obtain::download(config, remote.as_ref(), tag)?;
            stage_from(config, tag, &got, dest_dir, &selected)?
        }
    };
    report.duration_secs = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The first remote, in the configuration's order, that has `tag` and
/// gives an intact copy of it: one that is down, lacks it, or holds a
/// damaged copy does not stop the restore while another can serve it.
fn from_remotes(
    config: &Config,
    tag: &Tag,
    dest_dir: &Path,
    selected: &[&DatabaseConfig],
) -> Result<StageReport> {
    let mut last: Option<Error> = None;
    let mut listed_nowhere = true;
    for remote in crate::remote::open_all(config) {
        match obtain::require_listed(config, remote.as_ref(), tag) {
            Err(e) if e.kind == Kind::Usage => continue,
            _ => listed_nowhere = false,
        }
        let staged = obtain::download(config, remote.as_ref(), tag)
            .and_then(|got| stage_from(config, tag, &got, dest_dir, selected));
        match staged {
            Ok(report) => return Ok(report),
            // Refusals of the data itself are the snapshot's, not the
            // remote's: another copy would be refused the same way.
            Err(e) if e.kind == Kind::Refused || e.kind == Kind::Interrupted => return Err(e),
            Err(e) => {
                tracing::warn!(%tag, remote = %remote.describe(), error = %e.message, "cannot restore from this remote; trying the next");
                crate::progress::notice(&format!(
                    "warning: {tag} from {}: {}; trying the next remote",
                    remote.describe(),
                    e.message
                ));
                remove_dir(dest_dir)?;
                last = Some(e.context(format!("from {}", remote.describe())));
            }
        }
    }
    match last {
        Some(e) => Err(e),
        None if listed_nowhere => Err(Error::usage(format!(
            "snapshot {tag} is not in {} nor on any remote",
            config.backup_dir.display()
        ))
        .with_hint("`lifeboat restore` without a tag lists the available snapshots")),
        // Every remote listed it and none failed: cannot happen (the first
        // would have served it); said plainly rather than a panic.
        None => Err(Error::new(
            Kind::RemoteTransient,
            format!("snapshot {tag} could not be obtained from any remote"),
        )),
    }
}

fn select<'a>(config: &'a Config, only: Option<&str>) -> Result<Vec<&'a DatabaseConfig>> {
    Ok(match only {
        Some(name) => vec![config.database(name)?],
        None => config.databases.iter().collect(),
    })
}

fn remove_dir(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot remove {}", dir.display()), e)),
    }
}

fn stage_from(
    config: &Config,
    tag: &Tag,
    archive_file: &Obtained,
    dest_dir: &Path,
    selected: &[&DatabaseConfig],
) -> Result<StageReport> {
    let staged = stage_selected(config, tag, &archive_file.path, dest_dir, selected)?;
    // A restore refuses on the first database that fails (in config order).
    if let Some((_, e)) = staged.failed.into_iter().next() {
        return Err(e);
    }
    Ok(StageReport {
        source: archive_file.from.clone(),
        ..staged.report
    })
}

/// Steps 2-6 for an archive at hand, with every database checked even when
/// one of them fails: what `verify` reports.
pub struct Staged {
    /// `source` is left empty for the caller to fill; `databases` holds the
    /// ones that passed.
    pub report: StageReport,
    /// The databases that failed the checks, by name, in order.
    pub failed: Vec<(String, Error)>,
    pub manifest: Manifest,
    /// Databases the config declares that the snapshot does not hold.
    pub notes: Vec<String>,
}

/// Steps 2-6 on `archive` (a local file) into `dest_dir`, for every
/// database the snapshot holds, each with its configured migration ladder
/// (none for a database the config no longer declares): what `verify` and
/// `drill` judge. A database the config declares but the snapshot lacks (it
/// was added later) is a note, not a failure of the snapshot.
pub fn stage_archive(
    config: &Config,
    tag: &Tag,
    archive: &Path,
    dest_dir: &Path,
) -> Result<Staged> {
    let manifest = archive::read_manifest(archive, Some(tag))?.manifest;
    let chosen: Vec<DatabaseConfig> = manifest
        .databases
        .iter()
        .map(
            |entry| match config.databases.iter().find(|d| d.name == entry.name) {
                Some(db) => db.clone(),
                None => DatabaseConfig {
                    name: entry.name.clone(),
                    path: PathBuf::from(&entry.path),
                    migrations: None,
                    optional: false,
                    extensions: Vec::new(),
                },
            },
        )
        .collect();
    let selected: Vec<&DatabaseConfig> = chosen.iter().collect();
    let mut staged = stage_selected(config, tag, archive, dest_dir, &selected)?;
    staged.notes = config
        .databases
        .iter()
        .filter(|d| manifest.database(&d.name).is_none())
        .map(|d| match manifest.skipped.iter().find(|s| s.name == d.name) {
            Some(s) if s.optional => format!(
                "database `{}` is not in this snapshot: it is optional and did not exist yet when the snapshot was taken",
                d.name
            ),
            Some(s) => format!(
                "database `{}` is not in this snapshot: it could not be copied when the snapshot was taken ({})",
                d.name, s.reason
            ),
            None => format!(
                "database `{}` is declared in the config but not in this snapshot (added after it was taken?)",
                d.name
            ),
        })
        .collect();
    Ok(staged)
}

fn stage_selected(
    config: &Config,
    tag: &Tag,
    archive: &Path,
    dest_dir: &Path,
    selected: &[&DatabaseConfig],
) -> Result<Staged> {
    // 2. Judge the archive by its manifest before unpacking anything.
    let head = archive::read_manifest(archive, Some(tag))?;
    let manifest = head.manifest;
    let plan = plan(config, &manifest, selected)?;

    // 3. Unpack: the hostile-input-safe reader, into a fresh private dir.
    if occupied(dest_dir) {
        return Err(Error::refused(format!(
            "staging directory {} already exists",
            dest_dir.display()
        ))
        .with_hint("a previous restore left it (e.g. --keep-staging); remove it and run again"));
    }
    crate::fsutil::private_dir(dest_dir)?;
    let limits = Limits {
        max_total_bytes: config.restore.max_unpacked_bytes,
    };
    archive::read(archive, Some(tag), Some(dest_dir), limits)?;
    super::crash_point("staged");
    drop_unselected(dest_dir, &manifest, &plan)?;

    // 4-6. Migrate, check, count: each database on its own core. Every
    // database gets its verdict; the caller decides what a failure means.
    let results = crate::par::try_map_ordered(&plan, |(db, entry, ladder)| {
        Ok::<_, std::convert::Infallible>(check_one(config, dest_dir, db, entry, ladder.as_ref()))
    })
    .unwrap_or_else(|never| match never {});
    let mut databases = Vec::new();
    let mut failed = Vec::new();
    for ((db, _, _), result) in plan.iter().zip(results) {
        match result {
            Ok(staged) => databases.push(staged),
            Err(e) => failed.push((db.name.clone(), e)),
        }
    }
    Ok(Staged {
        report: StageReport {
            tag: *tag,
            source: String::new(),
            staging: dest_dir.to_path_buf(),
            manifest_version: manifest.manifest_version,
            snapshot_ts: manifest.snapshot_ts,
            host: manifest.host.clone(),
            databases,
            duration_secs: 0.0,
            recorded_data_dir: manifest.data_dir.clone(),
        },
        failed,
        manifest,
        notes: vec![],
    })
}

/// True when `p` exists and is anything but an empty directory.
fn occupied(p: &Path) -> bool {
    match std::fs::symlink_metadata(p) {
        Err(_) => false,
        Ok(m) if m.is_dir() => std::fs::read_dir(p).map_or(true, |mut d| d.next().is_some()),
        Ok(_) => true,
    }
}

type Plan<'a> = Vec<(&'a DatabaseConfig, DatabaseEntry, Option<MigrationRunner>)>;

/// Pair each selected database with its manifest entry and ladder, and
/// refuse forward time travel.
fn plan<'a>(
    config: &Config,
    manifest: &Manifest,
    selected: &[&'a DatabaseConfig],
) -> Result<Plan<'a>> {
    let mut out = Vec::new();
    // A whole restore leaves alone the databases the snapshot recorded as
    // left out (an optional one that did not exist yet, or one a partial
    // snapshot could not copy): their live files stay as they are. Asked
    // for by name (`--db`), such a database is refused with the reason.
    let whole = selected.len() == config.databases.len() && selected.len() > 1;
    for db in selected {
        if manifest.database(&db.name).is_none()
            && let Some(skipped) = manifest.skipped.iter().find(|s| s.name == db.name)
        {
            let why = if skipped.optional {
                "it is optional and did not exist when the snapshot was taken".to_string()
            } else {
                format!(
                    "the snapshot is partial: it could not be copied ({})",
                    skipped.reason
                )
            };
            if whole {
                crate::progress::notice(&format!(
                    "note: database `{}` is not in snapshot {}: {why}; its live file is left as it is",
                    db.name, manifest.tag
                ));
                continue;
            }
            return Err(Error::refused(format!(
                "snapshot {} has no database `{}`: {why}",
                manifest.tag, db.name
            ))
            .with_hint(if skipped.optional {
                "there is nothing to restore for it from this snapshot".to_string()
            } else {
                "restore it from an older, complete snapshot (`lifeboat list` shows them)"
                    .to_string()
            }));
        }
        let entry = manifest.database(&db.name).ok_or_else(|| {
            let names: Vec<&str> = manifest.databases.iter().map(|d| d.name.as_str()).collect();
            Error::refused(format!(
                "snapshot {} has no database `{}` (it holds: {})",
                manifest.tag,
                db.name,
                names.join(", ")
            ))
            .with_hint("restore the databases it has with --db NAME, or pick another snapshot")
        })?;
        let ladder = match &db.migrations {
            Some(dir) => Some(MigrationRunner::load(dir).map_err(|e| {
                e.context(format!(
                    "database `{}` ({})",
                    db.name,
                    config.file.display()
                ))
            })?),
            None => None,
        };
        if let Some(ladder) = &ladder
            && entry.schema_version > ladder.newest()
        {
            return Err(Error::refused(format!(
                    "snapshot {} holds `{}` at schema version {}, newer than the newest migration this code knows ({} in {})",
                    manifest.tag,
                    db.name,
                    entry.schema_version,
                    ladder.newest(),
                    ladder.source()
                ))
                .with_hint("no forward time travel: restore it with the application version that wrote it, or an older snapshot"));
        }
        out.push((*db, entry.clone(), ladder));
    }
    Ok(out)
}

/// With `--db`, the other databases were unpacked (and verified) too; take
/// them out so the staging directory holds exactly what goes live.
fn drop_unselected(dest_dir: &Path, manifest: &Manifest, plan: &Plan<'_>) -> Result<()> {
    for entry in &manifest.databases {
        if plan.iter().all(|(_, e, _)| e.name != entry.name) {
            let p = dest_dir.join(&entry.path);
            std::fs::remove_file(&p).ctx(format!("cannot remove {}", p.display()))?;
        }
    }
    super::journal::remove_empty_tree(dest_dir);
    crate::fsutil::private_dir(dest_dir)
}

fn check_one(
    config: &Config,
    dest_dir: &Path,
    db: &DatabaseConfig,
    entry: &DatabaseEntry,
    ladder: Option<&MigrationRunner>,
) -> Result<StagedDb> {
    let staged = dest_dir.join(&entry.path);
    let mut conn = Connection::open_with_flags(
        &staged,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| {
        Error::refused(format!(
            "database `{}`: the staged copy does not open: {e}",
            db.name
        ))
    })?;
    crate::sqlext::load_extensions(&conn, &db.name, &db.extensions)?;
    // 4-6. Migrate and check: the same checker verify and drill use.
    let checked = check::database(&db.name, &mut conn, entry, ladder, config.restore.check)?;
    // The copy was stored in rollback-journal mode; give the application
    // back the mode it had. WAL is persistent in the file header and needs
    // no -wal file once the connection closes cleanly.
    if entry.journal_mode == "wal" {
        conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0))?;
    }
    conn.close().map_err(|(_, e)| Error::from(e))?;
    std::fs::File::open(&staged)
        .and_then(|f| f.sync_all())
        .ctx(format!("cannot sync {}", staged.display()))?;
    Ok(StagedDb {
        name: db.name.clone(),
        staged: entry.path.clone(),
        live: db.archive_path(),
        checked,
        recorded_file: entry.file.clone(),
    })
}
