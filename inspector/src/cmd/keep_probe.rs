//! `inspector keep-probe` (hidden): the keeper of a finished run's probe
//! links, started by inspector itself with the descriptors it hands over
//! (see the library's `probe/keeper.rs`).

use std::{
    os::fd::{FromRawFd as _, OwnedFd},
    process::ExitCode,
    time::Duration,
};

#[derive(clap::Args)]
pub struct KeepProbeArgs {
    /// The pinned set's key (for `ps`: which probe this is).
    #[arg(long)]
    #[allow(dead_code, reason = "shown by ps, not used")]
    key: String,
    #[arg(long)]
    seconds: f64,
    #[arg(long)]
    listen: i32,
    #[arg(long)]
    lock: i32,
    #[arg(long, value_delimiter = ',')]
    links: Vec<i32>,
}

pub fn run(args: KeepProbeArgs) -> anyhow::Result<ExitCode> {
    let all: Vec<i32> = [args.listen, args.lock]
        .into_iter()
        .chain(args.links.iter().copied())
        .collect();
    for &fd in &all {
        // SAFETY: fcntl(F_GETFD) only asks whether `fd` is open.
        if fd < 3 || unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            anyhow::bail!("keep-probe: descriptor {fd} is not open (inspector starts this itself)");
        }
    }
    // SAFETY: open (checked above), inherited from the inspector that
    // started this process for us alone, and each named once.
    let own = |fd: i32| unsafe { OwnedFd::from_raw_fd(fd) };
    let seconds = if args.seconds.is_finite() {
        args.seconds.clamp(0.0, 3600.0)
    } else {
        0.0
    };
    inspector::probe::keeper::serve(
        own(args.listen),
        own(args.lock),
        args.links.iter().map(|&fd| own(fd)).collect(),
        Duration::from_secs_f64(seconds),
    );
    Ok(ExitCode::SUCCESS)
}
