//! The `lifeboat` binary: parse the command line, set up logging, catch the
//! stop signals, run the subcommand, and turn its error into a message and
//! an exit code.

use clap::Parser;
use lifeboat::commands::{self, Cli, LogFormat};
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => usage_error(e),
    };
    init_logging(&cli.global);
    // Before anything can start gh: a stop signal then ends the run at a
    // safe point, with gh stopped and the run recorded (lifeboat::interrupt).
    if let Err(e) = lifeboat::interrupt::install() {
        tracing::warn!(error = %e, "cannot catch stop signals; one would end lifeboat (and gh) without recording the run");
    }
    let json = cli.global.json;
    let code = match cli
        .into_command()
        .and_then(|(global, command)| commands::run(&global, command))
    {
        Ok(code) => code,
        Err(err) => {
            if json {
                commands::json::print_error(&err);
            }
            print_error(&err);
            err.exit_code()
        }
    };
    std::process::exit(code);
}

/// The final error, once, on stderr: `error:`/`hint:` lines, or with
/// `--log-format json` one JSON line (`level`, `kind`, `message`, `hint`,
/// `exit_code`). Never panics on a closed stderr.
fn print_error(err: &lifeboat::Error) {
    if lifeboat::progress::json_lines() {
        let mut line = commands::json::error_object(err);
        line["timestamp"] = chrono::Utc::now()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            .into();
        line["level"] = "ERROR".into();
        lifeboat::progress::write_stderr(&line.to_string());
    } else {
        lifeboat::progress::write_stderr(&format!("error: {err}"));
    }
}

/// A command line clap refuses. `--help` and `--version` print as usual;
/// an error exits 2, except under `health`, a monitoring probe, where a
/// usage error is UNKNOWN (3): Nagios reads 2 as CRITICAL.
fn usage_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let health = subcommand(&args) == Some("health");
    let code = if health { 3 } else { 2 };
    let json = args.iter().any(|a| a == "--json");
    let first = e.to_string();
    let first = first
        .lines()
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_string();
    if health && !json {
        // The probe's first line, as a monitoring system shows it.
        commands::out::write_stdout(format_args!("LIFEBOAT UNKNOWN - {first}\n"));
    }
    if json {
        let err = lifeboat::Error::usage(first);
        let mut obj = commands::json::error_object(&err);
        obj["exit_code"] = code.into();
        commands::out::write_stdout(format_args!(
            "{}\n",
            serde_json::json!({"format_version": 1, "ok": false, "error": obj})
        ));
    }
    let _ = e.print();
    std::process::exit(code);
}

/// The subcommand's name in `args` (skipping the global options and
/// their values), if any.
fn subcommand(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if matches!(a.as_str(), "--config" | "--log-format" | "--metrics-file") {
            it.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// Colour in the text logs: never with `NO_COLOR` (any non-empty value),
/// always with `CLICOLOR_FORCE` (non-empty, not `0`), else only when stderr
/// is a terminal (not a cron log file, the journal, a pipe).
fn colour() -> bool {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    if set("NO_COLOR") {
        return false;
    }
    if set("CLICOLOR_FORCE") && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
        return true;
    }
    std::io::stderr().is_terminal()
}

fn init_logging(global: &commands::Global) {
    let level = if global.quiet {
        "error"
    } else {
        match global.verbose {
            0 => "warn",
            1 => "info",
            2 => "debug",
            _ => "trace",
        }
    };
    let filter = EnvFilter::try_from_env("LIFEBOAT_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("lifeboat={level}")));
    // A failed write to stderr (a closed log pipe) is dropped: without
    // `log_internal_errors(false)` tracing-subscriber reports it with
    // `eprintln!`, which panics on the same closed pipe and would end a
    // snapshot before its record is written.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    match global.log_format {
        LogFormat::Json => {
            lifeboat::progress::set_json_lines(true);
            builder.json().init()
        }
        LogFormat::Text => builder.with_target(false).with_ansi(colour()).init(),
    }
}
