//! A wrong wall clock for one lifeboat process: libfaketime preloaded into
//! the real binary, so the run reads the moved clock through the same libc
//! calls as always. Needs libfaketime (`apt-get install faketime`;
//! `.ci/install-extra.sh` installs it), or its path in
//! `LIFEBOAT_TEST_LIBFAKETIME`.

use std::path::PathBuf;
use std::process::Command;

/// The preloadable libfaketime: `$LIFEBOAT_TEST_LIBFAKETIME`, else where
/// Debian's `faketime` package puts it for this machine's architecture.
pub fn libfaketime() -> PathBuf {
    if let Some(p) = std::env::var_os("LIFEBOAT_TEST_LIBFAKETIME") {
        return p.into();
    }
    let arch_dirs = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path());
    arch_dirs
        .chain([PathBuf::from("/usr/lib"), PathBuf::from("/usr/local/lib")])
        .map(|d| d.join("faketime/libfaketime.so.1"))
        .find(|p| p.is_file())
        .expect(
            "libfaketime not found: install it (`apt-get install faketime`) or set \
             LIFEBOAT_TEST_LIBFAKETIME to libfaketime.so.1",
        )
}

/// Run `cmd` with its wall clock moved by `offset` (libfaketime's syntax:
/// `+6h`, `-2d`).
pub fn with_clock<'a>(cmd: &'a mut Command, offset: &str) -> &'a mut Command {
    cmd.env("LD_PRELOAD", libfaketime())
        .env("FAKETIME", offset)
        // Only the wall clock is wrong in these scenarios: lock timeouts and
        // durations keep running on the real monotonic clock.
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
}
