//! The snapshot archive: one tar stream, gzip- or zstd-compressed, holding
//! `<tag>/MANIFEST.json` first and then `<tag>/<database path>` for each
//! database. Plain `tar xzf` (or `tar --zstd -xf`) extracts it.
//!
//! Reading is the security boundary of restore: an archive may come from a
//! compromised account or a corrupted disk. [`read`] accepts only regular
//! files at the paths the manifest declares, no larger than declared, and
//! checks every sha256 before anything is trusted.

use super::follow::{Follower, Publisher};
use super::manifest::{MAX_MANIFEST_BYTES, Manifest};
use super::writeback::PacedFile;
use crate::error::{Error, IoContext, Result};
use crate::fsutil;
use crate::hash::{Failed, copy_hashed, hex, read_up_to};
pub use crate::tag::Format;
use crate::tag::Tag;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Bytes per zstd worker job (see [`ArchiveWriter::create`]).
const ZSTD_JOB_BYTES: u32 = 2 << 20;

/// Mode and ownership of every entry: private to whoever extracts it.
const ENTRY_MODE: u32 = 0o600;

/// Writes an archive to a temporary file; [`ArchiveWriter::finish`] fsyncs
/// it and renames it into place, so an interrupted run leaves only a `.tmp`.
/// A [`ArchiveWriter::follower`] can read the file back while it is written.
pub struct ArchiveWriter {
    tar: tar::Builder<Box<dyn FinishWrite>>,
    tmp: PathBuf,
    target: PathBuf,
    tag: Tag,
    mtime: u64,
    publisher: Publisher,
}

/// A compressing writer that must be told when the stream ends.
trait FinishWrite: Write + Send {
    fn finish_stream(self: Box<Self>) -> io::Result<File>;
}

impl FinishWrite for super::pgzip::ParGzWriter<BufWriter<PacedFile>> {
    fn finish_stream(self: Box<Self>) -> io::Result<File> {
        let paced = (*self).finish()?.into_inner().map_err(|e| e.into_error())?;
        Ok(paced.into_inner())
    }
}

impl FinishWrite for zstd::stream::write::Encoder<'static, BufWriter<PacedFile>> {
    fn finish_stream(self: Box<Self>) -> io::Result<File> {
        let paced = (*self).finish()?.into_inner().map_err(|e| e.into_error())?;
        Ok(paced.into_inner())
    }
}

impl ArchiveWriter {
    pub fn create(target: &Path, tag: &Tag, format: Format, level: u32) -> Result<ArchiveWriter> {
        let tmp = fsutil::temp_sibling(target);
        let _ = std::fs::remove_file(&tmp);
        let publisher = Publisher::new();
        let paced =
            PacedFile::new(fsutil::create_private(&tmp)?).announcing_to(publisher.announcer());
        let file = BufWriter::with_capacity(1 << 20, paced);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let out: Box<dyn FinishWrite> = match format {
            // One gzip member per block, compressed on every core.
            Format::Gzip => Box::new(
                super::pgzip::ParGzWriter::new(file, level, threads)
                    .ctx("cannot start gzip compression threads")?,
            ),
            Format::Zstd => {
                let mut enc = zstd::stream::write::Encoder::new(file, level as i32)
                    .ctx("cannot start zstd compression")?;
                enc.multithread(threads as u32)
                    .ctx("cannot start zstd worker threads")?;
                // zstd's default job is 4× the window (8 MiB at level 3),
                // and several jobs' input and output are held at once: about
                // 60 MiB resident with two workers. 2 MiB jobs keep memory
                // near 20 MiB for a size cost of well under 1%.
                if threads > 1 {
                    enc.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB_BYTES))
                        .ctx("cannot set the zstd job size")?;
                }
                Box::new(enc)
            }
        };
        let mut tar = tar::Builder::new(out);
        tar.mode(tar::HeaderMode::Deterministic);
        Ok(ArchiveWriter {
            tar,
            tmp,
            target: target.to_path_buf(),
            tag: *tag,
            mtime: tag.time().timestamp().max(0) as u64,
            publisher,
        })
    }

    /// A reader of the compressed archive as it is being written: it sees
    /// each byte once the compressor has written it to the file, and ends
    /// when [`ArchiveWriter::finish`] has written the last one.
    pub fn follower(&self) -> Result<Follower> {
        let file = File::open(&self.tmp).ctx(format!("cannot open {}", self.tmp.display()))?;
        Ok(self.publisher.follower(file))
    }

    fn header(&self, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(ENTRY_MODE);
        h.set_mtime(self.mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h
    }

    /// Append the manifest. Must be the first entry.
    pub fn append_manifest(&mut self, manifest: &Manifest) -> Result<()> {
        let bytes = manifest.to_json();
        let mut h = self.header(bytes.len() as u64);
        let name = Manifest::entry_name(&self.tag);
        self.tar
            .append_data(&mut h, &name, &bytes[..])
            .ctx(format!("cannot write {}", self.tmp.display()))
    }

    /// Stream a database file into the archive as `<tag>/<archive_path>`.
    /// `on_read` hears how many bytes were just fed to the compressor.
    pub fn append_file(
        &mut self,
        archive_path: &str,
        source: &Path,
        on_read: &dyn Fn(u64),
    ) -> Result<()> {
        let file = File::open(source).ctx(format!("cannot open {}", source.display()))?;
        let len = file
            .metadata()
            .ctx(format!("cannot stat {}", source.display()))?
            .len();
        let mut h = self.header(len);
        let name = format!("{}/{archive_path}", self.tag);
        // Limit the read to the length in the header: the file is ours and
        // should not change, but the header must never lie.
        self.tar
            .append_data(
                &mut h,
                &name,
                Counting {
                    inner: BufReader::with_capacity(1 << 20, file).take(len),
                    on_read,
                },
            )
            .ctx(format!("cannot write {}", self.tmp.display()))
    }

    /// Finish the stream and fsync it; then, only if `check` (typically:
    /// wait for the reader following the file) succeeds, rename it into
    /// place. Returns the size. On any failure the temporary file is removed,
    /// so an archive that does not read back never gets its final name.
    pub fn finish(self, check: impl FnOnce() -> Result<()>) -> Result<u64> {
        let tmp = self.tmp.clone();
        let publisher = self.publisher;
        let result = (|| {
            let out = self
                .tar
                .into_inner()
                .ctx(format!("cannot write {}", tmp.display()))?;
            let file = out
                .finish_stream()
                .ctx(format!("cannot write {}", tmp.display()))?;
            publisher.finish();
            file.sync_all()
                .ctx(format!("cannot sync {}", tmp.display()))?;
            let len = file
                .metadata()
                .ctx(format!("cannot stat {}", tmp.display()))?
                .len();
            drop(file);
            check()?;
            fsutil::commit(&tmp, &self.target)?;
            Ok(len)
        })();
        // Wakes a follower still waiting if the stream could not be finished.
        drop(publisher);
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Give up: remove the temporary file.
    pub fn abandon(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A decompressed tar stream.
pub type TarStream = Box<dyn Read + Send>;

/// Open an archive and return a reader of its decompressed tar stream,
/// choosing the decompressor by content.
pub fn open(path: &Path) -> Result<(Format, TarStream)> {
    open_stream(open_raw(path)?, &path.display().to_string())
}

/// The suffix of a parts list: an archive kept as consecutive parts (a
/// GitHub release holds assets under 2 GiB only), read as one stream.
pub const PARTS_SUFFIX: &str = ".parts";

/// The bytes of the archive at `path`: the file itself, or, for a parts
/// list (`<archive>.parts`, JSON `{"parts": [names]}` naming files beside
/// it, in order), the parts one after the other, so that an archive split
/// for a remote is read without ever being joined on disk. A parts list is
/// untrusted like any archive: only plain file names beside it.
pub fn open_raw(path: &Path) -> Result<Box<dyn Read + Send>> {
    let shown = path.display();
    if !path.to_string_lossy().ends_with(PARTS_SUFFIX) {
        let file = File::open(path).ctx(format!("cannot open archive {shown}"))?;
        return Ok(Box::new(file));
    }
    #[derive(serde::Deserialize)]
    struct Parts {
        parts: Vec<String>,
    }
    let text = std::fs::read(path).ctx(format!("cannot read {shown}"))?;
    let list: Parts = serde_json::from_slice(&text)
        .map_err(|e| Error::archive(format!("{shown} is not a parts list: {e}")))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut chain: Box<dyn Read + Send> = Box::new(io::empty());
    for name in list.parts {
        let plain = !name.is_empty() && !name.contains('/') && name != "." && name != "..";
        if !plain {
            return Err(Error::archive(format!(
                "{shown} names part `{name}`, which is not a file beside it"
            )));
        }
        let part = dir.join(&name);
        let file = File::open(&part).ctx(format!("cannot open part {}", part.display()))?;
        chain = Box::new(chain.chain(file));
    }
    Ok(chain)
}

/// [`open`] for any byte stream (`shown` names it in errors): the first
/// bytes choose the decompressor and are then replayed to it.
pub fn open_stream(
    mut raw: impl Read + Send + 'static,
    shown: &str,
) -> Result<(Format, TarStream)> {
    // Enough for the magic bytes and, for zstd, the longest frame header.
    let mut head = [0u8; ZSTD_MAX_FRAME_HEADER];
    let n = read_up_to(&mut raw, &mut head).ctx(format!("cannot read {shown}"))?;
    let format = Format::sniff(&head[..n])
        .ok_or_else(|| Error::archive(format!("{shown} is neither gzip nor zstd compressed")))?;
    let file = BufReader::with_capacity(1 << 20, io::Cursor::new(head[..n].to_vec()).chain(raw));
    let reader: TarStream = match format {
        // Multi-member: parallel compressors write one gzip member per block.
        Format::Gzip => Box::new(super::gunzip::GzReader::new(file)),
        Format::Zstd => {
            // Judged before decoding, so that the refusal names the window
            // instead of surfacing as a decoding error ("damaged").
            if let Some(window) = zstd_window(&head[..n])
                && window > 1 << ZSTD_WINDOW_LOG_MAX
            {
                return Err(window_too_large(shown, Some(window)));
            }
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(file).ctx("cannot start zstd")?;
            decoder
                .window_log_max(ZSTD_WINDOW_LOG_MAX)
                .ctx("cannot set the zstd window limit")?;
            Box::new(decoder)
        }
    };
    Ok((format, reader))
}

/// The largest zstd window read, as a power of two: 27 (128 MiB), what
/// `zstd -d` accepts without `--long`/`--memory` (libzstd's
/// `ZSTD_WINDOWLOG_LIMIT_DEFAULT`). lifeboat's own archives use a few MiB;
/// `zstd --long=27` stays within it. The decoder allocates the window a
/// frame declares, so a larger limit would let any archive, hostile ones
/// included, claim up to 2 GiB of memory.
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// A zstd frame header is at most 18 bytes: magic, descriptor, window
/// descriptor, 4-byte dictionary id, 8-byte content size.
const ZSTD_MAX_FRAME_HEADER: usize = 18;

/// The window a zstd frame header declares (RFC 8878, 3.1.1.1): from the
/// window descriptor, or for a single-segment frame its content size.
/// `None` when the header is cut short.
fn zstd_window(header: &[u8]) -> Option<u64> {
    let descriptor = *header.get(4)?;
    if descriptor & 0x20 == 0 {
        let wd = *header.get(5)?;
        let base = 1u64 << (10 + u32::from(wd >> 3));
        return Some(base + base / 8 * u64::from(wd & 7));
    }
    let dictionary_id_bytes = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let content_size_bytes = [1, 2, 4, 8][usize::from(descriptor >> 6)];
    let start = 5 + dictionary_id_bytes;
    let field = header.get(start..start + content_size_bytes)?;
    let size = field
        .iter()
        .rev()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    Some(if content_size_bytes == 2 {
        size + 256
    } else {
        size
    })
}

/// The refusal of a zstd window beyond [`ZSTD_WINDOW_LOG_MAX`], naming the
/// window (when known) and the flag `zstd` itself needs to read it.
fn window_too_large(shown: &str, window: Option<u64>) -> Error {
    let (what, flag) = match window {
        Some(w) => {
            let log = 64 - (w - 1).leading_zeros();
            (
                format!("a {} MiB zstd window (`--long={log}`)", w >> 20),
                format!("--long={log}"),
            )
        }
        None => (
            "a zstd window larger than 128 MiB".into(),
            "--long=31".into(),
        ),
    };
    Error::archive(format!(
        "{shown} was compressed with {what}; lifeboat reads windows up to {} MiB, as `zstd -d` does by default",
        1u64 << (ZSTD_WINDOW_LOG_MAX - 20)
    ))
    .with_hint(format!(
        "the archive is not damaged: `zstd -d {flag}` reads it. To restore it with lifeboat, \
         recompress it with a smaller window under its own name: \
         `zstd -d {flag} -c ARCHIVE | zstd -T0 -o ARCHIVE.new && mv ARCHIVE.new ARCHIVE`"
    ))
}

/// Whether a decoding error is zstd refusing a frame's window (a later
/// frame than the first, whose header [`open_stream`] judged).
fn is_window_refusal(e: &io::Error) -> bool {
    e.to_string().contains("Frame requires too much memory")
}

/// Limits for reading an untrusted archive.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Refuse a manifest that declares more than this in total.
    pub max_total_bytes: u64,
}

/// What [`read`] found.
#[derive(Debug)]
pub struct ReadResult {
    pub format: Format,
    pub manifest: Manifest,
}

/// Read and check a whole archive: manifest first and valid, then exactly the
/// declared files, each a regular file no larger than declared with the
/// declared sha256. With `dest`, files are written under `dest/<path>`
/// (`dest` must be an empty directory lifeboat created, on a filesystem with
/// room for the declared total: checked first); without it they are only
/// hashed. `expect_tag` refuses an archive of another snapshot.
pub fn read(
    path: &Path,
    expect_tag: Option<&Tag>,
    dest: Option<&Path>,
    limits: Limits,
) -> Result<ReadResult> {
    read_from(
        open_raw(path)?,
        &path.display().to_string(),
        expect_tag,
        dest,
        limits,
    )
}

/// [`read`] from any byte stream (`shown` names it in errors), such as a
/// [`Follower`] of an archive still being written.
pub fn read_from(
    raw: impl Read + Send + 'static,
    shown: &str,
    expect_tag: Option<&Tag>,
    dest: Option<&Path>,
    limits: Limits,
) -> Result<ReadResult> {
    let (format, stream) = open_stream(raw, shown)?;
    let shown = shown.to_string();
    let broken = |e: io::Error| damaged(&shown, e);
    let mut tar = tar::Archive::new(stream);
    let mut entries = SafeEntries::new(&mut tar, &shown)?;
    let manifest = first_manifest(&mut entries, &shown, expect_tag)?;
    let total = manifest.total_bytes();
    if total > limits.max_total_bytes {
        crate::audit::log(crate::audit::Event::ArchiveEntryRefused {
            archive: shown.clone(),
            entry: "MANIFEST.json".into(),
            why: format!(
                "declares {total} bytes of databases, more than the limit of {}",
                limits.max_total_bytes
            ),
        });
        return Err(Error::archive(format!(
            "{shown} declares {total} bytes of databases, more than the limit of {} bytes",
            limits.max_total_bytes
        ))
        .with_hint("raise [restore] max_unpacked_bytes if this snapshot is genuine"));
    }
    if let Some(dest) = dest {
        check_free_space(dest, total)?;
    }

    // 2. Exactly the declared files.
    let prefix = format!("{}/", manifest.tag);
    let mut expected: HashMap<String, &super::manifest::DatabaseEntry> = manifest
        .databases
        .iter()
        .map(|d| (format!("{prefix}{}", d.path), d))
        .collect();
    while let Some((name, mut entry)) = entries.next_entry()? {
        let kind = entry.header().entry_type();
        if kind != tar::EntryType::Regular {
            let what = match kind {
                tar::EntryType::Symlink => "a symbolic link",
                tar::EntryType::Link => "a hard link",
                tar::EntryType::Char | tar::EntryType::Block => "a device",
                tar::EntryType::Fifo => "a FIFO",
                tar::EntryType::Directory => "a directory",
                _ => "not a regular file",
            };
            return Err(hostile(
                &shown,
                &name,
                &format!("is {what}; only regular files are allowed"),
            ));
        }
        let Some(db) = expected.remove(&name) else {
            return Err(hostile(
                &shown,
                &name,
                "is not declared in MANIFEST.json (or appears twice)",
            ));
        };
        let size = entry.size();
        if size != db.bytes {
            return Err(hostile(
                &shown,
                &name,
                &format!("is {size} bytes but MANIFEST.json declares {}", db.bytes),
            ));
        }
        let mut out: Box<dyn Write + Send> = match dest {
            Some(dest) => {
                let target = dest.join(&db.path);
                if let Some(parent) = target.parent() {
                    fsutil::create_dir_all_private(parent)?;
                }
                Box::new(BufWriter::with_capacity(1 << 20, create_nofollow(&target)?))
            }
            None => Box::new(io::sink()),
        };
        // `take` bounds the read even if the header lied about the size.
        let (written, digest) =
            copy_hashed(&mut (&mut entry).take(db.bytes), &mut out).map_err(|e| match e {
                Failed::Read(e) => broken(e),
                Failed::Write(e) => Error::io(format!("cannot write {}", db.path), e),
            })?;
        let digest = hex(&digest);
        out.flush().ctx(format!("cannot write {}", db.path))?;
        drop(out);
        if written != db.bytes {
            return Err(hostile(
                &shown,
                &name,
                &format!("holds {written} bytes, expected {}", db.bytes),
            ));
        }
        if digest != db.sha256 {
            return Err(Error::archive(format!(
                "{shown}: `{name}` has sha256 {digest}, but MANIFEST.json says {}",
                db.sha256
            ))
            .with_hint("the archive was damaged or altered; use another snapshot"));
        }
        if let Some(dest) = dest {
            File::open(dest.join(&db.path))
                .and_then(|f| f.sync_all())
                .ctx(format!("cannot sync {}", db.path))?;
        }
    }
    if let Some(missing) = expected.keys().next() {
        return Err(Error::archive(format!(
            "{shown}: `{missing}` is declared in MANIFEST.json but missing"
        ))
        .with_hint(
            "the archive is truncated or was altered; use another snapshot (`lifeboat list`)",
        ));
    }
    check_tail(&mut tar.into_inner(), &shown)?;
    Ok(ReadResult { format, manifest })
}

/// Most bytes accepted after the tar end marker. tar pads its output to a
/// whole record: 10 KiB by default for GNU tar, up to a few MiB with a
/// large `--blocking-factor`; nothing but zeros belongs there. The bound
/// only stops an endless stream of zeros (64 MiB of them decompress in a
/// few tens of milliseconds).
const MAX_TAIL: u64 = 64 << 20;

/// Read the decompressed stream to its end after the tar end marker. The
/// entries alone stop before gzip's CRC and length trailer or the end of the
/// last zstd frame, so damage there would go unseen, and a `tar xzf` by hand
/// would then fail on an archive lifeboat had accepted. Only zero padding,
/// and not much of it, may follow the last entry.
fn check_tail(rest: &mut impl Read, shown: &str) -> Result<()> {
    let mut buf = vec![0u8; 64 << 10];
    let mut seen = 0u64;
    loop {
        let n = rest.read(&mut buf).map_err(|e| {
            if is_window_refusal(&e) {
                return window_too_large(shown, None);
            }
            Error::archive(format!("{shown}: the compressed stream is damaged: {e}"))
                .with_hint("use another snapshot, or download it again")
        })?;
        if n == 0 {
            return Ok(());
        }
        seen += n as u64;
        let why = if buf[..n].iter().any(|&b| b != 0) {
            "unexpected data after the end of the tar archive".to_string()
        } else if seen > MAX_TAIL {
            format!("more than {MAX_TAIL} bytes of padding after the end of the tar archive")
        } else {
            continue;
        };
        return Err(Error::archive(format!("{shown}: {why}")).with_hint(
            "the archive was not written by lifeboat or was altered; use another snapshot",
        ));
    }
}

/// Read only the manifest (the first entry) of an archive: enough to judge
/// it (version, tag, schema versions, sizes) before unpacking anything.
pub fn read_manifest(path: &Path, expect_tag: Option<&Tag>) -> Result<ReadResult> {
    let (format, stream) = open(path)?;
    let shown = path.display().to_string();
    let mut tar = tar::Archive::new(stream);
    let mut entries = SafeEntries::new(&mut tar, &shown)?;
    let manifest = first_manifest(&mut entries, &shown, expect_tag)?;
    Ok(ReadResult { format, manifest })
}

fn damaged(shown: &str, e: io::Error) -> Error {
    if is_window_refusal(&e) {
        return window_too_large(shown, None);
    }
    Error::archive(format!("{shown} is damaged or truncated: {e}"))
        .with_hint("use another snapshot (`lifeboat list`), or download it again")
}

/// The manifest, which must be the first entry, valid, and of the right tag.
fn first_manifest<R: Read>(
    entries: &mut SafeEntries<'_, R>,
    shown: &str,
    expect_tag: Option<&Tag>,
) -> Result<Manifest> {
    let broken = |e: io::Error| damaged(shown, e);
    let (first_name, mut first) = entries
        .next_entry()?
        .ok_or_else(|| Error::archive(format!("{shown} is empty: no MANIFEST.json")))?;
    if !first_name.ends_with("/MANIFEST.json")
        || first.header().entry_type() != tar::EntryType::Regular
    {
        return Err(Error::archive(format!(
            "{shown}: the first entry is `{first_name}`, not <tag>/MANIFEST.json"
        )));
    }
    if first.size() > MAX_MANIFEST_BYTES {
        return Err(Error::archive(format!(
            "{shown}: MANIFEST.json is implausibly large ({} bytes)",
            first.size()
        )));
    }
    let mut manifest_bytes = Vec::new();
    (&mut first)
        .take(MAX_MANIFEST_BYTES)
        .read_to_end(&mut manifest_bytes)
        .map_err(broken)?;
    drop(first);
    let manifest = Manifest::from_json(&manifest_bytes).map_err(|e| e.context(shown))?;
    if first_name != Manifest::entry_name(&manifest.tag) {
        return Err(Error::archive(format!(
            "{shown}: manifest entry `{first_name}` does not match its tag {}",
            manifest.tag
        ))
        .with_hint(
            "the archive was not written by lifeboat or was altered; use another snapshot",
        ));
    }
    if let Some(tag) = expect_tag
        && manifest.tag != *tag
    {
        return Err(Error::archive(format!(
            "{shown} holds snapshot {}, not {tag}",
            manifest.tag
        ))
        .with_hint(
            "the file was renamed or replaced; `lifeboat list` shows what each archive holds",
        ));
    }
    Ok(manifest)
}

/// Refuse up front when `dest`'s filesystem cannot hold `needed` bytes: a
/// disk that fills halfway through unpacking is one clear error instead.
pub fn check_free_space(dest: &Path, needed: u64) -> Result<()> {
    let available =
        free_bytes(dest).ctx(format!("cannot read free space of {}", dest.display()))?;
    if available < needed {
        return Err(Error::new(
            crate::error::Kind::Io,
            format!(
                "not enough free space in {}: the snapshot needs {needed} bytes, {available} are available",
                dest.display()
            ),
        )
        .with_hint("free some space (or prune old snapshots) and run again; nothing was changed"));
    }
    Ok(())
}

/// Bytes available to an unprivileged user on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a statvfs we own.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

fn hostile(archive: &str, entry: &str, why: &str) -> Error {
    tracing::warn!(
        archive,
        entry,
        why,
        "hostile or malformed archive entry refused"
    );
    crate::audit::log(crate::audit::Event::ArchiveEntryRefused {
        archive: archive.to_string(),
        entry: entry.to_string(),
        why: why.to_string(),
    });
    Error::archive(format!("{archive}: refusing entry `{entry}`: it {why}")).with_hint(
        "this archive was not written by lifeboat or was altered; nothing was restored from it",
    )
}

/// Longest GNU long name accepted (lifeboat's own are a tag plus a path).
const MAX_LONG_NAME: u64 = 4096;

/// A tar archive's entries with their names, read in raw mode.
///
/// The `tar` crate, left to itself, reads every GNU long-name and PAX
/// pseudo-entry whole into memory before yielding the next entry: a header
/// declaring a 20 GB "name" would exhaust memory before any check here ran.
/// lifeboat's writer only ever emits GNU long names, so those are resolved
/// here with a bound, and every other extension header is refused.
struct SafeEntries<'a, R: Read> {
    inner: tar::Entries<'a, R>,
    shown: &'a str,
}

impl<'a, R: Read> SafeEntries<'a, R> {
    fn new(tar: &'a mut tar::Archive<R>, shown: &'a str) -> Result<Self> {
        let inner = tar.entries().map_err(|e| damaged(shown, e))?.raw(true);
        Ok(SafeEntries { inner, shown })
    }

    fn next_entry(&mut self) -> Result<Option<(String, tar::Entry<'a, R>)>> {
        let mut long_name: Option<String> = None;
        loop {
            let Some(entry) = self.inner.next() else {
                return match long_name {
                    Some(name) => Err(hostile(
                        self.shown,
                        &name,
                        "is a long name with no entry after it",
                    )),
                    None => Ok(None),
                };
            };
            let mut entry = entry.map_err(|e| damaged(self.shown, e))?;
            let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            match entry.header().entry_type() {
                tar::EntryType::GNULongName => {
                    if long_name.is_some() || entry.size() > MAX_LONG_NAME {
                        return Err(hostile(
                            self.shown,
                            &raw_name,
                            &format!(
                                "is a GNU long name of {} bytes (at most {MAX_LONG_NAME})",
                                entry.size()
                            ),
                        ));
                    }
                    let mut bytes = Vec::new();
                    (&mut entry)
                        .take(MAX_LONG_NAME)
                        .read_to_end(&mut bytes)
                        .map_err(|e| damaged(self.shown, e))?;
                    while bytes.last() == Some(&0) {
                        bytes.pop();
                    }
                    long_name = Some(String::from_utf8_lossy(&bytes).into_owned());
                }
                tar::EntryType::GNULongLink
                | tar::EntryType::XHeader
                | tar::EntryType::XGlobalHeader => {
                    return Err(hostile(
                        self.shown,
                        &raw_name,
                        "is a long-link or PAX extension header, which lifeboat never writes",
                    ));
                }
                _ => return Ok(Some((long_name.unwrap_or(raw_name), entry))),
            }
        }
    }
}

fn create_nofollow(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ctx(format!("cannot create {}", path.display()))
}

/// A reader that reports each read (progress of the bytes being packed).
struct Counting<'a, R> {
    inner: R,
    on_read: &'a dyn Fn(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_read)(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    /// An archive of the sample manifest with one database of `data`.
    fn write_archive(dir: &Path, format: Format, data: &[u8]) -> (PathBuf, Tag) {
        let mut manifest = super::super::manifest::sample();
        let tag = manifest.tag;
        let db = &mut manifest.databases[0];
        db.bytes = data.len() as u64;
        db.sha256 = hex(&Sha256::digest(data));
        let copy = dir.join("copy.db");
        std::fs::write(&copy, data).unwrap();
        let target = dir.join(tag.archive_name(format));
        let mut w = ArchiveWriter::create(&target, &tag, format, 3).unwrap();
        w.append_manifest(&manifest).unwrap();
        w.append_file(&manifest.databases[0].path, &copy, &|_| {})
            .unwrap();
        w.finish(|| Ok(())).unwrap();
        (target, tag)
    }

    fn data() -> Vec<u8> {
        (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect()
    }

    const UNLIMITED: Limits = Limits {
        max_total_bytes: u64::MAX,
    };

    #[test]
    fn the_follower_reads_the_archive_while_it_is_written() {
        for format in [Format::Gzip, Format::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let data = data();
            let mut manifest = super::super::manifest::sample();
            let tag = manifest.tag;
            manifest.databases[0].bytes = data.len() as u64;
            manifest.databases[0].sha256 = hex(&Sha256::digest(&data));
            let copy = dir.path().join("copy.db");
            std::fs::write(&copy, &data).unwrap();
            let target = dir.path().join(tag.archive_name(format));
            let mut w = ArchiveWriter::create(&target, &tag, format, 3).unwrap();
            let follower = w.follower().unwrap();
            let checker =
                std::thread::spawn(move || read_from(follower, "f", Some(&tag), None, UNLIMITED));
            w.append_manifest(&manifest).unwrap();
            w.append_file(&manifest.databases[0].path, &copy, &|_| {})
                .unwrap();
            w.finish(|| Ok(())).unwrap();
            let read = checker.join().unwrap().unwrap();
            assert_eq!(read.format, format);
            assert_eq!(read.manifest, manifest);
        }
    }

    #[test]
    fn a_failed_check_leaves_no_archive_under_its_final_name() {
        let dir = tempfile::tempdir().unwrap();
        let tag = Tag::parse("snap-20261122T014500Z").unwrap();
        let target = dir.path().join(tag.archive_name(Format::Gzip));
        let mut w = ArchiveWriter::create(&target, &tag, Format::Gzip, 6).unwrap();
        w.append_manifest(&super::super::manifest::sample())
            .unwrap();
        let err = w
            .finish(|| Err(Error::archive("checker said no")))
            .unwrap_err();
        assert!(err.message.contains("checker said no"));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn an_abandoned_writer_stops_its_follower() {
        let dir = tempfile::tempdir().unwrap();
        let tag = Tag::parse("snap-20261122T014500Z").unwrap();
        let target = dir.path().join(tag.archive_name(Format::Zstd));
        let w = ArchiveWriter::create(&target, &tag, Format::Zstd, 3).unwrap();
        let follower = w.follower().unwrap();
        let checker = std::thread::spawn(move || read_from(follower, "f", None, None, UNLIMITED));
        w.abandon();
        assert!(checker.join().unwrap().is_err());
    }

    #[test]
    fn reads_its_own_archives_in_both_formats() {
        for format in [Format::Gzip, Format::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let (path, tag) = write_archive(dir.path(), format, &data());
            let dest = dir.path().join("out");
            std::fs::create_dir(&dest).unwrap();
            read(&path, Some(&tag), Some(&dest), UNLIMITED).unwrap();
            assert_eq!(std::fs::read(dest.join("db/tasks.db")).unwrap(), data());
        }
    }

    /// Append `data` to the gzip file at `path` as one more member.
    fn append_gzip_member(path: &Path, data: &[u8]) {
        let mut c = libdeflater::Compressor::new(libdeflater::CompressionLvl::default());
        let mut member = vec![0u8; c.gzip_compress_bound(data.len())];
        let n = c.gzip_compress(data, &mut member).unwrap();
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        f.write_all(&member[..n]).unwrap();
    }

    #[test]
    fn data_after_the_tar_end_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (path, tag) = write_archive(dir.path(), Format::Gzip, &data());
        // Another gzip member (valid on its own) of non-zero bytes.
        append_gzip_member(&path, &b"not tar padding".repeat(40));
        let err = read(&path, Some(&tag), None, UNLIMITED).unwrap_err();
        assert!(
            err.message.contains("unexpected data after the end"),
            "{err}"
        );
    }

    #[test]
    fn zero_padding_after_the_tar_end_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let (path, tag) = write_archive(dir.path(), Format::Gzip, &data());
        // GNU tar pads to a 10 KiB record; a repacked archive may carry that.
        append_gzip_member(&path, &[0u8; 10240]);
        read(&path, Some(&tag), None, UNLIMITED).unwrap();
    }

    #[test]
    fn zstd_frame_headers_declare_their_window() {
        let magic = [0x28, 0xb5, 0x2f, 0xfd];
        let with = |rest: &[u8]| [&magic[..], rest].concat();
        // Window descriptor: exponent and mantissa.
        assert_eq!(zstd_window(&with(&[0x04, 17 << 3])), Some(1 << 27));
        assert_eq!(zstd_window(&with(&[0x04, 21 << 3])), Some(1 << 31));
        assert_eq!(
            zstd_window(&with(&[0x00, (17 << 3) | 4])),
            Some((1 << 27) + (1 << 26))
        );
        // Single segment: the window is the content size (1, 2 with its
        // offset of 256, 4 or 8 bytes, after a dictionary id).
        assert_eq!(zstd_window(&with(&[0x20, 5])), Some(5));
        assert_eq!(zstd_window(&with(&[0x60, 0x00, 0x01])), Some(512));
        assert_eq!(
            zstd_window(&with(&[0xa1, 0x99, 0x00, 0x00, 0x00, 0x10])),
            Some(1 << 28)
        );
        // Cut short.
        assert_eq!(zstd_window(&with(&[0x04])), None);
        assert_eq!(zstd_window(&with(&[0xe0, 1, 2])), None);
    }

    /// A window lifeboat does not read is named, with the flag `zstd`
    /// needs, and is not called damaged; up to 128 MiB is read.
    #[test]
    fn zstd_windows_up_to_128_mib_are_read_and_larger_ones_named() {
        let dir = tempfile::tempdir().unwrap();
        let (path, tag) = write_archive(dir.path(), Format::Zstd, &data());
        let original = std::fs::read(&path).unwrap();
        assert_eq!(original[4] & 0x20, 0, "lifeboat's frames carry a window");
        // A larger declared window is valid for the same compressed data.
        let mut bytes = original.clone();
        bytes[5] = 17 << 3;
        std::fs::write(&path, &bytes).unwrap();
        read(&path, Some(&tag), None, UNLIMITED).unwrap();
        bytes[5] = 21 << 3;
        std::fs::write(&path, &bytes).unwrap();
        for err in [
            read(&path, Some(&tag), None, UNLIMITED).unwrap_err(),
            read_manifest(&path, Some(&tag)).unwrap_err(),
        ] {
            assert_eq!(err.kind, crate::error::Kind::Archive);
            assert!(
                err.message.contains("2048 MiB zstd window (`--long=31`)")
                    && !err.message.contains("damaged"),
                "{err}"
            );
            assert!(err.hint.unwrap().contains("zstd -d --long=31"));
        }

        // The same in a later frame, seen only while decoding.
        let tar = zstd::decode_all(&original[..]).unwrap();
        let (first, second) = tar.split_at(tar.len() / 2);
        let mut bytes = zstd::encode_all(first, 3).unwrap();
        let at = bytes.len();
        bytes.extend(zstd::encode_all(second, 3).unwrap());
        assert_eq!(bytes[at + 4] & 0x20, 0);
        bytes[at + 5] = 22 << 3;
        std::fs::write(&path, &bytes).unwrap();
        let err = read(&path, Some(&tag), None, UNLIMITED).unwrap_err();
        assert!(
            err.message.contains("larger than 128 MiB") && !err.message.contains("damaged"),
            "{err}"
        );
    }
}
