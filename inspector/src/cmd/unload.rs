//! `inspector unload`: let go of the probe inspector keeps loaded between
//! runs (docs/probe.md).

use std::process::ExitCode;

use anyhow::Context as _;
use inspector::probe::pinned::{self, Unloaded};

#[derive(clap::Args)]
pub struct UnloadArgs {
    /// Only detach what finished runs left attached (waiting for the kernel
    /// to finish); keep the programs loaded for a fast next start.
    #[arg(long)]
    links_only: bool,
}

pub fn run(args: UnloadArgs) -> anyhow::Result<ExitCode> {
    let Unloaded {
        removed,
        busy,
        skipped,
    } = pinned::unload_all(args.links_only)
        .context("cannot unload the probe kept in /sys/fs/bpf/inspector")?;
    for s in &skipped {
        eprintln!("inspector: left alone: {s}");
    }
    if args.links_only {
        eprintln!("inspector: no kept probe is attached any more");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("inspector: unloaded {removed} kept probe(s)");
    if busy > 0 {
        eprintln!(
            "inspector: {busy} probe(s) left loaded: an inspector is tracing with them \
             (run this again once it has exited)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
