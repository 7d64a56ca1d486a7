//! Code provenance for the manifest: which version of the application wrote
//! the data. Read with git2 from `app_dir`; no repository gives nulls, not an
//! error (many deployments are not git checkouts).
//!
//! Only the repository whose work tree *is* `app_dir` counts. The repository
//! is opened without searching upwards (never `Repository::discover`): an
//! application in an untracked directory under some parent repository (a
//! dotfiles repository in `$HOME`) must not record that repository's commit
//! as its own.

use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    pub version: Option<String>,
    pub commit: Option<String>,
    pub branch: Option<String>,
    pub dirty: Option<bool>,
}

pub fn read(app_dir: &Path, configured_version: Option<&str>) -> Provenance {
    let mut p = read_git(app_dir).unwrap_or_default();
    if let Some(v) = configured_version {
        p.version = Some(v.to_string());
    }
    p
}

fn read_git(app_dir: &Path) -> Option<Provenance> {
    let repo = open_own(app_dir)?;
    let head = repo.head().ok()?;
    let commit = head.peel_to_commit().ok()?;
    let branch = if head.is_branch() {
        head.shorthand().ok().map(str::to_string)
    } else {
        None
    };
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(false).include_ignored(false);
    let dirty = repo.statuses(Some(&mut opts)).ok().map(|s| !s.is_empty());
    // Like `git describe --tags --always --dirty`.
    let version = repo
        .describe(
            git2::DescribeOptions::new()
                .describe_tags()
                .show_commit_oid_as_fallback(true),
        )
        .ok()
        .and_then(|d| {
            let mut f = git2::DescribeFormatOptions::new();
            f.dirty_suffix("-dirty");
            d.format(Some(&f)).ok()
        });
    Some(Provenance {
        version,
        commit: Some(commit.id().to_string()),
        branch,
        dirty,
    })
}

/// The repository whose work tree is `app_dir` itself, if any: opened with
/// `NO_SEARCH` (no walking up to a parent) and its work tree compared with
/// `app_dir`, so a `GIT_DIR` in the environment cannot substitute another.
fn open_own(app_dir: &Path) -> Option<git2::Repository> {
    let repo = git2::Repository::open_ext(
        app_dir,
        git2::RepositoryOpenFlags::NO_SEARCH,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .ok()?;
    let workdir = repo.workdir()?.canonicalize().ok()?;
    (workdir == app_dir.canonicalize().ok()?).then_some(repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_repository_is_not_the_applications() {
        let dir = tempfile::tempdir().unwrap();
        let parent = git2::Repository::init(dir.path()).unwrap();
        let sig = git2::Signature::now("t", "t@example.com").unwrap();
        let tree = parent
            .find_tree(parent.index().unwrap().write_tree().unwrap())
            .unwrap();
        parent
            .commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
            .unwrap();
        let app = dir.path().join("apps/myapp");
        std::fs::create_dir_all(&app).unwrap();
        assert_eq!(read(&app, None), Provenance::default());
        // The repository's own work tree is read.
        assert!(read(dir.path(), None).commit.is_some());
    }
}
