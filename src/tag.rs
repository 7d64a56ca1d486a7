//! Snapshot tags: `snap-<installation>-YYYYMMDDTHHMMSSZ[-manual]`, and the
//! unnamed form `snap-YYYYMMDDTHHMMSSZ[-manual]` that snapshots taken before
//! installations had names (or by a configuration without one) carry.
//!
//! The tag is the snapshot's identity everywhere: archive file name, release
//! tag and asset name, file name on a directory remote, directory inside the
//! archive. It carries the installation that took it, so two installations
//! sharing one remote never take each other's snapshots for their own, and
//! the UTC time the snapshot was taken, so retention can bucket local files
//! and remote releases the same way without trusting mtimes or API
//! timestamps. The grammar is the intersection of what Git tags, GitHub
//! release and asset names, and file names on every common filesystem
//! accept: lowercase ASCII letters, digits and `-`, and basic ISO 8601
//! (a colon is not allowed in a git tag). A tag is read from its end (the
//! time stamp has a fixed length), so an installation name may contain `-`.
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

/// The name of an installation: 1 to [`Installation::MAX`] characters of
/// `a-z`, `0-9` and `-`, starting and ending with a letter or digit. Stored
/// inline so that a [`Tag`] stays `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Installation {
    len: u8,
    bytes: [u8; Installation::MAX],
}

impl Installation {
    pub const MAX: usize = 32;

    /// `None` unless `name` follows the grammar.
    pub fn parse(name: &str) -> Option<Installation> {
        let b = name.as_bytes();
        let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let ok = !b.is_empty()
            && b.len() <= Installation::MAX
            && b.iter().all(|c| edge(c) || *c == b'-')
            && edge(&b[0])
            && edge(&b[b.len() - 1]);
        if !ok {
            return None;
        }
        let mut bytes = [0u8; Installation::MAX];
        bytes[..b.len()].copy_from_slice(b);
        Some(Installation {
            len: b.len() as u8,
            bytes,
        })
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored (see `parse`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }

    /// An installation name made from free text (a host name, a directory
    /// name): lowercased, every other character a `-`, trimmed, shortened.
    /// `None` when nothing usable is left.
    pub fn derive(text: &str) -> Option<Installation> {
        let mut name = String::new();
        for c in text.chars() {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                name.push(c);
            } else if !name.ends_with('-') {
                name.push('-');
            }
        }
        let name: String = name
            .trim_matches('-')
            .chars()
            .take(Installation::MAX)
            .collect();
        Installation::parse(name.trim_end_matches('-'))
    }
}

impl fmt::Debug for Installation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Installation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which snapshots an installation may treat as its own: retention deletes
/// only those, and `list`, `drill`, `verify` and "latest" look only at what
/// it [`Owner::sees`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// This installation's name; `None` for a configuration without one.
    pub installation: Option<Installation>,
    /// Unnamed tags (taken before installations had names) count as this
    /// installation's: `[retention] adopt_unnamed`.
    pub adopt_unnamed: bool,
}

impl Owner {
    /// Is `tag` this installation's, for retention to manage?
    pub fn owns(&self, tag: &Tag) -> bool {
        match tag.installation {
            Some(name) => self.installation == Some(name),
            None => self.installation.is_none() || self.adopt_unnamed,
        }
    }

    /// Is `tag` this installation's, or an unnamed one it may have taken
    /// before it had a name? What it lists, verifies and restores by default.
    pub fn sees(&self, tag: &Tag) -> bool {
        tag.installation.is_none() || self.owns(tag)
    }

    /// Where "the newest snapshot" is chosen from (`restore latest`, `drill`,
    /// `verify --latest`) among `tags` it sees: once this installation has
    /// named snapshots, only those (and adopted unnamed ones). An unnamed
    /// snapshot newer than them cannot be its own, but may be a neighbour's
    /// that has not been named yet.
    pub fn latest_pool(&self, tags: &[Tag]) -> Vec<Tag> {
        let named = |t: &Tag| self.installation.is_some() && t.installation == self.installation;
        if tags.iter().any(named) {
            tags.iter()
                .copied()
                .filter(|t| named(t) || (t.installation.is_none() && self.adopt_unnamed))
                .collect()
        } else {
            tags.iter().copied().filter(|t| self.sees(t)).collect()
        }
    }

    /// Why `tag` is not this installation's, for plans and messages.
    pub fn stranger(&self, tag: &Tag) -> Option<String> {
        if self.owns(tag) {
            return None;
        }
        Some(match tag.installation {
            Some(name) => format!("installation `{name}`'s"),
            None => "unnamed (from before installation names; `[retention] adopt_unnamed = true` lets retention manage it)".to_string(),
        })
    }
}

/// Whose snapshots a command looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Scope {
    /// This installation's and the unnamed ones ([`Owner::sees`]).
    #[default]
    Own,
    /// Every installation's (`list --all`).
    All,
    /// One named installation's (`--installation NAME`): another
    /// installation's snapshots, asked for by name.
    Of(Installation),
}

impl Scope {
    pub fn admits(&self, owner: &Owner, tag: &Tag) -> bool {
        match self {
            Scope::Own => owner.sees(tag),
            Scope::All => true,
            Scope::Of(name) => tag.installation == Some(*name),
        }
    }
}

/// A parsed snapshot tag. Ordered by time, then scheduled before manual,
/// then by installation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag {
    time: DateTime<Utc>,
    kind: Kind,
    /// `None`: an unnamed tag (see the module's documentation).
    installation: Option<Installation>,
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
        Tag {
            time,
            kind,
            installation: None,
        }
    }

    /// The same tag, of installation `name` (`None`: unnamed).
    pub fn of(self, installation: Option<Installation>) -> Tag {
        Tag {
            installation,
            ..self
        }
    }

    /// The installation that took it; `None` for an unnamed tag.
    pub fn installation(&self) -> Option<Installation> {
        self.installation
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
        let (rest, kind) = match rest.strip_suffix(MANUAL_SUFFIX) {
            Some(rest) => (rest, Kind::Manual),
            None => (rest, Kind::Scheduled),
        };
        // The time stamp has a fixed length: read it from the end, and what
        // is before it is `<installation>-` or nothing.
        let (installation, stamp) = match rest.len().checked_sub(16)? {
            0 => (None, rest),
            n if rest.is_char_boundary(n) => {
                let name = rest[..n].strip_suffix('-')?;
                (Some(Installation::parse(name)?), &rest[n..])
            }
            _ => return None,
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
            installation,
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
        f.write_str(PREFIX)?;
        if let Some(name) = &self.installation {
            write!(f, "{name}-")?;
        }
        write!(f, "{}", self.time.format(TIME_FORMAT))?;
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
                .with_hint("tags look like snap-myapp-20261122T014500Z or snap-myapp-20261122T014500Z-manual; `lifeboat list` shows them")
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
        for s in [
            "snap-20261122T014500Z",
            "snap-20240229T235959Z-manual",
            "snap-shop-prod-20261122T014500Z",
            "snap-a-20261122T014500Z-manual",
            "snap-manual-20261122T014500Z",
            "snap-2026-20261122T014500Z",
        ] {
            assert_eq!(Tag::parse(s).unwrap().to_string(), s);
        }
        let t = Tag::parse("snap-shop-prod-20261122T014500Z-manual").unwrap();
        assert_eq!(t.installation().unwrap().as_str(), "shop-prod");
        assert!(t.is_manual());
        assert_eq!(
            Tag::parse("snap-20261122T014500Z").unwrap().installation(),
            None
        );
    }

    #[test]
    fn installation_names() {
        for ok in ["a", "shop-prod", "x1", "0", &"a".repeat(32)] {
            assert!(Installation::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "A",
            "a_b",
            "a.b",
            "a b",
            "é",
            &"a".repeat(33),
        ] {
            assert!(Installation::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            Installation::derive("Web-01.example.com").unwrap().as_str(),
            "web-01-example-com"
        );
        assert_eq!(
            Installation::derive("__My App__").unwrap().as_str(),
            "my-app"
        );
        assert_eq!(
            Installation::derive(&"x".repeat(40))
                .unwrap()
                .as_str()
                .len(),
            32
        );
        assert_eq!(
            Installation::derive("a".repeat(31).to_string().as_str())
                .unwrap()
                .as_str()
                .len(),
            31
        );
        assert!(Installation::derive("___").is_none());
        // Two installations can never produce the same tag.
        let t = Tag::parse("snap-20261122T014500Z").unwrap();
        let a = t.of(Installation::parse("a"));
        let b = t.of(Installation::parse("b"));
        assert_ne!(a.to_string(), b.to_string());
        assert_ne!(a, t);
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
            "snap--20261122T014500Z",
            "snap-Shop-20261122T014500Z",
            "snap-shop_prod-20261122T014500Z",
            "snap-shop-20261122T014500Z-",
            "snap-shop20261122T014500Z",
            "snap-é-20261122T014500Z",
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
