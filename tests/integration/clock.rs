//! Clocks that lie, with real processes: a snapshot run while this
//! machine's clock was 6 hours ahead (libfaketime under the real binary),
//! then every other command at the real time; and a future-dated tag planted
//! on a directory remote. Nothing may call a record from the future fresh,
//! show its age as 0, or drill or verify it as "the newest" snapshot.
//!
//! The wrong clock is libfaketime's ([`crate::support::faketime`]).

use crate::support::faketime::with_clock;
use crate::support::obs::*;
use crate::support::{App, text};
use chrono::{Duration, Utc};
use lifeboat::tag::{Kind, Tag};
use std::process::Output;

const SIX_HOURS: i64 = 6 * 3600;

/// Run lifeboat with its wall clock moved by `offset` (e.g. `+6h`),
/// expecting exit code `code`.
fn faked(app: &App, offset: &str, args: &[&str], code: i32) -> Output {
    let out = with_clock(&mut app.cmd(args), offset).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "FAKETIME={offset} {args:?}\n{}",
        text(&out)
    );
    out
}

/// A snapshot taken while the clock was 6 hours ahead; its tag, checked to
/// really be from the future (so the test proves libfaketime took effect).
fn snapshot_from_the_future(app: &App) -> String {
    let out = faked(app, "+6h", &["--json", "snapshot"], 0);
    let tag = json(&out)["snapshot"]["tag"].as_str().unwrap().to_string();
    let ahead = Tag::parse(&tag).unwrap().time() - Utc::now();
    assert!(
        ahead > Duration::hours(5),
        "{tag} is not in the future: libfaketime had no effect"
    );
    tag
}

#[test]
fn a_run_from_the_future_is_clock_skew_not_fresh() {
    let app = tasks_app("");
    let real = snapshot(&app);
    expect(&app, &["drill"], 0);
    expect(&app, &["health"], 0);

    let future = snapshot_from_the_future(&app);

    // Back at the real time: not "OK ... 0s ago", but a clock-skew warning.
    let out = expect(&app, &["health"], 1);
    let summary = stdout(&out);
    // The first line is short (the problem cut to fit); the problem line
    // has it whole.
    assert!(
        summary.starts_with("LIFEBOAT WARNING - clock skew: the last run (`snapshot`)"),
        "{summary}"
    );
    assert!(
        summary.contains("WARNING: clock skew: the last run (`snapshot`) is 5h 59m in the future")
            || summary
                .contains("WARNING: clock skew: the last run (`snapshot`) is 6h in the future"),
        "{summary}"
    );
    for line in summary.lines().filter(|l| !l.starts_with("drill:")) {
        assert!(!line.contains("0s ago"), "{summary}");
    }
    let report = json(&expect(&app, &["--json", "health"], 1));
    assert_eq!(report["status"], "WARNING");
    assert_eq!(report["last_success"]["tag"], future.as_str());
    let age = report["last_success"]["age_secs"].as_i64().unwrap();
    assert!(
        (-SIX_HOURS..-SIX_HOURS + 300).contains(&age),
        "age_secs {age} is not about -6h: {report}"
    );
    assert!(
        report["clock_skew"][0]["ahead_secs"].as_i64().unwrap() > SIX_HOURS - 300,
        "{report}"
    );

    // The drill at the real time skips the snapshot from the future.
    let rec = json(&expect(&app, &["--json", "drill"], 0));
    assert_eq!(rec["tag"], real.as_str(), "{rec}");
    let notes = rec["notes"].to_string();
    assert!(
        notes.contains(&format!("skipped {future}: dated ")) && notes.contains("in the future"),
        "{rec}"
    );
    let drill_json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(app.backup_dir().join("drill.json")).unwrap())
            .unwrap();
    assert_eq!(drill_json["notes"], rec["notes"], "the note is recorded");

    // list: the future snapshot's age as it is.
    let listed = json(&expect(&app, &["--json", "list"], 0));
    let rows = listed["snapshots"].as_array().unwrap();
    assert_eq!(rows[0]["tag"], future.as_str());
    assert_eq!(rows[0]["future"], true);
    assert!(rows[0]["age_secs"].as_i64().unwrap() < -SIX_HOURS + 300);
    assert_eq!(rows[1]["tag"], real.as_str());
    assert_eq!(rows[1]["future"], false);
    assert!(rows[1]["age_secs"].as_i64().unwrap() >= 0);
    let out = expect(&app, &["list"], 0);
    let table = stdout(&out);
    let line = table.lines().find(|l| l.starts_with(&future)).unwrap();
    assert!(
        line.contains(" in 5h 59m ") || line.contains(" in 6h "),
        "{table}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "warning: 1 snapshot(s) dated in the future by this machine's clock ({future})"
        )),
        "{}",
        text(&out)
    );
}

#[test]
fn every_snapshot_from_the_future_refuses_drill_and_verify_latest() {
    let app = tasks_app("");
    let future = snapshot_from_the_future(&app);

    let out = expect(&app, &["drill"], 1);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains(&format!(
            "every snapshot in {} is dated in the future by this machine's clock",
            app.backup_dir().display()
        )),
        "{err}"
    );
    assert!(err.contains(&future), "{err}");
    assert!(err.contains("hint: check this machine's clock"), "{err}");
    let rec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(app.backup_dir().join("drill.json")).unwrap())
            .unwrap();
    assert_eq!(rec["outcome"], "failed");
    assert!(
        rec["notes"]
            .to_string()
            .contains(&format!("skipped {future}")),
        "{rec}"
    );

    let out = expect(&app, &["verify", "--latest"], 1);
    assert!(
        text(&out).contains("is dated in the future by this machine's clock"),
        "{}",
        text(&out)
    );

    // Asked for by name, it is checked like any other.
    let rec = json(&expect(&app, &["--json", "drill", "--tag", &future], 0));
    assert_eq!(rec["tag"], future.as_str());
    expect(&app, &["verify", &future], 0);
}

#[test]
fn a_future_dated_tag_on_the_remote_is_not_the_newest() {
    let app = tasks_app("[remote.dir]\npath = \"remote\"\n");
    app.set_up_remote();
    snapshot(&app);
    let real = take(&app, "backup-now");

    // A consistent archive, with its sidecar, under a tag 6 hours ahead:
    // what a machine with a fast clock (or an intruder) leaves on the remote.
    let remote = app.root().join("remote");
    let planted = Tag::new(Utc::now() + Duration::hours(6), Kind::Scheduled).to_string();
    copy_as(&remote.join(format!("{real}.tar.gz")), &planted);
    let planted_file = remote.join(format!("{planted}.tar.gz"));
    let digest = lifeboat::hash::sha256_file(&planted_file).unwrap();
    std::fs::write(
        remote.join(format!("{planted}.tar.gz.sha256")),
        format!("{digest}  {planted}.tar.gz\n"),
    )
    .unwrap();

    let rec = json(&expect(&app, &["--json", "drill"], 0));
    assert_eq!(rec["tag"], real.as_str(), "the real newest: {rec}");
    assert!(
        rec["notes"]
            .to_string()
            .contains(&format!("skipped {planted}: dated ")),
        "{rec}"
    );

    let verified = json(&expect(
        &app,
        &["--json", "verify", "--remote", "--latest"],
        0,
    ));
    assert_eq!(verified["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(verified["snapshots"][0]["tag"], real.as_str());
    assert!(
        verified["notes"]
            .to_string()
            .contains(&format!("skipped {planted}")),
        "{verified}"
    );
    let out = stdout(&expect(&app, &["verify", "--remote", "--latest"], 0));
    let mut lines = out.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with(&format!("note: skipped {planted}: dated ")),
        "{out}"
    );
    assert!(
        lines.next().unwrap().starts_with(&format!("OK    {real} ")),
        "{out}"
    );
    // Asked for by name, the planted copy is checked like any other (it is
    // a consistent archive; whether to trust it is for a human to say).
    expect(&app, &["verify", "--remote", &planted], 0);

    // list shows how far ahead it is.
    let listed = json(&expect(&app, &["--json", "list", "--remote"], 0));
    let row = &listed["snapshots"][0];
    assert_eq!(row["tag"], planted.as_str());
    assert_eq!(row["where"], "remote");
    assert_eq!(row["future"], true);
    let age = row["age_secs"].as_i64().unwrap();
    assert!(
        (-SIX_HOURS..-SIX_HOURS + 300).contains(&age),
        "age_secs {age}: {listed}"
    );
}
