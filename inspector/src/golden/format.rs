//! The golden file: plain text meant to be read in a pull request.
//!
//! ```text
//! # inspector golden v1
//! # command: docker run --rm inspector/busybox:latest true
//! container 1
//!   runtime init
//!     unshare(CLONE_NEWNS|CLONE_NEWUTS|CLONE_NEWIPC|CLONE_NEWPID|CLONE_NEWNET) = 0
//!     ? mount("/dev/null", "/proc/kcore", NULL, MS_BIND) = -1 ENOENT
//!     unordered {
//!       cgroup rmdir pids:/docker/<id>
//!       cgroup rmdir memory:/docker/<id>
//!     }
//! ```
//! Sections start at column 0, roles at 2, events at 4 (6 inside a group).
//! `? ` marks an event as optional, `once ` as one-time engine set-up (see
//! [`super::one_time_set_up`]); `#` starts a comment. The containers' median
//! times are kept in the header, where a reader of the sequence skips them
//! (and where goldens made before times were kept have none):
//!
//! ```text
//! # times: median of 5 runs, ms (inspector check --max-slowdown compares the start latency)
//! # times container 1: start latency 412.3; request 10.0; shim start 5.1; create 180.2
//! ```
//!
//! Reviewers read goldens in pull requests and `cat` them in terminals: every
//! line is written through [`crate::escape::bare`], so that a control
//! character of a traced process (already escaped in its event's text) can
//! neither reach a terminal nor break a line of the format.

use thiserror::Error;

use super::{Golden, Item, Line, RoleSequence, Section, Times};
use crate::{escape::bare, timeline::timing::Timing};

pub const MAGIC: &str = "# inspector golden v1";

#[derive(Debug, Error, PartialEq)]
#[error("line {line}: {message}")]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

pub fn render(g: &Golden) -> String {
    let mut out = String::new();
    out.push_str(MAGIC);
    out.push('\n');
    if let Some(cmd) = &g.command {
        out.push_str(&format!("# command: {}\n", bare(cmd)));
    }
    out.push_str(
        "# One event per line, per role; pids, fds, ids, temporary names and times are\n\
         # normalized away. \"? \" marks an event as optional; the events of an\n\
         # \"unordered { }\" group may come in any order. Regenerate with --update.\n",
    );
    if g.sections
        .iter()
        .flat_map(|s| &s.roles)
        .any(|r| r.lines().any(|l| l.once))
    {
        out.push_str(
            "# \"once \" marks one-time engine set-up (this run was the engine's first\n\
             # container): not compared, present or not.\n",
        );
    }
    if let Some(times) = &g.times {
        render_times(&mut out, times);
    }
    for s in &g.sections {
        out.push_str(&bare(&s.name));
        if let Some(made_by) = &s.made_by {
            out.push_str(" (");
            out.push_str(&bare(made_by));
            out.push(')');
        }
        out.push('\n');
        for r in &s.roles {
            out.push_str("  ");
            out.push_str(&bare(&r.role));
            out.push('\n');
            for item in &r.items {
                match item {
                    Item::Line(l) => line(&mut out, 4, l),
                    Item::Unordered(group) => {
                        out.push_str("    unordered {\n");
                        for l in group {
                            line(&mut out, 6, l);
                        }
                        out.push_str("    }\n");
                    }
                }
            }
        }
    }
    out
}

const TIMES: &str = "# times: median of ";
const TIMES_OF: &str = "# times ";
const LATENCY: &str = "start latency";

fn render_times(out: &mut String, times: &Times) {
    out.push_str(&format!(
        "{TIMES}{} runs, ms (inspector check --max-slowdown compares the start latency)\n",
        times.runs
    ));
    for (name, t) in &times.containers {
        let mut parts = Vec::new();
        if let Some(ms) = t.start_latency_ms {
            parts.push(format!("{LATENCY} {ms:.1}"));
        }
        parts.extend(
            t.phases
                .iter()
                .map(|(p, ms)| format!("{} {ms:.1}", bare(p))),
        );
        out.push_str(&format!("{TIMES_OF}{}: {}\n", bare(name), parts.join("; ")));
    }
}

/// A `# times container N: key ms; …` line's section and times.
fn parse_times(n: usize, body: &str) -> Result<(String, Timing), ParseError> {
    let err = |message: String| ParseError { line: n, message };
    let (name, values) = body
        .split_once(": ")
        .ok_or_else(|| err("a times line without `: ` after its container".into()))?;
    let mut t = Timing::default();
    for part in values.split("; ").filter(|p| !p.is_empty()) {
        let (key, ms) = part
            .rsplit_once(' ')
            .ok_or_else(|| err(format!("`{}` is not `NAME MILLISECONDS`", bare(part))))?;
        let ms: f64 = ms
            .parse()
            .ok()
            .filter(|ms: &f64| ms.is_finite() && *ms >= 0.0)
            .ok_or_else(|| {
                err(format!(
                    "`{}` is not a number of milliseconds (in `{}`)",
                    bare(ms),
                    bare(part)
                ))
            })?;
        if key == LATENCY {
            t.start_latency_ms = Some(ms);
        } else {
            t.phases.push((key.to_string(), ms));
        }
    }
    Ok((name.to_string(), t))
}

fn line(out: &mut String, indent: usize, l: &Line) {
    out.extend(std::iter::repeat_n(' ', indent));
    if l.optional {
        out.push_str("? ");
    }
    if l.once {
        out.push_str("once ");
    }
    out.push_str(&bare(&l.text));
    out.push('\n');
}

/// A role's label as written, with the client's name before other engines
/// had one (`docker CLI`) read as today's.
fn client_named(label: &str) -> String {
    match label.strip_prefix("docker CLI") {
        Some(rest) => format!("{}{rest}", crate::timeline::Role::Client.name()),
        None => label.to_string(),
    }
}

pub fn is_golden(text: &str) -> bool {
    text.starts_with(MAGIC)
}

pub fn parse(text: &str) -> Result<Golden, ParseError> {
    let mut g = Golden::default();
    let mut group: Option<Vec<Line>> = None;
    let err = |line: usize, message: &str| ParseError {
        line,
        message: message.to_string(),
    };
    if !is_golden(text) {
        return Err(err(1, &format!("not a golden file (expected `{MAGIC}`)")));
    }
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(cmd) = raw.strip_prefix("# command: ") {
            g.command = Some(cmd.to_string());
            continue;
        }
        if let Some(rest) = raw.strip_prefix(TIMES) {
            let runs = rest
                .split_once(' ')
                .and_then(|(runs, _)| runs.parse().ok())
                .ok_or_else(|| err(n, "expected `# times: median of N runs, ms …`"))?;
            g.times.get_or_insert_with(Times::default).runs = runs;
            continue;
        }
        if let Some(rest) = raw.strip_prefix(TIMES_OF) {
            let container = parse_times(n, rest)?;
            g.times
                .get_or_insert_with(Times::default)
                .containers
                .push(container);
            continue;
        }
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let body = raw.trim();
        match (indent, group.is_some()) {
            (0, false) => {
                // `container 1 (podman, runc)`: what made it, in parentheses.
                let (name, made_by) = match body.strip_suffix(')').and_then(|b| b.split_once(" ("))
                {
                    Some((name, made_by)) => (name, Some(made_by.to_string())),
                    None => (body, None),
                };
                g.sections.push(Section {
                    name: name.to_string(),
                    made_by,
                    roles: Vec::new(),
                })
            }
            (2, false) => g
                .sections
                .last_mut()
                .ok_or_else(|| err(n, "a role before any section"))?
                .roles
                .push(RoleSequence {
                    role: client_named(body),
                    items: Vec::new(),
                }),
            (4, false) => {
                let role = g
                    .sections
                    .last_mut()
                    .and_then(|s| s.roles.last_mut())
                    .ok_or_else(|| err(n, "an event before any role"))?;
                if body == "unordered {" {
                    group = Some(Vec::new());
                } else {
                    role.items.push(Item::Line(parse_line(body)));
                }
            }
            (6, true) => group.as_mut().expect("in a group").push(parse_line(body)),
            (4, true) if body == "}" => {
                let lines = group.take().expect("in a group");
                g.sections
                    .last_mut()
                    .and_then(|s| s.roles.last_mut())
                    .expect("a group opens inside a role")
                    .items
                    .push(Item::Unordered(lines));
            }
            (_, true) => return Err(err(n, "inside `unordered {`, expected an event or `}`")),
            _ => {
                return Err(err(
                    n,
                    "unexpected indentation (sections at 0, roles at 2, events at 4)",
                ));
            }
        }
    }
    if group.is_some() {
        return Err(err(text.lines().count(), "`unordered {` is never closed"));
    }
    Ok(g)
}

fn parse_line(body: &str) -> Line {
    match (body.strip_prefix("? "), body.strip_prefix("once ")) {
        (Some(text), _) => Line {
            optional: true,
            ..Line::new(text)
        },
        (_, Some(text)) => Line {
            once: true,
            ..Line::new(text)
        },
        _ => Line::new(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_and_parses_back() {
        let g = Golden {
            command: Some("docker run --rm x true".into()),
            times: None,
            sections: vec![Section {
                name: "container 1".into(),
                made_by: None,
                roles: vec![RoleSequence {
                    role: "runtime init".into(),
                    items: vec![
                        Item::Line(Line::new("unshare(CLONE_NEWNS) = 0")),
                        Item::Line(Line {
                            optional: true,
                            ..Line::new("mount(\"/dev/null\", \"/proc/kcore\") = -1 ENOENT")
                        }),
                        Item::Line(Line {
                            once: true,
                            ..Line::new("cgroup mkdir cpuset:/docker")
                        }),
                        Item::Unordered(vec![Line::new("a"), Line::new("b")]),
                    ],
                }],
            }],
        };
        let text = render(&g);
        assert_eq!(parse(&text).unwrap(), g);
        let timed = Golden {
            times: Some(Times {
                runs: 5,
                containers: vec![(
                    "container 1".into(),
                    Timing {
                        start_latency_ms: Some(412.3),
                        phases: vec![("shim start".into(), 5.1), ("create".into(), 180.0)],
                        ..Timing::default()
                    },
                )],
            }),
            ..g
        };
        let text = render(&timed);
        assert!(
            text.contains(
                "# times container 1: start latency 412.3; shim start 5.1; create 180.0\n"
            ),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap(), timed);
    }

    #[test]
    fn bad_times_name_their_line() {
        let text = format!("{MAGIC}\n# times container 1: start latency soon\n");
        let e = parse(&text).unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("`soon` is not a number"), "{e}");
        let text = format!("{MAGIC}\n# times: median of many runs\n");
        assert_eq!(parse(&text).unwrap_err().line, 2);
        let text = format!("{MAGIC}\n# times container 1: create -3\n");
        assert_eq!(parse(&text).unwrap_err().line, 2);
        // Goldens from before times were kept still read.
        let text = format!("{MAGIC}\n# one more comment\ncontainer 1\n");
        assert_eq!(parse(&text).unwrap().times, None);
    }

    #[test]
    fn control_characters_never_reach_the_file() {
        let g = Golden {
            command: Some("sh -c \x1b[2J\nFAKE".into()),
            times: None,
            sections: vec![Section {
                name: "container 1".into(),
                made_by: None,
                roles: vec![RoleSequence {
                    role: "runtime \x1b]0;x\x07".into(),
                    items: vec![Item::Line(Line::new(
                        "execve(\"/tmp/\x1b[2J\nFAKE\u{202e}\")",
                    ))],
                }],
            }],
        };
        let text = render(&g);
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}'),
            "{text:?}"
        );
        assert!(!text.lines().any(|l| l.starts_with("FAKE")), "{text}");
        assert!(
            text.contains(r#"    execve("/tmp/\x1b[2J\nFAKE\u{202e}")"#),
            "{text}"
        );
        assert!(text.contains(r"# command: sh -c \x1b[2J\nFAKE"), "{text}");
        assert!(text.contains(r"  runtime \x1b]0;x\x07"), "{text}");
        // What was written reads back as one event.
        assert_eq!(parse(&text).unwrap().len(), 1);
    }

    #[test]
    fn mistakes_name_their_line() {
        assert_eq!(parse("hello").unwrap_err().line, 1);
        let text = format!("{MAGIC}\ncontainer 1\n    orphan\n");
        assert_eq!(parse(&text).unwrap_err().line, 3);
        let text = format!("{MAGIC}\ncontainer 1\n  runtime\n    unordered {{\n      a\n");
        let e = parse(&text).unwrap_err();
        assert!(e.message.contains("never closed"), "{e}");
        let text = format!("{MAGIC}\ncontainer 1\n  runtime\n   x\n");
        assert_eq!(parse(&text).unwrap_err().line, 4);
    }
}
