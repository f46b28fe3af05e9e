//! Comparing a run with its golden, role by role, and showing the difference
//! as a unified diff. A golden may come from anyone's pull request: what the
//! diff prints goes through [`crate::escape::bare`] (a no-op on text inspector
//! wrote itself).
//!
//! Each role's events are aligned with the golden's by the smallest number of
//! events added or missing (an edit distance), where an optional event costs
//! nothing either way and an unordered group matches the events of a window
//! of the run as a multiset. One-time engine set-up ([`super::Line::once`]),
//! on either side, costs nothing either: it is listed apart from the diff
//! ([`one_time_note`]), so that a golden recorded on a warm engine matches the
//! first run on a fresh one, and the other way round.

use std::fmt::Write as _;

use super::{Golden, Item, Line, RoleSequence};
use crate::escape::bare;

/// One line of a role's alignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    Same(String),
    /// Expected and not seen.
    Missing(String),
    /// Seen and not expected.
    Extra(String),
    /// One-time engine set-up on one side only: not a difference.
    OneTime(Side, String),
}

/// Which side of a comparison a line was on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The golden (or the first of `diff`'s two).
    Expected,
    /// The run (or the second).
    Actual,
}

impl Op {
    /// A difference: expected and not seen, or seen and not expected.
    pub fn is_change(&self) -> bool {
        matches!(self, Op::Missing(_) | Op::Extra(_))
    }
}

/// The alignment of one role (in one section).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleDiff {
    pub section: String,
    pub role: String,
    pub ops: Vec<Op>,
}

impl RoleDiff {
    pub fn differs(&self) -> bool {
        self.ops.iter().any(Op::is_change)
    }

    /// One-time engine set-up that only one side had, with its side.
    pub fn one_time(&self) -> impl Iterator<Item = (Side, &str)> {
        self.ops.iter().filter_map(|op| match op {
            Op::OneTime(side, text) => Some((*side, text.as_str())),
            _ => None,
        })
    }
}

/// The pseudo-role under which two sections made by different engines or
/// runtimes say so.
pub const MADE_BY: &str = "made by";

/// Every role of either side, golden order first.
pub fn compare(expected: &Golden, actual: &Golden) -> Vec<RoleDiff> {
    let mut out = Vec::new();
    let empty = RoleSequence {
        role: String::new(),
        items: Vec::new(),
    };
    let mut section_names: Vec<&str> = expected.sections.iter().map(|s| s.name.as_str()).collect();
    for s in &actual.sections {
        if !section_names.contains(&s.name.as_str()) {
            section_names.push(&s.name);
        }
    }
    for name in section_names {
        let exp = expected.sections.iter().find(|s| s.name == name);
        let act = actual.sections.iter().find(|s| s.name == name);
        // Made by another engine or runtime: said first, as a difference.
        if let (Some(e), Some(a)) = (
            exp.and_then(|s| s.made_by.as_ref()),
            act.and_then(|s| s.made_by.as_ref()),
        ) && e != a
        {
            out.push(RoleDiff {
                section: name.to_string(),
                role: MADE_BY.to_string(),
                ops: vec![Op::Missing(e.clone()), Op::Extra(a.clone())],
            });
        }
        let mut roles: Vec<&str> = exp
            .iter()
            .flat_map(|s| &s.roles)
            .map(|r| r.role.as_str())
            .collect();
        for r in act.iter().flat_map(|s| &s.roles) {
            if !roles.contains(&r.role.as_str()) {
                roles.push(&r.role);
            }
        }
        for role in roles {
            fn find<'g>(s: Option<&'g super::Section>, role: &str) -> Option<&'g RoleSequence> {
                s.and_then(|s| s.roles.iter().find(|r| r.role == role))
            }
            let e = find(exp, role).unwrap_or(&empty);
            let a: Vec<&Line> = find(act, role)
                .map(|r| r.lines().collect())
                .unwrap_or_default();
            out.push(RoleDiff {
                section: name.to_string(),
                role: role.to_string(),
                ops: align(&e.items, &a),
            });
        }
    }
    out
}

/// The cheapest alignment of `items` (expected) with `actual`.
pub fn align(items: &[Item], actual: &[&Line]) -> Vec<Op> {
    let (p, a) = (items.len(), actual.len());
    const INF: u32 = u32::MAX / 2;
    // cost[i][j]: cheapest alignment of items[i..] with actual[j..].
    let mut cost = vec![vec![INF; a + 1]; p + 1];
    // How (i, j) was best left: 0 skip actual, 1 line matched / group
    // window, 2 item skipped; with the window length for groups.
    let mut how = vec![vec![(0u8, 0usize); a + 1]; p + 1];
    for i in (0..=p).rev() {
        for j in (0..=a).rev() {
            if i == p && j == a {
                cost[i][j] = 0;
                continue;
            }
            let mut best = (INF, (0u8, 0usize));
            if j < a {
                best = (cost[i][j + 1] + u32::from(!actual[j].once), (0, 0));
            }
            if i < p {
                match &items[i] {
                    Item::Line(l) => {
                        // One-time set-up on both sides is the same set-up:
                        // on a tie it is matched, not listed twice.
                        let mut prefer_match = false;
                        if j < a && actual[j].text == l.text {
                            let matched = cost[i + 1][j + 1];
                            prefer_match = l.once || actual[j].once;
                            if matched < best.0 || prefer_match && matched == best.0 {
                                best = (matched, (1, 1));
                            }
                        }
                        // On a tie, what is missing comes before what is new,
                        // as diffs show a changed line.
                        let skip = cost[i + 1][j] + u32::from(!l.optional && !l.once);
                        if skip < best.0 || skip == best.0 && !(prefer_match && best.1 == (1, 1)) {
                            best = (skip, (2, 0));
                        }
                    }
                    Item::Unordered(group) => {
                        // A window may hold strays among the group's events.
                        for m in 0..=(2 * group.len() + 2).min(a - j) {
                            let c = group_cost(group, &actual[j..j + m]) + cost[i + 1][j + m];
                            if c < best.0 {
                                best = (c, (1, m));
                            }
                        }
                    }
                }
            }
            cost[i][j] = best.0;
            how[i][j] = best.1;
        }
    }
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < p || j < a {
        match how[i][j] {
            (0, _) => {
                ops.push(extra(actual[j]));
                j += 1;
            }
            (1, m) => {
                match &items[i] {
                    Item::Line(l) => ops.push(Op::Same(l.text.clone())),
                    Item::Unordered(group) => ops.extend(group_ops(group, &actual[j..j + m])),
                }
                i += 1;
                j += m;
            }
            _ => {
                if let Item::Line(l) = &items[i] {
                    ops.extend(missing(l));
                }
                i += 1;
            }
        }
    }
    ops
}

/// A seen line that nothing expected matched.
fn extra(l: &Line) -> Op {
    if l.once {
        Op::OneTime(Side::Actual, l.text.clone())
    } else {
        Op::Extra(l.text.clone())
    }
}

/// An expected line that nothing seen matched: nothing when it is optional.
fn missing(l: &Line) -> Option<Op> {
    if l.once {
        Some(Op::OneTime(Side::Expected, l.text.clone()))
    } else {
        (!l.optional).then(|| Op::Missing(l.text.clone()))
    }
}

/// Events of the group not in the window (optional and one-time ones free)
/// plus events of the window not in the group (one-time ones free).
fn group_cost(group: &[Line], window: &[&Line]) -> u32 {
    group_ops(group, window)
        .iter()
        .filter(|op| op.is_change())
        .count() as u32
}

fn group_ops(group: &[Line], window: &[&Line]) -> Vec<Op> {
    let mut used = vec![false; group.len()];
    let mut ops = Vec::new();
    for w in window {
        match (0..group.len()).find(|&k| !used[k] && group[k].text == w.text) {
            Some(k) => {
                used[k] = true;
                ops.push(Op::Same(w.text.clone()));
            }
            None => ops.push(extra(w)),
        }
    }
    for (k, l) in group.iter().enumerate() {
        if !used[k] {
            ops.extend(missing(l));
        }
    }
    ops
}

/// A unified diff of the roles that differ, with `context` unchanged lines
/// around each change; empty when nothing differs.
pub fn unified(diffs: &[RoleDiff], from: &str, to: &str, context: usize) -> String {
    let mut out = String::new();
    if !diffs.iter().any(RoleDiff::differs) {
        return out;
    }
    let _ = writeln!(out, "--- {}", bare(from));
    let _ = writeln!(out, "+++ {}", bare(to));
    for d in diffs.iter().filter(|d| d.differs()) {
        // One-time set-up is listed apart ([`one_time_note`]).
        let ops: Vec<&Op> = d
            .ops
            .iter()
            .filter(|op| !matches!(op, Op::OneTime(..)))
            .collect();
        let all_missing = ops.iter().all(|op| matches!(op, Op::Missing(_)));
        let all_extra = ops.iter().all(|op| matches!(op, Op::Extra(_)));
        let note = if all_missing {
            " (missing)"
        } else if all_extra {
            " (new)"
        } else {
            ""
        };
        let _ = writeln!(out, "@@ {} · {}{note} @@", bare(&d.section), bare(&d.role));
        // Which lines to show: changes and their context.
        let changed: Vec<bool> = ops.iter().map(|op| op.is_change()).collect();
        let show = |k: usize| {
            let lo = k.saturating_sub(context);
            let hi = (k + context).min(changed.len() - 1);
            changed[lo..=hi].iter().any(|&c| c)
        };
        let mut skipped = false;
        for (k, op) in ops.iter().enumerate() {
            if !show(k) {
                skipped = true;
                continue;
            }
            if skipped {
                let _ = writeln!(out, "  …");
                skipped = false;
            }
            let _ = match op {
                Op::Same(t) => writeln!(out, "  {}", bare(t)),
                Op::Missing(t) => writeln!(out, "- {}", bare(t)),
                Op::Extra(t) => writeln!(out, "+ {}", bare(t)),
                Op::OneTime(..) => Ok(()),
            };
        }
    }
    out
}

/// The one-time engine set-up that only one side had, role by role: not a
/// difference, but said, so that a reader sees why the first run on a fresh
/// engine did more. Empty when there is none.
pub fn one_time_note(diffs: &[RoleDiff], from: &str, to: &str) -> String {
    let mut out = String::new();
    for d in diffs {
        for side in [Side::Expected, Side::Actual] {
            let lines: Vec<&str> = d
                .one_time()
                .filter(|(s, _)| *s == side)
                .map(|(_, t)| t)
                .collect();
            if lines.is_empty() {
                continue;
            }
            if out.is_empty() {
                out.push_str("one-time engine set-up (not compared):\n");
            }
            let only_in = match side {
                Side::Expected => from,
                Side::Actual => to,
            };
            let _ = writeln!(
                out,
                "  {} · {}, only in {}:",
                bare(&d.section),
                bare(&d.role),
                bare(only_in)
            );
            for t in lines {
                let _ = writeln!(out, "    {}", bare(t));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A line as the golden format writes it: `? ` optional, `once ` one-time set-up.
    fn line(t: &str) -> Line {
        match (t.strip_prefix("? "), t.strip_prefix("once ")) {
            (Some(t), _) => Line {
                optional: true,
                ..Line::new(t)
            },
            (_, Some(t)) => Line {
                once: true,
                ..Line::new(t)
            },
            _ => Line::new(t),
        }
    }

    fn lines(items: &[&str]) -> Vec<Item> {
        items.iter().map(|t| Item::Line(line(t))).collect()
    }

    /// [`align`] with a run written as [`line`] reads it.
    fn align_run(items: &[Item], run: &[&str]) -> Vec<Op> {
        let run: Vec<Line> = run.iter().map(|t| line(t)).collect();
        align(items, &run.iter().collect::<Vec<_>>())
    }

    fn changes(ops: &[Op]) -> Vec<Op> {
        ops.iter()
            .filter(|op| !matches!(op, Op::Same(_)))
            .cloned()
            .collect()
    }

    #[test]
    fn equal_sequences_align_with_no_change() {
        let ops = align_run(&lines(&["a", "b", "c"]), &["a", "b", "c"]);
        assert_eq!(changes(&ops), []);
    }

    #[test]
    fn one_write_more_is_one_line_of_diff() {
        let ops = align_run(&lines(&["a", "b", "c"]), &["a", "b", "pids.max", "c"]);
        assert_eq!(changes(&ops), [Op::Extra("pids.max".into())]);
        let ops = align_run(&lines(&["a", "b", "pids.max", "c"]), &["a", "b", "c"]);
        assert_eq!(changes(&ops), [Op::Missing("pids.max".into())]);
    }

    #[test]
    fn optional_events_may_be_there_or_not() {
        let items = lines(&["a", "? b", "c"]);
        assert_eq!(changes(&align_run(&items, &["a", "c"])), []);
        assert_eq!(changes(&align_run(&items, &["a", "b", "c"])), []);
    }

    #[test]
    fn unordered_groups_match_any_order_but_not_other_events() {
        let items = vec![
            Item::Line(Line::new("start")),
            Item::Unordered(vec![Line::new("x"), Line::new("y"), Line::new("z")]),
            Item::Line(Line::new("end")),
        ];
        assert_eq!(
            changes(&align_run(&items, &["start", "z", "x", "y", "end"])),
            []
        );
        assert_eq!(
            changes(&align_run(&items, &["start", "z", "y", "end"])),
            [Op::Missing("x".into())]
        );
        assert_eq!(
            changes(&align_run(&items, &["start", "z", "x", "w", "y", "end"])),
            [Op::Extra("w".into())]
        );
    }

    #[test]
    fn one_time_set_up_on_either_side_is_no_difference_but_is_listed() {
        let warm = lines(&[
            "exec",
            "mkdir /docker/<id>",
            "write /docker/<id>/cpuset.cpus",
        ]);
        let fresh = [
            "exec",
            "once mkdir /docker",
            "once write /docker/cpuset.cpus",
            "mkdir /docker/<id>",
            "write /docker/<id>/cpuset.cpus",
        ];
        let ops = align_run(&warm, &fresh);
        assert_eq!(
            changes(&ops),
            [
                Op::OneTime(Side::Actual, "mkdir /docker".into()),
                Op::OneTime(Side::Actual, "write /docker/cpuset.cpus".into()),
            ]
        );
        // And the other way round: a golden recorded on a fresh engine.
        let warm_run = [
            "exec",
            "mkdir /docker/<id>",
            "write /docker/<id>/cpuset.cpus",
        ];
        let ops = align_run(&lines(&fresh), &warm_run);
        assert!(!ops.iter().any(Op::is_change), "{ops:?}");
        assert_eq!(
            ops.iter()
                .filter(|op| matches!(op, Op::OneTime(Side::Expected, _)))
                .count(),
            2
        );
        // Both fresh: the same set-up, matched.
        let ops = align_run(&lines(&fresh), &fresh);
        assert_eq!(changes(&ops), []);
    }

    #[test]
    fn one_time_set_up_that_the_other_side_does_every_time_is_matched() {
        // cgroup2: runc writes the parent's subtree_control on every run; on a
        // fresh engine the parent is new, so the write is marked one-time.
        let warm = lines(&["write /docker/cgroup.subtree_control", "mkdir /docker/<id>"]);
        let fresh = [
            "once mkdir /docker",
            "once write /docker/cgroup.subtree_control",
            "mkdir /docker/<id>",
        ];
        let ops = align_run(&warm, &fresh);
        assert_eq!(
            changes(&ops),
            [Op::OneTime(Side::Actual, "mkdir /docker".into())]
        );
        let ops = align_run(
            &lines(&fresh),
            &["write /docker/cgroup.subtree_control", "mkdir /docker/<id>"],
        );
        assert_eq!(
            changes(&ops),
            [Op::OneTime(Side::Expected, "mkdir /docker".into())]
        );
    }

    #[test]
    fn a_real_difference_beside_one_time_set_up_is_still_one() {
        let warm = lines(&["exec", "mkdir /docker/<id>", "exit"]);
        let fresh = [
            "exec",
            "once mkdir /docker",
            "mkdir /docker/<id>",
            "write pids.max",
            "exit",
        ];
        let ops = align_run(&warm, &fresh);
        assert!(ops.contains(&Op::Extra("write pids.max".into())), "{ops:?}");
        let d = RoleDiff {
            section: "container 1".into(),
            role: "runtime create".into(),
            ops,
        };
        assert!(d.differs());
        let diffs = [d];
        let text = unified(&diffs, "golden", "run", 3);
        assert!(text.contains("+ write pids.max"), "{text}");
        assert!(!text.contains("/docker\n"), "{text}");
        assert_eq!(
            one_time_note(&diffs, "golden", "this run"),
            "one-time engine set-up (not compared):\n  container 1 · runtime create, only in this run:\n    mkdir /docker\n"
        );
        // Set-up alone: the role does not differ and there is no diff.
        let d = RoleDiff {
            section: "container 1".into(),
            role: "runtime create".into(),
            ops: align_run(
                &warm,
                &["exec", "once mkdir /docker", "mkdir /docker/<id>", "exit"],
            ),
        };
        assert!(!d.differs());
        assert_eq!(unified(&[d], "golden", "run", 3), "");
    }

    #[test]
    fn unordered_groups_leave_one_time_set_up_out() {
        let items = vec![Item::Unordered(vec![Line::new("x"), line("once y")])];
        assert_eq!(
            changes(&align_run(&items, &["x"])),
            [Op::OneTime(Side::Expected, "y".into())]
        );
        let items = vec![Item::Unordered(vec![Line::new("x")])];
        assert_eq!(
            changes(&align_run(&items, &["once z", "x"])),
            [Op::OneTime(Side::Actual, "z".into())]
        );
    }

    #[test]
    fn a_hostile_golden_cannot_write_to_the_terminal_through_the_diff() {
        let golden = Golden {
            command: None,
            times: None,
            sections: vec![super::super::Section {
                name: "container 1\x1b[2J".into(),
                made_by: None,
                roles: vec![RoleSequence {
                    role: "runtime".into(),
                    items: lines(&["a\x1b[2J\nFAKE\u{9b}"]),
                }],
            }],
        };
        let text = unified(&compare(&golden, &Golden::default()), "a\x1b", "b", 3);
        assert!(
            !text.contains('\x1b') && !text.contains('\u{9b}'),
            "{text:?}"
        );
        assert!(text.contains(r"- a\x1b[2J\nFAKE\u{9b}"), "{text}");
        assert!(text.contains(r"@@ container 1\x1b[2J · runtime"), "{text}");
    }

    #[test]
    fn sections_made_by_other_engines_differ_first_by_that_then_role_by_role() {
        let section = |made_by: &str, roles: &[(&str, &[&str])]| super::super::Section {
            name: "container 1".into(),
            made_by: Some(made_by.into()),
            roles: roles
                .iter()
                .map(|(role, items)| RoleSequence {
                    role: role.to_string(),
                    items: lines(items),
                })
                .collect(),
        };
        let golden = |s| Golden {
            sections: vec![s],
            ..Golden::default()
        };
        let docker = golden(section(
            "docker, runc",
            &[
                ("client", &["execve(docker)"]),
                ("runtime create", &["clone"]),
            ],
        ));
        let podman = golden(section(
            "podman, runc",
            &[
                ("client", &["execve(podman)"]),
                ("runtime create", &["clone"]),
            ],
        ));
        let text = unified(&compare(&docker, &podman), "docker", "podman", 3);
        assert!(text.contains("@@ container 1 · made by @@"), "{text}");
        assert!(
            text.contains("- docker, runc") && text.contains("+ podman, runc"),
            "{text}"
        );
        assert!(text.contains("@@ container 1 · client @@"), "{text}");
        assert!(
            !text.contains("runtime create"),
            "same on both sides: {text}"
        );
        // A golden that does not say (written before) compares as before.
        let mut old = docker.clone();
        old.sections[0].made_by = None;
        assert!(!compare(&old, &docker).iter().any(RoleDiff::differs));
    }

    #[test]
    fn the_diff_names_the_role_and_only_the_change() {
        let golden = Golden {
            command: None,
            times: None,
            sections: vec![super::super::Section {
                name: "container 1".into(),
                made_by: None,
                roles: vec![
                    RoleSequence {
                        role: "runtime".into(),
                        items: lines(&["1", "2", "3", "4", "5", "6", "7", "8"]),
                    },
                    RoleSequence {
                        role: "entrypoint".into(),
                        items: lines(&["exec", "exit 0"]),
                    },
                ],
            }],
        };
        let mut run = golden.clone();
        run.sections[0].roles[0]
            .items
            .insert(7, Item::Line(Line::new("pids.max 10")));
        let diffs = compare(&golden, &run);
        let text = unified(&diffs, "golden", "run", 1);
        assert_eq!(
            text,
            "--- golden\n+++ run\n@@ container 1 · runtime @@\n  …\n  7\n+ pids.max 10\n  8\n"
        );
        assert_eq!(unified(&compare(&golden, &golden), "a", "b", 3), "");
    }
}
