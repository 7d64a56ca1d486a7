//! Progress bars for long work, on an interactive terminal only: nothing is
//! drawn under cron, systemd, a pipe, or with `-q`/`--json`.

use crate::commands::Global;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether progress may be drawn for this invocation.
pub fn enabled(global: &Global) -> bool {
    !global.quiet && !global.json && std::io::stderr().is_terminal()
}

/// [`enabled`], decided once per process by [`init`], for work deep in a
/// pipeline that has no [`Global`] at hand (a download in the middle of a
/// restore).
static DRAW: AtomicBool = AtomicBool::new(false);

/// Decide for the whole process whether progress is drawn.
pub fn init(global: &Global) {
    DRAW.store(enabled(global), Ordering::Relaxed);
}

/// Pages copied, one bar per database, then the bytes packed into the
/// archive (a bar named `archive`).
pub struct Copying {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Copying {
    pub fn new(global: &Global) -> Copying {
        let multi =
            enabled(global).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
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
    if !DRAW.load(Ordering::Relaxed) {
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
