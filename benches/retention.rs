//! Planning retention for 100,000 tags: `cargo bench --bench retention`.
//!
//! About eleven years of hourly snapshots, a manual one every 50 hours and a
//! few foreign names, in shuffled order, under the default policy. Prints the
//! best and median of several runs. Under `cargo test --benches` it plans a
//! small set once, as a smoke check.

use lifeboat::config::RetentionConfig;
use lifeboat::retention::plan;
use lifeboat::tag::{Kind, Tag};
use std::time::{Duration, Instant};

fn names(count: usize) -> Vec<String> {
    let start = chrono::DateTime::parse_from_rfc3339("2016-01-01T00:17:00Z")
        .unwrap()
        .to_utc();
    let mut names: Vec<String> = (0..count)
        .map(|i| {
            let kind = if i % 50 == 49 {
                Kind::Manual
            } else {
                Kind::Scheduled
            };
            Tag::new(start + chrono::Duration::hours(i as i64), kind).to_string()
        })
        .collect();
    names.extend((0..100).map(|i| format!("v1.{i}.0")));
    // A deterministic shuffle: the plan must not depend on input order.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..names.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        names.swap(i, (x % (i as u64 + 1)) as usize);
    }
    names
}

fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let count = if benching { 100_000 } else { 1_000 };
    let names = names(count);
    let policy = RetentionConfig::default();
    let runs = if benching { 7 } else { 1 };
    let mut times: Vec<Duration> = Vec::new();
    let mut kept = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let p = plan(&names, &policy, None);
        times.push(started.elapsed());
        kept = p.kept();
    }
    times.sort();
    println!(
        "retention::plan on {} names ({} kept): best {:.1} ms, median {:.1} ms over {runs} run(s)",
        names.len(),
        kept,
        times[0].as_secs_f64() * 1e3,
        times[times.len() / 2].as_secs_f64() * 1e3,
    );
}
