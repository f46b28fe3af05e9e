//! Comparing a run with its golden, role by role, and showing the difference
//! as a unified diff. A golden may come from anyone's pull request: what the
//! diff prints goes through [`crate::escape::bare`] (a no-op on text inspector
//! wrote itself).
//!
//! Each role's events are aligned with the golden's by the smallest number of
//! events added or missing (an edit distance), where an optional event costs
//! nothing either way and an unordered group matches the events of a window
//! of the run as a multiset.

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
        self.ops.iter().any(|op| !matches!(op, Op::Same(_)))
    }
}

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
            let a: Vec<&str> = find(act, role)
                .map(|r| r.lines().map(|l| l.text.as_str()).collect())
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
pub fn align(items: &[Item], actual: &[&str]) -> Vec<Op> {
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
                best = (cost[i][j + 1] + 1, (0, 0));
            }
            if i < p {
                match &items[i] {
                    Item::Line(l) => {
                        if j < a && actual[j] == l.text && cost[i + 1][j + 1] < best.0 {
                            best = (cost[i + 1][j + 1], (1, 1));
                        }
                        // On a tie, what is missing comes before what is new,
                        // as diffs show a changed line.
                        let skip = cost[i + 1][j] + u32::from(!l.optional);
                        if skip <= best.0 {
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
                ops.push(Op::Extra(actual[j].to_string()));
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
                if let Item::Line(l) = &items[i]
                    && !l.optional
                {
                    ops.push(Op::Missing(l.text.clone()));
                }
                i += 1;
            }
        }
    }
    ops
}

/// Events of the group not in the window (optional ones free) plus events
/// of the window not in the group.
fn group_cost(group: &[Line], window: &[&str]) -> u32 {
    group_ops(group, window)
        .iter()
        .filter(|op| !matches!(op, Op::Same(_)))
        .count() as u32
}

fn group_ops(group: &[Line], window: &[&str]) -> Vec<Op> {
    let mut used = vec![false; group.len()];
    let mut ops = Vec::new();
    for w in window {
        match (0..group.len()).find(|&k| !used[k] && group[k].text == *w) {
            Some(k) => {
                used[k] = true;
                ops.push(Op::Same(w.to_string()));
            }
            None => ops.push(Op::Extra(w.to_string())),
        }
    }
    for (k, l) in group.iter().enumerate() {
        if !used[k] && !l.optional {
            ops.push(Op::Missing(l.text.clone()));
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
        let all_missing = d.ops.iter().all(|op| matches!(op, Op::Missing(_)));
        let all_extra = d.ops.iter().all(|op| matches!(op, Op::Extra(_)));
        let note = if all_missing {
            " (missing)"
        } else if all_extra {
            " (new)"
        } else {
            ""
        };
        let _ = writeln!(out, "@@ {} · {}{note} @@", bare(&d.section), bare(&d.role));
        // Which lines to show: changes and their context.
        let changed: Vec<bool> = d.ops.iter().map(|op| !matches!(op, Op::Same(_))).collect();
        let show = |k: usize| {
            let lo = k.saturating_sub(context);
            let hi = (k + context).min(changed.len() - 1);
            changed[lo..=hi].iter().any(|&c| c)
        };
        let mut skipped = false;
        for (k, op) in d.ops.iter().enumerate() {
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
            };
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(items: &[&str]) -> Vec<Item> {
        items
            .iter()
            .map(|t| match t.strip_prefix("? ") {
                Some(t) => Item::Line(Line {
                    text: t.to_string(),
                    optional: true,
                }),
                None => Item::Line(Line::new(*t)),
            })
            .collect()
    }

    fn changes(ops: &[Op]) -> Vec<Op> {
        ops.iter()
            .filter(|op| !matches!(op, Op::Same(_)))
            .cloned()
            .collect()
    }

    #[test]
    fn equal_sequences_align_with_no_change() {
        let ops = align(&lines(&["a", "b", "c"]), &["a", "b", "c"]);
        assert_eq!(changes(&ops), []);
    }

    #[test]
    fn one_write_more_is_one_line_of_diff() {
        let ops = align(&lines(&["a", "b", "c"]), &["a", "b", "pids.max", "c"]);
        assert_eq!(changes(&ops), [Op::Extra("pids.max".into())]);
        let ops = align(&lines(&["a", "b", "pids.max", "c"]), &["a", "b", "c"]);
        assert_eq!(changes(&ops), [Op::Missing("pids.max".into())]);
    }

    #[test]
    fn optional_events_may_be_there_or_not() {
        let items = lines(&["a", "? b", "c"]);
        assert_eq!(changes(&align(&items, &["a", "c"])), []);
        assert_eq!(changes(&align(&items, &["a", "b", "c"])), []);
    }

    #[test]
    fn unordered_groups_match_any_order_but_not_other_events() {
        let items = vec![
            Item::Line(Line::new("start")),
            Item::Unordered(vec![Line::new("x"), Line::new("y"), Line::new("z")]),
            Item::Line(Line::new("end")),
        ];
        assert_eq!(
            changes(&align(&items, &["start", "z", "x", "y", "end"])),
            []
        );
        assert_eq!(
            changes(&align(&items, &["start", "z", "y", "end"])),
            [Op::Missing("x".into())]
        );
        assert_eq!(
            changes(&align(&items, &["start", "z", "x", "w", "y", "end"])),
            [Op::Extra("w".into())]
        );
    }

    #[test]
    fn a_hostile_golden_cannot_write_to_the_terminal_through_the_diff() {
        let golden = Golden {
            command: None,
            sections: vec![super::super::Section {
                name: "container 1\x1b[2J".into(),
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
    fn the_diff_names_the_role_and_only_the_change() {
        let golden = Golden {
            command: None,
            sections: vec![super::super::Section {
                name: "container 1".into(),
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
