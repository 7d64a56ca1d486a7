//! `lifeboat doctor` for a GitHub remote: gh installed, gh authenticated for
//! the host, the repository configured, existing, private and not empty.
//! `--fix` performs the one fix that is safe to automate: create a missing
//! repository (private, with a README), or give an empty one its README.

use super::gh::{Class, Failure, Gh};
use crate::config::GithubConfig;
use crate::remote::Checks as Report;
use std::path::PathBuf;
use std::time::Duration;

/// The host gh talks to: `GH_HOST`, else github.com.
fn gh_host() -> String {
    std::env::var("GH_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "github.com".into())
}

pub fn check(g: &GithubConfig, fix: bool, report: &mut Report) {
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
                Failure::Exit(super::gh::Output {
                    code: 0,
                    stdout: out.stdout.clone(),
                    stderr: format!("unexpected `gh repo view` output: {e}"),
                })
            }),
        Err(Failure::Exit(out))
            if out.stderr.contains("Could not resolve to a Repository")
                || super::gh::classify(out.code, &out.stderr) == Class::NotFound404 =>
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
}
