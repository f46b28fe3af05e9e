//! The text view of a timeline: a waterfall of phases, the chain of roles, and
//! the steps.

use std::fmt::Write as _;

use super::{ContainerTimeline, Role};

const BAR_WIDTH: usize = 40;

fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

fn short(id: &str) -> &str {
    if id.len() == 64 { &id[..12] } else { id }
}

/// Shims and runtimes by what they do, not by their long paths:
/// `runc create 1a2b3c4d5e6f`, `containerd-shim-runc-v2 -id 1a2b3c4d5e6f start`.
fn compact_command(role: Role, argv: &[String]) -> Option<String> {
    let name = argv.first()?.rsplit('/').next()?;
    match role {
        Role::Runtime => {
            let (verb, id) = super::role::runtime_command(argv)?;
            Some(format!("{name} {verb} {}", short(&id)))
        }
        Role::Shim | Role::ShimStart => {
            let id = super::role::shim_container(argv)?;
            let last = argv
                .last()
                .filter(|a| matches!(a.as_str(), "start" | "delete"));
            Some(format!(
                "{name} -id {}{}",
                short(&id),
                last.map(|a| format!(" {a}")).unwrap_or_default()
            ))
        }
        _ => None,
    }
}

/// Renders one container's timeline for a terminal.
pub fn text(t: &ContainerTimeline, with_steps: bool) -> String {
    let mut out = String::new();
    let ending = match (&t.exit_code, &t.signal) {
        (Some(code), _) => format!(", exited {code}"),
        (None, Some(sig)) => format!(", killed by {sig}"),
        _ => String::new(),
    };
    let state = match (t.complete, t.already_running) {
        (_, true) => " (running before the trace began)",
        (true, false) => "",
        (false, false) => " (incomplete)",
    };
    let _ = writeln!(
        out,
        "container {}{state}: {}{ending}, {} events, started {}",
        short(&t.id),
        ms(t.duration_ns),
        t.events,
        t.start_time
    );

    let _ = writeln!(out, "  phases");
    let span = t.duration_ns.max(1) as f64;
    for p in &t.phases {
        let from = ((p.start_ns - t.start_ns) as f64 / span * BAR_WIDTH as f64) as usize;
        let len = ((p.duration_ns as f64 / span * BAR_WIDTH as f64).round() as usize).max(1);
        let from = from.min(BAR_WIDTH - 1);
        let len = len.min(BAR_WIDTH - from);
        let bar: String = " ".repeat(from) + &"█".repeat(len) + &" ".repeat(BAR_WIDTH - from - len);
        let _ = writeln!(
            out,
            "    {:<10} {:>10} │{bar}│ {:>10}",
            p.phase.name(),
            format!("+{}", ms(p.start_ns - t.start_ns)),
            ms(p.duration_ns)
        );
    }
    if t.phases.is_empty() {
        let _ = writeln!(out, "    (none seen)");
    }

    let _ = writeln!(out, "  chain");
    for link in &t.chain {
        let cmd = if link.argv.is_empty() {
            link.comm.clone()
        } else if let Some(cmd) = compact_command(link.role, &link.argv) {
            cmd
        } else {
            let mut s = link.argv.join(" ");
            if s.len() > 100 {
                s.truncate(100);
                s.push('…');
            }
            s
        };
        let exit = match (&link.exit_code, &link.signal) {
            (Some(c), _) => format!(" → exit {c}"),
            (None, Some(s)) => format!(" → {s}"),
            _ => String::new(),
        };
        let ns = if link.nspid > 0
            && (link.role == Role::Entrypoint || link.role == Role::EntrypointChild)
        {
            format!(" (pid {} inside)", link.nspid)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "    {:<17} pid {:<7}{ns} {cmd}{exit}",
            link.role.name(),
            link.pid
        );
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
                s.detail()
            );
        }
    }
    out
}
