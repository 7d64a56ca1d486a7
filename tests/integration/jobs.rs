//! `lifeboat schedule` and the job templates in `jobs/`: rendered units pass
//! `systemd-analyze verify` (which also checks that ExecStart's binary
//! exists: they are rendered with the real test binary) and its offline
//! security audit, cron lines parse with a real cron parser and their
//! command runs under `/bin/sh` the way cron runs it, and the plists load
//! with Python's `plistlib`.

use crate::support::{App, lifeboat_bin, sqlite, text};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

/// An app whose paths contain a space and a `%`, the two characters that
/// cron and systemd treat specially, with a dir remote and a metrics file
/// (both must become writable in the systemd sandbox).
struct Layout {
    _app: App,
    root: PathBuf,
}

impl Layout {
    fn new(extra: &str) -> Layout {
        let app = App::new();
        let root = app.root().join("my app 100%");
        std::fs::create_dir_all(root.join("data")).unwrap();
        std::fs::create_dir_all(root.join("remote")).unwrap();
        std::fs::create_dir_all(root.join("metrics")).unwrap();
        sqlite(
            &root.join("data/db/tasks.db"),
            "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);",
        );
        std::fs::write(
            root.join("lifeboat.toml"),
            format!(
                "data_dir = \"data\"\n\
                 [[database]]\nname = \"tasks\"\npath = \"db/tasks.db\"\n\
                 [health]\nmetrics_file = \"metrics/lifeboat.prom\"\n{extra}"
            ),
        )
        .unwrap();
        Layout { _app: app, root }
    }

    fn config(&self) -> PathBuf {
        self.root.join("lifeboat.toml")
    }

    fn schedule(&self, args: &[&str]) -> std::process::Output {
        Command::new(lifeboat_bin())
            .arg("--config")
            .arg(self.config())
            .arg("schedule")
            .args(args)
            .env_remove("LIFEBOAT_CONFIG")
            .output()
            .unwrap()
    }

    /// Render with `--write` into a fresh directory and return it.
    fn write(&self, args: &[&str]) -> PathBuf {
        let out = self.root.join(format!("rendered-{}", args.join("-")));
        let mut all = vec!["--write", out.to_str().unwrap()];
        all.extend_from_slice(args);
        let o = self.schedule(&all);
        assert!(o.status.success(), "{}", text(&o));
        out
    }
}

/// A tool the tests need: present, or (outside CI) skip with a message.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    match which::which(name) {
        Ok(p) => Some(p),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("{name} is missing: apt-get install {package} (.ci/install-extra.sh does)")
        }
        Err(_) => {
            eprintln!("SKIPPED: {name} is not installed (apt-get install {package})");
            None
        }
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The real binary, as `current_exe` resolves it inside lifeboat.
fn bin() -> String {
    lifeboat_bin()
        .canonicalize()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

fn systemd_verify(dir: &Path, user: bool) {
    let Some(analyze) = tool("systemd-analyze", "systemd") else {
        return;
    };
    let runtime = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(&analyze);
    if user {
        // A user manager needs a runtime directory even offline.
        cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
    }
    let out = cmd.arg("verify").args(files_in(dir)).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{stderr}"
    );
    // verify exits 0 on unknown keys and unparsable values it ignores; any
    // word about our units is a defect.
    let complaints: Vec<&str> = stderr.lines().filter(|l| l.contains("lifeboat")).collect();
    assert!(complaints.is_empty(), "{}", complaints.join("\n"));
}

#[test]
fn systemd_system_units_verify_and_are_hardened() {
    let layout = Layout::new("[remote.dir]\npath = \"remote\"\n");
    let dir = layout.write(&["--print", "systemd"]);
    let names: Vec<String> = files_in(&dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "lifeboat-drill.service",
            "lifeboat-drill.timer",
            "lifeboat-snapshot.service",
            "lifeboat-snapshot.timer"
        ]
    );
    let service = std::fs::read_to_string(dir.join("lifeboat-snapshot.service")).unwrap();
    let root = &layout.root;
    let q = |p: &Path| format!("\"{}\"", p.display().to_string().replace('%', "%%"));
    assert!(
        service.contains(&format!(
            "ExecStart={} --config {} -v snapshot\n",
            bin(),
            q(&root.join("lifeboat.toml"))
        )),
        "{service}"
    );
    assert!(
        service.contains(&format!(
            "ReadWritePaths={} {} {}\n",
            q(&root.join("data")),
            q(&root.join("metrics")),
            q(&root.join("remote"))
        )),
        "{service}"
    );
    for line in [
        "Type=oneshot",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "ProtectHome=read-only",
    ] {
        assert!(service.contains(&format!("\n{line}\n")), "{line}");
    }
    let timer = std::fs::read_to_string(dir.join("lifeboat-snapshot.timer")).unwrap();
    // Unnamed, the minute comes from the configuration's path.
    let minute = lifeboat::schedule::minute_for(layout.config().to_str().unwrap());
    for line in [
        format!("OnCalendar=*-*-* *:{minute:02}:00"),
        "Persistent=true".to_string(),
    ] {
        assert!(timer.contains(&line), "{line}\n{timer}");
    }
    let drill = std::fs::read_to_string(dir.join("lifeboat-drill.service")).unwrap();
    assert!(drill.contains(" -v drill\n"));
    let drill_timer = std::fs::read_to_string(dir.join("lifeboat-drill.timer")).unwrap();
    assert!(drill_timer.contains("OnCalendar=daily"));

    systemd_verify(&dir, false);

    // systemd's own audit of the sandbox: exits non-zero when the exposure
    // exceeds the threshold (in tenths: 30 is the "3.0 OK" it prints; an
    // unhardened service scores 9.6 "UNSAFE").
    if let Some(analyze) = tool("systemd-analyze", "systemd") {
        for unit in ["lifeboat-snapshot.service", "lifeboat-drill.service"] {
            let out = Command::new(&analyze)
                .args(["security", "--offline=true", "--threshold=30"])
                .arg(dir.join(unit))
                .output()
                .unwrap();
            assert!(out.status.success(), "{unit}: {}", text(&out));
        }
    }
}

#[test]
fn systemd_user_units_verify() {
    let layout = Layout::new("");
    let dir = layout.write(&["--print", "systemd", "--user"]);
    let service = std::fs::read_to_string(dir.join("lifeboat-snapshot.service")).unwrap();
    assert!(!service.contains("\nUser="), "{service}");
    assert!(service.contains(&format!("ExecStart={} --config", bin())));
    systemd_verify(&dir, true);
}

/// A crontab line: schedule, optional user, command (with cron's own `%`
/// escaping still in place).
struct CronLine {
    schedule: String,
    user: Option<String>,
    command: String,
}

fn cron_lines(content: &str, system: bool) -> (Vec<(String, String)>, Vec<CronLine>) {
    let mut env = vec![];
    let mut jobs = vec![];
    for line in content.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let first = line.split_whitespace().next().unwrap();
        if first.contains('=') {
            let (k, v) = line.split_once('=').unwrap();
            env.push((k.trim().to_string(), v.trim().to_string()));
            continue;
        }
        let mut rest = line;
        let mut fields = vec![];
        for _ in 0..(if system { 6 } else { 5 }) {
            let f = rest.split_whitespace().next().unwrap();
            fields.push(f.to_string());
            rest = rest.trim_start()[f.len()..].trim_start();
        }
        jobs.push(CronLine {
            schedule: fields[..5].join(" "),
            user: system.then(|| fields[5].clone()),
            command: rest.to_string(),
        });
    }
    (env, jobs)
}

#[test]
fn cron_lines_parse_and_their_command_runs_like_cron_runs_it() {
    let layout = Layout::new("");
    let bin_dir = tempfile::tempdir().unwrap();
    // No systemd-cat on this PATH: the jobs log to a file instead.
    let out = Command::new(lifeboat_bin())
        .arg("--config")
        .arg(layout.config())
        .args(["schedule", "--print", "cron", "--user"])
        .env("PATH", bin_dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let crontab = String::from_utf8(out.stdout).unwrap();
    let (env, jobs) = cron_lines(&crontab, false);
    assert_eq!(jobs.len(), 2, "{crontab}");

    // The schedules, read by a real cron parser: hourly and daily.
    let start = chrono::Utc::now();
    for (job, expect_gap) in jobs.iter().zip([3600, 86400]) {
        let cron = croner::Cron::from_str(&job.schedule)
            .unwrap_or_else(|e| panic!("`{}`: {e}", job.schedule));
        let a = cron.find_next_occurrence(&start, false).unwrap();
        let b = cron.find_next_occurrence(&a, false).unwrap();
        assert_eq!((b - a).num_seconds(), expect_gap, "{}", job.schedule);
    }
    assert!(
        jobs[0].command.contains(" -v snapshot >>"),
        "{}",
        jobs[0].command
    );
    assert!(jobs[1].command.contains(" -v drill"));

    // Run both jobs as cron would: `%` is cron's newline unless escaped,
    // then /bin/sh -c with only the crontab's variables and HOME.
    for job in &jobs {
        let command = &job.command;
        let unescaped = command.replace("\\%", "");
        assert!(
            !unescaped.contains('%'),
            "a bare % in a cron command: {command}"
        );
        let command = command.replace("\\%", "%");
        let mut sh = Command::new("/bin/sh");
        sh.arg("-c")
            .arg(&command)
            .env_clear()
            .env("HOME", layout.root.as_os_str());
        for (k, v) in &env {
            sh.env(k, v);
        }
        let run = sh.output().unwrap();
        assert!(run.status.success(), "{command}\n{}", text(&run));
    }
    // The snapshot job made an archive and logged it; the drill restored it.
    let backups = layout.root.join("data/backups");
    let archives: Vec<String> = std::fs::read_dir(&backups)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tar.gz"))
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    let tag = archives[0].trim_end_matches(".tar.gz");
    let log = std::fs::read_to_string(backups.join("lifeboat.log")).unwrap();
    assert!(log.contains(tag), "{log}");
    let drill: serde_json::Value =
        serde_json::from_slice(&std::fs::read(backups.join("drill.json")).unwrap()).unwrap();
    assert_eq!(drill["outcome"], "success", "{drill}");
    assert_eq!(drill["tag"], tag);
}

#[test]
fn system_cron_names_the_data_owner_and_logs_to_the_journal() {
    let layout = Layout::new("");
    let out = layout.schedule(&["--print", "cron"]);
    assert!(out.status.success(), "{}", text(&out));
    let crontab = String::from_utf8(out.stdout).unwrap();
    let (_, jobs) = cron_lines(&crontab, true);
    assert_eq!(jobs.len(), 2);
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        std::fs::metadata(layout.root.join("data")).unwrap().uid(),
        uid
    );
    let me = String::from_utf8(Command::new("id").arg("-un").output().unwrap().stdout).unwrap();
    for job in &jobs {
        croner::Cron::from_str(&job.schedule).unwrap();
        assert_eq!(job.user.as_deref(), Some(me.trim()));
        if which::which("systemd-cat").is_ok() {
            assert!(
                job.command.starts_with("systemd-cat -t lifeboat "),
                "{}",
                job.command
            );
        }
    }
}

#[test]
fn launchd_plists_are_valid_and_carry_the_paths() {
    let layout = Layout::new("[github]\nrepo = \"me/backups\"\n");
    let dir = layout.write(&["--print", "launchd"]);
    let script = r#"
import json, plistlib, sys
out = {}
for path in sys.argv[1:]:
    with open(path, "rb") as f:
        out[path.rsplit("/", 1)[1]] = plistlib.load(f)
print(json.dumps(out))
"#;
    let files = files_in(&dir);
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "plistlib refused a plist:\n{}",
        text(&out)
    );
    let plists: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = layout.config();
    let minute = lifeboat::schedule::minute_for(config.to_str().unwrap());
    for (file, job, interval) in [
        (
            "lifeboat.snapshot.plist",
            "snapshot",
            serde_json::json!({ "Minute": minute }),
        ),
        (
            "lifeboat.drill.plist",
            "drill",
            serde_json::json!({"Hour": 4, "Minute": (minute + 30) % 60}),
        ),
    ] {
        let p = &plists[file];
        assert_eq!(p["Label"], format!("lifeboat.{job}"));
        assert_eq!(
            p["ProgramArguments"],
            serde_json::json!([bin(), "--config", config.to_str().unwrap(), "-v", job])
        );
        assert_eq!(p["StartCalendarInterval"], interval);
        let env = &p["EnvironmentVariables"];
        assert!(env["PATH"].as_str().unwrap().contains("/usr/bin"));
        assert!(env["GH_CONFIG_DIR"].as_str().unwrap().ends_with("gh"));
        assert!(p["StandardErrorPath"].as_str().unwrap().ends_with(".log"));
    }
}

#[test]
fn print_matches_write_and_json() {
    let layout = Layout::new("");
    let dir = layout.write(&["--print", "systemd"]);
    let printed = layout.schedule(&["--print", "systemd"]);
    assert!(printed.status.success());
    let printed = String::from_utf8(printed.stdout).unwrap();
    for f in files_in(&dir) {
        let content = std::fs::read_to_string(&f).unwrap();
        assert!(printed.contains(&content), "{}", f.display());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }
    let json = layout.schedule(&["--print", "systemd", "--json"]);
    assert!(json.status.success());
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["files"].as_array().unwrap().len(), 4);
    assert_eq!(v["files"][0]["install_dir"], "/etc/systemd/system");
    assert_eq!(
        v["files"][0]["content"].as_str().unwrap(),
        std::fs::read_to_string(dir.join("lifeboat-snapshot.service")).unwrap()
    );
}

/// `jobs/` holds exactly the templates the binary renders from, and every
/// fixed line of a template reaches the rendered file unchanged.
#[test]
fn jobs_dir_is_the_template_set() {
    let jobs = Path::new(env!("CARGO_MANIFEST_DIR")).join("jobs");
    let mut on_disk = vec![];
    let mut stack = vec![jobs.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().unwrap() != "README.md" {
                on_disk.push(
                    p.strip_prefix(&jobs)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    on_disk.sort();
    let mut compiled: Vec<String> = lifeboat::schedule::TEMPLATES
        .iter()
        .map(|t| t.path.to_string())
        .collect();
    compiled.sort();
    assert_eq!(on_disk, compiled);
    for t in lifeboat::schedule::TEMPLATES {
        assert_eq!(
            std::fs::read_to_string(jobs.join(t.path)).unwrap(),
            t.text,
            "{}",
            t.path
        );
    }

    let layout = Layout::new("");
    for (args, kind) in [
        (&["--print", "systemd"][..], "systemd"),
        (&["--print", "systemd", "--user"][..], "systemd"),
        (&["--print", "launchd"][..], "launchd"),
        (&["--print", "cron"][..], "cron"),
    ] {
        let mut all = args.to_vec();
        all.push("--json");
        let out = layout.schedule(&all);
        assert!(out.status.success(), "{}", text(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["scheduler"], kind);
        for f in v["files"].as_array().unwrap() {
            let template =
                std::fs::read_to_string(jobs.join(f["template"].as_str().unwrap())).unwrap();
            let content = f["content"].as_str().unwrap();
            let mut rest = content;
            let fixed = template.lines().filter(|l| {
                !lifeboat::schedule::PLACEHOLDERS
                    .iter()
                    .any(|p| l.contains(p))
            });
            for line in fixed {
                let at = rest.find(line).unwrap_or_else(|| {
                    panic!(
                        "{}: line `{line}` is missing or out of order",
                        f["template"]
                    )
                });
                rest = &rest[at + line.len()..];
            }
        }
    }
}

#[test]
fn bad_requests_are_usage_errors() {
    let layout = Layout::new("");
    let out = layout.schedule(&["--print", "upstart"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = Command::new(lifeboat_bin())
        .args([
            "--config",
            "/nonexistent/lifeboat.toml",
            "schedule",
            "--print",
            "cron",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read config"));
}

/// The install commands `schedule` suggests are real commands: the render
/// step (pointed at a scratch directory instead of /etc) runs under /bin/sh
/// and writes the same units, even from a path with a space and a `%`.
#[test]
fn suggested_install_commands_run() {
    let layout = Layout::new("");
    let out = layout.schedule(&["--print", "systemd", "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps: Vec<&str> = v["next_steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let render = steps[0];
    assert!(
        render.contains(" schedule --print systemd --write /etc/systemd/system"),
        "{render}"
    );
    assert!(
        steps.iter().any(|s| s.ends_with("systemctl daemon-reload")),
        "{steps:?}"
    );
    assert!(
        steps
            .iter()
            .any(|s| s.contains("enable --now lifeboat-snapshot.timer lifeboat-drill.timer"))
    );

    let scratch = layout.root.join("etc systemd");
    let command = render
        .trim_start_matches("sudo ")
        .replace("/etc/systemd/system", &format!("'{}'", scratch.display()));
    let run = Command::new("/bin/sh")
        .arg("-c")
        .arg(&command)
        .env_remove("LIFEBOAT_CONFIG")
        .current_dir("/")
        .output()
        .unwrap();
    assert!(run.status.success(), "{command}\n{}", text(&run));
    for f in v["files"].as_array().unwrap() {
        let written = std::fs::read_to_string(scratch.join(f["name"].as_str().unwrap())).unwrap();
        assert_eq!(written, f["content"].as_str().unwrap());
    }

    // With --write elsewhere, the next step copies the files into place.
    let dir = layout.root.join("units");
    let out = layout.schedule(&[
        "--print",
        "systemd",
        "--json",
        "--write",
        dir.to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = v["next_steps"][0].as_str().unwrap();
    assert!(
        first.trim_start_matches("sudo ").starts_with("cp ")
            && first.ends_with(" /etc/systemd/system/"),
        "{first}"
    );
}
