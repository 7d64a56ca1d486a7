//! `restore --undo`: put the newest pre-restore copy back, through the same
//! journaled swap as a restore.

use super::journal::exists;
use super::swap::{self, Item};
use crate::config::Config;
use crate::error::{Error, IoContext, Result};
use crate::store::with_suffix;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, serde::Serialize)]
pub struct UndoReport {
    /// The pre-restore directory that was put back.
    pub restored_from: PathBuf,
    pub databases: Vec<String>,
    /// Where the files it replaced are now.
    pub pre_restore: Option<PathBuf>,
}

/// Put the newest pre-restore copy back (the caller holds the lock). The
/// files it replaces are kept in a new pre-restore directory, so an undo can
/// itself be undone.
pub fn undo(config: &Config, force: bool) -> Result<UndoReport> {
    let data_dir = &config.data_dir;
    let area = config.data_area();
    let from = area.pre_restore_dirs().pop().ok_or_else(|| {
        Error::usage(format!(
            "nothing to undo: there is no {} directory",
            area.pre_restore_pattern().display()
        ))
        .with_hint("a restore onto an empty data directory keeps no previous copy")
    })?;
    let mut files = Vec::new();
    collect_files(&from, Path::new(""), &mut files)?;
    let mut items = Vec::new();
    let mut names = Vec::new();
    for rel in &files {
        let owner = config.databases.iter().find(|db| {
            swap::SIDECARS
                .iter()
                .any(|s| *rel == with_suffix(&db.path, s))
        });
        let Some(db) = owner else {
            return Err(Error::refused(format!(
                "{} holds {}, which is not a declared database file",
                from.display(),
                rel.display()
            ))
            .with_hint("move it out (lifeboat only puts back the files it moved aside)"));
        };
        if !names.contains(&db.name) {
            names.push(db.name.clone());
            items.push(Item {
                name: db.name.clone(),
                staged: db.path.clone(),
                live: db.path.clone(),
                // What it puts back is a file it moved aside, with its own.
                recorded: None,
            });
        }
    }
    // Through a database's symbolic link, as the restore went (refused
    // here, before anything moves, when that cannot be done safely).
    let resolved = swap::resolve(data_dir, &items, &from)?;
    if !force {
        let live: Vec<(String, PathBuf)> = items
            .iter()
            .zip(resolved)
            .map(|(i, p)| (i.name.clone(), p))
            .collect();
        swap::refuse_in_use(&live)?;
    }
    let (pre, set_aside) = area.new_swap_places();
    let places = swap::Places {
        data_dir,
        staging: &from,
        pre_restore: &pre,
        set_aside: &set_aside,
    };
    let (_, mut journal) = swap::plan("undo", &places, &items, false)?;
    // `from` is the data the last restore replaced; if this undo is rolled
    // back, that data is in `from` again and must survive.
    journal.staging_is_user_data = true;
    journal.run(&config.store().restore_journal())?;
    Ok(UndoReport {
        restored_from: from,
        databases: names,
        pre_restore: exists(&pre).then_some(pre),
    })
}

fn collect_files(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let dir = root.join(rel);
    for entry in std::fs::read_dir(&dir).ctx(format!("cannot list {}", dir.display()))? {
        let entry = entry.ctx(format!("cannot list {}", dir.display()))?;
        let child = rel.join(entry.file_name());
        let kind = entry
            .file_type()
            .ctx(format!("cannot stat {}", entry.path().display()))?;
        if kind.is_dir() {
            collect_files(root, &child, out)?;
        } else if kind.is_file() {
            out.push(child);
        } else {
            return Err(Error::refused(format!(
                "{} is not a regular file",
                entry.path().display()
            )));
        }
    }
    Ok(())
}
