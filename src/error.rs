//! lifeboat's error type.
//!
//! Every failure a user can meet carries a kind (so callers and the exit code
//! can match on it), a message that names the problem, and where possible a
//! hint that names the fix. The binary prints `error: <message>` and then
//! `  hint: <hint>`.

use std::fmt;

/// What went wrong, coarsely: enough to choose an exit code and for callers
/// (retry loops, health) to react without parsing text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The configuration file is missing, unreadable or invalid.
    Config,
    /// The command line is wrong (unknown tag, conflicting flags, ...).
    Usage,
    /// Another lifeboat run holds the lock.
    Locked,
    /// A source database is missing, not SQLite, unreadable or busy.
    Database,
    /// An archive is unreadable, tampered with, or hostile.
    Archive,
    /// A remote failed and retrying will not help.
    RemotePermanent,
    /// A remote failed in a way that may pass (network, 5xx, rate limit).
    RemoteTransient,
    /// A restore or migration check refused to go on.
    Refused,
    /// Anything else from the operating system (disk full, permissions).
    Io,
    /// SIGINT, SIGTERM or SIGHUP stopped the run at a safe point (see
    /// [`crate::interrupt`]).
    Interrupted,
}

#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn config(message: impl Into<String>) -> Error {
        Error::new(Kind::Config, message)
    }

    pub fn usage(message: impl Into<String>) -> Error {
        Error::new(Kind::Usage, message)
    }

    pub fn database(message: impl Into<String>) -> Error {
        Error::new(Kind::Database, message)
    }

    pub fn archive(message: impl Into<String>) -> Error {
        Error::new(Kind::Archive, message)
    }

    pub fn refused(message: impl Into<String>) -> Error {
        Error::new(Kind::Refused, message)
    }

    /// An I/O error with the path or action it concerns.
    pub fn io(context: impl fmt::Display, err: std::io::Error) -> Error {
        let hint = match err.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => Some(
                "the disk is full: free space (or prune old snapshots) and run again".to_string(),
            ),
            Some(libc::EACCES) | Some(libc::EPERM) => Some(
                "check the file's owner and permissions for the user running lifeboat".to_string(),
            ),
            Some(libc::EROFS) => Some("the filesystem is read-only".to_string()),
            _ => None,
        };
        Error {
            kind: Kind::Io,
            message: format!("{context}: {err}"),
            hint,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// Prefix the message with what was being done.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The process exit code for this error: 2 for configuration and usage
    /// errors (nothing was attempted), 128 + the signal's number for a run
    /// a signal stopped (130 SIGINT, 143 SIGTERM, 129 SIGHUP, as a shell
    /// reports a process the signal killed), 1 for a run that failed.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            Kind::Config | Kind::Usage => 2,
            // The signal is the process's, not the error's: an interrupted
            // error only arises once one was received (else: as for Ctrl-C).
            Kind::Interrupted => crate::interrupt::received().map_or(130, |s| s.exit_code()),
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<crate::interrupt::Interrupted> for Error {
    fn from(stop: crate::interrupt::Interrupted) -> Error {
        Error::new(Kind::Interrupted, format!("interrupted by {}", stop.name())).with_hint(
            "lifeboat stopped at a safe point and recorded the run; run it again \
             (a snapshot that was not pushed stays queued, and the next run pushes it first)",
        )
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        Error::database(err.to_string())
    }
}

/// Attach context to an `io::Result`, the common case.
pub trait IoContext<T> {
    fn ctx(self, context: impl fmt::Display) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, context: impl fmt::Display) -> Result<T> {
        self.map_err(|e| Error::io(context, e))
    }
}
