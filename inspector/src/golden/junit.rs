//! A JUnit XML report of a check, which CI systems show per test: one test
//! case per role, failed with its diff when it differs.

use std::fmt::Write as _;

use super::compare::{RoleDiff, unified};

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
        if d.differs() {
            let text = unified(std::slice::from_ref(d), "golden", "this run", 3);
            let _ = writeln!(
                out,
                "><failure message=\"the syscall sequence of {} differs from the golden\">{}</failure></testcase>",
                escape(&d.role),
                escape(&text)
            );
        } else {
            out.push_str("/>\n");
        }
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
    use crate::golden::compare::Op;

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
        assert!(xml.contains("&quot;&lt;10&gt;&quot; &amp; more"), "{xml}");
        assert!(xml.contains("name=\"entrypoint\"/>"), "{xml}");
    }
}
