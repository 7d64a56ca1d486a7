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
    /// The assets it is pushed as: the archive itself, or its parts.
    pieces: Vec<Piece>,
}

/// One asset of a snapshot: the whole archive, or one of its consecutive
/// parts (`<archive>.part-001-of-003`, ...): a plain byte split, so the
/// parts put together with `cat` are the archive.
#[derive(Debug, Clone)]
struct Piece {
    name: String,
    offset: u64,
    size: u64,
    sha256: String,
}

impl Local<'_> {
    fn is_split(&self) -> bool {
        self.pieces.len() > 1 || self.pieces.first().is_some_and(|p| p.name != self.name)
    }
}

/// Most parts an archive is split into (three digits in their names).
const MAX_PARTS: u64 = 999;

fn part_name(archive: &str, i: usize, n: usize) -> String {
    format!("{archive}.part-{i:03}-of-{n:03}")
}

/// `(archive, i, n)` of a part's asset name.
fn parse_part(name: &str) -> Option<(&str, usize, usize)> {
    let (archive, rest) = name.rsplit_once(".part-")?;
    let (i, n) = rest.split_once("-of-")?;
    let digits = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(i) || !digits(n) {
        return None;
    }
    let (i, n) = (i.parse().ok()?, n.parse().ok()?);
    (1..=n).contains(&i).then_some((archive, i, n))
}

/// sha256 of `len` bytes of `path` from `offset`, written to `out` too.
fn copy_range(
    path: &Path,
    offset: u64,
    len: u64,
    out: &mut (dyn std::io::Write + Send),
) -> Result<String> {
    use std::io::{Read, Seek};
    let mut file = std::fs::File::open(path).ctx(format!("cannot open {}", path.display()))?;
    file.seek(std::io::SeekFrom::Start(offset))
        .ctx(format!("cannot read {}", path.display()))?;
    let mut part = file.take(len);
    match crate::hash::copy_hashed(&mut part, out) {
        Ok((n, digest)) if n == len => Ok(crate::hash::hex(&digest)),
        Ok((n, _)) => Err(Error::new(
            Kind::Io,
            format!(
                "{} ended after {n} of {len} bytes of a part",
                path.display()
            ),
        )),
        Err(crate::hash::Failed::Read(e)) => {
            Err(Error::io(format!("cannot read {}", path.display()), e))
        }
        Err(crate::hash::Failed::Write(e)) => Err(Error::io("cannot write a part", e)),
    }
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

    /// [`super::retrying`] with this remote's attempts and backoff, cut
    /// short by a stop.
    fn retrying<T>(
        &self,
        what: &str,
        f: impl FnMut() -> Result<T>,
    ) -> std::result::Result<(T, u32), (Error, u32)> {
        super::retrying(
            what,
            self.config.attempts,
            self.config.backoff,
            || self.gh.interrupted().is_some(),
            f,
        )
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

    /// Where the asset `piece` is as a file, for gh (which takes a file
    /// name): the archive itself, or the part written into a private
    /// temporary directory beside it (removed when the guard is dropped).
    fn materialize(
        &self,
        local: &Local,
        piece: &Piece,
    ) -> Result<(Option<tempfile::TempDir>, PathBuf, String)> {
        if !local.is_split() {
            return Ok((None, local.dir.to_path_buf(), local.name.clone()));
        }
        let tmp = tempfile::Builder::new()
            .prefix(".lifeboat-parts-")
            .tempdir_in(local.dir)
            .ctx(format!(
                "cannot create a temporary directory in {}",
                local.dir.display()
            ))?;
        let path = tmp.path().join(&piece.name);
        let mut out =
            std::fs::File::create(&path).ctx(format!("cannot create {}", path.display()))?;
        let sha = copy_range(
            &local.dir.join(&local.name),
            piece.offset,
            piece.size,
            &mut out,
        )?;
        if sha != piece.sha256 {
            return Err(Error::new(
                Kind::Io,
                format!("{} changed while it was being pushed", local.name),
            ));
        }
        let dir = tmp.path().to_path_buf();
        Ok((Some(tmp), dir, piece.name.clone()))
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
            let (_guard, dir, first) = self.materialize(local, &local.pieces[0])?;
            let created = self.gh.run_in(
                Some(&dir),
                &[
                    "release",
                    "create",
                    &tag,
                    &first,
                    "-R",
                    self.repo(),
                    &title,
                    &notes,
                ],
            );
            match created {
                // The other parts go up as in a convergence.
                Ok(_) if local.pieces.len() > 1 => {
                    let mine: Vec<Release> = self
                        .releases()?
                        .into_iter()
                        .filter(|r| r.tag == tag)
                        .collect();
                    self.converge(local, mine)?;
                }
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
        for piece in &local.pieces {
            let complete = keep.assets.iter().any(|a| {
                a.name == piece.name
                    && a.size == piece.size
                    && a.sha256().is_none_or(|remote| remote == piece.sha256)
            });
            if complete {
                continue;
            }
            let (_guard, dir, name) = self.materialize(local, piece)?;
            let upload = self.gh.run_with_deadline(
                Some(&dir),
                &[
                    "release",
                    "upload",
                    &tag,
                    &name,
                    "--clobber",
                    "-R",
                    self.repo(),
                ],
                self.gh.transfer_timeout(piece.size),
            );
            if let Err(f) = upload {
                return Err(self.fail(&format!("upload {name} into release {tag}"), &f));
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
        for piece in &local.pieces {
            let Some(asset) = release.assets.iter().find(|a| a.name == piece.name) else {
                return Err(unconfirmed(format!("it has no asset {}", piece.name)));
            };
            if asset.size != piece.size {
                return Err(unconfirmed(format!(
                    "asset {} is {} bytes, the archive's {}",
                    asset.name, asset.size, piece.size
                )));
            }
            if let Some(remote) = asset.sha256()
                && remote != piece.sha256
            {
                return Err(unconfirmed(format!(
                    "asset {} has sha256 {remote}, the archive's {}",
                    asset.name, piece.sha256
                )));
            }
        }
        Ok(())
    }

    /// A snapshot kept as parts: each part downloaded and verified like a
    /// whole archive, then a parts list beside them that the archive reader
    /// reads as one stream ([`crate::snapshot::archive::open_raw`]): the
    /// archive is never joined on disk. The list is written last, so a
    /// partial download never looks like a finished one.
    fn download_parts(&self, snap: &RemoteSnapshot, dest_dir: &Path) -> Result<PathBuf> {
        let mut names = Vec::new();
        for part in &snap.parts {
            let one = RemoteSnapshot {
                tag: snap.tag,
                asset_name: part.name.clone(),
                size: part.size,
                sha256: part.sha256.clone(),
                draft: snap.draft,
                parts: vec![],
            };
            self.download_once(&one, dest_dir)?;
            names.push(part.name.clone());
        }
        let list = dest_dir.join(format!(
            "{}{}",
            snap.asset_name,
            crate::snapshot::archive::PARTS_SUFFIX
        ));
        crate::fsutil::write_json_atomic(&list, &serde_json::json!({ "parts": names }))?;
        Ok(list)
    }

    fn download_once(&self, snap: &RemoteSnapshot, dest_dir: &Path) -> Result<PathBuf> {
        if !snap.parts.is_empty() {
            return self.download_parts(snap, dest_dir);
        }
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

/// The archive of `tag` kept as parts in release `r`, when every part of
/// one set is there (an unfinished push has some only: not a snapshot).
fn parts_of(r: &Release, tag: &Tag) -> Option<RemoteSnapshot> {
    let mut found: Vec<(&str, usize, usize, &Asset)> = r
        .assets
        .iter()
        .filter_map(|a| {
            let (archive, i, n) = parse_part(&a.name)?;
            (Tag::from_archive_name(archive).map(|(t, _)| t) == Some(*tag))
                .then_some((archive, i, n, a))
        })
        .collect();
    let (archive, _, n, _) = *found.first()?;
    found.retain(|(a, _, m, _)| *a == archive && *m == n);
    found.sort_by_key(|(_, i, _, _)| *i);
    found.dedup_by_key(|(_, i, _, _)| *i);
    if found.len() != n {
        return None;
    }
    Some(RemoteSnapshot {
        tag: *tag,
        asset_name: archive.to_string(),
        size: found.iter().map(|(_, _, _, a)| a.size).sum(),
        sha256: None,
        draft: r.draft,
        parts: found
            .iter()
            .map(|(_, _, _, a)| super::RemotePart {
                name: a.name.clone(),
                size: a.size,
                sha256: a.sha256(),
            })
            .collect(),
    })
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
        let whole = r
            .assets
            .iter()
            .find(|a| Tag::from_archive_name(&a.name).map(|(t, _)| t) == Some(tag));
        let snap = match whole {
            Some(asset) => RemoteSnapshot {
                tag,
                asset_name: asset.name.clone(),
                size: asset.size,
                sha256: asset.sha256(),
                draft: r.draft,
                parts: vec![],
            },
            None => match parts_of(&r, &tag) {
                Some(snap) => snap,
                None => {
                    tracing::debug!(%tag, "release has no archive asset (unfinished push)");
                    continue;
                }
            },
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
        let part_size = self.config.part_size.clamp(1, MAX_ASSET_BYTES - 1);
        let parts = size.div_ceil(part_size).max(1);
        if parts > MAX_PARTS {
            // This archive only: later, smaller ones still go.
            return Err(PushFailure::archive_refused(
                Error::new(
                    Kind::RemotePermanent,
                    format!(
                        "cannot push {tag}: the archive is {size} bytes, more than {MAX_PARTS} \
                         parts of {part_size} bytes"
                    ),
                )
                .with_hint(format!(
                    "raise [github] part_size (under 2 GiB); meanwhile it stays on this machine \
                     (local retention keeps it while it is on no remote) and later snapshots are \
                     pushed past it; see the runbook, \"A snapshot is too large for the remote\" \
                     ({})",
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
        let pieces = if parts == 1 {
            vec![Piece {
                name: name.clone(),
                offset: 0,
                size,
                sha256: crate::hash::sha256_file(archive)?,
            }]
        } else {
            (0..parts)
                .map(|i| {
                    let offset = i * part_size;
                    let len = part_size.min(size - offset);
                    Ok(Piece {
                        name: part_name(&name, i as usize + 1, parts as usize),
                        offset,
                        size: len,
                        sha256: copy_range(archive, offset, len, &mut std::io::sink())?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        };
        let local = Local {
            tag,
            dir: archive
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new(".")),
            name,
            pieces,
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

    #[test]
    fn part_names_round_trip_and_only_whole_sets_are_snapshots() {
        let archive = "snap-shop-20261122T014500Z.tar.gz";
        assert_eq!(
            part_name(archive, 2, 3),
            format!("{archive}.part-002-of-003")
        );
        assert_eq!(parse_part(&part_name(archive, 2, 3)), Some((archive, 2, 3)));
        for bad in [
            "x.part-1-of-3",
            "x.part-004-of-003",
            "x.part-000-of-003",
            "x.tar.gz",
        ] {
            assert_eq!(parse_part(bad), None, "{bad}");
        }
        let tag = Tag::parse("snap-shop-20261122T014500Z").unwrap();
        let p = |i| (part_name(archive, i, 3), 10 + i as u64, None);
        let names: Vec<(String, u64, Option<&str>)> = vec![p(1), p(2), p(3)];
        let assets: Vec<(&str, u64, Option<&str>)> =
            names.iter().map(|(n, s, d)| (n.as_str(), *s, *d)).collect();
        let whole = snapshots(vec![rel(&tag.to_string(), 1, false, &assets)]);
        assert_eq!(whole.len(), 1);
        assert_eq!(whole[0].asset_name, archive);
        assert_eq!(whole[0].size, 11 + 12 + 13);
        assert_eq!(whole[0].parts.len(), 3);
        // An unfinished push (a part missing) is not a snapshot.
        let missing = snapshots(vec![rel(&tag.to_string(), 1, false, &assets[..2])]);
        assert!(missing.is_empty());
    }

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
