//! Stop signals: SIGINT (Ctrl-C), SIGTERM and SIGHUP end a run at its next
//! safe point, with the child `gh` stopped and the run recorded, instead of
//! killing lifeboat on the spot.
//!
//! Why: gh runs in its own process group (so that a timeout can kill gh and
//! everything it started), so the terminal's Ctrl-C never reaches it, and a
//! lifeboat killed by a signal's default action left gh running. Such an
//! orphan once deleted a release that the next run had just confirmed
//! (issue 14). So lifeboat catches these three signals. The handler only
//! stores the signal's number in an atomic (async-signal-safe) and writes a
//! fixed line to stderr; everything else happens in ordinary code that polls
//! the flag:
//! - a gh call in progress (`remote::github::gh`) kills gh's process group
//!   within milliseconds, waits for it, and fails as interrupted; no gh is
//!   started once the flag is set, and retry back-offs end early;
//! - the run wrapper, the lock wait, the push queue (between snapshots) and
//!   the backup pipeline (before the push, before and after the sweep)
//!   turn the flag into an [`Interrupted`] error, which the run wrapper
//!   records in `last_run.json` like any failure. A snapshot that was not
//!   pushed keeps its pending-push marker, so the next run pushes it.
//!
//! The choice: a step that is not a gh call (a hot copy, the compression, a
//! restore's checks and swap, verifying an archive) is finished, then the
//! run stops at the next check point. Those steps are crash-safe, so
//! stopping inside them would be safe too, but it would lose the record;
//! finishing costs at most the length of one step. Further signals are
//! absorbed the same way rather than killing lifeboat half-way through
//! stopping gh. SIGKILL cannot be caught: the kernel then kills gh too
//! (`PR_SET_PDEATHSIG`, set in gh's child process), so `kill -9` stays the
//! way to stop at once, at the price of the record.
//!
//! A signal that was ignored when lifeboat started (`nohup` ignores SIGHUP)
//! stays ignored. The exit code of an interrupted run is 128 + the signal's
//! number, as a shell reports a process killed by it: 130 for SIGINT, 143
//! for SIGTERM, 129 for SIGHUP.

use std::sync::atomic::{AtomicI32, Ordering};

/// The signals that stop a run.
pub const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// The process-wide flag the signal handler sets.
pub static SIGNALS: Flag = Flag::new();

/// A stop request: which signal asked lifeboat to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    signal: libc::c_int,
}

impl Interrupted {
    pub fn signal(self) -> libc::c_int {
        self.signal
    }

    pub fn name(self) -> &'static str {
        match self.signal {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            _ => "a signal",
        }
    }

    /// 128 + the signal's number, the shell's convention.
    pub fn exit_code(self) -> i32 {
        128 + self.signal
    }
}

/// Where a stop request is kept: [`SIGNALS`] for the process; tests give a
/// gh call a flag of its own so that no other test sees it.
#[derive(Debug)]
pub struct Flag(AtomicI32);

impl Flag {
    pub const fn new() -> Flag {
        Flag(AtomicI32::new(0))
    }

    /// Ask to stop. The first signal wins: it names the cause and the exit
    /// code. Async-signal-safe (one atomic compare-and-swap).
    pub fn raise(&self, signal: libc::c_int) {
        let _ = self
            .0
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// The stop request, if one was made.
    pub fn get(&self) -> Option<Interrupted> {
        match self.0.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(Interrupted { signal }),
        }
    }

    /// A check point: `Err` once a stop was requested.
    pub fn check(&self) -> Result<(), Interrupted> {
        self.get().map_or(Ok(()), Err)
    }
}

impl Default for Flag {
    fn default() -> Flag {
        Flag::new()
    }
}

/// The signal that asked this process to stop, if any.
pub fn received() -> Option<Interrupted> {
    SIGNALS.get()
}

/// A check point for the process: `Err` once a stop signal arrived.
pub fn check() -> Result<(), Interrupted> {
    SIGNALS.check()
}

/// Catch [`STOP_SIGNALS`] for the rest of the process's life. Called once,
/// by the binary, before anything else runs; calling it again changes
/// nothing. A signal whose disposition is "ignore" is left ignored.
pub fn install() -> std::io::Result<()> {
    for signal in STOP_SIGNALS {
        // SAFETY: sigaction(2) with a null new action only reads the current
        // disposition into `old`, a zeroed (valid) sigaction we own.
        let old = unsafe {
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(signal, std::ptr::null(), &mut old) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            old
        };
        if old.sa_sigaction == libc::SIG_IGN {
            continue;
        }
        // SAFETY: the action is fully initialised (zeroed, then an empty
        // mask and the handler), and the handler only does async-signal-safe
        // work: an atomic compare-and-swap, write(2), and saving/restoring
        // errno. SA_RESTART keeps system calls of other threads from failing
        // with EINTR because of it.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            libc::sigemptyset(&mut action.sa_mask);
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// The handler: record the signal, say so on stderr. Nothing that can
/// allocate, lock or block.
extern "C" fn on_signal(signal: libc::c_int) {
    SIGNALS.raise(signal);
    const LINE: &[u8] =
        b"lifeboat: interrupted: stopping at the next safe point, then recording the run\n";
    errno::preserved(|| {
        // SAFETY: write(2) is async-signal-safe; LINE is a valid static
        // buffer. A failed or short write is of no consequence.
        unsafe {
            libc::write(2, LINE.as_ptr().cast(), LINE.len());
        }
    });
}

/// errno, saved and restored around the handler's write(2) so that the code
/// it interrupted never sees a changed errno. Where lifeboat does not know
/// how to reach errno, the handler writes nothing.
mod errno {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn location() -> Option<*mut libc::c_int> {
        // SAFETY: returns the calling thread's errno slot; always valid.
        Some(unsafe { libc::__errno_location() })
    }

    #[cfg(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "dragonfly"
    ))]
    fn location() -> Option<*mut libc::c_int> {
        // SAFETY: returns the calling thread's errno slot; always valid.
        Some(unsafe { libc::__error() })
    }

    #[cfg(not(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "dragonfly"
    )))]
    fn location() -> Option<*mut libc::c_int> {
        None
    }

    /// Run `f` (async-signal-safe) with errno restored afterwards.
    pub fn preserved(f: impl FnOnce()) {
        let Some(at) = location() else { return };
        // SAFETY: `at` is this thread's errno slot, valid and aligned.
        let saved = unsafe { *at };
        f();
        // SAFETY: as above.
        unsafe { *at = saved };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_signal_names_the_stop() {
        let flag = Flag::new();
        assert_eq!(flag.check(), Ok(()));
        flag.raise(libc::SIGTERM);
        flag.raise(libc::SIGINT);
        let stop = flag.get().unwrap();
        assert_eq!(stop.name(), "SIGTERM");
        assert_eq!(stop.exit_code(), 143);
        assert_eq!(flag.check(), Err(stop));
    }
}
