//! Tiered (grandfather-father-son) retention: one pure plan, two sweeps.
//!
//! [`plan`] decides, for a set of names, which snapshots to keep and why. It
//! buckets each snapshot by the UTC time in its *tag* (never an mtime or an
//! API timestamp), so the local archives and the remote converge on the same
//! selection when they hold the same tags.
//!
//! The semantics are restic's `forget --keep-*`, so that they surprise nobody:
//! scheduled snapshots are walked newest first, and every tier with slots left
//! keeps a snapshot whose bucket differs from the last bucket that tier kept.
//! Each tier therefore keeps the newest snapshot of its N most recent
//! non-empty buckets; tiers are ORed. Manual snapshots are kept by count
//! alone. The newest scheduled snapshot and the one just taken are always
//! kept, and a name that is not a lifeboat tag is never deleted.

use crate::config::{Config, RetentionConfig};
use crate::error::Result;
use crate::record::{FailedDeletion, RetentionResult, SweepResult};
use crate::remote::{Remote, RemoteSnapshot};
use crate::tag::Format;
use crate::tag::{Owner, Tag};
use chrono::{DateTime, Datelike, Utc};
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// A time-bucketed tier of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Tier {
    pub const ALL: [Tier; 5] = [
        Tier::Hourly,
        Tier::Daily,
        Tier::Weekly,
        Tier::Monthly,
        Tier::Yearly,
    ];

    /// The tier's keep count in `policy` (`None` = unbounded).
    pub fn cap(self, policy: &RetentionConfig) -> Option<u32> {
        match self {
            Tier::Hourly => policy.hourly,
            Tier::Daily => policy.daily,
            Tier::Weekly => policy.weekly,
            Tier::Monthly => policy.monthly,
            Tier::Yearly => policy.yearly,
        }
    }

    /// A number identifying the bucket of `t`; equal iff same bucket, and
    /// monotonic in time (the walk relies on buckets never coming back).
    fn bucket(self, t: DateTime<Utc>) -> i64 {
        match self {
            Tier::Hourly => t.timestamp().div_euclid(3600),
            Tier::Daily => t.num_days_from_ce() as i64,
            // ISO week: 2024-12-30 belongs to 2025-W01, not to 2024.
            Tier::Weekly => {
                let w = t.iso_week();
                w.year() as i64 * 100 + w.week() as i64
            }
            Tier::Monthly => t.year() as i64 * 12 + t.month0() as i64,
            Tier::Yearly => t.year() as i64,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Tier::Hourly => "hourly",
            Tier::Daily => "daily",
            Tier::Weekly => "weekly",
            Tier::Monthly => "monthly",
            Tier::Yearly => "yearly",
        }
    }
}

/// Why a snapshot is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Uses slot `slot` of a time tier; `time` is the snapshot's, for the label.
    Tier {
        tier: Tier,
        slot: u32,
        cap: Option<u32>,
        time: DateTime<Utc>,
    },
    Manual {
        slot: u32,
        cap: Option<u32>,
    },
    Newest,
    JustTaken,
    PendingPush,
    /// Every tier (manual included) is set to 0: the policy keeps everything.
    AllTiersOff,
    Foreign,
    /// Another installation's (or an unnamed one not adopted): never this
    /// installation's to delete, and it takes no slot of its policy.
    NotOurs(String),
    /// The newest snapshot holding every database (`last_success`): while
    /// later ones are partial, it holds the newest copy of what they lack.
    NewestComplete,
}

fn slot(slot: u32, cap: Option<u32>) -> String {
    match cap {
        Some(cap) => format!("{slot}/{cap}"),
        None => format!("{slot}/unbounded"),
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // An hour's label would repeat the tag itself; its slot says more.
            Reason::Tier {
                tier: Tier::Hourly,
                slot: n,
                cap,
                ..
            } => write!(f, "hourly {}", slot(*n, *cap)),
            Reason::Tier { tier, time, .. } => {
                let label = match tier {
                    Tier::Weekly => {
                        let w = time.iso_week();
                        format!("{}-W{:02}", w.year(), w.week())
                    }
                    Tier::Daily => time.format("%Y-%m-%d").to_string(),
                    Tier::Monthly => time.format("%Y-%m").to_string(),
                    _ => time.format("%Y").to_string(),
                };
                write!(f, "{} {label}", tier.name())
            }
            Reason::Manual { slot: n, cap } => write!(f, "manual {}", slot(*n, *cap)),
            Reason::Newest => f.write_str("newest"),
            Reason::JustTaken => f.write_str("just taken"),
            Reason::PendingPush => f.write_str("pending push"),
            Reason::AllTiersOff => f.write_str("every tier is 0: keep all"),
            Reason::Foreign => f.write_str("not a lifeboat tag, never deleted"),
            Reason::NotOurs(whose) => write!(f, "{whose}, never deleted here"),
            Reason::NewestComplete => f.write_str("newest complete snapshot"),
        }
    }
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Keep,
    Delete,
}

/// The decision for one name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Entry {
    pub name: String,
    #[serde(skip)]
    pub tag: Option<Tag>,
    pub decision: Decision,
    pub reasons: Vec<Reason>,
}

/// A decision per distinct name: lifeboat tags newest first, then foreign
/// names sorted. The same set of names always gives the same plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Plan {
    pub entries: Vec<Entry>,
}

impl Plan {
    /// Tags the plan deletes, newest first.
    pub fn deleted(&self) -> impl Iterator<Item = Tag> + '_ {
        self.entries
            .iter()
            .filter(|e| e.decision == Decision::Delete)
            .filter_map(|e| e.tag)
    }

    /// How many lifeboat tags the plan keeps.
    pub fn kept(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| e.tag.is_some() && e.decision == Decision::Keep)
            .count()
    }

    /// Keep `tags` whatever the policy says, for `reason`.
    pub fn protect(&mut self, tags: &[Tag], reason: Reason) {
        let tags: HashSet<&Tag> = tags.iter().collect();
        for e in &mut self.entries {
            if e.tag.as_ref().is_some_and(|t| tags.contains(t)) {
                e.reasons.push(reason.clone());
                e.decision = Decision::Keep;
            }
        }
    }
}

/// Plan retention for `names` under `policy`, every tag being ours (a
/// configuration without an installation name, and the tests).
pub fn plan<S: AsRef<str>>(
    names: &[S],
    policy: &RetentionConfig,
    just_taken: Option<&Tag>,
) -> Plan {
    let everyone = Owner {
        installation: None,
        adopt_unnamed: true,
    };
    plan_for(names, policy, just_taken, &everyone)
}

/// Plan retention for `owner`'s snapshots among `names` under `policy`.
/// `just_taken` is always kept; tags that are not `owner`'s are kept and
/// take no slot, so that installations sharing a remote each keep exactly
/// their own policy's snapshots.
pub fn plan_for<S: AsRef<str>>(
    names: &[S],
    policy: &RetentionConfig,
    just_taken: Option<&Tag>,
    owner: &Owner,
) -> Plan {
    let mut tags = Vec::with_capacity(names.len());
    let mut foreign = Vec::new();
    let mut strangers = Vec::new();
    for name in names {
        match Tag::parse(name.as_ref()) {
            Some(tag) => match owner.stranger(&tag) {
                None => tags.push(tag),
                Some(whose) => strangers.push((tag, whose)),
            },
            None => foreign.push(name.as_ref().to_string()),
        }
    }
    strangers.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
    strangers.dedup();
    // Newest first; ties are impossible between distinct tags.
    tags.sort_unstable_by(|a, b| b.cmp(a));
    tags.dedup();
    foreign.sort_unstable();
    foreign.dedup();

    let caps = Tier::ALL.map(|t| t.cap(policy));
    let keep_all = caps.iter().chain([&policy.manual]).all(|c| *c == Some(0));
    // Per tier: slots used, and the bucket it kept last.
    let mut used = [0u32; 5];
    let mut last = [None::<i64>; 5];
    let mut manual_used = 0u32;
    let mut newest_seen = false;

    let mut entries = Vec::with_capacity(tags.len() + foreign.len());
    for tag in tags {
        let mut reasons = Vec::new();
        if Some(&tag) == just_taken {
            reasons.push(Reason::JustTaken);
        }
        if keep_all {
            reasons.push(Reason::AllTiersOff);
        } else if tag.is_manual() {
            if policy.manual.is_none_or(|cap| manual_used < cap) {
                manual_used += 1;
                reasons.push(Reason::Manual {
                    slot: manual_used,
                    cap: policy.manual,
                });
            }
        } else {
            if !newest_seen {
                newest_seen = true;
                reasons.push(Reason::Newest);
            }
            for (i, tier) in Tier::ALL.into_iter().enumerate() {
                if caps[i].is_some_and(|cap| used[i] >= cap) {
                    continue;
                }
                let bucket = tier.bucket(tag.time());
                if last[i] != Some(bucket) {
                    last[i] = Some(bucket);
                    used[i] += 1;
                    reasons.push(Reason::Tier {
                        tier,
                        slot: used[i],
                        cap: caps[i],
                        time: tag.time(),
                    });
                }
            }
        }
        entries.push(Entry {
            name: tag.to_string(),
            tag: Some(tag),
            decision: if reasons.is_empty() {
                Decision::Delete
            } else {
                Decision::Keep
            },
            reasons,
        });
    }
    entries.extend(strangers.into_iter().map(|(tag, whose)| Entry {
        name: tag.to_string(),
        tag: Some(tag),
        decision: Decision::Keep,
        reasons: vec![Reason::NotOurs(whose)],
    }));
    entries.extend(foreign.into_iter().map(|name| Entry {
        name,
        tag: None,
        decision: Decision::Keep,
        reasons: vec![Reason::Foreign],
    }));
    Plan { entries }
}

// ---------------------------------------------------------------------------
// Listings: how the local directory and a remote become names to plan on.

/// Names to plan on from a backup directory's file names: the tag of every
/// `<tag>.tar.gz|zst`, and foreign archive-looking names as they are (so the
/// plan reports them). Lock files, records and markers are not snapshots.
pub fn local_names<S: AsRef<str>>(file_names: &[S]) -> Vec<String> {
    file_names
        .iter()
        .map(AsRef::as_ref)
        .filter_map(|name| match Tag::from_archive_name(name) {
            Some((tag, _)) => Some(tag.to_string()),
            None if is_archive_like(name) => Some(name.to_string()),
            None => None,
        })
        .collect()
}

fn is_archive_like(name: &str) -> bool {
    !name.starts_with('.')
        && Format::ALL
            .iter()
            .any(|f| name.ends_with(&format!(".{}", f.extension())))
}

/// Names to plan on from a remote listing. Drafts are unfinished pushes that
/// the next push converges; they are neither counted nor deleted.
pub fn remote_names(listing: &[RemoteSnapshot]) -> Vec<String> {
    listing
        .iter()
        .filter(|s| !s.draft)
        .map(|s| s.tag.to_string())
        .collect()
}

// ---------------------------------------------------------------------------
// Sweeps.

/// Plan on the local archives in `backup_dir` and delete what the plan
/// deletes (unless `dry_run`). `protect` (snapshots not yet pushed) is kept
/// whatever the policy says.
pub fn sweep_local(
    config: &Config,
    protect: &[Tag],
    just_taken: Option<&Tag>,
    dry_run: bool,
) -> Result<(Plan, SweepResult)> {
    let store = config.store();
    let files = store.file_names()?;
    let mut plan = plan_for(
        &local_names(&files),
        &config.retention,
        just_taken,
        &config.owner(),
    );
    plan.protect(protect, Reason::PendingPush);
    if just_taken.is_none() {
        keep_newest_complete(config, &mut plan);
    }
    let result = carry_out(&plan, dry_run, "local", |tag| store.delete_archive(tag));
    Ok((plan, result))
}

/// Plan on the remote's listing and delete what the plan deletes (unless
/// `dry_run`).
pub fn sweep_remote(
    remote: &dyn Remote,
    config: &Config,
    just_taken: Option<&Tag>,
    dry_run: bool,
) -> Result<(Plan, SweepResult)> {
    let listing = remote.list()?;
    let mut plan = plan_for(
        &remote_names(&listing),
        &config.retention,
        just_taken,
        &config.owner(),
    );
    if just_taken.is_none() {
        keep_newest_complete(config, &mut plan);
    }
    let place = remote.describe();
    let result = carry_out(&plan, dry_run, &place, |tag| remote.delete(tag));
    Ok((plan, result))
}

/// Keep the newest snapshot that holds every database (the run record's
/// `last_success`), whatever the policy says: after partial snapshots it
/// holds the newest copy of what they lack, and a manual `prune` must not
/// delete it. (The sweep after a snapshot runs only when that snapshot is
/// complete, and keeps it as just taken.)
fn keep_newest_complete(config: &Config, plan: &mut Plan) {
    let record = crate::record::RunRecord::load(&config.store().last_run())
        .ok()
        .flatten();
    if let Some(s) = record.and_then(|r| r.last_success) {
        plan.protect(&[s.tag], Reason::NewestComplete);
    }
}

/// Delete what `plan` deletes, one by one. A failed deletion is logged and
/// recorded, and the sweep goes on: the next run tries again.
fn carry_out(
    plan: &Plan,
    dry_run: bool,
    place: &str,
    mut delete: impl FnMut(&Tag) -> Result<()>,
) -> SweepResult {
    let mut result = SweepResult {
        kept: plan.kept(),
        ..SweepResult::default()
    };
    if dry_run {
        return result;
    }
    for tag in plan.deleted() {
        match delete(&tag) {
            Ok(()) => {
                tracing::info!(%tag, place, "snapshot deleted by retention");
                // A plan keeps for reasons and deletes for lack of one.
                let reason = match tag.kind() {
                    crate::tag::Kind::Manual => {
                        "retention: older than the manual snapshots the policy keeps"
                    }
                    crate::tag::Kind::Scheduled => {
                        "retention: no hourly, daily, weekly, monthly or yearly slot of the policy keeps it"
                    }
                };
                crate::audit::log(crate::audit::Event::SnapshotDeleted {
                    tag: tag.to_string(),
                    place: place.to_string(),
                    reason: reason.to_string(),
                });
                result.deleted.push(tag);
            }
            Err(e) => {
                tracing::warn!(%tag, place, error = %e.message, "cannot delete snapshot; the next run tries again");
                result.failed.push(FailedDeletion {
                    tag,
                    error: e.message,
                });
            }
        }
    }
    result
}

/// Sweep local archives, then each remote, after a snapshot. Never fails:
/// a sweep that cannot run is logged and left for the next run. A remote is
/// swept only once its own queue is empty: the others' do not hold it up.
pub fn sweep_after_snapshot(
    config: &Config,
    remotes: &[Box<dyn Remote>],
    just_taken: &Tag,
) -> RetentionResult {
    let store = config.store();
    // Local archives are kept while any remote still waits for them.
    let names: Vec<&str> = remotes.iter().map(|r| r.name()).collect();
    let pending = store.pending_anywhere(&names);
    let local = match sweep_local(config, &pending, Some(just_taken), false) {
        Ok((_, result)) => Some(result),
        Err(e) => {
            tracing::warn!(error = %e.message, "local retention sweep failed; the next run tries again");
            None
        }
    };
    let mut swept = BTreeMap::new();
    let mut first = None;
    for (i, remote) in remotes.iter().enumerate() {
        let remote = remote.as_ref();
        // An unpushed snapshot means this remote failed this run: leave it
        // alone until its pushes catch up, rather than prune a remote that
        // is behind (and call a failing remote again). One it refuses for
        // good (too large) is not catching up: it must not stop the sweep
        // forever.
        let waiting = store
            .pending(remote.name())
            .iter()
            .filter(|t| {
                store
                    .refusal(t, remote.name())
                    .is_none_or(|r| !r.holds_for(&remote.describe()))
            })
            .count();
        if waiting > 0 {
            tracing::warn!(remote = %remote.describe(), pending = waiting, "snapshots still to push; the remote sweep waits for them");
            continue;
        }
        match sweep_remote(remote, config, Some(just_taken), false) {
            Ok((_, result)) => {
                if i == 0 {
                    first = Some(result.clone());
                }
                swept.insert(remote.name().to_string(), result);
            }
            Err(e) => {
                tracing::warn!(remote = %remote.describe(), error = %e.message, "remote retention sweep failed; the next run tries again");
            }
        }
    }
    RetentionResult {
        local,
        remote: first,
        remotes: swept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDateTime, TimeZone};
    use proptest::prelude::*;

    /// `"2026-11-20 13:05"` as a scheduled tag name (`m` suffix: manual).
    fn t(s: &str) -> String {
        let (time, manual) = match s.strip_suffix(" m") {
            Some(time) => (time, true),
            None => (s, false),
        };
        let naive = NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M").unwrap();
        let kind = if manual {
            crate::tag::Kind::Manual
        } else {
            crate::tag::Kind::Scheduled
        };
        Tag::new(Utc.from_utc_datetime(&naive), kind).to_string()
    }

    fn policy(tiers: [Option<u32>; 5], manual: Option<u32>) -> RetentionConfig {
        let [hourly, daily, weekly, monthly, yearly] = tiers;
        RetentionConfig {
            hourly,
            daily,
            weekly,
            monthly,
            yearly,
            manual,
            adopt_unnamed: false,
        }
    }

    #[test]
    fn another_installations_snapshots_are_kept_and_take_no_slot() {
        use crate::tag::Installation;
        let a = Installation::parse("a");
        let b = Installation::parse("b");
        let me = Owner {
            installation: a,
            adopt_unnamed: false,
        };
        // Hourly, alternately A's and B's, plus an unnamed one.
        let names: Vec<String> = (0..6)
            .map(|h| {
                let tag = Tag::parse(&t(&format!("2026-11-20 1{h}:05"))).unwrap();
                tag.of(if h % 2 == 0 { a } else { b }).to_string()
            })
            .chain([t("2026-11-19 09:00")])
            .collect();
        let plan = plan_for(&names, &only(&[(Tier::Hourly, 2)]), None, &me);
        let deleted: Vec<String> = plan.deleted().map(|t| t.to_string()).collect();
        // A keeps its own newest two (14:05, 12:05) and deletes 10:05 only.
        assert_eq!(deleted, vec!["snap-a-20261120T100500Z"]);
        for e in &plan.entries {
            let tag = e.tag.unwrap();
            if tag.installation() != a {
                assert_eq!(e.decision, Decision::Keep, "{}", e.name);
                assert!(matches!(e.reasons[0], Reason::NotOurs(_)), "{e:?}");
            }
        }
        // Adopting the unnamed ones makes them A's to prune.
        let adopting = Owner {
            adopt_unnamed: true,
            ..me
        };
        let plan = plan_for(&names, &only(&[(Tier::Hourly, 2)]), None, &adopting);
        assert!(plan.deleted().any(|t| t.installation().is_none()));
    }

    /// Only the given tiers on, everything else 0.
    fn only(tiers: &[(Tier, u32)]) -> RetentionConfig {
        let caps = Tier::ALL.map(|tier| {
            let cap = tiers
                .iter()
                .find(|(t, _)| *t == tier)
                .map_or(0, |(_, c)| *c);
            Some(cap)
        });
        policy(caps, Some(0))
    }

    fn kept(plan: &Plan) -> Vec<String> {
        let mut v: Vec<String> = plan
            .entries
            .iter()
            .filter(|e| e.decision == Decision::Keep)
            .map(|e| e.name.clone())
            .collect();
        v.sort();
        v
    }

    fn reasons(plan: &Plan, name: &str) -> Vec<String> {
        let e = plan.entries.iter().find(|e| e.name == name).unwrap();
        e.reasons.iter().map(ToString::to_string).collect()
    }

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = names.iter().map(|s| t(s)).collect();
        v.sort();
        v
    }

    #[test]
    fn iso_week_crosses_the_year_boundary() {
        // 2024-12-30 (Monday) is in 2025-W01, with 2025-01-05; 2024-12-29
        // (Sunday) is the newest of 2024-W52.
        let names = [
            t("2024-12-23 12:00"),
            t("2024-12-29 12:00"),
            t("2024-12-30 12:00"),
            t("2025-01-05 12:00"),
        ];
        let p = plan(&names, &only(&[(Tier::Weekly, 3)]), None);
        assert_eq!(kept(&p), sorted(&["2024-12-29 12:00", "2025-01-05 12:00"]));
        assert_eq!(
            reasons(&p, &t("2025-01-05 12:00")),
            ["newest", "weekly 2025-W01"]
        );
        assert_eq!(reasons(&p, &t("2024-12-29 12:00")), ["weekly 2024-W52"]);
        let p = plan(&[t("2024-12-30 00:00")], &only(&[(Tier::Weekly, 1)]), None);
        assert_eq!(reasons(&p, &t("2024-12-30 00:00"))[1], "weekly 2025-W01");
    }

    #[test]
    fn leap_day_is_its_own_day() {
        let names = [
            t("2024-02-28 23:00"),
            t("2024-02-29 10:00"),
            t("2024-02-29 22:00"),
            t("2024-03-01 00:30"),
        ];
        let p = plan(&names, &only(&[(Tier::Daily, 3), (Tier::Monthly, 2)]), None);
        assert_eq!(
            kept(&p),
            sorted(&["2024-02-28 23:00", "2024-02-29 22:00", "2024-03-01 00:30"])
        );
        assert_eq!(
            reasons(&p, &t("2024-02-29 22:00")),
            ["daily 2024-02-29", "monthly 2024-02"]
        );
        // The monthly slots are used up by March and February.
        assert_eq!(reasons(&p, &t("2024-02-28 23:00")), ["daily 2024-02-28"]);
        assert!(reasons(&p, &t("2024-02-29 10:00")).is_empty());
    }

    #[test]
    fn an_empty_month_uses_no_slot() {
        let names = [
            t("2026-01-15 09:00"),
            t("2026-01-20 09:00"),
            t("2026-03-10 09:00"),
            t("2026-04-01 09:00"),
            t("2026-04-30 09:00"),
        ];
        let p = plan(&names, &only(&[(Tier::Monthly, 3)]), None);
        assert_eq!(
            kept(&p),
            sorted(&["2026-01-20 09:00", "2026-03-10 09:00", "2026-04-30 09:00"])
        );
        assert_eq!(reasons(&p, &t("2026-01-20 09:00")), ["monthly 2026-01"]);
    }

    #[test]
    fn fewer_snapshots_than_slots() {
        let names = [
            t("2026-11-20 10:05"),
            t("2026-11-20 10:35"),
            t("2026-11-20 11:00"),
            t("2026-11-20 12:00"),
        ];
        let p = plan(&names, &RetentionConfig::default(), None);
        // 10:05 shares every bucket with the newer 10:35.
        assert_eq!(
            kept(&p),
            sorted(&["2026-11-20 10:35", "2026-11-20 11:00", "2026-11-20 12:00"])
        );
        assert_eq!(reasons(&p, &t("2026-11-20 10:35")), ["hourly 3/24"]);
        assert_eq!(p.deleted().count(), 1);
    }

    #[test]
    fn one_snapshot_fills_every_tier() {
        let name = t("2026-11-20 13:00");
        let p = plan(
            std::slice::from_ref(&name),
            &RetentionConfig::default(),
            None,
        );
        assert_eq!(
            reasons(&p, &name),
            [
                "newest",
                "hourly 1/24",
                "daily 2026-11-20",
                "weekly 2026-W47",
                "monthly 2026-11",
                "yearly 2026"
            ]
        );
    }

    #[test]
    fn hours_then_days() {
        let names: Vec<String> = [
            "2026-11-19 20:00",
            "2026-11-19 21:00",
            "2026-11-19 22:00",
            "2026-11-19 23:00",
            "2026-11-20 00:00",
            "2026-11-20 01:00",
            "2026-11-20 02:00",
        ]
        .iter()
        .map(|s| t(s))
        .collect();
        let p = plan(&names, &only(&[(Tier::Hourly, 3), (Tier::Daily, 2)]), None);
        assert_eq!(
            kept(&p),
            sorted(&[
                "2026-11-19 23:00",
                "2026-11-20 00:00",
                "2026-11-20 01:00",
                "2026-11-20 02:00"
            ])
        );
        assert_eq!(reasons(&p, &t("2026-11-19 23:00")), ["daily 2026-11-19"]);
        assert_eq!(reasons(&p, &t("2026-11-20 00:00")), ["hourly 3/3"]);
    }

    #[test]
    fn manual_snapshots_are_kept_by_count_in_their_own_bucket() {
        // 50 manual snapshots, one a day, and two scheduled ones older than
        // all of them: the manual ones never use a tier slot.
        let mut names: Vec<String> = (1..=50)
            .map(|d| {
                let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap()
                    + chrono::Duration::days(d);
                t(&format!("{} 08:00 m", day.format("%Y-%m-%d")))
            })
            .collect();
        names.push(t("2025-12-01 08:00"));
        names.push(t("2025-11-01 08:00"));
        let policy = policy([Some(24), Some(7), Some(4), Some(1), Some(0)], Some(20));
        let p = plan(&names, &policy, None);
        let manual_kept: Vec<&Entry> = p
            .entries
            .iter()
            .filter(|e| e.tag.unwrap().is_manual() && e.decision == Decision::Keep)
            .collect();
        assert_eq!(manual_kept.len(), 20);
        // The 20 newest: 2026-02-01 down to 2026-02-20.
        assert_eq!(manual_kept[0].name, t("2026-02-20 08:00 m"));
        assert_eq!(
            manual_kept[0].reasons,
            [Reason::Manual {
                slot: 1,
                cap: Some(20)
            }]
        );
        assert_eq!(manual_kept[19].name, t("2026-02-01 08:00 m"));
        assert_eq!(reasons(&p, &t("2026-02-01 08:00 m")), ["manual 20/20"]);
        // The newest scheduled snapshot is the newest of its kind, not overall.
        assert_eq!(
            reasons(&p, &t("2025-12-01 08:00")),
            [
                "newest",
                "hourly 1/24",
                "daily 2025-12-01",
                "weekly 2025-W49",
                "monthly 2025-12"
            ]
        );
        assert_eq!(
            reasons(&p, &t("2025-11-01 08:00")),
            ["hourly 2/24", "daily 2025-11-01", "weekly 2025-W44"]
        );
        assert_eq!(p.deleted().count(), 30);
    }

    #[test]
    fn foreign_names_are_never_deleted() {
        let names = [
            "v1.0.0".to_string(),
            t("2026-11-20 10:00"),
            "snap-2026".to_string(),
            t("2026-11-20 10:30"),
            "notes.tar.gz".to_string(),
        ];
        let p = plan(&names, &RetentionConfig::default(), None);
        assert_eq!(p.deleted().collect::<Vec<_>>().len(), 1);
        let tail: Vec<&str> = p.entries[2..].iter().map(|e| e.name.as_str()).collect();
        assert_eq!(tail, ["notes.tar.gz", "snap-2026", "v1.0.0"]);
        for e in &p.entries[2..] {
            assert_eq!(e.decision, Decision::Keep);
            assert_eq!(reasons(&p, &e.name), ["not a lifeboat tag, never deleted"]);
        }
    }

    #[test]
    fn just_taken_and_all_off() {
        let names = [
            t("2026-11-20 10:00 m"),
            t("2026-11-20 09:00 m"),
            t("2026-11-20 08:00"),
        ];
        let off = policy([Some(0); 5], Some(0));
        let p = plan(&names, &off, None);
        assert_eq!(kept(&p).len(), 3, "every tier off keeps everything");
        assert_eq!(reasons(&p, &names[0]), ["every tier is 0: keep all"]);

        let no_manual = policy([Some(1); 5], Some(0));
        let just = Tag::parse(&names[0]).unwrap();
        let p = plan(&names, &no_manual, Some(&just));
        assert_eq!(
            kept(&p),
            sorted(&["2026-11-20 08:00", "2026-11-20 10:00 m"])
        );
        assert_eq!(reasons(&p, &names[0]), ["just taken"]);
    }

    #[test]
    fn unbounded_tiers_keep_every_bucket() {
        let names: Vec<String> = (0..30)
            .map(|h| t(&format!("2026-11-{:02} {:02}:00", 1 + h / 3, 8 * (h % 3))))
            .collect();
        let daily_unbounded = RetentionConfig {
            daily: None,
            ..only(&[])
        };
        let p = plan(&names, &daily_unbounded, None);
        assert_eq!(kept(&p).len(), 10);
        assert!(reasons(&p, &t("2026-11-01 16:00")).contains(&"daily 2026-11-01".to_string()));
    }

    #[test]
    fn protect_keeps_a_pending_push() {
        let names = [t("2026-11-20 10:00"), t("2026-11-20 10:30")];
        let mut p = plan(&names, &RetentionConfig::default(), None);
        let old = Tag::parse(&names[0]).unwrap();
        assert_eq!(p.deleted().collect::<Vec<_>>(), [old]);
        p.protect(&[old], Reason::PendingPush);
        assert_eq!(p.deleted().count(), 0);
        assert_eq!(reasons(&p, &names[0]), ["pending push"]);
    }

    // -----------------------------------------------------------------------
    // Properties.

    /// Tags over about three years, at minute resolution so that hours, days
    /// and weeks are both shared and not.
    fn arb_tags() -> impl Strategy<Value = Vec<Tag>> {
        let start = Utc.with_ymd_and_hms(2023, 12, 25, 0, 0, 0).unwrap();
        prop::collection::vec((0u32..3 * 366 * 24 * 60, prop::bool::weighted(0.2)), 0..120)
            .prop_map(move |v| {
                v.into_iter()
                    .map(|(minute, manual)| {
                        let kind = if manual {
                            crate::tag::Kind::Manual
                        } else {
                            crate::tag::Kind::Scheduled
                        };
                        Tag::new(start + chrono::Duration::minutes(minute as i64), kind)
                    })
                    .collect()
            })
    }

    fn arb_cap() -> impl Strategy<Value = Option<u32>> {
        prop_oneof![Just(None), (0u32..6).prop_map(Some)]
    }

    fn arb_policy() -> impl Strategy<Value = RetentionConfig> {
        (prop::array::uniform5(arb_cap()), arb_cap()).prop_map(|(t, m)| policy(t, m))
    }

    fn names_of(tags: &[Tag]) -> Vec<String> {
        tags.iter().map(ToString::to_string).collect()
    }

    proptest! {
        #[test]
        fn planning_what_is_kept_keeps_all_of_it(tags in arb_tags(), policy in arb_policy(), pick in any::<prop::sample::Index>()) {
            let mut names = names_of(&tags);
            names.push("v1.2.3".into());
            let just = (!tags.is_empty()).then(|| tags[pick.index(tags.len())]);
            let first = plan(&names, &policy, just.as_ref());
            let kept: Vec<String> = first.entries.iter().filter(|e| e.decision == Decision::Keep).map(|e| e.name.clone()).collect();
            let second = plan(&kept, &policy, just.as_ref());
            prop_assert_eq!(second.deleted().count(), 0);
            if let Some(just) = just {
                prop_assert!(!first.deleted().any(|t| t == just));
            }
        }

        #[test]
        fn newest_scheduled_is_always_kept(tags in arb_tags(), policy in arb_policy()) {
            let p = plan(&names_of(&tags), &policy, None);
            if let Some(newest) = tags.iter().filter(|t| !t.is_manual()).max() {
                prop_assert!(!p.deleted().any(|t| t == *newest));
            }
        }

        #[test]
        fn no_tier_exceeds_its_cap_and_each_keeps_the_newest_of_its_newest_buckets(tags in arb_tags(), policy in arb_policy()) {
            let p = plan(&names_of(&tags), &policy, None);
            for tier in Tier::ALL {
                let by_tier: Vec<Tag> = p.entries.iter()
                    .filter(|e| e.reasons.iter().any(|r| matches!(r, Reason::Tier { tier: x, .. } if *x == tier)))
                    .filter_map(|e| e.tag)
                    .collect();
                if let Some(cap) = tier.cap(&policy) {
                    prop_assert!(by_tier.len() <= cap as usize, "{tier:?}: {} > {cap}", by_tier.len());
                }
                // A model of the rule: the newest scheduled snapshot of each
                // of the tier's `cap` most recent non-empty buckets.
                let all_off = Tier::ALL.iter().all(|t| t.cap(&policy) == Some(0)) && policy.manual == Some(0);
                if all_off { continue; }
                let mut newest_per_bucket: std::collections::BTreeMap<i64, Tag> = Default::default();
                for tag in tags.iter().filter(|t| !t.is_manual()) {
                    let e = newest_per_bucket.entry(tier.bucket(tag.time())).or_insert(*tag);
                    if *tag > *e { *e = *tag; }
                }
                let take = tier.cap(&policy).map_or(usize::MAX, |c| c as usize);
                let mut model: Vec<Tag> = newest_per_bucket.values().rev().take(take).copied().collect();
                model.sort_by(|a, b| b.cmp(a));
                prop_assert_eq!(by_tier, model, "{:?}", tier);
            }
            let manual = p.entries.iter().filter(|e| e.reasons.iter().any(|r| matches!(r, Reason::Manual { .. }))).count();
            if let Some(cap) = policy.manual {
                prop_assert!(manual <= cap as usize);
            }
        }

        #[test]
        fn input_order_does_not_matter(tags in arb_tags(), policy in arb_policy(), seed in any::<u64>()) {
            let mut names = names_of(&tags);
            names.extend(["zz".to_string(), "snap-1".to_string()]);
            let mut shuffled = names.clone();
            // A cheap deterministic shuffle driven by the seed.
            let mut x = seed | 1;
            for i in (1..shuffled.len()).rev() {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                shuffled.swap(i, (x % (i as u64 + 1)) as usize);
            }
            // Duplicates (one tag as .tar.gz and .tar.zst) collapse too.
            shuffled.extend(names.iter().take(3).cloned());
            prop_assert_eq!(plan(&names, &policy, None), plan(&shuffled, &policy, None));
        }

        #[test]
        fn local_and_remote_listings_plan_alike(tags in arb_tags(), policy in arb_policy(), zstd in prop::collection::vec(any::<bool>(), 120)) {
            let mut files: Vec<String> = tags.iter().zip(&zstd).map(|(t, z)| {
                t.archive_name(if *z { Format::Zstd } else { Format::Gzip })
            }).collect();
            files.extend(["lifeboat.lock", "last_run.json", ".snap-20260101T000000Z.tar.gz.tmp"].map(String::from));
            files.extend(tags.iter().take(2).map(|t| format!("{t}.pending-push")));
            let listing: Vec<RemoteSnapshot> = tags.iter().zip(&zstd).map(|(t, z)| RemoteSnapshot {
                tag: *t,
                asset_name: t.archive_name(if *z { Format::Zstd } else { Format::Gzip }),
                size: 1,
                sha256: None,
                draft: false,
                parts: vec![],
            }).collect();
            prop_assert_eq!(
                plan(&local_names(&files), &policy, None),
                plan(&remote_names(&listing), &policy, None)
            );
        }
    }

    #[test]
    fn drafts_are_not_planned_on() {
        let tag = Tag::parse(&t("2026-11-20 10:00")).unwrap();
        let draft = RemoteSnapshot {
            tag,
            asset_name: tag.archive_name(Format::Gzip),
            size: 1,
            sha256: None,
            draft: true,
            parts: vec![],
        };
        assert!(remote_names(&[draft]).is_empty());
    }
}
