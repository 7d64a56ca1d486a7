//! Accounts and groups: names to ids and back, from the system's password
//! and group databases (NSS, so LDAP and `systemd-userdb` accounts work as
//! well as `/etc/passwd`). The audit log names who ran a command; the
//! schedule renders a job for an account; a snapshot records who owned each
//! database so that a restore on another machine, where ids differ, can give
//! the files back to the account of the same name.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Size of the buffer the `*_r` lookups write strings into; glibc's
/// suggested size is far smaller, and a larger entry only fails its lookup.
const BUF: usize = 16 * 1024;

/// The account name of `uid`.
pub fn account_name(uid: libc::uid_t) -> Option<String> {
    account(uid).map(|(name, _)| name)
}

/// The account name and home directory of `uid`.
pub fn account(uid: libc::uid_t) -> Option<(String, PathBuf)> {
    let mut buf = vec![0u8; BUF];
    // SAFETY: a zeroed passwd is a valid out-parameter for getpwuid_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage.
    let rc = unsafe {
        libc::getpwuid_r(
            uid,
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success both fields point to NUL-terminated strings in `buf`.
    let (name, dir) = unsafe { (CStr::from_ptr(pwd.pw_name), CStr::from_ptr(pwd.pw_dir)) };
    let name = name.to_str().ok()?.to_string();
    let home = PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes()));
    Some((name, home))
}

/// The uid of the account called `name`.
pub fn uid_of(name: &str) -> Option<libc::uid_t> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0u8; BUF];
    // SAFETY: a zeroed passwd is a valid out-parameter for getpwnam_r.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; every other pointer refers to live,
    // correctly sized storage.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(pwd.pw_uid)
}

/// The name of group `gid`.
pub fn group_name(gid: libc::gid_t) -> Option<String> {
    let mut buf = vec![0u8; BUF];
    // SAFETY: a zeroed group is a valid out-parameter for getgrgid_r.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: every pointer refers to live, correctly sized storage.
    let rc = unsafe {
        libc::getgrgid_r(
            gid,
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return None;
    }
    // SAFETY: on success gr_name points to a NUL-terminated string in `buf`.
    let name = unsafe { CStr::from_ptr(grp.gr_name) };
    Some(name.to_str().ok()?.to_string())
}

/// The gid of the group called `name`.
pub fn gid_of(name: &str) -> Option<libc::gid_t> {
    let name = CString::new(name).ok()?;
    let mut buf = vec![0u8; BUF];
    // SAFETY: a zeroed group is a valid out-parameter for getgrnam_r.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; every other pointer refers to live,
    // correctly sized storage.
    let rc = unsafe {
        libc::getgrnam_r(
            name.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut result,
        )
    };
    (rc == 0 && !result.is_null()).then_some(grp.gr_gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_and_nobody_round_trip() {
        assert_eq!(account_name(0).as_deref(), Some("root"));
        assert_eq!(uid_of("root"), Some(0));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(gid_of("root"), Some(0));
        assert_eq!(uid_of("no-such-account-lifeboat"), None);
        assert_eq!(gid_of("no\0such"), None, "a NUL in a name is no name");
    }
}
