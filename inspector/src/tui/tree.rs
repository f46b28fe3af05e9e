//! The selected container's processes as a tree, each with its role(s), pid
//! and how it ended.

use ratatui::{
    Frame,
    layout::Rect,
    style::{Color, Style},
    text::{Line, Span},
    widgets::Paragraph,
};

use super::{
    app::{App, Pane, Selected},
    pane_block,
};
use crate::escape::bare;
use crate::timeline::{
    ChainLink,
    present::{compact_command, exit_text},
};

/// One process: its links in the chain (one per role it had).
struct Node<'a> {
    pid: u32,
    ppid: u32,
    start_ns: u64,
    links: Vec<&'a ChainLink>,
}

/// What a process ran, short and escaped: `runc create 1a2b3c4d5e6f`, `true`.
fn command(link: &ChainLink) -> String {
    let s = bare(&unescaped_command(link)).into_owned();
    if s.chars().count() > 60 {
        s.chars().take(59).collect::<String>() + "…"
    } else {
        s
    }
}

fn unescaped_command(link: &ChainLink) -> String {
    let argv = &link.argv;
    let Some(name) = argv.first().map(|a| a.rsplit('/').next().unwrap_or(a)) else {
        return link.comm.clone();
    };
    if let Some(compact) = compact_command(link.role, argv) {
        return compact;
    }
    std::iter::once(name)
        .chain(argv.iter().skip(1).map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn lines(s: &Selected) -> Vec<Line<'static>> {
    let mut nodes: Vec<Node> = Vec::new();
    for link in &s.chain {
        match nodes.iter_mut().find(|n| n.pid == link.pid) {
            Some(n) => n.links.push(link),
            None => nodes.push(Node {
                pid: link.pid,
                ppid: link.ppid,
                start_ns: link.start_ns,
                links: vec![link],
            }),
        }
    }
    nodes.sort_by_key(|n| n.start_ns);
    let pids: Vec<u32> = nodes.iter().map(|n| n.pid).collect();
    let mut out = Vec::new();
    // A daemon that forked one of the roots heads it (containerd → shim).
    let roots: Vec<usize> = (0..nodes.len())
        .filter(|&i| !pids.contains(&nodes[i].ppid))
        .collect();
    let mut daemon_done = Vec::new();
    for &r in &roots {
        let parent = nodes[r].ppid;
        if let Some(&(role, pid)) = s.daemons.iter().find(|(_, p)| *p == parent) {
            if !daemon_done.contains(&pid) {
                daemon_done.push(pid);
                out.push(Line::from(vec![
                    Span::raw(format!("{pid:>7} ")),
                    Span::styled(role.name(), Style::new().fg(Color::DarkGray)),
                ]));
            }
            walk(&nodes, r, "", true, true, &mut out);
        } else {
            walk(&nodes, r, "", true, false, &mut out);
        }
    }
    if out.is_empty() {
        out.push(Line::styled(
            "(no process seen yet)",
            Style::new().fg(Color::DarkGray),
        ));
    }
    out
}

fn walk(
    nodes: &[Node],
    i: usize,
    prefix: &str,
    last: bool,
    branch: bool,
    out: &mut Vec<Line<'static>>,
) {
    // Reused pids could make a cycle of parents.
    if prefix.len() > 64 {
        return;
    }
    let n = &nodes[i];
    let (here, below) = match (branch, last) {
        (false, _) => (String::new(), String::new()),
        (true, true) => (format!("{prefix}└─"), format!("{prefix}  ")),
        (true, false) => (format!("{prefix}├─"), format!("{prefix}│ ")),
    };
    let roles = n
        .links
        .iter()
        .map(|l| l.role.name())
        .collect::<Vec<_>>()
        .join(" → ");
    let last_link = n.links.last().expect("a node has a link");
    let mut spans = vec![
        Span::raw(format!("{:>7} ", n.pid)),
        Span::styled(here, Style::new().fg(Color::DarkGray)),
        Span::styled(roles, Style::new().fg(Color::Cyan)),
        Span::raw(format!(" {}", command(last_link))),
    ];
    if let Some(end) = exit_text(last_link.exit_code, last_link.signal.as_deref()) {
        let color = if last_link.exit_code == Some(0) {
            Color::Green
        } else {
            Color::Red
        };
        spans.push(Span::styled(format!(" → {end}"), Style::new().fg(color)));
    }
    out.push(Line::from(spans));
    let children: Vec<usize> = (0..nodes.len())
        .filter(|&c| nodes[c].ppid == n.pid && nodes[c].pid != n.pid)
        .collect();
    for (k, &c) in children.iter().enumerate() {
        walk(nodes, c, &below, k + 1 == children.len(), true, out);
    }
}

pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let block = pane_block(" Processes ".to_string(), app.focus == Pane::Tree);
    let text = match &app.selected {
        Some(s) => lines(s),
        None => Vec::new(),
    };
    frame.render_widget(
        Paragraph::new(text)
            .block(block)
            .scroll((app.tree_scroll, 0)),
        area,
    );
}
