//! Where the time went: a container's critical path, from a recording made
//! with `--sched` (the probe's context switches and wake-ups of followed
//! tasks).
//!
//! Every followed thread's life is cut into intervals: **running** on a CPU,
//! **runnable** (switched out while it could run, or woken and waiting for a
//! CPU), **blocked** (asleep, in the syscall its registers name). The
//! critical path is walked backwards from the moment that matters (the
//! entrypoint's exec; a failed start's failing exit; the last event of a
//! teardown) to where it began (the client's exec): running and runnable
//! time is the thread's own; a blocked interval ended by a followed thread's
//! wake-up continues in the waker, from the moment it woke it (the docker
//! CLI waiting on dockerd, dockerd on containerd, the shim on runc, runc on
//! its init). A sleep (`nanosleep`) is the sleeper's own: a timer, not
//! whoever the interrupt found running, woke it. Whatever the recording
//! cannot say (a thread not followed, a gap before its first switch) is
//! `unknown`. The segments cover the interval exactly, with no gap.

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use super::{ContainerTimeline, Phase, Role, role};
use crate::event::{Body, Event};

/// How a thread spent a stretch of time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Running,
    Runnable,
    Blocked,
    /// The recording does not say (a thread not followed, or before its
    /// first context switch).
    Unknown,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Running => "running",
            State::Runnable => "runnable",
            State::Blocked => "blocked",
            State::Unknown => "unknown",
        }
    }
}

/// One stretch of a critical path: a process, what it was doing, for how long.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub role: Role,
    pub pid: u32,
    pub tid: u32,
    pub comm: String,
    pub state: State,
    /// In words: `on a CPU`, `waiting for a CPU`, `in clock_nanosleep`…
    pub cause: String,
    /// From the container's first event.
    pub start_ms: f64,
    pub dur_ms: f64,
}

/// Where a container's time went (`timeline --why`, docs/timeline.md).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Why {
    /// From the client's exec (or the container's first event) to the
    /// entrypoint's exec; to the failing process's end when the start failed.
    pub start_latency_ms: f64,
    /// From the entrypoint's exit to the container's last event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teardown_ms: Option<f64>,
    /// The start's path, in time order; its durations add up to
    /// `start_latency_ms`.
    pub critical_path: Vec<Segment>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teardown_path: Vec<Segment>,
    /// The start's path by role (`dockerd`, `runtime init`…), ms.
    pub by_role: BTreeMap<String, f64>,
    /// The start's path by state and cause (`blocked in futex`…), ms.
    pub by_cause: BTreeMap<String, f64>,
    /// Time on a CPU during the start, every thread of each role's
    /// processes counted (not only the path's), ms.
    pub on_cpu_ms: BTreeMap<String, f64>,
    /// The same runs, those that began and ended in a context switch, as
    /// measured from the switches and as the kernel counted them
    /// (`sum_exec_runtime` at each end): the two agree when no switch was
    /// missed or misread.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub on_cpu_vs_kernel: BTreeMap<String, OnCpu>,
}

/// A role's runs, measured two ways (ms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OnCpu {
    pub measured_ms: f64,
    pub kernel_ms: f64,
    /// Of the measured time, what interrupts and the hypervisor took from
    /// those CPUs meanwhile (the kernel counts it to no task): measured ≈
    /// kernel + this.
    #[serde(default)]
    pub irq_steal_ms: f64,
    /// How many runs were counted: the kernel starts a task's clock when it
    /// picks it, a few microseconds before the switch is seen, so each run
    /// adds a little to `kernel_ms` that the switches do not show.
    #[serde(default)]
    pub runs: u64,
}

#[derive(Clone, Debug)]
struct Interval {
    start: u64,
    end: u64,
    state: State,
    syscall: Option<String>,
    /// The thread (tid) whose wake-up ended this blocked interval.
    waker: Option<u32>,
    /// A run's length as the kernel counted it, when both its switches
    /// said (ns), and the CPU's interrupt and steal time meanwhile.
    kernel_ns: Option<u64>,
    irq_steal_ns: u64,
}

#[derive(Debug, Default)]
struct Thread {
    tgid: u32,
    intervals: Vec<Interval>,
    /// Since when, and how: the interval still open.
    open: Option<(u64, State, Option<String>)>,
    /// A wake-up while blocked: when, by which thread.
    woken: Option<(u64, u32)>,
    /// When it was made, and by which thread: before that, its path is
    /// its maker's (a new task is runnable without a wake-up).
    made: Option<(u64, u32)>,
    /// The kernel's count of its CPU time when its current run began, the
    /// CPU's interrupt and steal time then, and which CPU.
    cpu_at_run: Option<(u64, Option<u64>, u32)>,
    /// When its exit was reported: it goes on running its exit (closing its
    /// files, leaving its namespaces and cgroups, waking its parent last)
    /// until a last switch that is not reported.
    exited: Option<u64>,
    /// When it first reported something itself, before any switch of it was
    /// seen (a client executed by a process not followed): it was on a CPU
    /// then, and until its first switch. Not an interval: the kernel's count
    /// of that run is not known, and the runs are checked against it.
    first_own: Option<u64>,
}

impl Thread {
    fn close(&mut self, t: u64) {
        let Some((start, state, syscall)) = self.open.take() else {
            return;
        };
        let woken = self.woken.take();
        match (state, woken) {
            (State::Blocked, Some((at, waker))) if at >= start && at <= t => {
                self.intervals.push(Interval {
                    start,
                    end: at,
                    state: State::Blocked,
                    syscall,
                    waker: Some(waker),
                    kernel_ns: None,
                    irq_steal_ns: 0,
                });
                self.intervals.push(Interval {
                    start: at,
                    end: t,
                    state: State::Runnable,
                    syscall: None,
                    waker: None,
                    kernel_ns: None,
                    irq_steal_ns: 0,
                });
            }
            _ => self.intervals.push(Interval {
                start,
                end: t,
                state,
                syscall,
                waker: None,
                kernel_ns: None,
                irq_steal_ns: 0,
            }),
        }
    }
}

/// The scheduler as a recording saw it: fed every event, in order.
#[derive(Debug, Default)]
pub struct Sched {
    threads: FxHashMap<u32, Thread>,
    /// Command names by tgid, from the events' headers.
    comms: FxHashMap<u32, String>,
    /// Parents by tgid, from the events' headers.
    parents: FxHashMap<u32, u32>,
    /// Processes the probe followed: those with events of their own, and
    /// those woken (the probe reports only followed tasks' wake-ups). A
    /// switch names a task that is not followed when the other one is: its
    /// intervals there are fragments, never part of a path.
    followed: FxHashSet<u32>,
    /// Switch and wake-up records seen.
    pub records: u64,
    /// The first event's time: a process started before it was not made
    /// under our eyes.
    first_ns: Option<u64>,
    /// Intervals that ended before this were forgotten ([`Sched::forget_before`]).
    kept_from: Option<u64>,
}

/// Calls that only a timer ends: their sleeper's own time.
fn is_sleep(syscall: Option<&str>) -> bool {
    matches!(syscall, Some("nanosleep" | "clock_nanosleep"))
}

const NS_PER_MS: f64 = 1e6;

impl Sched {
    pub fn push(&mut self, e: &Event) {
        let t = e.ktime_ns;
        let first = *self.first_ns.get_or_insert(t);
        match &e.body {
            Body::SchedSwitch {
                cpu,
                task_tgid,
                task_tid,
                state,
                syscall,
                next_tgid,
                next_tid,
                task_cpu_ns,
                next_cpu_ns,
                irq_steal_ns,
            } => {
                self.records += 1;
                let prev = self.threads.entry(*task_tid).or_default();
                prev.tgid = *task_tgid;
                let was_running = matches!(prev.open, Some((_, State::Running, _)));
                prev.close(t);
                // The run ending here, as the kernel counted it.
                // A run begins and ends on one CPU: two CPUs mean the
                // recording missed a switch in between, and the counts of
                // two CPUs are not to be subtracted.
                if let (true, Some((from, lost_from, _)), Some(to), Some(run)) = (
                    was_running,
                    prev.cpu_at_run.take().filter(|at| at.2 == *cpu),
                    *task_cpu_ns,
                    prev.intervals.last_mut(),
                ) {
                    run.kernel_ns = to.checked_sub(from);
                    if let (Some(a), Some(b)) = (lost_from, *irq_steal_ns) {
                        run.irq_steal_ns = b.saturating_sub(a);
                    }
                }
                let off = if state == "R" {
                    State::Runnable
                } else {
                    State::Blocked
                };
                prev.open = Some((t, off, syscall.clone()));
                let next = self.threads.entry(*next_tid).or_default();
                next.tgid = *next_tgid;
                next.close(t);
                next.open = Some((t, State::Running, None));
                next.cpu_at_run = next_cpu_ns.map(|ns| (ns, *irq_steal_ns, *cpu));
            }
            Body::SchedWakeup {
                task_tgid,
                task_tid,
                waker_tid,
                ..
            } => {
                self.records += 1;
                self.followed.insert(*task_tgid);
                let th = self.threads.entry(*task_tid).or_default();
                th.tgid = *task_tgid;
                match th.open {
                    Some((_, State::Blocked, _)) if th.woken.is_none() => {
                        th.woken = Some((t, *waker_tid));
                    }
                    // First seen woken: asleep since before the recording
                    // (an engine's idle thread), it was the waker's to wait for.
                    None => {
                        th.open = Some((first, State::Blocked, None));
                        th.woken = Some((t, *waker_tid));
                    }
                    _ => {}
                }
            }
            Body::Fork {
                child_tgid,
                child_tid,
                ..
            } => {
                if let Some(task) = &e.task {
                    // A followed process's children are followed.
                    self.followed.insert(task.tgid);
                    self.followed.insert(*child_tgid);
                    let child = self.threads.entry(*child_tid).or_default();
                    child.tgid = *child_tgid;
                    if child.open.is_none() && child.intervals.is_empty() {
                        child.open = Some((t, State::Runnable, None));
                        child.made = Some((t, task.tid));
                    }
                }
            }
            _ => {
                if let Some(task) = &e.task {
                    self.followed.insert(task.tgid);
                    self.parents.insert(task.tgid, task.ptgid);
                    // A process made while we watched, whose fork was not
                    // reported (its parent is not followed: `inspector run`
                    // itself): its header says when, and by whom.
                    let leader = self.threads.entry(task.tgid).or_default();
                    leader.tgid = task.tgid;
                    if leader.made.is_none() && task.start_ns >= first && task.ptgid != 0 {
                        leader.made = Some((task.start_ns, task.ptgid));
                    }
                    self.comms
                        .entry(task.tgid)
                        .or_insert_with(|| task.comm.to_string());
                    if let Body::Exec { ret: 0, .. } = e.body {
                        self.comms.insert(task.tgid, task.comm.to_string());
                    }
                    // The task reported this itself: it was on a CPU at `t`.
                    let th = self.threads.entry(task.tid).or_default();
                    th.tgid = task.tgid;
                    if th.open.is_none() && th.intervals.is_empty() && th.first_own.is_none() {
                        th.first_own = Some(t);
                    }
                    // A process's last switch is not reported (it is no
                    // longer followed by then): its exit ends its last run.
                    if let Body::Exit { .. } = e.body {
                        th.close(t);
                        th.exited = Some(t);
                    }
                }
            }
        }
    }

    /// Closes every open interval at `end` (the end of the recording).
    pub fn finish(&mut self, end: u64) {
        for th in self.threads.values_mut() {
            th.close(end);
        }
    }

    /// Forgets the intervals that ended before `t`, and the threads that
    /// left nothing after it: a view that stays open (the TUI) keeps what it
    /// can still explain, not every switch since it began. A path that
    /// reaches back before `t` finds it `not seen`.
    pub fn forget_before(&mut self, t: u64) {
        self.threads.retain(|_, th| {
            // Closed intervals are in time order, their ends too.
            let gone = th.intervals.partition_point(|iv| iv.end < t);
            th.intervals.drain(..gone);
            !th.intervals.is_empty()
                || th.open.is_some()
                || th.made.is_some_and(|(made, _)| made >= t)
        });
        self.kept_from = Some(self.kept_from.map_or(t, |k| k.max(t)));
    }

    /// Since when the intervals are all kept, once some were forgotten.
    pub fn kept_from(&self) -> Option<u64> {
        self.kept_from
    }

    /// Whether the recording has scheduler records of `t`'s processes (it
    /// was made with `--sched`): without them nothing is explained.
    pub fn covers(&self, t: &ContainerTimeline) -> bool {
        let ours = |pid: u32| t.chain.iter().any(|l| l.pid == pid);
        self.records > 0 && self.threads.values().any(|th| ours(th.tgid))
    }

    /// The interval of thread `tid` holding the instant just before `t`;
    /// the one still open (the recording goes on) reaches to `t`. `None`
    /// for a thread of a process not followed.
    fn at(&self, tid: u32, t: u64) -> Option<Interval> {
        let th = self.threads.get(&tid)?;
        if !self.followed.contains(&th.tgid) {
            return None;
        }
        if let Some((start, state, syscall)) = &th.open
            && *start < t
        {
            let mut iv = Interval {
                start: *start,
                end: t,
                state: *state,
                syscall: syscall.clone(),
                waker: None,
                kernel_ns: None,
                irq_steal_ns: 0,
            };
            // Woken and not yet on a CPU: runnable since the wake-up.
            if let (State::Blocked, Some((at, waker))) = (state, th.woken) {
                if at < t && at >= *start {
                    iv.start = at;
                    iv.state = State::Runnable;
                    iv.syscall = None;
                } else if at == t {
                    iv.waker = Some(waker);
                }
            }
            return Some(iv);
        }
        let i = th.intervals.partition_point(|iv| iv.start < t);
        th.intervals.get(i.checked_sub(1)?).cloned()
    }

    /// The critical path ending in thread `tid` at `end`, back to `start`:
    /// (tid, state, cause, from, to), in time order.
    /// A wake-up by a thread `may_enter` refuses (another container's
    /// process, which woke this one for its own sake through an engine
    /// thread shared by both) is not followed: the wait stays the
    /// waiter's.
    fn path(
        &self,
        mut tid: u32,
        end: u64,
        start: u64,
        may_enter: &dyn Fn(u32) -> bool,
    ) -> Vec<(u32, State, String, u64, u64)> {
        let mut out: Vec<(u32, State, String, u64, u64)> = Vec::new();
        let mut t = end;
        // Each turn moves `t` back or moves to a waker running at `t`.
        let mut turns = 0;
        while t > start && turns < 1_000_000 {
            turns += 1;
            let Some(iv) = self.at(tid, t) else {
                // Before its first switch, back to its first own event.
                if let Some(own) = self.threads.get(&tid).and_then(|th| th.first_own)
                    && own < t
                    && self.followed.contains(&self.threads[&tid].tgid)
                {
                    let from = own.max(start);
                    out.push((tid, State::Running, "on a CPU".into(), from, t));
                    t = from;
                    continue;
                }
                // Back at its making: it waited for its first CPU since, and
                // before, the path is its maker's.
                if let Some((made, maker)) = self.threads.get(&tid).and_then(|th| th.made)
                    && made <= t
                    && maker != tid
                    && self
                        .threads
                        .get(&tid)
                        .is_some_and(|th| self.followed.contains(&th.tgid))
                {
                    let from = made.max(start);
                    if from < t {
                        out.push((tid, State::Runnable, "waiting for a CPU".into(), from, t));
                    }
                    tid = maker;
                    t = from;
                    continue;
                }
                out.push((tid, State::Unknown, "not seen".into(), start, t));
                break;
            };
            if iv.end < t {
                let from = iv.end.max(start);
                let exited = self.threads.get(&tid).and_then(|th| th.exited);
                if exited == Some(iv.end) {
                    // Reached through the wake-up its exit gave its parent:
                    // it was running its exit until then.
                    out.push((tid, State::Running, "exiting".into(), from, t));
                } else {
                    // Between two intervals the recording says nothing.
                    out.push((tid, State::Unknown, "not seen".into(), from, t));
                }
                t = from;
                continue;
            }
            let from = iv.start.max(start);
            match iv.state {
                State::Blocked => {
                    let waker = iv.waker.filter(|&w| {
                        w != tid
                            && may_enter(w)
                            && iv.end == t
                            && !is_sleep(iv.syscall.as_deref())
                            && self
                                .at(w, t)
                                .is_some_and(|w| w.state == State::Running && w.start < t)
                    });
                    match waker {
                        Some(w) => tid = w,
                        None => {
                            let cause = match &iv.syscall {
                                Some(call) => format!("in {call}"),
                                None => "asleep".to_string(),
                            };
                            out.push((tid, State::Blocked, cause, from, t));
                            t = from;
                        }
                    }
                }
                State::Running => {
                    out.push((tid, State::Running, "on a CPU".into(), from, t));
                    t = from;
                }
                State::Runnable => {
                    out.push((tid, State::Runnable, "waiting for a CPU".into(), from, t));
                    t = from;
                }
                State::Unknown => {
                    out.push((tid, State::Unknown, "not seen".into(), from, t));
                    t = from;
                }
            }
        }
        out.reverse();
        // Neighbours of one thread in one state and cause are one stretch.
        let mut merged: Vec<(u32, State, String, u64, u64)> = Vec::new();
        for seg in out {
            match merged.last_mut() {
                Some(last) if last.0 == seg.0 && last.1 == seg.1 && last.2 == seg.2 => {
                    last.4 = seg.4
                }
                _ => merged.push(seg),
            }
        }
        merged
    }

    /// The role of a process outside the container's chain: the engine's
    /// (dockerd, containerd), by its command or its parent's (dockerd's
    /// own helpers, `/proc/self/exe set-ipv6…`, work for the container).
    fn engine_role(&self, pid: u32, comm: &str) -> Role {
        let mut role = role::role_of_comm(comm);
        let mut up = pid;
        for _ in 0..4 {
            if role != Role::Other {
                break;
            }
            let Some(&parent) = self.parents.get(&up) else {
                break;
            };
            up = parent;
            role = self
                .comms
                .get(&up)
                .map_or(Role::Other, |c| role::role_of_comm(c));
        }
        role
    }

    /// Where `t`'s time went; `None` when the recording has no scheduler
    /// records of its processes (made without `--sched`, see
    /// [`Sched::covers`]), or its start is not over.
    pub fn explain(&self, t: &ContainerTimeline) -> Option<Why> {
        self.explain_ending(t, t.steps.last().map(|s| (s.tid, s.ktime_ns)))
    }

    /// [`Sched::explain`], the container's last step given as (tid, time):
    /// a view that keeps no steps of its own (the TUI) says which it was.
    /// The teardown's path ends there.
    pub fn explain_ending(&self, t: &ContainerTimeline, last: Option<(u32, u64)>) -> Option<Why> {
        if !self.covers(t) {
            return None;
        }
        let phase = |p: Phase| t.phases.iter().find(|s| s.phase == p);
        let origin = t.start_ns;
        // The start ends at the entrypoint's exec, or where it failed.
        let (end_tid, end) = match (phase(Phase::Running), &t.failure) {
            (Some(running), _) => {
                let entry = t.chain.iter().find(|l| l.role == Role::Entrypoint)?;
                (entry.pid, running.start_ns)
            }
            (None, Some(f)) => {
                let link = t.chain.iter().find(|l| l.pid == f.pid)?;
                (f.pid, link.exit_ns.unwrap_or(t.end_ns))
            }
            _ => return None,
        };
        // A process can take two parts (runc's init becomes the
        // entrypoint): the one it had at the time.
        let role_at = |pid: u32, at: u64| -> Option<(Role, String)> {
            let mut links = t.chain.iter().filter(|l| l.pid == pid);
            let first = links.next()?;
            let mut best = first;
            for l in t.chain.iter().filter(|l| l.pid == pid) {
                if l.start_ns <= at {
                    best = l;
                }
            }
            // Runc's init is the entrypoint's link from its fork: until
            // its exec it was the runtime's init.
            let running = phase(Phase::Running).map_or(u64::MAX, |p| p.start_ns);
            let role = match best.role {
                Role::Entrypoint if at < running => Role::RuntimeInit,
                role => role,
            };
            Some((role, best.comm.clone()))
        };
        let segments = |path: Vec<(u32, State, String, u64, u64)>| -> Vec<Segment> {
            path.into_iter()
                .map(|(tid, state, cause, from, to)| {
                    let pid = self.threads.get(&tid).map_or(tid, |th| th.tgid);
                    let ours = role_at(pid, from);
                    let comm = ours
                        .as_ref()
                        .map(|(_, c)| c.clone())
                        .or_else(|| self.comms.get(&pid).cloned())
                        .unwrap_or_default();
                    let role = ours
                        .map(|(r, _)| r)
                        .unwrap_or_else(|| self.engine_role(pid, &comm));
                    Segment {
                        role,
                        pid,
                        tid,
                        comm,
                        state,
                        cause,
                        start_ms: from.saturating_sub(origin) as f64 / NS_PER_MS,
                        dur_ms: to.saturating_sub(from) as f64 / NS_PER_MS,
                    }
                })
                .collect()
        };
        // The path enters the container's own processes and the engine's
        // (dockerd, containerd, their helpers, any process of no known
        // role), never another container's: under concurrent starts the
        // engine's threads wake for every container, and following one
        // such wake-up would lead into another container's chain.
        let may_enter = |tid: u32| {
            let pid = self.threads.get(&tid).map_or(tid, |th| th.tgid);
            t.chain.iter().any(|l| l.pid == pid)
                || matches!(
                    self.engine_role(pid, self.comms.get(&pid).map_or("", |c| c.as_str())),
                    Role::Dockerd | Role::Containerd | Role::Other
                )
        };
        let critical_path = segments(self.path(end_tid, end, origin, &may_enter));
        let mut why = Why {
            start_latency_ms: end.saturating_sub(origin) as f64 / NS_PER_MS,
            ..Why::default()
        };
        for s in &critical_path {
            *why.by_role.entry(s.role.name().to_string()).or_default() += s.dur_ms;
            let cause = format!("{} {}", s.state.name(), s.cause);
            *why.by_cause.entry(cause).or_default() += s.dur_ms;
        }
        // The engine's processes the path ran through count too, by the
        // role the path gave them (all their threads: what dockerd did for
        // other containers meanwhile is in it).
        let ours = |pid: u32| t.chain.iter().any(|l| l.pid == pid);
        let engine: FxHashMap<u32, Role> = critical_path
            .iter()
            .filter(|s| !ours(s.pid) && s.role != Role::Other)
            .map(|s| (s.pid, s.role))
            .collect();
        for th in self.threads.values() {
            // Only the start's runs of the chain's and the engine's threads:
            // a long recording has many containers, each explained.
            if !ours(th.tgid) && !engine.contains_key(&th.tgid) {
                continue;
            }
            let first = th.intervals.partition_point(|iv| iv.end <= origin);
            for iv in th.intervals[first..]
                .iter()
                .take_while(|iv| iv.start < end)
                .filter(|iv| iv.state == State::Running)
            {
                let on = iv.end.min(end).saturating_sub(iv.start.max(origin));
                if on == 0 {
                    continue;
                }
                let Some(role) = role_at(th.tgid, iv.start.max(origin))
                    .map(|(role, _)| role)
                    .or_else(|| engine.get(&th.tgid).copied())
                else {
                    continue;
                };
                *why.on_cpu_ms.entry(role.name().to_string()).or_default() += on as f64 / NS_PER_MS;
                if let Some(kernel) = iv.kernel_ns {
                    let whole = iv.end.saturating_sub(iv.start).max(1);
                    let check = why
                        .on_cpu_vs_kernel
                        .entry(role.name().to_string())
                        .or_default();
                    check.measured_ms += on as f64 / NS_PER_MS;
                    check.runs += 1;
                    // A run cut by the window counts its share.
                    let share = on as f64 / whole as f64 / NS_PER_MS;
                    check.kernel_ms += kernel as f64 * share;
                    check.irq_steal_ms += iv.irq_steal_ns as f64 * share;
                }
            }
        }
        why.critical_path = critical_path;
        // The teardown: from the entrypoint's exit to the last event, in
        // whoever made that event.
        if let (Some(stopped), Some((last_tid, last_ns))) = (phase(Phase::Stopped), last)
            && last_ns > stopped.start_ns
        {
            why.teardown_ms = Some(t.end_ns.saturating_sub(stopped.start_ns) as f64 / NS_PER_MS);
            why.teardown_path =
                segments(self.path(last_tid, last_ns, stopped.start_ns, &may_enter));
        }
        Some(why)
    }
}

/// The causes that took most of a path, largest first: (role, pid, comm,
/// state and cause, ms), one entry per process and cause.
pub fn top_causes(path: &[Segment], n: usize) -> Vec<(Role, u32, String, String, f64)> {
    let mut sums: FxHashMap<(u32, State, &str), (Role, &str, f64)> = FxHashMap::default();
    for s in path {
        let e = sums.entry((s.pid, s.state, s.cause.as_str())).or_insert((
            s.role,
            s.comm.as_str(),
            0.0,
        ));
        e.2 += s.dur_ms;
    }
    let mut out: Vec<_> = sums
        .into_iter()
        .map(|((pid, state, cause), (role, comm, ms))| {
            (
                role,
                pid,
                comm.to_string(),
                format!("{} {cause}", state.name()),
                ms,
            )
        })
        .collect();
    out.sort_by(|a, b| b.4.total_cmp(&a.4).then(a.1.cmp(&b.1)));
    out.truncate(n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Event;

    fn switch(
        t: u64,
        prev: (u32, u32),
        state: &str,
        syscall: Option<&str>,
        next: (u32, u32),
    ) -> Event {
        Event {
            v: 1,
            ktime_ns: t,
            time: String::new(),
            task: None,
            body: Body::SchedSwitch {
                cpu: 0,
                task_tgid: prev.0,
                task_tid: prev.1,
                state: state.to_string(),
                syscall: syscall.map(String::from),
                next_tgid: next.0,
                next_tid: next.1,
                task_cpu_ns: None,
                next_cpu_ns: None,
                irq_steal_ns: None,
            },
        }
    }

    fn wakeup(t: u64, task: (u32, u32), waker: (u32, u32)) -> Event {
        Event {
            v: 1,
            ktime_ns: t,
            time: String::new(),
            task: None,
            body: Body::SchedWakeup {
                cpu: 0,
                task_tgid: task.0,
                task_tid: task.1,
                waker_tgid: waker.0,
                waker_tid: waker.1,
            },
        }
    }

    const MS: u64 = 1_000_000;

    /// A path as (tid, state, from, to) in whole ms.
    fn in_ms(path: &[(u32, State, String, u64, u64)]) -> Vec<(u32, State, u64, u64)> {
        path.iter()
            .map(|(tid, st, _, a, b)| (*tid, *st, a / MS, b / MS))
            .collect()
    }

    /// A (pid 10) runs 1 ms, waits on B (pid 20) in wait4; B runs 5 ms,
    /// sleeps 200 ms in clock_nanosleep (a timer wakes it: the idle task),
    /// runs 1 ms and wakes A, which waits 2 ms for a CPU and runs 1 ms.
    fn sched() -> Sched {
        let a = (10, 10);
        let b = (20, 20);
        let idle = (0, 0);
        let mut s = Sched::default();
        for e in [
            switch(0, b, "S", Some("read"), a),
            wakeup(MS, b, a),
            switch(MS, a, "S", Some("wait4"), b),
            switch(6 * MS, b, "S", Some("clock_nanosleep"), idle),
            wakeup(206 * MS, b, idle),
            switch(206 * MS, idle, "R", None, b),
            wakeup(207 * MS, a, b),
            switch(209 * MS, b, "Z", None, a),
            switch(210 * MS, a, "R", None, idle),
        ] {
            s.push(&e);
        }
        s.finish(210 * MS);
        s
    }

    #[test]
    fn a_wait_continues_in_the_waker_and_a_sleep_is_the_sleepers_own() {
        let s = sched();
        let path = s.path(10, 210 * MS, 0, &|_| true);
        let got: Vec<(u32, State, &str, u64, u64)> = path
            .iter()
            .map(|(tid, st, c, a, b)| (*tid, *st, c.as_str(), a / MS, b / MS))
            .collect();
        assert_eq!(
            got,
            [
                (10, State::Running, "on a CPU", 0, 1),
                (20, State::Running, "on a CPU", 1, 6),
                (20, State::Blocked, "in clock_nanosleep", 6, 206),
                (20, State::Running, "on a CPU", 206, 207),
                (10, State::Runnable, "waiting for a CPU", 207, 209),
                (10, State::Running, "on a CPU", 209, 210),
            ]
        );
        let total: u64 = path.iter().map(|p| p.4 - p.3).sum();
        assert_eq!(total, 210 * MS, "the path covers the interval, no gap");
    }

    #[test]
    fn a_wake_up_by_a_process_the_path_may_not_enter_stays_a_wait() {
        // B is another container's: A's wait in wait4 is A's own.
        let path = sched().path(10, 210 * MS, 0, &|tid| tid != 20);
        let got: Vec<(u32, State, &str, u64, u64)> = path
            .iter()
            .map(|(tid, st, c, a, b)| (*tid, *st, c.as_str(), a / MS, b / MS))
            .collect();
        assert_eq!(
            got,
            [
                (10, State::Running, "on a CPU", 0, 1),
                (10, State::Blocked, "in wait4", 1, 207),
                (10, State::Runnable, "waiting for a CPU", 207, 209),
                (10, State::Running, "on a CPU", 209, 210),
            ]
        );
    }

    #[test]
    fn a_new_process_s_path_goes_on_in_its_maker() {
        let mut s = sched();
        // B forks C at 3 ms; C runs 4–5 ms (on B's CPU time: one CPU is
        // not what matters here, the order of the path is).
        s.push(&own(
            3 * MS,
            20,
            1,
            Body::Fork {
                child_tgid: 30,
                child_tid: 30,
                child_start_ns: 3 * MS,
                thread: false,
                flags: None,
                flags_raw: None,
            },
        ));
        s.push(&switch(4 * MS, (0, 0), "R", None, (30, 30)));
        s.push(&switch(5 * MS, (30, 30), "Z", None, (0, 0)));
        let path = s.path(30, 5 * MS, 0, &|_| true);
        assert_eq!(
            in_ms(&path),
            [
                (10, State::Running, 0, 1),
                (20, State::Running, 1, 3),
                (30, State::Runnable, 3, 4),
                (30, State::Running, 4, 5),
            ]
        );
    }

    /// An event that task `tid` (a process of its own) reported itself.
    fn own(t: u64, tid: u32, ptgid: u32, body: Body) -> Event {
        Event {
            v: 1,
            ktime_ns: t,
            time: String::new(),
            task: Some(crate::event::Task {
                tgid: tid,
                tid,
                ptgid,
                nspid: tid,
                comm: "c".into(),
                start_ns: 0,
                cgroup_id: 0,
                pidns: 0,
                mntns: 0,
            }),
            body,
        }
    }

    #[test]
    fn a_task_runs_from_its_own_event_and_through_its_exit() {
        let exec = Body::Exec {
            filename: "/usr/bin/c".into(),
            argv: vec!["c".into()],
            argv_truncated: false,
            old_tid: None,
            ret: 0,
            errno: None,
        };
        let exit = Body::Exit {
            exit_code: Some(0),
            signal: None,
            core_dumped: false,
            status: 0,
        };
        let mut s = Sched::default();
        // C (30), executed by a process not followed, runs from its exec at
        // 1 ms to its first switch at 9 ms; its parent P (40) waits in
        // wait4 from 9 ms; C exits at 12 ms and wakes P at 15 ms.
        s.push(&switch(0, (40, 40), "S", Some("wait4"), (0, 0)));
        s.push(&own(MS, 30, 40, exec));
        s.push(&switch(9 * MS, (30, 30), "R", None, (0, 0)));
        s.push(&switch(10 * MS, (0, 0), "R", None, (30, 30)));
        s.push(&own(12 * MS, 30, 40, exit));
        s.push(&wakeup(15 * MS, (40, 40), (30, 30)));
        s.push(&switch(15 * MS, (0, 0), "R", None, (40, 40)));
        s.finish(16 * MS);
        let path = s.path(30, 9 * MS, MS, &|_| true);
        assert_eq!(in_ms(&path), [(30, State::Running, 1, 9)]);
        let path = s.path(40, 16 * MS, 10 * MS, &|_| true);
        assert_eq!(
            in_ms(&path),
            [
                (30, State::Running, 10, 12),
                (30, State::Running, 12, 15),
                (40, State::Running, 15, 16),
            ]
        );
        assert_eq!(path[1].2, "exiting");
    }

    #[test]
    fn what_the_recording_does_not_cover_is_unknown() {
        let s = sched();
        // Thread 30 was never seen: the whole interval is unknown.
        let path = s.path(30, 10 * MS, 0, &|_| true);
        assert_eq!(path.len(), 1);
        assert_eq!(
            (path[0].1, path[0].3, path[0].4),
            (State::Unknown, 0, 10 * MS)
        );
        // Before A's first switch.
        let path = s.path(10, MS, 0, &|_| true);
        assert_eq!(path[0].1, State::Running);
        let path = Sched::default().path(10, MS, 0, &|_| true);
        assert_eq!(path[0].1, State::Unknown);
    }

    #[test]
    fn a_run_is_checked_against_the_kernel_s_count() {
        let mut s = Sched::default();
        let counted = |t, prev, next, prev_cpu, next_cpu| {
            let mut e = switch(t, prev, "S", Some("read"), next);
            if let Body::SchedSwitch {
                task_cpu_ns,
                next_cpu_ns,
                irq_steal_ns,
                ..
            } = &mut e.body
            {
                *task_cpu_ns = Some(prev_cpu);
                *next_cpu_ns = Some(next_cpu);
                // A tenth of the CPU's time goes to interrupts and steal.
                *irq_steal_ns = Some(t / 10);
            }
            e
        };
        // A runs 0–4 ms; the kernel counted 3.9 ms (an interrupt's share).
        s.push(&counted(0, (0, 0), (10, 10), 0, 7 * MS));
        s.push(&counted(4 * MS, (10, 10), (0, 0), 7 * MS + 3_900_000, 0));
        let th = &s.threads[&10];
        let run = th
            .intervals
            .iter()
            .find(|iv| iv.state == State::Running)
            .unwrap();
        assert_eq!(
            (run.end - run.start, run.kernel_ns),
            (4 * MS, Some(3_900_000))
        );
        assert_eq!(run.irq_steal_ns, 400_000);
        // A run the recording saw begin without the kernel's count: none.
        s.push(&switch(5 * MS, (0, 0), "R", None, (10, 10)));
        s.push(&counted(6 * MS, (10, 10), (0, 0), 9 * MS, 0));
        let last = s.threads[&10].intervals.last().unwrap().clone();
        assert_eq!((last.state, last.kernel_ns), (State::Running, None));
    }

    #[test]
    fn forgotten_intervals_read_as_not_seen() {
        let mut s = sched();
        // A's first run and B's go; B's sleep, ended later, stays.
        s.forget_before(100 * MS);
        assert_eq!(s.kept_from(), Some(100 * MS));
        let path = s.path(10, 210 * MS, 0, &|_| true);
        assert_eq!(
            in_ms(&path),
            [
                (20, State::Unknown, 0, 6),
                (20, State::Blocked, 6, 206),
                (20, State::Running, 206, 207),
                (10, State::Runnable, 207, 209),
                (10, State::Running, 209, 210),
            ]
        );
        // Forgetting again, earlier, keeps the later mark.
        s.forget_before(50 * MS);
        assert_eq!(s.kept_from(), Some(100 * MS));
    }

    /// A real `docker run --rm IMAGE true` recorded with `--sched`.
    const DOCKER_RUN_SCHED: &str =
        include_str!("../../tests/fixtures/docker-run-rm-true-sched.jsonl");

    #[test]
    fn a_recorded_docker_run_is_explained_through_its_chain_and_the_engine() {
        let mut builder = crate::timeline::Builder::new();
        let mut s = Sched::default();
        crate::timeline::reader::for_each_event(DOCKER_RUN_SCHED.as_bytes(), |e| {
            s.push(&e);
            builder.push(e);
        })
        .unwrap();
        let timelines = builder.finish();
        assert_eq!(timelines.len(), 1);
        let t = &timelines[0];
        let why = s.explain(t).expect("explained");
        let sum: f64 = why.critical_path.iter().map(|s| s.dur_ms).sum();
        assert!(
            (sum - why.start_latency_ms).abs() < 0.01,
            "{sum} vs {why:#?}"
        );
        let unknown: f64 = why
            .critical_path
            .iter()
            .filter(|s| s.state == State::Unknown)
            .map(|s| s.dur_ms)
            .sum();
        assert!(unknown <= 0.05 * why.start_latency_ms, "{why:#?}");
        for seg in &why.critical_path {
            let ours = t.chain.iter().any(|l| l.pid == seg.pid);
            assert!(
                ours || matches!(seg.role, Role::Dockerd | Role::Containerd),
                "{seg:#?}"
            );
        }
        // The client, the engine, the runtime and its init are all on it.
        for role in ["client", "dockerd", "runtime", "runtime init"] {
            assert!(why.by_role.contains_key(role), "{role}: {:?}", why.by_role);
        }
        // Runs measured from the switches, as the kernel counted them.
        let (measured, counted) = why.on_cpu_vs_kernel.values().fold((0.0, 0.0), |acc, c| {
            (acc.0 + c.measured_ms, acc.1 + c.kernel_ms + c.irq_steal_ms)
        });
        assert!(measured > 100.0, "{:?}", why.on_cpu_vs_kernel);
        assert!(
            (counted - measured).abs() <= 0.05 * measured,
            "{measured} ms measured, {counted} ms counted"
        );
        assert!(why.teardown_ms.is_some() && !why.teardown_path.is_empty());
    }

    #[test]
    fn top_causes_sum_per_process_and_cause() {
        let seg = |pid, state, cause: &str, ms| Segment {
            role: Role::Hook,
            pid,
            tid: pid,
            comm: "sleep".into(),
            state,
            cause: cause.into(),
            start_ms: 0.0,
            dur_ms: ms,
        };
        let top = top_causes(
            &[
                seg(1, State::Running, "on a CPU", 1.0),
                seg(2, State::Blocked, "in clock_nanosleep", 200.0),
                seg(1, State::Running, "on a CPU", 2.0),
            ],
            5,
        );
        assert_eq!(top[0].4, 200.0);
        assert_eq!((top[1].1, top[1].4), (1, 3.0));
    }
}
