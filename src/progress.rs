//! What a person sees while the work runs: progress bars for long work, on
//! an interactive terminal only (nothing is drawn under cron, systemd, a
//! pipe, or with `-q`/`--json`), and [`notice`], the one way the library
//! tells the person at the terminal something in the middle of a run.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether progress is drawn, decided once per process by [`init`]: work
/// deep in a pipeline (a download in the middle of a restore) has no
/// command-line options at hand.
static DRAW: AtomicBool = AtomicBool::new(false);

/// Decide for the whole process whether progress is drawn: when `wanted`
/// (not `-q`, not `--json`) and stderr is a terminal.
pub fn init(wanted: bool) {
    DRAW.store(wanted && std::io::stderr().is_terminal(), Ordering::Relaxed);
}

fn enabled() -> bool {
    DRAW.load(Ordering::Relaxed)
}

/// Pages copied, one bar per database, then the bytes packed into the
/// archive (a bar named `archive`).
pub struct Copying {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Default for Copying {
    fn default() -> Self {
        Copying::new()
    }
}

impl Copying {
    pub fn new() -> Copying {
        let multi =
            enabled().then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Copying {
            multi,
            bars: Mutex::new(HashMap::new()),
        }
    }

    pub fn update(&self, db: &str, done: u64, total: u64) {
        let Some(multi) = &self.multi else { return };
        let mut bars = self.bars.lock().unwrap();
        let bar = bars.entry(db.to_string()).or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(total));
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {percent:>3}%")
                    .expect("static template")
                    .progress_chars("=> "),
            );
            bar.set_prefix(db.to_string());
            bar
        });
        bar.set_length(total);
        bar.set_position(done);
    }

    pub fn finish(&self) {
        for bar in self.bars.lock().unwrap().values() {
            bar.finish_and_clear();
        }
    }
}

/// A byte counter (a download), hidden unless [`init`] enabled progress.
pub fn bytes(what: &str, total: Option<u64>) -> ProgressBar {
    if !enabled() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    bar.set_style(match total {
        Some(_) => ProgressStyle::with_template(
            "{prefix:>12} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .expect("static template")
        .progress_chars("=> "),
        None => ProgressStyle::with_template("{prefix:>12} {spinner} {bytes} {bytes_per_sec}")
            .expect("static template"),
    });
    bar.set_prefix(what.to_string());
    bar
}

/// Tell the person running lifeboat something that happened on the way (an
/// interrupted restore rolled back, a damaged local copy replaced by a
/// download): one line on stderr, whatever the log settings, because it
/// changes what they should expect of the result.
pub fn notice(line: &str) {
    stderr_line("INFO", line);
}

/// Whether every stderr line is JSON (`--log-format json`), set once by
/// `main` through [`set_json_lines`].
static JSON_LINES: AtomicBool = AtomicBool::new(false);

/// Make [`stderr_line`] print JSON objects (`--log-format json`).
pub fn set_json_lines(json: bool) {
    JSON_LINES.store(json, Ordering::Relaxed);
}

/// Whether stderr lines are JSON objects.
pub fn json_lines() -> bool {
    JSON_LINES.load(Ordering::Relaxed)
}

/// One line for the person on stderr that is not a log event (a warning
/// beside a table, a notice, the final error): text, or with
/// `--log-format json` an object shaped like the JSON log lines
/// (`timestamp`, `level`, `fields.message`). A closed or full stderr is
/// ignored: never a panic, never the end of a run (the run record matters
/// more than a line nobody can read).
pub fn stderr_line(level: &str, line: &str) {
    let text = if json_lines() {
        serde_json::json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": level,
            "fields": { "message": line },
        })
        .to_string()
    } else {
        line.to_string()
    };
    write_stderr(&text);
}

/// Write one line to stderr, ignoring every error (EPIPE included).
pub fn write_stderr(line: &str) {
    use std::io::Write;
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
    let _ = err.flush();
}
