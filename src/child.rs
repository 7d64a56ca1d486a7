//! A child process with a deadline: started in its own process group, its
//! output collected, and the whole group SIGKILLed when the deadline passes.
//! Used where lifeboat runs a program it does not control and must not wait
//! for forever: the `[notify]` hooks and the tool probes of `lifeboat
//! version`. (gh has its own runner, `remote::github::gh`, which also stops
//! on a stop signal and retries a busy executable.)

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How a bounded child ended.
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
}

/// Run `cmd` (stdin from /dev/null, stdout and stderr captured) for at most
/// `timeout`. An error only when it cannot be started.
pub fn run(cmd: &mut Command, timeout: Duration) -> std::io::Result<Ended> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                // Keep a bounded amount: a chatty hook must not fill memory.
                let _ = p.by_ref().take(64 * 1024).read_to_end(&mut buf);
                let _ = std::io::copy(&mut p, &mut std::io::sink());
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
    let deadline = started + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait()? {
            Some(status) => {
                // A grandchild that kept the pipes open must not hold us
                // past the deadline either: end the group, then collect.
                kill_group(child.id());
                return Ok(Ended::Exited {
                    status,
                    stdout: stdout.join().unwrap_or_default(),
                    stderr: stderr.join().unwrap_or_default(),
                });
            }
            None if Instant::now() >= deadline => {
                kill_group(child.id());
                let _ = child.wait();
                let _ = (stdout.join(), stderr.join());
                return Ok(Ended::TimedOut);
            }
            None => {
                std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
                pause = (pause * 2).min(Duration::from_millis(20));
            }
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
