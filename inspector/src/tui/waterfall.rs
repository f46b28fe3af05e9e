//! The selected container's lifecycle: the chain of roles with their pids, and
//! a waterfall of its phases on a time axis with their durations.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Paragraph, Wrap},
};

use super::{
    app::{App, Pane, Selected},
    containers::short_id,
    pane_block,
};
use crate::timeline::{
    Phase, Role,
    present::{made_by, ms_or_s},
};

fn phase_color(p: Phase) -> Color {
    match p {
        Phase::Request => Color::Blue,
        Phase::ShimStart => Color::Cyan,
        Phase::Create => Color::Yellow,
        Phase::Created => Color::LightYellow,
        Phase::Start => Color::Magenta,
        Phase::Running => Color::Green,
        Phase::Stopped => Color::LightRed,
        Phase::Delete => Color::Red,
    }
}

/// `dockerd 812 → containerd 830 → shim 7787 → runtime 7805 → entrypoint 7815`:
/// one process per role, the first of each.
pub fn chain_line(s: &Selected) -> Vec<(Role, u32)> {
    let mut out = Vec::new();
    let first = |role: Role| s.chain.iter().find(|l| l.role == role).map(|l| l.pid);
    if let Some(cli) = first(Role::Client) {
        out.push((Role::Client, cli));
    }
    let containerd = s
        .chain
        .iter()
        .find(|l| l.role == Role::ShimStart)
        .map(|l| l.ppid)
        .filter(|pid| s.daemons.contains(&(Role::Containerd, *pid)));
    if !out.is_empty() || containerd.is_some() {
        // dockerd only matters to containers a daemon started.
        if let Some(&(_, pid)) = s.daemons.iter().find(|(r, _)| *r == Role::Dockerd) {
            out.push((Role::Dockerd, pid));
        }
    }
    let containerd = containerd.or_else(|| {
        s.daemons
            .iter()
            .find(|(r, _)| *r == Role::Containerd && first(Role::Shim).is_some())
            .map(|&(_, p)| p)
    });
    if let Some(pid) = containerd {
        out.push((Role::Containerd, pid));
    }
    for role in [
        Role::Shim,
        Role::Runtime,
        Role::RuntimeInit,
        Role::Entrypoint,
    ] {
        if let Some(pid) = first(role) {
            out.push((role, pid));
        }
    }
    out
}

pub fn lines(s: &Selected, width: u16) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    // A failure first: what went wrong, then the engine's and runtime's words.
    if let Some(f) = &s.failure {
        let red = Style::new().fg(Color::Red);
        lines.push(Line::from(vec![
            Span::styled("failed: ", red.add_modifier(Modifier::BOLD)),
            Span::styled(crate::escape::bare(&f.summary).into_owned(), red),
        ]));
        for m in &f.messages {
            let Some(first) = m.text.lines().find(|l| !l.trim().is_empty()) else {
                continue;
            };
            lines.push(Line::from(vec![
                Span::styled(
                    format!("  {} said: ", m.role.name()),
                    Style::new().fg(Color::DarkGray),
                ),
                Span::raw(crate::escape::bare(first).into_owned()),
            ]));
        }
    }
    let mut chain: Vec<Span> = Vec::new();
    for (i, (role, pid)) in chain_line(s).into_iter().enumerate() {
        if i > 0 {
            chain.push(Span::styled(" → ", Style::new().fg(Color::DarkGray)));
        }
        chain.push(Span::styled(
            role.name().to_string(),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        chain.push(Span::raw(format!(" {pid}")));
    }
    if chain.is_empty() {
        chain.push(Span::raw("(no process seen yet)"));
    }
    lines.push(Line::from(chain));

    let total = s.end_ns.saturating_sub(s.start_ns);
    // name(10) start(10) │bar│ duration(9)
    let bar_width = (width as usize)
        .saturating_sub(10 + 1 + 10 + 2 + 2 + 9)
        .max(4);
    let span = total.max(1) as f64;
    for p in &s.phases {
        let from =
            ((p.start_ns.saturating_sub(s.start_ns)) as f64 / span * bar_width as f64) as usize;
        let from = from.min(bar_width - 1);
        let len = ((p.duration_ns as f64 / span * bar_width as f64).round() as usize)
            .max(1)
            .min(bar_width - from);
        let current = s.phase == Some(p.phase)
            && matches!(
                s.state,
                super::containers::RowState::Live | super::containers::RowState::Before
            );
        let name_style = if current {
            Style::new().add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:<10}", p.phase.name()), name_style),
            Span::raw(format!(
                " {:>10} │",
                format!("+{}", ms_or_s(p.start_ns.saturating_sub(s.start_ns)))
            )),
            Span::raw(" ".repeat(from)),
            Span::styled("█".repeat(len), Style::new().fg(phase_color(p.phase))),
            Span::raw(" ".repeat(bar_width - from - len)),
            Span::raw(format!("│ {:>9}", ms_or_s(p.duration_ns))),
        ]));
    }
    if s.phases.is_empty() {
        lines.push(Line::raw("(no phase seen yet)"));
    }
    lines
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let title = match &app.selected {
        Some(s) => {
            // The failure's own words open the pane.
            let ending = match (&s.exit_code, &s.signal, &s.failure) {
                (_, _, Some(_)) => ", failed".to_string(),
                (Some(c), _, _) => format!(", exited {c}"),
                (None, Some(sig), _) => format!(", killed by {}", crate::escape::bare(sig)),
                _ => String::new(),
            };
            // What made it last: a narrow pane cuts it before the exit.
            format!(
                " Lifecycle {} · {}{ending}{} ",
                short_id(&s.id),
                ms_or_s(s.end_ns.saturating_sub(s.start_ns)),
                made_by(s.engine, s.runtime.as_deref()),
            )
        }
        None => " Lifecycle ".to_string(),
    };
    let block = pane_block(title, app.focus == Pane::Waterfall);
    let inner_width = block.inner(area).width;
    let text = match &app.selected {
        Some(s) => lines(s, inner_width),
        None => vec![Line::styled(
            "select a container",
            Style::new().fg(Color::DarkGray),
        )],
    };
    frame.render_widget(
        Paragraph::new(text)
            .block(block)
            .wrap(Wrap { trim: false })
            .scroll((app.waterfall_scroll, 0)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{Failure, Message};

    #[test]
    fn a_failed_container_opens_with_its_failure_and_words_escaped() {
        let failure = Failure {
            summary: "the hook /bin/false exited 1 during create".to_string(),
            role: Role::Hook,
            pid: 7,
            phase: Some(Phase::Create),
            exit_code: Some(1),
            signal: None,
            syscall: None,
            errno: None,
            subject: Some("/bin/false".to_string()),
            killed_by: None,
            messages: vec![Message {
                role: Role::Runtime,
                pid: 6,
                stream: "runtime_log".to_string(),
                text: "\n\x1b[2Jhook failed\nsecond line".to_string(),
            }],
        };
        let s = Selected {
            id: "c".to_string(),
            engine: None,
            runtime: None,
            start_ns: 0,
            end_ns: 10,
            phases: Vec::new(),
            chain: Vec::new(),
            phase: Some(Phase::Create),
            exit_code: None,
            signal: None,
            failure: Some(failure),
            state: super::super::containers::RowState::Gone,
            daemons: Vec::new(),
        };
        let text: Vec<String> = lines(&s, 80)
            .iter()
            .map(|l| l.spans.iter().map(|s| s.content.as_ref()).collect())
            .collect();
        assert_eq!(
            text[0],
            "failed: the hook /bin/false exited 1 during create"
        );
        assert_eq!(text[1], r"  runtime said: \x1b[2Jhook failed");
    }
}
