//! The event stream: the retained events that pass the filter, newest at the
//! bottom, following new ones until paused or scrolled back.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{
    app::{App, Pane},
    pane_block,
    store::Stored,
};
use crate::{escape::bare, output};

/// One event on one line: `14:06:23.510 f260ba86 runc[7805] unshare(...) = 0`.
pub fn line(app: &App, s: &Stored) -> Line<'static> {
    let who = match &s.task {
        Some(t) if t.tid != t.tgid => format!("{}[{}/{}]", bare(&t.comm), t.tgid, t.tid),
        Some(t) => format!("{}[{}]", bare(&t.comm), t.tgid),
        None => "inspector".to_string(),
    };
    let ctr = s
        .container
        .as_deref()
        .map(|c| bare(&c.chars().take(8).collect::<String>()).into_owned())
        .unwrap_or_else(|| "-".into());
    let what = output::describe(&s.body());
    let failed = what.contains("= -1 ");
    Line::from(vec![
        Span::styled(
            app.store.clock(s.ktime_ns),
            Style::new().fg(Color::DarkGray),
        ),
        Span::raw(" "),
        Span::styled(format!("{ctr:<8}"), Style::new().fg(Color::Cyan)),
        Span::raw(" "),
        Span::styled(who, Style::new().fg(Color::Yellow)),
        Span::raw(" "),
        Span::styled(
            what,
            if failed {
                Style::new().fg(Color::Red)
            } else {
                Style::new()
            },
        ),
    ])
}

/// The positions in the filtered view of the lines to show, for `height` lines.
fn window(app: &App, height: usize) -> (usize, usize) {
    let n = app.store.view_len();
    if n == 0 || height == 0 {
        return (0, 0);
    }
    let bottom = match app.stream.anchor {
        Some(seq) => app.store.view_position(seq).unwrap_or(0),
        None => n - 1,
    };
    let mut top = bottom.saturating_sub(height - 1);
    if let Some(sel) = app.stream.selected.and_then(|s| app.store.view_position(s)) {
        // Keep the view where it was while the selection stays in it.
        let was = app.store.view_position(app.stream.top.get()).unwrap_or(0);
        top = if sel < was {
            sel
        } else if sel >= was + height {
            sel + 1 - height
        } else {
            was
        };
        top = top.min(n.saturating_sub(height));
    }
    (top, (top + height).min(n))
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let filter = app.store.filter();
    let mut title = format!(" Events ({}) ", app.store.view_len());
    if !filter.is_empty() {
        title = format!(
            " Events ({}) filter: {} ",
            app.store.view_len(),
            bare(&filter.to_string())
        );
    }
    if let Some(done) = app.store.filtering() {
        title = format!("{title}(filtering {:.0}%) ", done * 100.0);
    }
    let block = pane_block(title, app.focus == Pane::Stream);
    let inner = block.inner(area);
    let height = inner.height as usize;
    app.stream.height.set(height);
    let (from, to) = window(app, height);
    if let Some(s) = app.store.view_at(from) {
        app.stream.top.set(s.seq);
    }
    let last_seq = app
        .store
        .view_len()
        .checked_sub(1)
        .and_then(|i| app.store.view_at(i))
        .map(|s| s.seq);
    let lines: Vec<Line> = (from..to)
        .filter_map(|i| app.store.view_at(i))
        .map(|s| {
            let l = line(app, s);
            let cursor = match (app.stream.selected, &app.replay) {
                (Some(sel), _) => sel == s.seq,
                // In a replay the last event shown is the time cursor.
                (None, Some(_)) => Some(s.seq) == last_seq,
                (None, None) => false,
            };
            if cursor {
                l.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                l
            }
        })
        .collect();
    let empty = lines.is_empty();
    frame.render_widget(Paragraph::new(lines).block(block), area);
    if empty {
        let hint = if filter.is_empty() {
            "no event yet"
        } else {
            "no event matches the filter (Esc clears it)"
        };
        frame.render_widget(
            Paragraph::new(hint).style(Style::new().fg(Color::DarkGray)),
            inner,
        );
    }
}
