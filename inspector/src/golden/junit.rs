//! A JUnit XML report of a check, which CI systems show per test: one test
//! case per role, failed with its diff when it differs, and with the
//! one-time engine set-up only one side had as its output (not a failure).

use std::fmt::Write as _;

use super::compare::{RoleDiff, one_time_note, unified};

pub fn report(suite: &str, diffs: &[RoleDiff], seconds: f64) -> String {
    let failures = diffs.iter().filter(|d| d.differs()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites><testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{seconds:.3}\">",
        escape(suite),
        diffs.len()
    );
    for d in diffs {
        let _ = write!(
            out,
            "  <testcase classname=\"{}\" name=\"{}\"",
            escape(&d.section),
            escape(&d.role)
        );
        let once = one_time_note(std::slice::from_ref(d), "the golden", "this run");
        if !d.differs() && once.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push('>');
        if d.differs() {
            let text = unified(std::slice::from_ref(d), "golden", "this run", 3);
            let _ = write!(
                out,
                "<failure message=\"the syscall sequence of {} differs from the golden\">{}</failure>",
                escape(&d.role),
                escape(&text)
            );
        }
        if !once.is_empty() {
            let _ = write!(out, "<system-out>{}</system-out>", escape(&once));
        }
        out.push_str("</testcase>\n");
    }
    out.push_str("</testsuite></testsuites>\n");
    out
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::golden::compare::{Op, Side};

    #[test]
    fn one_case_per_role_and_the_diff_escaped() {
        let diffs = vec![
            RoleDiff {
                section: "container 1".into(),
                role: "runtime".into(),
                ops: vec![
                    Op::Same("a".into()),
                    Op::Extra("write \"<10>\" & more".into()),
                ],
            },
            RoleDiff {
                section: "container 1".into(),
                role: "entrypoint".into(),
                ops: vec![Op::Same("exec".into())],
            },
        ];
        let xml = report("docker-run", &diffs, 1.5);
        assert!(xml.contains("tests=\"2\" failures=\"1\""), "{xml}");
        assert!(!xml.contains("system-out"), "{xml}");
        assert!(xml.contains("&quot;&lt;10&gt;&quot; &amp; more"), "{xml}");
        assert!(xml.contains("name=\"entrypoint\"/>"), "{xml}");
    }

    #[test]
    fn one_time_set_up_is_output_not_a_failure() {
        let diffs = vec![RoleDiff {
            section: "container 1".into(),
            role: "runtime create".into(),
            ops: vec![
                Op::Same("a".into()),
                Op::OneTime(Side::Actual, "cgroup mkdir cpuset:/docker".into()),
            ],
        }];
        let xml = report("docker-run", &diffs, 1.5);
        assert!(xml.contains("tests=\"1\" failures=\"0\""), "{xml}");
        assert!(
            xml.contains("<system-out>one-time engine set-up (not compared):"),
            "{xml}"
        );
        assert!(
            xml.contains("cgroup mkdir cpuset:/docker\n</system-out></testcase>"),
            "{xml}"
        );
    }
}
