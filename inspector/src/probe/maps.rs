//! The probe's maps as userspace holds them, and the programs and maps of a
//! probe in the kernel before it is attached (each way of coming up gives
//! them, see [`super::lifecycle`]); readied for a new run.

use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};

use aya::maps::{Array, HashMap, Map, MapData, PerCpuArray, PerCpuValues, RingBuf};
use inspector_common::{COMM_LEN, RunState, SyscallEvent};

use super::{ProbeError, comm_key};

/// The maps userspace reads or resets, by the names the probe gives them.
pub struct Maps {
    pub events: RingBuf<MapData>,
    pub lost: PerCpuArray<MapData, u64>,
    tracked: HashMap<MapData, u32, u32>,
    tracked_bits: Array<MapData, u64>,
    speaks_bits: Array<MapData, u64>,
    track_comms: HashMap<MapData, [u8; COMM_LEN], u32>,
    pending: HashMap<MapData, u32, [u8; size_of::<SyscallEvent>()]>,
    clone_flags: HashMap<MapData, u32, u64>,
    pub run: Array<MapData, RunState>,
}

pub const MAP_NAMES: [&str; 9] = [
    "EVENTS",
    "LOST",
    "TRACKED",
    "TRACKED_BITS",
    "SPEAKS_BITS",
    "TRACK_COMMS",
    "PENDING",
    "CLONE_FLAGS",
    "RUN",
];

impl Maps {
    /// Takes the maps from `take`, which hands over each map by name.
    pub fn take(
        mut take: impl FnMut(&'static str) -> Result<Map, ProbeError>,
    ) -> Result<Self, ProbeError> {
        fn typed<T: TryFrom<Map, Error = aya::maps::MapError>>(
            name: &'static str,
            map: Map,
        ) -> Result<T, ProbeError> {
            T::try_from(map).map_err(|source| ProbeError::Map {
                name,
                error: source,
            })
        }
        let [
            events,
            lost,
            tracked,
            bits,
            speaks,
            comms,
            pending,
            clone_flags,
            run,
        ] = MAP_NAMES;
        Ok(Maps {
            events: typed(events, take(events)?)?,
            lost: typed(lost, take(lost)?)?,
            tracked: typed(tracked, take(tracked)?)?,
            tracked_bits: typed(bits, take(bits)?)?,
            speaks_bits: typed(speaks, take(speaks)?)?,
            track_comms: typed(comms, take(comms)?)?,
            pending: typed(pending, take(pending)?)?,
            clone_flags: typed(clone_flags, take(clone_flags)?)?,
            run: typed(run, take(run)?)?,
        })
    }

    /// Switches the probe on or off (see [`switch`]).
    pub fn set_enabled(&mut self, enabled: bool, sched_self: bool) -> Result<(), ProbeError> {
        switch(&mut self.run, enabled, sched_self).map_err(|source| ProbeError::Map {
            name: "RUN",
            error: source,
        })
    }

    /// Readies maps an earlier run may have used, the probe being off:
    /// nothing of that run's state or unread events is left.
    pub fn reset(&mut self) -> Result<(), ProbeError> {
        let lost_err = |e| ProbeError::Map {
            name: "LOST",
            error: aya::maps::MapError::IoError(e),
        };
        let cpus = aya::util::nr_cpus().map_err(|(_, e)| lost_err(e))?;
        let zeros = PerCpuValues::try_from(vec![0u64; cpus]).map_err(lost_err)?;
        self.lost
            .set(0, zeros, 0)
            .map_err(|source| ProbeError::Map {
                name: "LOST",
                error: source,
            })?;
        // Processes tracked then may have exited since, with the probe off
        // to untrack them: their pids could be anyone's now.
        let tracked: Vec<u32> = self.tracked.keys().flatten().collect();
        for tgid in tracked {
            let _ = self.tracked.remove(&tgid);
            let index = tgid / 64;
            for bitmap in [&mut self.tracked_bits, &mut self.speaks_bits] {
                if let Ok(word) = bitmap.get(&index, 0) {
                    let _ = bitmap.set(index, word & !(1u64 << (tgid % 64)), 0);
                }
            }
        }
        let pending: Vec<u32> = self.pending.keys().flatten().collect();
        for tid in pending {
            let _ = self.pending.remove(&tid);
        }
        let clone_flags: Vec<u32> = self.clone_flags.keys().flatten().collect();
        for tid in clone_flags {
            let _ = self.clone_flags.remove(&tid);
        }
        let comms: Vec<[u8; COMM_LEN]> = self.track_comms.keys().flatten().collect();
        for comm in comms {
            let _ = self.track_comms.remove(&comm);
        }
        while self.events.next().is_some() {}
        Ok(())
    }

    /// Reports these processes (and, from now on, their children): the hash
    /// and the bitmap the probe's hot path tests.
    pub fn mark_tracked(&mut self, tgids: impl Iterator<Item = u32>) {
        for tgid in tgids {
            // A full map only means less is reported; not worth failing the run.
            let _ = self.tracked.insert(tgid, 1, 0);
            let index = tgid / 64;
            if let Ok(word) = self.tracked_bits.get(&index, 0) {
                let _ = self.tracked_bits.set(index, word | 1u64 << (tgid % 64), 0);
            }
        }
    }

    pub fn set_track_comms(&mut self, names: &[&str]) -> Result<(), ProbeError> {
        for name in names {
            let mut bits = inspector_common::COMM_FOLLOW;
            if super::STDERR_IS_MESSAGE.contains(name) {
                bits |= inspector_common::COMM_STDERR_IS_MESSAGE;
            }
            if super::RUNTIMES.contains(name) {
                bits |= inspector_common::COMM_WRITES_RUNTIME_LOG;
            }
            self.track_comms
                .insert(comm_key(name)?, bits, 0)
                .map_err(|source| ProbeError::Map {
                    name: "TRACK_COMMS",
                    error: source,
                })?;
        }
        Ok(())
    }
}

/// Switches the probe whose `RUN` map this is on or off; this process is the
/// one never reported.
pub fn switch(
    run: &mut Array<MapData, RunState>,
    on: bool,
    sched_self: bool,
) -> Result<(), aya::maps::MapError> {
    let state = RunState {
        self_tgid: std::process::id(),
        enabled: on as u32,
        sched_self: sched_self as u32,
        _pad: 0,
    };
    run.set(0, state, 0)
}

/// The programs and maps of a probe in the kernel, before attaching.
pub struct Loaded {
    pub programs: Vec<(&'static str, OwnedFd)>,
    pub maps: Maps,
}

impl Loaded {
    pub fn program(&self, name: &str) -> BorrowedFd<'_> {
        self.programs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, fd)| fd.as_fd())
            .expect("every hooked program is loaded")
    }
}
