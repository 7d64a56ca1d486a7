//! Parallel gzip: the input is cut into fixed-size blocks, each compressed
//! into an independent gzip member on a pool of worker threads, and the
//! members are written out in input order.
//!
//! A concatenation of gzip members is itself a valid gzip file (RFC 1952
//! §2.2): `gzip -d`, `tar xzf`, `pigz -d` and flate2's `MultiGzDecoder` read
//! it as one stream. Compression is the dominant cost of a `.tar.gz`
//! snapshot, and a single zlib stream cannot use more than one core.
//!
//! Why independent members rather than pigz's primed dictionaries: members
//! need no coordination between workers and no custom deflate framing, and
//! with 1 MiB blocks losing the 32 KiB history at each boundary costs about
//! a tenth of a percent of size.
//!
//! Each block is compressed whole by libdeflate, which needs no streaming
//! state: on the benchmark's task-store data it uses about a quarter less
//! CPU than zlib-rs at the same level and gives slightly smaller output
//! (`lifeboat-bench --probe-levels FILE` measures both on any file).
//!
//! Why hand-written rather than a crate (e.g. `gzp`): such crates compress
//! through flate2's streaming deflate, the path measured above to cost
//! about a quarter more CPU than libdeflate's whole-block API; this module
//! is small, bounds its memory explicitly (below), and its output is read
//! back by the same verifier as every archive.
//!
//! Memory is bounded and independent of the input size: at most
//! `2 × workers` blocks are in flight (queued, being compressed, or waiting
//! for an earlier block to be written), plus one being filled.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Default block size: large enough that the per-member header and the lost
/// history are negligible, small enough that memory stays a few MiB.
pub const DEFAULT_BLOCK_SIZE: usize = 1 << 20;

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// A `Write` that gzip-compresses on several threads. Call
/// [`ParGzWriter::finish`] to end the stream; dropping it without finishing
/// produces a truncated file.
pub struct ParGzWriter<W: Write> {
    inner: Option<W>,
    level: u32,
    block_size: usize,
    buf: Vec<u8>,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    /// Finished members that arrived before an earlier one.
    parked: BTreeMap<u64, Vec<u8>>,
    next_seq: u64,
    next_out: u64,
    max_in_flight: u64,
    /// The first error, returned again by every later call: after a failed
    /// write the stream is unusable.
    failed: Option<(io::ErrorKind, String)>,
}

impl<W: Write> ParGzWriter<W> {
    /// Compress at `level` (0-9) on `threads` workers (at least one).
    /// Fails only if no worker thread can be started.
    pub fn new(inner: W, level: u32, threads: usize) -> io::Result<ParGzWriter<W>> {
        ParGzWriter::with_block_size(inner, level, threads, DEFAULT_BLOCK_SIZE)
    }

    pub fn with_block_size(
        inner: W,
        level: u32,
        threads: usize,
        block_size: usize,
    ) -> io::Result<ParGzWriter<W>> {
        let threads = threads.max(1);
        let block_size = block_size.max(1);
        let level_number = level.min(9);
        let level = libdeflater::CompressionLvl::new(level_number as i32)
            .expect("levels 0-9 are valid libdeflate levels");
        let max_in_flight = 2 * threads as u64;
        // Queue bound = in-flight bound: `write` never blocks on the queue,
        // only on waiting for the oldest member.
        let (job_tx, job_rx) = mpsc::sync_channel::<Job>(max_in_flight as usize);
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx: Sender<Done> = done_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("pgzip-{i}"))
                .spawn(move || worker(&job_rx, &done_tx, level));
            match spawned {
                Ok(handle) => workers.push(handle),
                // Fewer workers is slower, not wrong; none is an error.
                Err(e) if workers.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(ParGzWriter {
            inner: Some(inner),
            level: level_number,
            block_size,
            buf: Vec::with_capacity(block_size),
            jobs: Some(job_tx),
            done: done_rx,
            workers,
            parked: BTreeMap::new(),
            next_seq: 0,
            next_out: 0,
            max_in_flight,
            failed: None,
        })
    }

    fn check(&self) -> io::Result<()> {
        match &self.failed {
            Some((kind, msg)) => Err(io::Error::new(*kind, msg.clone())),
            None => Ok(()),
        }
    }

    fn fail(&mut self, e: io::Error) -> io::Error {
        if self.failed.is_none() {
            self.failed = Some((e.kind(), e.to_string()));
        }
        e
    }

    /// Hand the current block to the workers, first making room if the
    /// in-flight bound is reached.
    fn dispatch(&mut self) -> io::Result<()> {
        while self.next_seq - self.next_out >= self.max_in_flight {
            self.write_next()?;
        }
        let block = std::mem::replace(&mut self.buf, Vec::with_capacity(self.block_size));
        let jobs = self.jobs.as_ref().expect("jobs open until finish");
        jobs.send((self.next_seq, block))
            .map_err(|_| io::Error::other("the gzip compression threads stopped"))?;
        self.next_seq += 1;
        Ok(())
    }

    /// Wait for the oldest outstanding member and write it.
    fn write_next(&mut self) -> io::Result<()> {
        let member = loop {
            if let Some(m) = self.parked.remove(&self.next_out) {
                break m;
            }
            let (seq, result) = self
                .done
                .recv()
                .map_err(|_| io::Error::other("a gzip compression thread died"))?;
            self.parked.insert(seq, result?);
        };
        self.inner
            .as_mut()
            .expect("inner present until finish")
            .write_all(&member)?;
        self.next_out += 1;
        Ok(())
    }

    fn finish_inner(&mut self) -> io::Result<()> {
        self.check()?;
        if !self.buf.is_empty() || self.next_seq == 0 {
            // An empty input still becomes one (empty) member: a zero-byte
            // file is not valid gzip.
            self.dispatch()?;
        }
        while self.next_out < self.next_seq {
            self.write_next()?;
        }
        self.inner.as_mut().expect("inner present").flush()
    }

    /// Compress what is buffered, wait for every member, write them, and
    /// return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if let Err(e) = self.finish_inner() {
            return Err(self.fail(e));
        }
        self.stop_workers();
        Ok(self.inner.take().expect("inner present"))
    }

    fn stop_workers(&mut self) {
        // Closing the queue ends each worker's loop.
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }

    /// The compression level in use.
    pub fn level(&self) -> u32 {
        self.level
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check()?;
        let room = self.block_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.block_size
            && let Err(e) = self.dispatch()
        {
            return Err(self.fail(e));
        }
        Ok(n)
    }

    /// Members are written only when complete; flushing the inner writer is
    /// all that can be promised mid-stream.
    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl<W: Write> Drop for ParGzWriter<W> {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

fn worker(jobs: &Mutex<Receiver<Job>>, done: &Sender<Done>, level: libdeflater::CompressionLvl) {
    // One compressor per thread, reused for every block.
    let mut compressor = libdeflater::Compressor::new(level);
    loop {
        // Hold the lock only to take a job, not while compressing.
        let job = jobs.lock().map(|rx| rx.recv());
        let Ok(Ok((seq, block))) = job else { return };
        let result = compress_member(&mut compressor, &block);
        if done.send((seq, result)).is_err() {
            return;
        }
    }
}

fn compress_member(compressor: &mut libdeflater::Compressor, block: &[u8]) -> io::Result<Vec<u8>> {
    // libdeflate writes a whole gzip member (header with mtime 0 and no
    // name, so equal input gives an equal archive) into a buffer sized by
    // its own bound, which is therefore never too small.
    let mut out = vec![0u8; compressor.gzip_compress_bound(block.len())];
    let n = compressor
        .gzip_compress(block, &mut out)
        .map_err(|e| io::Error::other(format!("gzip compression failed: {e:?}")))?;
    out.truncate(n);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::{Command, Stdio};

    /// Deterministic, moderately compressible bytes.
    fn sample(len: usize) -> Vec<u8> {
        let words: [&[u8]; 8] = [
            b"task ",
            b"done ",
            b"blocked ",
            b"review ",
            b"alpha ",
            b"42 ",
            b"\n",
            b"queue ",
        ];
        let mut out = Vec::with_capacity(len + 16);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        while out.len() < len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(5) {
                out.push((x >> 32) as u8);
            } else {
                out.extend_from_slice(words[(x >> 40) as usize % words.len()]);
            }
        }
        out.truncate(len);
        out
    }

    fn compress(data: &[u8], threads: usize, block: usize) -> Vec<u8> {
        let mut w = ParGzWriter::with_block_size(Vec::new(), 6, threads, block).unwrap();
        // Odd-sized writes, to cross block boundaries mid-call.
        for chunk in data.chunks(777) {
            w.write_all(chunk).unwrap();
        }
        w.finish().unwrap()
    }

    fn multi_decode(gz: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(gz)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn round_trips_through_multigzdecoder() {
        let data = sample(300_000);
        for threads in [1, 2, 4] {
            let gz = compress(&data, threads, 16 * 1024);
            assert_eq!(multi_decode(&gz), data, "threads = {threads}");
            assert!(gz.len() < data.len() / 2, "compressed {} bytes", gz.len());
        }
    }

    #[test]
    fn many_members_are_written_in_input_order() {
        // Tiny blocks, many workers: completion order varies, output must not.
        let data = sample(200_000);
        let a = compress(&data, 4, 1000);
        let b = compress(&data, 3, 1000);
        assert_eq!(a, b, "output depends only on input and block size");
        assert_eq!(multi_decode(&a), data);
    }

    #[test]
    fn round_trips_through_real_gzip() {
        let data = sample(700_000);
        let gz = compress(&data, 2, 64 * 1024);
        let mut child = Command::new("gzip")
            .arg("-dc")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("gzip must be installed");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&gz).unwrap());
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap();
        assert!(out.status.success(), "gzip -d failed: {:?}", out.status);
        assert_eq!(out.stdout, data);
    }

    #[test]
    fn real_tar_extracts_a_multi_member_tar_gz() {
        let dir = tempfile::tempdir().unwrap();
        let data = sample(500_000);
        let archive = dir.path().join("a.tar.gz");
        let file = std::fs::File::create(&archive).unwrap();
        let gz = ParGzWriter::with_block_size(file, 6, 2, 32 * 1024).unwrap();
        let mut tar = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        tar.append_data(&mut h, "d/x.bin", &data[..]).unwrap();
        tar.into_inner().unwrap().finish().unwrap();
        let out = Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .arg("-C")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(std::fs::read(dir.path().join("d/x.bin")).unwrap(), data);
    }

    #[test]
    fn empty_input_is_valid_gzip() {
        let gz = ParGzWriter::new(Vec::new(), 6, 2)
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(&gz[..2], &[0x1f, 0x8b]);
        assert!(multi_decode(&gz).is_empty());
        let out = Command::new("sh")
            .arg("-c")
            .arg("gzip -dc | wc -c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                c.stdin.take().unwrap().write_all(&gz)?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    }

    #[test]
    fn exact_block_boundaries() {
        let block = 4096;
        for len in [block - 1, block, block + 1, 3 * block, 3 * block + 1] {
            let data = sample(len);
            let gz = compress(&data, 2, block);
            assert_eq!(multi_decode(&gz), data, "len = {len}");
            let members = count_members(&gz);
            assert_eq!(members, len.div_ceil(block), "len = {len}");
        }
        // Written in one call of exactly one block.
        let data = sample(block);
        let mut w = ParGzWriter::with_block_size(Vec::new(), 6, 2, block).unwrap();
        w.write_all(&data).unwrap();
        let gz = w.finish().unwrap();
        assert_eq!(count_members(&gz), 1, "no empty trailing member");
        assert_eq!(multi_decode(&gz), data);
    }

    /// Count gzip members by decoding them one at a time.
    fn count_members(mut gz: &[u8]) -> usize {
        let mut n = 0;
        while !gz.is_empty() {
            let mut dec = flate2::bufread::GzDecoder::new(gz);
            io::copy(&mut dec, &mut io::sink()).unwrap();
            gz = dec.into_inner();
            n += 1;
        }
        n
    }

    #[test]
    fn level_is_clamped_and_used() {
        let data = sample(100_000);
        let w = ParGzWriter::new(Vec::new(), 42, 1).unwrap();
        assert_eq!(w.level(), 9);
        drop(w);
        let mut fast = ParGzWriter::new(Vec::new(), 1, 1).unwrap();
        fast.write_all(&data).unwrap();
        let fast = fast.finish().unwrap();
        let mut stored = ParGzWriter::new(Vec::new(), 0, 1).unwrap();
        stored.write_all(&data).unwrap();
        let stored = stored.finish().unwrap();
        assert!(stored.len() > data.len(), "level 0 stores");
        assert!(fast.len() < data.len() / 2);
        assert_eq!(multi_decode(&stored), data);
    }

    /// Accepts `limit` bytes, then fails every write.
    struct FailAfter {
        limit: usize,
        written: usize,
    }

    impl Write for FailAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.written >= self.limit {
                return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
            }
            let n = buf.len().min(self.limit - self.written);
            self.written += n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_inner_write_error_surfaces_and_sticks() {
        let data = sample(400_000);
        let mut w = ParGzWriter::with_block_size(
            FailAfter {
                limit: 1000,
                written: 0,
            },
            6,
            2,
            8192,
        )
        .unwrap();
        // Either a write or finish must fail; neither may hang or succeed.
        let mut err = None;
        for chunk in data.chunks(5000) {
            if let Err(e) = w.write_all(chunk) {
                err = Some(e);
                break;
            }
        }
        match err {
            Some(e) => {
                assert_eq!(e.kind(), io::ErrorKind::StorageFull);
                // The writer stays failed.
                let again = w.write(b"more").unwrap_err();
                assert_eq!(again.kind(), io::ErrorKind::StorageFull);
                assert!(w.finish().is_err());
            }
            None => {
                let e = w.finish().map(|_| ()).unwrap_err();
                assert_eq!(e.kind(), io::ErrorKind::StorageFull);
            }
        }
    }

    #[test]
    fn an_error_at_finish_surfaces() {
        let data = sample(3000);
        let mut w = ParGzWriter::with_block_size(
            FailAfter {
                limit: 10,
                written: 0,
            },
            6,
            2,
            1 << 20,
        )
        .unwrap();
        w.write_all(&data).unwrap();
        let e = w.finish().map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::StorageFull);
    }
}
