//! Taking a snapshot: hot-copy each database into a staging directory,
//! describe the copies in a manifest, and pack both into one archive.
//!
//! Files appear in `backup_dir` only under their final name once complete
//! (temp file, fsync, rename); the staging directory and any `.tmp` file are
//! leftovers of an interrupted run and are removed by the next one
//! ([`crate::store::Store::clean_stale`]).

pub mod archive;
pub mod facts;
pub mod follow;
pub mod gunzip;
pub mod hotcopy;
pub mod manifest;
pub mod pgzip;
pub mod source;
pub mod writeback;

use crate::config::Config;
use crate::error::{Error, Kind as ErrorKind, Result};
use crate::fsutil;
use crate::store::Store;
use crate::tag::{Kind, Tag};
use archive::{ArchiveWriter, Limits};
use manifest::{DatabaseEntry, MANIFEST_VERSION, Manifest, SkippedDatabase};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

/// A finished, verified snapshot archive.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub tag: Tag,
    pub archive: PathBuf,
    pub archive_bytes: u64,
    pub manifest: Manifest,
    /// The databases that could not be copied, each with its error: the
    /// snapshot is partial. Optional databases that do not exist yet are
    /// not failures; they are in the manifest's `skipped` only.
    pub failed: Vec<(String, Error)>,
}

impl Snapshot {
    /// Does it hold every configured database that exists?
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty()
    }
}

/// What to report while working: (database name, pages done, pages total)
/// while copying, then (`archive`, bytes packed, bytes to pack).
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

/// Take a snapshot of every configured database. The caller holds the lock.
pub fn take(
    config: &Config,
    kind: Kind,
    reason: Option<String>,
    progress: Progress<'_>,
) -> Result<Snapshot> {
    let store = config.store();
    store.create()?;
    store.clean_stale()?;
    let tag = unique_tag(&store, kind, config.installation);
    // The snapshot is queued for pushing to each remote before its archive
    // can exist under its final name: a crash at any later moment leaves the
    // markers, and retention never deletes a queued archive that was not
    // pushed.
    let remotes: Vec<&str> = config.remotes.iter().map(|r| r.kind()).collect();
    for remote in &remotes {
        store.mark_pending(&tag, remote)?;
    }
    let staging = store.staging(&tag);
    let result = take_in(config, &tag, reason, &staging, progress);
    let _ = std::fs::remove_dir_all(&staging);
    if result.is_err() {
        for remote in &remotes {
            store.clear_pending(&tag, remote, &remotes);
        }
    }
    result
}

fn take_in(
    config: &Config,
    tag: &Tag,
    reason: Option<String>,
    staging: &Path,
    progress: Progress<'_>,
) -> Result<Snapshot> {
    fsutil::private_dir(staging)?;
    let copies = copy_all(config, staging, progress)?;
    let mut entries = Vec::new();
    let mut skipped = Vec::new();
    let mut failed = Vec::new();
    for (db, copy) in config.databases.iter().zip(copies) {
        match copy {
            Copy::Copied(entry) => entries.push(*entry),
            Copy::Skipped(reason) => skipped.push(SkippedDatabase {
                name: db.name.clone(),
                path: db.archive_path(),
                reason,
                optional: true,
            }),
            Copy::Failed(e) => {
                skipped.push(SkippedDatabase {
                    name: db.name.clone(),
                    path: db.archive_path(),
                    reason: e.message.clone(),
                    optional: false,
                });
                failed.push((db.name.clone(), e));
            }
        }
    }
    if entries.is_empty() {
        return Err(nothing_copied(failed, &skipped));
    }

    let prov = crate::provenance::read(&config.app_dir, config.app_version.as_deref());
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        tag: *tag,
        kind: tag.kind(),
        reason,
        snapshot_ts: tag.time(),
        lifeboat_version: env!("CARGO_PKG_VERSION").to_string(),
        app_version: prov.version,
        app_commit: prov.commit,
        app_branch: prov.branch,
        app_dirty: prov.dirty,
        host: gethostname::gethostname().to_string_lossy().into_owned(),
        installation: tag.installation().map(|i| i.to_string()),
        sqlite_version: rusqlite::version().to_string(),
        databases: entries,
        data_dir: facts::ownership(&config.data_dir),
        skipped,
    };

    let format = config.snapshot.compression;
    let target = config.store().archive(tag, format);
    let started = std::time::Instant::now();
    let mut writer = ArchiveWriter::create(&target, tag, format, config.snapshot.level)?;
    // Progress of packing: bytes of the copies fed to the compressor.
    let total = manifest.total_bytes();
    let packed = std::sync::atomic::AtomicU64::new(0);
    let shown = target.display().to_string();
    // What was written is read back, by the same hostile-safe reader that
    // restore uses, on a second thread that follows the file as it grows
    // (see `follow.rs`): an archive that does not read back is removed, never
    // renamed into place or pushed. Following rather than re-reading after
    // the last byte lets the check overlap the compression.
    let follower = match writer.follower() {
        Ok(f) => f,
        Err(e) => {
            writer.abandon();
            return Err(e);
        }
    };
    let (archive_bytes, packed_ms) = std::thread::scope(|s| {
        let checker = s.spawn(|| {
            let limits = Limits {
                max_total_bytes: u64::MAX,
            };
            archive::read_from(follower, &shown, Some(tag), None, limits)
        });
        let written: Result<()> = (|| {
            writer.append_manifest(&manifest)?;
            for db in &manifest.databases {
                writer.append_file(&db.path, &staging.join(&db.path), &|n| {
                    let done = packed.fetch_add(n, Ordering::Relaxed) + n;
                    progress("archive", done, total);
                })?;
            }
            Ok(())
        })();
        if let Err(e) = written {
            // Dropping the writer tells the checker to stop.
            writer.abandon();
            let _ = checker.join();
            return Err(e);
        }
        let mut packed_ms = 0;
        let archive_bytes = writer.finish(|| {
            packed_ms = started.elapsed().as_millis() as u64;
            let checked = checker.join().unwrap_or_else(|_| {
                Err(crate::error::Error::archive(
                    "the check of the archive just written crashed",
                ))
            });
            match checked {
                Ok(_) => Ok(()),
                Err(e) => {
                    Err(e.context("the archive just written does not read back; it was removed"))
                }
            }
        })?;
        Ok((archive_bytes, packed_ms))
    })?;
    tracing::info!(
        %tag,
        archive = %target.display(),
        archive_bytes,
        // Packing, to the fsync of the last byte; then the wait for the
        // check following it (near zero when it kept up).
        packed_ms,
        check_wait_ms = (started.elapsed().as_millis() as u64).saturating_sub(packed_ms),
        "snapshot written and verified"
    );
    Ok(Snapshot {
        tag: *tag,
        archive: target,
        archive_bytes,
        manifest,
        failed,
    })
}

/// The error of a run that copied no database at all: the one failure as
/// it is, or every failure named.
fn nothing_copied(mut failed: Vec<(String, Error)>, skipped: &[SkippedDatabase]) -> Error {
    if failed.len() == 1 {
        return failed.remove(0).1;
    }
    if failed.is_empty() {
        let names: Vec<String> = skipped.iter().map(|s| format!("`{}`", s.name)).collect();
        return Error::database(format!(
            "nothing to back up: every database is optional and none exists yet ({})",
            names.join(", ")
        ))
        .with_hint("run the application once so that it creates its databases, or check data_dir");
    }
    let mut message = String::from("no database could be copied:");
    for (_, e) in &failed {
        message.push_str(&format!("\n  {}", e.message));
        if let Some(h) = &e.hint {
            message.push_str(&format!("\n    hint: {h}"));
        }
    }
    Error::database(message)
        .with_hint("fix each database above (its own hint says how) and run again")
}

/// What became of one configured database.
enum Copy {
    Copied(Box<DatabaseEntry>),
    /// An optional database that does not exist yet; the reason.
    Skipped(String),
    /// It could not be copied; the other databases still are.
    Failed(Error),
}

/// Copy every database into `staging`, several at once (one per core).
/// One database that cannot be copied (missing, not SQLite, unreadable,
/// busy) fails alone; `Err` is for what stops every copy: a stop signal, or
/// a fault of `backup_dir` itself (a full disk).
fn copy_all(config: &Config, staging: &Path, progress: Progress<'_>) -> Result<Vec<Copy>> {
    crate::par::try_map_ordered(&config.databases, |db| {
        let live = db.live_path(&config.data_dir);
        // Only "does not exist": an unreadable directory is a failure to
        // report, not a database that is not there yet.
        let absent = matches!(std::fs::symlink_metadata(&live),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        if db.optional && absent {
            return Ok(Copy::Skipped(format!(
                "{} does not exist yet (the database is optional)",
                live.display()
            )));
        }
        match copy_one(config, db, staging, progress) {
            Ok(entry) => Ok(Copy::Copied(Box::new(entry))),
            Err(e) if matches!(e.kind, ErrorKind::Interrupted | ErrorKind::Io) => Err(e),
            Err(e) => {
                tracing::warn!(db = %db.name, error = %e.message, "database not copied");
                Ok(Copy::Failed(e))
            }
        }
    })
}

fn copy_one(
    config: &Config,
    db: &crate::config::DatabaseConfig,
    staging: &Path,
    progress: Progress<'_>,
) -> Result<DatabaseEntry> {
    let live = db.live_path(&config.data_dir);
    // A database that is plainly wrong (missing, empty, not SQLite) fails
    // before a copy is started, with the most precise message.
    hotcopy::check_source(&db.name, &live).map_err(|e| match e.kind {
        // Its own unreadable directory, not backup_dir's.
        ErrorKind::Io => Error {
            kind: ErrorKind::Database,
            ..e
        },
        _ => e,
    })?;
    let archive_path = db.archive_path();
    let target = staging.join(&db.path);
    if let Some(parent) = target.parent() {
        fsutil::create_dir_all_private(parent)?;
    }
    let tmp = fsutil::temp_sibling(&target);
    let started = std::time::Instant::now();
    let entry = hotcopy::hot_copy(
        &db.name,
        &archive_path,
        &live,
        &tmp,
        config.snapshot.busy_timeout,
        &db.extensions,
        &|done, total| progress(&db.name, done, total),
    );
    let mut entry = match entry {
        Ok(e) => e,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            let _ = std::fs::remove_file(tmp.with_extension("tmp-journal"));
            return Err(e);
        }
    };
    entry.file = facts::ownership(&live);
    fsutil::commit(&tmp, &target)?;
    tracing::info!(db = %db.name, bytes = entry.bytes, ms = started.elapsed().as_millis() as u64, "database copied");
    Ok(entry)
}

/// A tag not yet used in the store: two snapshots in the same second wait
/// for the next one.
fn unique_tag(store: &Store, kind: Kind, installation: Option<crate::tag::Installation>) -> Tag {
    loop {
        let tag = Tag::now(kind).of(installation);
        if store.find_archive(&tag).is_none() {
            return tag;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
