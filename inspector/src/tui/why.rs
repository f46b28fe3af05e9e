//! The why view (`w`): where the selected container's time went, from the
//! scheduler's records (`inspector tui --sched`, or a replay of a recording
//! made with `inspector trace --sched`). The start's latency and the
//! teardown's, the causes that took most of them, the time by role, then the
//! critical paths themselves, a line per stretch coloured by what the
//! process was doing. Said in the text view's words (`timeline --why`, from
//! [`present`](crate::timeline::present)); commands and causes come from the
//! traced system and are escaped.

use std::collections::BTreeSet;

use ratatui::{
    Frame,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Clear, Paragraph, Wrap},
};

use super::{
    app::App,
    containers::short_id,
    explain::{Explained, WhyView},
    popup::{centered, popup_block},
};
use crate::{
    escape::bare,
    timeline::{
        present::{cut, ms_f, why_start, why_teardown, why_who},
        why::{Segment, State, Why, top_causes},
    },
};

/// What the view says without records of the container's processes.
pub const NO_RECORDS: &str = "no scheduler records: start `inspector tui --sched`, or replay a \
                              recording made with `inspector trace --sched`";

/// The causes listed per path, as the text view lists them.
const CAUSES: usize = 8;

fn state_style(state: State) -> Style {
    Style::new().fg(match state {
        State::Running => Color::Green,
        State::Runnable => Color::Yellow,
        State::Blocked => Color::Red,
        State::Unknown => Color::DarkGray,
    })
}

/// The state a cause of [`top_causes`] begins with (`blocked in futex`).
fn state_of_cause(cause: &str) -> State {
    [State::Running, State::Runnable, State::Blocked]
        .into_iter()
        .find(|s| cause.starts_with(s.name()))
        .unwrap_or(State::Unknown)
}

/// A line of the view. A path can have thousands of stretches: each is
/// written out only when it is on screen.
enum Row<'a> {
    Text(Line<'static>),
    Segment(&'a Segment),
}

impl Row<'_> {
    fn line(&self) -> Line<'static> {
        match self {
            Row::Text(line) => line.clone(),
            Row::Segment(s) => segment_line(s),
        }
    }
}

fn bold(text: String) -> Line<'static> {
    Line::styled(text, Style::new().add_modifier(Modifier::BOLD))
}

fn dim(text: String) -> Line<'static> {
    Line::styled(text, Style::new().fg(Color::DarkGray))
}

/// `  42%`: `ms` of `total`.
fn share(ms: f64, total: f64) -> String {
    if total > 0.0 {
        format!("{:>4.0}%", ms / total * 100.0)
    } else {
        "    -".to_string()
    }
}

/// The causes that took most of a path, largest first, with their share.
fn causes(out: &mut Vec<Row>, path: &[Segment], total: f64) {
    for (role, pid, comm, cause, ms) in top_causes(path, CAUSES) {
        out.push(Row::Text(Line::from(vec![
            Span::raw(format!(
                "  {:>10} {}  {:<40} ",
                ms_f(ms),
                share(ms, total),
                cut(why_who(role, pid, &comm), 40)
            )),
            Span::styled(
                bare(&cause).into_owned(),
                state_style(state_of_cause(&cause)),
            ),
        ])));
    }
}

/// Columns of a path's stretches: start, duration, role, pid, command,
/// state, cause.
fn segment_header() -> Line<'static> {
    dim(format!(
        "  {:>10} {:>9}  {:<16} {:>7}  {:<15} {:<8} {}",
        "start", "duration", "role", "pid", "command", "state", "cause"
    ))
}

fn segment_line(s: &Segment) -> Line<'static> {
    let style = state_style(s.state);
    Line::from(vec![
        Span::raw(format!(
            "  {:>10} {:>9}  {:<16} {:>7}  {:<15} ",
            format!("+{}", ms_f(s.start_ms)),
            ms_f(s.dur_ms),
            cut(s.role.name().to_string(), 16),
            s.pid,
            cut(bare(&s.comm).into_owned(), 15),
        )),
        Span::styled(format!("{:<8} ", s.state.name()), style),
        Span::styled(bare(&s.cause).into_owned(), style),
    ])
}

/// Time by role: on the start's path (and its share), and on a CPU, every
/// thread of the role's processes counted.
fn by_role(out: &mut Vec<Row>, why: &Why) {
    out.push(Row::Text(bold("time by role".into())));
    out.push(Row::Text(dim(format!(
        "  {:<18} {:>11} {:>6} {:>11}",
        "role", "on the path", "share", "on a CPU"
    ))));
    let roles: BTreeSet<&String> = why.by_role.keys().chain(why.on_cpu_ms.keys()).collect();
    let mut roles: Vec<(&String, f64, f64)> = roles
        .into_iter()
        .map(|r| {
            let path = why.by_role.get(r).copied().unwrap_or(0.0);
            (r, path, why.on_cpu_ms.get(r).copied().unwrap_or(0.0))
        })
        .collect();
    roles.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    for (role, path, cpu) in roles {
        out.push(Row::Text(Line::raw(format!(
            "  {:<18} {:>11}  {} {:>11}",
            cut(bare(role).into_owned(), 18),
            ms_f(path),
            share(path, why.start_latency_ms),
            ms_f(cpu)
        ))));
    }
}

fn path<'a>(out: &mut Vec<Row<'a>>, what: &str, path: &'a [Segment]) {
    out.push(Row::Text(bold(format!(
        "{what}: {} stretches, from the container's first event",
        path.len()
    ))));
    out.push(Row::Text(segment_header()));
    out.extend(path.iter().map(Row::Segment));
}

fn rows(view: &WhyView) -> Vec<Row<'_>> {
    let mut out = Vec::new();
    let say = |text: &str| Row::Text(Line::raw(text.to_string()));
    let why = match &view.shown {
        Some(Explained::Why(why)) => why,
        Some(Explained::NoRecords) => return vec![say(NO_RECORDS)],
        Some(Explained::Forgotten) => {
            return vec![say(
                "its scheduler records were dropped: about as many are kept as events \
                 (--retain), the oldest go first",
            )];
        }
        Some(Explained::NoContainer) => return vec![say("no container to explain: select one")],
        Some(Explained::Gone) => return vec![say("this container is no longer listed")],
        Some(Explained::Before) => {
            return vec![say(
                "it was running before inspector started: its start was not seen",
            )];
        }
        Some(Explained::NotStarted) => {
            return vec![say(
                "nothing to explain yet: neither its entrypoint's exec nor a failure was seen",
            )];
        }
        None => return Vec::new(),
    };
    out.push(Row::Text(bold(why_start(why.start_latency_ms))));
    if let Some(teardown) = why.teardown_ms {
        out.push(Row::Text(bold(why_teardown(teardown))));
    }
    if let Some(ms) = view.forgotten_ms {
        out.push(Row::Text(Line::styled(
            format!(
                "scheduler records before +{} were dropped (--retain): unknown there",
                ms_f(ms)
            ),
            Style::new().fg(Color::Yellow),
        )));
    }
    out.push(Row::Text(Line::raw("")));
    out.push(Row::Text(bold("largest causes of the start".into())));
    causes(&mut out, &why.critical_path, why.start_latency_ms);
    if let Some(teardown) = why.teardown_ms {
        out.push(Row::Text(bold("largest causes of the teardown".into())));
        causes(&mut out, &why.teardown_path, teardown);
    }
    out.push(Row::Text(Line::raw("")));
    by_role(&mut out, why);
    out.push(Row::Text(Line::raw("")));
    path(&mut out, "critical path", &why.critical_path);
    if !why.teardown_path.is_empty() {
        out.push(Row::Text(Line::raw("")));
        path(&mut out, "teardown path", &why.teardown_path);
    }
    out
}

pub fn render(frame: &mut Frame, app: &App) {
    let view = &app.why;
    let area = frame.area();
    let id = view.id.as_deref().map(short_id).unwrap_or_default();
    let rows = rows(view);
    // A sentence instead of a why: a small window, wrapped so that it is
    // read whole on a narrow screen. The table's lines are not wrapped: a
    // wrap would shift them.
    let sentence = !matches!(view.shown, Some(Explained::Why(_)));
    let (rect, title) = if sentence {
        let width = area.width.saturating_sub(4).min(90);
        (
            centered(area, width, 6),
            format!(" Why {id} (w or Esc closes) "),
        )
    } else {
        let rect = centered(
            area,
            area.width.saturating_sub(4),
            area.height.saturating_sub(2),
        );
        (
            rect,
            format!(" Why {id} (w or Esc closes, ↑↓ PgUp PgDn scroll) "),
        )
    };
    let block = popup_block(&title);
    let height = block.inner(rect).height as usize;
    // Scrolled no further than the last line at the bottom.
    let top = view.scroll.min(rows.len().saturating_sub(height));
    view.top.set(top);
    view.height.set(height);
    let text: Vec<Line> = rows.iter().skip(top).take(height).map(Row::line).collect();
    let mut text = Paragraph::new(text).block(block);
    if sentence {
        text = text.wrap(Wrap { trim: true });
    }
    frame.render_widget(Clear, rect);
    frame.render_widget(text, rect);
}
