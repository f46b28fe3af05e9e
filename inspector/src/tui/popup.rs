//! Windows over the panes: the keys (`?`), every field of one event (Enter),
//! and where a container's time went (`w`, drawn by [`super::why`]).

use ratatui::{
    Frame,
    layout::{Constraint, Flex, Layout, Rect},
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, BorderType, Clear, Paragraph, Wrap},
};

use super::{
    app::{App, Popup},
    keys::HELP,
};
use crate::escape::bare;

/// A centred rectangle of at most `width` x `height`.
pub(super) fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let [area] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(area);
    let [area] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    area
}

pub(super) fn popup_block(title: &str) -> Block<'static> {
    Block::bordered()
        .border_type(BorderType::Double)
        .title(title.to_string())
        .border_style(Style::new().fg(Color::Yellow))
}

/// Every field of the event, as in its JSON form (docs/events.md), one per
/// line, then what inspector made of it.
pub fn detail_lines(app: &App, seq: u64) -> Vec<Line<'static>> {
    let Some(stored) = app.store.get(seq) else {
        return vec![Line::raw("(this event is no longer retained)")];
    };
    let event = app.store.full_event(stored);
    let mut lines = Vec::new();
    let key_style = Style::new().add_modifier(Modifier::BOLD);
    if let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(&event) {
        let width = fields.keys().map(|k| k.len()).max().unwrap_or(0);
        // The fields every event has first, in the order of docs/events.md,
        // then the kind's own.
        const COMMON: &[&str] = &[
            "kind",
            "time",
            "ktime_ns",
            "comm",
            "tgid",
            "tid",
            "ptgid",
            "nspid",
            "start_ns",
            "cgroup_id",
            "pidns",
            "mntns",
            "v",
        ];
        let mut fields: Vec<(String, serde_json::Value)> = fields.into_iter().collect();
        fields.sort_by_key(|(k, _)| COMMON.iter().position(|c| c == k).unwrap_or(COMMON.len()));
        for (k, v) in fields {
            // Strings as they are, but for what a terminal would obey; other
            // values (argv) in JSON, where serde_json escaped them.
            let v = match v {
                serde_json::Value::String(s) => bare(&s).into_owned(),
                other => bare(&other.to_string()).into_owned(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<width$}", bare(&k)), key_style),
                Span::raw(format!("  {v}")),
            ]));
        }
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![
        Span::styled("container", key_style),
        Span::raw(format!(
            "  {}",
            bare(stored.container.as_deref().unwrap_or("(none)"))
        )),
    ]));
    lines.push(Line::from(vec![
        Span::styled("seq", key_style),
        Span::raw(format!("  {} of the stream", stored.seq)),
    ]));
    lines
}

pub fn render(frame: &mut Frame, app: &App) {
    let area = frame.area();
    match &app.popup {
        None => {}
        Some(Popup::Help) => {
            let lines: Vec<Line> = HELP
                .iter()
                .map(|(keys, what)| {
                    Line::from(vec![
                        Span::styled(
                            format!("{keys:<18}"),
                            Style::new().add_modifier(Modifier::BOLD),
                        ),
                        Span::raw(*what),
                    ])
                })
                .collect();
            let rect = centered(area, 76, lines.len() as u16 + 2);
            frame.render_widget(Clear, rect);
            frame.render_widget(
                Paragraph::new(lines).block(popup_block(" Keys (? or Esc closes) ")),
                rect,
            );
        }
        Some(Popup::Why) => super::why::render(frame, app),
        Some(Popup::Detail(seq)) => {
            let lines = detail_lines(app, *seq);
            let rect = centered(area, area.width.saturating_sub(4), lines.len() as u16 + 2);
            frame.render_widget(Clear, rect);
            frame.render_widget(
                Paragraph::new(lines)
                    .block(popup_block(" Event (Esc closes, ↑↓ scroll) "))
                    .wrap(Wrap { trim: false })
                    .scroll((app.detail_scroll, 0)),
                rect,
            );
        }
    }
}
