//! Running the `rclone` CLI: one child process per call, never through a
//! shell, each with a deadline, stopped with lifeboat, its failures
//! classified as transient (retry later) or permanent (named with a fix).
//!
//! The process handling is gh's (`remote::github::gh`), for the same
//! reasons: rclone may hang on a stalled connection (its own `--timeout` is
//! an idle timeout of 5 minutes per connection, and it retries), so every
//! call has its own deadline after which its process group is SIGKILLed; a
//! stop signal kills it the same way, and the kernel kills it if lifeboat
//! dies unhandled (`PR_SET_PDEATHSIG`), so no rclone acts on the remote
//! after the run that started it. stdin is null and `--ask-password=false`
//! is given, so that an encrypted rclone configuration fails instead of
//! prompting. `--retries 1`: lifeboat retries whole operations itself,
//! with backoff and a bounded number of attempts (rclone's own low-level
//! retries of single requests stay on). `--log-level ERROR` keeps rclone's
//! notices and statistics out of the text that is classified and shown.
//!
//! The environment is inherited (rclone reads `RCLONE_*` settings there)
//! and never logged. rclone's errors can contain URLs; their user
//! information and query strings (signed URLs, tokens) are removed before
//! anything is shown or recorded ([`redact`]).
//!
//! Exit codes (rclone's `lib/exitcode`): 3 directory not found, 4 file not
//! found, 5 temporary error, 6 an error rclone does not retry, 7 fatal, 8
//! the `--max-transfer` quota, 9 nothing transferred (only with
//! `--error-on-no-transfer`), 10 the `--max-duration` quota. Codes 1 and 2
//! are "syntax or usage error" and "uncategorised error", swapped in rclone
//! 1.68: both are classified by what rclone printed.

use crate::child::Ended;
use crate::error::{Error, Kind};
use crate::interrupt::{self, Flag, Interrupted};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The slowest transfer an upload or download is given time for, on top of
/// the configured timeout: 256 KiB/s, as for gh.
pub const MIN_TRANSFER_RATE: u64 = 256 << 10;

/// The `rclone` binary, its configuration file, each call's deadline, and
/// the flag that stops it.
#[derive(Debug, Clone)]
pub struct Rclone {
    bin: PathBuf,
    config: Option<PathBuf>,
    timeout: Duration,
    stop: &'static Flag,
}

/// What a finished call printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Why a call did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The binary could not be started (missing, not executable).
    Spawn(std::io::Error),
    /// The call outlived its deadline and was killed.
    TimedOut(Duration),
    /// lifeboat was asked to stop: rclone was killed, or not started.
    Interrupted(Interrupted),
    /// rclone exited non-zero (or was killed by a signal: code -1).
    Exit(Output),
}

/// How a failure should be treated by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Retrying cannot help; the message names the fix.
    Permanent,
    /// Network, server errors, timeouts: try again later.
    Transient,
    /// Exit 3: the directory does not exist.
    DirNotFound,
    /// Exit 4, or rclone's "doesn't exist" for a single file.
    FileNotFound,
    /// lifeboat is stopping: neither retry nor converge.
    Interrupted,
}

impl Rclone {
    pub fn new(bin: PathBuf, config: Option<PathBuf>, timeout: Duration) -> Rclone {
        Rclone {
            bin,
            config,
            timeout,
            stop: &interrupt::SIGNALS,
        }
    }

    /// Stop on `flag` instead of the process's stop signals (tests).
    #[cfg(test)]
    pub fn stopped_by(mut self, flag: &'static Flag) -> Rclone {
        self.stop = flag;
        self
    }

    /// The stop request this rclone's calls obey, if one was made.
    pub fn interrupted(&self) -> Option<Interrupted> {
        self.stop.get()
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The deadline of a call that moves `bytes`: the configured timeout
    /// plus the time the transfer takes at [`MIN_TRANSFER_RATE`].
    pub fn transfer_timeout(&self, bytes: u64) -> Duration {
        self.timeout + Duration::from_secs(bytes.div_ceil(MIN_TRANSFER_RATE))
    }

    /// Run rclone with `args` under the configured timeout.
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<Output, Failure> {
        self.run_with_deadline(args, self.timeout)
    }

    /// Run rclone with `args` (after lifeboat's fixed flags); `Ok` only for
    /// exit status 0.
    pub fn run_with_deadline<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> Result<Output, Failure> {
        self.stop.check().map_err(Failure::Interrupted)?;
        let mut argv: Vec<OsString> = Vec::new();
        if let Some(config) = &self.config {
            argv.push("--config".into());
            argv.push(config.into());
        }
        for fixed in [
            "--ask-password=false",
            "--log-level",
            "ERROR",
            "--retries",
            "1",
        ] {
            argv.push(fixed.into());
        }
        argv.extend(args.iter().map(|a| a.as_ref().to_os_string()));
        let shown: Vec<String> = args
            .iter()
            .map(|a| redact(&a.as_ref().to_string_lossy()))
            .collect();
        tracing::debug!(rclone = %self.bin.display(), args = ?shown, "running rclone");
        let started = Instant::now();
        let mut cmd = Command::new(&self.bin);
        cmd.args(&argv);
        let watch = crate::child::Watch {
            timeout,
            stop: Some(self.stop),
            die_with_parent: true,
            // What rclone creates on this machine (a local-path remote's
            // directory and archives, a download) is the data's: private.
            umask: Some(0o077),
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
                tracing::warn!(args = ?shown, ?timeout, "rclone timed out; killed");
                return Err(Failure::TimedOut(timeout));
            }
            Ended::Stopped(stop) => {
                tracing::warn!(args = ?shown, signal = stop.name(), "stop requested; rclone killed");
                return Err(Failure::Interrupted(stop));
            }
        };
        let output = Output {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        };
        tracing::debug!(code = output.code, elapsed = ?started.elapsed(), "rclone finished");
        if status.success() {
            Ok(output)
        } else {
            Err(Failure::Exit(output))
        }
    }
}

impl Failure {
    pub fn class(&self) -> Class {
        match self {
            Failure::Spawn(_) => Class::Permanent,
            Failure::TimedOut(_) => Class::Transient,
            Failure::Interrupted(_) => Class::Interrupted,
            Failure::Exit(out) => classify(out.code, &out.stderr),
        }
    }

    /// What rclone said, redacted: its last lines of stderr.
    pub fn detail(&self) -> String {
        match self {
            Failure::Spawn(e) => e.to_string(),
            Failure::TimedOut(t) => format!("no answer within {t:?}; killed"),
            Failure::Interrupted(stop) => format!("stopped by {}", stop.name()),
            Failure::Exit(out) => {
                let lines: Vec<&str> = out
                    .stderr
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                if lines.is_empty() {
                    return if out.code < 0 {
                        "killed by a signal".into()
                    } else {
                        format!("exit status {}", out.code)
                    };
                }
                // rclone's summary line ("Failed to copyto: ...") is last.
                let text = lines[lines.len().saturating_sub(2)..].join(" / ");
                let text = redact(&strip_timestamps(&text));
                if text.len() > 600 {
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

    /// The lifeboat error for this failure: its kind from the class, a
    /// message naming what failed, and, for a permanent one, the fix.
    pub fn to_error(&self, rclone: &Rclone, what: &str, remote: &str) -> Error {
        if let Failure::Interrupted(stop) = self {
            return Error::from(*stop)
                .context(format!("rclone was stopped while trying to {what}"));
        }
        if let Failure::Spawn(e) = self {
            let err = Error::new(
                Kind::RemotePermanent,
                format!(
                    "cannot run rclone (`{}`) to {what}: {e}",
                    rclone.bin.display()
                ),
            );
            return if e.kind() == std::io::ErrorKind::NotFound {
                err.with_hint(
                    "install rclone (`apt-get install rclone`, or see https://rclone.org/install/), \
                     or set [remote.rclone] rclone = \"/path/to/rclone\"; then run `lifeboat doctor`",
                )
            } else {
                err.with_hint(
                    "check [remote.rclone] rclone: it must be an executable rclone binary",
                )
            };
        }
        let class = self.class();
        let kind = match class {
            Class::Transient => Kind::RemoteTransient,
            _ => Kind::RemotePermanent,
        };
        let err = Error::new(kind, format!("rclone failed to {what}: {}", self.detail()));
        if kind == Kind::RemoteTransient {
            return err;
        }
        let (code, text) = match self {
            Failure::Exit(out) => (out.code, out.stderr.as_str()),
            _ => (0, ""),
        };
        let hint = if text.contains("didn't find section in config file") {
            format!(
                "rclone has no remote named in \"{remote}\": create it with `rclone config` as the user \
                 running lifeboat (or point [remote.rclone] config at the rclone.conf that has it); \
                 `rclone listremotes` shows the remotes rclone knows"
            )
        } else if text.to_ascii_lowercase().contains("permission denied") {
            format!(
                "the user running lifeboat may not write to \"{remote}\" (permission denied): \
                 fix the owner or permissions there, or the account's rights on the server"
            )
        } else if is_auth(text) {
            format!(
                "the remote refused rclone's credentials: fix them with `rclone config` (or \
                 `rclone config reconnect` for a token), then check with `rclone lsjson \"{remote}\"` \
                 and `lifeboat doctor`"
            )
        } else if class == Class::DirNotFound {
            format!(
                "the directory \"{remote}\" does not exist: if this is a new remote, \
                 `lifeboat doctor --fix` creates and marks it (else fix [remote.rclone] remote)"
            )
        } else if code == 8 {
            "rclone's --max-transfer quota was reached (RCLONE_MAX_TRANSFER in the environment?): \
             remove it for the user running lifeboat"
                .into()
        } else if is_usage(text) {
            format!(
                "rclone did not accept lifeboat's command: this rclone (`{}`) may be too old; \
                 lifeboat is tested with rclone 1.60 (Debian 12) and later (`rclone version`)",
                rclone.bin.display()
            )
        } else {
            format!("check the remote with `rclone lsjson \"{remote}\"` and `lifeboat doctor`")
        };
        err.with_hint(hint)
    }
}

fn is_auth(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    // HTTP 401 and 403 as whole words: a port (`127.0.0.1:40321`) or a
    // name may contain the digits.
    let status = lower
        .split(|c: char| !c.is_ascii_alphanumeric())
        .any(|w| w == "401" || w == "403");
    status
        || [
            "unauthorized",
            "forbidden",
            "access denied",
            "accessdenied",
            "permission denied",
            "invalidaccesskeyid",
            "signaturedoesnotmatch",
            "unable to authenticate",
            "invalid_grant",
            "bad_auth",
            "couldn't decrypt",
            "unable to read obscured",
            "ssh: handshake failed",
        ]
        .iter()
        .any(|w| lower.contains(w))
}

fn is_usage(text: &str) -> bool {
    [
        "unknown flag",
        "unknown command",
        "unknown shorthand flag",
        "Usage:",
        "Command ",
        "invalid argument",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// The class of a failure from rclone's exit code and its stderr.
pub fn classify(code: i32, stderr: &str) -> Class {
    let lower = stderr.to_ascii_lowercase();
    // Configuration and credentials first: rclone marks some of these as
    // retriable (a 403 from a pacer), but retrying cannot fix them.
    if lower.contains("didn't find section in config file")
        || lower.contains("failed to create file system")
            && !lower.contains("dial tcp")
            && !lower.contains("connection")
        || is_auth(stderr)
    {
        return Class::Permanent;
    }
    match code {
        3 => Class::DirNotFound,
        4 => Class::FileNotFound,
        5 | 10 => Class::Transient,
        // -1: killed by a signal that was not ours (the OOM killer).
        -1 => Class::Transient,
        6..=9 => Class::Permanent,
        _ => {
            if is_usage(stderr) {
                Class::Permanent
            } else if lower.contains("directory not found") {
                Class::DirNotFound
            } else if lower.contains("is a directory or doesn't exist")
                || lower.contains("object not found")
                || lower.contains("file not found")
            {
                Class::FileNotFound
            } else {
                // Network trouble and anything unknown: a bounded number of
                // retries costs little, and the error is shown after them.
                Class::Transient
            }
        }
    }
}

/// rclone's log lines start with `2026/11/30 01:36:16 `: drop it.
fn strip_timestamps(text: &str) -> String {
    text.split(" / ")
        .map(|line| {
            let b = line.as_bytes();
            let stamped = b.len() > 20
                && b[4] == b'/'
                && b[7] == b'/'
                && b[10] == b' '
                && b[13] == b':'
                && b[16] == b':'
                && b[19] == b' ';
            if stamped { &line[20..] } else { line }
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

/// `text` without the secrets URLs can carry: the user information
/// (`https://user:pass@host`) and the query string (signed URLs, tokens)
/// of every URL in it.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, url) = rest.split_at(at + 3);
        out.push_str(before);
        let end = url
            .find(|c: char| c.is_whitespace() || "\"'<>`".contains(c))
            .unwrap_or(url.len());
        let (url, after) = url.split_at(end);
        let host_end = url.find(['/', '?', '#']).unwrap_or(url.len());
        let (authority, path) = url.split_at(host_end);
        match authority.rfind('@') {
            Some(i) => {
                out.push_str("REDACTED@");
                out.push_str(&authority[i + 1..]);
            }
            None => out.push_str(authority),
        }
        match path.find(['?', '#']) {
            Some(i) => {
                out.push_str(&path[..i]);
                out.push_str("?REDACTED");
            }
            None => out.push_str(path),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_and_texts_are_classified() {
        assert_eq!(
            classify(5, "dial tcp: connection refused"),
            Class::Transient
        );
        assert_eq!(classify(10, ""), Class::Transient);
        assert_eq!(classify(-1, ""), Class::Transient);
        assert_eq!(classify(3, "directory not found"), Class::DirNotFound);
        assert_eq!(classify(4, ""), Class::FileNotFound);
        for code in 6..=9 {
            assert_eq!(classify(code, "x"), Class::Permanent, "{code}");
        }
        // 1 and 2 swapped meanings in rclone 1.68: the text decides.
        for code in [1, 2] {
            assert_eq!(
                classify(
                    code,
                    "Failed to create file system for \"b2:x\": didn't find section in config file"
                ),
                Class::Permanent
            );
            assert_eq!(
                classify(code, "Error: unknown flag: --hash-type"),
                Class::Permanent
            );
            assert_eq!(
                classify(
                    code,
                    "Failed to deletefile: /r/x is a directory or doesn't exist"
                ),
                Class::FileNotFound
            );
            assert_eq!(
                classify(code, "read: connection reset by peer"),
                Class::Transient
            );
            assert_eq!(
                classify(code, "AccessDenied: Access Denied status code: 403"),
                Class::Permanent
            );
        }
        // Ports and names with the digits of 401 or 403 are not statuses.
        assert_eq!(
            classify(
                5,
                "Propfind \"http://127.0.0.1:40321/x\": dial tcp 127.0.0.1:40321: connect: connection refused"
            ),
            Class::Transient
        );
        assert_eq!(
            classify(1, "Failed to copyto: Put \"http://h/snap-4031.x\": EOF"),
            Class::Transient
        );
        // A refused credential is not retried even when rclone says 5.
        assert_eq!(classify(5, "401 Unauthorized"), Class::Permanent);
    }

    #[test]
    fn urls_lose_their_secrets() {
        assert_eq!(
            redact(
                "Put \"https://bob:hunter2@dav.example/x/y.tar.gz?X-Amz-Signature=abc&t=1\": EOF"
            ),
            "Put \"https://REDACTED@dav.example/x/y.tar.gz?REDACTED\": EOF"
        );
        assert_eq!(
            redact("a http://h:8/p b https://u@h c"),
            "a http://h:8/p b https://REDACTED@h c"
        );
        assert_eq!(redact("no url here"), "no url here");
    }

    #[test]
    fn detail_shows_the_last_lines_without_timestamps() {
        let f = Failure::Exit(Output {
            code: 5,
            stdout: Vec::new(),
            stderr: "2026/11/30 01:36:27 ERROR : : error listing: x\n\
                     2026/11/30 01:36:27 Failed to lsjson: Propfind \"http://u:p@h/\": dial tcp: refused\n"
                .into(),
        });
        assert_eq!(
            f.detail(),
            "ERROR : : error listing: x / Failed to lsjson: Propfind \"http://REDACTED@h/\": dial tcp: refused"
        );
    }

    #[test]
    fn a_missing_binary_names_the_install() {
        let rclone = Rclone::new(
            PathBuf::from("/nonexistent/rclone"),
            None,
            Duration::from_secs(5),
        );
        let f = rclone.run(&["version"]).unwrap_err();
        assert_eq!(f.class(), Class::Permanent);
        let err = f.to_error(&rclone, "list", "x:");
        assert_eq!(err.kind, Kind::RemotePermanent);
        assert!(err.hint.unwrap().contains("apt-get install rclone"));
    }

    /// A hung rclone (a script that sleeps) is killed at its deadline or
    /// when lifeboat is asked to stop, whichever comes first.
    #[test]
    fn a_hung_rclone_is_killed() {
        static STOP: Flag = Flag::new();
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("rclone");
        std::fs::write(&bin, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let rclone = Rclone::new(bin, None, Duration::from_millis(300)).stopped_by(&STOP);
        let started = Instant::now();
        let f = rclone.run(&["lsjson", "x:"]).unwrap_err();
        assert!(matches!(f, Failure::TimedOut(_)), "{f:?}");
        assert_eq!(f.class(), Class::Transient);
        let rclone = Rclone {
            timeout: Duration::from_secs(60),
            ..rclone
        };
        let t = std::thread::spawn(|| {
            std::thread::sleep(Duration::from_millis(200));
            STOP.raise(libc::SIGTERM);
        });
        let f = rclone.run(&["lsjson", "x:"]).unwrap_err();
        t.join().unwrap();
        assert_eq!(f.class(), Class::Interrupted);
        assert!(started.elapsed() < Duration::from_secs(20));
        // Once stopping, no rclone is started at all.
        assert!(matches!(
            rclone.run(&["version"]).unwrap_err(),
            Failure::Interrupted(_)
        ));
    }
}
