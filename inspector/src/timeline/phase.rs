//! The phases of a container's life, cut at the milestones the kernel shows.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// The docker CLI's request, until containerd starts a shim.
    Request,
    /// `containerd-shim-runc-v2 start`, until the runtime is invoked.
    ShimStart,
    /// `runtime create` (or `run`): cgroups, namespaces, rootfs, pivot_root, hooks.
    Create,
    /// Created, waiting for `start`.
    Created,
    /// `runtime start`, until the entrypoint is exec'd.
    Start,
    /// The entrypoint, from its exec to its exit.
    Running,
    /// Exited, until the runtime is asked to delete it.
    Stopped,
    /// `runtime delete`, unmounts, cgroup removal, until the last process ends.
    Delete,
}

impl Phase {
    pub const ALL: [Phase; 8] = [
        Phase::Request,
        Phase::ShimStart,
        Phase::Create,
        Phase::Created,
        Phase::Start,
        Phase::Running,
        Phase::Stopped,
        Phase::Delete,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Request => "request",
            Phase::ShimStart => "shim start",
            Phase::Create => "create",
            Phase::Created => "created",
            Phase::Start => "start",
            Phase::Running => "running",
            Phase::Stopped => "stopped",
            Phase::Delete => "delete",
        }
    }

    /// Its name in machine-read forms: the JSON, metric labels, span
    /// names (`shim-start`).
    pub fn key(self) -> &'static str {
        match self {
            Phase::ShimStart => "shim-start",
            p => p.name(),
        }
    }
}

/// One phase as it happened.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseSpan {
    pub phase: Phase,
    pub start_ns: u64,
    pub end_ns: u64,
    pub duration_ns: u64,
}

/// When each phase began (`None`: it did not happen, or was not seen).
#[derive(Clone, Debug, Default)]
pub struct Milestones {
    pub starts: [Option<u64>; 8],
}

impl Milestones {
    /// Records the first time `phase` began.
    pub fn mark(&mut self, phase: Phase, ktime: u64) {
        let slot = &mut self.starts[phase as usize];
        if slot.is_none() {
            *slot = Some(ktime);
        }
    }

    pub fn get(&self, phase: Phase) -> Option<u64> {
        self.starts[phase as usize]
    }

    /// The phases that happened, each ending where the next one begins and the
    /// last at `end`. Out-of-order marks (a later phase seen begin earlier) are
    /// clamped so that spans never run backwards.
    pub fn spans(&self, end: u64) -> Vec<PhaseSpan> {
        let present: Vec<(Phase, u64)> = Phase::ALL
            .iter()
            .filter_map(|&p| self.get(p).map(|t| (p, t)))
            .collect();
        let mut spans = Vec::with_capacity(present.len());
        let mut floor = 0;
        for (i, &(phase, start)) in present.iter().enumerate() {
            let start = start.max(floor);
            let next = present.get(i + 1).map(|&(_, t)| t).unwrap_or(end);
            let end_ns = next.max(start);
            spans.push(PhaseSpan {
                phase,
                start_ns: start,
                end_ns,
                duration_ns: end_ns - start,
            });
            floor = end_ns;
        }
        spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_chain_present_phases_and_skip_absent_ones() {
        let mut m = Milestones::default();
        m.mark(Phase::Create, 100);
        m.mark(Phase::Running, 250);
        m.mark(Phase::Running, 999); // only the first mark counts
        m.mark(Phase::Stopped, 300);
        let spans = m.spans(400);
        let phases: Vec<_> = spans.iter().map(|s| s.phase).collect();
        assert_eq!(phases, [Phase::Create, Phase::Running, Phase::Stopped]);
        assert_eq!(spans[0].duration_ns, 150);
        assert_eq!(spans[2].end_ns, 400);
        let total: u64 = spans.iter().map(|s| s.duration_ns).sum();
        assert_eq!(total, 300, "contiguous: they add up to the whole span");
    }

    #[test]
    fn out_of_order_marks_never_run_backwards() {
        let mut m = Milestones::default();
        m.mark(Phase::Start, 200);
        m.mark(Phase::Running, 150);
        for s in m.spans(300) {
            assert!(s.end_ns >= s.start_ns);
        }
    }
}
