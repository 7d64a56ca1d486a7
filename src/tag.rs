//! Snapshot tags: `snap-YYYYMMDDTHHMMSSZ` and `snap-YYYYMMDDTHHMMSSZ-manual`.
//!
//! The tag is the snapshot's identity everywhere: archive file name, release
//! tag, directory inside the archive. It carries the UTC time the snapshot was
//! taken, so retention can bucket local files and remote releases the same way
//! without trusting mtimes or API timestamps. Basic ISO 8601 is used because a
//! colon is not allowed in a git tag.
//!
//! Anything that does not parse here is not lifeboat's, and lifeboat never
//! deletes it.

use chrono::{DateTime, NaiveDateTime, TimeZone, Timelike, Utc};
use std::fmt;
use std::str::FromStr;

const PREFIX: &str = "snap-";
const MANUAL_SUFFIX: &str = "-manual";
const TIME_FORMAT: &str = "%Y%m%dT%H%M%SZ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Scheduled,
    Manual,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Scheduled => "scheduled",
            Kind::Manual => "manual",
        })
    }
}

/// A parsed snapshot tag. Ordered by time, then scheduled before manual.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    time: DateTime<Utc>,
    kind: Kind,
}

impl PartialOrd for Kind {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Kind {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (*self == Kind::Manual).cmp(&(*other == Kind::Manual))
    }
}

impl Tag {
    /// A tag for `time`, truncated to whole seconds (the tag's resolution).
    pub fn new(time: DateTime<Utc>, kind: Kind) -> Tag {
        let time = time.with_nanosecond(0).expect("0 ns is always valid");
        Tag { time, kind }
    }

    pub fn now(kind: Kind) -> Tag {
        Tag::new(Utc::now(), kind)
    }

    pub fn time(&self) -> DateTime<Utc> {
        self.time
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn is_manual(&self) -> bool {
        self.kind == Kind::Manual
    }

    /// Parse a tag, returning `None` for anything that is not exactly a
    /// lifeboat tag (the common case when scanning foreign names).
    pub fn parse(s: &str) -> Option<Tag> {
        let rest = s.strip_prefix(PREFIX)?;
        let (stamp, kind) = match rest.strip_suffix(MANUAL_SUFFIX) {
            Some(stamp) => (stamp, Kind::Manual),
            None => (rest, Kind::Scheduled),
        };
        // chrono's parser accepts some variations (e.g. fewer digits); insist
        // on the exact shape so that formatting round-trips byte for byte.
        let bytes = stamp.as_bytes();
        let shape_ok = bytes.len() == 16
            && bytes[8] == b'T'
            && bytes[15] == b'Z'
            && bytes[..8].iter().all(u8::is_ascii_digit)
            && bytes[9..15].iter().all(u8::is_ascii_digit);
        if !shape_ok {
            return None;
        }
        let naive = NaiveDateTime::parse_from_str(stamp, TIME_FORMAT).ok()?;
        Some(Tag {
            time: Utc.from_utc_datetime(&naive),
            kind,
        })
    }

    /// The archive file name for this tag and compression format.
    pub fn archive_name(&self, format: Format) -> String {
        format!("{self}.{}", format.extension())
    }

    /// Parse an archive file name (`<tag>.tar.gz` or `<tag>.tar.zst`).
    pub fn from_archive_name(name: &str) -> Option<(Tag, Format)> {
        for format in Format::ALL {
            if let Some(stem) = name.strip_suffix(&format!(".{}", format.extension())) {
                return Tag::parse(stem).map(|t| (t, format));
            }
        }
        None
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Gzip,
    Zstd,
}

/// How an archive is compressed; its file name says which.
impl Format {
    pub const ALL: [Format; 2] = [Format::Gzip, Format::Zstd];

    pub fn extension(self) -> &'static str {
        match self {
            Format::Gzip => "tar.gz",
            Format::Zstd => "tar.zst",
        }
    }

    /// Recognise a compressed stream by its magic bytes, not its name.
    pub fn sniff(head: &[u8]) -> Option<Format> {
        match head {
            [0x1f, 0x8b, ..] => Some(Format::Gzip),
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Some(Format::Zstd),
            _ => None,
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.time.format(TIME_FORMAT))?;
        if self.kind == Kind::Manual {
            f.write_str(MANUAL_SUFFIX)?;
        }
        Ok(())
    }
}

impl FromStr for Tag {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Tag, crate::Error> {
        Tag::parse(s).ok_or_else(|| {
            crate::Error::usage(format!("`{s}` is not a lifeboat snapshot tag"))
                .with_hint("tags look like snap-20261122T014500Z or snap-20261122T014500Z-manual; `lifeboat list` shows them")
        })
    }
}

impl serde::Serialize for Tag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Tag {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Tag, D::Error> {
        let s = String::deserialize(d)?;
        Tag::parse(&s).ok_or_else(|| serde::de::Error::custom(format!("not a lifeboat tag: {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for s in ["snap-20261122T014500Z", "snap-20240229T235959Z-manual"] {
            assert_eq!(Tag::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_foreign_names() {
        for s in [
            "",
            "snap-",
            "v1.0.0",
            "snap-2026-11-22T01:45:00Z",
            "snap-20261122T014500",
            "snap-20261122T014500Z-Manual",
            "snap-20261122T014500Z-manual-2",
            "snap-20261322T014500Z",
            "snap-20261122T014500Zx",
            "snap-2026112T0145000Z",
            "snap-+2026112T014500Z",
            "xsnap-20261122T014500Z",
        ] {
            assert!(Tag::parse(s).is_none(), "{s} should not parse");
        }
    }

    #[test]
    fn truncates_to_seconds_and_orders_by_time() {
        let t = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
            + chrono::Duration::milliseconds(700);
        let a = Tag::new(t, Kind::Scheduled);
        assert_eq!(a.to_string(), "snap-20260102T030405Z");
        let b = Tag::new(t, Kind::Manual);
        let c = Tag::new(t + chrono::Duration::seconds(1), Kind::Scheduled);
        assert!(a < b && b < c);
    }

    #[test]
    fn archive_names() {
        use Format;
        let (t, f) = Tag::from_archive_name("snap-20261122T014500Z-manual.tar.zst").unwrap();
        assert!(t.is_manual());
        assert_eq!(f, Format::Zstd);
        assert_eq!(
            t.archive_name(Format::Gzip),
            "snap-20261122T014500Z-manual.tar.gz"
        );
        assert!(Tag::from_archive_name("snap-20261122T014500Z.tar").is_none());
        assert!(Tag::from_archive_name("notes.tar.gz").is_none());
    }
}
