//! What the commands print, as the programs that read it see it: `--json`
//! documents validated against `schemas/*.schema.json` with Python's
//! `jsonschema` (success and failure), readers that close the pipe early,
//! a closed stderr that must not stop a snapshot, colour only where asked
//! for, every stderr line JSON with `--log-format json`, and `health`
//! parsed as a monitoring system parses a plugin's output.

use crate::support::obs::*;
use crate::support::{App, text};
use serde_json::Value;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// Validate `doc` against `schemas/<name>.schema.json` with the
/// `jsonschema` package (draft 2020-12), panicking with its message.
fn validate(name: &str, doc: &Value) {
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("schemas/{name}.schema.json"));
    let script = "import json, sys, jsonschema\n\
        schema = json.load(open(sys.argv[1]))\n\
        jsonschema.Draft202012Validator.check_schema(schema)\n\
        jsonschema.Draft202012Validator(schema).validate(json.load(sys.stdin))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .arg(&schema)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(doc.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{name}: output does not match its schema:\n{}\n{doc:#}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run with `--json`, insist on `code`, check the document's version and
/// `ok`, validate it, and return it.
fn doc(app: &App, schema: &str, args: &[&str], code: i32) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = expect(app, &all, code);
    let v = json(&out);
    assert_eq!(v["format_version"], 1, "{args:?}: {v:#}");
    assert!(v["ok"].is_boolean(), "{args:?}: {v:#}");
    validate(schema, &v);
    v
}

/// The error document of a failed command: ok false, the error's fields,
/// the exit code the process exited with; the human lines on stderr.
fn error_doc(app: &App, schema: &str, args: &[&str], code: i32, kind: &str) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let out = expect(app, &all, code);
    let v = json(&out);
    validate(schema, &v);
    assert_eq!(v["ok"], false, "{v:#}");
    assert_eq!(v["error"]["kind"], kind, "{v:#}");
    assert_eq!(v["error"]["exit_code"], code, "{v:#}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: "), "{err}");
    v
}

#[test]
fn every_command_json_matches_its_schema() {
    let app = tasks_app("[remote.dir]\npath = \"remote\"\n");
    let d = doc(&app, "doctor", &["doctor", "--fix"], 0);
    assert_eq!(d["ok"], true);
    let s = doc(&app, "snapshot", &["snapshot"], 0);
    let tag = s["snapshot"]["tag"].as_str().unwrap().to_string();
    doc(&app, "snapshot", &["backup-now", "--reason", "schema"], 0);
    let l = doc(&app, "list", &["list"], 0);
    let row = &l["snapshots"][0];
    assert_eq!(row["bytes"], row["size"], "sizes are `bytes` too: {row:#}");
    assert!(row["tag"].is_string());
    // The no-tag restore: an object now, `ok` false (nothing restored, exit 2).
    let r = doc(&app, "restore", &["restore"], 2);
    assert_eq!(r["ok"], false);
    assert!(
        r["snapshots"].as_array().is_some_and(|a| a.len() == 2),
        "{r:#}"
    );
    let dry = doc(&app, "restore", &["restore", &tag, "--dry-run"], 0);
    assert_eq!(dry["stage"]["tag"], tag.as_str());
    doc(&app, "verify", &["verify", "--latest"], 0);
    doc(&app, "drill", &["drill"], 0);
    let h = doc(&app, "health", &["health"], 0);
    assert_eq!(h["status"], "OK", "{h:#}");
    doc(&app, "prune", &["prune", "--dry-run"], 0);
    let y = doc(&app, "sync", &["sync"], 0);
    assert_eq!(y["remotes"][0]["name"], "dir", "{y:#}");
    let m = doc(&app, "migrate", &["migrate"], 0);
    assert!(
        m["databases"].is_array(),
        "an object, not a bare array: {m:#}"
    );
    doc(&app, "schedule", &["schedule", "--print", "cron"], 0);
    doc(&app, "restore", &["restore", &tag], 0);
    let u = doc(&app, "restore", &["restore", "--undo"], 0);
    assert!(u["restored_from"].is_string(), "{u:#}");
    let v = doc(&app, "version", &["version"], 0);
    assert!(v["version"].is_string(), "{v:#}");
    // init refuses to overwrite the app's configuration...
    error_doc(
        &app,
        "init",
        &["init", "--db", "tasks=data/db/tasks.db"],
        2,
        "usage",
    );
    // ...and writes a new one.
    let fresh = app.root().join("fresh.toml");
    let out = Command::new(crate::support::lifeboat_bin())
        .args(["--json", "--config"])
        .arg(&fresh)
        .args(["init", "--db", "tasks=data/db/tasks.db"])
        .current_dir(app.root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let i = json(&out);
    validate("init", &i);
    assert_eq!(i["format_version"], 1);
}

#[test]
fn demo_json_matches_its_schema() {
    let app = App::new();
    doc(&app, "demo", &["demo", "--tasks", "200"], 0);
}

#[test]
fn failures_print_a_json_error_document() {
    let app = tasks_app("");
    // No configuration at all.
    let none = App::new();
    std::fs::remove_file(none.config_path()).ok();
    error_doc(&none, "list", &["list"], 2, "config");
    // A tag that is not one.
    error_doc(&app, "verify", &["verify", "not-a-tag"], 2, "usage");
    error_doc(&app, "restore", &["restore", "snap-1"], 2, "usage");
    // Nothing to drill, nothing to restore.
    // A drill that fails still prints its record, with the drill's error.
    let e = doc(&app, "drill", &["drill"], 1);
    assert_eq!(
        (&e["ok"], &e["error"]["kind"]),
        (&Value::Bool(false), &Value::from("refused")),
        "{e:#}"
    );
    error_doc(
        &app,
        "restore",
        &["restore", "snap-20200101T000000Z"],
        2,
        "usage",
    );
    // A database that is not there: the snapshot fails before it has a report.
    std::fs::remove_file(app.data_dir().join("db/tasks.db")).unwrap();
    let s = doc(&app, "snapshot", &["snapshot"], 1);
    assert_eq!(s["ok"], false, "{s:#}");
    assert_eq!(s["error"]["kind"], "database", "{s:#}");
    // A clap usage error under --json, and health's own: UNKNOWN (3).
    let out = expect(&app, &["--json", "health", "--bogus"], 3);
    let h = json(&out);
    validate("health", &h);
    assert_eq!(h["error"]["exit_code"], 3);
    let h = json(&expect(&none, &["--json", "health"], 3));
    validate("health", &h);
    assert_eq!(
        (&h["status"], &h["error"]["kind"]),
        (&Value::from("UNKNOWN"), &Value::from("config"))
    );
}

/// Run `args` with stdout a pipe whose reader has already gone.
fn closed_stdout(app: &App, args: &[&str]) -> std::process::ExitStatus {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = app
        .cmd(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.status
}

#[test]
fn a_reader_that_closes_early_ends_the_command_like_sigpipe() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    for args in [
        &["list"][..],
        &["--json", "list"],
        &["health"],
        &["verify", "--latest"],
        &["restore"],
        &["restore", &tag, "--dry-run"],
        &["prune", "--dry-run"],
        &["schedule", "--print", "cron"],
        &["doctor"],
        &["migrate"],
        &["drill"],
        &["version"],
        &["completions", "bash"],
        &["man"],
    ] {
        let status = closed_stdout(&app, args);
        assert_eq!(status.signal(), Some(libc::SIGPIPE), "{args:?}: {status:?}");
    }
    // The snapshot is taken and recorded before its line meets the pipe.
    let status = closed_stdout(&app, &["backup-now"]);
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");
    assert_eq!(app.last_run()["status"], "success");
    // As a shell sees it: 141, like `seq`.
    let sh = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -o pipefail; (sleep 0.3; exec {} --config {} list) | true",
            crate::support::lifeboat_bin().display(),
            app.config_path().display()
        ))
        .status()
        .unwrap();
    assert_eq!(sh.code(), Some(141));
}

#[test]
fn a_closed_stderr_never_stops_a_snapshot() {
    let app = tasks_app("[remote.dir]\npath = \"missing/remote\"\n");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    // -vv: plenty of log lines, and a push that fails (a warning and the
    // final error) all meet the closed pipe.
    let out = app
        .cmd(&["-vv", "snapshot"])
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(app.last_run()["snapshot"]["tag"].is_string());
    assert_eq!(app.archives().len(), 1);
}

#[test]
fn colour_only_on_a_terminal_or_when_forced() {
    // A push that fails: log lines and a final error.
    let app = tasks_app("[remote.dir]\npath = \"missing/remote\"\n");
    let run = |env: &[(&str, &str)]| {
        let mut c = app.cmd(&["-v", "snapshot"]);
        c.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let piped = run(&[]);
    assert!(piped.contains("INFO") && !piped.contains('\x1b'), "{piped}");
    // A log file, as cron writes it.
    let log = app.root().join("cron.log");
    let file = std::fs::File::create(&log).unwrap();
    let out = app
        .cmd(&["-v", "snapshot"])
        .env_remove("CLICOLOR_FORCE")
        .stderr(file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("error: ") && !logged.contains('\x1b'),
        "{logged}"
    );
    let forced = run(&[("CLICOLOR_FORCE", "1")]);
    assert!(forced.contains('\x1b'), "{forced}");
    let refused = run(&[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]);
    assert!(!refused.contains('\x1b'), "{refused}");
    // The final error once: the human lines, no tracing ERROR repeating it.
    assert_eq!(piped.matches("error: ").count(), 1, "{piped}");
    assert!(!piped.contains(" ERROR "), "{piped}");
}

#[test]
fn json_logs_make_every_stderr_line_json_the_final_error_included() {
    let app = tasks_app("");
    let tag = snapshot(&app);
    std::fs::remove_file(app.data_dir().join("db/tasks.db")).unwrap();
    for (args, code) in [
        (&["--log-format", "json", "-vv", "snapshot"][..], 1),
        (&["--log-format", "json", "restore"], 2),
        (
            &["--log-format", "json", "restore", "snap-20200101T000000Z"],
            2,
        ),
        (
            &["--log-format", "json", "-v", "restore", &tag, "--dry-run"],
            0,
        ),
    ] {
        let out = expect(&app, args, code);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(code == 0 || !err.trim().is_empty(), "{args:?}");
        let lines: Vec<Value> = err
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: not JSON ({e}): {l}"))
            })
            .collect();
        if args.contains(&"snapshot") || args.contains(&"snap-20200101T000000Z") {
            let last = lines.last().unwrap();
            assert_eq!(last["level"], "ERROR", "{last}");
            assert_eq!(last["exit_code"], code, "{last}");
            assert!(
                last["kind"].is_string() && last["message"].is_string(),
                "{last}"
            );
            assert!(last.get("hint").is_some(), "{last}");
        }
    }
}

/// A plugin's output as a monitoring system reads it: the status word, the
/// text, and the perfdata `label=value[UOM];[warn];[crit];[min];[max]`.
fn parse_plugin(out: &str) -> (String, String, Vec<(String, String, String)>) {
    let first = out.lines().next().unwrap();
    let (status_text, perf) = first.split_once(" | ").expect("perfdata after ` | `");
    let rest = status_text.strip_prefix("LIFEBOAT ").expect("service name");
    let (word, text) = rest.split_once(" - ").expect("STATUS - text");
    assert!(
        ["OK", "WARNING", "CRITICAL", "UNKNOWN"].contains(&word),
        "{first}"
    );
    assert!(
        status_text.chars().count() <= 100,
        "first line too long: {status_text}"
    );
    let mut data = vec![];
    for item in perf.split(' ') {
        let (label, values) = item.split_once('=').expect("label=value");
        assert!(!label.is_empty() && !label.contains(['\'', '=']), "{item}");
        let fields: Vec<&str> = values.split(';').collect();
        assert!(fields.len() <= 5, "{item}");
        let value = fields[0];
        let uom = value.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '.');
        let number = &value[..value.len() - uom.len()];
        assert!(
            value == "U"
                || (number.parse::<f64>().is_ok() && ["", "s", "B", "%", "c"].contains(&uom)),
            "{item}"
        );
        for range in &fields[1..] {
            assert!(
                range.is_empty()
                    || range
                        .trim_start_matches('@')
                        .split(':')
                        .all(|n| n.is_empty() || n == "~" || n.parse::<f64>().is_ok()),
                "{item}"
            );
        }
        data.push((label.to_string(), number.to_string(), uom.to_string()));
    }
    (word.to_string(), text.to_string(), data)
}

#[test]
fn health_reads_as_a_monitoring_plugin() {
    // A remote that is a file: every push fails.
    let app = tasks_app("[remote.dir]\npath = \"not-a-dir\"\n");
    std::fs::write(app.root().join("not-a-dir"), b"").unwrap();
    expect(&app, &["snapshot"], 1);
    let out = stdout(&expect(&app, &["health"], 1));
    let (word, summary, perf) = parse_plugin(&out);
    assert_eq!(word, "WARNING", "{out}");
    assert!(
        summary.contains("snapshot 0s ago") || summary.contains("snapshot 1s ago"),
        "{out}"
    );
    let get = |l: &str| {
        perf.iter()
            .find(|p| p.0 == l)
            .unwrap_or_else(|| panic!("{l}: {out}"))
            .clone()
    };
    assert_eq!(get("age").2, "s");
    let bytes = get("size");
    assert_eq!(bytes.2, "B");
    assert_eq!(
        bytes.1.parse::<u64>().unwrap(),
        app.last_run()["snapshot"]["archive_bytes"]
            .as_u64()
            .unwrap()
    );
    assert_eq!(get("drill_age").1, "", "never drilled: U");
    assert_eq!(get("push_ok").1, "0");
    // The details are true: the run failed to push.
    let run_line = out.lines().find(|l| l.starts_with("last run:")).unwrap();
    assert!(run_line.contains("push FAILED"), "{out}");
    // Its own usage errors are UNKNOWN, not CRITICAL.
    let bogus = expect(&app, &["health", "--bogus"], 3);
    assert!(
        stdout(&bogus).starts_with("LIFEBOAT UNKNOWN - "),
        "{}",
        text(&bogus)
    );
    // Other commands keep exit 2 for usage errors.
    expect(&app, &["list", "--bogus"], 2);
}
