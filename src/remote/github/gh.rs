//! Running the `gh` CLI: one child process per call, never through a shell.
//!
//! gh sets no HTTP timeout, so a stalled connection hangs it forever: every
//! call gets its own deadline, and on expiry its whole process group is
//! killed (gh may have children of its own). stdin is null so that gh can
//! never wait for an answer, `GH_PROMPT_DISABLED` makes it fail instead of
//! prompting, and `NO_COLOR` keeps escape codes out of the text we classify.
//! The environment is inherited (gh finds its token there or in its config)
//! and never logged.
//!
//! No gh outlives lifeboat. Its own process group keeps the terminal's
//! Ctrl-C from reaching gh, so lifeboat relays every stop: the wait loop
//! polls the stop flag ([`crate::interrupt`]: SIGINT, SIGTERM, SIGHUP) and,
//! once it is set, kills gh's group and waits for it, exactly as on a
//! timeout; a gh call is not even started once the flag is set. For the
//! stops lifeboat cannot catch (SIGKILL, the OOM killer), the child asks the
//! kernel for SIGKILL when its parent dies (`PR_SET_PDEATHSIG`, Linux).

use crate::child::Ended;
use crate::error::{Error, Kind};
use crate::interrupt::{self, Flag, Interrupted};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The slowest transfer a gh upload or download is given time for, on top
/// of the configured timeout: 256 KiB/s (about 2 Mbit/s, a poor home
/// uplink). A 300 MiB archive gets 20 more minutes, a 2 GiB one 2 h 16 min;
/// a call that makes no progress at all is still killed in the end.
pub const MIN_TRANSFER_RATE: u64 = 256 << 10;

/// The `gh` binary, the deadline of each call, and the flag that stops it.
#[derive(Debug, Clone)]
pub struct Gh {
    bin: PathBuf,
    timeout: Duration,
    stop: &'static Flag,
}

/// What a finished gh call printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Why a gh call did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The binary could not be started (missing, not executable).
    Spawn(std::io::Error),
    /// The call outlived its deadline and was killed.
    TimedOut(Duration),
    /// lifeboat was asked to stop (SIGINT, SIGTERM, SIGHUP): gh was killed,
    /// or not started.
    Interrupted(Interrupted),
    /// gh ran and exited non-zero (or was killed by a signal: code -1).
    Exit(Output),
}

/// How a failure should be treated by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Retrying cannot help; the message names the fix.
    Permanent,
    /// Network, 5xx, rate limits, timeouts: try again later.
    Transient,
    /// The release (or asset) is already there: converge instead.
    AlreadyExists,
    /// gh said `release not found`. Not to be believed as such: gh prints
    /// it for failed lookups too, so the caller must confirm with the API.
    ReleaseNotFound,
    /// The API answered 404 (meaning depends on the call).
    NotFound404,
    /// lifeboat is stopping: neither retry nor converge.
    Interrupted,
}

impl Gh {
    pub fn new(bin: PathBuf, timeout: Duration) -> Gh {
        Gh {
            bin,
            timeout,
            stop: &interrupt::SIGNALS,
        }
    }

    /// Stop on `flag` instead of the process's stop signals (for tests,
    /// which must not stop each other).
    pub fn stopped_by(mut self, flag: &'static Flag) -> Gh {
        self.stop = flag;
        self
    }

    /// The stop request this gh's calls obey, if one was made.
    pub fn interrupted(&self) -> Option<Interrupted> {
        self.stop.get()
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Run gh with `args`; `Ok` only for exit status 0.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Output, Failure> {
        self.run_in(None, args)
    }

    /// Run gh in the directory `dir` (else lifeboat's own).
    pub fn run_in<S: AsRef<OsStr>>(
        &self,
        dir: Option<&Path>,
        args: &[S],
    ) -> Result<Output, Failure> {
        self.run_with_deadline(dir, args, self.timeout)
    }

    /// The deadline of a call that moves `bytes` over the network: the
    /// configured timeout, plus the time the transfer takes at
    /// [`MIN_TRANSFER_RATE`]. One fixed timeout would either kill every
    /// large upload on a slow link or leave a hung small call waiting for
    /// hours.
    pub fn transfer_timeout(&self, bytes: u64) -> Duration {
        self.timeout + Duration::from_secs(bytes.div_ceil(MIN_TRANSFER_RATE))
    }

    /// [`Gh::run_in`] with its own deadline (see [`Gh::transfer_timeout`]).
    pub fn run_with_deadline<S: AsRef<OsStr>>(
        &self,
        dir: Option<&Path>,
        args: &[S],
        timeout: Duration,
    ) -> Result<Output, Failure> {
        let shown: Vec<_> = args.iter().map(|a| a.as_ref().to_string_lossy()).collect();
        // Stopping: no new gh (it could be the one that outlives us).
        self.stop.check().map_err(Failure::Interrupted)?;
        tracing::debug!(gh = %self.bin.display(), args = ?shown, "running gh");
        let started = Instant::now();
        let mut cmd = Command::new(&self.bin);
        if let Some(dir) = dir {
            cmd.current_dir(dir);
        }
        cmd.args(args)
            .env("GH_PROMPT_DISABLED", "1")
            .env("NO_COLOR", "1")
            .env("GH_NO_UPDATE_NOTIFIER", "1")
            .env("GH_SPINNER_DISABLED", "1");
        let watch = crate::child::Watch {
            timeout,
            stop: Some(self.stop),
            die_with_parent: true,
            umask: None,
            keep: None,
        };
        let (status, stdout, stderr) = match crate::child::supervise(&mut cmd, &watch)
            .map_err(Failure::Spawn)?
        {
            Ended::Exited {
                status,
                stdout,
                stderr,
            } => (status, stdout, stderr),
            Ended::TimedOut => {
                tracing::warn!(args = ?shown, ?timeout, "gh timed out; killed");
                return Err(Failure::TimedOut(timeout));
            }
            Ended::Stopped(stop) => {
                tracing::warn!(args = ?shown, signal = stop.name(), "stop requested; gh killed");
                return Err(Failure::Interrupted(stop));
            }
        };
        let output = Output {
            code: status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        tracing::debug!(code = output.code, elapsed = ?started.elapsed(), "gh finished");
        if status.success() {
            Ok(output)
        } else {
            Err(Failure::Exit(output))
        }
    }
}

impl Failure {
    /// Classify from what gh printed (texts observed with gh 2.23 and 2.10x).
    pub fn class(&self) -> Class {
        match self {
            Failure::Spawn(_) => Class::Permanent,
            Failure::TimedOut(_) => Class::Transient,
            Failure::Interrupted(_) => Class::Interrupted,
            Failure::Exit(out) => classify(out.code, &out.stderr),
        }
    }

    /// The gh output worth showing: the last lines of stderr, trimmed.
    pub fn detail(&self) -> String {
        match self {
            Failure::Spawn(e) => e.to_string(),
            Failure::TimedOut(t) => format!("no answer within {t:?}; killed"),
            Failure::Interrupted(stop) => format!("stopped by {}", stop.name()),
            Failure::Exit(out) => {
                let text = out.stderr.trim();
                let text = if text.is_empty() {
                    format!("exit status {}", out.code)
                } else {
                    text.lines()
                        .rev()
                        .take(4)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect::<Vec<_>>()
                        .join(" / ")
                };
                if text.len() > 600 {
                    // str::floor_char_boundary is Rust 1.91; rust-version is 1.89.
                    let end = (0..=600)
                        .rev()
                        .find(|&i| text.is_char_boundary(i))
                        .unwrap_or(0);
                    format!("{}...", &text[..end])
                } else {
                    text
                }
            }
        }
    }

    /// The lifeboat error for this failure: kind from the class, a message
    /// naming what failed, and a hint naming the fix for permanent ones.
    pub fn to_error(&self, gh: &Gh, what: &str, repo: &str) -> Error {
        if let Failure::Interrupted(stop) = self {
            return Error::from(*stop).context(format!("gh was stopped while trying to {what}"));
        }
        let detail = self.detail();
        if let Failure::Spawn(e) = self {
            let err = Error::new(
                Kind::RemotePermanent,
                format!("cannot run gh (`{}`) to {what}: {e}", gh.bin.display()),
            );
            return if e.kind() == std::io::ErrorKind::NotFound {
                err.with_hint(
                    "install the GitHub CLI (`apt-get install gh`, or see https://cli.github.com), \
                     or set [github] gh = \"/path/to/gh\"; then run `lifeboat doctor`",
                )
            } else {
                err.with_hint("check [github] gh: it must be an executable gh binary")
            };
        }
        let class = self.class();
        let kind = match class {
            Class::Transient | Class::ReleaseNotFound => Kind::RemoteTransient,
            _ => Kind::RemotePermanent,
        };
        let err = Error::new(kind, format!("gh failed to {what}: {detail}"));
        if class != Class::Permanent && class != Class::NotFound404 {
            return err;
        }
        let text = match self {
            Failure::Exit(out) => out.stderr.as_str(),
            _ => "",
        };
        match permanent_cause(self, text) {
            Cause::NoAuth => err.with_hint(
                "gh is not logged in (or its token was refused): run `gh auth login`, \
                 or set GH_TOKEN for the user running lifeboat; check with `lifeboat doctor`",
            ),
            Cause::EmptyRepo => err.with_hint(format!(
                "the repository {repo} has no commits, and GitHub refuses releases there: \
                 run `lifeboat doctor --fix` (it adds a README)"
            )),
            Cause::RepoMissing => err.with_hint(format!(
                "the repository {repo} does not exist or the token cannot see it: check \
                 [github] repo, or create it with `lifeboat doctor --fix`"
            )),
            Cause::Forbidden => err.with_hint(format!(
                "the token may not write to {repo}: it needs the `repo` scope \
                 (`gh auth refresh -s repo`) and push access"
            )),
            Cause::Other => err,
        }
    }
}

enum Cause {
    NoAuth,
    EmptyRepo,
    RepoMissing,
    Forbidden,
    Other,
}

fn permanent_cause(failure: &Failure, text: &str) -> Cause {
    let code = match failure {
        Failure::Exit(out) => out.code,
        _ => 0,
    };
    if code == 4 || is_auth(text) {
        Cause::NoAuth
    } else if text.contains("Repository is empty") {
        Cause::EmptyRepo
    } else if text.contains("Could not resolve to a Repository")
        || text.contains("HTTP 404")
        || text.contains("\"workflow\" scope may be required")
    {
        Cause::RepoMissing
    } else if text.contains("HTTP 403") {
        Cause::Forbidden
    } else {
        Cause::Other
    }
}

fn is_auth(text: &str) -> bool {
    text.contains("HTTP 401")
        || text.contains("Bad credentials")
        || text.contains("Requires authentication")
        || text.contains("gh auth login")
}

/// The class of a gh failure from its exit code and stderr.
pub fn classify(code: i32, stderr: &str) -> Class {
    let t = stderr;
    let lower = t.to_ascii_lowercase();
    if code == 4 || is_auth(t) {
        return Class::Permanent;
    }
    let words = without_names(t);
    let eof = words
        .split_whitespace()
        .any(|w| w.trim_matches(|c: char| !c.is_ascii_alphanumeric()) == "eof");
    if words.contains("rate limit")
        || eof
        || t.contains("HTTP 429")
        || t.contains("status code: 429")
        || t.contains("Too Many Requests")
        || has_5xx(t)
        || [
            "error connecting",
            "no such host",
            "connection reset",
            "connection refused",
            "broken pipe",
            "timeout",
            "tls handshake",
            "dial tcp",
            "server misbehaving",
            "network is unreachable",
        ]
        .iter()
        .any(|n| words.contains(n))
    {
        return Class::Transient;
    }
    if lower.contains("already exists") {
        return Class::AlreadyExists;
    }
    if lower.contains("release not found") {
        return Class::ReleaseNotFound;
    }
    if t.contains("Repository is empty") || t.contains("Could not resolve to a Repository") {
        return Class::Permanent;
    }
    if t.contains("(HTTP 404)") || t.contains("HTTP 404:") {
        return Class::NotFound404;
    }
    if t.contains("HTTP 403") || t.contains("HTTP 422") || t.contains("scope may be required") {
        return Class::Permanent;
    }
    // Unknown: retrying a bounded number of times costs little.
    Class::Transient
}

/// gh's stderr, lowercased, without the names users choose: URLs and
/// `owner/repo` words and anything in single quotes. A network keyword must
/// not match inside a name (`geoffrey/backups` contains "eof", a repository
/// may be called `timeout-tracker`).
fn without_names(t: &str) -> String {
    let mut unquoted = String::with_capacity(t.len());
    let mut quoted = false;
    for c in t.chars() {
        if c == '\'' {
            quoted = !quoted;
        } else if !quoted {
            unquoted.push(c);
        }
    }
    unquoted
        .split_whitespace()
        .filter(|w| !w.contains('/'))
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_lowercase()
}

/// `HTTP 5xx`, `(HTTP 5xx)` or `status code: 5xx` anywhere in the text.
fn has_5xx(text: &str) -> bool {
    ["HTTP 5", "status code: 5"].iter().any(|prefix| {
        text.match_indices(prefix).any(|(i, _)| {
            let rest = &text.as_bytes()[i + prefix.len()..];
            rest.len() >= 2 && rest[0].is_ascii_digit() && rest[1].is_ascii_digit()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_match_network_keywords() {
        // Owners and repositories whose names contain "eof" or "timeout".
        assert_eq!(
            classify(
                1,
                "GraphQL: Could not resolve to a Repository with the name 'geoffrey/b'. (repository)"
            ),
            Class::Permanent
        );
        assert_eq!(
            classify(
                1,
                "HTTP 404: Not Found (https://api.github.com/repos/cleofas/timeout-x/releases/tags/snap-20261122T014500Z)"
            ),
            Class::NotFound404
        );
        // The keywords themselves still count, next to a URL.
        assert_eq!(
            classify(
                1,
                "Post \"https://uploads.github.com/repos/geoffrey/b/releases/1/assets\": unexpected EOF"
            ),
            Class::Transient
        );
        assert_eq!(
            classify(1, "read tcp 127.0.0.1:1->127.0.0.1:2: i/o timeout"),
            Class::Transient
        );
    }

    #[test]
    fn classifies_observed_texts() {
        use Class::*;
        for (code, text, want) in [
            (
                4,
                "To get started with GitHub CLI, please run:  gh auth login",
                Permanent,
            ),
            (
                1,
                "error checking for existing release: HTTP 401 (http://x/y)\nTry authenticating with:  gh auth login",
                Permanent,
            ),
            (1, "gh: Bad credentials (HTTP 401)", Permanent),
            (
                1,
                "HTTP 422: Repository is empty. (http://api/repos/o/r/releases)",
                Permanent,
            ),
            (1, "HTTP 502: Bad Gateway (http://uploads/x)", Transient),
            (
                1,
                "non-200 OK status code: 503 Service Unavailable body: \"{}\"",
                Transient,
            ),
            (
                1,
                "HTTP 403: API rate limit exceeded for user ID 1. (http://x)",
                Transient,
            ),
            (
                1,
                "HTTP 429: You have exceeded a secondary rate limit.",
                Transient,
            ),
            (
                1,
                "Post \"http://x/graphql\": read tcp 1->2: read: connection reset by peer",
                Transient,
            ),
            (
                1,
                "error connecting to api.github.com\ncheck your internet connection",
                Transient,
            ),
            (
                1,
                "dial tcp: lookup uploads.github.com: no such host",
                Transient,
            ),
            (1, "Get \"http://x\": EOF", Transient),
            (
                1,
                "a release with the same tag name already exists: snap-x",
                AlreadyExists,
            ),
            (
                1,
                "HTTP 422: Validation Failed (http://x)\nRelease.tag_name already exists",
                AlreadyExists,
            ),
            (1, "release not found", ReleaseNotFound),
            (
                1,
                "{\"message\":\"Not Found\"}gh: Not Found (HTTP 404)",
                NotFound404,
            ),
            (
                1,
                "! Failed to create release, \"workflow\" scope may be required.",
                Permanent,
            ),
            (
                1,
                "GraphQL: Could not resolve to a Repository with the name 'o/r'. (repository)",
                Permanent,
            ),
            (
                1,
                "HTTP 403: Resource not accessible by integration (http://x)",
                Permanent,
            ),
        ] {
            assert_eq!(classify(code, text), want, "{text}");
        }
    }

    #[test]
    fn missing_binary_is_permanent_with_install_hint() {
        let gh = Gh::new("/nonexistent/gh".into(), Duration::from_secs(5));
        let failure = gh.run(&["--version"]).unwrap_err();
        assert_eq!(failure.class(), Class::Permanent);
        let err = failure.to_error(&gh, "list releases", "o/r");
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert!(err.hint.unwrap().contains("install the GitHub CLI"));
    }

    #[test]
    fn transfers_get_time_for_their_size() {
        let gh = Gh::new("gh".into(), Duration::from_secs(600));
        assert_eq!(gh.transfer_timeout(0), Duration::from_secs(600));
        assert_eq!(gh.transfer_timeout(1), Duration::from_secs(601));
        // 300 MiB at 256 KiB/s: 20 minutes more.
        assert_eq!(
            gh.transfer_timeout(300 << 20),
            Duration::from_secs(600 + 1200)
        );
    }

    #[test]
    fn a_transfer_deadline_outlasts_the_call_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("slow-gh");
        std::fs::write(&script, "#!/bin/sh\nsleep 0.5\necho done\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let gh = Gh::new(script, Duration::from_millis(100));
        assert!(matches!(
            gh.run(&["release", "upload"]),
            Err(Failure::TimedOut(t)) if t == Duration::from_millis(100)
        ));
        let out = gh
            .run_with_deadline(None, &["release", "upload"], Duration::from_secs(10))
            .unwrap();
        assert_eq!(out.stdout.trim(), "done");
    }

    #[test]
    fn timeout_kills_the_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("slow-gh");
        let marker = dir.path().join("child-alive");
        // A "gh" whose child outlives it unless the whole group is killed.
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n(sleep 1; touch {}) &\nsleep 30\n",
                marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let gh = Gh::new(script, Duration::from_millis(200));
        let started = Instant::now();
        let failure = gh.run(&["release", "list"]).unwrap_err();
        assert!(matches!(failure, Failure::TimedOut(_)), "{failure:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(failure.class(), Class::Transient);
        std::thread::sleep(Duration::from_millis(1300));
        assert!(!marker.exists(), "the grandchild survived the timeout");
    }

    /// Live (not zombie) processes in process group `pgid`, from /proc.
    fn live_members(pgid: i32) -> Vec<i32> {
        let mut out = vec![];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid pgrp ...`; comm may hold anything.
            let Some((head, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
                out.push(head.split_whitespace().next().unwrap().parse().unwrap());
            }
        }
        out
    }

    #[test]
    fn a_stop_request_kills_the_process_group() {
        // A flag of this test's own: the process's would stop other tests.
        static STOP: Flag = Flag::new();
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("stalled-gh");
        let pid_file = dir.path().join("pid");
        let marker = dir.path().join("child-alive");
        // A "gh" that hangs, with a child that outlives it unless the whole
        // group is killed.
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n(sleep 2; touch '{marker}') &\n\
                 echo $$ > '{pid}.tmp' && mv '{pid}.tmp' '{pid}'\nsleep 60\n",
                marker = marker.display(),
                pid = pid_file.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let gh = Gh::new(script, Duration::from_secs(120)).stopped_by(&STOP);
        let pid_file2 = pid_file.clone();
        let stopper = std::thread::spawn(move || {
            let waited = Instant::now();
            while !pid_file2.exists() {
                assert!(
                    waited.elapsed() < Duration::from_secs(30),
                    "gh never started"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            STOP.raise(libc::SIGINT);
        });
        let started = Instant::now();
        let failure = gh.run(&["release", "upload"]).unwrap_err();
        stopper.join().unwrap();
        assert!(
            matches!(failure, Failure::Interrupted(s) if s.signal() == libc::SIGINT),
            "{failure:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "stopped promptly"
        );
        assert_eq!(failure.class(), Class::Interrupted);
        let err = failure.to_error(&gh, "upload x", "o/r");
        assert_eq!(err.kind, Kind::Interrupted);
        assert!(err.message.contains("SIGINT"), "{err}");
        let pgid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(live_members(pgid), Vec::<i32>::new(), "the group is gone");
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "the grandchild survived the stop");
    }

    #[test]
    fn no_gh_starts_once_stopping() {
        static STOP: Flag = Flag::new();
        STOP.raise(libc::SIGTERM);
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("gh");
        let marker = dir.path().join("ran");
        std::fs::write(
            &script,
            format!("#!/bin/sh\ntouch '{}'\n", marker.display()),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let gh = Gh::new(script, Duration::from_secs(10)).stopped_by(&STOP);
        let failure = gh.run(&["release", "list"]).unwrap_err();
        assert!(matches!(failure, Failure::Interrupted(_)), "{failure:?}");
        assert!(!marker.exists(), "gh was started");
    }

    #[test]
    fn stdin_is_null_and_env_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("echo-gh");
        std::fs::write(
            &script,
            "#!/bin/sh\nread line && echo \"stdin:$line\"\necho \"$GH_PROMPT_DISABLED $NO_COLOR $1\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let gh = Gh::new(script, Duration::from_secs(5));
        let out = gh.run(&["a b;c"]).unwrap();
        assert_eq!(out.stdout, "1 1 a b;c\n");
    }
}
