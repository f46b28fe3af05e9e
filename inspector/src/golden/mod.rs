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

use std::collections::HashSet;

use crate::{
    event::{Body, Event},
    timeline::{Builder, ChainLink, Role, role},
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
}

impl Line {
    pub fn new(text: impl Into<String>) -> Self {
        Line {
            text: text.into(),
            optional: false,
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
    pub roles: Vec<RoleSequence>,
}

/// The section of the engine's events that name no container.
pub const ENGINE: &str = "engine";

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Golden {
    /// What was run, for the reader.
    pub command: Option<String>,
    pub sections: Vec<Section>,
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
    };
    let mut attributed = HashSet::new();
    let (mut first, mut last) = (u64::MAX, 0);
    for (n, t) in timelines.iter().enumerate() {
        let mut section = Section {
            name: format!("container {}", n + 1),
            roles: Vec::new(),
        };
        for step in &t.steps {
            attributed.insert((step.ktime_ns, step.tid));
            if interrupted(&step.detail()) {
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
            );
        }
        first = first.min(t.start_ns);
        last = last.max(t.end_ns);
        golden.sections.push(section);
    }

    // The engine works for a container in ways that do not name it (its
    // network set-up enters namespaces by inode): kept as its own section,
    // in any order, since the engine's threads race.
    let mut engine = Section {
        name: ENGINE.to_string(),
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
    for s in &mut golden.sections {
        for r in &mut s.roles {
            group_unordered_runs(r);
        }
    }
    golden
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

fn push_line(section: &mut Section, role: Role, label: String, text: String) {
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
    seq.items.push(Item::Line(Line::new(text)));
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

/// Consecutive cgroup removals: runtimes remove a container's hierarchies
/// by walking a map, in a different order every run.
fn group_unordered_runs(r: &mut RoleSequence) {
    let unordered = |l: &Line| l.text.starts_with("cgroup rmdir ");
    let mut out: Vec<Item> = Vec::new();
    for item in r.items.drain(..) {
        match item {
            Item::Line(l) if unordered(&l) => match out.last_mut() {
                Some(Item::Unordered(group)) if group.iter().all(unordered) => group.push(l),
                _ => out.push(Item::Unordered(vec![l])),
            },
            other => out.push(other),
        }
    }
    // A group of one is just a line.
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
            "docker CLI",
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
            !roles.contains(&"docker CLI") && !roles.contains(&"shim"),
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

    #[test]
    fn roles_can_be_kept_alone() {
        let mut g = from_events(&events(DOCKER_RUN), None);
        g.keep_roles(&["entrypoint".to_string()]);
        assert_eq!(g.sections.len(), 1);
        assert_eq!(g.sections[0].roles.len(), 1);
        assert_eq!(g.sections[0].roles[0].role, "entrypoint");
    }
}
