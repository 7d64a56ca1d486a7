//! GitHub releases as a remote, driven through the `gh` CLI.
//!
//! One release per snapshot, tagged with the snapshot tag, titled with it,
//! holding the archive as its only asset. lifeboat never sees a token: gh
//! finds it (`gh auth login` or `GH_TOKEN`).
//!
//! What gh does that this module works around (see issue 4):
//! - `gh release create` makes a draft, uploads, then publishes; a failed
//!   upload can leave the draft behind, invisible to `releases/tags/TAG`, so
//!   a blind re-run makes a second one. Push therefore lists first and
//!   converges an existing release or draft (`upload --clobber`, `edit
//!   --draft=false`, duplicates deleted) instead of creating again.
//! - gh can print `release not found` when the lookup failed for another
//!   reason (5xx, 401, reset); only an HTTP 404 from
//!   `gh api repos/OWNER/REPO/releases/tags/TAG` is believed.
//! - `gh release list --json` and a clean `gh api --paginate` are recent;
//!   `--paginate` with `--jq '.[] | ...'` prints one object per line in every
//!   version.
//! - `gh release download` writes the final name directly and has no retry:
//!   download into a temporary directory, verify, then rename.
//!
//! A late gh can never undo what a later run confirmed (issue 14: an
//! orphaned gh, left by a lifeboat killed mid-push, retried after the next
//! run had confirmed the release, and deleted it as "its draft"). Every
//! effect on the remote comes from a gh that lifeboat started and waits for
//! (`gh.rs`), and no gh outlives the lifeboat that started it: a stop signal
//! makes lifeboat kill gh's process group and wait for it before the run is
//! recorded and the run lock released; a lifeboat that dies without handling
//! a signal (SIGKILL, the OOM killer) takes gh with it through the kernel's
//! parent-death signal (Linux). A later run pushes only once it holds the
//! lock, which the kernel frees only as the earlier lifeboat exits, by when
//! that lifeboat's gh is dead or has a SIGKILL pending: there is no late gh
//! left to act on anything the later run converges and confirms.

mod check;
pub mod gh;

use super::{Checks, PushFailure, PushOutcome, Remote, RemoteSnapshot};
use crate::config::GithubConfig;
use crate::error::{Error, IoContext, Kind, Result};
use crate::tag::Tag;
use gh::{Class, Failure, Gh};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// GitHub refuses release assets of 2 GiB and more.
pub const MAX_ASSET_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// One object per release, per line: the fields lifeboat needs.
const RELEASE_JQ: &str = "{tag: .tag_name, id: .id, draft: .draft, \
                          assets: [.assets[] | {name: .name, size: .size, digest: .digest}]}";

pub struct GithubRemote {
    config: GithubConfig,
    gh: Gh,
}

/// A release as listed (drafts included).
#[derive(Debug, Clone, serde::Deserialize)]
struct Release {
    tag: String,
    id: u64,
    draft: bool,
    assets: Vec<Asset>,
}

#[derive(Debug, Clone, serde::Deserialize)]
struct Asset {
    name: String,
    size: u64,
    /// `sha256:<hex>`; null or absent on older releases.
    #[serde(default)]
    digest: Option<String>,
}

impl Asset {
    fn sha256(&self) -> Option<String> {
        self.digest
            .as_deref()
            .and_then(|d| d.strip_prefix("sha256:"))
            .map(str::to_ascii_lowercase)
    }
}

/// What the local archive is, for comparing with the remote asset.
///
/// gh runs in the archive's directory and is given the bare file name: gh
/// reads `FILE#label`, so a `#` anywhere in the path would otherwise be
/// taken for a label.
struct Local<'a> {
    tag: &'a Tag,
    dir: &'a Path,
    name: String,
    size: u64,
    sha256: String,
}

impl GithubRemote {
    pub fn new(config: GithubConfig) -> GithubRemote {
        let gh = Gh::new(config.gh.clone(), config.timeout);
        GithubRemote { config, gh }
    }

    fn repo(&self) -> &str {
        &self.config.repo
    }

    fn fail(&self, what: &str, failure: &Failure) -> Error {
        failure.to_error(&self.gh, what, self.repo())
    }

    /// Run `f` until it succeeds, fails permanently, or `attempts` are used
    /// up; the wait doubles from `backoff`. Returns the attempts used, on
    /// failure too.
    fn retrying<T>(
        &self,
        what: &str,
        mut f: impl FnMut() -> Result<T>,
    ) -> std::result::Result<(T, u32), (Error, u32)> {
        let attempts = self.config.attempts.max(1);
        let mut delay = self.config.backoff;
        let mut attempt = 1;
        loop {
            match f() {
                Ok(v) => return Ok((v, attempt)),
                Err(e) if e.kind == Kind::RemoteTransient && attempt < attempts => {
                    tracing::warn!(attempt, error = %e.message, retry_in = ?delay, "{what} failed; retrying");
                    self.back_off(delay);
                    delay = delay.saturating_mul(2).min(Duration::from_secs(300));
                    attempt += 1;
                }
                Err(e) if e.kind == Kind::RemoteTransient => {
                    let e = e.context(format!("{what}: gave up after {attempt} attempt(s)"));
                    return Err((e, attempt));
                }
                Err(e) => return Err((e.context(what), attempt)),
            }
        }
    }

    /// Wait `delay` before a retry, or less if lifeboat is asked to stop (the
    /// wait can be minutes; the next attempt then fails as interrupted
    /// without starting gh).
    fn back_off(&self, delay: Duration) {
        let until = Instant::now() + delay;
        while self.gh.interrupted().is_none() {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    /// Every release of the repository, drafts included.
    fn releases(&self) -> Result<Vec<Release>> {
        let path = format!("repos/{}/releases?per_page=100", self.repo());
        let jq = format!(".[] | {RELEASE_JQ}");
        let out = self
            .gh
            .run(&["api", "--paginate", &path, "--jq", &jq])
            .map_err(|f| self.fail("list releases", &f))?;
        out.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|line| {
                serde_json::from_str(line).map_err(|e| {
                    Error::new(
                        Kind::RemoteTransient,
                        format!("gh printed an unexpected release listing line ({e}): {line}"),
                    )
                })
            })
            .collect()
    }

    /// The published release of `tag` through the REST lookup, or `None`
    /// when the API says 404 (the only "not found" lifeboat believes).
    fn release_by_tag(&self, tag: &Tag) -> Result<Option<Release>> {
        let path = format!("repos/{}/releases/tags/{tag}", self.repo());
        match self.gh.run(&["api", &path, "--jq", RELEASE_JQ]) {
            Ok(out) => serde_json::from_str(out.stdout.trim())
                .map(Some)
                .map_err(|e| {
                    Error::new(
                        Kind::RemoteTransient,
                        format!(
                            "gh printed an unexpected release ({e}): {}",
                            out.stdout.trim()
                        ),
                    )
                }),
            Err(f) if f.class() == Class::NotFound404 => Ok(None),
            Err(f) => Err(self.fail(&format!("look up release {tag}"), &f)),
        }
    }

    fn push_once(&self, local: &Local, notes: &str) -> Result<()> {
        let tag = local.tag.to_string();
        let mine: Vec<Release> = self
            .releases()?
            .into_iter()
            .filter(|r| r.tag == tag)
            .collect();
        if mine.is_empty() {
            let title = format!("--title={tag}");
            let notes = format!("--notes={notes}");
            let created = self.gh.run_in(
                Some(local.dir),
                &[
                    "release",
                    "create",
                    &tag,
                    &local.name,
                    "-R",
                    self.repo(),
                    &title,
                    &notes,
                ],
            );
            match created {
                Ok(_) => {}
                Err(f) if f.class() == Class::AlreadyExists => {
                    tracing::info!(%tag, "release appeared meanwhile; converging");
                    let mine: Vec<Release> = self
                        .releases()?
                        .into_iter()
                        .filter(|r| r.tag == tag)
                        .collect();
                    self.converge(local, mine)?;
                }
                Err(f) => return Err(self.fail(&format!("create release {tag}"), &f)),
            }
        } else {
            self.converge(local, mine)?;
        }
        self.confirm(local)
    }

    /// An earlier attempt left a release or draft(s) for this tag: keep one
    /// (the published one, else the newest draft), delete the other drafts,
    /// replace its asset and publish it.
    fn converge(&self, local: &Local, mut mine: Vec<Release>) -> Result<()> {
        let tag = local.tag.to_string();
        mine.sort_by_key(|r| (!r.draft, r.id));
        let Some(keep) = mine.pop() else {
            return Err(Error::new(
                Kind::RemoteTransient,
                format!("gh said release {tag} exists, but it is not in the listing yet"),
            ));
        };
        tracing::info!(%tag, id = keep.id, draft = keep.draft, duplicates = mine.len(), "converging existing release");
        // Duplicates first: with one release per tag left, gh's lookup by
        // tag cannot pick the wrong one.
        for dup in mine.iter().filter(|r| r.draft) {
            let path = format!("repos/{}/releases/{}", self.repo(), dup.id);
            match self.gh.run(&["api", "-X", "DELETE", &path, "--silent"]) {
                Ok(_) => tracing::info!(%tag, id = dup.id, "deleted duplicate draft"),
                Err(f) if f.class() == Class::NotFound404 => {}
                Err(f) => return Err(self.fail(&format!("delete duplicate draft of {tag}"), &f)),
            }
        }
        // The same rule as `confirm`: name and size, and the digest when the
        // API gives one. Re-uploading an asset that is already there is not
        // harmless: `upload --clobber` deletes it before uploading, so a
        // failed upload would leave a published release with no archive.
        let complete = keep.assets.iter().any(|a| {
            a.name == local.name
                && a.size == local.size
                && a.sha256().is_none_or(|remote| remote == local.sha256)
        });
        if !complete {
            let upload = self.gh.run_with_deadline(
                Some(local.dir),
                &[
                    "release",
                    "upload",
                    &tag,
                    &local.name,
                    "--clobber",
                    "-R",
                    self.repo(),
                ],
                self.gh.transfer_timeout(local.size),
            );
            if let Err(f) = upload {
                return Err(self.fail(&format!("upload {} into release {tag}", local.name), &f));
            }
        }
        if keep.draft {
            self.gh
                .run(&["release", "edit", &tag, "--draft=false", "-R", self.repo()])
                .map_err(|f| self.fail(&format!("publish draft release {tag}"), &f))?;
        }
        Ok(())
    }

    /// The release is published and holds the archive with the right size
    /// (and digest, when the API reports one).
    fn confirm(&self, local: &Local) -> Result<()> {
        let tag = local.tag;
        let unconfirmed = |why: String| {
            Error::new(
                Kind::RemoteTransient,
                format!("release {tag} could not be confirmed: {why}"),
            )
        };
        let Some(release) = self.release_by_tag(tag)? else {
            return Err(unconfirmed("the API does not find it (404)".into()));
        };
        let Some(asset) = release.assets.iter().find(|a| a.name == local.name) else {
            return Err(unconfirmed(format!("it has no asset {}", local.name)));
        };
        if asset.size != local.size {
            return Err(unconfirmed(format!(
                "asset {} is {} bytes, the archive {}",
                asset.name, asset.size, local.size
            )));
        }
        if let Some(remote) = asset.sha256()
            && remote != local.sha256
        {
            return Err(unconfirmed(format!(
                "asset {} has sha256 {remote}, the archive {}",
                asset.name, local.sha256
            )));
        }
        Ok(())
    }

    fn download_once(&self, snap: &RemoteSnapshot, dest_dir: &Path) -> Result<PathBuf> {
        let tag = snap.tag.to_string();
        // A hidden temporary directory beside the destination: gh writes
        // the final name and leaves partial files, so it writes there and
        // only a verified file is renamed out (same filesystem).
        let tmp = tempfile::Builder::new()
            .prefix(".lifeboat-download-")
            .tempdir_in(dest_dir)
            .ctx(format!(
                "cannot create a temporary directory in {}",
                dest_dir.display()
            ))?;
        let got = self.gh.run_with_deadline(
            None,
            &[
                "release".as_ref(),
                "download".as_ref(),
                tag.as_ref(),
                "-R".as_ref(),
                self.repo().as_ref(),
                "-p".as_ref(),
                snap.asset_name.as_ref(),
                "-D".as_ref(),
                tmp.path().as_os_str(),
            ],
            self.gh.transfer_timeout(snap.size),
        );
        match got {
            Ok(_) => {}
            Err(f) if f.class() == Class::ReleaseNotFound => {
                if self.release_by_tag(&snap.tag)?.is_none() {
                    return Err(gone(&snap.tag, self.repo()));
                }
                return Err(Error::new(
                    Kind::RemoteTransient,
                    format!("gh said `release not found` for {tag}, but the API still has it"),
                ));
            }
            Err(f) => return Err(self.fail(&format!("download {}", snap.asset_name), &f)),
        }
        let file = tmp.path().join(&snap.asset_name);
        let size = std::fs::metadata(&file)
            .ctx(format!(
                "gh reported success but {} is missing",
                file.display()
            ))?
            .len();
        if size != snap.size {
            return Err(Error::new(
                Kind::RemoteTransient,
                format!(
                    "download of {} is truncated: {size} of {} bytes",
                    snap.asset_name, snap.size
                ),
            ));
        }
        if let Some(want) = &snap.sha256 {
            let got = crate::hash::sha256_file(&file)?;
            if &got != want {
                return Err(Error::new(
                    Kind::RemoteTransient,
                    format!(
                        "download of {} has sha256 {got}, expected {want}",
                        snap.asset_name
                    ),
                ));
            }
        }
        std::fs::File::open(&file)
            .and_then(|f| f.sync_all())
            .ctx(format!("cannot sync {}", file.display()))?;
        let target = dest_dir.join(&snap.asset_name);
        crate::fsutil::commit(&file, &target)?;
        Ok(target)
    }

    fn delete_once(&self, tag: &Tag) -> Result<()> {
        let name = tag.to_string();
        match self.gh.run(&[
            "release",
            "delete",
            &name,
            "--yes",
            "--cleanup-tag",
            "-R",
            self.repo(),
        ]) {
            Ok(_) => Ok(()),
            Err(f) if f.class() == Class::ReleaseNotFound => match self.release_by_tag(tag)? {
                None => {
                    tracing::info!(%tag, "release already gone");
                    Ok(())
                }
                Some(_) => Err(Error::new(
                    Kind::RemoteTransient,
                    format!("gh said `release not found` for {tag}, but the API still has it"),
                )),
            },
            Err(f) => Err(self.fail(&format!("delete release {tag}"), &f)),
        }
    }
}

fn gone(tag: &Tag, repo: &str) -> Error {
    Error::new(
        Kind::RemotePermanent,
        format!("snapshot {tag} is not on github:{repo}"),
    )
    .with_hint("`lifeboat list` shows the snapshots on the remote")
}

/// The lifeboat snapshots in a release listing: foreign tags and releases
/// without their archive are skipped; a published release wins over drafts
/// of the same tag. Oldest first.
fn snapshots(releases: Vec<Release>) -> Vec<RemoteSnapshot> {
    let mut out: Vec<RemoteSnapshot> = Vec::new();
    for r in releases {
        let Some(tag) = Tag::parse(&r.tag) else {
            tracing::debug!(tag = %r.tag, "ignoring a release that is not a lifeboat snapshot");
            continue;
        };
        let Some(asset) = r
            .assets
            .iter()
            .find(|a| Tag::from_archive_name(&a.name).map(|(t, _)| t) == Some(tag))
        else {
            tracing::debug!(%tag, "release has no archive asset (unfinished push)");
            continue;
        };
        let snap = RemoteSnapshot {
            tag,
            asset_name: asset.name.clone(),
            size: asset.size,
            sha256: asset.sha256(),
            draft: r.draft,
        };
        match out.iter_mut().find(|s| s.tag == tag) {
            Some(existing) if existing.draft && !snap.draft => *existing = snap,
            Some(_) => {}
            None => out.push(snap),
        }
    }
    out.sort_by_key(|s| s.tag);
    out
}

impl Remote for GithubRemote {
    fn check(&self, fix: bool) -> Checks {
        let mut report = Checks::default();
        check::check(&self.config, fix, &mut report);
        report
    }

    fn name(&self) -> &'static str {
        "github"
    }

    fn describe(&self) -> String {
        format!("github:{}", self.config.repo)
    }

    fn push(&self, tag: &Tag, archive: &Path, notes: &str) -> Result<PushOutcome, PushFailure> {
        let size = std::fs::metadata(archive)
            .ctx(format!("cannot read {}", archive.display()))?
            .len();
        if size >= MAX_ASSET_BYTES {
            // This archive only: later, smaller ones still go.
            return Err(PushFailure::archive_refused(
                Error::new(
                    Kind::RemotePermanent,
                    format!(
                        "cannot push {tag}: the archive is {size} bytes and GitHub release assets must be under 2 GiB"
                    ),
                )
                .with_hint(format!(
                    "it stays on this machine (local retention keeps it while it is on no remote) \
                     and later snapshots are pushed past it; copy {} somewhere safe (a [remote.dir] \
                     drive), then delete it to drop it; see the runbook, \"A snapshot is too large \
                     for the remote\"",
                    archive.display()
                )),
            ));
        }
        let name = archive
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The listing recognises a snapshot by its asset name: an archive
        // named otherwise would be pushed but never found again.
        if Tag::from_archive_name(&name).map(|(t, _)| t) != Some(*tag) {
            return Err(Error::usage(format!(
                "cannot push {}: its name is not `{tag}.tar.gz` or `{tag}.tar.zst`",
                archive.display()
            ))
            .into());
        }
        let local = Local {
            tag,
            dir: archive
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
            name,
            size,
            sha256: crate::hash::sha256_file(archive)?,
        };
        let what = format!("push {tag} to {}", self.describe());
        let ((), attempts) = self
            .retrying(&what, || self.push_once(&local, notes))
            .map_err(|(error, attempts)| PushFailure::new(error, attempts))?;
        Ok(PushOutcome { attempts })
    }

    fn list(&self) -> Result<Vec<RemoteSnapshot>> {
        let what = format!("list {}", self.describe());
        let (releases, _) = self
            .retrying(&what, || self.releases())
            .map_err(|(e, _)| e)?;
        Ok(snapshots(releases))
    }

    fn download(&self, tag: &Tag, dest_dir: &Path) -> Result<PathBuf> {
        let what = format!("download {tag} from {}", self.describe());
        let snaps = self.list()?;
        let Some(snap) = snaps.iter().find(|s| s.tag == *tag) else {
            return Err(gone(tag, self.repo()));
        };
        if snap.draft {
            return Err(Error::new(
                Kind::RemotePermanent,
                format!(
                    "snapshot {tag} on {} is an unfinished push (a draft release)",
                    self.describe()
                ),
            )
            .with_hint("the next `lifeboat snapshot` finishes it; or restore another snapshot"));
        }
        let (path, _) = self
            .retrying(&what, || self.download_once(snap, dest_dir))
            .map_err(|(e, _)| e)?;
        Ok(path)
    }

    fn delete(&self, tag: &Tag) -> Result<()> {
        // Only lifeboat tags reach gh here: the argument is a parsed `Tag`,
        // and `list` drops every release whose name does not parse as one.
        let what = format!("delete {tag} from {}", self.describe());
        self.retrying(&what, || self.delete_once(tag))
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(tag: &str, id: u64, draft: bool, assets: &[(&str, u64, Option<&str>)]) -> Release {
        Release {
            tag: tag.into(),
            id,
            draft,
            assets: assets
                .iter()
                .map(|(n, s, d)| Asset {
                    name: n.to_string(),
                    size: *s,
                    digest: d.map(str::to_string),
                })
                .collect(),
        }
    }

    #[test]
    fn listing_keeps_lifeboat_snapshots_only() {
        let t1 = "snap-20260101T000000Z";
        let t2 = "snap-20260102T000000Z-manual";
        let list = snapshots(vec![
            rel("v1.0", 1, false, &[("v1.0.tar.gz", 5, None)]),
            rel(t2, 2, true, &[(&format!("{t2}.tar.zst"), 7, None)]),
            rel(
                t1,
                3,
                false,
                &[(&format!("{t1}.tar.gz"), 9, Some("sha256:ABCD"))],
            ),
            rel(t2, 4, false, &[(&format!("{t2}.tar.zst"), 8, None)]),
            rel("snap-20260103T000000Z", 5, true, &[]),
            rel("snap-20260104T000000Z", 6, false, &[("notes.txt", 1, None)]),
        ]);
        assert_eq!(list.len(), 2, "{list:?}");
        assert_eq!(list[0].tag.to_string(), t1);
        assert_eq!(list[0].sha256.as_deref(), Some("abcd"));
        assert_eq!(list[1].tag.to_string(), t2);
        assert!(!list[1].draft, "the published release wins over the draft");
        assert_eq!(list[1].size, 8);
    }

    #[test]
    fn parses_jq_lines_with_null_or_missing_digest() {
        let r: Release = serde_json::from_str(
            r#"{"assets":[{"digest":null,"name":"a","size":6},{"name":"b","size":1}],"draft":false,"id":12,"tag":"snap-6"}"#,
        )
        .unwrap();
        assert!(r.assets.iter().all(|a| a.sha256().is_none()));
    }
}
