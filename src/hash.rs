//! Hashing: sha256 as lowercase hex, of a file or of a stream being
//! copied. The archive reader and the directory remote both verify what
//! they copy with these.

use crate::error::{IoContext, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).ctx(format!("cannot open {}", path.display()))?;
    let mut out = io::sink();
    match copy_hashed(&mut file, &mut out) {
        Ok((_, digest)) => Ok(hex(&digest)),
        Err(Failed::Read(e) | Failed::Write(e)) => Err(crate::Error::io(
            format!("cannot read {}", path.display()),
            e,
        )),
    }
}

/// Fill `buf` as far as the stream allows; less only at its end.
pub fn read_up_to(r: &mut (impl Read + ?Sized), buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Why [`copy_hashed`] stopped.
pub enum Failed {
    Read(io::Error),
    Write(io::Error),
}

/// Bytes per buffer handed from the reading thread to the hashing one.
const HASH_CHUNK: usize = 1 << 20;

/// Copy `src` to `out` and return the byte count and sha256. Hashing and
/// writing run on a second thread, fed 1 MiB buffers (at most four exist),
/// so decompressing on this thread never waits for sha256: on two cores
/// this takes a read of a 1 GiB archive from the sum of the two to the
/// larger.
pub fn copy_hashed(
    src: &mut dyn Read,
    out: &mut (dyn Write + Send),
) -> std::result::Result<(u64, [u8; 32]), Failed> {
    std::thread::scope(|s| {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<Vec<u8>>();
        let hashing = s.spawn(move || -> io::Result<(u64, [u8; 32])> {
            let mut hasher = Sha256::new();
            let mut written = 0u64;
            for buf in full_rx {
                out.write_all(&buf)?;
                hasher.update(&buf);
                written += buf.len() as u64;
                let _ = empty_tx.send(buf);
            }
            Ok((written, hasher.finalize().into()))
        });
        let read = (|| {
            loop {
                let mut buf = empty_rx.try_recv().unwrap_or_default();
                buf.resize(HASH_CHUNK, 0);
                let n = read_up_to(src, &mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                buf.truncate(n);
                if full_tx.send(buf).is_err() {
                    // The hashing side stopped on a write error, reported below.
                    return Ok(());
                }
            }
        })();
        drop(full_tx);
        let hashed = hashing.join().expect("the hashing thread panicked");
        read.map_err(Failed::Read)?;
        hashed.map_err(Failed::Write)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_hashed_matches_a_plain_hash_and_reports_write_errors() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut out = Vec::new();
        let (n, digest) = copy_hashed(&mut &data[..], &mut out).unwrap_or_else(|_| panic!());
        assert_eq!(n, data.len() as u64);
        assert_eq!(out, data);
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(&data)));

        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::from_raw_os_error(libc::ENOSPC))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        match copy_hashed(&mut &data[..], &mut Full) {
            Err(Failed::Write(e)) => assert_eq!(e.raw_os_error(), Some(libc::ENOSPC)),
            _ => panic!("a write error must be reported as one"),
        }
    }

    #[test]
    fn file_digest_is_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            sha256_file(&p).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
