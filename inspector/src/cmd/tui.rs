//! `inspector tui`: the live terminal UI (the library's `tui/`), attached to
//! the probe or replaying a recording.

use std::{path::PathBuf, process::ExitCode};

use inspector::{
    probe::ProbeOptions,
    tui::{self, TuiOptions},
};

use super::Following;

#[derive(clap::Args)]
pub struct TuiArgs {
    /// Replay a recording (`inspector trace --format jsonl`) with a time
    /// cursor instead of attaching the probes.
    #[arg(long, value_name = "FILE.jsonl")]
    replay: Option<PathBuf>,
    /// Events kept for the stream; the oldest are dropped first.
    #[arg(long, value_name = "EVENTS", default_value_t = tui::DEFAULT_RETENTION)]
    retain: usize,
    /// Also report the context switches and wake-ups of followed tasks, for
    /// the why view (`w`: where the selected container's time went). This
    /// puts a program on every context switch of the machine. A replay
    /// shows what its recording has (`inspector trace --sched`).
    #[arg(long, conflicts_with = "replay")]
    sched: bool,
    #[command(flatten)]
    following: Following,
}

pub fn run(args: TuiArgs) -> anyhow::Result<ExitCode> {
    let opts = TuiOptions {
        probe: ProbeOptions {
            sched: args.sched,
            ..args.following.probe(None, false)
        },
        replay: args.replay,
        retention: args.retain,
        container: None,
    };
    tui::run(&opts)?;
    Ok(ExitCode::SUCCESS)
}
