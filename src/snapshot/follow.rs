//! Reading a file while it is still being written.
//!
//! Every snapshot archive is read back and checked before it gets its final
//! name. Reading it back only after the last byte was written made that
//! check a second, serial pass (a quarter of a 1 GiB `.tar.gz` snapshot's
//! time). Instead the checker follows the file as it grows: the writer
//! announces every byte that reached the file ([`Publisher::advance`]), and a
//! [`Follower`] reads those bytes back through its own file descriptor,
//! waiting when it has caught up. What it reads is exactly what the writer's
//! `write(2)` calls put in the file, the same bytes a later read-back would
//! see.
//!
//! The writer never waits for the follower: a slow checker costs no memory,
//! only time at the end.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// More bytes may come.
    Open,
    /// Every byte has been written.
    Finished,
    /// The writer gave up; the file will be removed.
    Abandoned,
}

#[derive(Debug)]
struct State {
    written: u64,
    end: End,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    grown: Condvar,
}

/// The writer's side: announces bytes as they reach the file. Dropped
/// without [`Publisher::finish`], it tells followers the file was abandoned,
/// so a follower never waits for a writer that has gone.
#[derive(Debug)]
pub struct Publisher {
    shared: Arc<Shared>,
}

impl Publisher {
    pub fn new() -> Publisher {
        Publisher {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    written: 0,
                    end: End::Open,
                }),
                grown: Condvar::new(),
            }),
        }
    }

    /// A handle for whoever does the writing (see [`Announcer`]).
    pub fn announcer(&self) -> Announcer {
        Announcer {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The file is complete.
    pub fn finish(&self) {
        self.end(End::Finished);
    }

    fn end(&self, end: End) {
        let mut state = self.shared.state.lock().unwrap();
        if state.end == End::Open {
            state.end = end;
        }
        drop(state);
        self.shared.grown.notify_all();
    }

    /// A reader of `file` (opened by the caller on the same path) that
    /// follows what this publisher announces.
    pub fn follower(&self, file: File) -> Follower {
        Follower {
            file,
            pos: 0,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl Default for Publisher {
    fn default() -> Self {
        Publisher::new()
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.end(End::Abandoned);
    }
}

/// Announces bytes as they reach the file; held by the writer at the bottom
/// of the compression stack ([`super::writeback::PacedFile`]), while the
/// [`Publisher`] that decides how the file ends stays with its owner.
#[derive(Debug, Clone)]
pub struct Announcer {
    shared: Arc<Shared>,
}

impl Announcer {
    /// `n` more bytes are in the file.
    pub fn advance(&self, n: u64) {
        self.shared.state.lock().unwrap().written += n;
        self.shared.grown.notify_all();
    }
}

/// Reads a growing file up to what its [`Publisher`] announced; end of file
/// once the publisher finished, an error if it abandoned the file.
#[derive(Debug)]
pub struct Follower {
    file: File,
    pos: u64,
    shared: Arc<Shared>,
}

impl Read for Follower {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let available = {
            let mut state = self.shared.state.lock().unwrap();
            loop {
                if state.written > self.pos {
                    break state.written - self.pos;
                }
                match state.end {
                    End::Finished => return Ok(0),
                    End::Abandoned => {
                        return Err(io::Error::other("the archive being written was abandoned"));
                    }
                    End::Open => state = self.shared.grown.wait(state).unwrap(),
                }
            }
        };
        let want = buf.len().min(available.try_into().unwrap_or(usize::MAX));
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            // The writer announced bytes the file does not have: someone
            // truncated it under us.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive shrank while it was being written",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pair() -> (tempfile::TempDir, File, Publisher, Follower) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let writer = File::create(&path).unwrap();
        let publisher = Publisher::new();
        let follower = publisher.follower(File::open(&path).unwrap());
        (dir, writer, publisher, follower)
    }

    #[test]
    fn reads_everything_written_while_it_grows() {
        let (_dir, mut writer, publisher, mut follower) = pair();
        let announcer = publisher.announcer();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let reader = std::thread::spawn(move || {
            let mut back = Vec::new();
            follower.read_to_end(&mut back).unwrap();
            back
        });
        for chunk in data.chunks(65_537) {
            writer.write_all(chunk).unwrap();
            announcer.advance(chunk.len() as u64);
            std::thread::yield_now();
        }
        publisher.finish();
        assert_eq!(reader.join().unwrap(), data);
    }

    #[test]
    fn never_reads_past_what_was_announced() {
        let (_dir, mut writer, publisher, mut follower) = pair();
        writer.write_all(b"0123456789").unwrap();
        publisher.announcer().advance(4);
        let mut buf = [0u8; 10];
        assert_eq!(follower.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"0123");
        publisher.announcer().advance(6);
        publisher.finish();
        let mut rest = Vec::new();
        follower.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, b"456789");
    }

    #[test]
    fn a_dropped_publisher_wakes_the_follower_with_an_error() {
        let (_dir, _writer, publisher, mut follower) = pair();
        let reader = std::thread::spawn(move || {
            let mut back = Vec::new();
            follower.read_to_end(&mut back)
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(publisher);
        let err = reader.join().unwrap().unwrap_err();
        assert!(err.to_string().contains("abandoned"), "{err}");
    }

    #[test]
    fn finish_after_drop_does_not_revive_the_file() {
        let (_dir, _writer, publisher, mut follower) = pair();
        publisher.end(End::Abandoned);
        publisher.finish();
        assert!(follower.read(&mut [0u8; 1]).is_err());
    }
}
