//! A child process lifeboat does not control, supervised: started in its own
//! process group with a deadline, its output collected, and the whole group
//! SIGKILLed when the deadline passes or a stop is asked for. One runner for
//! every program lifeboat runs: `gh` and `rclone` (which also stop with
//! lifeboat, die with it when it dies unhandled, and are retried when their
//! binary is briefly busy), the `[notify]` hooks and the tool probes of
//! `lifeboat version` (whose output is bounded).

use crate::interrupt::{Flag, Interrupted};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a supervised child ended.
#[derive(Debug)]
pub enum Ended {
    /// It exited (or was killed by a signal it did not get from us).
    Exited {
        status: ExitStatus,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
    },
    /// It was still running at the deadline; its process group was killed.
    TimedOut,
    /// A stop was asked for (Ctrl-C, SIGTERM); its process group was killed.
    Stopped(Interrupted),
}

/// How to supervise a child.
#[derive(Debug, Clone, Copy)]
pub struct Watch<'a> {
    pub timeout: Duration,
    /// Kill it when this flag is raised.
    pub stop: Option<&'a Flag>,
    /// Have the kernel SIGKILL it when lifeboat dies in a way it cannot
    /// handle (SIGKILL, the OOM killer, a crash; Linux only): a program
    /// acting on a remote must not outlive the run that started it, since
    /// a later run may already have confirmed what it would undo.
    pub die_with_parent: bool,
    /// The child's umask (what it creates on this machine stays private).
    pub umask: Option<libc::mode_t>,
    /// Keep at most this many bytes of each output (a chatty hook must not
    /// fill memory); the rest is read and dropped.
    pub keep: Option<u64>,
}

impl Watch<'_> {
    /// A deadline only, output bounded: hooks and probes.
    pub fn bounded(timeout: Duration) -> Watch<'static> {
        Watch {
            timeout,
            stop: None,
            die_with_parent: false,
            umask: None,
            keep: Some(64 * 1024),
        }
    }
}

/// Run `cmd` (stdin from /dev/null, stdout and stderr captured) for at most
/// `timeout`, output bounded. An error only when it cannot be started.
pub fn run(cmd: &mut Command, timeout: Duration) -> std::io::Result<Ended> {
    supervise(cmd, &Watch::bounded(timeout))
}

/// Run `cmd` under `watch`. An error only when it cannot be started.
///
/// The thread that calls this spawns the child and waits until it is gone,
/// whatever happens: the kernel's parent-death signal is tied to the thread
/// that forked the child, so that thread must outlive it.
pub fn supervise(cmd: &mut Command, watch: &Watch) -> std::io::Result<Ended> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if watch.die_with_parent || watch.umask.is_some() {
        prepare(cmd, watch.die_with_parent, watch.umask);
    }
    let started = Instant::now();
    // "Text file busy": the binary is still open for writing somewhere (a
    // package upgrade replacing it, or a process forked while it was
    // written). It passes within moments; anything else is final.
    let mut busy_waits = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && busy_waits < 50 => {
                busy_waits += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other?,
        }
    };
    let keep = watch.keep;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                match keep {
                    Some(n) => {
                        let _ = p.by_ref().take(n).read_to_end(&mut buf);
                        let _ = std::io::copy(&mut p, &mut std::io::sink());
                    }
                    None => {
                        let _ = p.read_to_end(&mut buf);
                    }
                }
            }
            buf
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = started + watch.timeout;
    let mut pause = Duration::from_millis(2);
    let killed = |child: &mut std::process::Child, ended: Ended| {
        kill_group(child.id());
        let _ = child.wait();
        ended
    };
    loop {
        if let Some(stop) = watch.stop.and_then(Flag::get) {
            let ended = killed(&mut child, Ended::Stopped(stop));
            let _ = (stdout.join(), stderr.join());
            return Ok(ended);
        }
        match child.try_wait() {
            Ok(Some(status)) => {
                // A grandchild that kept the pipes open must not hold us
                // past the deadline either: end the group, then collect.
                kill_group(child.id());
                return Ok(Ended::Exited {
                    status,
                    stdout: stdout.join().unwrap_or_default(),
                    stderr: stderr.join().unwrap_or_default(),
                });
            }
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(10));
            }
            // At the deadline (or when it cannot even be waited for).
            _ => {
                let ended = killed(&mut child, Ended::TimedOut);
                let _ = (stdout.join(), stderr.join());
                return Ok(ended);
            }
        }
    }
}

/// The parent-death signal and the umask, set in the forked child before
/// exec.
#[cfg(target_os = "linux")]
fn prepare(cmd: &mut Command, die_with_parent: bool, umask: Option<libc::mode_t>) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (prctl, getppid, umask); its
    // error is built from a raw code, without allocating.
    unsafe {
        cmd.pre_exec(move || {
            if die_with_parent {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // lifeboat died between fork and prctl: the child was
                // already re-parented, and the death signal will never come.
                if libc::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
            }
            if let Some(mask) = umask {
                libc::umask(mask);
            }
            Ok(())
        });
    }
}

/// No parent-death signal outside Linux: there, only the stops lifeboat can
/// catch stop the child; a SIGKILL of lifeboat leaves it running.
#[cfg(not(target_os = "linux"))]
fn prepare(cmd: &mut Command, _die_with_parent: bool, umask: Option<libc::mode_t>) {
    if let Some(mask) = umask {
        // SAFETY: umask(2) in the forked child before exec is
        // async-signal-safe.
        unsafe {
            cmd.pre_exec(move || {
                libc::umask(mask);
                Ok(())
            });
        }
    }
}

fn kill_group(pid: u32) {
    // SAFETY: kill(2) on the process group created for this child
    // (process_group(0) makes its pid the group id). Before the child is
    // reaped the id cannot be reused; after it, only its own descendants
    // can still be in the group (a new group would need a new leader pid,
    // and the pid of a reaped leader is not reused while members remain).
    unsafe {
        libc::kill(-(pid as libc::pid_t), libc::SIGKILL);
    }
}
