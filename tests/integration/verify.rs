//! `list` and `verify` against real archives: good ones, one with a byte
//! flipped in the compressed stream, and one whose database page is damaged
//! behind a manifest that still matches it.

use crate::support::obs::*;
use crate::support::text;
use serde_json::Value;

fn rows(out: &std::process::Output) -> Vec<Value> {
    json(out)["snapshots"].as_array().unwrap().clone()
}

fn tags(out: &std::process::Output) -> Vec<String> {
    rows(out)
        .iter()
        .map(|r| r["tag"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn list_shows_snapshots_newest_first_with_filters() {
    let app = tasks_app("");
    let scheduled = snapshot(&app);
    expect(&app, &["backup-now", "--reason", "before upgrade"], 0);
    // An old snapshot: the same databases as taken on 2025-01-01.
    let old = "snap-20250101T000000Z";
    copy_as(&archive_path(&app, &scheduled), old);
    // Foreign files are not snapshots.
    std::fs::write(app.backup_dir().join("notes.tar.gz"), b"x").unwrap();

    let all = expect(&app, &["--json", "list"], 0);
    let all_rows = rows(&all);
    assert_eq!(all_rows.len(), 3, "{}", text(&all));
    assert!(all_rows[0]["tag"].as_str().unwrap().ends_with("-manual"));
    assert_eq!(all_rows[1]["tag"], scheduled.as_str());
    assert_eq!(all_rows[2]["tag"], old);
    let newest = &all_rows[1];
    assert_eq!(newest["kind"], "scheduled");
    assert_eq!(newest["where"], "local");
    assert!(newest["size"].as_u64().unwrap() > 0);
    assert!(newest["age_secs"].as_i64().unwrap() < 600);
    assert_eq!(newest["local"]["databases"][0]["name"], "tasks");
    assert_eq!(newest["local"]["databases"][0]["schema_version"], 3);

    let manual = expect(&app, &["--json", "list", "--kind", "manual"], 0);
    assert_eq!(tags(&manual).len(), 1);
    assert!(tags(&manual)[0].ends_with("-manual"));
    let sched = expect(&app, &["--json", "list", "--kind", "scheduled"], 0);
    assert_eq!(tags(&sched), [scheduled.clone(), old.to_string()]);

    let recent = expect(&app, &["--json", "list", "--since", "2026-01-01"], 0);
    assert_eq!(tags(&recent).len(), 2);
    // Bare dates are whole days, RFC 3339 is exact, both inclusive.
    let day = expect(&app, &["--json", "list", "--until", "2025-01-01"], 0);
    assert_eq!(tags(&day), [old]);
    let exact = expect(
        &app,
        &[
            "--json",
            "list",
            "--since",
            "2025-01-01T00:00:00Z",
            "--until",
            "2025-01-01T01:00:00+01:00",
        ],
        0,
    );
    assert_eq!(tags(&exact), [old]);
    let none = expect(&app, &["--json", "list", "--until", "2024-12-31"], 0);
    assert!(tags(&none).is_empty());

    let table = stdout(&expect(&app, &["list"], 0));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("TAG"), "{table}");
    assert!(lines[2].starts_with(&scheduled), "{table}");
    assert!(lines[2].contains("tasks v3"), "{table}");
    assert!(lines[2].contains(" local "), "{table}");

    let out = expect(&app, &["list", "--since", "yesterday"], 2);
    assert!(text(&out).contains("RFC 3339"), "{}", text(&out));
    let out = expect(&app, &["list", "--remote"], 2);
    assert!(
        text(&out).contains("no remote is configured"),
        "{}",
        text(&out)
    );
}

#[test]
fn list_flags_damaged_and_renamed_archives() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    // An archive renamed to another tag holds a snapshot it is not named for.
    let renamed = "snap-20250101T000000Z";
    std::fs::copy(archive_path(&app, &tag), archive_path(&app, renamed)).unwrap();
    std::fs::write(archive_path(&app, &tag), b"\x1f\x8bnot really gzip").unwrap();
    let out = expect(&app, &["--json", "list"], 0);
    let rows = rows(&out);
    let error = |i: usize| {
        rows[i]["local"]["manifest_error"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(error(0).contains("damaged"), "{}", rows[0]);
    assert!(error(1).contains(&format!("not {renamed}")), "{}", rows[1]);
    assert!(stdout(&expect(&app, &["list"], 0)).contains("(unreadable:"));
}

#[test]
fn verify_passes_a_good_snapshot() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    let out = expect(&app, &["verify", "--latest"], 0);
    let line = stdout(&out);
    assert!(line.starts_with(&format!("OK    {tag} (local)")), "{line}");
    let out = expect(&app, &["--json", "verify", &tag], 0);
    let v = json(&out);
    assert_eq!(v["ok"], true);
    assert_eq!(v["snapshots"][0]["databases"][0]["integrity"], "ok");
    assert_eq!(v["snapshots"][0]["databases"][0]["rows"], ROWS);
    // Nothing left behind by the scratch directory.
    assert_eq!(app.archives().len(), 1);
    assert!(
        !std::fs::read_dir(app.backup_dir())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(".verify-"))
    );
}

#[test]
fn verify_fails_on_a_flipped_byte() {
    let app = tasks_app("");
    let good = take(&app, "backup-now");
    let bad = snapshot(&app);
    flip_middle_byte(&archive_path(&app, &bad));

    let out = expect(&app, &["verify", &bad], 1);
    assert!(
        stdout(&out).starts_with(&format!("FAIL  {bad}")),
        "{}",
        text(&out)
    );
    // --all checks every snapshot and goes on past the bad one.
    let out = expect(&app, &["--json", "verify", "--all"], 1);
    let v = json(&out);
    assert_eq!(v["ok"], false);
    let verdicts = v["snapshots"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2);
    let by_tag = |t: &str| verdicts.iter().find(|s| s["tag"] == t).unwrap().clone();
    assert_eq!(by_tag(&bad)["ok"], false);
    assert!(by_tag(&bad)["error"].is_string());
    assert_eq!(by_tag(&good)["ok"], true);
}

#[test]
fn verify_reads_the_compressed_stream_to_its_end() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    let path = archive_path(&app, &tag);
    // gzip's trailer: CRC32 then the length, after the last tar block.
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    flip_byte(&path, len - 6);
    let gzip = std::process::Command::new("gzip")
        .arg("-t")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!gzip.status.success(), "gzip -t must see the damage too");

    let out = expect(&app, &["verify", &tag], 1);
    assert!(
        stdout(&out).contains("the compressed stream is damaged"),
        "{}",
        text(&out)
    );
}

/// An archive repacked by hand with GNU tar (same entries, same order) is
/// still a good snapshot, whatever tar's record size: `-b 4096` pads the
/// end with 2 MiB of zeros, in gzip and in zstd.
#[test]
fn verify_accepts_a_snapshot_repacked_by_gnu_tar() {
    for (flag, ext) in [("-z", "tar.gz"), ("--zstd", "tar.zst")] {
        let app = tasks_app("");
        let tag = snapshot(&app);
        let path = archive_path(&app, &tag);
        let unpacked = app.root().join("unpacked");
        std::fs::create_dir(&unpacked).unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("tar")
                .args(args)
                .current_dir(&unpacked)
                .output()
                .unwrap();
            assert!(out.status.success(), "tar {args:?}: {}", text(&out));
        };
        run(&["-xzf", path.to_str().unwrap()]);
        let mut entries = vec![format!("{tag}/MANIFEST.json")];
        for e in crate::support::walk(&unpacked.join(&tag))
            .into_iter()
            .filter(|p| p.is_file())
        {
            let rel = e
                .strip_prefix(&unpacked)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if !rel.ends_with("MANIFEST.json") {
                entries.push(rel);
            }
        }
        std::fs::remove_file(&path).unwrap();
        let repacked = path.with_file_name(format!("{tag}.{ext}"));
        let mut args = vec![flag, "-b", "4096", "-cf", repacked.to_str().unwrap()];
        args.extend(entries.iter().map(String::as_str));
        run(&args);
        let out = expect(&app, &["verify", &tag], 0);
        assert!(stdout(&out).starts_with("OK"), "{ext}: {}", text(&out));
    }
}

#[test]
fn verify_runs_integrity_check_behind_a_matching_sha256() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    corrupt_page_keep_checksums(&archive_path(&app, &tag));

    let out = expect(&app, &["--json", "verify", "--latest"], 1);
    let v = json(&out);
    let snap = &v["snapshots"][0];
    assert!(
        snap["error"].is_null(),
        "sha256 and archive checks pass: {snap}"
    );
    let db = &snap["databases"][0];
    assert_eq!(db["ok"], false, "{db}");
    assert!(
        db["integrity"]
            .as_str()
            .unwrap()
            .starts_with("database `tasks`: PRAGMA integrity_check reports:"),
        "{db}"
    );
    let out = expect(&app, &["verify", &tag], 1);
    assert!(
        stdout(&out).contains("tasks: database `tasks`: PRAGMA integrity_check reports:"),
        "{}",
        text(&out)
    );
}

#[test]
fn verify_refuses_unknown_or_malformed_tags() {
    let app = tasks_app("");
    let out = expect(&app, &["verify", "--latest"], 2);
    assert!(text(&out).contains("no snapshots"), "{}", text(&out));
    snapshot(&app);
    let out = expect(&app, &["verify", "snap-20000101T000000Z"], 2);
    assert!(text(&out).contains("no snapshot snap-20000101T000000Z"));
    let out = expect(&app, &["verify", "yesterday"], 2);
    assert!(text(&out).contains("not a snapshot tag"));
    expect(&app, &["verify"], 2);
    let out = expect(&app, &["verify", "--remote", "--latest"], 2);
    assert!(
        text(&out).contains("no remote is configured"),
        "{}",
        text(&out)
    );
}

#[test]
fn list_and_verify_see_the_dir_remote() {
    let app = tasks_app("[remote.dir]\npath = \"remote\"\n");
    app.set_up_remote();
    let older = take(&app, "backup-now");
    // Same second would order the manual tag after the scheduled one.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let newer = snapshot(&app);
    std::fs::remove_file(archive_path(&app, &older)).unwrap();

    let all = expect(&app, &["--json", "list"], 0);
    let r = rows(&all);
    assert_eq!(tags(&all), [newer.clone(), older.clone()]);
    assert_eq!(r[0]["where"], "both");
    assert_eq!(r[1]["where"], "remote");
    assert!(r[1]["size"].as_u64().unwrap() > 0);
    assert!(r[1]["local"].is_null());
    assert_eq!(
        tags(&expect(&app, &["--json", "list", "--local"], 0)),
        std::slice::from_ref(&newer)
    );
    assert_eq!(
        tags(&expect(&app, &["--json", "list", "--remote"], 0)),
        [newer.clone(), older.clone()]
    );

    let out = expect(&app, &["--json", "verify", "--remote", "--all"], 0);
    let v = json(&out);
    let remote = format!("dir:{}", app.root().join("remote").display());
    assert_eq!(v["snapshots"].as_array().unwrap().len(), 2);
    assert!(
        v["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["source"] == remote.as_str())
    );
    // Nothing downloaded is left beside the local archives.
    assert_eq!(app.archives().len(), 1);

    // Damage the remote copy of the older one: --all still checks both.
    flip_middle_byte(&app.root().join("remote").join(format!("{older}.tar.gz")));
    let out = expect(&app, &["--json", "verify", "--remote", "--all"], 1);
    let v = json(&out);
    let ok: Vec<(String, bool)> = v["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["tag"].as_str().unwrap().to_string(),
                s["ok"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(ok, [(newer, true), (older, false)], "{}", text(&out));
}
