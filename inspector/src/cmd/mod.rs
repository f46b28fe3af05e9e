//! Every subcommand of `inspector`, one file each, named as the command is:
//! its arguments (clap) and its work. What more than one of them needs is
//! here once: what the probe follows and stopping on a signal (an exit
//! status as a shell reports it is the library's
//! `timeline::present::shell_exit_code`, which the views share).

pub mod agent;
pub mod bench_floor;
pub mod completions;
pub mod golden;
pub mod keep_probe;
pub mod man;
pub mod run;
pub mod timeline;
pub mod trace;
pub mod tui;
pub mod unload;

use std::sync::{Arc, atomic::AtomicBool};

use anyhow::Context as _;
use inspector::probe::{DEFAULT_BUFFER_SIZE, ProbeOptions};

/// What the probe follows, for the commands that attach it.
#[derive(clap::Args)]
pub struct Following {
    /// Report every process on the machine, not only container engines,
    /// shims, runtimes and their children.
    #[arg(long)]
    all: bool,
    /// Also follow processes that exec a binary with this name (repeatable).
    #[arg(long = "track-comm", value_name = "NAME")]
    track_comm: Vec<String>,
    /// Ring buffer size in bytes (a power of two).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER_SIZE)]
    buffer_size: u32,
}

impl Following {
    fn probe(self, log_level: Option<log::LevelFilter>, write_results: bool) -> ProbeOptions {
        ProbeOptions {
            trace_all: self.all,
            buffer_size: self.buffer_size,
            log_level,
            track_comms: self.track_comm,
            write_results,
            sched: false,
            sched_self: false,
        }
    }
}

/// A flag set by SIGINT or SIGTERM, for a command to stop cleanly.
fn stop_on_signals() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("installing the signal handler")?;
    }
    Ok(stop)
}
