//! How the probe comes up and goes down: one state machine, driven in order
//! by [`come_up`] (from [`super::Probe::load`]) and [`go_down`] (when the
//! probe is dropped). Each stage's work is in the file named beside it.
//!
//! ```text
//!  1. plan         the options, checked against the machine      plan.rs, prereq.rs
//!  2. choose       which way to come up                          Way::choose
//!       ├─ Adopt   an earlier run's keeper hands over its links   keeper.rs
//!       ├─ Reopen  the pinned programs and maps, reopened         pinned.rs
//!       └─ Load    loaded from the object (and pinned, with a     loader.rs
//!                  lease); Adopt and Reopen fall back to it when
//!                  the pins are gone or unusable
//!  3. take         the way's programs and maps in hand            Way::take
//!  4. ready        maps reset for this run, the container         maps.rs
//!                  processes already running marked
//!  5. attach       every hook not attached yet                    link.rs
//!                  (a kept probe whose old links are still
//!                  detaching, EEXIST: again from 1, as a private Load)
//!  6. on           switched on; processes made since 4 marked     maps.rs
//!     … the run reads the ring buffer (mod.rs) …
//!  7. down         switched off; the links handed to a keeper     keeper.rs, link.rs
//!                  for the next run, or let go in the background
//! ```
//!
//! docs/probe.md tells why the probe is kept between runs.

use std::{os::fd::OwnedFd, path::Path, time::Instant};

use aya::maps::{Array, MapData};
use inspector_common::RunState;

use super::{
    Origin, Probe, ProbeError, ProbeOptions, keeper,
    link::{self, Links},
    loader::{self, Logger},
    maps::{self, Loaded},
    pinned::{self, Lease},
    plan::Plan,
    prereq,
};
use crate::track;

/// The ways the probe comes up, best first.
enum Way {
    /// An earlier run's keeper handed over the set's lease and the links it
    /// still held, by place among the hooks (`None`: already let go).
    Adopt(Lease, Vec<Option<OwnedFd>>),
    /// This run holds the lease of a set that is pinned: its programs and
    /// maps are reopened.
    Reopen(Lease),
    /// Loaded from the probe's object; with a lease, pinned in the set for
    /// the runs that follow. Without one, a private probe.
    Load(Option<Lease>),
}

/// What a way gives: the probe in the kernel, before the hooks it does not
/// have attached are.
struct Taken {
    loaded: Loaded,
    /// The links already attached, by place among the hooks.
    attached: Vec<Option<OwnedFd>>,
    origin: Origin,
    logger: Option<Logger>,
    lease: Option<Lease>,
}

/// Why one try at coming up failed.
enum Failed {
    /// A kept probe's programs are still attached to a tracepoint by links of
    /// an earlier run on their way out (EEXIST): a private probe may attach.
    KeptBusy(ProbeError),
    Error(ProbeError),
}

impl From<ProbeError> for Failed {
    fn from(e: ProbeError) -> Self {
        Failed::Error(e)
    }
}

/// Stages 1 to 6: the probe loaded (or taken over) and attached; from its
/// return, nothing a followed process does is missed.
pub(super) fn come_up(opts: &ProbeOptions) -> Result<Probe, ProbeError> {
    // Not with kernel-side logging, whose reader needs the loader's state.
    let keep = matches!(opts.log_level, None | Some(log::LevelFilter::Off))
        && !keeper::keep_time().is_zero();
    match try_come_up(opts, keep) {
        Ok(probe) => Ok(probe),
        Err(Failed::Error(e)) => Err(e),
        Err(Failed::KeptBusy(e)) => {
            log::debug!("the kept probe cannot be attached now ({e}); loading a new one");
            try_come_up(opts, false).map_err(|(Failed::KeptBusy(e) | Failed::Error(e))| e)
        }
    }
}

fn try_come_up(opts: &ProbeOptions, keep: bool) -> Result<Probe, Failed> {
    let started = Instant::now();
    // 1. plan
    let events_dir = prereq::check().map_err(ProbeError::from)?;
    let plan = Plan::new(opts, &events_dir)?;
    // 2. choose, 3. take
    let Taken {
        mut loaded,
        attached,
        origin,
        logger,
        lease,
    } = Way::choose(&plan, keep).take(&plan, &events_dir)?;

    // 4. ready: the probe is off until the maps are this run's.
    loaded.maps.set_enabled(false, false)?;
    loaded.maps.reset()?;
    let comms = plan.comm_names();
    loaded.maps.set_track_comms(&comms)?;
    // Container processes already running: marked before the probe is
    // switched on, and once more after, for those forked in between.
    let pid_before = last_pid();
    let before = track::select(&track::scan_proc(), &comms);
    loaded.maps.mark_tracked(before.iter().copied());

    // 5. attach
    let links = match link::attach_missing(
        &plan.hooks,
        attached,
        |name| loaded.program(name),
        &events_dir,
    ) {
        Ok(links) => links,
        Err(e) if origin != Origin::Loaded => return Err(Failed::KeptBusy(e)),
        Err(e) => return Err(e.into()),
    };
    let attached = links.0.len();

    // 6. on
    loaded.maps.set_enabled(true, opts.sched_self)?;
    // No process made since the first scan (the kernel's last pid is the
    // same): no need for a second.
    let after = if pid_before.is_some() && last_pid() == pid_before {
        before.clone()
    } else {
        track::select(&track::scan_proc(), &comms)
    };
    loaded.maps.mark_tracked(after.difference(&before).copied());
    let seeded = before.union(&after).count();

    let Loaded { maps, programs } = loaded;
    Ok(Probe {
        programs,
        links,
        ring: maps.events,
        lost: maps.lost,
        run: maps.run,
        logger,
        lease,
        attached,
        seeded,
        ready_in: started.elapsed(),
        origin,
        missing: plan.missing.clone(),
    })
}

impl Way {
    /// Stage 2, choose: the set's lease if it is free, or else its keeper's, with
    /// the links it holds; a private load when neither is to be had
    /// (another inspector is tracing with the set) or sets cannot be kept here.
    fn choose(plan: &Plan, keep: bool) -> Way {
        if !keep {
            return Way::Load(None);
        }
        let key = plan.key();
        let (lease, adopted) = match pinned::claim(&key) {
            Ok(Some(lease)) => (lease, None),
            Ok(None) => match keeper::adopt(&key, plan.hooks.len()) {
                Some((lock, links)) => (Lease::adopted(&key, lock), Some(links)),
                // Another inspector is tracing with it.
                None => return Way::Load(None),
            },
            Err(e) => {
                log::debug!("the probe is not kept between runs here: {e}");
                return Way::Load(None);
            }
        };
        if !lease.is_filled() {
            // Links to programs whose pins are gone: the probe is loaded and
            // pinned anew.
            let_go(adopted);
            return Way::Load(Some(lease));
        }
        match adopted {
            Some(links) => Way::Adopt(lease, links),
            None => Way::Reopen(lease),
        }
    }

    /// Stage 3, take: the way's programs and maps in hand. A set whose pins cannot
    /// be opened is cleared, and the probe loaded and pinned anew.
    fn take(self, plan: &Plan, events_dir: &Path) -> Result<Taken, ProbeError> {
        let (lease, adopted) = match self {
            Way::Load(lease) => return load(plan, events_dir, lease),
            Way::Reopen(lease) => (lease, None),
            Way::Adopt(lease, links) => (lease, Some(links)),
        };
        // All attached already: only the maps are needed.
        let programs: &[&'static str] = match &adopted {
            Some(links) if links.iter().all(Option::is_some) => &[],
            _ => &plan.wanted,
        };
        match lease.reopen(programs) {
            Ok(loaded) => {
                let (attached, origin) = match adopted {
                    Some(links) => (links, Origin::Adopted),
                    None => (none_attached(plan), Origin::Pinned),
                };
                Ok(Taken {
                    loaded,
                    attached,
                    origin,
                    logger: None,
                    lease: Some(lease),
                })
            }
            Err(e) => {
                log::warn!("the probe kept loaded is unusable ({e}); loading it again");
                let_go(adopted);
                lease.clear();
                load(plan, events_dir, Some(lease))
            }
        }
    }
}

/// The Load way: loaded from the object, pinned in `lease`'s set if one is
/// held.
fn load(plan: &Plan, events_dir: &Path, lease: Option<Lease>) -> Result<Taken, ProbeError> {
    let (loaded, logger) = loader::load(plan, events_dir, lease.as_ref())?;
    Ok(Taken {
        loaded,
        attached: none_attached(plan),
        origin: Origin::Loaded,
        logger,
        lease,
    })
}

fn none_attached(plan: &Plan) -> Vec<Option<OwnedFd>> {
    plan.hooks.iter().map(|_| None).collect()
}

/// Lets adopted links that cannot be used go, in the background (see `Links`).
fn let_go(adopted: Option<Vec<Option<OwnedFd>>>) {
    drop(Links(adopted.into_iter().flatten().flatten().collect()));
}

/// Stage 7, down: off first, so that whatever still holds the links reports
/// nothing; then the links go to a keeper for the next run, with the lease,
/// or are let go in the background.
pub(super) fn go_down(run: &mut Array<MapData, RunState>, links: Links, lease: Option<Lease>) {
    let _ = maps::switch(run, false, false);
    let links = links.into_fds();
    let keep = keeper::keep_time();
    match lease {
        Some(lease) if !keep.is_zero() && !links.is_empty() => {
            if let Err((_lock, links)) = keeper::hand_over(&lease.key, lease.lock, links, keep) {
                link::release(links);
            }
        }
        _ => link::release(links),
    }
}

/// The last pid the kernel handed out in this pid namespace.
fn last_pid() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()?
        .trim()
        .parse()
        .ok()
}
