//! Job definitions for cron, systemd and launchd, rendered from the templates
//! checked in under `jobs/`.
//!
//! The templates are compiled in, so what `lifeboat schedule --print` emits
//! is exactly what `jobs/` shows, with its `@NAME@` fields filled in from the
//! configuration and the binary path. Users then never hand-edit a path, and
//! a unit can never point at a config or data directory that does not match.
//!
//! Rendering is pure: [`Context`] carries every fact about the machine, so
//! tests render for any layout without touching the host.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Which scheduler to render for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    Cron,
    Systemd,
    Launchd,
}

/// A template file from `jobs/`.
pub struct Template {
    /// Path below `jobs/`.
    pub path: &'static str,
    pub text: &'static str,
}

macro_rules! template {
    ($path:literal) => {
        Template {
            path: $path,
            text: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/", $path)),
        }
    };
}

/// Every template under `jobs/`. A test checks that this list and the
/// directory agree, so a new file in `jobs/` cannot be forgotten here.
pub const TEMPLATES: &[Template] = &[
    template!("lifeboat.cron"),
    template!("systemd/lifeboat-snapshot.service"),
    template!("systemd/lifeboat-snapshot.timer"),
    template!("systemd/lifeboat-drill.service"),
    template!("systemd/lifeboat-drill.timer"),
    template!("systemd/user/lifeboat-snapshot.service"),
    template!("systemd/user/lifeboat-drill.service"),
    template!("launchd/lifeboat.snapshot.plist"),
    template!("launchd/lifeboat.drill.plist"),
];

/// The placeholders templates may use. Anything else between `@`s that looks
/// like one is a bug in a template, caught by the tests.
pub const PLACEHOLDERS: &[&str] = &[
    "@LIFEBOAT@",
    "@CONFIG@",
    "@USER@",
    "@READ_WRITE_PATHS@",
    "@ENVIRONMENT@",
    "@CRON_USER@",
    "@LOG_PREFIX@",
    "@LOG_SUFFIX@",
    "@LOG_DIR@",
    "@MINUTE@",
    "@DRILL_MINUTE@",
];

pub fn template(path: &str) -> &'static str {
    TEMPLATES
        .iter()
        .find(|t| t.path == path)
        .map(|t| t.text)
        .unwrap_or_else(|| panic!("no template jobs/{path}"))
}

/// Everything about the machine that goes into a job definition.
#[derive(Debug, Clone)]
pub struct Context {
    /// The absolute path of the `lifeboat` binary to run.
    pub lifeboat: PathBuf,
    /// The absolute path of the configuration file.
    pub config: PathBuf,
    /// Render user-level jobs (`systemctl --user`, a personal crontab).
    pub user_mode: bool,
    /// The account the jobs run as (system units and `/etc/cron.d`).
    pub user: String,
    /// That account's home directory (launchd log files).
    pub home: PathBuf,
    /// Directories the job must be able to write (systemd's sandbox).
    pub read_write: Vec<PathBuf>,
    /// Environment variables the job needs, in order (PATH first).
    pub environment: Vec<(String, String)>,
    /// Send cron output to the journal with `systemd-cat` (else to `log_file`).
    pub journal: bool,
    /// Where cron output goes when there is no journal.
    pub log_file: PathBuf,
    /// The minute of the hour the snapshot runs at ([`minute_for`]).
    pub minute: u8,
}

/// The minute of the hour an installation's hourly snapshot runs at,
/// derived from `seed` (its name): installations sharing a remote, or a
/// machine, start at different minutes instead of all at one, and the
/// same installation always gets the same minute. (FNV-1a: stable across
/// versions and platforms, unlike `std`'s hasher.)
pub fn minute_for(seed: &str) -> u8 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % 60) as u8
}

/// The drill's minute: half an hour from the snapshot's, so the two never
/// wait for each other's lock.
fn drill_minute(minute: u8) -> u8 {
    (minute + 30) % 60
}

/// One rendered file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rendered {
    /// File name to install it under.
    pub name: String,
    /// Where it usually goes on this kind of system.
    pub install_dir: String,
    /// The template it came from, below `jobs/`.
    pub template: String,
    pub content: String,
}

/// Render the job files for `scheduler`.
pub fn render(scheduler: Scheduler, ctx: &Context) -> Result<Vec<Rendered>> {
    for (what, p) in [("binary", &ctx.lifeboat), ("config", &ctx.config)] {
        if !p.is_absolute() {
            return Err(Error::usage(format!(
                "the {what} path {} is not absolute; a scheduled job has no working directory to resolve it against",
                p.display()
            )));
        }
    }
    if let Some((key, _)) = ctx
        .environment
        .iter()
        .find(|(k, v)| [k, v].iter().any(|s| s.contains('\n') || s.contains('\r')))
    {
        return Err(Error::usage(format!(
            "the environment variable {key} contains a newline, which cannot be written into a job definition"
        )));
    }
    let mut paths: Vec<&Path> = vec![&ctx.lifeboat, &ctx.config, &ctx.home, &ctx.log_file];
    paths.extend(ctx.read_write.iter().map(PathBuf::as_path));
    for p in paths {
        if p.to_str()
            .is_none_or(|s| s.contains('\n') || s.contains('\r'))
        {
            return Err(Error::usage(format!(
                "the path {} contains a newline or is not UTF-8, which cannot be written into a job definition",
                p.display()
            ))
            .with_hint("move it to a plain path and point the config at it"));
        }
    }
    let home_dir = ctx.home.to_string_lossy();
    let files: Vec<(String, String, String)> = match (scheduler, ctx.user_mode) {
        (Scheduler::Cron, false) => vec![file("lifeboat.cron", "lifeboat", "/etc/cron.d")],
        (Scheduler::Cron, true) => vec![file("lifeboat.cron", "lifeboat.cron", "crontab -e")],
        (Scheduler::Systemd, user) => {
            let (dir, services) = if user {
                (format!("{home_dir}/.config/systemd/user"), "systemd/user")
            } else {
                ("/etc/systemd/system".to_string(), "systemd")
            };
            ["snapshot", "drill"]
                .into_iter()
                .flat_map(|job| {
                    [
                        (
                            format!("{services}/lifeboat-{job}.service"),
                            format!("lifeboat-{job}.service"),
                        ),
                        (
                            format!("systemd/lifeboat-{job}.timer"),
                            format!("lifeboat-{job}.timer"),
                        ),
                    ]
                })
                .map(|(t, n)| (t, n, dir.clone()))
                .collect()
        }
        // launchd jobs are always agents: gh keeps its login in the user's
        // Keychain, which a LaunchDaemon cannot read.
        (Scheduler::Launchd, _) => {
            let dir = format!("{home_dir}/Library/LaunchAgents");
            vec![
                file(
                    "launchd/lifeboat.snapshot.plist",
                    "lifeboat.snapshot.plist",
                    &dir,
                ),
                file("launchd/lifeboat.drill.plist", "lifeboat.drill.plist", &dir),
            ]
        }
    };
    Ok(files
        .into_iter()
        .map(|(template_path, name, install_dir)| Rendered {
            content: fill(template(&template_path), &template_path, scheduler, ctx),
            name,
            install_dir,
            template: template_path,
        })
        .collect())
}

fn file(template: &str, name: &str, dir: &str) -> (String, String, String) {
    (template.into(), name.into(), dir.into())
}

/// Fill a template's placeholders with values escaped for its format.
fn fill(text: &str, template_path: &str, scheduler: Scheduler, ctx: &Context) -> String {
    let path = |p: &Path| p.to_string_lossy().into_owned();
    let mut out = String::with_capacity(text.len() + 512);
    // Say where a file came from, so that whoever finds it in /etc knows how
    // to render it again. (A plist cannot start with a comment, and a path
    // may hold `--`, which an XML comment may not.)
    if scheduler != Scheduler::Launchd {
        out.push_str(&format!(
            "# Rendered by `lifeboat schedule` (lifeboat {}) from jobs/{template_path}\n# for {}.\n",
            env!("CARGO_PKG_VERSION"),
            path(&ctx.config)
        ));
    }
    for line in text.lines() {
        // A line that is only `@ENVIRONMENT@` becomes one line per variable,
        // indented like the placeholder.
        if line.trim() == "@ENVIRONMENT@" {
            let indent = &line[..line.len() - line.trim_start().len()];
            for (key, value) in &ctx.environment {
                let entry = match scheduler {
                    Scheduler::Cron => format!("{key}={value}"),
                    Scheduler::Systemd => {
                        format!("Environment={}", systemd_quote(&format!("{key}={value}")))
                    }
                    Scheduler::Launchd => format!(
                        "<key>{}</key><string>{}</string>",
                        xml_escape(key),
                        xml_escape(value)
                    ),
                };
                out.push_str(indent);
                out.push_str(&entry);
                out.push('\n');
            }
            continue;
        }
        let mut line = line.to_string();
        let value = |name: &str| -> String {
            match (name, scheduler) {
                ("@LIFEBOAT@", _) => escape(&path(&ctx.lifeboat), scheduler),
                ("@CONFIG@", _) => escape(&path(&ctx.config), scheduler),
                ("@USER@", _) => escape(&ctx.user, scheduler),
                ("@LOG_DIR@", _) => escape(&format!("{}/Library/Logs", path(&ctx.home)), scheduler),
                ("@READ_WRITE_PATHS@", _) => ctx
                    .read_write
                    .iter()
                    .map(|p| escape(&path(p), scheduler))
                    .collect::<Vec<_>>()
                    .join(" "),
                ("@CRON_USER@", _) if ctx.user_mode => String::new(),
                ("@CRON_USER@", _) => format!("{} ", ctx.user),
                ("@LOG_PREFIX@", _) if ctx.journal => "systemd-cat -t lifeboat ".into(),
                // The log lives in backup_dir, which the first run creates;
                // the shell opens the log before lifeboat starts.
                ("@LOG_PREFIX@", _) => format!(
                    "mkdir -p -m 0700 {} && ",
                    escape(
                        &path(ctx.log_file.parent().unwrap_or(Path::new("/"))),
                        scheduler
                    )
                ),
                ("@MINUTE@", _) => format!("{:02}", ctx.minute),
                ("@DRILL_MINUTE@", _) => format!("{:02}", drill_minute(ctx.minute)),
                ("@LOG_SUFFIX@", _) if ctx.journal => String::new(),
                ("@LOG_SUFFIX@", _) => {
                    format!(" >>{} 2>&1", escape(&path(&ctx.log_file), scheduler))
                }
                _ => unreachable!("unknown placeholder {name}"),
            }
        };
        // systemd expands `$VAR` in command lines (even inside quotes), so
        // a `$` in a path there must be written `$$`; elsewhere it is literal.
        let command_line = scheduler == Scheduler::Systemd && line.starts_with("ExecStart");
        for name in PLACEHOLDERS {
            if line.contains(name) {
                let v = value(name);
                let v = if command_line {
                    v.replace('$', "$$")
                } else {
                    v
                };
                line = line.replace(name, &v);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn escape(s: &str, scheduler: Scheduler) -> String {
    match scheduler {
        Scheduler::Cron => cron_quote(s),
        Scheduler::Systemd => systemd_quote(s),
        Scheduler::Launchd => xml_escape(s),
    }
}

fn is_plain(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,=@".contains(&b))
}

/// One word for a systemd unit setting: quoted when needed, and `%` doubled
/// because systemd expands `%` specifiers in most settings.
fn systemd_quote(s: &str) -> String {
    let s = s.replace('%', "%%");
    if is_plain(&s) {
        s
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

/// One word for cron's `/bin/sh` command field: single-quoted when needed,
/// and `%` escaped because cron turns a bare `%` into a newline.
fn cron_quote(s: &str) -> String {
    let quoted = if is_plain(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    };
    quoted.replace('%', "\\%")
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The directories a job writes, without duplicates or nested repeats.
pub fn read_write_paths(candidates: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = candidates.into_iter().collect();
    all.sort();
    let mut out: Vec<PathBuf> = Vec::new();
    for p in all {
        if !out.iter().any(|kept| p.starts_with(kept)) {
            out.push(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(user_mode: bool) -> Context {
        Context {
            lifeboat: "/usr/local/bin/lifeboat".into(),
            config: "/srv/my app/lifeboat.toml".into(),
            user_mode,
            user: "alice".into(),
            home: "/home/alice".into(),
            read_write: vec!["/srv/my app/data".into(), "/mnt/nas 100%".into()],
            environment: vec![
                ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
                ("GH_CONFIG_DIR".into(), "/home/alice/.config/gh".into()),
            ],
            journal: true,
            log_file: "/srv/my app/data/backups/lifeboat.log".into(),
            minute: 7,
        }
    }

    #[test]
    fn minutes_are_spread_and_stable() {
        // Stable: a rebuilt machine with the same name runs at the same minute.
        assert_eq!(minute_for("shop-prod"), minute_for("shop-prod"));
        assert!(minute_for("shop-prod") < 60);
        // Spread: 100 names take many different minutes, not one.
        let minutes: std::collections::HashSet<u8> = (0..100)
            .map(|i| minute_for(&format!("host{i}-app")))
            .collect();
        assert!(minutes.len() > 40, "{minutes:?}");
        assert_eq!(drill_minute(45), 15);
    }

    #[test]
    fn every_template_is_filled_completely() {
        for scheduler in [Scheduler::Cron, Scheduler::Systemd, Scheduler::Launchd] {
            for user in [false, true] {
                for f in render(scheduler, &ctx(user)).unwrap() {
                    assert!(
                        !PLACEHOLDERS.iter().any(|p| f.content.contains(p)),
                        "{}: {}",
                        f.name,
                        f.content
                    );
                }
            }
        }
    }

    /// Every `@WORD@` in a text (`@NAME@` is how the comments refer to them).
    fn placeholders_in(text: &str) -> Vec<&str> {
        let mut found = vec![];
        let mut rest = text;
        while let Some(i) = rest.find('@') {
            let after = &rest[i + 1..];
            match after.find('@') {
                Some(j)
                    if j > 0
                        && after[..j]
                            .bytes()
                            .all(|b| b.is_ascii_uppercase() || b == b'_') =>
                {
                    found.push(&rest[i..i + j + 2]);
                    rest = &after[j + 1..];
                }
                _ => rest = after,
            }
        }
        found
    }

    #[test]
    fn templates_use_only_known_placeholders() {
        let mut used = std::collections::HashSet::new();
        for t in TEMPLATES {
            for p in placeholders_in(t.text) {
                assert!(
                    p == "@NAME@" || PLACEHOLDERS.contains(&p),
                    "jobs/{} uses unknown placeholder {p}",
                    t.path
                );
                used.insert(p);
            }
        }
        for p in PLACEHOLDERS {
            assert!(used.contains(p), "{p} is used by no template");
        }
        assert_eq!(placeholders_in("a@system-service @USER@ x"), ["@USER@"]);
    }

    #[test]
    fn systemd_command_lines_escape_dollar_and_env_newlines_are_refused() {
        let mut c = ctx(false);
        c.config = PathBuf::from("/srv/$HOME/lifeboat.toml");
        let files = render(Scheduler::Systemd, &c).unwrap();
        let svc = &files[0].content;
        assert!(
            svc.contains("--config \"/srv/$$HOME/lifeboat.toml\""),
            "{svc}"
        );
        let mut c = ctx(false);
        c.environment
            .push(("GH_CONFIG_DIR".into(), "/x\nExecStartPre=/bin/evil".into()));
        let err = render(Scheduler::Systemd, &c).unwrap_err();
        assert!(err.message.contains("GH_CONFIG_DIR"), "{}", err.message);
    }

    #[test]
    fn systemd_quotes_and_escapes_specifiers() {
        let files = render(Scheduler::Systemd, &ctx(false)).unwrap();
        let svc = &files[0].content;
        assert!(svc.contains(
            "ExecStart=/usr/local/bin/lifeboat --config \"/srv/my app/lifeboat.toml\" -v snapshot"
        ));
        assert!(svc.contains("ReadWritePaths=\"/srv/my app/data\" \"/mnt/nas 100%%\""));
        assert!(svc.contains("User=alice"));
        assert!(svc.contains("Environment=PATH=/usr/local/bin:/usr/bin:/bin\n"));
        let user = render(Scheduler::Systemd, &ctx(true)).unwrap();
        assert_eq!(user[0].install_dir, "/home/alice/.config/systemd/user");
        assert!(!user[0].content.contains("User="));
    }

    #[test]
    fn cron_quotes_for_the_shell_and_escapes_percent() {
        let sys = &render(Scheduler::Cron, &ctx(false)).unwrap()[0].content;
        assert!(sys.contains(
            "alice systemd-cat -t lifeboat /usr/local/bin/lifeboat --config '/srv/my app/lifeboat.toml' -v snapshot\n"
        ), "{sys}");
        let mut c = ctx(true);
        c.journal = false;
        c.config = "/srv/100%/it's.toml".into();
        let user = &render(Scheduler::Cron, &c).unwrap()[0].content;
        assert!(user.contains(
            "*    mkdir -p -m 0700 '/srv/my app/data/backups' && /usr/local/bin/lifeboat --config '/srv/100\\%/it'\\''s.toml' -v drill >>'/srv/my app/data/backups/lifeboat.log' 2>&1\n"
        ), "{user}");
    }

    #[test]
    fn refuses_relative_and_newline_paths() {
        let mut c = ctx(false);
        c.config = "lifeboat.toml".into();
        assert!(render(Scheduler::Cron, &c).is_err());
        let mut c = ctx(false);
        c.read_write.push("/srv/a\nb".into());
        assert!(render(Scheduler::Systemd, &c).is_err());
    }

    #[test]
    fn read_write_paths_drop_nested_ones() {
        let got = read_write_paths(["/d/backups".into(), "/d".into(), "/mnt".into()]);
        assert_eq!(got, vec![PathBuf::from("/d"), PathBuf::from("/mnt")]);
    }
}
