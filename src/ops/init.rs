//! `lifeboat init`: write a commented `lifeboat.toml` for the databases the
//! user names (`NAME=PATH`) or that are found under a directory (files that
//! start with SQLite's 16-byte header; `-wal`, `-shm` and `-journal` files
//! and hidden directories are skipped). An existing file is never
//! overwritten. The file is written to a temporary name, fsynced and
//! renamed without replacing, like every file lifeboat writes.

use crate::error::{Error, IoContext, Result};
use crate::tag::Installation;
use serde::Serialize;
use std::path::{Path, PathBuf};

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
/// How deep `--scan` looks below its directory.
const SCAN_DEPTH: usize = 6;

#[derive(Debug, Clone, Default)]
pub struct InitOptions {
    /// The file to write.
    pub file: PathBuf,
    /// Databases named on the command line: (name, path).
    pub databases: Vec<(String, PathBuf)>,
    /// A directory to search for SQLite files.
    pub scan: Option<PathBuf>,
    /// `data_dir`; default: the scanned directory, else the deepest
    /// directory holding every named database.
    pub data_dir: Option<PathBuf>,
    /// A `[remote.dir]` path to configure.
    pub remote_dir: Option<PathBuf>,
    /// A `[github] repo` to configure.
    pub github: Option<String>,
    /// The installation name; default: derived once, here, from the host
    /// name and the configuration's directory ([`default_installation`]).
    pub installation: Option<Installation>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub file: PathBuf,
    /// The installation name written into the configuration.
    pub installation: String,
    pub data_dir: PathBuf,
    pub databases: Vec<InitDatabase>,
    /// What to run next, in order.
    pub next: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InitDatabase {
    pub name: String,
    /// Relative to `data_dir`.
    pub path: PathBuf,
}

pub fn init(opts: &InitOptions) -> Result<InitReport> {
    if opts.github.is_some() && opts.remote_dir.is_some() {
        return Err(Error::usage(
            "--github and --remote-dir both given: lifeboat pushes to one remote",
        ));
    }
    let file = absolute(&opts.file)?;
    if file.symlink_metadata().is_ok() {
        return Err(Error::usage(format!(
            "{} already exists; init never overwrites a configuration",
            file.display()
        ))
        .with_hint("edit it, or pass --config with another path"));
    }
    let mut found: Vec<PathBuf> = opts
        .databases
        .iter()
        .map(|(_, p)| absolute(p))
        .collect::<Result<_>>()?;
    let mut names: Vec<Option<String>> = opts
        .databases
        .iter()
        .map(|(n, _)| Some(n.clone()))
        .collect();
    for (path, (name, _)) in found.iter().zip(&opts.databases) {
        if !is_sqlite(path) {
            return Err(Error::usage(format!(
                "--db {name}={}: not an SQLite database (no SQLite header)",
                path.display()
            )));
        }
    }
    let scan = opts.scan.as_deref().map(absolute).transpose()?;
    if let Some(dir) = &scan {
        if !dir.is_dir() {
            return Err(Error::usage(format!(
                "--scan {}: not a directory",
                dir.display()
            )));
        }
        let mut scanned = vec![];
        walk(dir, SCAN_DEPTH, &mut scanned);
        scanned.sort();
        for p in scanned {
            if !found.contains(&p) {
                found.push(p);
                names.push(None);
            }
        }
    }
    if found.is_empty() {
        return Err(
            Error::usage("no databases: pass --db NAME=PATH or --scan DIR").with_hint(
                match &scan {
                    Some(d) => format!("no SQLite file was found under {}", d.display()),
                    None => "for example: lifeboat init --db app=/srv/app/data/app.db".into(),
                },
            ),
        );
    }
    let data_dir = match (&opts.data_dir, &scan) {
        (Some(d), _) => absolute(d)?,
        (None, Some(d)) if opts.databases.is_empty() => d.clone(),
        _ => common_dir(&found),
    };
    let mut databases: Vec<InitDatabase> = vec![];
    for (path, name) in found.iter().zip(names) {
        let rel = path.strip_prefix(&data_dir).map_err(|_| {
            Error::usage(format!(
                "{} is not under data_dir {}",
                path.display(),
                data_dir.display()
            ))
            .with_hint("pass --data-dir with a directory holding every database")
        })?;
        let name = match name {
            Some(n) => n,
            None => unique(derive_name(rel), &databases),
        };
        if databases.iter().any(|d| d.name == name) {
            return Err(Error::usage(format!("database name `{name}` given twice")));
        }
        databases.push(InitDatabase {
            name,
            path: rel.to_path_buf(),
        });
    }
    let installation = match opts.installation {
        Some(name) => name,
        None => default_installation(&file),
    };
    let text = render(&data_dir, &databases, opts, installation);
    // The text must be a configuration lifeboat accepts (names, paths).
    let base = file.parent().unwrap_or(Path::new("/")).to_path_buf();
    crate::config::Config::parse(&text, &file, &base)?;
    write_new(&file, &text)?;
    let cfg = format!("--config {}", file.display());
    let mut next = vec![];
    if opts.remote_dir.is_some() || opts.github.is_some() {
        next.push(format!("lifeboat {cfg} doctor --fix"));
    } else {
        next.push(format!(
            "add a remote to {} ([remote.dir], [github] or [remote.rclone]; several for 3-2-1), then: lifeboat {cfg} doctor --fix",
            file.display()
        ));
    }
    next.push(format!("lifeboat {cfg} snapshot"));
    next.push(format!("lifeboat {cfg} schedule --print cron"));
    Ok(InitReport {
        file,
        installation: installation.to_string(),
        data_dir,
        databases,
        next,
    })
}

/// Whether `path` is a regular file starting with SQLite's header.
pub fn is_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok()
        && &head == SQLITE_HEADER
        && path.metadata().is_ok_and(|m| m.is_file())
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            // Hidden directories (.git, lifeboat's own .staging-*) are not data.
            if depth > 0 && !name.starts_with('.') {
                walk(&entry.path(), depth - 1, out);
            }
        } else if kind.is_file()
            && ![".wal", "-wal", "-shm", "-journal"]
                .iter()
                .any(|s| name.ends_with(s))
            && is_sqlite(&entry.path())
        {
            out.push(entry.path());
        }
    }
}

/// The deepest directory holding every path.
fn common_dir(paths: &[PathBuf]) -> PathBuf {
    let mut common = paths[0].parent().unwrap_or(Path::new("/")).to_path_buf();
    for p in &paths[1..] {
        while !p.starts_with(&common) {
            if !common.pop() {
                break;
            }
        }
    }
    common
}

/// A config name from a file's relative path: its stem, lowercased, with
/// every character outside `[a-z0-9_-]` replaced by `_`.
fn derive_name(rel: &Path) -> String {
    let stem = rel
        .file_stem()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() { "db".into() } else { name }
}

fn unique(name: String, taken: &[InitDatabase]) -> String {
    if !taken.iter().any(|d| d.name == name) {
        return name;
    }
    (2..)
        .map(|n| format!("{name}-{n}"))
        .find(|n| !taken.iter().any(|d| &d.name == n))
        .expect("some suffix is free")
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `<host>-<directory of the configuration>` (`web1-shop`), made a valid
/// name: two applications on one host, or one application on two hosts,
/// get different names. Written into the configuration once, so that a
/// rebuilt machine with the same configuration is the same installation
/// whatever its host name.
pub fn default_installation(config_file: &Path) -> Installation {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let host = host.split('.').next().unwrap_or_default().to_string();
    let app = config_file
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    [format!("{host}-{app}"), host, app]
        .iter()
        .find_map(|text| Installation::derive(text))
        .unwrap_or_else(|| Installation::parse("lifeboat").expect("a valid name"))
}

fn render(
    data_dir: &Path,
    databases: &[InitDatabase],
    opts: &InitOptions,
    installation: Installation,
) -> String {
    let mut t = String::new();
    t.push_str(
        "# lifeboat configuration, written by `lifeboat init`.\n\
         # Every key is documented in docs/configuration.md; unknown keys are errors.\n\
         # Relative paths resolve against this file's directory.\n\n\
         # The directory the databases live under; each [[database]] path is relative to it.\n",
    );
    t.push_str(&format!(
        "# This installation's name, part of every snapshot's tag: installations sharing\n\
         # a remote keep apart by it. Keep it when the machine is rebuilt; unique per remote.\n\
         installation = {}\n\n",
        toml_str(installation.as_str())
    ));
    t.push_str(&format!(
        "data_dir = {}\n",
        toml_str(&data_dir.to_string_lossy())
    ));
    t.push_str(
        "# Local archives, last_run.json, the run lock (default: <data_dir>/backups).\n\
         # backup_dir = \"/var/backups/myapp\"\n\
         # A git checkout recorded as provenance in each snapshot (default: this file's directory).\n\
         # app_dir = \"/srv/myapp\"\n",
    );
    for db in databases {
        t.push_str(&format!(
            "\n[[database]]\nname = {}\npath = {}\n# migrations = \"migrations/{}\"  # its migration ladder, if any\n",
            toml_str(&db.name),
            toml_str(&db.path.to_string_lossy()),
            db.name
        ));
    }
    t.push_str(
        "\n[snapshot]\n\
         # compression = \"gzip\"   # or \"zstd\"\n\
         # level = 6\n\
         # lock_timeout = \"60s\"\n\
         \n[retention]\n\
         # hourly = 24\n\
         # daily = 7\n\
         # weekly = 4\n\
         # monthly = 12\n\
         # yearly = \"unbounded\"\n\
         # manual = 10\n\n",
    );
    t.push_str(
        "# Where snapshots go off the machine: any of [remote.dir], [github] and [remote.rclone]\n\
         # (each is pushed to and pruned on its own; a restore tries them in that order).\n",
    );
    match (&opts.github, &opts.remote_dir) {
        (Some(repo), _) => t.push_str(&format!(
            "[github]\nrepo = {}   # a private repository; `lifeboat doctor --fix` creates it\n",
            toml_str(repo)
        )),
        (None, Some(dir)) => t.push_str(&format!(
            "[remote.dir]\npath = {}   # `lifeboat doctor --fix` marks it as this remote\n",
            toml_str(&dir.to_string_lossy())
        )),
        (None, None) => t.push_str(
            "# [github]\n# repo = \"owner/myapp-backups\"\n\
             # [remote.dir]\n# path = \"/mnt/backup-drive/myapp\"\n",
        ),
    }
    t.push_str(
        "\n[health]\n\
         # cadence = \"1h\"          # how often `snapshot` runs\n\
         # drill_max_age = \"7d\"\n\
         \n# Commands run after each run (argv lists, no shell), see docs/configuration.md.\n\
         [notify]\n\
         # on_failure = [\"curl\", \"-fsS\", \"-m\", \"10\", \"--retry\", \"3\", \"https://hc-ping.com/UUID/fail\"]\n\
         # on_success = [\"curl\", \"-fsS\", \"-m\", \"10\", \"--retry\", \"3\", \"https://hc-ping.com/UUID\"]\n\
         # timeout = \"30s\"\n",
    );
    t
}

fn write_new(file: &Path, text: &str) -> Result<()> {
    let dir = file.parent().unwrap_or(Path::new("/"));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .ctx(format!("cannot write a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).ctx("cannot write the configuration")?;
    tmp.as_file()
        .sync_all()
        .ctx("cannot sync the configuration")?;
    tmp.persist_noclobber(file).map_err(|e| {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            Error::usage(format!(
                "{} already exists; init never overwrites a configuration",
                file.display()
            ))
        } else {
            Error::io(format!("cannot create {}", file.display()), e.error)
        }
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .ctx("cannot read the current directory")?
            .join(p)
    };
    // Canonical where it exists, so strip_prefix compares like with like.
    Ok(p.canonicalize().unwrap_or(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_paths() {
        assert_eq!(derive_name(Path::new("db/My App.sqlite3")), "my_app");
        assert_eq!(
            common_dir(&[PathBuf::from("/a/b/x.db"), PathBuf::from("/a/c/y.db")]),
            PathBuf::from("/a")
        );
    }
}
