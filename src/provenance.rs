//! Code provenance for the manifest: which version of the application wrote
//! the data. Read with git2 from `app_dir`; no repository gives nulls, not an
//! error (many deployments are not git checkouts).

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
    let repo = git2::Repository::discover(app_dir).ok()?;
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
