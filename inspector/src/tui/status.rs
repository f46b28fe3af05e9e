//! The status line (rate, totals, lost events, probes, live or paused,
//! retention, the why view's key once there are scheduler records) and,
//! while one is open, the prompt of a search or filter.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::app::{App, PromptKind};
use crate::timeline::present::ms_or_s;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn line(app: &App) -> Line<'static> {
    let sep = || Span::styled(" │ ", Style::new().fg(Color::DarkGray));
    let mut spans = Vec::new();
    let (mode, style) = match (&app.replay, app.is_paused()) {
        (Some(r), _) if r.is_playing() => ("PLAYING", Color::Green),
        (Some(_), _) => ("REPLAY", Color::Blue),
        (None, true) => ("PAUSED", Color::Yellow),
        (None, false) => ("LIVE", Color::Green),
    };
    spans.push(Span::styled(
        format!(" {mode} "),
        Style::new()
            .fg(Color::Black)
            .bg(style)
            .add_modifier(Modifier::BOLD),
    ));
    if let Some(r) = &app.replay {
        spans.push(Span::raw(format!(
            " {}/{} +{}",
            r.cursor(),
            r.len(),
            ms_or_s(r.cursor_time().saturating_sub(r.start_time()))
        )));
    } else {
        spans.push(Span::raw(format!(" {:.0} ev/s", app.rate)));
    }
    spans.push(sep());
    spans.push(Span::raw(format!(
        "{} events",
        thousands(app.store.total())
    )));
    spans.push(sep());
    let lost = format!("lost {}", thousands(app.lost));
    spans.push(if app.lost > 0 {
        Span::styled(
            lost,
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        )
    } else {
        Span::raw(lost)
    });
    if app.queue_dropped > 0 {
        spans.push(sep());
        spans.push(Span::styled(
            format!("UI behind: dropped {}", thousands(app.queue_dropped)),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(n) = app.probes {
        spans.push(sep());
        spans.push(Span::raw(format!("{n} probes")));
    }
    if app.store.dropped() > 0 {
        spans.push(sep());
        spans.push(Span::styled(
            format!(
                "kept last {} (dropped {})",
                thousands(app.store.limit() as u64),
                thousands(app.store.dropped())
            ),
            Style::new().fg(Color::Yellow),
        ));
    }
    if let Some(e) = &app.error {
        spans.push(sep());
        spans.push(Span::styled(
            crate::escape::bare(e).into_owned(),
            Style::new().fg(Color::Red),
        ));
    }
    // The why view has something to show: say which key opens it.
    if app.sched_records() > 0 {
        spans.push(sep());
        spans.push(Span::styled("w why", Style::new().fg(Color::DarkGray)));
    }
    spans.push(sep());
    spans.push(Span::styled("? keys", Style::new().fg(Color::DarkGray)));
    Line::from(spans)
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let line = match &app.prompt {
        Some(p) => {
            let label = match p.kind {
                PromptKind::Search => "/",
                PromptKind::Filter => "filter (kind:K,K ctr:ID pid:N words): ",
            };
            Line::from(vec![
                Span::styled(label, Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(crate::escape::bare(&p.text).into_owned()),
                Span::styled("█", Style::new().fg(Color::Gray)),
            ])
        }
        None => line(app),
    };
    frame.render_widget(Paragraph::new(line), area);
}
