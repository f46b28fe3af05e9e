//! The container list: one row per container, from its runtime's first
//! event until it is removed (and for a while after, marked so).

use ratatui::{
    Frame,
    layout::{Constraint, Rect},
    style::{Color, Modifier, Style},
    widgets::{Block, Row, Table, TableState},
};

use super::{app::App, app::Pane, pane_block};
use crate::escape::bare;
use crate::timeline::{ChainLink, Engine, Phase, Role};

/// How far along a container is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowState {
    /// Starting, running or stopping.
    Live,
    /// Running before inspector started: its start was not seen.
    Before,
    /// Deleted, its processes gone; waiting for stragglers.
    Ending,
    /// Its timeline is complete: removed.
    Gone,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ContainerRow {
    pub id: String,
    /// The engine that made it, once its chain tells.
    pub engine: Option<Engine>,
    /// Image and command, where known.
    pub what: String,
    pub phase: Option<Phase>,
    pub start_ns: u64,
    pub last_ns: u64,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    /// Its start failed: no entrypoint ran, so no exit of its own.
    pub failed: bool,
    pub state: RowState,
}

impl ContainerRow {
    pub fn phase_text(&self) -> &'static str {
        match (self.state, self.phase) {
            (RowState::Gone, Some(Phase::Delete)) => "removed",
            (_, Some(p)) => p.name(),
            (_, None) => "-",
        }
    }

    pub fn exit_text(&self) -> String {
        match (&self.exit_code, &self.signal) {
            (Some(c), _) => c.to_string(),
            (None, Some(s)) => bare(s).into_owned(),
            _ if self.failed => "failed".to_string(),
            _ => String::new(),
        }
    }
}

/// Container ids as Docker shows them, escaped: an id is a traced
/// process's argument.
pub fn short_id(id: &str) -> std::borrow::Cow<'_, str> {
    bare(crate::timeline::present::short_id(id))
}

/// `12.3s`, `4m05s`, `2h03m`: an age that fits five columns or so.
pub fn age(ns: u64) -> String {
    let s = ns as f64 / 1e9;
    if s < 60.0 {
        format!("{s:.1}s")
    } else if s < 3600.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!(
            "{}h{:02}m",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    }
}

/// What a container runs, from its chain: the image and command the docker
/// CLI asked for, or the entrypoint's command line.
pub fn describe_container(chain: &[ChainLink]) -> Option<String> {
    if let Some(cli) = chain.iter().find(|l| l.role == Role::Client)
        && let Some(what) = docker_image_and_command(&cli.argv)
    {
        return Some(what);
    }
    let entry = chain.iter().find(|l| l.role == Role::Entrypoint)?;
    if entry.argv.is_empty() {
        Some(entry.comm.clone())
    } else {
        Some(entry.argv.join(" "))
    }
}

/// `docker run --rm -e A=1 IMAGE CMD...` → `IMAGE CMD...`.
fn docker_image_and_command(argv: &[String]) -> Option<String> {
    // docker's flags that take no value; every other flag takes one (unless
    // written `--flag=value`).
    const BOOLEAN: &[&str] = &[
        "--rm",
        "-d",
        "--detach",
        "-i",
        "--interactive",
        "-t",
        "--tty",
        "-it",
        "-ti",
        "-dit",
        "-itd",
        "--init",
        "--privileged",
        "--read-only",
        "-P",
        "--publish-all",
        "--no-healthcheck",
        "--oom-kill-disable",
        "-q",
        "--quiet",
        "-a",
    ];
    let mut args = argv.iter().skip(1);
    // Global flags, then the verb.
    loop {
        let a = args.next()?;
        match a.as_str() {
            "run" | "create" => break,
            "container" => continue,
            _ if a.starts_with('-') => {}
            _ => return None,
        }
    }
    while let Some(a) = args.next() {
        if a.starts_with('-') {
            if !BOOLEAN.contains(&a.as_str()) && !a.contains('=') {
                args.next();
            }
            continue;
        }
        let rest: Vec<&str> = std::iter::once(a.as_str())
            .chain(args.map(String::as_str))
            .collect();
        return Some(rest.join(" "));
    }
    None
}

/// From this width on, the list has an ENGINE column.
const WIDE: u16 = 100;

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let block: Block = pane_block(
        format!(" Containers ({}) ", app.rows.len()),
        app.focus == Pane::Containers,
    );
    // The engine has a column where there is room; the lifecycle pane's
    // title says it in any case.
    let wide = area.width >= WIDE;
    let engine_column: &[&str] = if wide { &["ENGINE"] } else { &[] };
    let header = Row::new(
        ["ID"]
            .iter()
            .chain(engine_column)
            .chain(&["IMAGE / COMMAND", "PHASE", "AGE", "EXIT"])
            .copied(),
    )
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = app.rows.iter().map(|r| {
        let style = match r.state {
            RowState::Gone => Style::new().fg(Color::DarkGray),
            RowState::Live | RowState::Before | RowState::Ending => Style::new(),
        };
        let exit = r.exit_text();
        let exit_style = match r.exit_code {
            Some(0) => Style::new().fg(Color::Green),
            None if exit.is_empty() => Style::new(),
            _ => Style::new().fg(Color::Red),
        };
        let engine =
            wide.then(|| ratatui::text::Span::raw(r.engine.map(Engine::name).unwrap_or("-")));
        let cells = std::iter::once(ratatui::text::Span::raw(short_id(&r.id).into_owned()))
            .chain(engine)
            .chain([
                ratatui::text::Span::raw(bare(&r.what).into_owned()),
                ratatui::text::Span::raw(r.phase_text()),
                ratatui::text::Span::raw(age(app.now_ns.saturating_sub(r.start_ns))),
                ratatui::text::Span::styled(exit, exit_style),
            ]);
        Row::new(cells).style(style)
    });
    let table = Table::new(
        rows,
        std::iter::once(Constraint::Length(12))
            .chain(wide.then_some(Constraint::Length(10)))
            .chain([
                Constraint::Fill(1),
                Constraint::Length(10),
                Constraint::Length(7),
                Constraint::Length(7),
            ]),
    )
    .header(header)
    .block(block)
    .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let selected = app
        .selected_row()
        .and_then(|s| app.rows.iter().position(|r| r.id == s.id));
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
    if app.rows.is_empty() {
        let inner = area.inner(ratatui::layout::Margin::new(2, 2));
        frame.render_widget(
            ratatui::widgets::Paragraph::new(
                "no container yet: run `docker run` in another terminal",
            )
            .style(Style::new().fg(Color::DarkGray)),
            inner,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tui_docker_command_lines_name_image_and_command() {
        let argv = v(&[
            "/usr/bin/docker",
            "run",
            "--rm",
            "-e",
            "A=1",
            "--name=x",
            "inspector/busybox:latest",
            "sh",
            "-c",
            "exit 3",
        ]);
        assert_eq!(
            docker_image_and_command(&argv).as_deref(),
            Some("inspector/busybox:latest sh -c exit 3")
        );
        assert_eq!(docker_image_and_command(&v(&["docker", "ps"])), None);
        assert_eq!(age(1_500_000_000), "1.5s");
        assert_eq!(age(125_000_000_000), "2m05s");
    }
}
