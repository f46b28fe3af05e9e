//! `inspector`: the command line. This parses the arguments, dispatches to
//! the subcommand's file in `cmd/` (one per subcommand), and prints errors.

mod cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use cmd::{
    agent::AgentArgs,
    golden::{CheckArgs, DiffArgs, RecordArgs},
    keep_probe::KeepProbeArgs,
    run::RunArgs,
    timeline::TimelineArgs,
    trace::TraceArgs,
    tui::TuiArgs,
    unload::UnloadArgs,
};

// Building timelines from a recording allocates a few small strings per event;
// mimalloc does that markedly faster than glibc's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// See, from the kernel's point of view, how a container really starts and stops.
#[derive(Parser)]
#[command(version = inspector::version::LONG, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stream what the kernel sees while containers start and stop: processes,
    /// namespaces, mounts, pivot_root and cgroups.
    Trace(TraceArgs),
    /// Per container: the phases of its life with their durations, the chain of
    /// processes and roles, and every step, from a recording
    /// (`inspector trace --format jsonl`) or standard input.
    Timeline(TimelineArgs),
    /// A live terminal UI: containers as they start and stop, each one's
    /// lifecycle and processes, where its time went (`w`, with `--sched`),
    /// and the event stream (`?` shows the keys).
    Tui(TuiArgs),
    /// Run always on, for a fleet: each container's start and end as
    /// Prometheus metrics (--metrics), OpenTelemetry traces (--otlp-endpoint)
    /// and JSON Lines (--output), until SIGTERM.
    Agent(AgentArgs),
    /// Launch a container with the bundled runtime, traced from its first
    /// syscall; print its lifecycle when it exits, and exit with its code.
    Run(RunArgs),
    /// Run a command while tracing and write its golden syscall sequence:
    /// per container and role, normalized for review in a pull request.
    Record(RecordArgs),
    /// Run a command while tracing and compare it with its golden: exit 0
    /// when it matches, 1 with a role-by-role diff when it does not.
    Check(CheckArgs),
    /// Compare two goldens or two recordings.
    Diff(DiffArgs),
    /// Let go of the probe inspector keeps loaded between runs: detach what a
    /// finished run left attached and unload the programs (the next run
    /// loads them again).
    Unload(UnloadArgs),
    /// Print a shell's completion script (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::CompletionsArgs),
    /// Write the manual pages: inspector.1 and one per subcommand.
    Man(cmd::man::ManArgs),
    /// Benchmark baseline: attach one empty program to syscalls:sys_enter_write
    /// (with --sched, to sched:sched_switch and sched:sched_waking) until
    /// interrupted.
    #[command(hide = true)]
    BenchFloor(cmd::bench_floor::BenchFloorArgs),
    /// The keeper of a finished run's probe links (started by inspector itself).
    #[command(hide = true)]
    KeepProbe(KeepProbeArgs),
}

/// The error and its causes, each said once. A library error that says its
/// cause in its message and also gives it as its source would otherwise
/// print it twice (`Is a directory (os error 21): Is a directory (os error 21)`).
fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let said = cause.to_string();
        if said.is_empty() || text.contains(&said) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&said);
    }
    text
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("inspector: error: {}", error_chain(&e));
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Trace(args) => cmd::trace::run(args),
        Command::Timeline(args) => cmd::timeline::run(args),
        Command::Tui(args) => cmd::tui::run(args),
        Command::Agent(args) => cmd::agent::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Record(args) => cmd::golden::record(args),
        // 1 means "differs": a check that could not run says so with 2.
        Command::Check(args) => cmd::golden::check(args).or_else(|e| {
            eprintln!("inspector: error: {}", error_chain(&e));
            Ok(ExitCode::from(2))
        }),
        Command::Diff(args) => cmd::golden::diff(args).or_else(|e| {
            eprintln!("inspector: error: {}", error_chain(&e));
            Ok(ExitCode::from(2))
        }),
        Command::Unload(args) => cmd::unload::run(args),
        Command::Completions(args) => cmd::completions::run(args),
        Command::Man(args) => cmd::man::run(args),
        Command::BenchFloor(args) => cmd::bench_floor::run(args),
        Command::KeepProbe(args) => cmd::keep_probe::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::from_raw_os_error(libc::EISDIR);
        #[derive(Debug, thiserror::Error)]
        #[error("cannot write /tmp: {source}")]
        struct Twice {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Twice { source: io }).context("tracing");
        assert_eq!(
            error_chain(&e),
            "tracing: cannot write /tmp: Is a directory (os error 21)"
        );
    }
}
