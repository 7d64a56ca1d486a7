//! The one way the commands write to stdout and stderr. `outln!`/`out!`
//! replace `println!`/`print!`: when the reader has gone (`lifeboat list |
//! head -1`), the write fails with `EPIPE` and the process ends as a
//! coreutils program does in that pipe, killed by `SIGPIPE`: a shell sees
//! status 141 (128 + 13), `pipefail` reports it, and nothing is printed.
//! `warnln!` (and [`crate::progress::stderr_line`]) write a line on stderr,
//! JSON with `--log-format json`, and ignore a closed stderr.
//!
//! Why not `SIGPIPE` at its default for the whole run, as C programs have
//! it: a closed *stderr* (a log pipe whose reader died) would then kill a
//! snapshot half-way, before its record is written. Rust starts with
//! `SIGPIPE` ignored, so every write returns `EPIPE` instead, and only a
//! failed write to *stdout* (the result, read by the pipe's next program)
//! ends the process: its default disposition is restored and the signal
//! raised, so the parent sees exactly what it would see of `seq`, `cat` or
//! `ls` (a wait status "killed by signal 13", which bash reports as 141).
//! When the signal cannot kill (blocked by the parent), exit 141.

use std::io::Write;

/// Print to stdout, ending the process as [`broken_pipe`] when the reader
/// has gone.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::commands::out::write_stdout(format_args!($($arg)*))
    };
}

/// Print a line to stdout, ending the process as [`broken_pipe`] when the
/// reader has gone.
macro_rules! outln {
    () => {
        $crate::commands::out::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::commands::out::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// A note for the person on stderr (`INFO` with `--log-format json`): what
/// to do next, what was written; never fails.
macro_rules! noteln {
    ($($arg:tt)*) => {
        $crate::progress::stderr_line("INFO", &format!($($arg)*))
    };
}

/// A warning for the person on stderr (JSON with `--log-format
/// json`); never fails.
macro_rules! warnln {
    ($($arg:tt)*) => {
        $crate::progress::stderr_line("WARN", &format!($($arg)*))
    };
}

/// Write to stdout now (flushed, so a closed pipe is noticed at the write
/// that meets it). `EPIPE` ends the process like `SIGPIPE`; any other
/// error (a full disk under `> file`) ends it with exit 1 and a message.
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let result = stdout.write_fmt(args).and_then(|()| stdout.flush());
    match result {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => broken_pipe(),
        Err(e) => {
            crate::progress::stderr_line("ERROR", &format!("error: cannot write to stdout: {e}"));
            std::process::exit(1);
        }
    }
}

/// End the process as if `SIGPIPE` had killed it (see the module comment).
pub fn broken_pipe() -> ! {
    // SAFETY: signal(2) and raise(3) with constant arguments; no handler
    // runs, the default disposition terminates the process.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::raise(libc::SIGPIPE);
    }
    std::process::exit(141)
}
