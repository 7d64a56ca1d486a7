//! One lifeboat run at a time per `backup_dir`.
//!
//! An advisory `flock` on the store's lock file (`<backup_dir>/lifeboat.lock`), which holds the
//! holder's pid and command for the error message. The kernel drops the lock
//! when its holder dies, so a crashed run never leaves a lock that needs
//! manual cleanup; a stale pid in the file is only information.
//!
//! The lock is std's `File::try_lock` (Rust 1.89), which on Linux is
//! `flock(LOCK_EX | LOCK_NB)` on the descriptor (checked with strace), the
//! same kernel lock the hand-written call took; the waiting loop (so a stop
//! signal and the timeout are noticed) and the holder message stay ours.

use crate::error::{Error, IoContext, Kind, Result};
use crate::store::Store;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// Take the lock, waiting up to `timeout` for a running holder.
    pub fn acquire(store: &Store, command: &str, timeout: Duration) -> Result<Lock> {
        store.create()?;
        let path = store.lock_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .ctx(format!("cannot open lock file {}", path.display()))?;
        let deadline = Instant::now() + timeout;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(err)) => {
                    return Err(Error::io(format!("cannot lock {}", path.display()), err));
                }
            }
            // The wait can be long ([snapshot] lock_timeout): a stop signal
            // must end it, as it would have before lifeboat caught signals.
            crate::interrupt::check()?;
            if Instant::now() >= deadline {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() {
                    "another lifeboat process".to_string()
                } else {
                    holder.to_string()
                };
                return Err(Error::new(
                    Kind::Locked,
                    format!(
                        "another lifeboat run holds {} ({holder}); gave up after {}s",
                        path.display(),
                        timeout.as_secs()
                    ),
                )
                .with_hint("wait for it to finish; if that process is gone the lock is already free and the next run proceeds"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        file.set_len(0).ctx("cannot write lock file")?;
        file.rewind().ctx("cannot write lock file")?;
        let _ = write!(file, "pid {} ({command})", std::process::id());
        let _ = file.sync_data();
        Ok(Lock { file, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.file.set_len(0);
        // The lock itself goes with the file descriptor.
    }
}
