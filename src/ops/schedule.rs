//! Schedule: the hourly snapshot and the daily drill as cron, systemd or
//! launchd jobs, rendered for this config and this binary from the
//! templates in `jobs/` ([`crate::schedule`] renders; this finds what the
//! jobs need from this machine, writes them when asked, and says how to
//! install them).

use crate::config::{Config, RemoteConfig};
use crate::error::{Error, IoContext, Result};
use crate::schedule::{self, Context, Rendered, Scheduler};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    pub scheduler: Scheduler,
    /// User-level jobs (a personal crontab, `systemctl --user`).
    pub user: bool,
    /// Write the files into this directory instead of returning them only.
    pub write: Option<PathBuf>,
    /// The lifeboat binary the jobs run (absolute).
    pub lifeboat: PathBuf,
}

#[derive(Debug, serde::Serialize)]
pub struct ScheduleReport {
    pub scheduler: Scheduler,
    pub user: bool,
    pub run_as: String,
    pub files: Vec<Rendered>,
    pub written: Vec<PathBuf>,
    pub next_steps: Vec<String>,
    pub warnings: Vec<String>,
}

/// Render (and with `write`, write) the jobs.
pub fn schedule(config: &Config, opts: &ScheduleOptions) -> Result<ScheduleReport> {
    let (ctx, warnings) = context(config, opts.lifeboat.clone(), opts.user)?;
    let files = schedule::render(opts.scheduler, &ctx)?;
    let mut written = Vec::new();
    if let Some(dir) = &opts.write {
        std::fs::create_dir_all(dir).ctx(format!("cannot create {}", dir.display()))?;
        for f in &files {
            let target = dir.join(&f.name);
            crate::fsutil::write_atomic(&target, f.content.as_bytes())?;
            // Schedulers read these as another user (cron.d insists on not
            // group/other-writable; launchd and systemd read them as root).
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o644))
                .ctx(format!("cannot set permissions on {}", target.display()))?;
            written.push(target);
        }
    }
    let next_steps = next_steps(
        opts.scheduler,
        opts.user,
        opts.write.as_deref(),
        &files,
        &ctx,
    );
    Ok(ScheduleReport {
        scheduler: opts.scheduler,
        user: opts.user,
        run_as: ctx.user.clone(),
        files,
        written,
        next_steps,
        warnings,
    })
}

/// What the jobs need from this machine: paths, the account, gh's setup.
fn context(config: &Config, lifeboat: PathBuf, user_mode: bool) -> Result<(Context, Vec<String>)> {
    let mut warnings = Vec::new();
    if lifeboat.components().any(|c| c.as_os_str() == "target") {
        warnings.push(format!(
            "{} looks like a build directory; install lifeboat (cargo install --path .) and render the jobs with the installed binary, or a `cargo clean` breaks them",
            lifeboat.display()
        ));
    }
    // System jobs run as the owner of the data: the backups are private to
    // that account, and gh's login lives in its home.
    let uid = if user_mode {
        // SAFETY: geteuid cannot fail.
        unsafe { libc::geteuid() }
    } else {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&config.data_dir)
            .map_err(|e| {
                Error::io(
                    format!("cannot read data_dir {}", config.data_dir.display()),
                    e,
                )
            })?
            .uid()
    };
    let (user, home) = crate::accounts::account(uid).ok_or_else(|| {
        Error::config(format!(
            "uid {uid}, the owner of {}, has no account name",
            config.data_dir.display()
        ))
        .with_hint("chown data_dir to the account the application runs as")
    })?;
    if !user_mode && uid == 0 {
        warnings.push(format!(
            "{} is owned by root, so the jobs run as root; chown it to the application's account if that is not intended",
            config.data_dir.display()
        ));
    }
    // SAFETY: geteuid cannot fail.
    let same_account = uid == unsafe { libc::geteuid() };

    let mut read_write = vec![config.data_dir.clone(), config.backup_dir.clone()];
    for remote in &config.remotes {
        match remote {
            RemoteConfig::Dir(d) => read_write.push(d.path.clone()),
            // A local path, and rclone's configuration directory: backends
            // with OAuth tokens (Drive, OneDrive, Dropbox, ...) rewrite the
            // file when they refresh the token.
            RemoteConfig::Rclone(r) => {
                if r.remote.starts_with('/') {
                    read_write.push(PathBuf::from(&r.remote));
                }
                // (Only one that exists: without it, rclone is configured
                // some other way, and a missing ReadWritePaths entry would
                // stop systemd from starting the unit.)
                let conf_dir = match &r.config {
                    Some(file) => file.parent().map(Path::to_path_buf),
                    None => Some(home.join(".config").join("rclone")),
                };
                read_write.extend(conf_dir.filter(|d| d.is_dir()));
            }
            RemoteConfig::Github(_) => {}
        }
    }
    if let Some(parent) = config.health.metrics_file.as_ref().and_then(|m| m.parent()) {
        read_write.push(parent.to_path_buf());
    }
    let read_write = schedule::read_write_paths(read_write);
    for p in &read_write {
        if !p.is_dir() {
            warnings.push(format!(
                "{} does not exist yet; systemd refuses to start a unit whose ReadWritePaths are missing: create it (mkdir -p -m 0700) first",
                p.display()
            ));
        }
    }

    // cron and launchd start jobs with a bare PATH; systemd's default lacks
    // ~/.local/bin. Put gh's directory first when it is not a standard one,
    // so that the job runs the same gh as the shell that rendered it.
    let mut path_dirs: Vec<PathBuf> = ["/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin"]
        .into_iter()
        .map(PathBuf::from)
        .filter(|d| d != Path::new("/opt/homebrew/bin") || d.is_dir())
        .collect();
    let mut environment = Vec::new();
    let github = config.remotes.iter().find_map(|r| match r {
        RemoteConfig::Github(g) => Some(g),
        RemoteConfig::Dir(_) | RemoteConfig::Rclone(_) => None,
    });
    // The same for rclone: the job runs the rclone the shell found.
    for r in &config.remotes {
        let RemoteConfig::Rclone(r) = r else { continue };
        match which::which(&r.rclone) {
            Ok(bin) => {
                if let Some(dir) = bin.parent()
                    && !path_dirs.iter().any(|d| d == dir)
                {
                    path_dirs.insert(0, dir.to_path_buf());
                }
            }
            Err(_) => warnings.push(format!(
                "`{}` is not installed or not on PATH; install rclone before the first scheduled run (lifeboat doctor checks it)",
                r.rclone.display()
            )),
        }
    }
    if let Some(g) = github {
        match which::which(&g.gh) {
            Ok(gh) => {
                if let Some(dir) = gh.parent()
                    && !path_dirs.iter().any(|d| d == dir)
                {
                    path_dirs.insert(0, dir.to_path_buf());
                }
            }
            Err(_) => warnings.push(format!(
                "`{}` is not installed or not on PATH; install gh before the first scheduled run (lifeboat doctor checks it)",
                g.gh.display()
            )),
        }
    }
    let path = path_dirs
        .iter()
        .map(|d| d.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(":");
    environment.push(("PATH".to_string(), path));
    if github.is_some() {
        let gh_config = match std::env::var_os("GH_CONFIG_DIR") {
            Some(d) if same_account && !d.is_empty() => PathBuf::from(d),
            _ => match std::env::var_os("XDG_CONFIG_HOME") {
                Some(x) if same_account && !x.is_empty() => PathBuf::from(x).join("gh"),
                _ => home.join(".config").join("gh"),
            },
        };
        environment.push((
            "GH_CONFIG_DIR".to_string(),
            gh_config.to_string_lossy().into_owned(),
        ));
        environment.push(("GH_NO_UPDATE_NOTIFIER".to_string(), "1".to_string()));
        environment.push(("GH_PROMPT_DISABLED".to_string(), "1".to_string()));
    }

    let journal = which::which("systemd-cat").is_ok();
    Ok((
        Context {
            lifeboat,
            config: config.file.clone(),
            user_mode,
            user,
            home,
            read_write,
            environment,
            journal,
            log_file: config.store().log_file(),
            // Unnamed: spread by the configuration's path instead.
            minute: crate::schedule::minute_for(&config.installation.map_or_else(
                || config.file.to_string_lossy().into_owned(),
                |n| n.to_string(),
            )),
        },
        warnings,
    ))
}

/// The commands that install what was rendered, ready to paste: absolute
/// paths, and `sudo` only where root is needed and not already held (sudo
/// drops `$LIFEBOAT_CONFIG` and usually `~/.cargo/bin` from `PATH`).
fn next_steps(
    scheduler: Scheduler,
    user: bool,
    written: Option<&Path>,
    files: &[Rendered],
    ctx: &Context,
) -> Vec<String> {
    // SAFETY: geteuid cannot fail.
    let sudo = if user || unsafe { libc::geteuid() } == 0 {
        ""
    } else {
        "sudo "
    };
    let install_dir = files
        .first()
        .map(|f| f.install_dir.clone())
        .unwrap_or_default();
    let lifeboat = format!(
        "{} --config {}",
        sh_quote(&ctx.lifeboat.to_string_lossy()),
        sh_quote(&ctx.config.to_string_lossy())
    );
    let kind = match scheduler {
        Scheduler::Cron => "cron",
        Scheduler::Systemd => "systemd",
        Scheduler::Launchd => "launchd",
    };
    let user_flag = if user { " --user" } else { "" };
    let mut steps = Vec::new();
    // Put the files where the scheduler reads them.
    match (scheduler, user, written) {
        (Scheduler::Cron, false, None) => steps.push(format!(
            "{lifeboat} schedule --print cron | {sudo}tee /etc/cron.d/lifeboat >/dev/null"
        )),
        (Scheduler::Cron, true, _) => steps.push(format!(
            "(crontab -l 2>/dev/null; {lifeboat} schedule --print cron --user) | crontab -"
        )),
        (_, _, None) => steps.push(format!(
            "{sudo}{lifeboat} schedule --print {kind}{user_flag} --write {}",
            sh_quote(&install_dir)
        )),
        (_, _, Some(dir)) if dir != Path::new(&install_dir) => {
            for f in files {
                steps.push(format!(
                    "{sudo}cp {} {}/",
                    sh_quote(&dir.join(&f.name).to_string_lossy()),
                    sh_quote(&install_dir)
                ));
            }
        }
        _ => {}
    }
    match (scheduler, user) {
        (Scheduler::Cron, _) => {}
        (Scheduler::Systemd, false) => {
            steps.push(format!("{sudo}systemctl daemon-reload"));
            steps.push(format!(
                "{sudo}systemctl enable --now lifeboat-snapshot.timer lifeboat-drill.timer"
            ));
            steps.push("systemctl list-timers 'lifeboat-*'".into());
        }
        (Scheduler::Systemd, true) => {
            steps.push("systemctl --user daemon-reload".into());
            steps.push(
                "systemctl --user enable --now lifeboat-snapshot.timer lifeboat-drill.timer".into(),
            );
            steps.push(
                "loginctl enable-linger \"$USER\"   # keep the timers running while logged out"
                    .into(),
            );
        }
        (Scheduler::Launchd, _) => {
            for f in files {
                steps.push(format!(
                    "launchctl bootstrap gui/$(id -u) {}/{}",
                    sh_quote(&install_dir),
                    f.name
                ));
            }
        }
    }
    steps.push(format!("{lifeboat} health   # after the first run"));
    steps
}

fn sh_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+:,=@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
