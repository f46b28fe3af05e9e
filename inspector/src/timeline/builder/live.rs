//! A read-only view of the containers the [`Builder`] is still following, for
//! views that show a container while it starts (the TUI), not only once its
//! life is over.
//!
//! A child module of the builder, so it reads the builder's private state
//! directly: the builder itself stays as it is.

use std::rc::Rc;

use super::{Builder, Container, current_phase};
use crate::{
    event::{Body, Event},
    timeline::{ChainLink, Engine, Failure, Phase, PhaseSpan, Role, engine},
};

/// A container in progress, as far as the events so far tell.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveContainer {
    pub id: String,
    pub engine: Option<Engine>,
    pub runtime: Option<String>,
    pub start_ns: u64,
    /// Its last event so far.
    pub last_ns: u64,
    /// The phase under way at its last event (`None` before the first milestone).
    pub phase: Option<Phase>,
    /// The phases so far, the last one ending at `last_ns`.
    pub phases: Vec<PhaseSpan>,
    /// The processes so far, by start time.
    pub chain: Vec<ChainLink>,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub events: u64,
    pub already_running: bool,
    /// Its deletion was seen and all its processes ended: the builder is
    /// waiting out stragglers before handing out its timeline.
    pub ending: bool,
    /// Its start failed (see [`Failure`]).
    pub failure: Option<Failure>,
}

/// What a container list shows of a container, cheap enough to take for every
/// container on every frame.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveSummary {
    pub id: String,
    pub engine: Option<Engine>,
    pub start_ns: u64,
    pub last_ns: u64,
    pub phase: Option<Phase>,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub already_running: bool,
    pub ending: bool,
    /// Its start failed.
    pub failed: bool,
}

fn phase_now(c: &Container) -> Option<Phase> {
    current_phase(&c.milestones, c.last_ns.max(latest_milestone(c)))
}

/// Milestones can be a little later than the last recorded event (an exec's
/// milestone is marked before its own event is recorded).
fn latest_milestone(c: &Container) -> u64 {
    c.milestones
        .starts
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(0)
}

impl Builder {
    /// The containers whose life is not over yet, oldest first.
    pub fn live_summaries(&self) -> Vec<LiveSummary> {
        let mut out: Vec<LiveSummary> = self
            .containers
            .iter()
            .map(|(id, c)| LiveSummary {
                id: id.clone(),
                engine: engine::engine_of(id, &c.chain),
                start_ns: c.first_ns,
                last_ns: c.last_ns,
                phase: phase_now(c),
                exit_code: c.exit_code,
                signal: c.signal.clone(),
                already_running: c.already_running,
                ending: c.ending,
                failed: c.failure.is_some(),
            })
            .collect();
        out.sort_by(|a, b| a.start_ns.cmp(&b.start_ns).then(a.id.cmp(&b.id)));
        out
    }

    /// One container in progress, with its phases and chain so far.
    pub fn live_container(&self, id: &str) -> Option<LiveContainer> {
        let c = self.containers.get(id)?;
        let mut milestones = c.milestones.clone();
        // As `render_container` does: the request starts at the client's exec.
        if let Some(cli) = c.chain.iter().find(|l| l.role == Role::Client) {
            milestones.mark(Phase::Request, cli.start_ns);
        }
        let end = c.last_ns.max(latest_milestone(c));
        let mut chain = c.chain.clone();
        chain.sort_by_key(|l| l.start_ns);
        Some(LiveContainer {
            id: id.to_string(),
            engine: engine::engine_of(id, &chain),
            runtime: engine::runtime_of(&chain),
            start_ns: c.first_ns,
            last_ns: end,
            phase: current_phase(&milestones, end),
            phases: milestones.spans(end),
            chain,
            exit_code: c.exit_code,
            signal: c.signal.clone(),
            events: c.events,
            already_running: c.already_running,
            ending: c.ending,
            failure: c.failure.clone().map(|f| {
                Failure {
                    messages: c.messages.clone(),
                    ..f
                }
                .summarised()
            }),
        })
    }

    /// The container an event is about, as the builder attributes it now: the
    /// container of the process that made it, or the one its path names.
    /// Asked before and after [`Builder::push`]: an exit forgets its process,
    /// an exec may name a container.
    pub fn container_of(&self, e: &Event) -> Option<Rc<str>> {
        let task = e.task.as_ref()?;
        if let Some(p) = self.procs.get(&task.tgid)
            && let Some(id) = &p.container
        {
            return Some(id.clone());
        }
        match &e.body {
            Body::Fork { .. } | Body::Exec { .. } | Body::Exit { .. } | Body::Lost { .. } => None,
            body => self.container_by_path(body).map(Into::into),
        }
    }

    /// Drops the steps kept for the containers in progress. A view that keeps
    /// events itself (the TUI) calls it as it goes, so that the builder's
    /// memory follows containers and processes, not events; the timelines
    /// handed out afterwards have only the steps recorded since.
    pub fn forget_steps(&mut self) {
        for c in self.containers.values_mut() {
            c.steps = Vec::new();
        }
    }

    /// The shared daemons' processes (dockerd, containerd) known now: every
    /// container's chain starts with them, though none is attributed to one.
    pub fn daemon_pids(&self) -> Vec<(Role, u32)> {
        let mut out: Vec<(Role, u32)> = self
            .procs
            .values()
            .filter(|p| matches!(p.role, Role::Dockerd | Role::Containerd))
            .map(|p| (p.role, p.tgid))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::reader::for_each_event;

    const DOCKER_RUN: &str = include_str!("../../../tests/fixtures/docker-run-rm-true.jsonl");

    #[test]
    fn a_container_is_listed_from_its_runtime_start_with_its_phase_so_far() {
        let mut b = Builder::new();
        let mut seen = Vec::new();
        for_each_event(DOCKER_RUN.as_bytes(), |e| {
            b.push(e);
            for s in b.live_summaries() {
                if seen.last() != Some(&s.phase) {
                    seen.push(s.phase);
                }
            }
        })
        .unwrap();
        // Listed while it starts, and it went through the phases in order.
        assert!(seen.contains(&Some(Phase::Create)), "{seen:?}");
        assert!(seen.contains(&Some(Phase::Running)), "{seen:?}");
        assert!(seen.contains(&Some(Phase::Stopped)), "{seen:?}");
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(seen, sorted, "phases only move forward");
    }

    #[test]
    fn the_live_view_agrees_with_the_finished_timeline() {
        let mut b = Builder::new();
        for_each_event(DOCKER_RUN.as_bytes(), |e| b.push(e)).unwrap();
        let id = b.live_summaries()[0].id.clone();
        let live = b.live_container(&id).unwrap();
        // Forgetting the steps changes nothing else.
        b.forget_steps();
        let done = b.finish().remove(0);
        assert!(done.steps.is_empty());
        assert!(done.complete);
        assert_eq!(live.exit_code, Some(0));
        let phases = |s: &[PhaseSpan]| s.iter().map(|p| p.phase).collect::<Vec<_>>();
        assert_eq!(phases(&live.phases), phases(&done.phases));
        assert_eq!(live.chain.len(), done.chain.len());
    }
}
