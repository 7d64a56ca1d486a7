//! `lifeboat-bench`: lifeboat against the obvious alternatives, on a
//! generated task-store database.
//!
//! Every pipeline is a real process (the release `lifeboat` binary through a
//! generated config, the sqlite3/tar/gzip/zstd/pigz command-line tools),
//! timed from spawn to exit, with its peak RSS taken from `wait4`. Baselines
//! whose tool is not installed are skipped and said so. Only ratios measured
//! in the same run mean anything: absolute times depend on the machine and
//! on what else it is doing.
//!
//! `--quick` (64 MiB, one repetition) is the CI smoke test: it asserts
//! nothing about speed, but exits 1 if any pipeline fails.

mod taskdb;

use clap::Parser;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Benchmark lifeboat snapshots against cp, sqlite3 .backup, tar czf, pigz
/// and zstd on a deterministic generated database.
#[derive(Debug, Parser)]
#[command(name = "lifeboat-bench")]
struct Args {
    /// Database size: 64M for a quick run, 1G for the real one.
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    size: u64,
    /// Repetitions per pipeline; the table shows medians.
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// CI smoke test: 64 MiB, one repetition, short writer phases.
    #[arg(long)]
    quick: bool,
    /// Working directory (generated databases are cached here by size).
    #[arg(long, default_value = "target/bench")]
    work: PathBuf,
    /// The lifeboat binary to measure.
    #[arg(long, default_value = "target/release/lifeboat")]
    lifeboat: PathBuf,
    /// Skip the slow single-threaded `tar czf` baseline after its first run.
    #[arg(long)]
    tar_once: bool,
    /// Compress this file with lifeboat's gzip writer at levels 1-9, print
    /// wall and CPU time and size per level, and exit.
    #[arg(long, value_name = "PATH")]
    probe_levels: Option<PathBuf>,
    /// Worker threads for --probe-levels.
    #[arg(long, default_value_t = 1)]
    probe_threads: usize,
    /// Only generate the database at this path and exit.
    #[arg(long, value_name = "PATH")]
    generate_only: Option<PathBuf>,
}

fn parse_size(s: &str) -> Result<u64, String> {
    taskdb::parse_size(s).ok_or_else(|| format!("`{s}` is not a size like 64M or 1G"))
}

/// One timed process run.
#[derive(Debug, Clone, Copy)]
struct Sample {
    secs: f64,
    /// User + system CPU of the process and its waited-for descendants:
    /// far less sensitive than wall time to other load on the machine.
    cpu_secs: f64,
    max_rss_kib: u64,
}

/// Results of one pipeline over all repetitions.
#[derive(Debug, Default)]
struct Row {
    samples: Vec<Sample>,
    archive_bytes: Option<u64>,
}

impl Row {
    fn median(&self) -> f64 {
        median(self.samples.iter().map(|s| s.secs).collect())
    }
    fn median_cpu(&self) -> f64 {
        median(self.samples.iter().map(|s| s.cpu_secs).collect())
    }
    fn peak_rss_mib(&self) -> f64 {
        self.samples
            .iter()
            .map(|s| s.max_rss_kib)
            .max()
            .unwrap_or(0) as f64
            / 1024.0
    }
}

fn median(mut t: Vec<f64>) -> f64 {
    {
        t.sort_by(f64::total_cmp);
        match t.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => t[n / 2],
            n => (t[n / 2 - 1] + t[n / 2]) / 2.0,
        }
    }
}

struct Bench {
    args: Args,
    work: PathBuf,
    lifeboat: PathBuf,
    rows: BTreeMap<&'static str, Row>,
    order: Vec<&'static str>,
    failures: Vec<String>,
    skipped: Vec<String>,
    notes: Vec<String>,
    writer: Option<(WriterStats, WriterStats)>,
}

fn main() {
    let mut args = Args::parse();
    if args.quick {
        args.size = 64 << 20;
        args.reps = 1;
    }
    if let Some(path) = &args.generate_only {
        if let Err(e) = taskdb::generate(path, args.size) {
            eprintln!("lifeboat-bench: cannot generate {}: {e}", path.display());
            std::process::exit(1);
        }
        return;
    }
    if let Some(path) = &args.probe_levels {
        probe_levels(path, args.probe_threads);
        return;
    }
    let code = match run(args) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("lifeboat-bench: {e}");
            1
        }
    };
    std::process::exit(code);
}

type R<T> = Result<T, String>;

const RESTORE: &str = "lifeboat restore of the tar.gz (checks included)";

fn run(args: Args) -> R<bool> {
    let lifeboat = std::fs::canonicalize(&args.lifeboat).map_err(|e| {
        format!(
            "cannot find the lifeboat binary at {} ({e}); run `cargo build --release` first",
            args.lifeboat.display()
        )
    })?;
    std::fs::create_dir_all(&args.work).map_err(|e| e.to_string())?;
    let work = std::fs::canonicalize(&args.work).map_err(|e| e.to_string())?;
    let mut b = Bench {
        args,
        work,
        lifeboat,
        rows: BTreeMap::new(),
        order: Vec::new(),
        failures: Vec::new(),
        skipped: Vec::new(),
        notes: Vec::new(),
        writer: None,
    };
    let load_before = loadavg();
    let ran = b.all();
    // Scratch copies, archives and restore leftovers are several times the
    // database; only the generated databases (the cache) stay.
    for dir in ["app", "app5", "out"] {
        let _ = std::fs::remove_dir_all(b.work.join(dir));
    }
    for f in ["writer.stop", "writer.stop.ready"] {
        let _ = std::fs::remove_file(b.work.join(f));
    }
    ran?;
    b.notes.push(format!(
        "load average (1/5/15 min) at start: {load_before}; at end: {}",
        loadavg()
    ));
    b.notes.push(machine());
    print!("{}", b.report());
    if !b.failures.is_empty() {
        eprintln!("\nFAILED pipelines:");
        for f in &b.failures {
            eprintln!("  {f}");
        }
        return Ok(false);
    }
    Ok(true)
}

fn have(tool: &str) -> bool {
    which::which(tool).is_ok()
}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.2} GiB", bytes as f64 / (1u64 << 30) as f64)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    }
}

/// Spawn, wait with `wait4` for the exit status and resource usage of the
/// process and the descendants it waited for.
fn timed(cmd: &mut Command) -> R<Sample> {
    let shown = format!("{cmd:?}");
    let started = Instant::now();
    let child = cmd
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter for wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our own unwaited child; both pointers are valid.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = started.elapsed().as_secs_f64();
    // The child was reaped by wait4; dropping the handle does not wait again.
    drop(child);
    if r != pid {
        return Err(format!(
            "wait4 failed for {shown}: {}",
            std::io::Error::last_os_error()
        ));
    }
    if libc::WIFSIGNALED(status) {
        return Err(format!(
            "{shown} was killed by signal {}",
            libc::WTERMSIG(status)
        ));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        return Err(format!(
            "{shown} failed (exit code {})",
            libc::WEXITSTATUS(status)
        ));
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(Sample {
        secs,
        cpu_secs: tv(usage.ru_utime) + tv(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

fn sh(script: &str, args: &[&Path]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-ec").arg(script).arg("sh").args(args);
    c
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn reset_dir(p: &Path) -> R<()> {
    let _ = std::fs::remove_dir_all(p);
    std::fs::create_dir_all(p).map_err(|e| format!("cannot create {}: {e}", p.display()))
}

impl Bench {
    fn record(&mut self, name: &'static str, sample: R<Sample>) -> Option<Sample> {
        if !self.rows.contains_key(name) {
            self.order.push(name);
        }
        match sample {
            Ok(s) => {
                eprintln!(
                    "  {name}: {:.2} s, {:.2} CPU s, {} KiB max RSS",
                    s.secs, s.cpu_secs, s.max_rss_kib
                );
                self.rows.entry(name).or_default().samples.push(s);
                Some(s)
            }
            Err(e) => {
                eprintln!("  {name}: FAILED: {e}");
                self.failures.push(format!("{name}: {e}"));
                self.rows.entry(name).or_default();
                None
            }
        }
    }

    fn set_archive(&mut self, name: &'static str, bytes: u64) {
        if let Some(r) = self.rows.get_mut(name) {
            r.archive_bytes = Some(bytes);
        }
    }

    fn skip(&mut self, what: &str, tool: &str) {
        let line = format!("{what} (`{tool}` not installed)");
        if !self.skipped.contains(&line) {
            self.skipped.push(line);
        }
    }

    /// The generated database for the configured size, cached.
    fn source_db(&self, size: u64) -> R<PathBuf> {
        let v = taskdb::VERSION;
        let path = self.work.join(format!("tasks-v{v}-{size}.db"));
        if path.exists() {
            return Ok(path);
        }
        eprintln!("generating a {} task-store database...", human(size));
        let tmp = self.work.join(format!(".tasks-v{v}-{size}.db.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let t = Instant::now();
        // In a child process: the generator's large page cache would
        // otherwise stay in this process, and a spawned child's peak RSS
        // starts from its parent's.
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let status = Command::new(exe)
            .arg("--size")
            .arg(size.to_string())
            .arg("--generate-only")
            .arg(&tmp)
            .status()
            .map_err(|e| format!("cannot run the generator: {e}"))?;
        if !status.success() {
            return Err(format!("the generator failed ({status})"));
        }
        std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
        eprintln!("  generated in {:.1} s", t.elapsed().as_secs_f64());
        Ok(path)
    }

    fn write_config(&self, app: &Path, name: &str, body: &str) -> R<PathBuf> {
        let path = app.join(name);
        std::fs::write(&path, format!("data_dir = \"data\"\n{body}"))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }

    fn lifeboat(&self, config: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(&self.lifeboat);
        c.arg("--config")
            .arg(config)
            .arg("--quiet")
            .args(args)
            .stdout(Stdio::null())
            .env_remove("LIFEBOAT_CONFIG")
            .env_remove("LIFEBOAT_LOG");
        c
    }

    /// The one archive in `backup_dir`, by extension.
    fn archive_in(&self, backup_dir: &Path, ext: &str) -> Option<PathBuf> {
        std::fs::read_dir(backup_dir)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.to_string_lossy().ends_with(ext))
    }

    fn all(&mut self) -> R<()> {
        let size = self.args.size;
        let reps = self.args.reps.max(1);
        let src = self.source_db(size)?;
        let app = self.work.join("app");
        let data = app.join("data");
        let out = self.work.join("out");
        reset_dir(&data)?;
        reset_dir(&out)?;
        let live = data.join("tasks.db");
        std::fs::copy(&src, &live).map_err(|e| e.to_string())?;
        add_writer_tables(&live)?;
        let db_bytes = file_len(&live);
        self.notes.push(format!(
            "database: {} ({db_bytes} bytes), WAL mode, generated by `lifeboat-bench`",
            human(db_bytes)
        ));
        let gz_cfg = self.write_config(
            &app,
            "gzip.toml",
            "[[database]]\nname = \"tasks\"\npath = \"tasks.db\"\n[snapshot]\ncompression = \"gzip\"\nbusy_timeout = \"30s\"\n",
        )?;
        let zst_cfg = self.write_config(
            &app,
            "zstd.toml",
            "[[database]]\nname = \"tasks\"\npath = \"tasks.db\"\n[snapshot]\ncompression = \"zstd\"\nlevel = 3\nbusy_timeout = \"30s\"\n",
        )?;
        // zstd's fastest ordinary level, to show what the level costs.
        let zst1_cfg = self.write_config(
            &app,
            "zstd1.toml",
            "[[database]]\nname = \"tasks\"\npath = \"tasks.db\"\n[snapshot]\ncompression = \"zstd\"\nlevel = 1\nbusy_timeout = \"30s\"\n",
        )?;
        let backups = data.join("backups");
        let copy = out.join("copy.db");
        let staged = out.join("stage");

        for rep in 0..reps {
            eprintln!("repetition {}/{reps}", rep + 1);
            let _ = std::fs::remove_file(&copy);
            let s = timed(Command::new("cp").arg(&live).arg(&copy));
            self.record("cp (floor: every byte once)", s);

            if have("sqlite3") {
                let dst = out.join("backup.db");
                let _ = std::fs::remove_file(&dst);
                let s = timed(
                    Command::new("sqlite3")
                        .arg(&live)
                        .arg(format!(".backup '{}'", dst.display())),
                );
                self.record("sqlite3 .backup", s);
                if rep == 0 || !self.args.tar_once {
                    reset_dir(&staged)?;
                    let tgz = out.join("baseline.tar.gz");
                    let s = timed(&mut sh(
                        "sqlite3 \"$1\" \".backup '$2/tasks.db'\" && tar czf \"$3\" -C \"$2\" tasks.db",
                        &[&live, &staged, &tgz],
                    ));
                    if self.record("sqlite3 .backup + tar czf", s).is_some() {
                        let n = file_len(&tgz);
                        self.set_archive("sqlite3 .backup + tar czf", n);
                    }
                }
            } else {
                self.skip("sqlite3 .backup baselines", "sqlite3");
            }

            // Archives of earlier repetitions go; this one's are kept in out/.
            for e in std::fs::read_dir(&out)
                .map_err(|e| e.to_string())?
                .flatten()
            {
                if e.file_name().to_string_lossy().starts_with("snap-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
            // The archives to decompress below are kept in out/.
            let keep = |a: PathBuf| {
                let kept = out.join(a.file_name().unwrap_or_default());
                let _ = std::fs::rename(&a, &kept);
                kept
            };
            let lb_gz = self
                .lifeboat_snapshot(&gz_cfg, "lifeboat snapshot (tar.gz)", ".tar.gz", &backups)?
                .map(keep);
            let lb_zst = self
                .lifeboat_snapshot(
                    &zst_cfg,
                    "lifeboat snapshot (tar.zst, level 3)",
                    ".tar.zst",
                    &backups,
                )?
                .map(keep);
            self.lifeboat_snapshot(
                &zst1_cfg,
                "lifeboat snapshot (tar.zst, level 1)",
                ".tar.zst",
                &backups,
            )?;

            if have("zstd") {
                let zst = out.join("copy.db.zst");
                for (level, row) in [
                    ("-3", "zstd -3 -T2 of the copy"),
                    ("-1", "zstd -1 -T2 of the copy"),
                ] {
                    let s = timed(
                        Command::new("zstd")
                            .args([level, "-T2", "-q", "-f", "-o"])
                            .arg(&zst)
                            .arg(&copy),
                    );
                    if self.record(row, s).is_some() {
                        self.set_archive(row, file_len(&zst));
                    }
                }
            } else {
                self.skip("zstd -3 -T2 and -1 -T2", "zstd");
            }
            if have("pigz") {
                let gz = out.join("copy.db.pigz.gz");
                let s = timed(&mut sh("pigz -6 -p2 -c \"$1\" > \"$2\"", &[&copy, &gz]));
                if self.record("pigz -6 -p2 of the copy", s).is_some() {
                    self.set_archive("pigz -6 -p2 of the copy", file_len(&gz));
                }
            } else {
                self.skip("pigz -6 -p2", "pigz");
            }

            // Decompression of the archives just written, to a file like a
            // restore would.
            let tar_out = out.join("unpacked.tar");
            if let (true, Some(a)) = (have("gzip"), &lb_gz) {
                let s = timed(&mut sh("gzip -dc \"$1\" > \"$2\"", &[a, &tar_out]));
                self.record("gzip -d of the lifeboat .tar.gz", s);
            }
            if let (true, Some(a)) = (have("zstd"), &lb_zst) {
                let s = timed(&mut sh("zstd -dcq \"$1\" > \"$2\"", &[a, &tar_out]));
                self.record("zstd -d of the lifeboat .tar.zst", s);
            }
            let _ = std::fs::remove_file(&tar_out);

            if have("sqlite3") {
                let s = timed(
                    Command::new("sqlite3")
                        .arg(&copy)
                        .arg("PRAGMA integrity_check")
                        .stdout(Stdio::null()),
                );
                self.record("PRAGMA integrity_check (sqlite3)", s);
                let s = timed(
                    Command::new("sqlite3")
                        .arg(&copy)
                        .arg("PRAGMA quick_check")
                        .stdout(Stdio::null()),
                );
                self.record("PRAGMA quick_check (sqlite3)", s);
            }
            self.restore(&gz_cfg, lb_gz.as_deref(), &backups)?;
        }

        self.writer_latency(&live, &gz_cfg, &backups)?;
        self.hourly_five_small()?;
        Ok(())
    }

    /// One timed `lifeboat snapshot` into an emptied `backups`, recorded as
    /// `row` with its archive's size; returns the archive (`ext`).
    fn lifeboat_snapshot(
        &mut self,
        config: &Path,
        row: &'static str,
        ext: &str,
        backups: &Path,
    ) -> R<Option<PathBuf>> {
        reset_dir(backups)?;
        let s = timed(&mut self.lifeboat(config, &["snapshot"]));
        if self.record(row, s).is_none() {
            return Ok(None);
        }
        let archive = self.archive_in(backups, ext);
        match &archive {
            Some(a) => self.set_archive(row, file_len(a)),
            None => self.failures.push(format!("{row}: no archive written")),
        }
        Ok(archive)
    }

    /// `lifeboat restore` of the gzip snapshot (full pipeline: verify,
    /// unpack, integrity check, swap), when this build has it.
    fn restore(&mut self, config: &Path, archive: Option<&Path>, backups: &Path) -> R<()> {
        let help = Command::new(&self.lifeboat)
            .args(["restore", "--help"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(help, Ok(s) if s.success()) {
            if !self
                .skipped
                .iter()
                .any(|s| s.starts_with("lifeboat restore"))
            {
                self.skipped
                    .push("lifeboat restore (not in this build of lifeboat)".into());
            }
            return Ok(());
        }
        let Some(archive) = archive else {
            return Ok(());
        };
        let name = archive
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tag = name.trim_end_matches(".tar.gz").to_string();
        reset_dir(backups)?;
        std::fs::copy(archive, backups.join(&name)).map_err(|e| e.to_string())?;
        let s = timed(&mut self.lifeboat(config, &["restore", &tag, "--force"]));
        self.record(RESTORE, s);
        // Restore keeps the replaced data for `--undo`, next to data_dir:
        // a database's worth per repetition.
        if let Some(app) = backups.parent().and_then(Path::parent) {
            for e in std::fs::read_dir(app).map_err(|e| e.to_string())?.flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with("data.pre-restore-")
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }

    /// The writer's commit latency alone, then during a snapshot.
    fn writer_latency(&mut self, live: &Path, gz_cfg: &Path, backups: &Path) -> R<()> {
        if !have("python3") {
            self.skip("writer latency", "python3");
            return Ok(());
        }
        let writer = writer_script()?;
        let snap_secs = self
            .rows
            .get("lifeboat snapshot (tar.gz)")
            .map(|r| r.median())
            .filter(|s| s.is_finite())
            .unwrap_or(3.0)
            .max(if self.args.quick { 1.0 } else { 3.0 });
        eprintln!("writer alone for {snap_secs:.1} s");
        let alone = run_writer(&writer, live, &self.work, || {
            std::thread::sleep(Duration::from_secs_f64(snap_secs));
            Ok(())
        })?;
        eprintln!("writer during a snapshot");
        reset_dir(backups)?;
        let mut snap_err = None;
        let during = run_writer(&writer, live, &self.work, || {
            let s = timed(&mut self.lifeboat(gz_cfg, &["snapshot"]));
            if let Err(e) = s {
                snap_err = Some(e);
            }
            Ok(())
        })?;
        if let Some(e) = snap_err {
            self.failures
                .push(format!("snapshot with a concurrent writer: {e}"));
        }
        for (label, w) in [("alone", &alone), ("during snapshot", &during)] {
            if w.errors > 0 {
                self.failures
                    .push(format!("writer ({label}): {} failed commits", w.errors));
            }
        }
        self.notes.push(format!(
            "writer (python3 tests/support/writer.py, a transfer every 2 ms, WAL): \
             alone {} commits, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors; \
             during a tar.gz snapshot {} commits, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {} errors",
            alone.commits,
            alone.p50,
            alone.p99,
            alone.max,
            alone.errors,
            during.commits,
            during.p50,
            during.p99,
            during.max,
            during.errors
        ));
        self.writer = Some((alone, during));
        Ok(())
    }

    /// The common case: an hourly run over five 10 MB databases, process
    /// start to exit.
    fn hourly_five_small(&mut self) -> R<()> {
        let src = self.source_db(10 << 20)?;
        let app = self.work.join("app5");
        let data = app.join("data");
        reset_dir(&data)?;
        let mut body = String::new();
        for i in 1..=5 {
            std::fs::copy(&src, data.join(format!("db{i}.db"))).map_err(|e| e.to_string())?;
            let _ = write!(
                body,
                "[[database]]\nname = \"db{i}\"\npath = \"db{i}.db\"\n"
            );
        }
        let cfg = self.write_config(&app, "lifeboat.toml", &body)?;
        for _ in 0..self.args.reps.max(1) {
            reset_dir(&data.join("backups"))?;
            let s = timed(&mut self.lifeboat(&cfg, &["snapshot"]));
            self.record("hourly run: 5 × 10 MiB databases (tar.gz)", s);
        }
        Ok(())
    }
}

/// What tests/support/writer.py prints.
#[derive(Debug, Clone, Copy, Default)]
struct WriterStats {
    commits: u64,
    errors: u64,
    p50: f64,
    p99: f64,
    max: f64,
}

/// The writer script, from the repository (the bench runs from its root).
fn writer_script() -> R<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/writer.py");
    if p.exists() {
        Ok(p)
    } else {
        Err(format!("{} is missing", p.display()))
    }
}

/// The tables tests/support/writer.py moves money between, added to the
/// task store (they are small: the task tables are what is measured).
fn add_writer_tables(db: &Path) -> R<()> {
    let conn = rusqlite::Connection::open(db).map_err(|e| e.to_string())?;
    conn.execute_batch(
        "CREATE TABLE accounts(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
         CREATE TABLE ledger(id INTEGER PRIMARY KEY, src INTEGER, dst INTEGER, amount INTEGER, note TEXT);
         CREATE TABLE meta(transfers INTEGER NOT NULL);
         INSERT INTO meta VALUES (0);
         WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999)
           INSERT INTO accounts SELECT i, 1000 FROM n;
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .map_err(|e| format!("cannot add the writer's tables: {e}"))
}

/// Run the writer while `during` runs; return its statistics.
fn run_writer(
    script: &Path,
    db: &Path,
    work: &Path,
    during: impl FnOnce() -> R<()>,
) -> R<WriterStats> {
    let stop = work.join("writer.stop");
    let ready = work.join("writer.stop.ready");
    let _ = std::fs::remove_file(&stop);
    let _ = std::fs::remove_file(&ready);
    let child = Command::new("python3")
        .arg(script)
        .arg(db)
        .arg(&stop)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the writer: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    // Let it settle into its rhythm before measuring anything.
    std::thread::sleep(Duration::from_millis(300));
    let result = during();
    std::fs::write(&stop, b"").map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    result?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("writer printed no statistics ({e}); status {}", out.status))?;
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    Ok(WriterStats {
        commits: v["commits"].as_u64().unwrap_or(0),
        errors: v["error_count"].as_u64().unwrap_or(u64::MAX),
        p50: f("p50_ms"),
        p99: f("p99_ms"),
        max: f("max_ms"),
    })
}

impl Bench {
    fn median_of(&self, name: &str) -> Option<f64> {
        self.rows
            .get(name)
            .map(|r| r.median())
            .filter(|m| m.is_finite())
    }

    fn archive_of(&self, name: &str) -> Option<u64> {
        self.rows.get(name).and_then(|r| r.archive_bytes)
    }

    /// The results as Markdown, ready for docs/performance.md.
    fn report(&self) -> String {
        const TAR: &str = "sqlite3 .backup + tar czf";
        const BACKUP: &str = "sqlite3 .backup";
        let tar = self.median_of(TAR);
        let backup = self.median_of(BACKUP);
        let gzip_size = self.archive_of(TAR);
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\n## lifeboat-bench: {} database, {} repetition(s), medians\n",
            human(self.args.size),
            self.args.reps.max(1)
        );
        let tar_cpu = self.rows.get(TAR).map(|r| r.median_cpu());
        let _ = writeln!(
            s,
            "| pipeline | median s | × (.backup + tar czf) | × .backup | CPU s | CPU × (.backup + tar czf) | archive | × gzip -6 size | peak RSS | runs |"
        );
        let _ = writeln!(
            s,
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        for name in &self.order {
            let row = &self.rows[name];
            let m = row.median();
            let cpu = row.median_cpu();
            let ratio = |v: f64, base: Option<f64>| match base {
                Some(b) if v.is_finite() && b > 0.0 => format!("{:.2}", v / b),
                _ => "".into(),
            };
            let archive = row.archive_bytes.map(human).unwrap_or_default();
            let size_ratio = match (row.archive_bytes, gzip_size) {
                (Some(a), Some(g)) if g > 0 => format!("{:.3}", a as f64 / g as f64),
                _ => "".into(),
            };
            let (time, cpu_s) = if m.is_finite() {
                (format!("{m:.2}"), format!("{cpu:.2}"))
            } else {
                ("FAILED".into(), "".into())
            };
            let _ = writeln!(
                s,
                "| {name} | {time} | {} | {} | {cpu_s} | {} | {archive} | {size_ratio} | {:.1} MiB | {} |",
                ratio(m, tar),
                ratio(m, backup),
                ratio(cpu, tar_cpu),
                row.peak_rss_mib(),
                row.samples.len(),
            );
        }
        let _ = writeln!(s);
        if let Some((alone, during)) = &self.writer {
            let _ = writeln!(
                s,
                "| concurrent writer (commit wait) | commits | p50 ms | p99 ms | max ms | errors |"
            );
            let _ = writeln!(s, "| --- | ---: | ---: | ---: | ---: | ---: |");
            for (label, w) in [("alone", alone), ("during a tar.gz snapshot", during)] {
                let _ = writeln!(
                    s,
                    "| {label} | {} | {:.2} | {:.2} | {:.2} | {} |",
                    w.commits, w.p50, w.p99, w.max, w.errors
                );
            }
            let _ = writeln!(s);
        }
        let _ = writeln!(s, "Targets (issue 8), from this run:");
        let gz = self.median_of("lifeboat snapshot (tar.gz)");
        let zst = self.median_of("lifeboat snapshot (tar.zst, level 3)");
        let mut target = |what: &str, value: Option<f64>, limit: f64, unit: &str| {
            let _ = match value {
                Some(v) => writeln!(
                    s,
                    "- {what}: {v:.3}{unit} (target ≤ {limit}{unit}) {}",
                    if v <= limit { "ok" } else { "MISSED" }
                ),
                None => writeln!(s, "- {what}: not measured"),
            };
        };
        target(
            "tar.gz snapshot time / (.backup + tar czf)",
            gz.zip(tar).map(|(a, b)| a / b),
            0.4,
            "×",
        );
        target(
            "tar.gz archive size / gzip -6 (tar czf) size",
            self.archive_of("lifeboat snapshot (tar.gz)")
                .zip(gzip_size)
                .map(|(a, b)| a as f64 / b as f64),
            1.02,
            "×",
        );
        target(
            "tar.zst snapshot time / .backup",
            zst.zip(backup).map(|(a, b)| a / b),
            2.0,
            "×",
        );
        let rss = [
            "lifeboat snapshot (tar.gz)",
            "lifeboat snapshot (tar.zst, level 3)",
            RESTORE,
        ]
        .iter()
        .filter_map(|n| self.rows.get(n).map(|r| r.peak_rss_mib()))
        .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        target("snapshot and restore peak RSS", rss, 64.0, " MiB");
        target(
            "writer's longest commit wait during a snapshot",
            self.writer.map(|(_, d)| d.max),
            100.0,
            " ms",
        );
        target(
            "hourly run, 5 × 10 MiB databases",
            self.median_of("hourly run: 5 × 10 MiB databases (tar.gz)"),
            1.0,
            " s",
        );
        let restore = self.median_of(RESTORE);
        let unpack_check = self
            .median_of("gzip -d of the lifeboat .tar.gz")
            .zip(self.median_of("PRAGMA integrity_check (sqlite3)"))
            .map(|(a, b)| a + b);
        target(
            "restore (checks included) / (gzip -d + integrity_check)",
            restore.zip(unpack_check).map(|(a, b)| a / b),
            1.3,
            "×",
        );
        let _ = writeln!(s, "\nFor context (same run, no target):");
        let sum = |a: &str, b: &str| self.median_of(a).zip(self.median_of(b)).map(|(x, y)| x + y);
        let mut context = |what: &str, value: Option<f64>| {
            let _ = match value {
                Some(v) => writeln!(s, "- {what}: {v:.3}×"),
                None => writeln!(s, "- {what}: not measured"),
            };
        };
        context(
            "tar.gz snapshot time / (.backup + pigz -6 -p2 of the copy)",
            gz.zip(sum(BACKUP, "pigz -6 -p2 of the copy"))
                .map(|(a, b)| a / b),
        );
        context(
            "tar.zst snapshot time / (.backup + zstd -3 -T2 of the copy)",
            zst.zip(sum(BACKUP, "zstd -3 -T2 of the copy"))
                .map(|(a, b)| a / b),
        );
        // What no pipeline on this machine can beat: the CPU time of the
        // compression alone, spread perfectly over every core.
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        for (what, row) in [
            (
                "zstd -3 -T2 of the copy, CPU s ÷ cores (a floor for any level-3 pipeline) / .backup",
                "zstd -3 -T2 of the copy",
            ),
            (
                "zstd -1 -T2 of the copy, CPU s ÷ cores / .backup",
                "zstd -1 -T2 of the copy",
            ),
            (
                "tar.zst snapshot (level 3), CPU s ÷ cores / .backup",
                "lifeboat snapshot (tar.zst, level 3)",
            ),
        ] {
            context(
                what,
                self.rows
                    .get(row)
                    .zip(backup)
                    .map(|(r, b)| r.median_cpu() / cores / b),
            );
        }
        context(
            "tar.zst snapshot (level 1) time / .backup",
            self.median_of("lifeboat snapshot (tar.zst, level 1)")
                .zip(backup)
                .map(|(a, b)| a / b),
        );
        context(
            "tar.gz snapshot CPU / (.backup + tar czf) CPU",
            self.rows
                .get("lifeboat snapshot (tar.gz)")
                .zip(self.rows.get(TAR))
                .map(|(a, b)| a.median_cpu() / b.median_cpu()),
        );
        let _ = writeln!(s);
        for n in &self.notes {
            let _ = writeln!(s, "- {n}");
        }
        for k in &self.skipped {
            let _ = writeln!(s, "- skipped: {k}");
        }
        s
    }
}

/// CPU seconds this process has used so far.
fn self_cpu() -> f64 {
    // SAFETY: a zeroed rusage is a valid out-parameter.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; RUSAGE_SELF always succeeds.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

fn probe_levels(path: &Path, threads: usize) {
    use std::io::Write;
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot read {}: {e}", path.display());
            std::process::exit(1);
        }
    };
    for level in 1..=9 {
        let (cpu, wall) = (self_cpu(), Instant::now());
        let out = lifeboat::snapshot::pgzip::ParGzWriter::new(Vec::new(), level, threads)
            .and_then(|mut w| w.write_all(&data).and_then(|_| w.finish()));
        let (cpu, wall) = (self_cpu() - cpu, wall.elapsed().as_secs_f64());
        match out {
            Ok(out) => println!(
                "level {level}: {wall:.2} s, {cpu:.2} CPU s, {} bytes ({:.2}% of input)",
                out.len(),
                100.0 * out.len() as f64 / data.len() as f64
            ),
            Err(e) => println!("level {level}: {e}"),
        }
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU model, core count, memory and tool versions, for the record.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_default();
    let version = |tool: &str, arg: &str| -> String {
        Command::new(tool)
            .arg(arg)
            .output()
            .ok()
            .map(|o| {
                let text = if o.stdout.is_empty() {
                    o.stderr
                } else {
                    o.stdout
                };
                String::from_utf8_lossy(&text)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|| "not installed".into())
    };
    format!(
        "machine: {model}, {cores} cores, {mem} RAM; sqlite3 {}; {}; {}; {}; {}",
        version("sqlite3", "--version")
            .split_whitespace()
            .next()
            .unwrap_or(""),
        version("gzip", "--version"),
        version("pigz", "--version"),
        version("zstd", "--version"),
        version("tar", "--version"),
    )
}
