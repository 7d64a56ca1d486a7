//! Honest time. lifeboat judges every age by this machine's clock, and
//! clocks are wrong: a VM resumed with a stale clock, an RTC that NTP then
//! corrects, another machine pushing to the same remote, or a tag planted
//! on the remote. A record or a snapshot tag written by a clock that was
//! ahead carries a time in the future. Clamping such an age to zero made a
//! six-hour-old record read "0s ago" (fresh) until real time caught up, and
//! sorting by tag made a future-dated snapshot "the newest" for every drill,
//! so the real newest was never drilled.
//!
//! This module is the one place that decides what counts as the future
//! ([`ahead`]) and which snapshot is the newest one that is not
//! ([`newest_not_in_future`]); `health`, `list`, `drill` and `verify
//! --latest` all ask it.

use crate::error::Error;
use crate::human;
use crate::tag::Tag;
use chrono::{DateTime, TimeDelta, Utc};

/// How far ahead of this machine's clock a time may be before it counts as
/// "from the future". NTP keeps synchronised clocks within milliseconds, so
/// anything this far ahead is a clock that is wrong, not jitter; but a clock
/// still being slewed into place, or another machine pushing to the same
/// remote, can be a little ahead without anything being amiss. Five minutes
/// tolerates that, and is far below the hourly cadence and the `[health]`
/// thresholds, so a record from the future can never pass for fresh for
/// more than a few minutes.
pub const ALLOWED_SKEW: TimeDelta = TimeDelta::minutes(5);

/// How far `t` is ahead of `now`, when that is more than [`ALLOWED_SKEW`];
/// `None` for a time in the past or within the allowance.
pub fn ahead(t: DateTime<Utc>, now: DateTime<Utc>) -> Option<TimeDelta> {
    let by = t - now;
    (by > ALLOWED_SKEW).then_some(by)
}

/// "The newest snapshot" when some tags may be dated in the future.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Newest {
    /// The newest tag that is not in the future (beyond the allowance).
    pub tag: Option<Tag>,
    /// The tags that are, oldest first: skipped, and reported.
    pub future: Vec<Tag>,
}

/// Choose the newest of `tags` (in any order) that is not in the future as
/// of `now`. A future-dated tag is never "the newest": whether a clock was
/// ahead when it was taken or its name was planted, choosing it would drill
/// or verify the same snapshot every day while the real newest went
/// unchecked.
pub fn newest_not_in_future(tags: &[Tag], now: DateTime<Utc>) -> Newest {
    let (mut future, present): (Vec<Tag>, Vec<Tag>) =
        tags.iter().partition(|t| ahead(t.time(), now).is_some());
    future.sort();
    future.dedup();
    Newest {
        tag: present.into_iter().max(),
        future,
    }
}

impl Newest {
    /// One line per skipped tag, for drill.json's `notes` and verify's
    /// output.
    pub fn notes(&self, now: DateTime<Utc>) -> Vec<String> {
        self.future
            .iter()
            .map(|t| {
                format!(
                    "skipped {t}: dated {} by this machine's clock (taken while a clock was ahead, or planted)",
                    human::ago((now - t.time()).num_seconds())
                )
            })
            .collect()
    }

    /// The chosen tag, or why there is none: every snapshot `place` holds
    /// is in the future, and choosing one of them silently is what this
    /// module exists to prevent. `by_name` is the command that checks one
    /// anyway (`lifeboat drill --tag`), for the hint.
    pub fn chosen(&self, now: DateTime<Utc>, place: &str, by_name: &str) -> crate::Result<Tag> {
        if let Some(tag) = self.tag {
            return Ok(tag);
        }
        let Some(oldest) = self.future.first() else {
            return Err(Error::refused(format!("there are no snapshots {place}")));
        };
        Err(Error::refused(format!(
            "every snapshot {place} is dated in the future by this machine's clock \
             ({} of them; the oldest, {oldest}, is {}): none of them is the newest snapshot",
            self.future.len(),
            human::ago((now - oldest.time()).num_seconds()),
        ))
        .with_hint(format!(
            "check this machine's clock (`date -u`, `timedatectl`); if it is right, they were \
             taken while a clock was ahead (or planted): `lifeboat list` shows them, \
             `{by_name} TAG` checks one by name, and `lifeboat snapshot` takes a correctly dated one"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tag::Kind;

    fn now() -> DateTime<Utc> {
        "2026-11-22T12:00:00Z".parse().unwrap()
    }

    fn at(offset: TimeDelta) -> Tag {
        Tag::new(now() + offset, Kind::Scheduled)
    }

    #[test]
    fn ahead_only_beyond_the_allowance() {
        assert_eq!(ahead(now() - TimeDelta::hours(6), now()), None);
        assert_eq!(ahead(now(), now()), None);
        // Exactly at the allowance is still tolerated; one second past is not.
        assert_eq!(ahead(now() + ALLOWED_SKEW, now()), None);
        let just_past = ALLOWED_SKEW + TimeDelta::seconds(1);
        assert_eq!(ahead(now() + just_past, now()), Some(just_past));
        assert_eq!(
            ahead(now() + TimeDelta::hours(6), now()),
            Some(TimeDelta::hours(6))
        );
    }

    #[test]
    fn newest_skips_the_future_and_reports_it() {
        let real = at(-TimeDelta::minutes(30));
        let older = at(-TimeDelta::hours(2));
        let slightly_ahead = at(TimeDelta::minutes(2));
        let planted = at(TimeDelta::days(300));
        let skewed = at(TimeDelta::hours(6));
        // Unsorted input, as a listing may come.
        let tags = [planted, older, skewed, real];
        let n = newest_not_in_future(&tags, now());
        assert_eq!(n.tag, Some(real));
        assert_eq!(n.future, vec![skewed, planted], "oldest first");
        assert_eq!(
            n.chosen(now(), "on r", "lifeboat drill --tag").unwrap(),
            real
        );

        // Within the allowance a tag is not from the future: it is chosen.
        let n = newest_not_in_future(&[real, slightly_ahead, skewed], now());
        assert_eq!(n.tag, Some(slightly_ahead));
        assert_eq!(n.future, vec![skewed]);

        let notes = n.notes(now());
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with(&format!("skipped {skewed}: dated 6h in the future")),
            "{notes:?}"
        );
    }

    #[test]
    fn all_in_the_future_refuses_with_a_clock_hint() {
        let tags = [at(TimeDelta::hours(6)), at(TimeDelta::hours(7))];
        let n = newest_not_in_future(&tags, now());
        assert_eq!(n.tag, None);
        let e = n
            .chosen(now(), "on dir:/r", "lifeboat drill --tag")
            .unwrap_err();
        assert_eq!(e.kind, crate::error::Kind::Refused);
        assert!(
            e.message
                .contains("every snapshot on dir:/r is dated in the future"),
            "{e}"
        );
        assert!(e.message.contains("2 of them"), "{e}");
        assert!(
            e.message
                .contains(&format!("the oldest, {}, is 6h in the future", tags[0])),
            "{e}"
        );
        let hint = e.hint.unwrap();
        assert!(hint.contains("clock") && hint.contains("lifeboat drill --tag TAG"));
    }

    #[test]
    fn nothing_at_all() {
        let n = newest_not_in_future(&[], now());
        assert_eq!((n.tag, n.future.len()), (None, 0));
        assert!(n.chosen(now(), "in /b", "lifeboat verify").is_err());
    }
}
