//! Restore: stage, verify, migrate, check, and only then swap.
//!
//! The pipeline:
//! 1. obtain the archive ([`obtain`]): the local copy if present and intact,
//!    else a download from the remote into a private staging area;
//! 2. judge it by its manifest before unpacking: version, tag, schema
//!    versions (no forward time travel), declared sizes vs. limits and free
//!    space;
//! 3. unpack into `<data_dir>.staging-<tag>` with the hostile-input-safe
//!    reader ([`crate::snapshot::archive::read`]);
//! 4. migrate each staged database to the newest version of its ladder;
//! 5. `PRAGMA integrity_check` (or `quick_check`) and `foreign_key_check`;
//! 6. row counts against the manifest (steps 4-6 are [`crate::check`], the
//!    checker `verify` and `drill` use too);
//! 7. refuse if a live database is in use, then swap ([`swap`]) under a
//!    crash-safe [`journal`], keeping the old files in
//!    `<data_dir>.pre-restore-<time>`.
//!
//! Staging, pre-restore copies and the journal live beside the data
//! directory, or inside it under `.lifeboat.*` names when beside is not
//! possible ([`crate::store::DataArea`] owns those names).
//!
//! Steps 1-6 are [`stage_and_check`], which never touches live data; `verify`
//! and `drill` run its steps 2-6 ([`stage::stage_archive`]) on their own
//! scratch copies. Every command that
//! changes data first calls [`recover`], which finishes or rolls back a
//! restore that was killed mid-swap.

pub mod journal;
pub mod links;
pub mod obtain;
mod recover;
pub mod stage;
pub mod swap;
mod undo;

pub use obtain::Source;
pub use recover::recover;
pub use stage::{StageReport, StagedDb, stage_and_check};
pub use undo::{UndoReport, undo};

use crate::config::Config;
use crate::error::{Error, IoContext, Result};
use crate::tag::Tag;
use journal::exists;
use std::path::{Path, PathBuf};
use swap::{Item, Mode};

/// What `lifeboat restore` was asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub tag: Tag,
    pub source: Source,
    /// Restore only this database.
    pub only: Option<String>,
    /// Stop after step 6.
    pub dry_run: bool,
    /// Skip the in-use probe.
    pub force: bool,
    /// Keep the staging directory when the restore stops before the swap.
    pub keep_staging: bool,
    /// Place the checked databases into this directory (which must not
    /// exist, or be empty) instead of swapping them into `data_dir`.
    pub to: Option<PathBuf>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RestoreReport {
    pub stage: StageReport,
    pub dry_run: bool,
    /// How the files were swapped (none for a dry run).
    pub mode: Option<Mode>,
    /// Where the replaced live files are now (none when there were none).
    pub pre_restore: Option<PathBuf>,
    /// The staging directory, when kept.
    pub kept_staging: Option<PathBuf>,
    /// Where `--to` placed the databases (live data untouched).
    pub placed_in: Option<PathBuf>,
    /// Databases whose declared path is a symbolic link: restored through
    /// it (the target replaced, the link left as it is).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub through_links: Vec<links::Linked>,
}

const CRASH_ENV: &str = "LIFEBOAT_TEST_CRASH_AT";

/// Tests kill the process at a named step to prove crash safety. Only in
/// debug builds: a release binary has no such switch.
pub(crate) fn crash_point(step: &str) {
    #[cfg(debug_assertions)]
    if std::env::var(CRASH_ENV).is_ok_and(|v| v == step) {
        eprintln!("{CRASH_ENV}={step}: killing this process");
        // SAFETY: signalling ourselves.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = (step, CRASH_ENV);
}

/// Restore a snapshot (the caller holds the lock and has run [`recover`]).
pub fn restore(config: &Config, opts: &Options) -> Result<RestoreReport> {
    if let Some(to) = &opts.to {
        return restore_into(config, opts, to);
    }
    let data_dir = &config.data_dir;
    if data_dir.parent().is_none() {
        return Err(Error::config("data_dir must not be the filesystem root"));
    }
    // Created by this restore (or holding only lifeboat's own directories,
    // which the run's lock may have just created there: the default
    // backup_dir is inside data_dir): it then takes the recorded owner and
    // mode.
    let created = !data_dir.is_dir() || holds_only_lifeboats(data_dir, &config.backup_dir);
    create_data_dir(data_dir)?;
    // A symbolic link that cannot be restored through is refused before
    // anything is downloaded or unpacked (and again, authoritatively, when
    // the swap is planned).
    let through_links = preflight_links(config, opts.only.as_deref())?;
    let staging = config.data_area().staging(&opts.tag);
    if exists(&staging) {
        std::fs::remove_dir_all(&staging)
            .ctx(format!("cannot remove stale {}", staging.display()))?;
    }
    let stage = match stage_and_check(
        config,
        &opts.tag,
        opts.source,
        &staging,
        opts.only.as_deref(),
    ) {
        Ok(s) => s,
        Err(e) => {
            let kept = drop_staging(&config.data_area(), &staging, opts.keep_staging);
            return Err(match kept {
                Some(k) => e.context(format!("(staging kept in {})", k.display())),
                None => e,
            });
        }
    };
    crash_point("checked");
    if opts.dry_run {
        let kept = drop_staging(&config.data_area(), &staging, opts.keep_staging);
        return Ok(RestoreReport {
            stage,
            dry_run: true,
            mode: None,
            pre_restore: None,
            kept_staging: kept,
            placed_in: None,
            through_links,
        });
    }
    let result = swap_in(config, opts, &stage, &staging);
    if created && result.is_ok() {
        give_created_data_dir(
            data_dir,
            &config.backup_dir,
            stage.recorded_data_dir.as_ref(),
        );
    }
    // A journal left behind means even the rollback failed: after a
    // whole-directory exchange `staging` may then name the old live data, so
    // nothing is touched and the next run finishes the rollback.
    if result.is_err() && !exists(&config.store().restore_journal()) {
        drop_staging(&config.data_area(), &staging, opts.keep_staging);
    }
    let (mode, pre_restore) = result?;
    tracing::info!(tag = %opts.tag, ?mode, "restore finished");
    Ok(RestoreReport {
        stage,
        dry_run: false,
        mode: Some(mode),
        pre_restore,
        kept_staging: None,
        placed_in: None,
        through_links,
    })
}

/// The declared databases a restore of `only` (or of all) would replace,
/// resolved through their links ([`links`]): refuses what cannot be done
/// safely, returns the links that will be followed.
fn preflight_links(config: &Config, only: Option<&str>) -> Result<Vec<links::Linked>> {
    let dbs: Vec<(String, PathBuf)> = config
        .databases
        .iter()
        .filter(|d| only.is_none_or(|o| o == d.name))
        .map(|d| (d.name.clone(), d.path.clone()))
        .collect();
    let (area_dir, _) = config.data_area().area();
    let lives = links::resolve_all(&config.data_dir, &dbs, &area_dir)?;
    Ok(links::linked(&lives))
}

/// Before a restore into `data_dir` does anything (even list or lock, which
/// would create a default `backup_dir` inside it): `data_dir` exists, or
/// can be created by [`create_data_dir`] (its parent exists).
pub fn check_data_dir(data_dir: &Path) -> Result<()> {
    if data_dir.is_dir() || data_dir.parent().is_some_and(Path::is_dir) {
        return Ok(());
    }
    Err(missing_data_dir(data_dir))
}

fn missing_data_dir(data_dir: &Path) -> Error {
    Error::config(format!(
        "data_dir {} does not exist, nor does its parent directory",
        data_dir.display()
    ))
    .with_hint(
        "check data_dir in the config; a restore onto a fresh machine creates data_dir \
         itself, but only inside a directory that exists",
    )
}

/// A restore onto a fresh machine creates `data_dir` itself (one level,
/// 0700, owned like its parent), but never a whole tree: its parent must
/// exist, so a mistyped path is an error naming it.
fn create_data_dir(data_dir: &Path) -> Result<()> {
    if data_dir.is_dir() {
        return Ok(());
    }
    match data_dir.parent() {
        Some(parent) if parent.is_dir() => {
            crate::fsutil::create_dir_all_owned_like_parent(data_dir)
        }
        _ => Err(missing_data_dir(data_dir)),
    }
}

/// A `data_dir` this restore created (0700, owned like its parent) gets the
/// mode and owner the snapshot recorded, the owner by name, and so does
/// every directory the restore created in it: on a fresh machine the
/// application's account must be able to enter them, and a root restore
/// would otherwise leave them root's. Without a record (a version 1
/// manifest) they stay as created. The data is in place by now, so a
/// failure here is a warning naming the fix, never a failed restore.
fn give_created_data_dir(
    data_dir: &Path,
    backup_dir: &Path,
    recorded: Option<&crate::snapshot::manifest::FileOwnership>,
) {
    use std::os::unix::fs::PermissionsExt;
    let Some(recorded) = recorded else { return };
    let current = crate::fsutil::owner_of(data_dir);
    let owner = recorded.owner_here(current);
    let mut problems = Vec::new();
    if let Some(mode) = recorded
        .mode_bits()
        .map(crate::snapshot::manifest::safe_mode)
        && let Err(e) = std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(mode))
    {
        problems.push(format!("chmod {mode:o} {}: {e}", data_dir.display()));
    }
    let mut dirs = vec![data_dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        if let Err(e) = crate::fsutil::give_to(&dir, owner) {
            problems.push(e.message);
        }
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            // Never through a link, and never lifeboat's own directories
            // (root's records and lock must not become the application's):
            // only what the restore created for the data.
            let path = entry.path();
            if entry.file_type().is_ok_and(|t| t.is_dir()) && !is_lifeboats(&path, backup_dir) {
                dirs.push(path);
            }
        }
    }
    if !problems.is_empty() {
        tracing::warn!(problems = ?problems, "cannot give the created data directory its recorded owner and mode");
        crate::progress::notice(&format!(
            "warning: the data was restored, but {} could not be given its recorded owner and mode ({}); \
             give it to the application's account by hand (chown -R)",
            data_dir.display(),
            problems.join("; ")
        ));
    }
}

/// Whether `path` is lifeboat's own: `backup_dir` (or under it), or the
/// restore area inside the data directory.
fn is_lifeboats(path: &Path, backup_dir: &Path) -> bool {
    path.starts_with(backup_dir) || path.file_name().is_some_and(|n| n == ".lifeboat")
}

/// A data directory whose only entries are lifeboat's own directories.
fn holds_only_lifeboats(data_dir: &Path, backup_dir: &Path) -> bool {
    std::fs::read_dir(data_dir).is_ok_and(|entries| {
        entries
            .flatten()
            .all(|e| is_lifeboats(&e.path(), backup_dir))
    })
}

/// `restore TAG --to DIR`: steps 1-6 into `<DIR>.staging-<tag>` (beside
/// `DIR`, on its filesystem), then the checked databases are arranged in a
/// directory inside the staging one, at their paths relative to
/// `data_dir`, and that directory is renamed to `DIR`. `data_dir` is never
/// touched (no journal, no pre-restore copy: nothing live is replaced).
fn restore_into(config: &Config, opts: &Options, to: &Path) -> Result<RestoreReport> {
    check_target(to)?;
    let staging = crate::store::placement_staging(to, &opts.tag);
    if exists(&staging) {
        std::fs::remove_dir_all(&staging)
            .ctx(format!("cannot remove stale {}", staging.display()))?;
    }
    let result = stage_and_check(
        config,
        &opts.tag,
        opts.source,
        &staging,
        opts.only.as_deref(),
    )
    .and_then(|stage| place(&stage, &staging, to).map(|()| stage));
    let stage = match result {
        Ok(stage) => stage,
        Err(e) => {
            let kept = keep_or_remove(&staging, opts.keep_staging);
            return Err(match kept {
                Some(k) => e.context(format!("(staging kept in {})", k.display())),
                None => e,
            });
        }
    };
    if let Err(e) = std::fs::remove_dir_all(&staging) {
        tracing::warn!(path = %staging.display(), error = %e, "cannot remove the staging directory");
    }
    tracing::info!(tag = %opts.tag, to = %to.display(), "restore into a directory finished");
    Ok(RestoreReport {
        stage,
        dry_run: false,
        mode: None,
        pre_restore: None,
        kept_staging: None,
        placed_in: Some(to.to_path_buf()),
        through_links: vec![],
    })
}

/// `--to DIR` must not exist or be an empty directory, in an existing
/// parent, and on its parent's filesystem (an empty mount point cannot be
/// the target of a rename).
fn check_target(to: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let usage = |why: &str| {
        Error::usage(format!("--to {}: {why}", to.display()))
            .with_hint("name a directory that does not exist yet (or an empty one)")
    };
    let Some(parent) = to.parent().filter(|p| !p.as_os_str().is_empty()) else {
        return Err(usage("not a directory that can be created"));
    };
    let Ok(parent_meta) = std::fs::metadata(parent) else {
        return Err(usage("its parent directory does not exist"));
    };
    match std::fs::symlink_metadata(to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("cannot inspect {}", to.display()), e)),
        Ok(m) if !m.is_dir() => Err(usage("exists and is not a directory")),
        Ok(m) if m.dev() != parent_meta.dev() => {
            Err(usage("is a mount point; name a new directory inside it"))
        }
        Ok(_) => match std::fs::read_dir(to)
            .ctx(format!("cannot read {}", to.display()))?
            .next()
        {
            None => Ok(()),
            Some(_) => Err(usage("exists and is not empty")),
        },
    }
}

/// Arrange the checked databases under `<staging>/placed` at their live
/// paths, then rename that directory to `to`.
fn place(stage: &StageReport, staging: &Path, to: &Path) -> Result<()> {
    let placed = staging.join("placed");
    crate::fsutil::create_dir_all_private(&placed)?;
    for db in &stage.databases {
        let from = staging.join(&db.staged);
        let dest = placed.join(&db.live);
        if let Some(parent) = dest.parent() {
            crate::fsutil::create_dir_all_private(parent)?;
        }
        std::fs::rename(&from, &dest).ctx(format!(
            "cannot move {} to {}",
            from.display(),
            dest.display()
        ))?;
        std::fs::File::open(&dest)
            .and_then(|f| f.sync_all())
            .ctx(format!("cannot sync {}", dest.display()))?;
    }
    // Over an empty directory, rename(2) replaces it.
    std::fs::rename(&placed, to).ctx(format!(
        "cannot rename {} to {}",
        placed.display(),
        to.display()
    ))?;
    if let Some(parent) = to.parent() {
        crate::fsutil::sync_dir(parent)?;
    }
    Ok(())
}

fn keep_or_remove(staging: &Path, keep: bool) -> Option<PathBuf> {
    if !exists(staging) {
        return None;
    }
    if keep {
        return Some(staging.to_path_buf());
    }
    if let Err(e) = std::fs::remove_dir_all(staging) {
        tracing::warn!(path = %staging.display(), error = %e, "cannot remove the staging directory");
    }
    None
}

fn swap_in(
    config: &Config,
    opts: &Options,
    stage: &StageReport,
    staging: &Path,
) -> Result<(Mode, Option<PathBuf>)> {
    let data_dir = &config.data_dir;
    let items: Vec<Item> = stage
        .databases
        .iter()
        .map(|d| Item {
            name: d.name.clone(),
            staged: PathBuf::from(&d.staged),
            live: PathBuf::from(&d.live),
            recorded: d.recorded_file.clone(),
        })
        .collect();
    if !opts.force {
        // The files the application really has open: a link's target.
        let resolved = swap::resolve(data_dir, &items, staging)?;
        let live: Vec<(String, PathBuf)> = items
            .iter()
            .zip(resolved)
            .map(|(i, p)| (i.name.clone(), p))
            .collect();
        swap::refuse_in_use(&live)?;
    }
    let area = config.data_area();
    let (pre, set_aside) = area.new_swap_places();
    let places = swap::Places {
        data_dir,
        staging,
        pre_restore: &pre,
        set_aside: &set_aside,
    };
    let (mode, journal) = swap::plan(&opts.tag.to_string(), &places, &items, opts.only.is_none())?;
    journal.run(&config.store().restore_journal())?;
    Ok((mode, exists(&pre).then_some(pre)))
}

/// Remove the staging directory, or keep it under a `.kept` name that the
/// next run's cleanup leaves alone. Returns where it was kept.
fn drop_staging(area: &crate::store::DataArea, staging: &Path, keep: bool) -> Option<PathBuf> {
    if !exists(staging) {
        return None;
    }
    if keep {
        let kept = area.kept(staging);
        if !exists(&kept) && std::fs::rename(staging, &kept).is_ok() {
            return Some(kept);
        }
        return Some(staging.to_path_buf());
    }
    if let Err(e) = std::fs::remove_dir_all(staging) {
        tracing::warn!(path = %staging.display(), error = %e, "cannot remove the staging directory");
    }
    None
}
