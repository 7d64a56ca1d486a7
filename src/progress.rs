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
    eprintln!("{line}");
}
