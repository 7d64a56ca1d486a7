//! Decompressing `.tar.gz` archives, fast for lifeboat's own.
//!
//! lifeboat writes gzip as independent members of at most 1 MiB of input
//! each (see `pgzip.rs`). Such a member fits in memory whole, so it can be
//! handed to libdeflate, which decompresses it in one call about three
//! times as fast as a streaming inflater (zlib-rs through flate2): every
//! snapshot's check, `verify`, `drill` and `restore` read the whole archive.
//!
//! Anything else (a member larger than 1 MiB as `gzip` and `tar czf` write
//! them, a member with optional header fields, damage, garbage after the
//! last member) is handed, from the start of the member libdeflate could not
//! take, to flate2's streaming `MultiGzDecoder`, which words the error.
//! Memory stays bounded either way (4 MiB of input and 1 MiB of output).
//!
//! The two decoders agree on everything lifeboat writes, and on damage: both
//! check each member's CRC32 and length, and every database is then checked
//! against its sha256. They differ on one crafted oddity: libdeflate accepts
//! a deflate block declaring 287-288 literal/length or 31-32 distance codes,
//! which zlib, flate2 and `gzip -d` refuse. Such an archive carries the same
//! bytes either way and cannot pass the sha256 check with other content; it
//! is only an archive that `tar xzf` would refuse and lifeboat reads. No
//! compressor emits it. Members with optional header fields (where
//! libdeflate skips a header CRC without checking it) never take the fast
//! path.

use flate2::read::MultiGzDecoder;
use libdeflate_sys as ffi;
use std::io::{self, Cursor, Read};

/// Largest member output decompressed in one call; lifeboat's own members
/// hold [`super::pgzip::DEFAULT_BLOCK_SIZE`].
const MAX_MEMBER_OUT: usize = super::pgzip::DEFAULT_BLOCK_SIZE;

/// Compressed bytes held at once.
const WINDOW: usize = 4 << 20;

/// Unread input kept in the window before a member is tried. A member with
/// 1 MiB of output is at most a few hundred bytes over 1 MiB compressed, so
/// this always holds a whole member of lifeboat's; a member that does not
/// fit is not ours.
const MIN_UNREAD: usize = 2 << 20;

/// The gzip header's flag byte (RFC 1952 2.3.1): lifeboat sets none.
const FLG: usize = 3;

/// A gzip decoder for one or more members (RFC 1952 section 2.2).
pub struct GzReader<R: Read> {
    state: State<R>,
}

enum State<R: Read> {
    Fast(Fast<R>),
    Streaming(Box<MultiGzDecoder<io::Chain<Cursor<Vec<u8>>, R>>>),
    /// Transitional, while moving from `Fast` to `Streaming`.
    Switching,
}

struct Fast<R> {
    src: R,
    src_done: bool,
    window: Vec<u8>,
    /// `window[start..end]` holds compressed bytes not yet decompressed.
    start: usize,
    end: usize,
    out: Vec<u8>,
    /// `out[out_pos..out_len]` holds decompressed bytes not yet returned.
    out_pos: usize,
    out_len: usize,
    decompressor: Decompressor,
}

impl<R: Read> GzReader<R> {
    pub fn new(src: R) -> GzReader<R> {
        GzReader {
            state: State::Fast(Fast {
                src,
                src_done: false,
                window: vec![0; WINDOW],
                start: 0,
                end: 0,
                out: vec![0; MAX_MEMBER_OUT],
                out_pos: 0,
                out_len: 0,
                decompressor: Decompressor::new(),
            }),
        }
    }

    /// Continue with the streaming decoder from the first byte the fast
    /// path has not consumed.
    fn switch_to_streaming(&mut self) {
        let State::Fast(fast) = std::mem::replace(&mut self.state, State::Switching) else {
            unreachable!("only the fast path switches");
        };
        let rest = fast.window[fast.start..fast.end].to_vec();
        self.state = State::Streaming(Box::new(MultiGzDecoder::new(
            Cursor::new(rest).chain(fast.src),
        )));
    }
}

/// What the fast path managed.
enum Step {
    /// Decompressed bytes are waiting in `out`.
    Member,
    /// The input is exhausted: end of stream.
    End,
    /// Not a member libdeflate takes whole: stream the rest.
    Fallback,
}

impl<R: Read> Fast<R> {
    /// Top the window up to [`MIN_UNREAD`] unread bytes (or the end of the
    /// source), moving what is left to the front first.
    fn fill(&mut self) -> io::Result<()> {
        if self.src_done {
            return Ok(());
        }
        self.window.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < MIN_UNREAD {
            match self.src.read(&mut self.window[self.end..]) {
                Ok(0) => {
                    self.src_done = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn next_member(&mut self) -> io::Result<Step> {
        // Refill before the unread input could be shorter than a member.
        if self.end - self.start < MIN_UNREAD {
            self.fill()?;
        }
        // `fill` stops short of MIN_UNREAD only at the end of the source.
        if self.start == self.end {
            return Ok(Step::End);
        }
        let input = &self.window[self.start..self.end];
        if input.get(FLG) != Some(&0) {
            return Ok(Step::Fallback);
        }
        match self.decompressor.gzip_member(input, &mut self.out) {
            Some((used, produced)) => {
                self.start += used;
                self.out_pos = 0;
                self.out_len = produced;
                Ok(Step::Member)
            }
            None => Ok(Step::Fallback),
        }
    }
}

impl<R: Read> Read for GzReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match &mut self.state {
                State::Streaming(d) => return d.read(buf),
                State::Switching => unreachable!("the switch completes before any read"),
                State::Fast(fast) => {
                    if fast.out_pos < fast.out_len {
                        let n = buf.len().min(fast.out_len - fast.out_pos);
                        buf[..n].copy_from_slice(&fast.out[fast.out_pos..fast.out_pos + n]);
                        fast.out_pos += n;
                        return Ok(n);
                    }
                    match fast.next_member()? {
                        Step::Member => {}
                        Step::End => return Ok(0),
                        Step::Fallback => self.switch_to_streaming(),
                    }
                }
            }
        }
    }
}

/// An owned libdeflate decompressor.
struct Decompressor(*mut ffi::libdeflate_decompressor);

// SAFETY: a libdeflate decompressor has no thread affinity; it is only
// used through `&mut self`, by one thread at a time.
unsafe impl Send for Decompressor {}

impl Decompressor {
    fn new() -> Decompressor {
        // SAFETY: plain allocation; checked for NULL below.
        let d = unsafe { ffi::libdeflate_alloc_decompressor() };
        assert!(!d.is_null(), "out of memory allocating a gzip decompressor");
        Decompressor(d)
    }

    /// Decompress the gzip member at the start of `input` into `out`,
    /// checking its CRC32 and length. Returns (input bytes used, output
    /// bytes), or `None` if it is damaged, truncated or larger than `out`.
    fn gzip_member(&mut self, input: &[u8], out: &mut [u8]) -> Option<(usize, usize)> {
        let mut used = 0usize;
        let mut produced = 0usize;
        // SAFETY: both buffers are valid for the lengths given, and
        // libdeflate writes only within `out` and the two counters.
        let result = unsafe {
            ffi::libdeflate_gzip_decompress_ex(
                self.0,
                input.as_ptr().cast(),
                input.len(),
                out.as_mut_ptr().cast(),
                out.len(),
                &mut used,
                &mut produced,
            )
        };
        (result == ffi::libdeflate_result_LIBDEFLATE_SUCCESS).then_some((used, produced))
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { ffi::libdeflate_free_decompressor(self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn data(n: usize) -> Vec<u8> {
        // Compressible but not trivially so.
        (0..n as u64)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 % 17 + b'a')
            .collect()
    }

    fn pgzip(data: &[u8]) -> Vec<u8> {
        let mut w = super::super::pgzip::ParGzWriter::new(Vec::new(), 6, 2).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn gzip_one_member(data: &[u8]) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        w.write_all(data).unwrap();
        w.finish().unwrap()
    }

    fn read_all(compressed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        // A reader that hands out odd-sized pieces, like a pipe would.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = buf.len().min(self.0.len()).min(77_777);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        GzReader::new(Trickle(compressed)).read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn reads_lifeboats_members_on_the_fast_path() {
        let d = data(9 << 20);
        let z = pgzip(&d);
        let mut r = GzReader::new(&z[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, d);
        assert!(matches!(r.state, State::Fast(_)), "stayed on the fast path");
    }

    #[test]
    fn reads_a_large_single_member_by_streaming() {
        let d = data(5 << 20);
        let z = gzip_one_member(&d);
        let mut r = GzReader::new(&z[..]);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, d);
        assert!(matches!(r.state, State::Streaming(_)));
    }

    #[test]
    fn reads_small_members_then_a_large_one() {
        let (a, b) = (data(3 << 20), data(6 << 20));
        let mut z = pgzip(&a);
        z.extend(gzip_one_member(&b));
        assert_eq!(read_all(&z).unwrap(), [a, b].concat());
    }

    #[test]
    fn empty_members_and_empty_input() {
        assert_eq!(read_all(&pgzip(b"")).unwrap(), b"");
        assert_eq!(read_all(b"").unwrap(), b"");
    }

    #[test]
    fn a_bad_header_crc_is_refused() {
        let d = data(300_000);
        let good = pgzip(&d);
        assert_eq!(good[FLG], 0, "lifeboat sets no header flags");
        // FHCRC set, and a CRC16 that cannot be right after the header.
        let mut bad = good[..10].to_vec();
        bad[FLG] = 0x02;
        bad.extend([0xde, 0xad]);
        bad.extend(&good[10..]);
        assert!(
            read_all(&bad).is_err(),
            "a wrong header CRC must be refused"
        );
        let mut reference = Vec::new();
        assert!(
            MultiGzDecoder::new(&bad[..])
                .read_to_end(&mut reference)
                .is_err()
        );
    }

    #[test]
    fn damage_is_an_error_like_flate2s() {
        let d = data(3 << 20);
        let good = pgzip(&d);
        // A flipped byte in the middle, a cut, and garbage after the end.
        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x55;
        let cut = &good[..good.len() - 5];
        let mut garbage = good.clone();
        garbage.extend(b"this is not gzip");
        for bad in [&flipped[..], cut, &garbage[..]] {
            let ours = read_all(bad);
            let mut reference = Vec::new();
            let theirs = MultiGzDecoder::new(bad).read_to_end(&mut reference);
            assert!(ours.is_err(), "damage must be an error");
            assert!(theirs.is_err(), "flate2 agrees it is damaged");
        }
    }
}
