//! `inspector bench-floor` (hidden): the baseline of `cargo xtask bench
//! storm`, one empty program attached to syscalls:sys_enter_write until
//! interrupted.

use std::{process::ExitCode, sync::atomic::Ordering, time::Duration};

pub fn run() -> anyhow::Result<ExitCode> {
    let stop = super::stop_on_signals()?;
    let _floor = inspector::probe::Floor::attach()?;
    eprintln!("inspector: 1 empty program attached to syscalls:sys_enter_write");
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(ExitCode::SUCCESS)
}
