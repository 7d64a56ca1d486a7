//! `.lifeboat-remote`: the marker at the root of a directory or rclone
//! remote, saying that the place is a lifeboat remote and which one (a
//! random id, remembered per machine in `remote-ids.json`). Nothing is ever
//! pushed to an unmarked place, so an empty mount point is never mistaken
//! for the drive. One format for both backends, documented in
//! `docs/formats.md`; each backend reads and writes the bytes its own way.

use crate::error::{Error, IoContext, Kind, Result};

/// The marker's name at the root of a remote.
pub const NAME: &str = ".lifeboat-remote";
/// The version of the marker's format that this lifeboat reads and writes.
pub const VERSION: u32 = 1;
/// A marker is a few hundred bytes; anything much larger is not one.
pub const MAX_BYTES: u64 = 64 << 10;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Marker {
    pub marker_version: u32,
    /// 32 random lowercase hex digits.
    pub id: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// The lifeboat that wrote it (information only).
    #[serde(default)]
    pub lifeboat_version: String,
}

impl Marker {
    /// A new marker with a fresh random id.
    pub fn new() -> Result<Marker> {
        let mut bytes = [0u8; 16];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .ctx("cannot read /dev/urandom")?;
        Ok(Marker {
            marker_version: VERSION,
            id: crate::hash::hex(&bytes),
            created_at: chrono::Utc::now(),
            lifeboat_version: env!("CARGO_PKG_VERSION").to_string(),
        })
    }

    /// The marker as written.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a marker always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Parse and check a marker read from `shown`. A marker is untrusted: a
    /// malformed one is refused with `fix` as the hint (it is never
    /// rewritten behind the user's back), and one of a newer version asks
    /// for an upgrade.
    pub fn parse(bytes: &[u8], shown: &str, fix: &str) -> Result<Marker> {
        let damaged = |why: String| {
            Error::new(
                Kind::RemotePermanent,
                format!("{shown} is not a valid remote marker: {why}"),
            )
            .with_hint(fix.to_string())
        };
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
        match value.get("marker_version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(VERSION) => {}
            Some(v) => {
                return Err(Error::new(
                    Kind::RemotePermanent,
                    format!(
                        "{shown} has marker_version {v}; this lifeboat knows version {VERSION}"
                    ),
                )
                .with_hint("it was written by a newer lifeboat: upgrade lifeboat"));
            }
            None => return Err(damaged("no marker_version".into())),
        }
        let marker: Marker = serde_json::from_value(value).map_err(|e| damaged(e.to_string()))?;
        let valid_id = (1..=64).contains(&marker.id.len())
            && marker
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid_id {
            return Err(damaged(format!("id {:?} is not an id", marker.id)));
        }
        Ok(marker)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let m = Marker::new().unwrap();
        assert_eq!(m.id.len(), 32);
        let back = Marker::parse(&m.to_bytes(), "m", "fix it").unwrap();
        assert_eq!(back.id, m.id);
        let newer = br#"{"marker_version": 2, "id": "x", "created_at": "2030-01-01T00:00:00Z"}"#;
        let e = Marker::parse(newer, "m", "fix it").unwrap_err();
        assert!(e.message.contains("marker_version 2"), "{e}");
        let bad_id = br#"{"marker_version": 1, "id": "a/b", "created_at": "2030-01-01T00:00:00Z"}"#;
        let e = Marker::parse(bad_id, "m", "fix it").unwrap_err();
        assert!(e.message.contains("is not an id"), "{e}");
        assert_eq!(e.hint.as_deref(), Some("fix it"));
        for bad in [
            &b"{not json"[..],
            br#"{"marker_version": 1, "id": "../x", "created_at": "2030-01-01T00:00:00Z"}"#,
            br#"{"id": "x"}"#,
        ] {
            let e = Marker::parse(bad, "m", "fix it").unwrap_err();
            assert!(e.message.contains("not a valid remote marker"), "{e}");
            assert_eq!(e.hint.as_deref(), Some("fix it"));
        }
    }
}
