//! `lifeboat health`: a monitoring probe. Reads `last_run.json` and
//! `drill.json` only; never the network, never the lock, never a write.

use super::Global;
use crate::error::Result;
use crate::health;

/// Judge the backups from the last run and the last drill.
///
/// Prints a one-line summary, then details. Exit codes follow the
/// monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
///
/// A recorded time more than 5 minutes in the future (a clock was ahead)
/// is a "clock skew" WARNING, not a fresh record; in --json its `age_secs`
/// is negative and `clock_skew` lists every such time.
#[derive(Debug, clap::Args)]
pub struct HealthArgs {}

pub fn run(global: &Global, _args: HealthArgs) -> Result<i32> {
    // A probe must answer in its own terms even when the config is broken:
    // UNKNOWN (3), not the generic configuration exit code.
    let config = match global.load_config() {
        Ok(c) => c,
        Err(e) => {
            let summary = format!("LIFEBOAT UNKNOWN - {}", e.message);
            if global.json {
                let mut error = super::json::error_object(&e);
                error["exit_code"] = 3.into();
                global.print_json(&serde_json::json!({
                    "status": "UNKNOWN",
                    "exit_code": 3,
                    "summary": summary,
                    "ok": false,
                    "error": error,
                }));
            } else {
                outln!("{summary}");
                if let Some(hint) = &e.hint {
                    outln!("hint: {hint}");
                }
            }
            return Ok(health::Status::Unknown.exit_code());
        }
    };
    let report = health::probe(&config, chrono::Utc::now());
    if global.json {
        global.print_json(&report);
    } else {
        out!("{}", report.render_text());
    }
    Ok(report.exit_code)
}
