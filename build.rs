//! Build-time facts for `lifeboat version`: the git commit the binary was
//! built from and whether the work tree was dirty (when git and a
//! repository are available; "unknown" otherwise, as in a `cargo install`
//! from a crate tarball), and the target triple.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    // Only the repository whose top level is this crate: a crate unpacked
    // under some other repository must not claim its commit.
    let own = git(&["-C", &manifest_dir, "rev-parse", "--show-toplevel"]).is_some_and(|top| {
        std::fs::canonicalize(&top).ok() == std::fs::canonicalize(&manifest_dir).ok()
    });
    let (commit, dirty) = if own {
        let commit = git(&["-C", &manifest_dir, "rev-parse", "HEAD"]);
        let dirty = git(&[
            "-C",
            &manifest_dir,
            "status",
            "--porcelain",
            "--untracked-files=no",
        ])
        .map(|s| if s.is_empty() { "false" } else { "true" });
        (commit, dirty)
    } else {
        (None, None)
    };
    println!(
        "cargo:rustc-env=LIFEBOAT_GIT_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    println!(
        "cargo:rustc-env=LIFEBOAT_GIT_DIRTY={}",
        dirty.unwrap_or("unknown")
    );
    println!(
        "cargo:rustc-env=LIFEBOAT_TARGET={}",
        std::env::var("TARGET").unwrap_or_else(|_| "unknown".into())
    );
    // Rebuild when HEAD moves or the index changes.
    if own {
        for path in ["HEAD", "index"] {
            if let Some(p) = git(&["-C", &manifest_dir, "rev-parse", "--git-path", path]) {
                let p = std::path::Path::new(&manifest_dir).join(p);
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
        if let Some(r) = git(&["-C", &manifest_dir, "symbolic-ref", "-q", "HEAD"])
            && let Some(p) = git(&["-C", &manifest_dir, "rev-parse", "--git-path", &r])
        {
            println!(
                "cargo:rerun-if-changed={}",
                std::path::Path::new(&manifest_dir).join(p).display()
            );
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
    // An edited source file makes the tree dirty without touching the index.
    println!("cargo:rerun-if-changed=src");
}
