//! The GitHub remote against the real `gh` (every installed version) and
//! the GitHub Releases emulator: push (plain, after transient faults, after
//! a leftover draft, into an existing release), listing beyond one page,
//! delete, download, doctor, and the permanent faults.

use crate::support::gh::{Emulator, GhBin, REPO, gh_bins, github_config};
use crate::support::{App, sqlite, text};
use lifeboat::config::GithubConfig;
use lifeboat::error::Kind;
use lifeboat::remote::Remote;
use lifeboat::remote::github::GithubRemote;
use lifeboat::tag::Tag;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// An app with one database and a `[github]` remote using `gh`.
fn app(gh: &Path, timeout: &str) -> App {
    let app = App::new();
    sqlite(
        &app.data_dir().join("app.db"),
        "CREATE TABLE t(x); INSERT INTO t VALUES (1),(2),(3);",
    );
    app.write_config(&format!(
        "[[database]]\nname = \"app\"\npath = \"app.db\"\n{}",
        github_config(gh, timeout)
    ));
    app
}

/// Run lifeboat with gh pointed at the emulator.
fn run(app: &App, emu: &Emulator, args: &[&str]) -> std::process::Output {
    let mut cmd = app.cmd(args);
    emu.env(&mut cmd);
    cmd.output().expect("run lifeboat")
}

/// The library remote, through a wrapper that points gh at the emulator.
fn remote(emu: &Emulator, gh: &GhBin, attempts: u32, timeout: Duration) -> GithubRemote {
    GithubRemote::new(GithubConfig {
        repo: REPO.into(),
        gh: emu.wrapper(gh),
        timeout,
        attempts,
        backoff: Duration::from_millis(10),
        part_size: lifeboat::config::DEFAULT_PART_SIZE,
    })
}

fn tag_of(app: &App) -> String {
    app.last_run()["snapshot"]["tag"]
        .as_str()
        .expect("snapshot tag in last_run.json")
        .to_string()
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The pushed release is published, alone for its tag, and holds exactly
/// the local archive (size and digest).
fn assert_pushed(app: &App, emu: &Emulator, gh: &GhBin) {
    let tag = tag_of(app);
    let rels = emu.releases_for(&tag);
    assert_eq!(
        rels.len(),
        1,
        "{}: one release for {tag}: {rels:#?}",
        gh.version
    );
    let rel = &rels[0];
    assert_eq!(rel["draft"], false, "{}: published", gh.version);
    assert_eq!(
        rel["name"],
        tag.as_str(),
        "{}: title is the tag",
        gh.version
    );
    let archive = app.backup_dir().join(&app.archives()[0]);
    let bytes = std::fs::read(&archive).unwrap();
    let name = archive.file_name().unwrap().to_str().unwrap();
    let asset = rel["assets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{}: asset {name} in {rel:#}", gh.version));
    assert_eq!(asset["size"], bytes.len() as u64);
    assert_eq!(asset["digest"], format!("sha256:{}", sha256_hex(&bytes)));
    assert!(
        emu.repo_state()["tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == tag.as_str()),
        "{}: the git tag exists",
        gh.version
    );
    let pending: Vec<_> = std::fs::read_dir(app.backup_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".pending-push"))
        .collect();
    assert!(
        pending.is_empty(),
        "{}: no pending-push marker left",
        gh.version
    );
}

#[test]
fn push_plain() {
    for gh in gh_bins("push_plain") {
        let emu = Emulator::start();
        let app = app(&gh.path, "30s");
        let out = run(&app, &emu, &["snapshot"]);
        assert!(out.status.success(), "{}: {}", gh.version, text(&out));
        assert_pushed(&app, &emu, &gh);
        let record = app.last_run();
        assert_eq!(record["push"]["status"], "pushed", "{}", gh.version);
        assert_eq!(record["push"]["attempts"], 1, "{}", gh.version);
        assert_eq!(record["push"]["remote"], format!("github:{REPO}"));
        let rel = &emu.releases_for(&tag_of(&app))[0];
        assert!(
            rel["body"].as_str().unwrap().contains(&tag_of(&app)),
            "notes summarise the manifest: {rel:#}"
        );
    }
}

#[test]
fn push_retries_transient_faults() {
    for gh in gh_bins("push_retries_transient_faults") {
        let emu = Emulator::start();
        // Attempt 1: the listing answers 503. Attempt 2: every upload try
        // of gh (it makes 4) is reset. Attempt 3 goes through.
        emu.faults(json!([
            {"op": "release_list", "nth": 1, "times": 1, "action": "status", "status": 503},
            {"op": "upload", "nth": 1, "times": 4, "action": "reset"},
        ]));
        let app = app(&gh.path, "30s");
        let out = run(&app, &emu, &["snapshot"]);
        assert!(out.status.success(), "{}: {}", gh.version, text(&out));
        assert_pushed(&app, &emu, &gh);
        assert_eq!(app.last_run()["push"]["attempts"], 3, "{}", gh.version);

        // Rate limits (403 and 429) are transient too.
        let emu = Emulator::start();
        emu.faults(json!([
            {"op": "release_list", "nth": 1, "times": 1, "action": "rate_limit"},
            {"op": "release_create", "nth": 1, "times": 1, "action": "secondary_rate_limit"},
        ]));
        let app2 = crate::support::App::new();
        sqlite(&app2.data_dir().join("app.db"), "CREATE TABLE t(x);");
        app2.write_config(&format!(
            "[[database]]\nname = \"app\"\npath = \"app.db\"\n{}",
            github_config(&gh.path, "30s")
        ));
        let out = run(&app2, &emu, &["snapshot"]);
        assert!(out.status.success(), "{}: {}", gh.version, text(&out));
        assert_pushed(&app2, &emu, &gh);
        assert_eq!(app2.last_run()["push"]["attempts"], 3, "{}", gh.version);
    }
}

#[test]
fn push_gives_up_after_attempts_and_next_run_pushes() {
    for gh in gh_bins("push_gives_up_after_attempts_and_next_run_pushes") {
        let emu = Emulator::start();
        emu.faults(json!([{"op": "release_list", "times": 0, "action": "status", "status": 502}]));
        let app = app(&gh.path, "30s");
        // Both snapshots fall in one hour; every retention tier 0 keeps both,
        // so the first release can be checked after the sweep.
        let config = std::fs::read_to_string(app.config_path()).unwrap();
        std::fs::write(
            app.config_path(),
            format!("{config}[retention]\nhourly = 0\ndaily = 0\nweekly = 0\nmonthly = 0\nyearly = 0\nmanual = 0\n"),
        )
        .unwrap();
        let out = run(&app, &emu, &["snapshot"]);
        assert_eq!(out.status.code(), Some(1), "{}: {}", gh.version, text(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("gave up after 3 attempt(s)"),
            "{}: {stderr}",
            gh.version
        );
        assert!(stderr.contains("502"), "{}: {stderr}", gh.version);
        assert_eq!(emu.count("release_list"), 3, "{}: 3 attempts", gh.version);
        assert_eq!(app.last_run()["push"]["status"], "failed");
        assert_eq!(app.last_run()["push"]["error"]["kind"], "remote_transient");
        assert_eq!(
            app.last_run()["push"]["attempts"],
            3,
            "the record says how hard it tried"
        );
        let first = tag_of(&app);

        // The network is back: the next run pushes the leftover first.
        emu.faults(json!([]));
        std::thread::sleep(Duration::from_millis(1100)); // a new tag second
        let out = run(&app, &emu, &["snapshot"]);
        assert!(out.status.success(), "{}: {}", gh.version, text(&out));
        let pushed = app.last_run()["push"]["pushed"].clone();
        assert_eq!(
            pushed[0],
            first.as_str(),
            "{}: oldest first: {pushed}",
            gh.version
        );
        assert_eq!(pushed.as_array().unwrap().len(), 2);
        assert_eq!(emu.releases_for(&first).len(), 1);
    }
}

#[test]
fn push_converges_a_draft_left_by_a_killed_gh() {
    for gh in gh_bins("push_converges_a_draft_left_by_a_killed_gh") {
        let emu = Emulator::start();
        // The first upload stalls: gh has no timeout of its own, so
        // lifeboat kills it, and the draft it created stays behind.
        emu.faults(
            json!([{"op": "upload", "nth": 1, "times": 1, "action": "stall", "seconds": 60}]),
        );
        let app = app(&gh.path, "5s");
        let out = run(&app, &emu, &["snapshot"]);
        assert!(out.status.success(), "{}: {}", gh.version, text(&out));
        assert_pushed(&app, &emu, &gh);
        assert_eq!(app.last_run()["push"]["attempts"], 2, "{}", gh.version);
        assert_eq!(
            emu.count("release_create"),
            1,
            "{}: no second draft",
            gh.version
        );
        assert!(
            emu.count("release_update") >= 1,
            "{}: the draft was published",
            gh.version
        );
    }
}

#[test]
fn push_deletes_duplicate_drafts_and_fills_an_existing_release() {
    for gh in gh_bins("push_deletes_duplicate_drafts_and_fills_an_existing_release") {
        let emu = Emulator::start();
        let tmp = tempfile::tempdir().unwrap();
        // gh reads `FILE#label`: a `#` in the directory must not matter.
        let dir = tmp.path().join("backups #1");
        std::fs::create_dir(&dir).unwrap();
        let remote = remote(&emu, &gh, 3, Duration::from_secs(30));

        // Two drafts from earlier blind re-runs, one with a partial asset.
        let tag = Tag::parse("snap-20260102T030405Z").unwrap();
        let archive = dir.join(format!("{tag}.tar.gz"));
        std::fs::write(&archive, b"the whole archive").unwrap();
        emu.add_release(
            &tag.to_string(),
            true,
            &[(&format!("{tag}.tar.gz"), b"the wh")],
        );
        emu.add_release(&tag.to_string(), true, &[]);
        let outcome = remote.push(&tag, &archive, "notes").unwrap();
        assert_eq!(outcome.attempts, 1, "{}", gh.version);
        let rels = emu.releases_for(&tag.to_string());
        assert_eq!(
            rels.len(),
            1,
            "{}: duplicates deleted: {rels:#?}",
            gh.version
        );
        assert_eq!(rels[0]["draft"], false, "{}", gh.version);
        let assets = rels[0]["assets"].as_array().unwrap();
        assert_eq!(assets.len(), 1, "{}: {assets:#?}", gh.version);
        assert_eq!(assets[0]["size"], 17);

        // A published release that lacks the archive (or has an old one).
        let tag2 = Tag::parse("snap-20260103T030405Z-manual").unwrap();
        let archive2 = dir.join(format!("{tag2}.tar.zst"));
        std::fs::write(&archive2, b"new bytes").unwrap();
        emu.add_release(
            &tag2.to_string(),
            false,
            &[(&format!("{tag2}.tar.zst"), b"old")],
        );
        remote.push(&tag2, &archive2, "notes").unwrap();
        let rels = emu.releases_for(&tag2.to_string());
        assert_eq!(rels.len(), 1, "{}", gh.version);
        assert_eq!(rels[0]["assets"][0]["size"], 9, "{}: clobbered", gh.version);
        assert_eq!(
            rels[0]["assets"][0]["digest"],
            format!("sha256:{}", sha256_hex(b"new bytes"))
        );

        // The server says "already exists" although the listing has no such
        // release (a concurrent push, a stale listing): the next attempt
        // converges instead of looping on create.
        let tag3 = Tag::parse("snap-20260104T030405Z").unwrap();
        let archive3 = dir.join(format!("{tag3}.tar.gz"));
        std::fs::write(&archive3, b"third").unwrap();
        emu.faults(
            json!([{"op": "release_create", "nth": 1, "times": 1, "action": "already_exists"}]),
        );
        let outcome = remote.push(&tag3, &archive3, "notes").unwrap();
        assert_eq!(outcome.attempts, 2, "{}", gh.version);
        assert_eq!(
            emu.releases_for(&tag3.to_string()).len(),
            1,
            "{}",
            gh.version
        );
        emu.faults(json!([]));

        // Pushing the same archive again changes nothing and succeeds.
        let before = emu.count("upload");
        remote.push(&tag2, &archive2, "notes").unwrap();
        assert_eq!(emu.count("upload"), before, "{}: no re-upload", gh.version);
    }
}

#[test]
fn list_sees_every_page_and_ignores_foreign_releases() {
    for gh in gh_bins("list_sees_every_page_and_ignores_foreign_releases") {
        let emu = Emulator::start();
        let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        for i in 0..250 {
            let tag = Tag::new(
                start + chrono::Duration::hours(i),
                lifeboat::tag::Kind::Scheduled,
            );
            emu.add_release(
                &tag.to_string(),
                false,
                &[(&format!("{tag}.tar.gz"), b"abc")],
            );
        }
        emu.add_release("v1.0.0", false, &[("v1.0.0.tar.gz", b"x")]);
        emu.add_release("snap-not-a-tag", false, &[("snap-not-a-tag.tar.gz", b"x")]);
        let remote = remote(&emu, &gh, 3, Duration::from_secs(30));
        let list = remote.list().unwrap();
        assert_eq!(list.len(), 250, "{}", gh.version);
        assert!(list.windows(2).all(|w| w[0].tag < w[1].tag), "oldest first");
        assert_eq!(list[0].tag.time(), start);
        assert_eq!(list[0].size, 3);
        assert_eq!(list[0].sha256.as_deref(), Some(sha256_hex(b"abc").as_str()));
        assert!(emu.count("release_list") >= 3, "{}: paginated", gh.version);
    }
}

#[test]
fn delete_release_and_tag_and_already_gone() {
    for gh in gh_bins("delete_release_and_tag_and_already_gone") {
        let emu = Emulator::start();
        let remote = remote(&emu, &gh, 3, Duration::from_secs(30));
        let tag = Tag::parse("snap-20260102T030405Z").unwrap();
        let keep = Tag::parse("snap-20260102T040405Z").unwrap();
        for t in [tag, keep] {
            emu.add_release(&t.to_string(), false, &[(&format!("{t}.tar.gz"), b"abc")]);
        }
        remote.delete(&tag).unwrap();
        assert!(
            emu.releases_for(&tag.to_string()).is_empty(),
            "{}",
            gh.version
        );
        let tags = emu.repo_state()["tags"].clone();
        assert_eq!(
            tags,
            json!([keep.to_string()]),
            "{}: tag cleaned up",
            gh.version
        );
        // Already gone counts as done.
        remote.delete(&tag).unwrap();

        // gh says `release not found` when the lookup fails: not believed.
        emu.faults(json!([
            {"op": "tag_lookup", "times": 0, "action": "status", "status": 502},
            {"op": "graphql", "times": 0, "action": "status", "status": 502},
        ]));
        let err = remote.delete(&keep).unwrap_err();
        assert_eq!(err.kind, Kind::RemoteTransient, "{}: {err}", gh.version);
        emu.faults(json!([]));
        assert_eq!(
            emu.releases_for(&keep.to_string()).len(),
            1,
            "{}",
            gh.version
        );
        assert_eq!(remote.list().unwrap().len(), 1);
    }
}

#[test]
fn download_verifies_and_never_leaves_a_partial_file() {
    for gh in gh_bins("download_verifies_and_never_leaves_a_partial_file") {
        let emu = Emulator::start();
        let remote = remote(&emu, &gh, 2, Duration::from_secs(30));
        let tag = Tag::parse("snap-20260102T030405Z").unwrap();
        let bytes: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let name = format!("{tag}.tar.gz");
        emu.add_release(&tag.to_string(), false, &[(&name, &bytes)]);
        let dest = tempfile::tempdir().unwrap();

        // One short answer (a transfer cut off cleanly), then a good one.
        emu.faults(json!([{"op": "asset_download", "nth": 1, "times": 1, "action": "short"}]));
        let path = remote.download(&tag, dest.path()).unwrap();
        assert_eq!(path, dest.path().join(&name));
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "{}", gh.version);
        std::fs::remove_file(&path).unwrap();

        // Every transfer breaks: an error, and nothing left behind.
        emu.faults(json!([
            {"op": "asset_download", "nth": 1, "times": 1, "action": "truncate"},
            {"op": "asset_download", "nth": 2, "times": 0, "action": "short"},
        ]));
        let err = remote.download(&tag, dest.path()).unwrap_err();
        assert!(err.message.contains("truncated"), "{}: {err}", gh.version);
        let left: Vec<_> = std::fs::read_dir(dest.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(left.is_empty(), "{}: nothing left: {left:?}", gh.version);

        // A snapshot that is not there.
        emu.faults(json!([]));
        let missing = Tag::parse("snap-20250102T030405Z").unwrap();
        let err = remote.download(&missing, dest.path()).unwrap_err();
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert!(err.message.contains("is not on"), "{err}");
    }
}

/// Puts the emulator into a broken state.
type Setup = fn(&Emulator);

#[test]
fn permanent_faults_are_not_retried_and_name_the_fix() {
    for gh in gh_bins("permanent_faults_are_not_retried_and_name_the_fix") {
        // (what, setup, expected text in stderr)
        let cases: [(&str, Setup, &str); 3] = [
            (
                "bad token",
                |e| e.settings(json!({"token_valid": false})),
                "gh auth login",
            ),
            (
                "empty repository",
                |e| e.set_repo(true, true),
                "lifeboat doctor --fix",
            ),
            ("missing repository", |e| e.delete_repo(), "does not exist"),
        ];
        for (what, setup, needle) in cases {
            let emu = Emulator::start();
            setup(&emu);
            let app = app(&gh.path, "30s");
            let out = run(&app, &emu, &["snapshot"]);
            assert_eq!(
                out.status.code(),
                Some(1),
                "{} {what}: {}",
                gh.version,
                text(&out)
            );
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains(needle), "{} {what}: {stderr}", gh.version);
            assert_eq!(
                app.last_run()["push"]["error"]["kind"],
                "remote_permanent",
                "{} {what}",
                gh.version
            );
            assert_eq!(
                emu.count("release_list"),
                1,
                "{} {what}: not retried",
                gh.version
            );
            assert_eq!(app.archives().len(), 1, "{what}: the snapshot stays local");
        }

        // No token at all: gh exits 4 before any request.
        let emu = Emulator::start();
        let app = app(&gh.path, "30s");
        let mut cmd = app.cmd(&["snapshot"]);
        for var in [
            "GH_TOKEN",
            "GITHUB_TOKEN",
            "GH_HOST",
            "GH_ENTERPRISE_TOKEN",
            "GITHUB_ENTERPRISE_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("GH_CONFIG_DIR", emu.gh_config_dir());
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{}: {}", gh.version, text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("gh auth login"),
            "{}",
            text(&out)
        );
    }

    // gh missing: spawning fails, nothing is retried.
    let emu_less = App::new();
    sqlite(&emu_less.data_dir().join("app.db"), "CREATE TABLE t(x);");
    emu_less.write_config(&format!(
        "[[database]]\nname = \"app\"\npath = \"app.db\"\n{}",
        github_config(Path::new("/nonexistent/bin/gh"), "30s")
    ));
    let out = emu_less.run(&["snapshot"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("install the GitHub CLI"), "{stderr}");
    assert_eq!(
        emu_less.last_run()["push"]["error"]["kind"],
        "remote_permanent"
    );
}

#[test]
fn oversized_archive_is_refused_before_any_call() {
    for gh in gh_bins("oversized_archive_is_refused_before_any_call") {
        let emu = Emulator::start();
        // Parts of 2 MB: a 2 GiB archive would need more than 999.
        let remote = GithubRemote::new(GithubConfig {
            repo: REPO.into(),
            gh: emu.wrapper(&gh),
            timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_millis(10),
            part_size: 2_000_000,
        });
        let dir = tempfile::tempdir().unwrap();
        let tag = Tag::parse("snap-20260102T030405Z").unwrap();
        let archive = dir.path().join(format!("{tag}.tar.gz"));
        // Sparse: 2 GiB of apparent size, no disk used.
        std::fs::File::create(&archive)
            .unwrap()
            .set_len(2 * 1024 * 1024 * 1024)
            .unwrap();
        let err = remote.push(&tag, &archive, "notes").unwrap_err();
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert!(err.archive_refused, "this archive only: {err}");
        assert!(err.message.contains("more than 999 parts"), "{err}");
        assert_eq!(emu.log().trim(), "", "no request was made");
    }
}

/// An archive GitHub can never take (more than 999 parts) no longer holds up the
/// queue: the snapshot taken after it is pushed in the same run, the remote
/// is still swept, the refused one stays local (and queued), and `health`
/// and the metrics keep naming it. The refusal is remembered, so later runs
/// pass over it too.
#[test]
fn a_refused_archive_does_not_hold_up_later_snapshots() {
    for gh in gh_bins("a_refused_archive_does_not_hold_up_later_snapshots") {
        let emu = Emulator::start();
        let app = app(&gh.path, "30s");
        // Parts of 2 MB: more than 999 of them are refused.
        let config = std::fs::read_to_string(app.config_path()).unwrap();
        std::fs::write(app.config_path(), format!("{config}part_size = 2000000\n")).unwrap();
        std::fs::create_dir_all(app.backup_dir()).unwrap();
        // Left queued by an earlier run: sparse, 2 GiB of apparent size.
        let old = "snap-20260102T030405Z";
        let archive = app.backup_dir().join(format!("{old}.tar.gz"));
        std::fs::File::create(&archive)
            .unwrap()
            .set_len(2 * 1024 * 1024 * 1024)
            .unwrap();
        std::fs::write(app.backup_dir().join(format!("{old}.pending-push")), b"").unwrap();

        for round in 0..2 {
            let metrics = app.root().join("metrics.prom");
            let out = run(
                &app,
                &emu,
                &["--metrics-file", metrics.to_str().unwrap(), "backup-now"],
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "{} round {round}: {}",
                gh.version,
                text(&out)
            );
            let rec = app.last_run();
            let new = tag_of(&app);
            assert_eq!(rec["push"]["status"], "pushed", "{rec:#}");
            assert_eq!(rec["push"]["pushed"], serde_json::json!([new]), "{rec:#}");
            assert_eq!(rec["push"]["refused"][0]["tag"], old, "{rec:#}");
            assert!(
                emu.releases_for(&new).len() == 1 && emu.releases_for(old).is_empty(),
                "{}: {:#}",
                gh.version,
                emu.repo_state()
            );
            // The remote sweep ran, though a snapshot is still queued.
            assert!(!rec["retention"]["remote"].is_null(), "{rec:#}");
            // Kept locally, still queued, with the refusal written in.
            assert!(archive.exists());
            let marker =
                std::fs::read(app.backup_dir().join(format!("{old}.pending-push.github"))).unwrap();
            let refusal: serde_json::Value = serde_json::from_slice(&marker).unwrap();
            assert_eq!(refusal["remote"], format!("github:{REPO}"));
            // Health names the snapshot, the remote and the fix.
            let health = run(&app, &emu, &["health"]);
            let said = text(&health);
            assert_eq!(health.status.code(), Some(1), "{said}");
            assert!(
                said.contains(&format!("snapshot {old} cannot be pushed to github:{REPO}"))
                    && said.contains("more than 999 parts")
                    && said.contains("fix: raise [github] part_size"),
                "{said}"
            );
            let prom = std::fs::read_to_string(&metrics).unwrap();
            assert!(
                prom.contains(&format!(
                    "lifeboat_remote_refused_snapshots{{remote=\"github:{REPO}\"}} 1"
                )),
                "{prom}"
            );
            std::thread::sleep(Duration::from_millis(1100));
        }
    }
}

/// An archive larger than `[github] part_size` goes up as parts of one
/// release (a plain byte split: `cat` of the parts is the archive), is
/// listed as one snapshot, verified and restored by streaming the parts,
/// never joined on disk.
#[test]
fn a_split_archive_is_pushed_listed_verified_and_restored() {
    for gh in gh_bins("a_split_archive_is_pushed_listed_verified_and_restored") {
        let emu = Emulator::start();
        let app = App::new();
        // Incompressible rows, so the archive is several parts of 4 KiB.
        sqlite(
            &app.data_dir().join("app.db"),
            "CREATE TABLE t(x); WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) \
             INSERT INTO t SELECT randomblob(500) FROM n;",
        );
        app.write_config(&format!(
            "[[database]]\nname = \"app\"\npath = \"app.db\"\n{}part_size = 4096\n",
            github_config(&gh.path, "30s")
        ));
        let out = run(&app, &emu, &["snapshot"]);
        assert!(out.status.success(), "{}: {}", gh.version, text(&out));
        let tag = tag_of(&app);
        let archive_name = format!("{tag}.tar.gz");
        let archive = std::fs::read(app.backup_dir().join(&archive_name)).unwrap();
        let releases = emu.releases_for(&tag);
        assert_eq!(releases.len(), 1, "{}: {releases:?}", gh.version);
        let assets: Vec<String> = releases[0]["assets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        let n = archive.len().div_ceil(4096);
        assert!(n >= 3, "{} parts", n);
        assert_eq!(assets.len(), n, "{assets:?}");
        assert!(
            assets
                .iter()
                .all(|a| a.starts_with(&format!("{archive_name}.part-")))
        );

        // Listed as one snapshot of the archive's size.
        let out = run(&app, &emu, &["--json", "list", "--remote"]);
        assert!(out.status.success(), "{}", text(&out));
        let listing: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let row = &listing["snapshots"][0];
        assert_eq!(row["tag"], tag.as_str());
        assert_eq!(row["remote"]["size"], archive.len() as u64, "{row:#}");

        // The parts, downloaded by gh itself and put together with cat, are
        // the archive, and tar lists it.
        let dl = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(&gh.path);
        cmd.args(["release", "download", &tag, "-R", REPO, "-D"])
            .arg(dl.path());
        emu.env(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        let mut parts: Vec<PathBuf> = std::fs::read_dir(dl.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        parts.sort();
        let joined = Command::new("sh")
            .arg("-c")
            .arg("cat \"$@\" | tar tzf -")
            .arg("sh")
            .args(&parts)
            .output()
            .unwrap();
        assert!(joined.status.success(), "{}", text(&joined));
        assert!(
            String::from_utf8_lossy(&joined.stdout).contains(&format!("{tag}/MANIFEST.json")),
            "{}",
            text(&joined)
        );

        // Verified and restored from the remote (no local copy).
        let out = run(&app, &emu, &["verify", "--remote", &tag]);
        assert!(out.status.success(), "{}: {}", gh.version, text(&out));
        std::fs::remove_file(app.backup_dir().join(&archive_name)).unwrap();
        sqlite(&app.data_dir().join("app.db"), "DELETE FROM t;");
        let out = run(&app, &emu, &["restore", &tag, "--force"]);
        assert!(out.status.success(), "{}: {}", gh.version, text(&out));
        let rows: i64 = rusqlite::Connection::open(app.data_dir().join("app.db"))
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 40);
    }
}

#[test]
fn doctor_checks_and_fixes() {
    for gh in gh_bins("doctor_checks_and_fixes") {
        let emu = Emulator::start();
        let app = app(&gh.path, "30s");

        let out = run(&app, &emu, &["doctor"]);
        assert_eq!(out.status.code(), Some(0), "{}: {}", gh.version, text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("all checks passed"), "{stdout}");
        assert!(
            stdout.contains(&gh.version),
            "{}: the version is shown: {stdout}",
            gh.version
        );

        // Public: a loud failure.
        emu.set_repo(false, false);
        let out = run(&app, &emu, &["doctor", "--json"]);
        assert_eq!(out.status.code(), Some(1), "{}: {}", gh.version, text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let private = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "private")
            .unwrap()
            .clone();
        assert_eq!(private["status"], "fail", "{report:#}");
        assert!(private["detail"].as_str().unwrap().contains("PUBLIC"));
        assert_eq!(report["ok"], false);

        // Missing: doctor says how; --fix creates it private with a README.
        emu.delete_repo();
        let out = run(&app, &emu, &["doctor"]);
        assert_eq!(out.status.code(), Some(1), "{}: {}", gh.version, text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("doctor --fix"),
            "{}",
            text(&out)
        );
        let out = run(&app, &emu, &["doctor", "--fix"]);
        assert_eq!(out.status.code(), Some(0), "{}: {}", gh.version, text(&out));
        let state = emu.repo_state();
        assert_eq!(state["private"], true, "{}: {state:#}", gh.version);
        assert_eq!(state["empty"], false);

        // Empty: --fix adds a README; then a push works.
        emu.set_repo(true, true);
        let out = run(&app, &emu, &["doctor"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("FAIL not empty"),
            "{}",
            text(&out)
        );
        let out = run(&app, &emu, &["doctor", "--fix"]);
        assert_eq!(out.status.code(), Some(0), "{}: {}", gh.version, text(&out));
        let out = run(&app, &emu, &["snapshot"]);
        assert!(out.status.success(), "{}: {}", gh.version, text(&out));

        // Bad token: not authenticated.
        emu.settings(json!({"token_valid": false}));
        let out = run(&app, &emu, &["doctor"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("gh auth login"),
            "{}",
            text(&out)
        );
    }

    // gh missing.
    let app = app(Path::new("/nonexistent/bin/gh"), "30s");
    let out = app.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("install the GitHub CLI"),
        "{}",
        text(&out)
    );
}
