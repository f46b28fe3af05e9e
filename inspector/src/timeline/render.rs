//! The text view of a timeline: a waterfall of phases, the chain of roles, and
//! the steps. Ids, commands and details come from traced processes and go
//! through [`crate::escape`] before they reach a terminal.

use std::fmt::Write as _;

use super::{
    ContainerTimeline, Failure, Role,
    present::{
        compact_command, cut, exit_text, made_by, ms, ms_f, short_id, why_start, why_teardown,
        why_who,
    },
};
use crate::escape::bare;

const BAR_WIDTH: usize = 40;

/// The failure first: its summary, then what the engine and runtime said
/// (each message on its own line, escaped).
pub fn failed_block(out: &mut String, f: &Failure) {
    let _ = writeln!(out, "  failed: {}", bare(&f.summary));
    for m in &f.messages {
        let who = match m.stream.as_str() {
            "runtime_log" => format!("{} (its log)", m.role.name()),
            _ => m.role.name().to_string(),
        };
        // A line of the terminal per line written; blank ones dropped.
        let mut lines = m.text.lines().filter(|l| !l.trim().is_empty());
        if let Some(first) = lines.next() {
            let _ = writeln!(
                out,
                "    {who} said: {}",
                cut(bare(first).into_owned(), 400)
            );
        }
        for line in lines {
            let _ = writeln!(out, "      {}", cut(bare(line).into_owned(), 400));
        }
    }
}

/// Where the time went (`--why`): the start's latency and the causes that
/// took most of its critical path, largest first; the teardown's too.
pub fn why_block(out: &mut String, why: &super::why::Why) {
    let _ = writeln!(
        out,
        "  where the time went: {}",
        why_start(why.start_latency_ms)
    );
    let causes = |out: &mut String, path: &[super::why::Segment]| {
        for (role, pid, comm, cause, ms) in super::why::top_causes(path, 8) {
            let _ = writeln!(
                out,
                "    {:>10}  {:<36} {}",
                ms_f(ms),
                cut(why_who(role, pid, &comm), 36),
                bare(&cause)
            );
        }
    };
    causes(out, &why.critical_path);
    if let Some(teardown) = why.teardown_ms {
        let _ = writeln!(out, "  {}", why_teardown(teardown));
        causes(out, &why.teardown_path);
    }
}

/// Renders one container's timeline for a terminal.
pub fn text(t: &ContainerTimeline, with_steps: bool) -> String {
    let mut out = String::new();
    let ending = match (&t.exit_code, &t.signal, &t.failure) {
        (Some(code), _, _) => format!(", exited {code}"),
        (None, Some(sig), _) => format!(", killed by {}", bare(sig)),
        (None, None, Some(f)) if f.role == Role::Client => ", refused".to_string(),
        (None, None, Some(_)) => ", failed to start".to_string(),
        _ => String::new(),
    };
    let state = match (t.complete, t.already_running) {
        (_, true) => " (running before the trace began)",
        (true, false) => "",
        (false, false) => " (incomplete)",
    };
    // Empty when the recording's wall-clock time could not date it.
    let started = if t.start_time.is_empty() {
        "at an unknown time".into()
    } else {
        bare(&t.start_time)
    };
    let _ = writeln!(
        out,
        "container {}{}{state}: {}{ending}, {} events, started {started}",
        bare(short_id(&t.id)),
        made_by(t.engine, t.runtime.as_deref()),
        ms(t.duration_ns),
        t.events,
    );

    if let Some(f) = &t.failure {
        failed_block(&mut out, f);
    }
    if let Some(why) = &t.why {
        why_block(&mut out, why);
    }
    let _ = writeln!(out, "  phases");
    let span = t.duration_ns.max(1) as f64;
    for p in &t.phases {
        let from =
            (p.start_ns.saturating_sub(t.start_ns) as f64 / span * BAR_WIDTH as f64) as usize;
        let len = ((p.duration_ns as f64 / span * BAR_WIDTH as f64).round() as usize).max(1);
        let from = from.min(BAR_WIDTH - 1);
        let len = len.min(BAR_WIDTH - from);
        let bar: String = " ".repeat(from) + &"█".repeat(len) + &" ".repeat(BAR_WIDTH - from - len);
        let _ = writeln!(
            out,
            "    {:<10} {:>10} │{bar}│ {:>10}",
            p.phase.name(),
            format!("+{}", ms(p.start_ns.saturating_sub(t.start_ns))),
            ms(p.duration_ns)
        );
    }
    if t.phases.is_empty() {
        let _ = writeln!(out, "    (none seen)");
    }

    let _ = writeln!(out, "  chain");
    for link in &t.chain {
        let cmd = if link.argv.is_empty() {
            bare(&link.comm).into_owned()
        } else if let Some(cmd) = compact_command(link.role, &link.argv) {
            bare(&cmd).into_owned()
        } else {
            cut(bare(&link.argv.join(" ")).into_owned(), 100)
        };
        let ns = if link.nspid > 0
            && (link.role == Role::Entrypoint || link.role == Role::EntrypointChild)
        {
            format!(" (pid {} inside)", link.nspid)
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "    {:<17} pid {:<7}{ns} {cmd}",
            link.role.name(),
            link.pid
        );
        if let Some(exit) = exit_text(link.exit_code, link.signal.as_deref()) {
            let _ = write!(out, " → {exit}");
        }
        out.push('\n');
    }

    if with_steps {
        let _ = writeln!(out, "  steps");
        for s in &t.steps {
            let _ = writeln!(
                out,
                "    {:>11} {:<10} {:<17} [{}] {}",
                format!("+{}", ms(s.ktime_ns.saturating_sub(t.start_ns))),
                s.phase.map(|p| p.name()).unwrap_or("-"),
                s.role.name(),
                s.pid,
                // Escaped already when it was described; again for details
                // that came from elsewhere.
                bare(&s.detail())
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "\x1b[2J\nFAKE\u{202e}";

    fn hostile_timeline() -> ContainerTimeline {
        let link = |role: &str, pid: u32, comm: &str, argv: Vec<String>| {
            serde_json::json!({"role": role, "pid": pid, "nspid": 1, "ppid": 1, "comm": comm,
                "argv": argv, "start_ns": 0, "signal": HOSTILE})
        };
        let long: Vec<String> = std::iter::repeat_n("é\x1b".to_string(), 80).collect();
        serde_json::from_value(serde_json::json!({
            // 64 bytes, as a Docker id, with a character across byte 12.
            "v": 1, "id": format!("\x1b[2J\nFAKEabé{}", "a".repeat(51)), "complete": true,
            "start_ns": 0, "end_ns": 10, "duration_ns": 10, "start_time": HOSTILE,
            "signal": HOSTILE, "phases": [], "events": 1,
            "chain": [
                link("runtime", 2, HOSTILE, vec!["runc".into(), "create".into(), HOSTILE.into()]),
                link("entrypoint", 3, HOSTILE, vec![]),
                link("entrypoint-child", 4, "x", vec![format!("/tmp/{HOSTILE}"), HOSTILE.into()]),
                link("other", 5, "x", long),
            ],
            "steps": [{"ktime_ns": 1, "pid": 3, "tid": 3, "role": "entrypoint", "phase": null,
                "kind": "exec", "detail": HOSTILE}],
            // A runtime's and a client's words are whatever they wrote.
            "failure": {"summary": HOSTILE, "role": "runtime-init", "pid": 3,
                "messages": [
                    {"role": "runtime", "pid": 2, "stream": "runtime_log", "text": HOSTILE},
                    {"role": "client", "pid": 1, "stream": "stderr",
                     "text": format!("{HOSTILE}\n\nFAKE2\x1b]0;title\x07")},
                ]},
        }))
        .unwrap()
    }

    #[test]
    fn names_paths_and_ids_of_traced_processes_are_escaped() {
        let text = text(&hostile_timeline(), true);
        assert!(
            !text
                .chars()
                .any(|c| c != '\n' && crate::escape::needs_escape(c)),
            "{text:?}"
        );
        assert!(!text.lines().any(|l| l.starts_with("FAKE")), "{text}");
        // The id, the runtime's id argument, the comm, argv, signal, detail.
        assert!(text.starts_with(r"container \x1b[2J\nFAKEabéa"), "{text}");
        assert!(
            text.contains(r"runc create \x1b[2J\nFAKE\u{202e}"),
            "{text}"
        );
        assert!(
            text.contains(r"/tmp/\x1b[2J\nFAKE\u{202e} \x1b[2J"),
            "{text}"
        );
        assert!(text.contains(r"→ \x1b[2J\nFAKE\u{202e}"), "{text}");
        // The failure and its words, a line each, escaped.
        assert!(text.contains(r"  failed: \x1b[2J\nFAKE\u{202e}"), "{text}");
        assert!(
            text.contains(r"    runtime (its log) said: \x1b[2J"),
            "{text}"
        );
        assert!(text.contains("      FAKE2\\x1b]0;title\\x07"), "{text}");
        // A long command line is cut on a character, never inside one.
        assert!(text.contains("é\\x1b é\\x1b"), "{text}");
        assert!(text.contains('…'), "{text}");
    }
}
