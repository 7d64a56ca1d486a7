//! `lifeboat completions SHELL` and `lifeboat man`: shell completions
//! (clap_complete) and a roff man page (clap_mangen), both generated from the
//! same clap definitions as the parser, so they cannot drift from it.

use super::{Cli, Global};
use crate::error::{IoContext, Result};
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for, e.g. `source <(lifeboat completions bash)`.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {}

pub fn completions(_global: &Global, args: CompletionsArgs) -> Result<i32> {
    let mut cmd = Cli::command();
    // Into memory, then through `out!`: a closed pipe ends like SIGPIPE
    // (clap_complete panics on a failed write).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "lifeboat", &mut script);
    out!("{}", String::from_utf8_lossy(&script));
    Ok(0)
}

/// The man page of `lifeboat` (roff on stdout): `lifeboat man | man -l -`.
pub fn man(_global: &Global, _args: ManArgs) -> Result<i32> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .ctx("cannot render the man page")?;
    // One page for the whole tool: the subcommands and their options follow.
    for sub in Cli::command().get_subcommands() {
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone())
            .render_options_section(&mut page)
            .ctx("cannot render the man page")?;
        out.extend_from_slice(
            format!(
                ".SH \"LIFEBOAT {}\"\n{}\n",
                sub.get_name().to_uppercase(),
                sub.get_about().map(|a| a.to_string()).unwrap_or_default()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&page);
    }
    out!("{}", String::from_utf8_lossy(&out));
    Ok(0)
}
