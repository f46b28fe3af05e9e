//! Golden syscall sequences for CI: what a container's start and stop looks
//! like from the kernel, normalized so that two runs of the same thing read
//! the same, and compared so that a change reads as a short diff.
//!
//! A golden has one section per container (in the order they started) and
//! one for the engine's own work that names no container; in each, one
//! sequence per role (docker CLI, shim, runtime, runtime init, entrypoint…)
//! in the order that role acted. See docs/golden.md for the format.

pub mod compare;
pub mod format;
pub mod junit;
pub mod normalize;
pub mod session;

use std::collections::{HashMap, HashSet};

use crate::{
    event::{Body, Event},
    timeline::{
        Builder, ChainLink, Role,
        reader::{self, ReadError, ReadSummary},
        role,
        timing::Timing,
    },
};

/// One expected event, or a group of them whose order may vary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Item {
    Line(Line),
    /// Events that happen in any order (a runtime iterating a map, threads
    /// racing), each once.
    Unordered(Vec<Line>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// Present in some runs and not in others: not a difference either way.
    pub optional: bool,
    /// One-time engine set-up (see [`one_time_set_up`]): done on the first
    /// container after the engine started, never on the next. Not compared,
    /// on either side, but shown as such.
    pub once: bool,
}

impl Line {
    pub fn new(text: impl Into<String>) -> Self {
        Line {
            text: text.into(),
            optional: false,
            once: false,
        }
    }
}

/// What one role did, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSequence {
    pub role: String,
    pub items: Vec<Item>,
}

impl RoleSequence {
    /// Every line, groups opened, in order.
    pub fn lines(&self) -> impl Iterator<Item = &Line> {
        self.items.iter().flat_map(|item| match item {
            Item::Line(l) => std::slice::from_ref(l).iter(),
            Item::Unordered(ls) => ls.iter(),
        })
    }
}

/// A container's roles, or the engine's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// `container 1`, `container 2`, …, or [`ENGINE`].
    pub name: String,
    /// The engine and runtime that made the container, `podman, runc`
    /// ([`made_by`]): compared, so that a golden recorded under one engine
    /// or runtime does not pass under another unremarked. Goldens written
    /// before it was kept have none.
    pub made_by: Option<String>,
    pub roles: Vec<RoleSequence>,
}

/// What a section's header says made its container: `podman, runc`,
/// `runc, no engine`, as the text view says it.
pub fn made_by(t: &crate::timeline::ContainerTimeline) -> Option<String> {
    let text = crate::timeline::present::made_by(t.engine, t.runtime.as_deref());
    text.strip_prefix(" (")
        .and_then(|t| t.strip_suffix(')'))
        .map(str::to_string)
}

/// The section of the engine's events that name no container.
pub const ENGINE: &str = "engine";

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Golden {
    /// What was run, for the reader.
    pub command: Option<String>,
    pub sections: Vec<Section>,
    /// How long the containers took, the median of the runs recorded
    /// (`inspector check --max-slowdown` compares the start latency).
    /// Goldens written before times were kept have none.
    pub times: Option<Times>,
}

/// The median times of the runs a golden was made of, per container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Times {
    pub runs: u32,
    /// By section name (`container 1`…).
    pub containers: Vec<(String, Timing)>,
}

impl Times {
    /// The median of several runs' times, container by container (the
    /// first run's containers name the sections).
    pub fn median(runs: &[&Times]) -> Times {
        let Some(first) = runs.first() else {
            return Times::default();
        };
        Times {
            runs: runs.iter().map(|t| t.runs).sum(),
            containers: first
                .containers
                .iter()
                .map(|(name, _)| {
                    let of: Vec<Timing> = runs
                        .iter()
                        .filter_map(|t| t.containers.iter().find(|(n, _)| n == name))
                        .map(|(_, timing)| timing.clone())
                        .collect();
                    (name.clone(), Timing::median(&of).rounded())
                })
                .collect(),
        }
    }

    pub fn of(&self, section: &str) -> Option<&Timing> {
        self.containers
            .iter()
            .find(|(n, _)| n == section)
            .map(|(_, t)| t)
    }
}

impl Golden {
    /// Number of expected lines.
    pub fn len(&self) -> usize {
        self.sections
            .iter()
            .flat_map(|s| &s.roles)
            .map(|r| r.lines().count())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Only the roles named (all when `roles` is empty).
    pub fn keep_roles(&mut self, roles: &[String]) {
        if roles.is_empty() {
            return;
        }
        for s in &mut self.sections {
            s.roles.retain(|r| roles.iter().any(|want| want == &r.role));
        }
        self.sections.retain(|s| !s.roles.is_empty());
    }
}

/// Builds the golden of a recording read from `input` (what `inspector diff`
/// compares when given one), with what reading it found: its warnings are
/// the caller's to show, as `inspector timeline` shows them.
pub fn from_recording(input: impl std::io::Read) -> Result<(Golden, ReadSummary), ReadError> {
    let mut events = Vec::new();
    let summary = reader::for_each_event(input, |e| events.push(e))?;
    Ok((from_events(&events, None), summary))
}

/// Builds the golden of a recording: the containers' timelines, normalized,
/// and the engine's unattributed work while they lived.
pub fn from_events(events: &[Event], command: Option<String>) -> Golden {
    let mut builder = Builder::new();
    for e in events {
        builder.push(e.clone());
    }
    let mut timelines = builder.finish();
    timelines.sort_by_key(|t| t.start_ns);

    let mut golden = Golden {
        command,
        sections: Vec::new(),
        times: None,
    };
    let mut times = Times {
        runs: 1,
        containers: Vec::new(),
    };
    let ids: Vec<&str> = timelines.iter().map(|t| t.id.as_str()).collect();
    let once = one_time_set_up(events, &ids);
    let mut attributed = HashSet::new();
    let (mut first, mut last) = (u64::MAX, 0);
    for (n, t) in timelines.iter().enumerate() {
        let mut section = Section {
            name: format!("container {}", n + 1),
            made_by: made_by(t),
            roles: Vec::new(),
        };
        for step in &t.steps {
            attributed.insert((step.ktime_ns, step.tid));
            // Words are compared through the failure they explain: their
            // text has times and ids in it, and a client pulling an image
            // writes progress.
            if step.kind == "message" || interrupted(&step.detail()) {
                continue;
            }
            let link = t
                .chain
                .iter()
                .find(|l| l.pid == step.pid && l.role == step.role);
            push_line(
                &mut section,
                step.role,
                role_label(step.role, link),
                normalize::line(&step.detail(), &t.id),
                once.contains(&(step.ktime_ns, step.tid)),
            );
        }
        if let Some(f) = &t.failure {
            push_line(
                &mut section,
                f.role,
                FAILURE.to_string(),
                failure_line(f),
                false,
            );
        }
        first = first.min(t.start_ns);
        last = last.max(t.end_ns);
        times
            .containers
            .push((section.name.clone(), Timing::of(t).rounded()));
        golden.sections.push(section);
    }

    // The engine works for a container in ways that do not name it (its
    // network set-up enters namespaces by inode): kept as its own section,
    // in any order, since the engine's threads race.
    let mut engine = Section {
        name: ENGINE.to_string(),
        made_by: None,
        roles: Vec::new(),
    };
    for e in events {
        let Some(task) = &e.task else { continue };
        if e.ktime_ns < first
            || e.ktime_ns > last
            || attributed.contains(&(e.ktime_ns, task.tid))
            || matches!(e.body, Body::Fork { thread: true, .. })
        {
            continue;
        }
        let role = role::role_of_comm(&task.comm);
        if !matches!(role, Role::Dockerd | Role::Containerd) {
            continue;
        }
        let text = crate::output::describe(&e.body);
        if interrupted(&text) {
            continue;
        }
        push_line(
            &mut engine,
            role,
            role.name().to_string(),
            normalize::line(&text, ""),
            once.contains(&(e.ktime_ns, task.tid)),
        );
    }
    for r in &mut engine.roles {
        let lines = r
            .items
            .drain(..)
            .filter_map(|i| match i {
                Item::Line(l) => Some(l),
                Item::Unordered(_) => None,
            })
            .collect::<Vec<_>>();
        r.items = vec![Item::Unordered(lines)];
    }
    if !engine.roles.is_empty() {
        golden.sections.push(engine);
    }
    if !times.containers.is_empty() {
        golden.times = Some(times);
    }
    for s in &mut golden.sections {
        for r in &mut s.roles {
            group_unordered_runs(r);
        }
    }
    golden
}

/// The engine's one-time set-up in a recording, as (ktime, tid) of its
/// events: the parent cgroups a runtime makes for the first container after
/// the engine started (`/docker` in every hierarchy, for dockerd's cgroupfs
/// driver), and what it writes into them right after (on cgroup v1, runc
/// copies `cpuset.cpus` and `cpuset.mems` into a new parent). A warm engine
/// finds the parents there and does neither, so a golden recorded on one
/// engine must not fail on the other.
///
/// A parent is a cgroup made in the recording inside which a later cgroup of
/// the same hierarchy is made, and whose path names no container: a
/// container's own cgroup is never one, even with sub-cgroups of its own.
/// The kernel reports a mkdir only when it made the directory (not on
/// EEXIST), so a parent found was made by this run. Writes count only into a
/// parent made earlier in the recording: a write into a parent that already
/// existed (cgroup2's `cgroup.subtree_control`, written on every run) is
/// compared as usual.
pub fn one_time_set_up(events: &[Event], container_ids: &[&str]) -> HashSet<(u64, u32)> {
    let mkdirs = || {
        events.iter().filter_map(|e| match (&e.task, &e.body) {
            (Some(task), Body::CgroupMkdir(c)) => {
                Some((c.hierarchy.as_str(), c.path.as_str(), e.ktime_ns, task.tid))
            }
            _ => None,
        })
    };
    // (hierarchy, cgroup) → when the last cgroup inside it was made.
    let mut last_inside: HashMap<(&str, &str), u64> = HashMap::new();
    for (hierarchy, path, ktime_ns, _) in mkdirs() {
        let mut p = path.trim_end_matches('/');
        while let Some((up, _)) = p.rsplit_once('/') {
            let at = last_inside.entry((hierarchy, up)).or_default();
            *at = (*at).max(ktime_ns);
            p = up;
        }
    }
    let names_a_container = |path: &str| {
        container_ids
            .iter()
            .any(|id| !id.is_empty() && path.contains(id))
    };
    let mut once = HashSet::new();
    // (hierarchy, parent) → when it was made.
    let mut parents: HashMap<(&str, &str), u64> = HashMap::new();
    for (hierarchy, path, ktime_ns, tid) in mkdirs() {
        let path = path.trim_end_matches('/');
        if !names_a_container(path)
            && last_inside
                .get(&(hierarchy, path))
                .is_some_and(|&t| t > ktime_ns)
        {
            once.insert((ktime_ns, tid));
            parents.entry((hierarchy, path)).or_insert(ktime_ns);
        }
    }
    if parents.is_empty() {
        return once;
    }
    for e in events {
        let (
            Some(task),
            Body::CgroupWrite {
                file, hierarchy, ..
            },
        ) = (&e.task, &e.body)
        else {
            continue;
        };
        let Some((dir, _)) = file.rsplit_once('/') else {
            continue;
        };
        if parents
            .get(&(hierarchy.as_str(), dir))
            .is_some_and(|&made| made < e.ktime_ns)
        {
            once.insert((e.ktime_ns, task.tid));
        }
    }
    once
}

/// The sequence a failed container's failure is compared as.
pub const FAILURE: &str = "failure";

/// A failure as a golden compares it: who, when, and the kernel's reason,
/// without pids or words (see [`crate::timeline::Failure`]).
fn failure_line(f: &crate::timeline::Failure) -> String {
    use crate::escape::bare;
    let mut line = f.role.name().to_string();
    match &f.killed_by {
        Some(cause) => {
            line += &format!(" killed by {}", bare(cause));
            if let Some(call) = &f.syscall {
                line += &format!(" at {}", bare(call));
            }
        }
        None => line += " failed",
    }
    if let Some(phase) = f.phase {
        line += &format!(" during {}", phase.name());
    }
    if let (Some(call), Some(errno), None) = (&f.syscall, &f.errno, &f.killed_by) {
        line += &format!(": {} {}", bare(call), bare(errno));
    }
    match crate::timeline::present::exit_text(f.exit_code, f.signal.as_deref()) {
        Some(exit) => line + &format!(" → {exit}"),
        None => line,
    }
}

/// The name of a role's sequence. Each invocation of the runtime and of the
/// shim's `delete` is a sequence of its own: they run one after the other,
/// but the long-lived shim's events would race theirs in a shared one.
fn role_label(role: Role, link: Option<&ChainLink>) -> String {
    let base = role.name();
    let Some(link) = link else {
        return base.to_string();
    };
    match role {
        // The verb is a traced process's argument: escaped like its events.
        Role::Runtime => match role::runtime_command(&link.argv) {
            Some((verb, _)) => format!("{base} {}", crate::escape::bare(&verb)),
            None => base.to_string(),
        },
        Role::Shim if link.argv.last().is_some_and(|a| a == "delete") => {
            format!("{base} delete")
        }
        _ => base.to_string(),
    }
}

/// Appends to the sequence named `label`; sequences are kept in the order of
/// the chain (docker CLI … entrypoint), then of their first event.
/// A call a signal cut short (`= -1 EINTR`, or a restart the kernel hides):
/// it comes and goes with timing, and the retry that follows is recorded.
fn interrupted(text: &str) -> bool {
    let Some(at) = text.rfind(" = -1 ") else {
        return false;
    };
    let errno = text[at + 6..].split_whitespace().next().unwrap_or("");
    crate::names::is_interrupted(errno)
}

fn push_line(section: &mut Section, role: Role, label: String, text: String, once: bool) {
    let seq = match section.roles.iter().position(|r| r.role == label) {
        Some(i) => &mut section.roles[i],
        None => {
            let at = section
                .roles
                .iter()
                .position(|r| rank(&r.role) > role)
                .unwrap_or(section.roles.len());
            section.roles.insert(
                at,
                RoleSequence {
                    role: label,
                    items: Vec::new(),
                },
            );
            &mut section.roles[at]
        }
    };
    seq.items.push(Item::Line(Line {
        once,
        ..Line::new(text)
    }));
}

/// The role a sequence's label names (its first words).
fn rank(label: &str) -> Role {
    Role::ALL
        .iter()
        .copied()
        .filter(|r| label.starts_with(r.name()))
        .max_by_key(|r| r.name().len())
        .unwrap_or(Role::Other)
}

/// Lines that come in an order of their own, and which run of them a line
/// belongs to: a runtime's cgroup removals (one per hierarchy, from a map);
/// podman moving conmon into each v1 hierarchy through its `tasks` file (a
/// Go map too); the runtime's init bind-mounting podman's files for the
/// container (`hosts`, `hostname`, `.containerenv`, `shm`), which podman
/// lists in its config in an order of its own.
fn unordered(l: &Line) -> Option<u8> {
    let t = &l.text;
    if t.starts_with("cgroup rmdir ") {
        Some(0)
    } else if t.starts_with("cgroup attach thread ")
        || (t.starts_with("cgroup write ") && t.contains("/tasks \""))
    {
        Some(1)
    } else if t.starts_with("mount(\"") && t.contains("/overlay-containers/<id>/userdata/") {
        Some(2)
    } else {
        None
    }
}

/// A line that joins a run of [`unordered`] lines of `kind` without
/// starting one: the propagation change after each of podman's bind
/// mounts, and the remount that makes one read-only or `nosuid`.
fn follows(kind: u8, l: &Line) -> bool {
    kind == 2 && l.text.starts_with("mount(NULL, ")
}

/// Runs of consecutive lines of one [`unordered`] kind, and the lines that
/// [`follows`] them, as groups.
fn group_unordered_runs(r: &mut RoleSequence) {
    // A group's kind: its first line's (followers never open one).
    fn kind_of(group: &[Line]) -> Option<u8> {
        group.first().and_then(unordered)
    }
    let mut out: Vec<Item> = Vec::new();
    for item in r.items.drain(..) {
        match item {
            Item::Line(l) if let Some(kind) = unordered(&l) => match out.last_mut() {
                Some(Item::Unordered(group)) if kind_of(group) == Some(kind) => group.push(l),
                _ => out.push(Item::Unordered(vec![l])),
            },
            Item::Line(l) => match out.last_mut() {
                Some(Item::Unordered(group))
                    if kind_of(group).is_some_and(|kind| follows(kind, &l)) =>
                {
                    group.push(l)
                }
                _ => out.push(Item::Line(l)),
            },
            other => out.push(other),
        }
    }
    // A group of one is just a line (no follower can open one).
    for item in &mut out {
        if let Item::Unordered(group) = item
            && group.len() == 1
        {
            *item = Item::Line(group.pop().expect("one"));
        }
    }
    r.items = out;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::reader::for_each_event;

    const DOCKER_RUN: &str = include_str!("../../tests/fixtures/docker-run-rm-true.jsonl");
    const RUNC_RUN: &str = include_str!("../../tests/fixtures/runc-run-exit-3.jsonl");
    /// The first `docker run --rm IMAGE true` after dockerd started with no
    /// /docker cgroups (hybrid cgroup v1): runc made the parents.
    const FRESH_DOCKER_RUN: &str =
        include_str!("../../tests/fixtures/docker-run-rm-true-fresh-engine.jsonl");
    const FAILURES: &str = include_str!("../../tests/fixtures/failures.jsonl");
    /// The repository's golden, recorded on a warm engine.
    const WARM_GOLDEN: &str = include_str!("../../../tests/goldens/docker-run-rm-true.golden");

    fn events(jsonl: &str) -> Vec<Event> {
        let mut v = Vec::new();
        for_each_event(jsonl.as_bytes(), |e| v.push(e)).unwrap();
        v
    }

    #[test]
    fn a_docker_run_reads_as_roles_without_pids_or_ids() {
        let g = from_events(&events(DOCKER_RUN), None);
        assert_eq!(g.sections[0].name, "container 1");
        let roles: Vec<&str> = g.sections[0]
            .roles
            .iter()
            .map(|r| r.role.as_str())
            .collect();
        for want in [
            "client",
            "shim (start)",
            "shim",
            "runtime",
            "runtime re-exec",
            "runtime init",
            "entrypoint",
            "hook",
        ] {
            assert!(roles.contains(&want), "{want} missing from {roles:?}");
        }
        let text = format::render(&g);
        assert!(!text.contains("d2a6a5930af6"), "{text}");
        assert!(!text.contains("29130"), "{text}");
        assert!(
            text.contains("execve(\"/bin/true\", [\"true\"]) = 0"),
            "{text}"
        );
        assert!(text.contains("unordered {"), "{text}");
        // The same recording twice is the same golden.
        assert_eq!(from_events(&events(DOCKER_RUN), None), g);
    }

    #[test]
    fn runc_run_has_no_docker_roles() {
        let g = from_events(&events(RUNC_RUN), None);
        let roles: Vec<&str> = g.sections[0]
            .roles
            .iter()
            .map(|r| r.role.as_str())
            .collect();
        assert!(
            !roles.contains(&"client") && !roles.contains(&"shim"),
            "{roles:?}"
        );
        assert!(roles.contains(&"entrypoint"), "{roles:?}");
    }

    #[test]
    fn interrupted_calls_are_left_out() {
        assert!(interrupted(
            "clone(CLONE_VM|CLONE_VFORK) = -1 EINTR <0.002ms>"
        ));
        assert!(interrupted("clone(CLONE_VM) = -1 ERESTARTNOINTR"));
        assert!(!interrupted(
            "mount(\"/dev/null\", \"/proc/kcore\", NULL, MS_BIND) = -1 ENOENT"
        ));
        assert!(!interrupted("execve(\"/bin/true\", [\"true\"]) = 0"));
    }

    /// Every one-time line of a golden, as `role: text`.
    fn one_time_lines(g: &Golden) -> Vec<String> {
        g.sections
            .iter()
            .flat_map(|s| &s.roles)
            .flat_map(|r| {
                r.lines()
                    .filter(|l| l.once)
                    .map(|l| format!("{}: {}", r.role, l.text))
            })
            .collect()
    }

    #[test]
    fn the_engines_parent_cgroups_made_on_its_first_container_are_one_time_set_up() {
        let fresh = from_events(&events(FRESH_DOCKER_RUN), None);
        let once = one_time_lines(&fresh);
        let mut want = vec![
            "runtime create: cgroup mkdir cpuset:/docker".to_string(),
            "runtime create: cgroup write cpuset:/docker/cpuset.cpus \"0-1\"".to_string(),
            "runtime create: cgroup write cpuset:/docker/cpuset.mems \"0\"".to_string(),
        ];
        for h in [
            "devices",
            "memory",
            "cpu",
            "cpuacct",
            "pids",
            "blkio",
            "freezer",
            "name=systemd",
            "cgroup2",
        ] {
            want.push(format!("runtime create: cgroup mkdir {h}:/docker"));
        }
        assert_eq!(once, want);
        // The container's own cgroups, and what is written into them, are
        // compared as ever.
        let text = format::render(&fresh);
        assert!(
            text.contains("\n    cgroup mkdir cpuset:/docker/<id>\n"),
            "{text}"
        );
        assert!(
            text.contains("\n    cgroup write cpuset:/docker/<id>/cpuset.cpus \"0-1\"\n"),
            "{text}"
        );
        // A warm run made nothing once.
        assert_eq!(
            one_time_lines(&from_events(&events(DOCKER_RUN), None)),
            Vec::<String>::new()
        );
    }

    #[test]
    fn a_golden_from_a_warm_engine_matches_the_first_run_on_a_fresh_one_and_back() {
        let warm = format::parse(WARM_GOLDEN).unwrap();
        let fresh = from_events(&events(FRESH_DOCKER_RUN), None);
        for (diffs, seen) in [
            (compare::compare(&warm, &fresh), compare::Side::Actual),
            (compare::compare(&fresh, &warm), compare::Side::Expected),
        ] {
            let text = compare::unified(&diffs, "a", "b", 3);
            assert_eq!(text, "", "{text}");
            let once: Vec<_> = diffs.iter().flat_map(|d| d.one_time()).collect();
            assert_eq!(once.len(), 12, "{once:?}");
            assert!(once.iter().all(|(side, _)| *side == seen), "{once:?}");
        }
        // A golden recorded on the fresh engine says so, and reads back the same.
        let text = format::render(&fresh);
        assert!(
            text.contains("\n    once cgroup mkdir cpuset:/docker\n"),
            "{text}"
        );
        assert_eq!(format::parse(&text).unwrap(), fresh);
    }

    #[test]
    fn a_change_on_the_first_run_of_a_fresh_engine_is_still_a_difference() {
        let mut warm = format::parse(WARM_GOLDEN).unwrap();
        let fresh = from_events(&events(FRESH_DOCKER_RUN), None);
        // The golden expects a pids limit this run did not set.
        let create = warm.sections[0]
            .roles
            .iter_mut()
            .find(|r| r.role == "runtime create")
            .unwrap();
        create.items.insert(
            5,
            Item::Line(Line::new("cgroup write pids:/docker/<id>/pids.max \"10\"")),
        );
        let diffs = compare::compare(&warm, &fresh);
        let text = compare::unified(&diffs, "golden", "run", 3);
        let changed: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("- ") || l.starts_with("+ "))
            .collect();
        assert_eq!(
            changed,
            ["- cgroup write pids:/docker/<id>/pids.max \"10\""],
            "{text}"
        );
    }

    #[test]
    fn a_parent_cgroup_that_names_the_container_or_holds_nothing_new_is_compared() {
        use crate::event::{CgroupChange, Task};
        let event = |ktime_ns: u64, body: Body| Event {
            v: 1,
            ktime_ns,
            time: String::new(),
            task: Some(Task {
                tgid: 7,
                tid: 7,
                ptgid: 1,
                nspid: 7,
                comm: "runc".into(),
                start_ns: 0,
                cgroup_id: 1,
                pidns: 1,
                mntns: 1,
            }),
            body,
        };
        let mkdir = |ktime_ns, path: &str| {
            event(
                ktime_ns,
                Body::CgroupMkdir(CgroupChange {
                    hierarchy_id: 1,
                    hierarchy: "cgroup2".into(),
                    path: path.into(),
                    level: 1,
                    id: 1,
                }),
            )
        };
        let write = |ktime_ns, file: &str| {
            event(
                ktime_ns,
                Body::CgroupWrite {
                    file: file.into(),
                    hierarchy: "cgroup2".into(),
                    path: None,
                    cgroup_version: 2,
                    value: "+pids".into(),
                    value_truncated: false,
                    fd: 3,
                    result: None,
                },
            )
        };
        let events = [
            write(1, "/cgroup.subtree_control"),
            mkdir(2, "/docker"),
            write(3, "/docker/cgroup.subtree_control"),
            mkdir(4, "/docker/abc"),
            mkdir(5, "/docker/abc/init"),
            mkdir(6, "/lonely"),
        ];
        let once = one_time_set_up(&events, &["abc"]);
        let mut once: Vec<u64> = once.iter().map(|(k, _)| *k).collect();
        once.sort();
        // The root was there before; the container's own cgroup holds its
        // own sub-cgroup; /lonely holds nothing made later.
        assert_eq!(once, [2, 3]);
    }

    #[test]
    fn roles_can_be_kept_alone() {
        let mut g = from_events(&events(DOCKER_RUN), None);
        g.keep_roles(&["entrypoint".to_string()]);
        assert_eq!(g.sections.len(), 1);
        assert_eq!(g.sections[0].roles.len(), 1);
        assert_eq!(g.sections[0].roles[0].role, "entrypoint");
    }

    #[test]
    fn a_cut_recording_compares_as_what_it_holds_and_says_it_was_cut() {
        let cut = &RUNC_RUN[..RUNC_RUN.len() - 40];
        let (golden, summary) = from_recording(cut.as_bytes()).unwrap();
        assert!(!golden.is_empty());
        assert_eq!(summary.truncated_last_line, Some(RUNC_RUN.lines().count()));
        assert_eq!(summary.warnings().len(), 1);
        // The first event dated 1 s after the epoch and 5 s after the rest:
        // the rest would be dated before 1970. A golden, not a panic.
        let early = RUNC_RUN.replacen(
            r#""ktime_ns":3509055519099,"time":"2026-11-29T14:07:30.597553243Z""#,
            r#""ktime_ns":3514055519099,"time":"1970-01-01T00:00:01Z""#,
            1,
        );
        assert_ne!(early, RUNC_RUN);
        let (golden, summary) = from_recording(early.as_bytes()).unwrap();
        assert!(!golden.is_empty());
        assert!(summary.out_of_order > 0);
    }

    #[test]
    fn a_failed_start_is_compared_by_its_failure_and_not_by_its_words() {
        let mut events = Vec::new();
        for_each_event(FAILURES.as_bytes(), |e| events.push(e)).unwrap();
        let golden = from_events(&events, None);
        let failures: Vec<String> = golden
            .sections
            .iter()
            .flat_map(|s| &s.roles)
            .filter(|r| r.role == FAILURE)
            .flat_map(|r| r.lines().map(|l| l.text.clone()))
            .collect();
        for want in [
            "runtime init failed during start: execve ENOEXEC → exit 1",
            "runtime init failed during create: capset EPERM → exit 1",
            "client failed during request → exit 125",
            "hook failed during create → exit 1",
            "runtime init failed during start: prlimit64 EPERM → exit 127",
            "entrypoint child killed by oom during running → SIGKILL",
            "entrypoint killed by seccomp at getppid during running → SIGSYS",
        ] {
            assert!(
                failures.iter().any(|f| f == want),
                "{want} not in {failures:#?}"
            );
        }
        assert_eq!(failures.len(), 9, "{failures:#?}");
        let text = format::render(&golden);
        assert!(!text.contains("said"), "no message is a line of a golden");
        assert!(!text.contains("Error response"), "{text}");
        // Read back as written, and equal to a second reading of the run.
        assert_eq!(format::parse(&text).unwrap(), golden);
        let again = compare::compare(&golden, &from_events(&events, None));
        assert_eq!(compare::unified(&again, "a", "b", 3), "");
    }
}
