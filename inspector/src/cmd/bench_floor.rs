//! `inspector bench-floor` (hidden): the baselines of `cargo xtask bench
//! storm` and `switch-storm`: one empty program attached to
//! syscalls:sys_enter_write, or with `--sched` to the scheduler tracepoints
//! `--sched` traces, until interrupted.

use std::{process::ExitCode, sync::atomic::Ordering, time::Duration};

#[derive(clap::Args)]
pub struct BenchFloorArgs {
    /// The scheduler's tracepoints instead of write's.
    #[arg(long)]
    sched: bool,
}

pub fn run(args: BenchFloorArgs) -> anyhow::Result<ExitCode> {
    let stop = super::stop_on_signals()?;
    let _floor = if args.sched {
        inspector::probe::Floor::attach_sched()?
    } else {
        inspector::probe::Floor::attach()?
    };
    let what = if args.sched {
        "raw sched_switch and sched_waking"
    } else {
        "syscalls:sys_enter_write"
    };
    eprintln!("inspector: 1 empty program attached to {what}");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(ExitCode::SUCCESS)
}
