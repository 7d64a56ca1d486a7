//! Any rclone backend as a remote (S3, B2, GCS, Azure, SFTP, WebDAV, a
//! local path, ...), driven through the `rclone` CLI. lifeboat never sees a
//! credential: rclone finds them in its own configuration (`rclone config`;
//! `[remote.rclone] config` names another file).
//!
//! Layout: the directory `[remote.rclone] remote` holds the marker
//! `.lifeboat-remote` (the directory remote's format: a version and a
//! random id) and one object per snapshot, `<tag>.tar.gz|zst`. Only names
//! that parse as lifeboat archives are ever listed or deleted; nothing is
//! read from or written to a directory without the marker, which only
//! `lifeboat doctor --fix` writes (a mistyped path, or a bucket shared with
//! other data, is never mistaken for the remote).
//!
//! Push: the archive is uploaded as `.<name>.partial`, moved to `<name>`
//! (`rclone moveto`), and confirmed by size and hash before the push
//! counts. Why not upload to the final name: whether a failed upload can
//! leave a partial object there depends on the backend and on the rclone
//! version. Object stores (S3, B2, GCS, Azure) publish an object only
//! when its upload completes, but rclone before 1.63 wrote local, SFTP,
//! FTP and SMB files in place (1.63 added `.partial` names of its own, and
//! `--inplace` turns them off again), and a WebDAV server decides for
//! itself what an interrupted PUT leaves. A partial upload under the final
//! name would list as a snapshot. Under a hidden name that no listing
//! takes for a snapshot, any backend is safe: the move is a rename where
//! the backend can (local, SFTP, WebDAV's MOVE) and a server-side copy
//! and delete on object stores, whose copy creates the object whole.
//! (A backend with neither makes rclone download and upload it again: slow,
//! but still whole.) A push after a killed one uploads under the same
//! temporary name again (it converges), and `.partial` names older than a
//! day, left by snapshots never pushed again, are removed.
//!
//! Confirmation: the object's size, and its hash as the backend reports it
//! (`rclone lsjson --hash`): sha256 when the backend has it, compared with
//! lifeboat's own sha256 of the archive; else another hash both sides know
//! (md5, sha1, ...: the local side computed by `rclone hashsum`); a backend
//! without hashes (WebDAV servers, some FTP) is confirmed by size only, and
//! `doctor` warns about it. Every download is verified anyway, as the
//! archive's own checksums are.
//!
//! The process handling, timeouts and failure classification are in
//! `cli.rs`.

mod cli;

use super::marker::{self, Marker};
use super::{Checks, PushFailure, PushOutcome, Remote, RemoteSnapshot};
use crate::config::RcloneConfig;
use crate::error::{Error, IoContext, Kind, Result};
use crate::hash;
use crate::tag::{Format, Tag};
use cli::{Class, Failure, Rclone};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The marker's name, as for the directory remote.
pub const MARKER: &str = marker::NAME;
/// The suffix of an upload in progress.
const PARTIAL: &str = ".partial";
/// A `.partial` object older than this is a leftover, not an upload in
/// progress elsewhere.
const LEFTOVER_AGE: chrono::TimeDelta = chrono::TimeDelta::days(1);

/// One object of `rclone lsjson`.
#[derive(Debug, Clone, serde::Deserialize)]
struct Entry {
    #[serde(rename = "Name")]
    name: String,
    /// -1 when the backend does not know it.
    #[serde(rename = "Size")]
    size: i64,
    #[serde(rename = "ModTime", default)]
    mod_time: String,
    #[serde(rename = "IsDir", default)]
    is_dir: bool,
    #[serde(rename = "Hashes", default)]
    hashes: BTreeMap<String, String>,
}

/// How a push is confirmed, from the backend's hash types.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Confirm {
    /// Size and this hash (rclone's name for it: `sha256`, `md5`, ...).
    Hash(String),
    /// The backend has no hash: size only.
    SizeOnly,
}

pub struct RcloneRemote {
    config: RcloneConfig,
    rclone: Rclone,
    /// The backend's confirmation, once learned (one `backend features`
    /// call per process).
    confirm: Mutex<Option<Confirm>>,
}

/// The archive being pushed.
struct Local<'a> {
    tag: &'a Tag,
    path: &'a Path,
    name: String,
    size: u64,
    /// Digests computed so far, by hash type.
    digests: Mutex<BTreeMap<String, String>>,
}

impl RcloneRemote {
    pub fn new(config: RcloneConfig) -> RcloneRemote {
        let rclone = Rclone::new(config.rclone.clone(), config.config.clone(), config.timeout);
        RcloneRemote {
            config,
            rclone,
            confirm: Mutex::new(None),
        }
    }

    fn remote(&self) -> &str {
        &self.config.remote
    }

    /// `name` inside the remote directory, as rclone spells it.
    fn path(&self, name: &str) -> String {
        join(self.remote(), name)
    }

    fn fail(&self, what: &str, failure: &Failure) -> Error {
        failure.to_error(&self.rclone, what, self.remote())
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
            || self.rclone.interrupted().is_some(),
            f,
        )
    }

    /// The objects in the remote directory (files only, not recursive).
    fn entries(&self) -> Result<Vec<Entry>> {
        let out = self
            .rclone
            .run(&["lsjson", "--files-only", "--no-mimetype", self.remote()])
            .map_err(|f| match f.class() {
                Class::DirNotFound => self.missing(),
                _ => self.fail(&format!("list {}", self.remote()), &f),
            })?;
        parse_entries(&out.stdout)
    }

    /// The remote directory does not exist.
    fn missing(&self) -> Error {
        Error::new(
            Kind::RemotePermanent,
            format!("the rclone remote {} does not exist", self.remote()),
        )
        .with_hint(format!(
            "if this is a new remote, `lifeboat doctor --fix` creates and marks it; \
             else fix [remote.rclone] remote (`rclone lsd \"{}\"` shows what is there)",
            parent_of(self.remote())
        ))
    }

    /// The remote directory has no marker.
    fn unmarked(&self) -> Error {
        Error::new(
            Kind::RemotePermanent,
            format!(
                "the rclone remote {} is not marked as a lifeboat remote (no {MARKER})",
                self.remote()
            ),
        )
        .with_hint(format!(
            "check [remote.rclone] remote; if {} is the place meant for this machine's snapshots, \
             mark it with `lifeboat doctor --fix`",
            self.remote()
        ))
    }

    /// The listing, once it is known to be a lifeboat remote's.
    fn identified(&self) -> Result<Vec<Entry>> {
        let entries = self.entries()?;
        if !entries.iter().any(|e| e.name == MARKER) {
            return Err(self.unmarked());
        }
        Ok(entries)
    }

    /// The marker, read and checked: `None` when there is none.
    fn read_marker(&self) -> Result<Option<Marker>> {
        let count = marker::MAX_BYTES.to_string();
        let out = match self
            .rclone
            .run(&["cat", "--count", &count, &self.path(MARKER)])
        {
            Ok(out) => out,
            Err(f) if matches!(f.class(), Class::DirNotFound | Class::FileNotFound) => {
                return Ok(None);
            }
            Err(f) => return Err(self.fail(&format!("read {}", self.path(MARKER)), &f)),
        };
        let shown = self.path(MARKER);
        let fix = format!(
            "if this is your lifeboat remote, delete it (`rclone deletefile \"{shown}\"`) and run \
             `lifeboat doctor --fix` to mark it again"
        );
        Marker::parse(&out.stdout, &shown, &fix).map(Some)
    }

    /// Write a new marker (the directory has none) and return its id.
    fn mark(&self) -> Result<String> {
        let marker = Marker::new()?;
        let id = marker.id.clone();
        let bytes = marker.to_bytes();
        let tmp = tempfile::Builder::new()
            .prefix(".lifeboat-marker-")
            .tempfile()
            .ctx("cannot create a temporary file")?;
        std::fs::write(tmp.path(), &bytes).ctx(format!("cannot write {}", tmp.path().display()))?;
        self.rclone
            .run(&[
                "copyto".as_ref(),
                tmp.path().as_os_str(),
                self.path(MARKER).as_ref(),
            ])
            .map_err(|f| self.fail(&format!("write {}", self.path(MARKER)), &f))?;
        Ok(id)
    }

    /// How pushes are confirmed: asks the backend for its hash types once.
    fn confirmation(&self) -> Result<Confirm> {
        if let Some(c) = self.confirm.lock().expect("not poisoned").clone() {
            return Ok(c);
        }
        let out = self
            .rclone
            .run(&["backend", "features", self.remote()])
            .map_err(|f| self.fail(&format!("read the features of {}", self.remote()), &f))?;
        #[derive(serde::Deserialize)]
        struct Features {
            #[serde(rename = "Hashes", default)]
            hashes: Vec<String>,
        }
        let features: Features = serde_json::from_slice(&out.stdout).map_err(|e| {
            Error::new(
                Kind::RemoteTransient,
                format!("rclone printed unexpected backend features ({e})"),
            )
        })?;
        let c = pick_hash(&features.hashes).map_or(Confirm::SizeOnly, Confirm::Hash);
        *self.confirm.lock().expect("not poisoned") = Some(c.clone());
        Ok(c)
    }

    /// The local archive's digest of `kind`: lifeboat's own sha256, else
    /// rclone's (`hashsum`, local backend). `None` when rclone cannot
    /// compute that kind locally.
    fn local_digest(&self, local: &Local, kind: &str) -> Result<Option<String>> {
        if let Some(d) = local.digests.lock().expect("not poisoned").get(kind) {
            return Ok(Some(d.clone()));
        }
        let digest = if kind == "sha256" {
            hash::sha256_file(local.path)?
        } else {
            let out = match self.rclone.run_with_deadline(
                &["hashsum".as_ref(), kind.as_ref(), local.path.as_os_str()],
                self.rclone.transfer_timeout(local.size),
            ) {
                Ok(out) => out,
                Err(Failure::Interrupted(stop)) => return Err(Error::from(stop)),
                Err(f) => {
                    tracing::warn!(kind, error = %f.detail(), "rclone cannot compute this hash locally; confirming by size only");
                    return Ok(None);
                }
            };
            let text = String::from_utf8_lossy(&out.stdout);
            match text.split_whitespace().next() {
                Some(d) if d.bytes().all(|b| b.is_ascii_hexdigit()) => d.to_ascii_lowercase(),
                _ => return Ok(None),
            }
        };
        local
            .digests
            .lock()
            .expect("not poisoned")
            .insert(kind.to_string(), digest.clone());
        Ok(Some(digest))
    }

    /// The object `local.name` is on the remote with the archive's size and
    /// hash (as far as the backend has one). A mismatch is transient: the
    /// next attempt uploads again.
    fn confirm(&self, local: &Local) -> Result<()> {
        let confirm = self.confirmation()?;
        let target = self.path(&local.name);
        let mut args = vec!["lsjson", "--files-only", "--no-mimetype", "--no-modtime"];
        if let Confirm::Hash(kind) = &confirm {
            args.extend(["--hash", "--hash-type", kind]);
        }
        args.push(&target);
        let unconfirmed = |why: String| {
            Error::new(
                Kind::RemoteTransient,
                format!("{target} could not be confirmed: {why}"),
            )
        };
        let out = match self.rclone.run(&args) {
            Ok(out) => out,
            Err(f) if matches!(f.class(), Class::DirNotFound | Class::FileNotFound) => {
                return Err(unconfirmed("it is not there".into()));
            }
            Err(f) => return Err(self.fail(&format!("confirm {target}"), &f)),
        };
        let entries = parse_entries(&out.stdout)?;
        let Some(entry) = entries.iter().find(|e| e.name == local.name) else {
            return Err(unconfirmed("it is not there".into()));
        };
        if entry.size != local.size as i64 {
            return Err(unconfirmed(format!(
                "it is {} bytes, the archive {}",
                entry.size, local.size
            )));
        }
        let Confirm::Hash(kind) = confirm else {
            tracing::info!(tag = %local.tag, "confirmed by size only: the backend has no hash");
            return Ok(());
        };
        let remote = entry
            .hashes
            .get(&kind)
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty());
        let Some(remote) = remote else {
            // S3 has no md5 for multipart uploads, for example.
            tracing::warn!(tag = %local.tag, kind, "the backend reports no hash for this object; confirmed by size only");
            return Ok(());
        };
        let Some(expect) = self.local_digest(local, &kind)? else {
            return Ok(());
        };
        if remote != expect {
            return Err(unconfirmed(format!(
                "its {kind} is {remote}, the archive's {expect}"
            )));
        }
        Ok(())
    }

    fn push_once(&self, local: &Local) -> Result<()> {
        let entries = self.identified()?;
        if self.read_marker()?.is_none() {
            return Err(self.unmarked());
        }
        self.remove_leftovers(&entries);
        let final_path = self.path(&local.name);
        // An earlier attempt may have moved it into place and failed only
        // to confirm it: then there is nothing to upload.
        let there = entries
            .iter()
            .any(|e| e.name == local.name && e.size == local.size as i64)
            && self.confirm(local).is_ok();
        if there {
            tracing::info!(tag = %local.tag, "already on the remote and confirmed");
        } else {
            let partial = self.path(&partial_name(&local.name));
            // `--ignore-times`: rclone skips a copy or a move whose target
            // has the same size and modification time; what an earlier
            // attempt left there is never trusted without confirmation.
            self.rclone
                .run_with_deadline(
                    &[
                        "copyto".as_ref(),
                        "--ignore-times".as_ref(),
                        local.path.as_os_str(),
                        partial.as_ref(),
                    ],
                    self.rclone.transfer_timeout(local.size),
                )
                .map_err(|f| self.fail(&format!("upload {}", local.name), &f))?;
            // A move without server-side support re-uploads: same deadline.
            self.rclone
                .run_with_deadline(
                    &[
                        "moveto",
                        "--ignore-times",
                        partial.as_str(),
                        final_path.as_str(),
                    ],
                    self.rclone.transfer_timeout(local.size),
                )
                .map_err(|f| self.fail(&format!("move {partial} to {}", local.name), &f))?;
            self.confirm(local)?;
        }
        // A copy in the other format (a changed `compression`) is the same
        // snapshot; keep exactly one.
        for entry in &entries {
            if let Some((t, _)) = Tag::from_archive_name(&entry.name)
                && t == *local.tag
                && entry.name != local.name
            {
                self.delete_object(&entry.name)?;
            }
        }
        tracing::info!(tag = %local.tag, remote = %self.describe(), "archive uploaded and confirmed");
        Ok(())
    }

    /// Remove `.partial` objects of lifeboat archives older than a day
    /// (best effort: a leftover costs space, not correctness).
    fn remove_leftovers(&self, entries: &[Entry]) {
        let now = chrono::Utc::now();
        for entry in entries {
            if partial_tag(&entry.name).is_none() {
                continue;
            }
            let old = chrono::DateTime::parse_from_rfc3339(&entry.mod_time)
                .is_ok_and(|t| now.signed_duration_since(t) > LEFTOVER_AGE);
            if !old {
                continue;
            }
            match self.delete_object(&entry.name) {
                Ok(()) => {
                    tracing::info!(name = %entry.name, "removed the upload of an interrupted push")
                }
                Err(e) => {
                    tracing::warn!(name = %entry.name, error = %e, "cannot remove the upload of an interrupted push")
                }
            }
        }
    }

    /// `rclone deletefile` of one object; already gone counts as done.
    fn delete_object(&self, name: &str) -> Result<()> {
        match self.rclone.run(&["deletefile", &self.path(name)]) {
            Ok(_) => Ok(()),
            Err(f) if matches!(f.class(), Class::FileNotFound | Class::DirNotFound) => Ok(()),
            Err(f) => Err(self.fail(&format!("delete {}", self.path(name)), &f)),
        }
    }

    fn list_once(&self) -> Result<Vec<RemoteSnapshot>> {
        let mut out: Vec<RemoteSnapshot> = self
            .identified()?
            .into_iter()
            .filter(|e| !e.is_dir)
            .filter_map(|e| {
                let (tag, _) = Tag::from_archive_name(&e.name)?;
                Some(RemoteSnapshot {
                    tag,
                    asset_name: e.name,
                    size: u64::try_from(e.size).unwrap_or(0),
                    sha256: None,
                    draft: false,
                    parts: vec![],
                })
            })
            .collect();
        out.sort_by(|a, b| (a.tag, &a.asset_name).cmp(&(b.tag, &b.asset_name)));
        Ok(out)
    }

    fn download_once(&self, tag: &Tag, dest_dir: &Path) -> Result<PathBuf> {
        let entries = self.identified()?;
        let entry = [Format::Gzip, Format::Zstd]
            .iter()
            .find_map(|f| {
                let name = tag.archive_name(*f);
                entries.iter().find(|e| e.name == name)
            })
            .ok_or_else(|| {
                Error::new(
                    Kind::RemotePermanent,
                    format!("snapshot {tag} is not on {}", self.describe()),
                )
                .with_hint("`lifeboat list --remote` shows the snapshots there")
            })?;
        let target = dest_dir.join(&entry.name);
        let tmp = crate::fsutil::temp_sibling(&target);
        let _ = std::fs::remove_file(&tmp);
        let result = (|| {
            self.rclone
                .run_with_deadline(
                    &[
                        "copyto".as_ref(),
                        self.path(&entry.name).as_ref(),
                        tmp.as_os_str(),
                    ],
                    self.rclone
                        .transfer_timeout(u64::try_from(entry.size).unwrap_or(0)),
                )
                .map_err(|f| self.fail(&format!("download {}", entry.name), &f))?;
            let size = std::fs::metadata(&tmp)
                .ctx(format!(
                    "rclone reported success but {} is missing",
                    tmp.display()
                ))?
                .len();
            if entry.size >= 0 && size != entry.size as u64 {
                return Err(Error::new(
                    Kind::RemoteTransient,
                    format!(
                        "download of {} is truncated: {size} of {} bytes",
                        entry.name, entry.size
                    ),
                ));
            }
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .ctx(format!("cannot sync {}", tmp.display()))?;
            crate::fsutil::commit(&tmp, &target)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(target)
    }

    fn delete_once(&self, tag: &Tag) -> Result<()> {
        let entries = self.identified()?;
        for format in [Format::Gzip, Format::Zstd] {
            let name = tag.archive_name(format);
            // The archive, and the upload of a push that never finished.
            for name in [name.clone(), partial_name(&name)] {
                if entries.iter().any(|e| e.name == name) {
                    self.delete_object(&name)?;
                }
            }
        }
        Ok(())
    }

    /// `doctor` for an rclone remote: the binary runs, the remote is
    /// reachable, the directory is marked as lifeboat's, and how pushes are
    /// confirmed. `fix` creates a missing directory (`rclone mkdir`) and
    /// marks an unmarked one; it never replaces a marker.
    fn doctor(&self, fix: bool) -> Checks {
        let mut report = Checks::default();
        match self.rclone.run(&["version"]) {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout);
                let version = text.lines().next().unwrap_or("rclone").trim().to_string();
                report.ok(
                    "rclone",
                    format!("{version} ({})", self.rclone.bin().display()),
                );
            }
            Err(f) => {
                let e = self.fail("print its version", &f);
                report.fail("rclone", e.message, e.hint.unwrap_or_default());
                report.skip(&["remote", "identity", "hashes"], "rclone does not run");
                return report;
            }
        }
        let entries = match self.entries() {
            Ok(entries) => {
                report.ok("remote", format!("{} is reachable", self.remote()));
                entries
            }
            Err(e) if fix && e.message.contains("does not exist") => {
                match self.rclone.run(&["mkdir", self.remote()]) {
                    Ok(_) => {
                        report.fixed.push(format!("created {}", self.remote()));
                        report.ok("remote", format!("{} created", self.remote()));
                        Vec::new()
                    }
                    Err(f) => {
                        let e = self.fail(&format!("create {}", self.remote()), &f);
                        report.fail("remote", e.message, e.hint.unwrap_or_default());
                        report.skip(&["identity", "hashes"], "the remote is not reachable");
                        return report;
                    }
                }
            }
            Err(e) => {
                report.fail("remote", e.message, e.hint.unwrap_or_default());
                report.skip(&["identity", "hashes"], "the remote is not reachable");
                return report;
            }
        };
        self.check_identity(fix, &entries, &mut report);
        match self.confirmation() {
            Ok(Confirm::Hash(kind)) if kind == "sha256" => {
                report.ok("hashes", "uploads are confirmed by size and sha256")
            }
            Ok(Confirm::Hash(kind)) => report.ok(
                "hashes",
                format!("uploads are confirmed by size and {kind} (the backend has no sha256)"),
            ),
            Ok(Confirm::SizeOnly) => report.warn(
                "hashes",
                format!(
                    "{} reports no hashes: uploads are confirmed by size only",
                    self.remote()
                ),
                "nothing to do if that is acceptable: restore, verify and drill still check the \
                 sha256 of every database in the archive; a backend with hashes (S3, B2, SFTP, \
                 a local path, ...) also confirms every upload's content",
            ),
            Err(e) => report.fail("hashes", e.message, e.hint.unwrap_or_default()),
        }
        report
    }

    fn check_identity(&self, fix: bool, entries: &[Entry], report: &mut Checks) {
        const NAME: &str = "identity";
        let marker = if entries.iter().any(|e| e.name == MARKER) {
            match self.read_marker() {
                Ok(m) => m,
                Err(e) => return report.fail(NAME, e.message, e.hint.unwrap_or_default()),
            }
        } else {
            None
        };
        match marker {
            Some(marker) => report.ok(
                NAME,
                format!("{} is lifeboat remote {}", self.remote(), marker.id),
            ),
            None if fix => match self.mark() {
                Ok(id) => {
                    report
                        .fixed
                        .push(format!("marked {} as lifeboat remote {id}", self.remote()));
                    report.ok(NAME, format!("{} is lifeboat remote {id}", self.remote()));
                }
                Err(e) => report.fail(NAME, e.message, e.hint.unwrap_or_default()),
            },
            None => {
                let e = self.unmarked();
                report.fail(NAME, e.message, e.hint.unwrap_or_default());
            }
        }
    }
}

impl Remote for RcloneRemote {
    fn name(&self) -> &'static str {
        "rclone"
    }

    fn describe(&self) -> String {
        format!("rclone:{}", self.remote())
    }

    fn check(&self, fix: bool) -> Checks {
        self.doctor(fix)
    }

    fn push(&self, tag: &Tag, archive: &Path, _notes: &str) -> Result<PushOutcome, PushFailure> {
        let name = archive
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // The listing recognises a snapshot by its name only.
        if Tag::from_archive_name(&name).map(|(t, _)| t) != Some(*tag) {
            return Err(Error::usage(format!(
                "cannot push {}: its name is not `{tag}.tar.gz` or `{tag}.tar.zst`",
                archive.display()
            ))
            .into());
        }
        let size = std::fs::metadata(archive)
            .ctx(format!("cannot read {}", archive.display()))?
            .len();
        let local = Local {
            tag,
            path: archive,
            name,
            size,
            digests: Mutex::new(BTreeMap::new()),
        };
        let what = format!("push {tag} to {}", self.describe());
        self.retrying(&what, || self.push_once(&local))
            .map(|((), attempts)| PushOutcome { attempts })
            .map_err(|(error, attempts)| PushFailure::new(error, attempts))
    }

    fn list(&self) -> Result<Vec<RemoteSnapshot>> {
        let what = format!("list {}", self.describe());
        self.retrying(&what, || self.list_once())
            .map(|(v, _)| v)
            .map_err(|(e, _)| e)
    }

    fn download(&self, tag: &Tag, dest_dir: &Path) -> Result<PathBuf> {
        let what = format!("download {tag} from {}", self.describe());
        self.retrying(&what, || self.download_once(tag, dest_dir))
            .map(|(v, _)| v)
            .map_err(|(e, _)| e)
    }

    fn delete(&self, tag: &Tag) -> Result<()> {
        let what = format!("delete {tag} from {}", self.describe());
        self.retrying(&what, || self.delete_once(tag))
            .map(|(v, _)| v)
            .map_err(|(e, _)| e)
    }
}

/// `name` inside the rclone directory `remote`.
fn join(remote: &str, name: &str) -> String {
    if remote.ends_with(':') || remote.ends_with('/') {
        format!("{remote}{name}")
    } else {
        format!("{remote}/{name}")
    }
}

/// The directory above `remote`, for hints (`b2:bucket/x` -> `b2:bucket`).
fn parent_of(remote: &str) -> String {
    match remote.rsplit_once('/') {
        Some((parent, _)) if !parent.is_empty() && !parent.ends_with(':') => parent.to_string(),
        Some((parent, _)) => format!("{parent}/"),
        None => match remote.split_once(':') {
            Some((name, _)) => format!("{name}:"),
            None => remote.to_string(),
        },
    }
}

/// The temporary name an archive is uploaded under.
fn partial_name(archive: &str) -> String {
    format!(".{archive}{PARTIAL}")
}

/// The tag of a `.<archive>.partial` name, if it is one.
fn partial_tag(name: &str) -> Option<Tag> {
    let archive = name.strip_prefix('.')?.strip_suffix(PARTIAL)?;
    Tag::from_archive_name(archive).map(|(t, _)| t)
}

/// The preferred hash to confirm uploads with, among the backend's: sha256
/// (lifeboat computes it itself), else md5, sha1, else any other.
fn pick_hash(hashes: &[String]) -> Option<String> {
    ["sha256", "md5", "sha1"]
        .iter()
        .find(|want| hashes.iter().any(|h| h == *want))
        .map(|s| s.to_string())
        .or_else(|| hashes.first().cloned())
}

fn parse_entries(stdout: &[u8]) -> Result<Vec<Entry>> {
    serde_json::from_slice(stdout).map_err(|e| {
        Error::new(
            Kind::RemoteTransient,
            format!("rclone printed an unexpected listing ({e})"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(s: &str) -> Tag {
        Tag::parse(s).unwrap()
    }

    #[test]
    fn paths_inside_the_remote() {
        assert_eq!(join("b2:bucket/x", "a"), "b2:bucket/x/a");
        assert_eq!(join("b2:", "a"), "b2:a");
        assert_eq!(join("/mnt/usb", "a"), "/mnt/usb/a");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(parent_of("b2:bucket/x"), "b2:bucket");
        assert_eq!(parent_of("b2:bucket"), "b2:");
        assert_eq!(parent_of("/mnt"), "/");
    }

    #[test]
    fn partial_names_are_never_snapshots() {
        let t = tag("snap-20261120T100000Z");
        let partial = partial_name(&t.archive_name(Format::Gzip));
        assert_eq!(partial, ".snap-20261120T100000Z.tar.gz.partial");
        assert!(Tag::from_archive_name(&partial).is_none());
        assert_eq!(partial_tag(&partial), Some(t));
        for foreign in [
            ".notes.partial",
            "snap-20261120T100000Z.tar.gz.partial",
            ".snap-2026.tar.gz.partial",
            MARKER,
        ] {
            assert_eq!(partial_tag(foreign), None, "{foreign}");
        }
    }

    #[test]
    fn the_strongest_common_hash_is_picked() {
        let v = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            pick_hash(&v(&["md5", "sha1", "sha256"])).as_deref(),
            Some("sha256")
        );
        assert_eq!(pick_hash(&v(&["sha1", "md5"])).as_deref(), Some("md5"));
        assert_eq!(pick_hash(&v(&["quickxor"])).as_deref(), Some("quickxor"));
        assert_eq!(pick_hash(&[]), None);
    }

    #[test]
    fn listings_parse() {
        let out = br#"[
{"Path":"a","Name":"snap-20261120T100000Z.tar.gz","Size":3,"ModTime":"2026-11-30T01:36:15.8Z","IsDir":false,"Hashes":{"sha256":"ab"}},
{"Path":"b","Name":"x","Size":-1,"IsDir":false}
]"#;
        let e = parse_entries(out).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].hashes["sha256"], "ab");
        assert_eq!(e[1].size, -1);
        assert!(parse_entries(b"[").is_err());
    }

    /// The real rclone, or `None` (skip) unless `LIFEBOAT_REQUIRE_RCLONE=1`.
    fn real_rclone() -> Option<PathBuf> {
        let ok = std::process::Command::new("rclone")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(PathBuf::from("rclone"));
        }
        assert_ne!(
            std::env::var("LIFEBOAT_REQUIRE_RCLONE").as_deref(),
            Ok("1"),
            "LIFEBOAT_REQUIRE_RCLONE=1 and rclone is not installed"
        );
        eprintln!("skipped: rclone is not installed");
        None
    }

    /// A local-path remote at `root`, set up the documented way.
    fn local_remote(bin: PathBuf, root: &Path, conf: &Path) -> RcloneRemote {
        std::fs::write(conf, "").unwrap();
        let remote = RcloneRemote::new(RcloneConfig {
            remote: root.display().to_string(),
            rclone: bin,
            config: Some(conf.to_path_buf()),
            timeout: std::time::Duration::from_secs(30),
            attempts: 2,
            backoff: std::time::Duration::from_millis(10),
        });
        let report = remote.check(true);
        assert!(report.passed(), "{report:?}");
        remote
    }

    fn archive(dir: &Path, tag: &Tag, body: &[u8]) -> PathBuf {
        let path = dir.join(tag.archive_name(Format::Gzip));
        std::fs::write(&path, body).unwrap();
        path
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// A push converges on whatever an earlier one left: a damaged object
    /// under the final name (same size, other bytes: only the hash tells)
    /// is replaced, a fresh `.partial` is overwritten, an old one of
    /// another snapshot is removed; a copy in the other format goes.
    #[test]
    fn pushes_converge_and_confirm_by_hash() {
        let Some(bin) = real_rclone() else { return };
        let place = tempfile::tempdir().unwrap();
        let root = place.path().join("remote");
        let remote = local_remote(bin, &root, &place.path().join("rclone.conf"));
        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T100000Z");
        let b = tag("snap-20261120T090000Z");
        let a_path = archive(src.path(), &a, b"good bytes");
        remote.push(&a, &a_path, "").unwrap();
        assert_eq!(
            std::fs::read(root.join(a.archive_name(Format::Gzip))).unwrap(),
            b"good bytes"
        );

        // Same size and modification time as the archive: rclone itself
        // would take them for copies of it.
        let same_as_archive = |path: &Path| {
            std::fs::write(path, b"bad  bytes").unwrap();
            let touched = std::process::Command::new("touch")
                .arg("-r")
                .arg(&a_path)
                .arg(path)
                .status()
                .unwrap();
            assert!(touched.success());
        };
        same_as_archive(&root.join(a.archive_name(Format::Gzip)));
        same_as_archive(&root.join(partial_name(&a.archive_name(Format::Gzip))));
        let stale = root.join(partial_name(&b.archive_name(Format::Zstd)));
        std::fs::write(&stale, b"old").unwrap();
        let touched = std::process::Command::new("touch")
            .args(["-d", "3 days ago"])
            .arg(&stale)
            .status()
            .unwrap();
        assert!(touched.success());
        std::fs::write(root.join(a.archive_name(Format::Zstd)), b"other format").unwrap();
        std::fs::write(root.join("notes.partial"), b"foreign").unwrap();
        let outcome = remote.push(&a, &a_path, "").unwrap();
        assert_eq!(outcome.attempts, 1);
        assert_eq!(
            std::fs::read(root.join(a.archive_name(Format::Gzip))).unwrap(),
            b"good bytes"
        );
        assert_eq!(
            names(&root),
            [MARKER, "notes.partial", "snap-20261120T100000Z.tar.gz"]
        );

        let listed = remote.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].tag, listed[0].size), (a, 10));
        let dest = tempfile::tempdir().unwrap();
        let got = remote.download(&a, dest.path()).unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), b"good bytes");
        assert_eq!(names(dest.path()), ["snap-20261120T100000Z.tar.gz"]);
        let err = remote.download(&b, dest.path()).unwrap_err();
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert_eq!(
            names(dest.path()),
            ["snap-20261120T100000Z.tar.gz"],
            "no partial download"
        );

        remote.delete(&a).unwrap();
        remote.delete(&a).unwrap(); // already gone counts as done
        assert_eq!(names(&root), [MARKER, "notes.partial"]);
    }

    /// Without the marker nothing is read or written; `check` names the fix.
    #[test]
    fn an_unmarked_directory_is_refused() {
        let Some(bin) = real_rclone() else { return };
        let place = tempfile::tempdir().unwrap();
        let root = place.path().join("remote");
        let remote = local_remote(bin, &root, &place.path().join("rclone.conf"));
        std::fs::remove_file(root.join(MARKER)).unwrap();
        let src = tempfile::tempdir().unwrap();
        let a = tag("snap-20261120T100000Z");
        let err = remote
            .push(&a, &archive(src.path(), &a, b"x"), "")
            .unwrap_err();
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert_eq!(err.attempts, 1);
        assert!(
            err.hint.as_ref().unwrap().contains("lifeboat doctor --fix"),
            "{err}"
        );
        assert!(remote.list().is_err());
        assert!(remote.delete(&a).is_err());
        assert!(names(&root).is_empty());
        let report = remote.check(false);
        let identity = report.checks.iter().find(|c| c.name == "identity").unwrap();
        assert_eq!(identity.status, super::super::CheckStatus::Fail);
        // A damaged marker is named, not replaced.
        std::fs::write(root.join(MARKER), b"{not json").unwrap();
        let report = remote.check(true);
        assert!(!report.passed());
        assert!(report.fixed.is_empty());
        assert_eq!(std::fs::read(root.join(MARKER)).unwrap(), b"{not json");
        let err = remote
            .push(&a, &archive(src.path(), &a, b"x"), "")
            .unwrap_err();
        assert!(err.message.contains("not a valid remote marker"), "{err}");
    }
}
