//! The `lifeboat` binary: parse the command line, set up logging, catch the
//! stop signals, run the subcommand, and turn its error into a message and
//! an exit code.

use clap::Parser;
use lifeboat::commands::{self, Cli, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() {
    let cli = Cli::parse();
    init_logging(&cli.global);
    // Before anything can start gh: a stop signal then ends the run at a
    // safe point, with gh stopped and the run recorded (lifeboat::interrupt).
    if let Err(e) = lifeboat::interrupt::install() {
        tracing::warn!(error = %e, "cannot catch stop signals; one would end lifeboat (and gh) without recording the run");
    }
    let code = match cli
        .into_command()
        .and_then(|(global, command)| commands::run(&global, command))
    {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
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
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match global.log_format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.with_target(false).init(),
    }
}
