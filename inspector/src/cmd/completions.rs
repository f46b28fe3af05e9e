//! `inspector completions SHELL`: the shell's completion script on standard
//! output, generated from the same clap definitions as the parser, so a new
//! flag completes as soon as it parses. Packages install the scripts
//! (`cargo xtask dist`); a user of a bare binary can source its output.

use std::process::ExitCode;

use clap::CommandFactory as _;
use clap_complete::Shell;

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    let mut cli = crate::Cli::command();
    let name = cli.get_name().to_string();
    clap_complete::generate(args.shell, &mut cli, name, &mut std::io::stdout().lock());
    Ok(ExitCode::SUCCESS)
}
