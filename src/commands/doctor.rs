//! `lifeboat doctor`: is the remote ready to receive snapshots?
//!
//! For GitHub: gh installed, gh authenticated for the host, the repository
//! configured, existing, private and not empty. For a directory remote: the
//! directory exists and is writable. Every failing check says how to fix it;
//! `--fix` performs the one fix that is safe to automate (create a missing
//! repository, private, with a README; or give an empty one its README) and
//! writes nothing else.

use super::Global;
use crate::config::{Config, DirRemoteConfig, GithubConfig};
use crate::error::Result;
use crate::remote::gh::{Class, Failure, Gh};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Create the GitHub repository if it is missing (private, with a
    /// README), or add a README to an empty one. Changes nothing else.
    #[arg(long)]
    pub fix: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Ok,
    Fail,
    Skipped,
}

#[derive(Debug, serde::Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    /// What to do about a failed check.
    pub fix: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub ok: bool,
    pub remote: String,
    pub checks: Vec<Check>,
    /// What `--fix` changed.
    pub fixed: Vec<String>,
}

impl Report {
    fn push(&mut self, name: &'static str, status: Status, detail: String, fix: Option<String>) {
        self.checks.push(Check {
            name,
            status,
            detail,
            fix,
        });
    }
    fn ok(&mut self, name: &'static str, detail: impl Into<String>) {
        self.push(name, Status::Ok, detail.into(), None);
    }
    fn fail(&mut self, name: &'static str, detail: impl Into<String>, fix: impl Into<String>) {
        self.push(name, Status::Fail, detail.into(), Some(fix.into()));
    }
    fn skip(&mut self, names: &[&'static str], why: &str) {
        for name in names {
            self.push(name, Status::Skipped, why.to_string(), None);
        }
    }
}

pub fn run(global: &Global, args: DoctorArgs) -> Result<i32> {
    let config = global.load_config()?;
    let report = diagnose(&config, args.fix);
    if global.json {
        global.print_json(&report);
    } else {
        print_text(&report);
    }
    Ok(if report.ok { 0 } else { 1 })
}

/// Run every check (and the fix, when asked).
pub fn diagnose(config: &Config, fix: bool) -> Report {
    let mut report = Report {
        ok: true,
        remote: "none".into(),
        checks: vec![],
        fixed: vec![],
    };
    match (&config.github, &config.remote_dir) {
        (Some(g), _) => {
            report.remote = format!("github:{}", g.repo);
            check_github(g, fix, &mut report);
        }
        (None, Some(d)) => {
            report.remote = format!("dir:{}", d.path.display());
            check_dir(d, &mut report);
        }
        (None, None) => report.fail(
            "remote configured",
            "no remote is configured: snapshots stay on this machine",
            "add [github] repo = \"owner/name\" (or [remote.dir] path = \"/mnt/backups\") to the config",
        ),
    }
    report.ok = report.checks.iter().all(|c| c.status != Status::Fail);
    report
}

fn print_text(report: &Report) {
    println!("remote: {}", report.remote);
    for c in &report.checks {
        let label = match c.status {
            Status::Ok => "ok  ",
            Status::Fail => "FAIL",
            Status::Skipped => "skip",
        };
        println!("{label} {}: {}", c.name, c.detail);
        if let Some(fix) = &c.fix {
            println!("     fix: {fix}");
        }
    }
    for f in &report.fixed {
        println!("fixed: {f}");
    }
    if report
        .checks
        .iter()
        .any(|c| c.name == "private" && c.status == Status::Fail)
    {
        println!();
        println!("WARNING: the backup repository is PUBLIC: anyone can download your databases.");
    }
    println!(
        "{}",
        if report.ok {
            "all checks passed"
        } else {
            "some checks failed"
        }
    );
}

fn check_dir(d: &DirRemoteConfig, report: &mut Report) {
    let path = &d.path;
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return report.fail(
                "directory",
                format!("{} is not a directory", path.display()),
                "point [remote.dir] path at a directory",
            );
        }
        Err(e) => {
            return report.fail(
                "directory",
                format!("{}: {e}", path.display()),
                format!(
                    "create it (`mkdir -p {}`) or mount the drive, then run doctor again",
                    path.display()
                ),
            );
        }
    }
    report.ok("directory", format!("{} exists", path.display()));
    match tempfile::Builder::new()
        .prefix(".lifeboat-doctor-")
        .tempfile_in(path)
    {
        Ok(_) => report.ok("writable", format!("{} is writable", path.display())),
        Err(e) => report.fail(
            "writable",
            format!("cannot write in {}: {e}", path.display()),
            "give the user running lifeboat write access (or remount read-write)",
        ),
    }
}

/// The host gh talks to: `GH_HOST`, else github.com.
fn gh_host() -> String {
    std::env::var("GH_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "github.com".into())
}

fn check_github(g: &GithubConfig, fix: bool, report: &mut Report) {
    const LATER: [&str; 4] = ["authenticated", "repository", "private", "not empty"];
    // Doctor's calls are small: a minute each is plenty even when the
    // configured push timeout is long.
    let gh = Gh::new(resolve(&g.gh), g.timeout.min(Duration::from_secs(60)));
    match gh.run(&["--version"]) {
        Ok(out) => report.ok(
            "gh installed",
            format!(
                "{} ({})",
                out.stdout.lines().next().unwrap_or("").trim(),
                gh.bin().display()
            ),
        ),
        Err(f) => {
            report.fail(
                "gh installed",
                f.detail(),
                format!(
                    "install the GitHub CLI (`apt-get install gh`, or https://cli.github.com), \
                     or set [github] gh = \"/path/to/gh\" (now `{}`)",
                    g.gh.display()
                ),
            );
            return report.skip(&LATER, "gh is not available");
        }
    }
    let host = gh_host();
    match gh.run(&["auth", "status", "--hostname", &host]) {
        Ok(_) => report.ok("authenticated", format!("gh is logged in to {host}")),
        Err(f) => {
            report.fail(
                "authenticated",
                format!("gh is not logged in to {host}: {}", f.detail()),
                format!("run `gh auth login --hostname {host}` (or set GH_TOKEN) as the user running lifeboat"),
            );
            return report.skip(&LATER[1..], "gh is not authenticated");
        }
    }
    report.ok("repo configured", format!("[github] repo = \"{}\"", g.repo));
    let mut info = view(&gh, &g.repo);
    if fix {
        info = apply_fix(&gh, &g.repo, info, report);
    }
    let repo = match info {
        Ok(Some(r)) => r,
        Ok(None) => {
            report.fail(
                "repository",
                format!("{} does not exist (or the token cannot see it)", g.repo),
                format!(
                    "run `lifeboat doctor --fix` (runs `gh repo create {} --private --add-readme`), \
                     or fix [github] repo",
                    g.repo
                ),
            );
            return report.skip(&LATER[2..], "no repository");
        }
        Err(f) => {
            report.fail(
                "repository",
                format!("cannot look up {}: {}", g.repo, f.detail()),
                "check the network and the token's access, then run doctor again",
            );
            return report.skip(&LATER[2..], "repository lookup failed");
        }
    };
    report.ok("repository", format!("{} exists", repo.name_with_owner));
    if repo.is_private {
        report.ok("private", "the repository is private");
    } else {
        report.fail(
            "private",
            format!("{} is PUBLIC: every snapshot pushed there can be downloaded by anyone", repo.name_with_owner),
            format!(
                "make it private now (GitHub: Settings > General > Danger Zone > Change visibility, \
                 or `gh repo edit {} --visibility private`), and delete any releases already pushed",
                repo.name_with_owner
            ),
        );
    }
    if repo.is_empty {
        report.fail(
            "not empty",
            format!(
                "{} has no commits: GitHub refuses releases in an empty repository",
                repo.name_with_owner
            ),
            "run `lifeboat doctor --fix` (adds a README), or push any commit",
        );
    } else {
        report.ok("not empty", "the repository has commits");
    }
}

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepoInfo {
    name_with_owner: String,
    is_private: bool,
    is_empty: bool,
}

/// `Ok(None)` when the repository does not exist.
fn view(gh: &Gh, repo: &str) -> std::result::Result<Option<RepoInfo>, Failure> {
    match gh.run(&[
        "repo",
        "view",
        repo,
        "--json",
        "nameWithOwner,isPrivate,isEmpty",
    ]) {
        Ok(out) => serde_json::from_str(out.stdout.trim())
            .map(Some)
            .map_err(|e| {
                Failure::Exit(crate::remote::gh::Output {
                    code: 0,
                    stdout: out.stdout.clone(),
                    stderr: format!("unexpected `gh repo view` output: {e}"),
                })
            }),
        Err(Failure::Exit(out))
            if out.stderr.contains("Could not resolve to a Repository")
                || crate::remote::gh::classify(out.code, &out.stderr) == Class::NotFound404 =>
        {
            Ok(None)
        }
        Err(f) => Err(f),
    }
}

/// `--fix`: create a missing repository (private, with a README), or give
/// an empty one a README. Returns the state after the fix.
fn apply_fix(
    gh: &Gh,
    repo: &str,
    info: std::result::Result<Option<RepoInfo>, Failure>,
    report: &mut Report,
) -> std::result::Result<Option<RepoInfo>, Failure> {
    match info {
        Ok(None) => {
            match gh.run(&["repo", "create", repo, "--private", "--add-readme"]) {
                Ok(_) => report
                    .fixed
                    .push(format!("created private repository {repo} with a README")),
                Err(f) => report.fail(
                    "fix",
                    format!(
                        "`gh repo create {repo} --private --add-readme` failed: {}",
                        f.detail()
                    ),
                    "create the repository on GitHub by hand (private, with a README)",
                ),
            }
            view(gh, repo)
        }
        Ok(Some(r)) if r.is_empty => {
            let content = base64(
                b"# lifeboat backups\n\nSnapshots are stored as releases of this repository.\n",
            );
            let path = format!("repos/{repo}/contents/README.md");
            match gh.run(&[
                "api",
                "-X",
                "PUT",
                &path,
                "-f",
                "message=lifeboat: add README so releases can be created",
                "-f",
                &format!("content={content}"),
                "--silent",
            ]) {
                Ok(_) => report
                    .fixed
                    .push(format!("added a README to the empty repository {repo}")),
                Err(f) => report.fail(
                    "fix",
                    format!("adding a README to {repo} failed: {}", f.detail()),
                    "push any commit to the repository by hand",
                ),
            }
            view(gh, repo)
        }
        other => other,
    }
}

/// `gh` resolved on PATH when given as a bare name, for a clear report.
fn resolve(gh: &std::path::Path) -> PathBuf {
    if gh.components().count() == 1 {
        which::which(gh).unwrap_or_else(|_| gh.to_path_buf())
    } else {
        gh.to_path_buf()
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn dir_remote_checks() {
        let dir = tempfile::tempdir().unwrap();
        let mut report = Report {
            ok: true,
            remote: String::new(),
            checks: vec![],
            fixed: vec![],
        };
        check_dir(
            &DirRemoteConfig {
                path: dir.path().to_path_buf(),
            },
            &mut report,
        );
        assert!(
            report.checks.iter().all(|c| c.status == Status::Ok),
            "{report:?}"
        );
        let mut report = Report {
            ok: true,
            remote: String::new(),
            checks: vec![],
            fixed: vec![],
        };
        check_dir(
            &DirRemoteConfig {
                path: dir.path().join("missing"),
            },
            &mut report,
        );
        assert_eq!(report.checks[0].status, Status::Fail);
        assert!(report.checks[0].fix.as_ref().unwrap().contains("mkdir -p"));
    }
}
