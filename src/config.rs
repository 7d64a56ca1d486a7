//! `lifeboat.toml`: where the databases are, where snapshots go, and the
//! settings of each subsystem.
//!
//! The file is found via `--config`, else `$LIFEBOAT_CONFIG`, else
//! `./lifeboat.toml`. Relative paths resolve against the file's directory,
//! so a config works the same from cron, systemd or an interactive shell.
//! Unknown keys are errors (with their line): a misspelt `[retention]` key that
//! is silently ignored is how other tools delete backups nobody meant to lose.

use crate::error::{Error, IoContext, Result};
use crate::tag::{Format, Installation, Owner};
use serde::Deserialize;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

pub const ENV_CONFIG: &str = "LIFEBOAT_CONFIG";
pub const DEFAULT_CONFIG: &str = "lifeboat.toml";

/// The validated configuration, with every path absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The configuration file this was read from.
    pub file: PathBuf,
    pub data_dir: PathBuf,
    pub backup_dir: PathBuf,
    pub app_dir: PathBuf,
    /// Overrides the `git describe`-like version read from `app_dir`.
    pub app_version: Option<String>,
    /// This installation's name, part of every snapshot's tag so that
    /// installations sharing a remote keep apart. `None`: unnamed tags, as
    /// before names existed (`lifeboat doctor` warns).
    pub installation: Option<Installation>,
    pub databases: Vec<DatabaseConfig>,
    pub snapshot: SnapshotConfig,
    pub retention: RetentionConfig,
    /// Where snapshots go off the machine, in the order they are pushed and
    /// tried by a restore: `[remote.dir]`, `[github]`, `[remote.rclone]`
    /// (the nearest first), at most one of each kind, each named by its
    /// kind ([`RemoteConfig::kind`]).
    pub remotes: Vec<RemoteConfig>,
    pub health: HealthConfig,
    pub restore: RestoreConfig,
    /// `[notify]` hooks, run after each recorded run.
    pub notify: NotifyConfig,
}

#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// Logical name: `[a-z0-9_-]+`, unique.
    pub name: String,
    /// Path relative to `data_dir`; also the path inside the archive.
    pub path: PathBuf,
    /// Directory holding this database's migration ladder, absolute.
    pub migrations: Option<PathBuf>,
    /// The application creates it later (a cache, a feature not used yet):
    /// while the file does not exist, snapshots skip it with a note instead
    /// of a warning. Once it exists it is backed up like any other.
    pub optional: bool,
    /// SQLite loadable extensions to load for counting and checking its
    /// copies (`extensions = ["mod_spatialite"]`): a library name for the
    /// system's search path, or a path (made absolute).
    pub extensions: Vec<String>,
}

impl DatabaseConfig {
    /// The live file: `data_dir/path`.
    pub fn live_path(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(&self.path)
    }

    /// The path inside the archive (always `/`-separated).
    pub fn archive_path(&self) -> String {
        self.path.to_string_lossy().replace('\\', "/")
    }
}

#[derive(Debug, Clone)]
pub struct SnapshotConfig {
    pub compression: Format,
    /// gzip 1-9 (default 6), zstd 1-19 (default 3).
    pub level: u32,
    /// How long the hot copy waits for a busy source database.
    pub busy_timeout: Duration,
    /// How long a run waits for another lifeboat run to release the lock.
    pub lock_timeout: Duration,
}

/// Keep counts per tier. `None` means unbounded; `Some(0)` turns a tier off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    pub hourly: Option<u32>,
    pub daily: Option<u32>,
    pub weekly: Option<u32>,
    pub monthly: Option<u32>,
    pub yearly: Option<u32>,
    pub manual: Option<u32>,
    /// Unnamed snapshots (taken before this installation had a name) are
    /// this installation's to prune. Only for a remote no other
    /// installation ever used: the documented migration.
    pub adopt_unnamed: bool,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            hourly: Some(24),
            daily: Some(7),
            weekly: Some(4),
            monthly: Some(12),
            yearly: None,
            manual: Some(20),
            adopt_unnamed: false,
        }
    }
}

/// One remote's section of the file. Each backend in `remote/` is built
/// from its own variant.
#[derive(Debug, Clone)]
pub enum RemoteConfig {
    /// `[github]`: one release per snapshot in a private repository.
    Github(GithubConfig),
    /// `[remote.dir]`: a directory (external drive, NAS mount).
    Dir(DirRemoteConfig),
    /// `[remote.rclone]`: any rclone backend, through the `rclone` CLI.
    Rclone(RcloneConfig),
}

impl RemoteConfig {
    /// The backend's name, as `restore --from` spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            RemoteConfig::Github(_) => "github",
            RemoteConfig::Dir(_) => "dir",
            RemoteConfig::Rclone(_) => "rclone",
        }
    }

    /// The section that configures it, for messages.
    pub fn section(&self) -> &'static str {
        match self {
            RemoteConfig::Github(_) => "[github]",
            RemoteConfig::Dir(_) => "[remote.dir]",
            RemoteConfig::Rclone(_) => "[remote.rclone]",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GithubConfig {
    /// `owner/name` of the private repository holding the releases.
    pub repo: String,
    /// The `gh` binary to run (default: `gh` on `PATH`).
    pub gh: PathBuf,
    /// Timeout of one `gh` call; its process group is killed after it.
    pub timeout: Duration,
    /// Attempts for a transient failure (default 3).
    pub attempts: u32,
    /// First backoff between attempts; doubles each time.
    pub backoff: Duration,
    /// An archive larger than this is pushed as consecutive parts of this
    /// size (GitHub takes assets under 2 GiB only).
    pub part_size: u64,
}

/// The default `[github] part_size`: under GitHub's 2 GiB asset limit, with
/// room to spare.
pub const DEFAULT_PART_SIZE: u64 = 2_000_000_000;

#[derive(Debug, Clone)]
pub struct DirRemoteConfig {
    pub path: PathBuf,
    /// Filled from the rest of the file, for the backend's own checks:
    /// `data_dir`, whose disk the remote must not share (`doctor` warns),
    /// and the file in `backup_dir` that remembers the id of the drive
    /// found at `path` ([`crate::store::Store::remote_ids`]).
    pub data_dir: PathBuf,
    pub remote_ids: PathBuf,
}

/// `[remote.rclone]`: the credentials stay in rclone's own configuration.
#[derive(Debug, Clone)]
pub struct RcloneConfig {
    /// An rclone `remote:path` (or a local path, absolute), without a
    /// trailing `/`: the directory the snapshots go to.
    pub remote: String,
    /// The `rclone` binary to run (default: `rclone` on `PATH`).
    pub rclone: PathBuf,
    /// rclone's configuration file (`--config`); else rclone's default.
    pub config: Option<PathBuf>,
    /// Timeout of one rclone call (a transfer gets more: see the backend).
    pub timeout: Duration,
    /// Attempts for a transient failure (default 3).
    pub attempts: u32,
    /// First backoff between attempts; doubles each time.
    pub backoff: Duration,
}

#[derive(Debug, Clone)]
pub struct HealthConfig {
    pub cadence: Duration,
    pub warn_after: Duration,
    pub critical_after: Duration,
    pub drill_max_age: Duration,
    pub metrics_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckLevel {
    Full,
    Quick,
}

#[derive(Debug, Clone)]
pub struct RestoreConfig {
    pub check: CheckLevel,
    /// Upper bound on the total bytes a restore will unpack (decompression
    /// bombs); the manifest's own sizes are checked as well.
    pub max_unpacked_bytes: u64,
    /// `prune` keeps this many of the newest pre-restore copies (at least
    /// 1: the one `restore --undo` puts back).
    pub keep_pre_restore: u32,
    /// ... and every pre-restore copy younger than this many days.
    pub keep_pre_restore_days: u32,
}

/// `[notify]`: commands run after a recorded run (see [`crate::notify`]).
/// Each is an argv list, run without a shell.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    pub on_failure: Option<Vec<String>>,
    pub on_success: Option<Vec<String>>,
    pub on_recovery: Option<Vec<String>>,
    /// A hook still running after this long is killed (its process group).
    pub timeout: Duration,
}

// ---------------------------------------------------------------------------
// The file as written. Every struct denies unknown fields.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: PathBuf,
    backup_dir: Option<PathBuf>,
    app_dir: Option<PathBuf>,
    app_version: Option<String>,
    installation: Option<String>,
    #[serde(default)]
    database: Vec<RawDatabase>,
    #[serde(default)]
    snapshot: RawSnapshot,
    #[serde(default)]
    retention: RawRetention,
    github: Option<RawGithub>,
    #[serde(default)]
    remote: RawRemote,
    #[serde(default)]
    health: RawHealth,
    #[serde(default)]
    restore: RawRestore,
    #[serde(default)]
    notify: RawNotify,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    on_failure: Option<Vec<String>>,
    on_success: Option<Vec<String>>,
    on_recovery: Option<Vec<String>>,
    timeout: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    name: String,
    path: PathBuf,
    migrations: Option<PathBuf>,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    extensions: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    compression: Option<String>,
    level: Option<u32>,
    busy_timeout: Option<String>,
    lock_timeout: Option<String>,
}

/// A tier count: a number, or the string "unbounded".
#[derive(Deserialize, Clone, Copy)]
#[serde(untagged)]
enum RawKeep {
    Count(u32),
    Word(KeepWord),
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum KeepWord {
    Unbounded,
}

impl RawKeep {
    fn get(self) -> Option<u32> {
        match self {
            RawKeep::Count(n) => Some(n),
            RawKeep::Word(KeepWord::Unbounded) => None,
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRetention {
    hourly: Option<RawKeep>,
    daily: Option<RawKeep>,
    weekly: Option<RawKeep>,
    monthly: Option<RawKeep>,
    yearly: Option<RawKeep>,
    manual: Option<RawKeep>,
    #[serde(default)]
    adopt_unnamed: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGithub {
    repo: String,
    gh: Option<PathBuf>,
    timeout: Option<String>,
    attempts: Option<u32>,
    backoff: Option<String>,
    part_size: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRemote {
    dir: Option<RawDirRemote>,
    rclone: Option<RawRclone>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRclone {
    remote: String,
    rclone: Option<PathBuf>,
    config: Option<PathBuf>,
    timeout: Option<String>,
    attempts: Option<u32>,
    backoff: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDirRemote {
    path: PathBuf,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    cadence: Option<String>,
    warn_after: Option<String>,
    critical_after: Option<String>,
    drill_max_age: Option<String>,
    metrics_file: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRestore {
    check: Option<String>,
    max_unpacked_bytes: Option<u64>,
    keep_pre_restore: Option<i64>,
    keep_pre_restore_days: Option<i64>,
}

// ---------------------------------------------------------------------------

/// Which file to read: `--config`, else `$LIFEBOAT_CONFIG`, else `./lifeboat.toml`.
pub fn locate(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    match std::env::var_os(ENV_CONFIG) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_CONFIG),
    }
}

impl Config {
    /// Read and validate a configuration file. Writes nothing.
    pub fn load(file: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(file).map_err(|e| {
            let err = Error::config(format!("cannot read config {}: {e}", file.display()));
            if e.kind() == std::io::ErrorKind::NotFound {
                err.with_hint(format!(
                    "pass --config PATH, set ${ENV_CONFIG}, or create {DEFAULT_CONFIG} (see docs/configuration.md)"
                ))
            } else {
                err
            }
        })?;
        let file = absolute(file)?;
        let base = file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        Config::parse(&text, &file, &base)
    }

    /// Parse configuration text; relative paths resolve against `base`.
    pub fn parse(text: &str, file: &Path, base: &Path) -> Result<Config> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            Error::config(format!(
                "invalid config {}: {}",
                file.display(),
                e.to_string().trim_end()
            ))
            .with_hint("fix the key or value named above; docs/configuration.md lists every key")
        })?;
        let bad = |msg: String| Error::config(format!("{}: {msg}", file.display()));

        let data_dir = base.join(&raw.data_dir);
        let backup_dir = raw
            .backup_dir
            .map(|p| base.join(p))
            .unwrap_or_else(|| data_dir.join("backups"));
        let app_dir = raw
            .app_dir
            .map(|p| base.join(p))
            .unwrap_or_else(|| base.to_path_buf());

        if raw.database.is_empty() {
            return Err(bad(
                "no [[database]] entries: declare at least one database to back up".into(),
            )
            .with_hint("add\n    [[database]]\n    name = \"app\"\n    path = \"app.db\""));
        }
        let mut databases = Vec::new();
        for db in raw.database {
            if db.name.is_empty()
                || !db
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
            {
                return Err(bad(format!(
                    "database name `{}` is invalid: use lowercase letters, digits, `_` and `-`",
                    db.name
                )));
            }
            if databases.iter().any(|d: &DatabaseConfig| d.name == db.name) {
                return Err(bad(format!(
                    "database name `{}` is declared twice",
                    db.name
                )));
            }
            check_relative(&db.path).map_err(|why| {
                bad(format!(
                    "database `{}`: path `{}` {why}; it must be relative to data_dir",
                    db.name,
                    db.path.display()
                ))
            })?;
            if databases.iter().any(|d: &DatabaseConfig| d.path == db.path) {
                return Err(bad(format!(
                    "database `{}`: path `{}` is declared twice",
                    db.name,
                    db.path.display()
                )));
            }
            let mut extensions: Vec<String> = Vec::new();
            for ext in db.extensions {
                if ext.trim().is_empty() || ext.contains('\0') {
                    return Err(bad(format!(
                        "database `{}`: extensions = [\"{}\"] is not a library name",
                        db.name,
                        ext.escape_debug()
                    ))
                    .with_hint(
                        "name a SQLite loadable extension, e.g. extensions = [\"mod_spatialite\"], \
                         or give the path of its library",
                    ));
                }
                // A name is looked up on the system's library path; a path
                // is relative to the config file, like every other path.
                let ext = if ext.contains('/') {
                    base.join(&ext).to_string_lossy().into_owned()
                } else {
                    ext
                };
                if extensions.contains(&ext) {
                    return Err(bad(format!(
                        "database `{}`: extension `{ext}` is listed twice",
                        db.name
                    ))
                    .with_hint("list each extension once"));
                }
                extensions.push(ext);
            }
            databases.push(DatabaseConfig {
                name: db.name,
                path: db.path,
                migrations: db.migrations.map(|p| base.join(p)),
                optional: db.optional,
                extensions,
            });
        }

        let snapshot = {
            let compression = match raw.snapshot.compression.as_deref() {
                None | Some("gzip") => Format::Gzip,
                Some("zstd") => Format::Zstd,
                Some(other) => {
                    return Err(bad(format!(
                        "[snapshot] compression = \"{other}\": use \"gzip\" or \"zstd\""
                    )));
                }
            };
            let (default_level, range) = match compression {
                Format::Gzip => (6, 1..=9),
                Format::Zstd => (3, 1..=19),
            };
            let level = raw.snapshot.level.unwrap_or(default_level);
            if !range.contains(&level) {
                return Err(bad(format!(
                    "[snapshot] level = {level} is out of range {}..={} for {}",
                    range.start(),
                    range.end(),
                    compression.extension()
                )));
            }
            SnapshotConfig {
                compression,
                level,
                busy_timeout: duration_or(raw.snapshot.busy_timeout, "snapshot.busy_timeout", "5s")
                    .map_err(bad)?,
                lock_timeout: duration_or(
                    raw.snapshot.lock_timeout,
                    "snapshot.lock_timeout",
                    "60s",
                )
                .map_err(bad)?,
            }
        };

        let d = RetentionConfig::default();
        let r = raw.retention;
        let retention = RetentionConfig {
            hourly: r.hourly.map_or(d.hourly, RawKeep::get),
            daily: r.daily.map_or(d.daily, RawKeep::get),
            weekly: r.weekly.map_or(d.weekly, RawKeep::get),
            monthly: r.monthly.map_or(d.monthly, RawKeep::get),
            yearly: r.yearly.map_or(d.yearly, RawKeep::get),
            manual: r.manual.map_or(d.manual, RawKeep::get),
            adopt_unnamed: r.adopt_unnamed,
        };

        let github = match raw.github {
            None => None,
            Some(g) => {
                let valid = g.repo.split('/').count() == 2
                    && g.repo.split('/').all(|p| {
                        !p.is_empty()
                            && p != "."
                            && p != ".."
                            && p.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
                    });
                if !valid {
                    return Err(bad(format!(
                        "[github] repo = \"{}\": expected \"owner/name\"",
                        g.repo
                    )));
                }
                let attempts = g.attempts.unwrap_or(3);
                if attempts == 0 {
                    return Err(bad("[github] attempts must be at least 1".into()));
                }
                Some(GithubConfig {
                    repo: g.repo,
                    gh: g.gh.unwrap_or_else(|| PathBuf::from("gh")),
                    timeout: duration_or(g.timeout, "github.timeout", "10m").map_err(bad)?,
                    attempts,
                    backoff: duration_or(g.backoff, "github.backoff", "2s").map_err(bad)?,
                    part_size: match g.part_size {
                        None => DEFAULT_PART_SIZE,
                        Some(n) if (1..(2 << 30)).contains(&n) => n,
                        Some(n) => {
                            return Err(bad(format!(
                                "[github] part_size = {n}: must be at least 1 byte and under 2 GiB \
                                 (2147483648), GitHub's limit for one asset"
                            )));
                        }
                    },
                })
            }
        };
        let remote_dir = raw.remote.dir.map(|d| DirRemoteConfig {
            path: base.join(d.path),
            data_dir: data_dir.clone(),
            remote_ids: crate::store::Store::new(&backup_dir).remote_ids(),
        });
        let rclone = match raw.remote.rclone {
            None => None,
            Some(r) => Some(rclone_config(r, base).map_err(bad)?),
        };
        // Several remotes at once (3-2-1: a drive, GitHub, object storage),
        // at most one of each kind; each is named by its kind.
        let health = {
            let h = raw.health;
            let cadence = duration_or(h.cadence, "health.cadence", "1h").map_err(bad)?;
            let warn_after = match h.warn_after {
                Some(s) => {
                    parse_duration(&s).map_err(|e| bad(format!("health.warn_after: {e}")))?
                }
                None => cadence * 2,
            };
            let critical_after = match h.critical_after {
                Some(s) => {
                    parse_duration(&s).map_err(|e| bad(format!("health.critical_after: {e}")))?
                }
                None => cadence * 4,
            };
            if critical_after < warn_after {
                return Err(bad(
                    "[health] critical_after is shorter than warn_after".into()
                ));
            }
            HealthConfig {
                cadence,
                warn_after,
                critical_after,
                drill_max_age: duration_or(h.drill_max_age, "health.drill_max_age", "7d")
                    .map_err(bad)?,
                metrics_file: h.metrics_file.map(|p| base.join(p)),
            }
        };

        let restore = RestoreConfig {
            check: match raw.restore.check.as_deref() {
                None | Some("full") => CheckLevel::Full,
                Some("quick") => CheckLevel::Quick,
                Some(other) => {
                    return Err(bad(format!(
                        "[restore] check = \"{other}\": use \"full\" or \"quick\""
                    )));
                }
            },
            max_unpacked_bytes: raw.restore.max_unpacked_bytes.unwrap_or(1 << 40),
            keep_pre_restore: match raw.restore.keep_pre_restore.unwrap_or(3) {
                n @ 1..=10_000 => n as u32,
                n => {
                    return Err(bad(format!(
                        "[restore] keep_pre_restore = {n}: keep at least 1 (the copy `restore --undo` puts back), at most 10000"
                    )));
                }
            },
            keep_pre_restore_days: match raw.restore.keep_pre_restore_days.unwrap_or(7) {
                n @ 0..=36_500 => n as u32,
                n => {
                    return Err(bad(format!(
                        "[restore] keep_pre_restore_days = {n}: use a number of days from 0 to 36500"
                    )));
                }
            },
        };

        let notify = {
            let n = raw.notify;
            for (key, argv) in [
                ("on_failure", &n.on_failure),
                ("on_success", &n.on_success),
                ("on_recovery", &n.on_recovery),
            ] {
                if argv
                    .as_ref()
                    .is_some_and(|a| a.first().is_none_or(|p| p.is_empty()))
                {
                    return Err(bad(format!(
                        "[notify] {key} is empty: give the command as a list, program first"
                    ))
                    .with_hint(format!(
                        "{key} = [\"curl\", \"-fsS\", \"-m\", \"10\", \"https://hc-ping.com/UUID\"]"
                    )));
                }
            }
            NotifyConfig {
                on_failure: n.on_failure,
                on_success: n.on_success,
                on_recovery: n.on_recovery,
                timeout: duration_or(n.timeout, "notify.timeout", "30s").map_err(bad)?,
            }
        };

        let installation = match raw.installation.as_deref() {
            None => None,
            Some(name) => Some(Installation::parse(name).ok_or_else(|| {
                bad(format!(
                    "installation = \"{name}\" is not a valid installation name"
                ))
                .with_hint(format!(
                    "use 1 to {} lowercase letters, digits and `-`, starting and ending with a letter \
                     or digit (it becomes part of every snapshot's tag), e.g. \"{}\"",
                    Installation::MAX,
                    Installation::derive(name).map_or("myapp-prod".to_string(), |n| n.to_string())
                ))
            })?),
        };
        Ok(Config {
            file: file.to_path_buf(),
            data_dir,
            backup_dir,
            app_dir,
            app_version: raw.app_version,
            installation,
            databases,
            snapshot,
            retention,
            remotes: remote_dir
                .map(RemoteConfig::Dir)
                .into_iter()
                .chain(github.map(RemoteConfig::Github))
                .chain(rclone.map(RemoteConfig::Rclone))
                .collect(),
            health,
            restore,
            notify,
        })
    }

    /// Which snapshots are this installation's (see [`Owner`]).
    pub fn owner(&self) -> Owner {
        Owner {
            installation: self.installation,
            adopt_unnamed: self.retention.adopt_unnamed,
        }
    }

    /// `data_dir` must exist for every command that reads the live data
    /// (`snapshot`, `backup-now`, `migrate`): a mistyped path is a
    /// configuration error naming it (exit 2, nothing recorded), never a
    /// new directory tree. Only `restore` creates it (on a fresh machine,
    /// inside an existing parent).
    pub fn require_data_dir(&self) -> Result<()> {
        if self.data_dir.is_dir() {
            return Ok(());
        }
        let why = if self.data_dir.exists() {
            "is not a directory"
        } else {
            "does not exist"
        };
        Err(crate::Error::config(format!(
            "data_dir {} {why} (from {})",
            self.data_dir.display(),
            self.file.display()
        ))
        .with_hint(
            "check data_dir in the config (relative paths are relative to the config file); \
             on a fresh machine, `lifeboat restore latest` creates it",
        ))
    }

    /// The database with this logical name, or a usage error listing the names.
    pub fn database(&self, name: &str) -> Result<&DatabaseConfig> {
        self.databases
            .iter()
            .find(|d| d.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.databases.iter().map(|d| d.name.as_str()).collect();
                Error::usage(format!(
                    "no database named `{name}` in {}",
                    self.file.display()
                ))
                .with_hint(format!("declared databases: {}", names.join(", ")))
            })
    }

    /// The backup directory's layout.
    pub fn store(&self) -> crate::store::Store {
        crate::store::Store::new(&self.backup_dir)
    }

    /// Restore's area beside the data directory.
    pub fn data_area(&self) -> crate::store::DataArea {
        crate::store::DataArea::new(&self.data_dir)
    }

    /// The remote snapshots are pushed to, if any.
    pub fn remote(&self) -> Option<&RemoteConfig> {
        self.remotes.first()
    }
}

/// `[remote.rclone]` as written, checked. A `remote` without `name:` is a
/// local path to rclone: a relative one resolves against the config's
/// directory, like every other path in the file.
fn rclone_config(r: RawRclone, base: &Path) -> std::result::Result<RcloneConfig, String> {
    let remote = r.remote.trim();
    if remote.is_empty() || remote.chars().any(char::is_control) {
        return Err(format!(
            "[remote.rclone] remote = {:?}: expected an rclone \"remote:path\" (see `rclone listremotes`)",
            r.remote
        ));
    }
    if remote.starts_with('-') {
        return Err(format!(
            "[remote.rclone] remote = {:?} starts with `-`: rclone would read it as a flag",
            r.remote
        ));
    }
    // rclone reads `name:` before any `/` as a configured remote (or
    // `:backend:` as an on-the-fly one); anything else is a local path.
    let is_remote = remote
        .split('/')
        .next()
        .is_some_and(|first| first.contains(':'));
    let remote = if is_remote {
        remote.to_string()
    } else {
        base.join(remote).to_string_lossy().into_owned()
    };
    // `remote:dir/` and `remote:dir` are the same directory; `remote:` and
    // `/` keep theirs.
    let remote = match remote.strip_suffix('/') {
        Some(stripped) if !stripped.is_empty() && !stripped.ends_with(':') => {
            stripped.trim_end_matches('/').to_string()
        }
        _ => remote,
    };
    let attempts = r.attempts.unwrap_or(3);
    if attempts == 0 {
        return Err("[remote.rclone] attempts must be at least 1".into());
    }
    Ok(RcloneConfig {
        remote,
        rclone: r.rclone.unwrap_or_else(|| PathBuf::from("rclone")),
        config: r.config.map(|p| base.join(p)),
        timeout: duration_or(r.timeout, "remote.rclone.timeout", "10m")?,
        attempts,
        backoff: duration_or(r.backoff, "remote.rclone.backoff", "2s")?,
    })
}

fn check_relative(p: &Path) -> std::result::Result<(), &'static str> {
    if p.as_os_str().is_empty() {
        return Err("is empty");
    }
    for c in p.components() {
        match c {
            Component::Normal(_) => {}
            Component::CurDir => return Err("contains `.`"),
            Component::ParentDir => return Err("contains `..`"),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute"),
        }
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir()
            .ctx("cannot read the current directory")?
            .join(p))
    }
}

fn duration_or(
    value: Option<String>,
    key: &str,
    default: &str,
) -> std::result::Result<Duration, String> {
    let s = value.as_deref().unwrap_or(default);
    parse_duration(s).map_err(|e| format!("{key}: {e}"))
}

/// Parse `500ms`, `30s`, `15m`, `1h`, `7d` (one number, one unit).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration (examples: 500ms, 30s, 15m, 1h, 7d)"))?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("`{s}` has an unknown unit (use ms, s, m, h or d)")),
    };
    Ok(Duration::from_millis(n.saturating_mul(ms)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::parse(text, Path::new("/etc/lifeboat.toml"), Path::new("/etc"))
    }

    const MINIMAL: &str =
        "data_dir = \"data\"\n[[database]]\nname = \"tasks\"\npath = \"db/tasks.db\"\n";

    #[test]
    fn extensions_are_names_or_paths_relative_to_the_config() {
        let c = parse(&format!(
            "{MINIMAL}extensions = [\"mod_spatialite\", \"lib/vec0.so\"]\n"
        ))
        .unwrap();
        assert_eq!(
            c.databases[0].extensions,
            vec!["mod_spatialite".to_string(), "/etc/lib/vec0.so".to_string()]
        );
        assert!(parse(MINIMAL).unwrap().databases[0].extensions.is_empty());
        for bad in ["[\"\"]", "[\"a\", \"a\"]", "\"mod_spatialite\""] {
            let e = parse(&format!("{MINIMAL}extensions = {bad}\n")).unwrap_err();
            assert!(e.message.contains("extension"), "{bad}: {e}");
        }
    }

    #[test]
    fn defaults_and_relative_paths() {
        let c = parse(MINIMAL).unwrap();
        assert_eq!(c.data_dir, Path::new("/etc/data"));
        assert_eq!(c.backup_dir, Path::new("/etc/data/backups"));
        assert_eq!(c.app_dir, Path::new("/etc"));
        assert_eq!(
            c.databases[0].live_path(&c.data_dir),
            Path::new("/etc/data/db/tasks.db")
        );
        assert_eq!(c.snapshot.level, 6);
        assert_eq!(c.retention, RetentionConfig::default());
        assert_eq!(c.health.warn_after, Duration::from_secs(7200));
        assert_eq!(c.health.critical_after, Duration::from_secs(4 * 3600));
    }

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = format!("{MINIMAL}[retention]\nhourly = 3\nmonthy = 6\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.message.contains("monthy"), "{}", err.message);
        assert!(err.message.contains("line 7"), "{}", err.message);
    }

    #[test]
    fn rejects_bad_databases() {
        for (db, needle) in [
            ("name = \"a\"\npath = \"/abs.db\"", "absolute"),
            ("name = \"a\"\npath = \"../up.db\"", "`..`"),
            ("name = \"A b\"\npath = \"x.db\"", "invalid"),
            ("name = \"a\"", "missing field `path`"),
        ] {
            let err = parse(&format!("data_dir = \"d\"\n[[database]]\n{db}\n")).unwrap_err();
            assert!(err.message.contains(needle), "{needle}: {}", err.message);
        }
        let dup = format!("{MINIMAL}[[database]]\nname = \"tasks\"\npath = \"other.db\"\n");
        assert!(parse(&dup).unwrap_err().message.contains("declared twice"));
        assert!(
            parse("data_dir = \"d\"\n")
                .unwrap_err()
                .message
                .contains("no [[database]]")
        );
    }

    #[test]
    fn retention_words() {
        let c = parse(&format!(
            "{MINIMAL}[retention]\nhourly = 0\nyearly = 3\nmanual = \"unbounded\"\n"
        ))
        .unwrap();
        assert_eq!(c.retention.hourly, Some(0));
        assert_eq!(c.retention.yearly, Some(3));
        assert_eq!(c.retention.manual, None);
        assert!(parse(&format!("{MINIMAL}[retention]\nhourly = \"lots\"\n")).is_err());
    }

    #[test]
    fn pre_restore_retention() {
        let base = "data_dir = \"d\"\n[[database]]\nname = \"a\"\npath = \"a.db\"\n";
        let c = parse(base).unwrap();
        assert_eq!(
            (c.restore.keep_pre_restore, c.restore.keep_pre_restore_days),
            (3, 7)
        );
        let c = parse(&format!(
            "{base}[restore]\nkeep_pre_restore = 5\nkeep_pre_restore_days = 0\n"
        ))
        .unwrap();
        assert_eq!(
            (c.restore.keep_pre_restore, c.restore.keep_pre_restore_days),
            (5, 0)
        );
        for bad in ["keep_pre_restore = 0", "keep_pre_restore_days = -1"] {
            let err = parse(&format!("{base}[restore]\n{bad}\n")).unwrap_err();
            assert!(
                err.message.contains(bad.split(' ').next().unwrap()),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86400)
        );
        assert!(parse_duration("1 hour").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn one_remote_only() {
        // Several at once, nearest first: dir, github, rclone.
        let text = format!(
            "{MINIMAL}[remote.rclone]\nremote = \"b2:bucket\"\n[github]\nrepo = \"me/backups\"\n[remote.dir]\npath = \"/mnt\"\n"
        );
        let kinds: Vec<&str> = parse(&text)
            .unwrap()
            .remotes
            .iter()
            .map(|r| r.kind())
            .collect();
        assert_eq!(kinds, ["dir", "github", "rclone"]);
        let text = format!("{MINIMAL}[github]\nrepo = \"me\"\n");
        assert!(parse(&text).unwrap_err().message.contains("owner/name"));
    }

    #[test]
    fn rclone_remote() {
        let c = parse(&format!(
            "{MINIMAL}[remote.rclone]\nremote = \"b2:bucket/lifeboat/\"\nconfig = \"rclone.conf\"\nattempts = 5\n"
        ))
        .unwrap();
        let Some(RemoteConfig::Rclone(r)) = c.remote() else {
            panic!("{:?}", c.remotes)
        };
        assert_eq!(r.remote, "b2:bucket/lifeboat");
        assert_eq!(r.rclone, PathBuf::from("rclone"));
        assert_eq!(r.config.as_deref(), Some(Path::new("/etc/rclone.conf")));
        assert_eq!((r.attempts, r.timeout), (5, Duration::from_secs(600)));
        assert_eq!(c.remote().unwrap().kind(), "rclone");
        // A local path resolves like every path in the file; a bare
        // `remote:` is the remote's root.
        for (given, expect) in [
            ("backups/x", "/etc/backups/x"),
            ("/mnt/usb/", "/mnt/usb"),
            ("s3:", "s3:"),
            (":local:/srv/x", ":local:/srv/x"),
        ] {
            let c = parse(&format!("{MINIMAL}[remote.rclone]\nremote = \"{given}\"\n")).unwrap();
            let Some(RemoteConfig::Rclone(r)) = c.remote() else {
                panic!()
            };
            assert_eq!(r.remote, expect, "{given}");
        }
        for bad in [
            "remote = \"\"",
            "remote = \"--x:y\"",
            "remote = \"x:\"\nattempts = 0",
        ] {
            assert!(
                parse(&format!("{MINIMAL}[remote.rclone]\n{bad}\n")).is_err(),
                "{bad}"
            );
        }
        assert!(
            parse(&format!(
                "{MINIMAL}[remote.rclone]\nremote = \"x:\"\nextra = 1\n"
            ))
            .is_err()
        );
    }
}
