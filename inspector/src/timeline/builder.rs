//! The builder: events, fed in order, correlated into container timelines.
//! Each process gets a role (from what it exec'd and its parent) and a
//! container (from its command line, its parent, or a container id in a path
//! it names); each event goes to its process's container, and the milestones
//! among them cut the container's life into phases.
//!
//! [`Builder`] hands out a [`ContainerTimeline`] as soon as a container's life
//! is over, then forgets it: memory follows the containers alive, not the
//! events seen. [`live`] shows the containers still in progress.

pub mod live;

use std::{collections::VecDeque, rc::Rc};

use rustc_hash::{FxHashMap, FxHashSet};

use super::{
    ChainLink, ContainerTimeline, Step, TIMELINE_SCHEMA_VERSION, engine,
    model::{Failure, Message},
    phase::{Milestones, Phase},
    role::{self, Role},
};
use crate::event::{Body, Event, Task};

/// What the builder could not place, for tests and for a warning.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stats {
    pub events: u64,
    /// Events of per-container processes (shim, runtime, entrypoint...) with no
    /// container known. A process known only by its command name (running
    /// before the trace began, in a recording read back: inspector-runtime's
    /// long-lived exe-keeper) is not counted: nothing could attribute it.
    pub unattributed: u64,
    /// Events that arrived for a container whose timeline was already handed out.
    pub late: u64,
    pub lost: u64,
}

#[derive(Clone, Debug)]
struct Proc {
    tgid: u32,
    start_ns: u64,
    nspid: u32,
    ppid: u32,
    comm: String,
    exe: Option<String>,
    argv: Vec<String>,
    role: Role,
    /// Shared: every event of the process looks it up.
    container: Option<Rc<str>>,
    /// For a runtime invocation: create, start, delete, run, kill...
    verb: Option<String>,
    /// When it exec'd its current image.
    exec_ns: Option<u64>,
    /// What a client waiting for its container, and its helpers, did before
    /// the container was known (its exec; podman's own mounts, network
    /// namespace and netavark), the first [`EARLY_KEPT`]: the container gets
    /// them when the client joins it.
    early: Vec<Step>,
    /// The client waiting for a container on whose behalf this process
    /// works: itself once it asked, and the helpers it forks meanwhile.
    asking: Option<u32>,
    /// Its role is a guess from its command name alone: it was running
    /// before the trace began and was not seeded (a recording read back),
    /// and nothing it did named a container.
    guessed: bool,
    /// What a client wrote before its container was known (or when no
    /// container ever was: the engine refused its request).
    messages: Vec<Message>,
}

/// Most steps kept of a client before its container is known: podman mounts
/// the image and the container's shm, makes its network namespace and runs
/// netavark (and its two dozen `iptables`) before it starts conmon.
const EARLY_KEPT: usize = 512;

/// Most messages kept per container: a client pulling an image writes a
/// line per progress update.
const MESSAGES_KEPT: usize = 32;

/// A failed call of a process of a container's making: (call, return
/// value, what it was about).
type FailedCall = (String, i64, Option<String>);

#[derive(Debug, Default)]
struct Container {
    first_ns: u64,
    last_ns: u64,

    milestones: Milestones,
    chain: Vec<ChainLink>,
    steps: Vec<Step>,
    events: u64,
    /// Processes of this container still alive.
    live: FxHashSet<u32>,
    entrypoint: Option<u32>,
    exit_code: Option<i32>,
    signal: Option<String>,
    /// `runtime delete` (or the end of `runtime run`) was seen.
    deleted: bool,
    /// All its processes ended after its deletion: handed out once no more of
    /// it turns up for a while (containerd's cleanup runs more processes).
    ending: bool,
    /// It was running before the trace began: its start was not seen.
    already_running: bool,
    /// The first process of its making that failed before its entrypoint
    /// ran: its start failed, and its life ends with its teardown.
    failure: Option<Failure>,
    /// Until its entrypoint runs: each process of its making whose last
    /// traced syscall failed, with that call (name, return value).
    failed_calls: FxHashMap<u32, FailedCall>,
    /// Processes the kernel killed for a reason of its own: (cause, the
    /// call seccomp stopped), until they exit.
    kills: FxHashMap<u32, (String, Option<String>)>,
    /// What its client and runtime wrote for their user (the first
    /// [`MESSAGES_KEPT`]).
    messages: Vec<Message>,
    /// Most steps and chain links kept ([`Limits`]); past them, counted only.
    limits: Limits,
    /// Events were lost while it was alive, or just before its first
    /// event: some of its own may be missing.
    lost: bool,
}

/// Most of a container's steps and processes kept, for a builder that runs
/// as long as its host (`inspector agent`): a container that lives for
/// months (a healthcheck execs every 30 s) must not grow without bound. A
/// recording read back keeps everything.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Limits {
    pub steps: usize,
    pub chain: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            steps: usize::MAX,
            chain: usize::MAX,
        }
    }
}

/// Containers handed out whose ids are remembered, so that their stragglers
/// are counted late instead of starting a container of their own: enough
/// for the stragglers of the last few minutes of a busy host.
const DONE_KEPT: usize = 4096;

/// The id of a refused request's timeline, before the client's pid: no
/// container (and so no container id) was made.
const REQUEST: &str = "request of pid ";

/// How long before a loss is reported its events may have been made: the
/// reader notices a full ring buffer within a poll or two.
const LOSS_REACH_NS: u64 = 1_000_000_000;

/// How long (in the events' time) an ended container waits for stragglers.
const GRACE_NS: u64 = 1_000_000_000;

/// Builds container timelines from a stream of events.
///
/// Its maps hash with FxHash: their keys (pids, container ids) come from the
/// kernel and Docker, not from an adversary, and SipHash was a tenth of the
/// time of building timelines from a recording (`cargo xtask bench timeline`).
#[derive(Default)]
pub struct Builder {
    procs: FxHashMap<u32, Proc>,
    containers: FxHashMap<String, Container>,
    /// The last [`DONE_KEPT`] containers handed out, oldest first.
    done: FxHashSet<String>,
    done_order: VecDeque<String>,
    finished: VecDeque<ContainerTimeline>,
    /// `docker run|create|start` commands not yet matched with a container.
    pending_cli: Vec<u32>,
    /// Containers whose life looks over, waiting out [`GRACE_NS`].
    ending: Vec<String>,
    /// One event's (ktime, wall-clock time): the clocks' offset is the same for
    /// the whole stream, so one pair dates every container.
    anchor: Option<(u64, String)>,
    stats: Stats,
    /// When the last loss was reported: a container first seen within
    /// [`LOSS_REACH_NS`] after it may have lost its first events.
    last_loss_ns: Option<u64>,
    limits: Limits,
}

fn exit_parts(body: &Body) -> (Option<i32>, Option<String>) {
    match body {
        Body::Exit {
            exit_code, signal, ..
        } => (*exit_code, signal.clone()),
        _ => (None, None),
    }
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder that keeps at most `limits` of each container.
    pub fn with_limits(limits: Limits) -> Self {
        Builder {
            limits,
            ..Self::default()
        }
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Timelines of containers whose life ended, oldest first.
    pub fn take_finished(&mut self) -> impl Iterator<Item = ContainerTimeline> + '_ {
        self.finished.drain(..)
    }

    /// Ends the stream: containers still going are handed out marked incomplete.
    pub fn finish(mut self) -> Vec<ContainerTimeline> {
        let mut out: Vec<ContainerTimeline> = self.finished.drain(..).collect();
        let mut rest: Vec<(String, Container)> = self.containers.drain().collect();
        rest.sort_by_key(|(_, c)| c.first_ns);
        for (id, c) in rest {
            let complete = c.ending && !c.lost;
            out.push(render_container(id, c, complete, self.anchor.as_ref()));
        }
        out
    }

    /// The process an event came from, made up from the event's own header when
    /// its fork or exec was not seen (it was running before the trace began).
    fn proc_for(&mut self, task: &Task) -> &mut Proc {
        let stale = self
            .procs
            .get(&task.tgid)
            .is_some_and(|p| p.start_ns != task.start_ns && p.start_ns != 0);
        if stale {
            // The pid was reused: the old process is gone.
            self.procs.remove(&task.tgid);
        }
        let p = self.procs.entry(task.tgid).or_insert_with(|| Proc {
            tgid: task.tgid,
            start_ns: task.start_ns,
            nspid: task.nspid,
            ppid: task.ptgid,
            comm: task.comm.to_string(),
            exe: None,
            argv: Vec::new(),
            role: role::role_of_comm(&task.comm),
            container: None,
            verb: None,
            exec_ns: None,
            early: Vec::new(),
            asking: None,
            guessed: true,
            messages: Vec::new(),
        });
        // A process seeded from /proc: now its exact start time is known.
        if p.start_ns == 0 {
            p.start_ns = task.start_ns;
            p.nspid = task.nspid;
        }
        p
    }

    /// Adds a process that was running before the first event: its role and
    /// container from its command line, as if its exec had been seen. Parents
    /// first, so that children inherit.
    pub fn seed_process(&mut self, tgid: u32, ppid: u32, comm: &str, exe: &str, argv: &[String]) {
        let inherited = self.procs.get(&ppid).map(|p| (p.role, p.container.clone()));
        let mut role = role::role_of_exec(exe, argv)
            .or_else(|| role::is_runtime_reexec(exe, argv).then_some(Role::RuntimeReexec))
            .unwrap_or_else(|| role::role_of_comm(comm));
        // conmon's first process exits at once: one still running is the
        // copy that stayed.
        if role == Role::ShimStart && role::is_conmon(exe) {
            role = Role::Shim;
        }
        let mut container: Option<Rc<str>> = named_container(role, exe, argv).map(Into::into);
        if let Some((parent_role, parent_container)) = inherited
            && container.is_none()
        {
            // What a child of the runtime's init runs is the entrypoint's.
            role = match (parent_role, role) {
                (Role::Shim, Role::Other) => Role::Entrypoint,
                (Role::RuntimeInit | Role::Entrypoint | Role::EntrypointChild, Role::Other) => {
                    Role::EntrypointChild
                }
                (_, r) => r,
            };
            if role.is_per_container() {
                container = parent_container;
            }
        }
        self.procs.insert(
            tgid,
            Proc {
                tgid,
                start_ns: 0,
                nspid: 0,
                ppid,
                comm: comm.to_string(),
                exe: Some(exe.to_string()),
                argv: argv.to_vec(),
                role,
                container: container.clone(),
                verb: None,
                exec_ns: None,
                early: Vec::new(),
                asking: None,
                guessed: false,
                messages: Vec::new(),
            },
        );
        if let Some(id) = container {
            self.join(&id, tgid, 0);
            if let Some(c) = self.containers.get_mut(&*id) {
                c.already_running = true;
            }
        }
    }

    /// Marks `tgid` as the init process (entrypoint) of container `id`, as a
    /// runtime's state directory says: a container running before the trace.
    pub fn seed_container_init(&mut self, id: &str, tgid: u32, now: u64) {
        if let Some(p) = self.procs.get_mut(&tgid) {
            p.role = Role::Entrypoint;
            p.container = Some(id.into());
        } else {
            return;
        }
        self.join(id, tgid, now);
        let c = self.container(id, now);
        c.already_running = true;
        c.entrypoint = Some(tgid);
        c.milestones.mark(Phase::Running, now);
    }

    pub fn push(&mut self, e: Event) {
        self.stats.events += 1;
        let Some(task) = &e.task else {
            if let Body::Lost { count, .. } = e.body {
                // Counts come from the recording: u64::MAX must not wrap to 0.
                self.stats.lost = self.stats.lost.saturating_add(count);
                self.last_loss_ns = Some(e.ktime_ns);
                for c in self.containers.values_mut() {
                    c.lost = true;
                }
            }
            return;
        };
        let t = e.ktime_ns;
        let task_tgid = task.tgid;
        if self.anchor.is_none() && !e.time.is_empty() {
            self.anchor = Some((t, e.time.clone()));
        }
        let p = self.proc_for(task);
        // A runtime's forked child that names itself as a stage of the
        // container's making (youki's `youki:[1:INTER]` and
        // `youki:[2:INIT]`) or is pid 1 of a new pid namespace (crun's) is
        // its init, though it executes nothing.
        if p.role == Role::Runtime
            && p.argv.is_empty()
            && (task.nspid == 1 || (p.comm != *task.comm && role::is_init_stage(&task.comm)))
        {
            p.role = Role::RuntimeInit;
            p.comm = task.comm.to_string();
            if let Some(id) = p.container.clone() {
                self.join(&id, task_tgid, t);
            }
        }
        // A kill is about its victim, whoever's context it was decided in.
        if let Body::Killed {
            task_tgid: victim,
            cause,
            syscall,
            ..
        } = &e.body
            && let Some(p) = self.procs.get(victim)
            && let Some(id) = p.container.clone()
            && let Some(c) = self.containers.get_mut(&*id)
        {
            c.kills.insert(*victim, (cause.clone(), syscall.clone()));
            let role = p.role;
            record(c, e, role);
            return;
        }
        // Process-level changes first: they decide the role and container the
        // event itself is attributed to.
        match &e.body {
            Body::Fork {
                child_tgid,
                child_start_ns,
                thread: false,
                ..
            } => self.on_fork(task.tgid, *child_tgid, *child_start_ns, t),
            Body::Exec {
                filename,
                argv,
                ret: 0,
                ..
            } => self.on_exec(task, filename, argv, t),
            _ => {}
        }

        let p = &self.procs[&task.tgid];
        let role = p.role;
        let guessed = p.guessed;
        let container = match &p.container {
            Some(id) => Some(id.clone()),
            None => self.container_by_path(&e.body).map(Into::into),
        };
        match container {
            Some(id) => {
                let exit = matches!(e.body, Body::Exit { .. }).then(|| e.body.clone());
                // One lookup in the common case: a container alive.
                if let Some(c) = self.containers.get_mut(&*id) {
                    record(c, e, role);
                } else if self.done.contains(&*id) {
                    self.stats.late += 1;
                } else {
                    record(self.container(&id, t), e, role);
                }
                if let Some(body) = exit {
                    self.on_exit(task_tgid, &body, t);
                }
                if !self.ending.is_empty() {
                    self.tick(t);
                }
                return;
            }
            None if role.is_per_container() && !guessed => self.stats.unattributed += 1,
            None => {}
        }
        // A client's words, and its and its helpers' steps, before its
        // container is known: kept with it.
        if role == Role::Client {
            match &e.body {
                Body::Message { stream, text, .. } => {
                    if let Some(p) = self.procs.get_mut(&task_tgid)
                        && p.messages.len() < MESSAGES_KEPT
                    {
                        p.messages
                            .extend(Message::new(role, task_tgid, stream, text));
                    }
                }
                Body::Fork { thread: true, .. } => {}
                _ => {
                    let asking = self.procs.get(&task_tgid).and_then(|p| p.asking);
                    if let Some(client) = asking.filter(|c| self.pending_cli.contains(c))
                        && let Some(p) = self.procs.get_mut(&client)
                        && p.early.len() < EARLY_KEPT
                    {
                        p.early.push(step(e.clone(), role, None));
                    }
                }
            }
        }

        if let Body::Exit { .. } = e.body {
            self.on_exit(task_tgid, &e.body, t);
        }
        if !self.ending.is_empty() {
            self.tick(t);
        }
    }

    fn on_fork(&mut self, parent: u32, child: u32, child_start: u64, t: u64) {
        let p = &self.procs[&parent];
        // A new process keeps its parent's part until it execs something else.
        let role = match p.role {
            // conmon's first process starts its copy that stays, the shim.
            Role::ShimStart if p.exe.as_deref().is_some_and(role::is_conmon) => Role::Shim,
            Role::RuntimeReexec | Role::RuntimeInit => Role::RuntimeInit,
            Role::Entrypoint | Role::EntrypointChild => Role::EntrypointChild,
            Role::Client | Role::Hook => p.role,
            r => r,
        };
        let child_proc = Proc {
            tgid: child,
            start_ns: child_start,
            nspid: 0,
            ppid: parent,
            comm: p.comm.clone(),
            exe: p.exe.clone(),
            argv: Vec::new(),
            role,
            container: if role.is_per_container() {
                p.container.clone()
            } else {
                None
            },
            verb: None,
            exec_ns: None,
            early: Vec::new(),
            asking: if role == Role::Client { p.asking } else { None },
            guessed: false,
            messages: Vec::new(),
        };
        let container = child_proc.container.clone();
        self.procs.insert(child, child_proc);
        if let Some(id) = container {
            self.join(&id, child, t);
        }
    }

    fn on_exec(&mut self, task: &Task, filename: &str, argv: &[String], t: u64) {
        let p = self.procs.get_mut(&task.tgid).expect("made by proc_for");
        p.exe = Some(filename.to_string());
        p.argv = argv.to_vec();
        p.comm = task.comm.to_string();
        p.nspid = task.nspid;
        p.exec_ns = Some(t);
        p.guessed = false;
        let before = p.role;
        p.role = if let Some(r) = role::role_of_exec(filename, argv) {
            r
        } else if role::is_runtime_reexec(filename, argv) {
            // Pid 1 of a pid namespace: the runtime cloned it straight into
            // the container's namespaces (inspector-runtime's direct clone),
            // so it is the container's init from the start.
            if task.nspid == 1 {
                Role::RuntimeInit
            } else {
                Role::RuntimeReexec
            }
        } else {
            match before {
                Role::RuntimeInit => Role::Entrypoint,
                // A runtime's process that is pid 1 of a pid namespace runs
                // the container, not a hook (crun and youki clone their
                // container's process from the runtime and execute the
                // entrypoint in it).
                Role::Runtime | Role::RuntimeReexec if task.nspid == 1 => Role::Entrypoint,
                Role::Runtime | Role::RuntimeReexec => Role::Hook,
                Role::Entrypoint | Role::EntrypointChild => Role::EntrypointChild,
                r => r,
            }
        };
        if p.role == Role::Runtime {
            p.verb = role::runtime_command(argv).map(|(verb, _)| verb);
        }
        let named = named_container(p.role, filename, argv);
        let mut left: Option<Rc<str>> = None;
        if let Some(id) = named {
            p.container = Some(id.into());
        } else if !p.role.is_per_container() && p.role != Role::Client {
            left = p.container.take();
        }
        let role = p.role;
        let verb = p.verb.clone();
        let container = p.container.clone();
        let tgid = p.tgid;
        // A process that became something else (a runtime's own helper) no
        // longer keeps the container it was forked into alive.
        if let Some(c) = left.and_then(|id| self.containers.get_mut(&*id)) {
            c.live.remove(&tgid);
        }

        if role == Role::Client && container.is_none() {
            let wants_container = role::client_wants_container(argv);
            let names = argv
                .iter()
                .find_map(|a| self.containers.keys().find(|id| a == *id).cloned());
            match names {
                Some(id) => {
                    self.procs.get_mut(&tgid).unwrap().container = Some(id.as_str().into());
                    self.join(&id, tgid, t);
                }
                None if wants_container => {
                    self.pending_cli.push(tgid);
                    self.procs.get_mut(&tgid).expect("exec'd").asking = Some(tgid);
                }
                None => {}
            }
            return;
        }
        let Some(id) = container else { return };
        self.join(&id, tgid, t);
        let Some(c) = self.containers.get_mut(&*id) else {
            // Its timeline was already handed out.
            return;
        };
        match (role, verb.as_deref()) {
            (Role::ShimStart, _) => c.milestones.mark(Phase::ShimStart, t),
            (Role::Runtime, Some("create" | "run")) => c.milestones.mark(Phase::Create, t),
            (Role::Runtime, Some("start")) => c.milestones.mark(Phase::Start, t),
            (Role::Runtime, Some("delete")) => {
                c.milestones.mark(Phase::Delete, t);
                c.deleted = true;
            }
            (Role::Entrypoint, _) if c.entrypoint.is_none() => {
                c.milestones.mark(Phase::Running, t);
                c.entrypoint = Some(tgid);
            }
            _ => {}
        }
        let client = match role {
            Role::ShimStart => self.client_of(task.ptgid, &id),
            // Still no client when its entrypoint runs: the one that typed
            // this command, if one did.
            Role::Entrypoint
                if !self.pending_cli.is_empty()
                    && !c.chain.iter().any(|l| l.role == Role::Client) =>
            {
                self.client_typing(argv)
            }
            _ => None,
        };
        if let Some(cli) = client {
            self.pending_cli.retain(|&c| c != cli);
            if let Some(p) = self.procs.get_mut(&cli) {
                p.container = Some(id.clone());
                self.join(&id, cli, t);
            }
        }
    }

    /// The one client waiting whose command line ends with the entrypoint's
    /// (`docker run IMAGE sh -c 'exit 3'` runs `sh -c 'exit 3'`): Docker's
    /// CLIs started at once, told apart by what they asked to run. `None`
    /// when none or several do (fifty `docker run IMAGE true`).
    fn client_typing(&self, entrypoint: &[String]) -> Option<u32> {
        if entrypoint.is_empty() {
            return None;
        }
        let mut typing = self.pending_cli.iter().filter(|cli| {
            self.procs
                .get(cli)
                .is_some_and(|p| p.argv.len() > entrypoint.len() && p.argv.ends_with(entrypoint))
        });
        match (typing.next(), typing.next()) {
            (Some(&cli), None) => Some(cli),
            _ => None,
        }
    }

    /// The client waiting for the container `id` whose shim `shim_parent`
    /// just started: podman, which starts conmon itself; else the one whose
    /// command line names the container (`ctr run IMAGE ID`); else the only
    /// one waiting (Docker's CLI asks dockerd over a socket: with several
    /// waiting, which asked for which is not told by the kernel, and none is
    /// guessed).
    fn client_of(&self, shim_parent: u32, id: &str) -> Option<u32> {
        if self.pending_cli.contains(&shim_parent) {
            return Some(shim_parent);
        }
        let mut naming = self.pending_cli.iter().filter(|cli| {
            self.procs
                .get(cli)
                .is_some_and(|p| p.argv.iter().skip(1).any(|a| a == id))
        });
        match (naming.next(), naming.next()) {
            (Some(&cli), None) => return Some(cli),
            (Some(_), Some(_)) => return None,
            _ => {}
        }
        match self.pending_cli.as_slice() {
            [only] => Some(*only),
            _ => None,
        }
    }

    fn on_exit(&mut self, tgid: u32, body: &Body, t: u64) {
        let Some(p) = self.procs.remove(&tgid) else {
            return;
        };
        let was_pending = self.pending_cli.contains(&tgid);
        self.pending_cli.retain(|&c| c != tgid);
        let (code, signal) = exit_parts(body);
        let failed = code.is_some_and(|code| code != 0) || (code.is_none() && signal.is_some());
        if was_pending && failed && p.container.is_none() {
            self.refused_request(p, code, signal, t);
            return;
        }
        let Some(id) = p.container else { return };
        let Some(c) = self.containers.get_mut(&*id) else {
            return;
        };
        c.live.remove(&tgid);
        if let Some(link) = c.chain.iter_mut().rev().find(|l| l.pid == tgid) {
            link.exit_ns = Some(t);
            link.exit_code = code;
            link.signal = signal.clone();
        }
        let kill = c.kills.remove(&tgid);
        let start_failed =
            failed && c.milestones.get(Phase::Running).is_none() && p.role.makes_the_container();
        if c.failure.is_none() && (start_failed || kill.is_some()) {
            let call = c.failed_calls.remove(&tgid);
            let (killed_by, stopped_at) = kill.unzip();
            let hook = (p.role == Role::Hook).then(|| p.exe.as_ref().or(p.argv.first()).cloned());
            let (syscall, errno, subject) = match call {
                _ if killed_by.is_some() => (stopped_at.flatten(), None, None),
                Some((call, ret, subject)) => (Some(call), crate::names::errno_name(ret), subject),
                None => (None, None, hook.flatten()),
            };
            c.failure = Some(Failure {
                summary: String::new(),
                role: p.role,
                pid: tgid,
                phase: current_phase(&c.milestones, t),
                exit_code: code,
                signal: signal.clone(),
                syscall,
                errno,
                subject,
                killed_by,
                messages: Vec::new(),
            });
        }
        if c.milestones.get(Phase::Running).is_some() {
            c.failed_calls = FxHashMap::default();
        }
        if c.entrypoint == Some(tgid) {
            c.milestones.mark(Phase::Stopped, t);
            c.exit_code = code;
            c.signal = signal;
        }
        match p.verb.as_deref() {
            Some("create") if p.role == Role::Runtime => c.milestones.mark(Phase::Created, t),
            Some("run") if p.role == Role::Runtime => c.deleted = true,
            _ => {}
        }
        let over = c.milestones.get(Phase::Stopped).is_some() || c.failure.is_some();
        if c.deleted && c.live.is_empty() && over && !c.ending {
            c.ending = true;
            self.ending.push(id.to_string());
        }
    }

    /// A client that asked for a container and gave up before any was made
    /// (the engine refused: a bind mount's source missing, an unknown
    /// image): its request is a timeline of its own, with no container id,
    /// the client's failure and its words.
    fn refused_request(&mut self, p: Proc, code: Option<i32>, signal: Option<String>, t: u64) {
        let key = format!("{REQUEST}{}", p.tgid);
        let tgid = p.tgid;
        self.procs.insert(tgid, p);
        self.join(&key, tgid, t);
        let p = self.procs.remove(&tgid).expect("inserted above");
        let c = self.containers.get_mut(&key).expect("made by join");
        c.live.remove(&tgid);
        if let Some(link) = c.chain.iter_mut().find(|l| l.pid == tgid) {
            link.exit_ns = Some(t);
            link.exit_code = code;
            link.signal = signal.clone();
        }
        c.last_ns = c.last_ns.max(t);
        c.milestones.mark(Phase::Request, c.first_ns);
        c.failure = Some(Failure {
            summary: String::new(),
            role: p.role,
            pid: tgid,
            phase: Some(Phase::Request),
            exit_code: code,
            signal,
            syscall: None,
            errno: None,
            subject: None,
            killed_by: None,
            messages: Vec::new(),
        });
        c.deleted = true;
        c.ending = true;
        self.ending.push(key);
    }

    /// Hands out the containers that ended more than [`GRACE_NS`] before `now`
    /// (a ktime): call it as time passes, even when no event arrives.
    pub fn tick(&mut self, now: u64) {
        let mut i = 0;
        while i < self.ending.len() {
            let id = &self.ending[i];
            let Some(c) = self.containers.get(id) else {
                self.ending.swap_remove(i);
                continue;
            };
            if !c.live.is_empty() {
                // Something of it started again (cleanup): wait for its end.
                self.containers.get_mut(id).unwrap().ending = false;
                self.ending.swap_remove(i);
                continue;
            }
            if now > c.last_ns.saturating_add(GRACE_NS) {
                let id = self.ending.swap_remove(i);
                let c = self.containers.remove(&id).expect("present");
                self.hand_out(id, c, true);
                continue;
            }
            i += 1;
        }
    }

    /// Hands out a container's timeline and remembers its id for a while.
    fn hand_out(&mut self, id: String, c: Container, ended: bool) {
        let complete = ended && !c.lost;
        if self.done_order.len() >= DONE_KEPT
            && let Some(old) = self.done_order.pop_front()
        {
            self.done.remove(&old);
        }
        self.done.insert(id.clone());
        self.done_order.push_back(id.clone());
        self.finished
            .push_back(render_container(id, c, complete, self.anchor.as_ref()));
    }

    /// For a builder that runs for good: hands out, marked incomplete, the
    /// containers with no process left that nothing was heard of for
    /// `idle_ns` (their end was lost, or only a straggler named them), and
    /// forgets the processes `alive` says are gone (their exit was lost).
    /// Memory then follows the containers and processes alive.
    pub fn expire(&mut self, now: u64, idle_ns: u64, alive: impl Fn(u32) -> bool) {
        self.procs.retain(|_, p| alive(p.tgid));
        let procs = &self.procs;
        self.pending_cli.retain(|c| procs.contains_key(c));
        for c in self.containers.values_mut() {
            c.live.retain(|&p| alive(p));
        }
        let idle: Vec<String> = self
            .containers
            .iter()
            .filter(|(_, c)| c.live.is_empty() && now > c.last_ns.saturating_add(idle_ns))
            .map(|(id, _)| id.clone())
            .collect();
        for id in idle {
            let c = self.containers.remove(&id).expect("present");
            self.ending.retain(|e| *e != id);
            self.hand_out(id, c, false);
        }
    }

    /// Containers in progress and processes known: what the builder's
    /// memory follows.
    pub fn sizes(&self) -> (usize, usize) {
        (self.containers.len(), self.procs.len())
    }

    /// A container, made when first named.
    fn container(&mut self, id: &str, t: u64) -> &mut Container {
        // Looked up on every event: no key allocated unless it is new.
        if !self.containers.contains_key(id) {
            self.containers.insert(
                id.to_string(),
                Container {
                    first_ns: t,
                    last_ns: t,
                    limits: self.limits,
                    lost: self
                        .last_loss_ns
                        .is_some_and(|l| t <= l.saturating_add(LOSS_REACH_NS)),
                    ..Default::default()
                },
            );
        }
        self.containers.get_mut(id).expect("present")
    }

    /// Adds a process to a container's chain.
    fn join(&mut self, id: &str, tgid: u32, t: u64) {
        if self.done.contains(id) {
            return;
        }
        let p = self
            .procs
            .get_mut(&tgid)
            .expect("joined processes are known");
        let start = p.exec_ns.unwrap_or(t).min(t);
        let role = p.role;
        // A client matched late brings what it did and wrote before.
        let early = std::mem::take(&mut p.early);
        let messages = std::mem::take(&mut p.messages);
        let fresh = ChainLink {
            role,
            pid: tgid,
            nspid: p.nspid,
            ppid: p.ppid,
            comm: p.comm.clone(),
            exe: p.exe.clone(),
            argv: p.argv.clone(),
            start_ns: start,
            exit_ns: None,
            exit_code: None,
            signal: None,
        };
        let c = self.container(id, start);
        if start > 0 {
            if c.first_ns == 0 {
                c.first_ns = start;
                c.last_ns = c.last_ns.max(start);
            }
            c.first_ns = c.first_ns.min(start);
        }
        c.live.insert(tgid);
        let room = MESSAGES_KEPT.saturating_sub(c.messages.len());
        c.messages.extend(messages.into_iter().take(room));
        for step in early {
            c.steps.insert(
                c.steps.partition_point(|s| s.ktime_ns <= step.ktime_ns),
                step,
            );
            c.events += 1;
        }
        let room = c.chain.len() < c.limits.chain;
        match c.chain.iter_mut().rev().find(|l| l.pid == tgid) {
            // Forked but not yet exec'd, or exec'd again in the same part
            // (runc's re-exec from its memfd): the same link, now complete.
            Some(link) if link.argv.is_empty() || link.role == role => {
                let first = link.start_ns;
                *link = ChainLink {
                    start_ns: first,
                    ..fresh
                };
            }
            // New, or the same process in a new part (runc's init exec'ing
            // the entrypoint).
            _ if room => c.chain.push(fresh),
            _ => {}
        }
    }

    /// The container an event of a shared daemon (dockerd, containerd, systemd)
    /// is about, from a container id in the path it names.
    fn container_by_path(&self, body: &Body) -> Option<String> {
        let (path, cgroup) = match body {
            Body::CgroupMkdir(c) | Body::CgroupRmdir(c) => (c.path.as_str(), true),
            Body::CgroupAttach { cgroup, .. } => (cgroup.path.as_str(), true),
            Body::CgroupWrite { file, .. } => (file.as_str(), true),
            Body::Mount { target, .. } | Body::Umount { target, .. } => (target.as_str(), false),
            Body::Chdir { path, .. } => (path.as_str(), false),
            _ => return None,
        };
        if cgroup {
            // A container's cgroup can be made before its runtime runs
            // (systemd makes the scope of the systemd cgroup driver).
            return role::container_id_in_path(path).map(str::to_string);
        }
        // podman's (and CRI-O's) storage names the container before conmon runs.
        if let Some((_, rest)) = path.split_once("/overlay-containers/")
            && let Some(id) = rest.split('/').next()
            && role::is_hex_id(id)
        {
            return Some(id.to_string());
        }
        // containerd's task directory names the container before any shim runs.
        if let Some((_, rest)) = path.split_once("io.containerd.runtime.v2.task/")
            && let Some(id) = rest.split('/').nth(1)
            && !id.is_empty()
        {
            return Some(id.to_string());
        }
        // Elsewhere a 64-hex name may be an image layer: only containers
        // already known count.
        path.split('/')
            .find(|part| part.len() == 64 && self.containers.contains_key(*part))
            .map(str::to_string)
    }
}

/// The container a process's command line names, for its role.
fn named_container(role: Role, filename: &str, argv: &[String]) -> Option<String> {
    match role {
        Role::ShimStart | Role::Shim => role::shim_container(filename, argv),
        Role::Runtime => role::runtime_command(argv).map(|(_, id)| id),
        Role::EngineCleanup => role::cleanup_container(argv),
        _ => None,
    }
}

/// Adds an event to its container.
fn record(c: &mut Container, e: Event, role: Role) {
    let t = e.ktime_ns;
    c.events += 1;
    // `runtime run` deletes the container itself once the entrypoint exits:
    // its first cgroup removal opens the delete phase.
    if matches!(e.body, Body::CgroupRmdir(_)) && c.milestones.get(Phase::Stopped).is_some() {
        c.milestones.mark(Phase::Delete, t);
    }
    // 0: made by seeding, before any event dated it.
    c.first_ns = if c.first_ns == 0 {
        t
    } else {
        c.first_ns.min(t)
    };
    c.last_ns = c.last_ns.max(t);
    if matches!(e.body, Body::Fork { thread: true, .. }) {
        return;
    }
    if let (Body::Message { stream, text, .. }, Some(task)) = (&e.body, &e.task) {
        // A client attached to a chatty container relays its stderr: past
        // the first messages, the rest are counted, not kept.
        if c.messages.len() >= MESSAGES_KEPT {
            return;
        }
        // runc says it twice: in its log file and on its stderr.
        if let Some(m) = Message::new(role, task.tgid, stream, text)
            && !c
                .messages
                .iter()
                .any(|old| old.pid == m.pid && old.text == m.text)
        {
            c.messages.push(m);
        }
    }
    // A process of the container's making whose last call failed: the
    // likely cause, should it give up now. A later call that succeeded
    // clears it (runc's init shrugs off mounts on /proc paths its kernel
    // lacks).
    if role.makes_the_container()
        && c.milestones.get(Phase::Running).is_none()
        && let (Some(ret), _) = syscall_result(&e.body)
        && let Some(task) = &e.task
    {
        if ret < 0 {
            // As strace names the call: the event kind `exec` is execve.
            let (call, subject) = match &e.body {
                Body::Exec { filename, .. } => ("execve".to_string(), Some(filename.clone())),
                Body::Mount { source, target, .. } => (
                    "mount".to_string(),
                    Some(match source {
                        Some(source) => format!("{source} on {target}"),
                        None => target.clone(),
                    }),
                ),
                Body::SyscallFailed {
                    syscall, resource, ..
                } => (syscall.clone(), resource.clone()),
                body => (body.kind().to_string(), None),
            };
            c.failed_calls.insert(task.tgid, (call, ret, subject));
        } else {
            c.failed_calls.remove(&task.tgid);
        }
    }
    if c.steps.len() >= c.limits.steps {
        return;
    }
    let phase = current_phase(&c.milestones, t);
    c.steps.push(step(e, role, phase));
}

fn step(e: Event, role: Role, phase: Option<Phase>) -> Step {
    let task = e.task.as_ref().expect("events with a task only");
    let (ret, duration_ns) = syscall_result(&e.body);
    Step {
        ktime_ns: e.ktime_ns,
        pid: task.tgid,
        tid: task.tid,
        role,
        phase,
        kind: e.body.kind().into(),
        detail: String::new(),
        body: Some(Box::new(e.body)),
        ret,
        duration_ns,
    }
}

fn syscall_result(body: &Body) -> (Option<i64>, Option<u64>) {
    if let Body::Exec { ret, .. } = body {
        return (Some(*ret), None);
    }
    match body.syscall_result() {
        Some(r) => (Some(r.ret), Some(r.duration_ns)),
        None => (None, None),
    }
}

/// The phase under way at `t`, from the milestones seen so far.
fn current_phase(m: &Milestones, t: u64) -> Option<Phase> {
    Phase::ALL
        .iter()
        .rev()
        .find(|&&p| m.get(p).is_some_and(|s| s <= t))
        .copied()
}

fn render_container(
    id: String,
    mut c: Container,
    complete: bool,
    anchor: Option<&(u64, String)>,
) -> ContainerTimeline {
    // The request phase starts at the docker CLI's exec, when it is known.
    if let Some(cli) = c.chain.iter().find(|l| l.role == Role::Client) {
        c.milestones.mark(Phase::Request, cli.start_ns);
    }
    c.chain.sort_by_key(|l| l.start_ns);
    let engine = engine::engine_of(&id, &c.chain);
    let runtime = engine::runtime_of(&c.chain);
    let end = c.last_ns;
    let start = c.first_ns;
    let phases = c.milestones.spans(end);
    // Steps from before the first milestone (a chdir of the shim-to-be) stay
    // unphased; those after take the phase they fell in.
    for s in &mut c.steps {
        s.phase = current_phase(&c.milestones, s.ktime_ns);
    }
    ContainerTimeline {
        v: TIMELINE_SCHEMA_VERSION,
        id,
        engine,
        runtime,
        complete: complete && (c.milestones.get(Phase::Stopped).is_some() || c.failure.is_some()),
        start_ns: start,
        end_ns: end,
        duration_ns: end.saturating_sub(start),
        start_time: wall_time(anchor, start),
        exit_code: c.exit_code,
        signal: c.signal,
        phases,
        chain: c.chain,
        steps: c.steps,
        events: c.events,
        already_running: c.already_running,
        failure: c.failure.map(|f| {
            Failure {
                messages: c.messages,
                ..f
            }
            .summarised()
        }),
        why: None,
    }
}

/// The wall-clock time of `ktime`, RFC 3339, from one event whose both times
/// are known; empty when there is none or it cannot be told (see [`wall_clock`]).
fn wall_time(anchor: Option<&(u64, String)>, ktime: u64) -> String {
    let Some((at, time)) = anchor else {
        return String::new();
    };
    match wall_clock(*at, time, ktime) {
        Some(wall) => humantime::format_rfc3339_nanos(wall).to_string(),
        None => String::new(),
    }
}

/// The wall-clock time of `ktime`, from one event's pair of times (`at`, its
/// ktime, and `time`, its RFC 3339 wall-clock time): the two clocks' offset is
/// the same for the whole recording. `None` when `time` is not RFC 3339 or
/// the result falls outside what RFC 3339 can write (before 1970 or after
/// 9999: a recording edited by hand, or from a machine whose clock was far
/// off), rather than a time that is wrong or a panic.
pub fn wall_clock(at: u64, time: &str, ktime: u64) -> Option<std::time::SystemTime> {
    /// 10000-01-01T00:00:00Z: the first time with a five-digit year.
    const YEAR_10000: std::time::Duration = std::time::Duration::from_secs(253_402_300_800);
    let anchor = humantime::parse_rfc3339(time).ok()?;
    let wall = if ktime <= at {
        anchor.checked_sub(std::time::Duration::from_nanos(at - ktime))?
    } else {
        anchor.checked_add(std::time::Duration::from_nanos(ktime - at))?
    };
    let since_epoch = wall.duration_since(std::time::UNIX_EPOCH).ok()?;
    (since_epoch < YEAR_10000).then_some(wall)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{Engine, perfetto, reader::for_each_event, render};

    const DOCKER_RUN: &str = include_str!("../../tests/fixtures/docker-run-rm-true.jsonl");
    const RUNC_RUN: &str = include_str!("../../tests/fixtures/runc-run-exit-3.jsonl");
    const MISSING_ENTRYPOINT: &str =
        include_str!("../../tests/fixtures/docker-run-missing-entrypoint.jsonl");
    const NOT_EXECUTABLE: &str =
        include_str!("../../tests/fixtures/docker-run-entrypoint-not-executable.jsonl");
    /// Traced as a user would: five `docker run`s (entrypoint missing, not
    /// executable, a bind source missing, `--privileged`, `exit 3`), then
    /// five `inspector run --bundle`s (a bind source missing, a
    /// createRuntime hook `/bin/false`, RLIMIT_NOFILE above the hard limit
    /// on a host without CAP_SYS_RESOURCE, 8 MiB of memory for `head -c
    /// 200M /dev/zero | tail`, seccomp killing getppid under `sh`).
    const FAILURES: &str = include_str!("../../tests/fixtures/failures.jsonl");

    fn build(jsonl: &str) -> (Vec<ContainerTimeline>, Stats) {
        let mut b = Builder::new();
        for_each_event(jsonl.as_bytes(), |e| b.push(e)).unwrap();
        let stats = b.stats();
        (b.finish(), stats)
    }

    fn hex_ids(text: &str) -> Vec<&str> {
        text.split(|c: char| !c.is_ascii_hexdigit())
            .filter(|w| w.len() == 64)
            .collect()
    }

    #[test]
    fn docker_run_is_one_complete_container_with_every_role_and_phase() {
        let (timelines, stats) = build(DOCKER_RUN);
        assert_eq!(timelines.len(), 1, "{timelines:#?}");
        let t = &timelines[0];
        assert!(t.complete);
        assert_eq!(t.id.len(), 64);
        assert_eq!(t.exit_code, Some(0));
        assert_eq!(stats.unattributed, 0);
        let phases: Vec<Phase> = t.phases.iter().map(|p| p.phase).collect();
        assert_eq!(phases, Phase::ALL);
        let sum: u64 = t.phases.iter().map(|p| p.duration_ns).sum();
        assert_eq!(sum, t.duration_ns, "phases add up to the container's span");
        for role in Role::DOCKER_RUN {
            assert!(
                t.chain.iter().any(|l| l.role == role),
                "no {role:?} in the chain"
            );
        }
        let entry = t.chain.iter().find(|l| l.role == Role::Entrypoint).unwrap();
        assert_eq!(entry.nspid, 1, "the entrypoint is pid 1 inside");
        for s in &t.steps {
            let detail = s.detail();
            for id in hex_ids(&detail) {
                // Other 64-hex names may only be image layers.
                assert!(
                    id == t.id || detail.contains(&format!("overlay2/{id}")),
                    "step of another container: {detail}"
                );
            }
        }
        // The key steps are there, in their phase.
        let in_phase = |kind: &str, phase: Phase| {
            t.steps
                .iter()
                .any(|s| s.kind == kind && s.phase == Some(phase))
        };
        assert!(in_phase("unshare", Phase::Create));
        assert!(in_phase("pivot_root", Phase::Create));
        assert!(in_phase("cgroup_mkdir", Phase::Create));
        assert!(in_phase("cgroup_rmdir", Phase::Delete));
    }

    #[test]
    fn a_start_that_failed_ends_as_failed_naming_the_process_that_failed_first() {
        // `docker run IMAGE /no/such`: runc init (the [2:INIT] child) exits 1
        // in create, then runc create exits 1, runc delete tears it down
        // and the docker CLI exits 127.
        let (timelines, stats) = build(MISSING_ENTRYPOINT);
        assert_eq!(timelines.len(), 1, "{timelines:#?}");
        let t = &timelines[0];
        assert!(t.complete, "a failed start is a whole life, not a cut one");
        assert_eq!(stats.unattributed, 0);
        assert_eq!((t.exit_code, t.signal.as_deref()), (None, None));
        let f = t.failure.as_ref().expect("the start failed");
        assert_eq!(
            (f.role, f.phase, f.exit_code),
            (Role::RuntimeInit, Some(Phase::Create), Some(1))
        );
        let first_failed = t
            .chain
            .iter()
            .filter(|l| l.exit_code.is_some_and(|c| c != 0))
            .min_by_key(|l| l.exit_ns)
            .unwrap();
        assert_eq!(f.pid, first_failed.pid);
        assert_eq!(
            f.summary,
            format!(
                "runtime init (pid {}) exited 1 during create; the entrypoint never ran",
                f.pid
            )
        );
        assert!(!t.phases.iter().any(|p| p.phase == Phase::Running));
        let text = render::text(t, false);
        assert!(text.contains(", failed to start,"), "{text}");
        assert!(text.contains(&format!("  failed: {}", f.summary)), "{text}");
        // Perfetto marks it where the failing process ended.
        let doc = perfetto::document(std::slice::from_ref(t));
        let marks: Vec<_> = doc["traceEvents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == "start failed")
            .collect();
        assert_eq!(
            marks.len(),
            2,
            "on the process's row and the lifecycle track"
        );
        assert!(
            marks
                .iter()
                .all(|e| e["args"]["summary"] == f.summary.as_str())
        );
        // Handed out as time passes, as a container that ran is: a live view
        // does not keep it in `delete` for ever.
        let mut b = Builder::new();
        let mut last = 0;
        for_each_event(MISSING_ENTRYPOINT.as_bytes(), |e| {
            last = e.ktime_ns;
            b.push(e)
        })
        .unwrap();
        b.tick(last + GRACE_NS + 1);
        let handed: Vec<_> = b.take_finished().collect();
        assert_eq!(handed.len(), 1);
        assert!(handed[0].failure.is_some());
        // Containers that started have no failure, whatever their exit.
        for fixture in [DOCKER_RUN, RUNC_RUN] {
            assert!(build(fixture).0.iter().all(|t| t.failure.is_none()));
        }
    }

    #[test]
    fn a_failed_start_names_the_call_that_failed_last_when_there_is_one() {
        // `docker run -v FILE:/notexec IMAGE /notexec`, FILE a text file of
        // mode 0755: runc init's execve of it fails at start, and it exits 1.
        let (timelines, _) = build(NOT_EXECUTABLE);
        assert_eq!(timelines.len(), 1, "{timelines:#?}");
        let f = timelines[0].failure.as_ref().expect("the start failed");
        assert_eq!(
            (f.role, f.phase, f.exit_code),
            (Role::RuntimeInit, Some(Phase::Start), Some(1))
        );
        assert_eq!(
            (f.syscall.as_deref(), f.errno.as_deref()),
            (Some("execve"), Some("ENOEXEC"))
        );
        assert_eq!(
            f.summary,
            format!(
                "the entrypoint /notexec is not an executable: execve ENOEXEC in runtime init \
                 (pid {}) during start; the entrypoint never ran",
                f.pid
            )
        );
        // A failed call followed by one that succeeded is not the cause:
        // the missing entrypoint's runc init had mounts fail with ENOENT and
        // ENOTDIR, then went on (the cause, a stat, is not traced).
        let (timelines, _) = build(MISSING_ENTRYPOINT);
        let f = timelines[0].failure.as_ref().unwrap();
        assert_eq!((f.syscall.as_deref(), f.errno.as_deref()), (None, None));
    }

    #[test]
    fn each_failure_is_named_with_its_role_phase_cause_and_words() {
        let (timelines, stats) = build(FAILURES);
        assert_eq!(stats.unattributed, 0);
        assert_eq!(timelines.len(), 10, "{timelines:#?}");
        let find = |what: &str| {
            timelines
                .iter()
                .find(|t| t.chain.iter().any(|l| l.argv.join(" ").contains(what)))
                .unwrap_or_else(|| panic!("no timeline of {what}"))
        };
        let failure = |what: &str| find(what).failure.clone().unwrap();
        let said = |f: &Failure, role: Role, words: &str| {
            f.messages
                .iter()
                .any(|m| m.role == role && m.text.contains(words))
        };
        // Docker: each with runc's words in its log and the client's.
        let f = failure("/no/such");
        assert_eq!((f.role, f.phase), (Role::RuntimeInit, Some(Phase::Create)));
        assert!(
            said(&f, Role::Runtime, "stat /no/such: no such file"),
            "{f:#?}"
        );
        assert!(
            said(&f, Role::Client, "docker: Error response from daemon"),
            "{f:#?}"
        );
        assert!(
            f.summary.contains("no such file or directory"),
            "{}",
            f.summary
        );
        assert_eq!(
            f.messages
                .iter()
                .filter(|m| m.role == Role::Runtime)
                .count(),
            1,
            "runc's log line and its stderr line are one message: {f:#?}"
        );

        let f = failure("/notexec");
        assert_eq!((f.role, f.phase), (Role::RuntimeInit, Some(Phase::Start)));
        assert_eq!(
            (f.syscall.as_deref(), f.errno.as_deref()),
            (Some("execve"), Some("ENOEXEC"))
        );
        assert!(
            f.summary
                .starts_with("the entrypoint /notexec is not an executable"),
            "{}",
            f.summary
        );
        // runc init says it on the container's stderr, which the attached
        // docker CLI relays on its own.
        assert!(said(&f, Role::Client, "exec format error"), "{f:#?}");

        let t = find("src=/nonexistent");
        let f = t.failure.clone().unwrap();
        assert_eq!((f.role, f.phase), (Role::Client, Some(Phase::Request)));
        assert!(t.id.starts_with(REQUEST), "{}", t.id);
        assert!(t.complete);
        assert_eq!(t.chain.len(), 1, "no runtime ran: {:#?}", t.chain);
        assert!(
            f.summary.starts_with("the engine refused the request"),
            "{}",
            f.summary
        );
        assert!(
            f.summary
                .contains("bind source path does not exist: /nonexistent"),
            "{}",
            f.summary
        );

        let f = failure("--privileged");
        assert_eq!((f.role, f.phase), (Role::RuntimeInit, Some(Phase::Create)));
        assert_eq!(
            (f.syscall.as_deref(), f.errno.as_deref()),
            (Some("capset"), Some("EPERM"))
        );
        assert!(said(&f, Role::Runtime, "unable to apply caps"), "{f:#?}");

        let t = find("exit 3");
        assert_eq!((t.exit_code, t.failure.as_ref()), (Some(3), None));

        // inspector run --bundle, the runtime ours.
        let bundles: Vec<&ContainerTimeline> = timelines
            .iter()
            .filter(|t| t.id.starts_with("inspector-"))
            .collect();
        assert_eq!(bundles.len(), 5);
        let f = bundles[0].failure.clone().unwrap();
        assert_eq!((f.role, f.phase), (Role::RuntimeInit, Some(Phase::Create)));
        assert_eq!(
            (f.syscall.as_deref(), f.errno.as_deref()),
            (Some("mount"), Some("ENOENT"))
        );
        assert!(
            f.subject
                .as_deref()
                .unwrap()
                .starts_with("/nonexistent-src on "),
            "{f:#?}"
        );
        assert!(
            said(&f, Role::Runtime, "bind /nonexistent-src: ENOENT"),
            "{f:#?}"
        );

        let f = bundles[1].failure.clone().unwrap();
        assert_eq!(
            (f.role, f.phase, f.exit_code),
            (Role::Hook, Some(Phase::Create), Some(1))
        );
        assert!(
            f.summary
                .starts_with("the hook /bin/false exited 1 during create"),
            "{}",
            f.summary
        );

        let f = bundles[2].failure.clone().unwrap();
        assert_eq!((f.role, f.phase), (Role::RuntimeInit, Some(Phase::Start)));
        assert_eq!(
            (
                f.syscall.as_deref(),
                f.errno.as_deref(),
                f.subject.as_deref()
            ),
            (Some("prlimit64"), Some("EPERM"), Some("RLIMIT_NOFILE"))
        );

        let f = bundles[3].failure.clone().unwrap();
        assert_eq!(
            (f.killed_by.as_deref(), f.signal.as_deref()),
            (Some("oom"), Some("SIGKILL"))
        );
        assert_eq!(f.phase, Some(Phase::Running));
        assert!(
            f.summary.contains("killed by the OOM killer"),
            "{}",
            f.summary
        );

        let t = bundles[4];
        let f = t.failure.clone().unwrap();
        assert_eq!((f.role, f.phase), (Role::Entrypoint, Some(Phase::Running)));
        assert_eq!(
            (
                f.killed_by.as_deref(),
                f.syscall.as_deref(),
                f.signal.as_deref()
            ),
            (Some("seccomp"), Some("getppid"), Some("SIGSYS"))
        );
        assert_eq!(t.signal.as_deref(), Some("SIGSYS"));
    }

    #[test]
    fn runc_run_has_no_docker_roles_and_keeps_the_exit_code() {
        let (timelines, stats) = build(RUNC_RUN);
        assert_eq!(timelines.len(), 1);
        let t = &timelines[0];
        assert_eq!(t.id, "fixture-ctr");
        assert!(t.complete);
        assert_eq!(t.exit_code, Some(3));
        assert_eq!(stats.unattributed, 0);
        assert!(t.chain.iter().all(|l| !matches!(
            l.role,
            Role::Client | Role::Dockerd | Role::Containerd | Role::Shim | Role::ShimStart
        )));
        let phases: Vec<Phase> = t.phases.iter().map(|p| p.phase).collect();
        assert_eq!(
            phases,
            [Phase::Create, Phase::Running, Phase::Stopped, Phase::Delete]
        );
    }

    /// Traced as a user would: `podman --runtime runc run --rm --ulimit …
    /// --network none IMAGE sh -c 'echo hi; exit 4'`, podman 4.3 and conmon
    /// 2.1 from Debian.
    const PODMAN_RUN: &str = include_str!("../../tests/fixtures/podman-run-exit-4.jsonl");
    /// The same with `--runtime youki` (0.7).
    const PODMAN_YOUKI_RUN: &str =
        include_str!("../../tests/fixtures/podman-youki-run-exit-4.jsonl");
    /// `ctr -a DOCKER'S-CONTAINERD -n k8s.io run --rm IMAGE c5 sh -c 'echo hi;
    /// exit 4'`: containerd without Docker.
    const CTR_RUN: &str = include_str!("../../tests/fixtures/ctr-run-exit-4.jsonl");

    /// The one timeline of a recording, nothing unattributed.
    fn only_timeline(jsonl: &str) -> ContainerTimeline {
        let (mut timelines, stats) = build(jsonl);
        assert_eq!(timelines.len(), 1, "{timelines:#?}");
        assert_eq!(stats.unattributed, 0);
        timelines.remove(0)
    }

    fn roles(t: &ContainerTimeline) -> Vec<Role> {
        let mut roles: Vec<Role> = t.chain.iter().map(|l| l.role).collect();
        roles.dedup();
        roles
    }

    #[test]
    fn podman_run_is_its_client_conmon_the_runtime_and_its_cleanup() {
        let t = &only_timeline(PODMAN_RUN);
        assert!(t.complete);
        assert_eq!(t.exit_code, Some(4));
        assert_eq!(
            (t.engine, t.runtime.as_deref()),
            (Some(Engine::Podman), Some("runc"))
        );
        let phases: Vec<Phase> = t.phases.iter().map(|p| p.phase).collect();
        assert_eq!(phases, Phase::ALL);
        assert_eq!(
            roles(t),
            [
                Role::Client,
                Role::ShimStart,
                Role::Shim,
                Role::Runtime,
                Role::RuntimeReexec,
                Role::RuntimeInit,
                Role::Entrypoint,
                Role::Runtime,
                Role::EngineCleanup,
                Role::Runtime,
            ]
        );
        // podman is client and engine: what it did before starting conmon
        // (the image's overlay mount, the container's shm) is the request.
        let request: Vec<&Step> = t
            .steps
            .iter()
            .filter(|s| s.phase == Some(Phase::Request))
            .collect();
        assert!(request.iter().all(|s| s.role == Role::Client));
        for kind in ["exec", "mount"] {
            assert!(
                request.iter().any(|s| s.kind == kind),
                "no {kind} in the request"
            );
        }
        assert!(
            request
                .iter()
                .any(|s| s.detail().contains("overlay-containers/")),
            "the shm mount"
        );
        // conmon's start is the shim start; its copy that stays relays the
        // exit code; podman's cleanup deletes the container.
        let shim = t.chain.iter().find(|l| l.role == Role::Shim).unwrap();
        assert_eq!(shim.exit_code, Some(4));
        let delete = t
            .chain
            .iter()
            .find(|l| l.role == Role::Runtime && l.argv.iter().any(|a| a == "delete"))
            .unwrap();
        let cleanup = t
            .chain
            .iter()
            .find(|l| l.role == Role::EngineCleanup)
            .unwrap();
        assert_eq!(delete.ppid, cleanup.pid);
    }

    #[test]
    fn podman_s_network_set_up_is_its_request_and_its_teardown_its_cleanup() {
        // `podman --runtime runc run --rm --ulimit … IMAGE true` on podman's
        // default bridge network: podman makes the network namespace and
        // runs netavark (which runs iptables) before conmon, and its cleanup
        // runs netavark again.
        let t = &only_timeline(include_str!(
            "../../tests/fixtures/podman-run-bridge-network.jsonl"
        ));
        assert!(t.complete);
        let request = |s: &&Step| s.phase == Some(Phase::Request);
        let said = |s: &Step, words: &str| s.detail().contains(words);
        assert!(
            t.steps
                .iter()
                .filter(request)
                .any(|s| said(s, "unshare(CLONE_NEWNET)"))
        );
        assert!(
            t.steps
                .iter()
                .filter(request)
                .any(|s| said(s, "/usr/lib/podman/netavark"))
        );
        assert!(
            t.steps
                .iter()
                .filter(request)
                .any(|s| said(s, "\"iptables\""))
        );
        assert!(t.chain.iter().any(|l| {
            l.role == Role::EngineCleanup && l.argv.first().is_some_and(|a| a.ends_with("netavark"))
        }));
    }

    #[test]
    fn youki_under_podman_has_its_intermediate_process_as_its_init() {
        let t = &only_timeline(PODMAN_YOUKI_RUN);
        assert_eq!(
            (t.engine, t.runtime.as_deref()),
            (Some(Engine::Podman), Some("youki"))
        );
        let init = t
            .chain
            .iter()
            .find(|l| l.role == Role::RuntimeInit)
            .unwrap();
        assert_eq!(init.comm, "youki:[1:INTER]");
        let entry = t.chain.iter().find(|l| l.role == Role::Entrypoint).unwrap();
        assert_eq!((entry.nspid, entry.exit_code), (1, Some(4)));
        // Its steps before the exec (pivot_root) are the init's.
        assert!(
            t.steps
                .iter()
                .any(|s| s.kind == "pivot_root" && s.role == Role::RuntimeInit)
        );
    }

    #[test]
    fn ctr_run_is_its_client_containerd_and_the_shim_in_its_namespace() {
        let t = &only_timeline(CTR_RUN);
        assert!(t.complete);
        assert_eq!(t.id, "c5", "ctr's container is named by its user");
        assert_eq!(t.exit_code, Some(4));
        assert_eq!(
            (t.engine, t.runtime.as_deref()),
            (Some(Engine::Containerd), Some("runc"))
        );
        let client = t.chain.iter().find(|l| l.role == Role::Client).unwrap();
        assert_eq!(client.argv[0], "ctr");
        assert_eq!(client.exit_code, Some(4));
        // containerd itself, by the task directory it names.
        assert!(t.steps.iter().any(|s| s.role == Role::Containerd));
        let phases: Vec<Phase> = t.phases.iter().map(|p| p.phase).collect();
        assert_eq!(phases, Phase::ALL);
    }

    /// The pid of the client container `id`'s chain has so far.
    fn client_of(b: &Builder, id: &str) -> Option<u32> {
        b.live_container(id)?
            .chain
            .iter()
            .find(|l| l.role == Role::Client)
            .map(|l| l.pid)
    }

    /// A successful exec of `argv` by process `tgid` (pid `nspid` inside).
    fn exec_event(tgid: u32, ptgid: u32, nspid: u32, argv: &[&str], at: u64) -> Event {
        Event {
            v: 1,
            ktime_ns: at,
            time: String::new(),
            task: Some(crate::event::Task {
                tgid,
                tid: tgid,
                ptgid,
                nspid,
                comm: argv[0].rsplit('/').next().unwrap().into(),
                start_ns: at,
                cgroup_id: 1,
                pidns: 1,
                mntns: 1,
            }),
            body: Body::Exec {
                filename: argv[0].to_string(),
                argv: argv.iter().map(|a| a.to_string()).collect(),
                argv_truncated: false,
                old_tid: None,
                ret: 0,
                errno: None,
            },
        }
    }

    #[test]
    fn a_runtime_known_only_by_its_name_is_not_counted_unattributed() {
        // inspector-runtime's exe-keeper, started before the trace, exits in
        // it: nothing of it was seen but its command name.
        let mut b = Builder::new();
        b.push(Event {
            body: Body::Exit {
                exit_code: Some(0),
                signal: None,
                core_dumped: false,
                status: 0,
            },
            ..exec_event(50, 1, 50, &["inspector-runti"], 10)
        });
        assert_eq!(b.stats().unattributed, 0);
        // One that exec'd in the trace and names no container still is.
        b.push(exec_event(
            51,
            1,
            51,
            &["runc", "--root", "/r", "create", "--bundle"],
            11,
        ));
        assert_eq!(b.stats().unattributed, 1);
    }

    #[test]
    fn docker_clis_started_at_once_are_told_apart_by_the_command_they_typed() {
        let mut b = Builder::new();
        let cli = |tgid, code: &str, at| {
            exec_event(
                tgid,
                1,
                tgid,
                &["docker", "run", "--rm", "img", "sh", "-c", code],
                at,
            )
        };
        b.push(cli(10, "exit 1", 1));
        b.push(cli(11, "exit 2", 2));
        // Two shims start while both wait: neither client can be told yet.
        for (tgid, id, at) in [(20, "a", 3), (21, "b", 4)] {
            b.push(exec_event(
                tgid,
                5,
                tgid,
                &[
                    "containerd-shim-runc-v2",
                    "-namespace",
                    "moby",
                    "-id",
                    id,
                    "start",
                ],
                at,
            ));
        }
        // Each runtime's init executes the command its client typed.
        for (runtime, init, id, code, at) in
            [(30, 31, "b", "exit 2", 5), (40, 41, "a", "exit 1", 7)]
        {
            b.push(exec_event(
                runtime,
                20,
                runtime,
                &["runc", "create", id],
                at,
            ));
            b.push(Event {
                body: Body::Fork {
                    child_tgid: init,
                    child_tid: init,
                    // The exec below is its first event: it dates it.
                    child_start_ns: at + 1,
                    thread: false,
                    flags: None,
                    flags_raw: None,
                },
                ..exec_event(runtime, 20, runtime, &["runc"], at)
            });
            b.push(exec_event(init, runtime, 1, &["sh", "-c", code], at + 1));
        }
        assert_eq!(
            (client_of(&b, "a"), client_of(&b, "b")),
            (Some(10), Some(11))
        );
    }

    #[test]
    fn of_clients_waiting_the_one_whose_command_names_the_container_gets_it() {
        // Two `ctr run`s at once: each shim's container goes to the ctr
        // that named it, whichever started first.
        let mut b = Builder::new();
        let exec = |tgid, ptgid, argv: &[&str], at| exec_event(tgid, ptgid, tgid, argv, at);
        b.push(exec(
            10,
            1,
            &["/usr/bin/ctr", "-n", "k8s.io", "run", "img", "a"],
            1,
        ));
        b.push(exec(
            11,
            1,
            &["/usr/bin/ctr", "-n", "k8s.io", "run", "img", "b"],
            2,
        ));
        let shim = |tgid, id: &str, at| {
            exec(
                tgid,
                5,
                &[
                    "/usr/bin/containerd-shim-runc-v2",
                    "-namespace",
                    "k8s.io",
                    "-id",
                    id,
                    "start",
                ],
                at,
            )
        };
        b.push(shim(20, "b", 3));
        b.push(shim(21, "a", 4));
        assert_eq!(client_of(&b, "a"), Some(10));
        assert_eq!(client_of(&b, "b"), Some(11));
    }

    #[test]
    fn the_runtimes_own_long_lived_helper_is_part_of_no_container() {
        // inspector-runtime's first `create` after a build starts its
        // exe-keeper, which outlives every container: it must not keep this
        // one's timeline open.
        let mut lines: Vec<String> = RUNC_RUN.lines().map(String::from).collect();
        let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        let (t, start) = (
            first["ktime_ns"].as_u64().unwrap(),
            first["start_ns"].as_u64().unwrap(),
        );
        let header = |tgid: u32, ptgid: u32, comm: &str, at: u64, started: u64| {
            format!(
                r#""v":1,"ktime_ns":{at},"time":"","tgid":{tgid},"tid":{tgid},"ptgid":{ptgid},"nspid":{tgid},"comm":"{comm}","start_ns":{started},"cgroup_id":1,"pidns":1,"mntns":1"#
            )
        };
        let fork = format!(
            r#"{{{},"kind":"fork","child_tgid":99999,"child_tid":99999,"child_start_ns":{},"thread":false}}"#,
            header(29554, 29496, "runc", t + 1, start),
            t + 1
        );
        let exec = format!(
            r#"{{{},"kind":"exec","filename":"/proc/self/fd/5","argv":["inspector-runtime","exe-keeper"],"argv_truncated":false,"ret":0}}"#,
            header(99999, 29554, "5", t + 2, t + 1)
        );
        lines.insert(1, fork);
        lines.insert(2, exec);
        let (timelines, _) = build(&(lines.join("\n") + "\n"));
        assert_eq!(timelines.len(), 1);
        assert!(timelines[0].complete);
        assert_eq!(timelines[0].exit_code, Some(3));
    }

    #[test]
    fn a_recording_cut_anywhere_gives_incomplete_timelines_not_a_crash() {
        let lines: Vec<&str> = DOCKER_RUN.lines().collect();
        for cut in (0..lines.len()).step_by(7) {
            let text = lines[..cut].join("\n") + "\n";
            let (timelines, _) = build(&text);
            for t in &timelines {
                assert!(t.duration_ns < 10_000_000_000);
            }
            if cut < lines.len() / 2 && !timelines.is_empty() {
                assert!(timelines.iter().all(|t| !t.complete), "cut at {cut}");
            }
        }
    }

    #[test]
    fn a_reused_pid_is_a_new_process() {
        let mut lines: Vec<String> = RUNC_RUN.lines().map(String::from).collect();
        // The same recording twice, the second time 10 s later: same pids, new
        // start times, a new container name.
        let again: Vec<String> = lines
            .iter()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                for key in ["ktime_ns", "start_ns", "child_start_ns"] {
                    if let Some(n) = v[key].as_u64() {
                        v[key] = (n + 10_000_000_000).into();
                    }
                }
                serde_json::to_string(&v)
                    .unwrap()
                    .replace("fixture-ctr", "fixture-two")
            })
            .collect();
        lines.extend(again);
        let (timelines, stats) = build(&(lines.join("\n") + "\n"));
        let ids: Vec<&str> = timelines.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["fixture-ctr", "fixture-two"]);
        assert!(
            timelines
                .iter()
                .all(|t| t.complete && t.exit_code == Some(3))
        );
        assert_eq!(timelines[0].events, timelines[1].events);
        assert_eq!(stats.unattributed, 0);
    }

    /// `RUNC_RUN` with its first event dated `time` and moved `shift_ns`
    /// later: the events after it are earlier than the one that dates them.
    fn dated_first(time: &str, shift_ns: i64) -> String {
        let mut lines: Vec<String> = RUNC_RUN.lines().map(String::from).collect();
        let mut first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        first["time"] = time.into();
        first["ktime_ns"] = (first["ktime_ns"].as_u64().unwrap() as i64 + shift_ns).into();
        lines[0] = serde_json::to_string(&first).unwrap();
        lines.join("\n") + "\n"
    }

    #[test]
    fn a_wall_clock_before_1970_or_after_9999_is_unknown_not_a_panic() {
        for (time, shift) in [
            ("1970-01-01T00:00:01Z", 5_000_000_000),
            ("9999-12-31T23:59:59.999Z", -5_000_000_000),
            ("0000-01-01T00:00:00Z", 0),
        ] {
            let (timelines, _) = build(&dated_first(time, shift));
            assert_eq!(timelines.len(), 1, "{time}");
            let t = &timelines[0];
            assert!(
                t.start_time.is_empty() || t.start_time == time.replace(".999Z", ".999000000Z"),
                "{time}: {}",
                t.start_time
            );
            assert!(render::text(t, true).contains("container fixture-ctr"));
        }
        let t = build(&dated_first("1970-01-01T00:00:01Z", 5_000_000_000)).0;
        assert_eq!(t[0].start_time, "");
        assert!(render::text(&t[0], false).contains("started at an unknown time"));
        // In range, times are exact.
        let at = 5_000_000_000;
        let wall = |k| {
            wall_clock(at, "1970-01-01T00:00:01Z", k)
                .map(|t| humantime::format_rfc3339_nanos(t).to_string())
        };
        assert_eq!(
            wall(at - 1_000_000_000).unwrap(),
            "1970-01-01T00:00:00.000000000Z"
        );
        assert_eq!(wall(at - 1_000_000_001), None);
        assert!(wall(u64::MAX).unwrap().starts_with("2554-"));
        assert_eq!(wall_clock(0, "9999-06-01T00:00:00Z", u64::MAX), None);
        assert_eq!(wall_clock(0, "9999-12-31T23:59:59.999999999Z", 1), None);
        assert_eq!(wall_clock(0, "not a time", 1), None);
    }

    #[test]
    fn an_always_on_builder_keeps_at_most_its_limits_and_hands_out_what_it_lost_track_of() {
        // Every step and process kept by default; at most the limits else.
        let limits = Limits {
            steps: 10,
            chain: 3,
        };
        let mut b = Builder::with_limits(limits);
        let mut events = Vec::new();
        for_each_event(DOCKER_RUN.as_bytes(), |e| events.push(e)).unwrap();
        let cut = events.len() / 2;
        let last = events[..cut].iter().map(|e| e.ktime_ns).max().unwrap();
        for e in events.iter().take(cut).cloned() {
            b.push(e);
        }
        assert_eq!(b.sizes().0, 1, "one container in progress");
        // Its processes are gone without an exit seen (lost), and nothing
        // is heard of it for the idle time: handed out, incomplete.
        b.expire(last + 2_000, 1_000, |_| false);
        assert_eq!(b.sizes(), (0, 0));
        let t: Vec<_> = b.take_finished().collect();
        assert_eq!(t.len(), 1);
        assert!(!t[0].complete);
        assert!(t[0].steps.len() <= limits.steps, "{}", t[0].steps.len());
        assert!(t[0].chain.len() <= limits.chain, "{}", t[0].chain.len());
        // Its stragglers are late, not a container of their own.
        for e in events.into_iter().skip(cut) {
            b.push(e);
        }
        b.tick(u64::MAX);
        assert!(b.stats().late > 0);
        assert_eq!(b.take_finished().count(), 0, "a straggler made a container");
    }

    #[test]
    fn a_loss_makes_incomplete_only_the_containers_it_could_have_touched() {
        let lost = |t: u64| {
            format!(r#"{{"v":1,"ktime_ns":{t},"time":"","kind":"lost","count":1,"total":1}}"#)
        };
        // A loss reported long before the container began leaves it whole.
        let (timelines, stats) = build(&format!("{}\n{DOCKER_RUN}", lost(1)));
        assert_eq!(stats.lost, 1);
        assert!(timelines[0].complete);
    }

    #[test]
    fn lost_counts_add_up_without_wrapping() {
        let lost = |count: u64| {
            format!(
                r#"{{"v":1,"ktime_ns":1,"time":"","kind":"lost","count":{count},"total":{count}}}"#
            )
        };
        let text = format!("{RUNC_RUN}{}\n{}\n", lost(u64::MAX), lost(1));
        let (timelines, stats) = build(&text);
        assert_eq!(stats.lost, u64::MAX);
        assert!(!timelines[0].complete, "events were lost");
    }

    #[test]
    fn json_and_perfetto_views_are_well_formed() {
        let (mut timelines, _) = build(DOCKER_RUN);
        timelines[0].fill_details();
        let json = serde_json::to_string(&timelines[0]).unwrap();
        let back: ContainerTimeline = serde_json::from_str(&json).unwrap();
        assert_eq!(back, timelines[0]);
        let doc = perfetto::document(&timelines);
        let events = doc["traceEvents"].as_array().unwrap();
        for phase in Phase::ALL {
            assert!(
                events
                    .iter()
                    .any(|e| e["ph"] == "X" && e["name"] == phase.name()),
                "no slice for {phase:?}"
            );
        }
        assert!(
            events
                .iter()
                .any(|e| e["ph"] == "i" && e["name"] == "pivot_root")
        );
        assert!(events.iter().any(|e| {
            e["ph"] == "M"
                && e["args"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("· entrypoint"))
        }));
    }
}
