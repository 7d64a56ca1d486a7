//! Paced writeback for the archive file.
//!
//! Left alone, the kernel keeps the whole archive (hundreds of MiB for a
//! 1 GiB database) dirty in memory until the final fsync, which then writes
//! it in one burst. On ext4 and most journalling filesystems, the
//! application's own commits (an fsync of its WAL) wait behind that burst:
//! the benchmark measured a writer's longest commit going from 15 ms to
//! 112 ms while 300 MiB were fsynced next to it. Starting writeback of every
//! few MiB as soon as it is written, and waiting for the chunk before it,
//! keeps at most two chunks in flight, so the final fsync is short and the
//! application never waits for more than a chunk of our I/O.

use super::follow::Announcer;
use std::fs::File;
use std::io::{self, Write};

/// Bytes per writeback chunk.
const CHUNK: u64 = 8 << 20;

/// A `File` writer that pushes its data to disk progressively.
pub struct PacedFile {
    file: File,
    written: u64,
    /// Start of the chunk not yet handed to the kernel for writeback.
    pending: u64,
    /// Told of every byte written, for a reader checking the file as it
    /// grows (see `follow.rs`).
    announcer: Option<Announcer>,
    /// Tests only: the offset of a byte to flip on its way to the file.
    corrupt_at: Option<u64>,
}

/// Tests flip one byte of the compressed stream between the compressor and
/// the file (a bit flip in memory, a bug in the writer) to prove the
/// read-back check catches it. Only in debug builds: a release binary has
/// no such switch.
const CORRUPT_ENV: &str = "LIFEBOAT_TEST_CORRUPT_ARCHIVE_AT";

fn corrupt_at() -> Option<u64> {
    #[cfg(debug_assertions)]
    return std::env::var(CORRUPT_ENV).ok().and_then(|v| v.parse().ok());
    #[cfg(not(debug_assertions))]
    {
        let _ = CORRUPT_ENV;
        None
    }
}

impl PacedFile {
    pub fn new(file: File) -> PacedFile {
        PacedFile {
            file,
            written: 0,
            pending: 0,
            announcer: None,
            corrupt_at: corrupt_at(),
        }
    }

    pub fn announcing_to(mut self, announcer: Announcer) -> PacedFile {
        self.announcer = Some(announcer);
        self
    }

    pub fn into_inner(self) -> File {
        self.file
    }

    #[cfg(target_os = "linux")]
    fn pace(&mut self) {
        use std::os::fd::AsRawFd;
        while self.written - self.pending >= CHUNK {
            let fd = self.file.as_raw_fd();
            // Advisory only: an error here changes nothing about
            // durability, which the final fsync provides.
            // SAFETY: fd is our open file; the ranges are plain numbers.
            unsafe {
                libc::sync_file_range(
                    fd,
                    self.pending as libc::off64_t,
                    CHUNK as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WRITE,
                );
                if self.pending >= CHUNK {
                    libc::sync_file_range(
                        fd,
                        (self.pending - CHUNK) as libc::off64_t,
                        CHUNK as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WAIT_BEFORE
                            | libc::SYNC_FILE_RANGE_WRITE
                            | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                    );
                }
            }
            self.pending += CHUNK;
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn pace(&mut self) {}
}

impl Write for PacedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match self.corrupt_at {
            Some(at) if (self.written..self.written + buf.len() as u64).contains(&at) => {
                let mut bad = buf.to_vec();
                bad[(at - self.written) as usize] ^= 0x20;
                self.corrupt_at = None;
                self.file.write_all(&bad)?;
                bad.len()
            }
            _ => self.file.write(buf)?,
        };
        self.written += n as u64;
        if let Some(a) = &self.announcer {
            a.advance(n as u64);
        }
        self.pace();
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn writes_every_byte_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(CHUNK as usize * 2 + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut w = PacedFile::new(File::create(&path).unwrap());
        for chunk in data.chunks(1 << 20) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.pending, 2 * CHUNK, "two chunks handed to writeback");
        let f = w.into_inner();
        f.sync_all().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back, data);
    }
}
