//! Snapshot tests: the real app, fed the recorded fixtures, drawn on ratatui's
//! `TestBackend` and compared by insta with the screens kept in `snapshots/`
//! beside this file. A changed screen fails and leaves a `.snap.new` to look
//! at with `cargo insta review` (or `INSTA_UPDATE=always` rewrites them).
//!
//! What changes from one recording or machine to the next is redacted before
//! the comparison: pids, clock times, container ids and kernel times. That is
//! done here ([`redact`]) rather than with insta's regex filters, because it
//! keeps every width (a replacement as long as what it replaces, so columns
//! stay where they are) and knows the recording's own pids, which no fixed
//! pattern tells from other numbers.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::{Terminal, backend::TestBackend};

use super::{App, draw};
use crate::{
    event::{Body, Event},
    timeline::reader::for_each_event,
};

const DOCKER_RUN: &str = include_str!("../../tests/fixtures/docker-run-rm-true.jsonl");
const RUNC_RUN: &str = include_str!("../../tests/fixtures/runc-run-exit-3.jsonl");

fn events(jsonl: &str) -> Vec<Event> {
    let mut out = Vec::new();
    for_each_event(jsonl.as_bytes(), |e| out.push(e)).unwrap();
    out
}

/// Every pid the recording names: redacted wherever they appear.
fn pids(events: &[Event]) -> Vec<String> {
    let mut pids: Vec<u32> = Vec::new();
    for e in events {
        if let Some(t) = &e.task {
            pids.extend([t.tgid, t.tid, t.ptgid]);
        }
        match &e.body {
            Body::Fork {
                child_tgid,
                child_tid,
                ..
            } => pids.extend([*child_tgid, *child_tid]),
            Body::CgroupAttach {
                task_tgid,
                task_tid,
                ..
            } => pids.extend([*task_tgid, *task_tid]),
            _ => {}
        }
    }
    pids.retain(|&p| p >= 100);
    pids.sort_unstable();
    pids.dedup();
    pids.iter().map(u32::to_string).collect()
}

/// Replaces what changes from one recording to the next, keeping widths:
/// container ids (hex runs of 8+ with a digit and a letter), known pids,
/// clock times, and numbers of 10 digits or more (kernel times, inodes).
fn redact(text: &str, pids: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_alphanumeric() {
            let start = i;
            while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let hex = word.len() >= 8
                && word
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
                && word.chars().any(|c| c.is_ascii_digit())
                && word.chars().any(|c| c.is_ascii_alphabetic());
            let digits = word.chars().all(|c| c.is_ascii_digit());
            if hex {
                out.push_str(&"x".repeat(word.len()));
            } else if digits && (word.len() >= 10 || pids.contains(&word)) {
                out.push_str(&"#".repeat(word.len()));
            } else {
                out.push_str(&word);
            }
            continue;
        }
        out.push(c);
        i += 1;
    }
    // HH:MM:SS.mmm clock times.
    let mut clock = String::with_capacity(out.len());
    let b: Vec<char> = out.chars().collect();
    let mut i = 0;
    while i < b.len() {
        let is_clock = i + 12 <= b.len()
            && b[i..i + 12].iter().enumerate().all(|(k, c)| match k {
                2 | 5 => *c == ':',
                8 => *c == '.',
                _ => c.is_ascii_digit(),
            });
        if is_clock {
            clock.push_str("hh:mm:ss.mmm");
            i += 12;
        } else {
            clock.push(b[i]);
            i += 1;
        }
    }
    clock
}

fn screen(app: &mut App, width: u16, height: u16) -> String {
    app.refresh();
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| draw(f, app)).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut lines = Vec::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        for x in 0..buffer.area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        lines.push(line.trim_end().to_string());
    }
    lines.join("\n") + "\n"
}

/// The screen, redacted, is the snapshot `snapshots/{name}.snap`.
fn check(name: &str, app: &mut App, width: u16, height: u16, pids: &[String]) {
    let screen = redact(&screen(app, width, height), pids);
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(name, screen);
    });
}

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn docker_app() -> (App, Vec<String>) {
    let ev = events(DOCKER_RUN);
    let pids = pids(&ev);
    (App::replay(ev, 100_000), pids)
}

#[test]
fn tui_snapshot_docker_run_whole_screen_80x24() {
    let (mut app, pids) = docker_app();
    check("docker-run-80x24", &mut app, 80, 24, &pids);
}

#[test]
fn tui_snapshot_container_listed_while_it_is_created() {
    let ev = events(DOCKER_RUN);
    let pids = pids(&ev);
    // The cursor just after `runc create` began: the container is listed,
    // in its create phase, with no exit code yet.
    let create = ev
        .iter()
        .position(
            |e| matches!(&e.body, Body::Exec { argv, .. } if argv.iter().any(|a| a == "create")),
        )
        .unwrap();
    let mut app = App::replay(ev, 100_000);
    app.seek(create + 10);
    assert_eq!(app.rows.len(), 1);
    assert_eq!(app.rows[0].phase_text(), "create");
    assert_eq!(app.rows[0].exit_text(), "");
    check("docker-run-creating-80x24", &mut app, 80, 24, &pids);
}

#[test]
fn tui_snapshot_process_tree() {
    let (mut app, pids) = docker_app();
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    check("process-tree-80x24", &mut app, 80, 24, &pids);
}

#[test]
fn tui_snapshot_event_detail() {
    let (mut app, pids) = docker_app();
    key(&mut app, KeyCode::BackTab);
    key(&mut app, KeyCode::Char('k'));
    key(&mut app, KeyCode::Enter);
    check("event-detail-80x24", &mut app, 80, 24, &pids);
}

#[test]
fn tui_snapshot_help() {
    let (mut app, pids) = docker_app();
    key(&mut app, KeyCode::Char('?'));
    check("help-80x24", &mut app, 80, 24, &pids);
}

#[test]
fn tui_snapshot_stream_filtered_by_kind_and_text() {
    let (mut app, pids) = docker_app();
    key(&mut app, KeyCode::Char('f'));
    typed(&mut app, "kind:exec,exit runc");
    key(&mut app, KeyCode::Enter);
    let all_match = (0..app.store.view_len())
        .all(|i| matches!(app.store.view_at(i).unwrap().kind(), "exec" | "exit"));
    assert!(all_match && app.store.view_len() > 0);
    check("stream-filtered-80x24", &mut app, 80, 24, &pids);
}

#[test]
fn tui_snapshot_runc_run_wide() {
    let ev = events(RUNC_RUN);
    let pids = pids(&ev);
    let mut app = App::replay(ev, 100_000);
    assert_eq!(app.rows[0].exit_text(), "3");
    check("runc-run-exit-3-160x40", &mut app, 160, 40, &pids);
}

#[test]
fn tui_snapshot_status_line_with_lost_and_dropped_events_live() {
    let ev = events(DOCKER_RUN);
    let pids = pids(&ev);
    let mut app = App::new(100);
    app.probes = Some(31);
    for e in ev {
        app.ingest(e);
    }
    app.ingest(Event {
        v: 1,
        ktime_ns: 3_442_600_000_000,
        time: String::new(),
        task: None,
        body: Body::Lost { count: 7, total: 7 },
    });
    app.tick(3_442_600_000_000);
    assert_eq!(app.store.retained(), 100);
    assert_eq!(app.store.dropped(), 161);
    assert_eq!(app.lost, 7);
    // Pausing freezes the stream while events still arrive.
    key(&mut app, KeyCode::Char(' '));
    assert!(app.is_paused());
    check("live-paused-lost-80x24", &mut app, 80, 24, &pids);
}

/// The runc recording with its entrypoint renamed by a hostile process:
/// a screen clear, a forged line and a right-to-left override in its comm,
/// file name and arguments.
fn hostile_app() -> (App, Vec<String>) {
    const HOSTILE: &str = "\x1b[2J\nFAKE\u{202e}";
    let mut ev = events(RUNC_RUN);
    for e in &mut ev {
        if let Some(t) = &mut e.task
            && t.comm == "sh"
        {
            t.comm = HOSTILE.into();
        }
        if let Body::Exec { filename, argv, .. } = &mut e.body
            && filename == "/bin/sh"
        {
            *filename = format!("/tmp/{HOSTILE}");
            *argv = vec![format!("/tmp/{HOSTILE}"), HOSTILE.into()];
        }
    }
    let pids = pids(&ev);
    (App::replay(ev, 100_000), pids)
}

#[test]
fn tui_snapshot_hostile_names_are_escaped() {
    let (mut app, pids) = hostile_app();
    // The process tree shows the entrypoint's command line.
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    let shown = screen(&mut app, 160, 40);
    assert!(
        !shown
            .chars()
            .any(|c| c != '\n' && crate::escape::needs_escape(c)),
        "{shown:?}"
    );
    assert!(shown.contains(r"\x1b[2J\nFAKE\u{202e}"), "{shown}");
    assert!(!shown.lines().any(|l| l.starts_with("FAKE")), "{shown}");
    check("hostile-names-160x40", &mut app, 160, 40, &pids);
    // And every field of the hostile exec in its detail window.
    let (mut app, _) = hostile_app();
    key(&mut app, KeyCode::Char('/'));
    typed(&mut app, "fake");
    key(&mut app, KeyCode::Enter);
    key(&mut app, KeyCode::BackTab);
    key(&mut app, KeyCode::Enter);
    assert!(app.popup.is_some());
    let shown = screen(&mut app, 160, 40);
    assert!(
        !shown
            .chars()
            .any(|c| c != '\n' && crate::escape::needs_escape(c)),
        "{shown:?}"
    );
    assert!(shown.contains(r"\x1b[2J\nFAKE\u{202e}"), "{shown}");
}

#[test]
fn tui_replay_cursor_steps_back_and_forth() {
    let (mut app, _) = docker_app();
    let n = app.replay.as_ref().unwrap().len();
    key(&mut app, KeyCode::Char('<'));
    assert_eq!(app.replay.as_ref().unwrap().cursor(), 1);
    key(&mut app, KeyCode::Char(']'));
    key(&mut app, KeyCode::Char(']'));
    assert_eq!(app.store.total(), 3);
    key(&mut app, KeyCode::Char('['));
    assert_eq!(app.store.total(), 2);
    key(&mut app, KeyCode::Char('}'));
    let after_jump = app.replay.as_ref().unwrap().cursor();
    assert!(after_jump > 2);
    key(&mut app, KeyCode::Char('>'));
    assert_eq!(app.replay.as_ref().unwrap().cursor(), n);
    assert_eq!(app.rows.len(), 1);
    assert_eq!(app.rows[0].exit_text(), "0");
}

#[test]
fn tui_redaction_keeps_widths() {
    let pids = vec!["29094".to_string()];
    let line = "14:06:23.510 d2a6a593 docker[29094] 3441968877677 created";
    let r = redact(line, &pids);
    assert_eq!(
        r,
        "hh:mm:ss.mmm xxxxxxxx docker[#####] ############# created"
    );
    assert_eq!(r.len(), line.len());
}

#[test]
fn tui_event_loop_takes_in_events_redraws_and_quits_on_q() {
    use tokio::sync::mpsc::{channel, unbounded_channel};

    use super::{Feed, event_loop};

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut terminal = Terminal::new(TestBackend::new(80, 24)).unwrap();
    let mut app = App::new(1000);
    let (feed_tx, feed_rx) = channel(4);
    let (key_tx, key_rx) = unbounded_channel();
    feed_tx.try_send(Feed::Events(events(DOCKER_RUN))).unwrap();
    let quit_later = async {
        // After a frame or two, as a user would.
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        key_tx
            .send(crossterm::event::Event::Key(KeyEvent::new(
                KeyCode::Char('q'),
                KeyModifiers::NONE,
            )))
            .unwrap();
    };
    let (result, ()) = runtime.block_on(async {
        tokio::join!(
            event_loop(&mut terminal, &mut app, Some(feed_rx), key_rx),
            quit_later
        )
    });
    result.unwrap();
    assert!(app.quit);
    assert_eq!(app.store.total(), 260);
    let screen: String = terminal
        .backend()
        .buffer()
        .content()
        .iter()
        .map(|c| c.symbol())
        .collect();
    assert!(screen.contains("inspector/busybox:latest true"), "{screen}");
    assert!(screen.contains(" LIVE "), "{screen}");
}

/// The why view's tests: a tiny `runc run` whose scheduler records say
/// where its time went, the times in ms from `T0`.
mod why {
    use ratatui::style::Color;

    use super::{
        super::{
            app::Popup,
            explain::{EVERY, Explained},
            why::NO_RECORDS,
        },
        *,
    };
    use crate::event::Task;

    const T0: u64 = 5_000_000_000_000;
    const MS: u64 = 1_000_000;
    /// Small pids: the redaction leaves them, so the view's pid column shows.
    const RUNC: u32 = 40;
    const REEXEC: u32 = 41;
    const INIT: u32 = 42;
    const IDLE: (u32, u32) = (0, 0);

    fn at(ms: f64) -> u64 {
        T0 + (ms * MS as f64) as u64
    }

    /// runc's process, or one of its making: its parent and start.
    fn task(pid: u32, comm: &str) -> Task {
        let (ptgid, start_ns) = match pid {
            // Started before the recording: not made under our eyes.
            RUNC => (1, T0 - 5 * MS),
            REEXEC => (RUNC, at(1.0)),
            _ => (REEXEC, at(3.0)),
        };
        Task {
            tgid: pid,
            tid: pid,
            ptgid,
            nspid: pid,
            comm: comm.into(),
            start_ns,
            cgroup_id: 1,
            pidns: 1,
            mntns: 1,
        }
    }

    fn ev(ms: f64, task: Option<Task>, body: Body) -> Event {
        Event {
            v: 1,
            ktime_ns: at(ms),
            time: String::new(),
            task,
            body,
        }
    }

    fn exec(ms: f64, pid: u32, comm: &str, filename: &str, argv: &[&str]) -> Event {
        let body = Body::Exec {
            filename: filename.into(),
            argv: argv.iter().map(|a| a.to_string()).collect(),
            argv_truncated: false,
            old_tid: None,
            ret: 0,
            errno: None,
        };
        ev(ms, Some(task(pid, comm)), body)
    }

    fn fork(ms: f64, parent: u32, comm: &str, child: u32) -> Event {
        let body = Body::Fork {
            child_tgid: child,
            child_tid: child,
            child_start_ns: at(ms),
            thread: false,
            flags: None,
            flags_raw: None,
        };
        ev(ms, Some(task(parent, comm)), body)
    }

    fn exit(ms: f64, pid: u32, comm: &str) -> Event {
        let body = Body::Exit {
            exit_code: Some(0),
            signal: None,
            core_dumped: false,
            status: 0,
        };
        ev(ms, Some(task(pid, comm)), body)
    }

    fn switch(
        ms: f64,
        prev: (u32, u32),
        state: &str,
        syscall: Option<&str>,
        next: (u32, u32),
    ) -> Event {
        let body = Body::SchedSwitch {
            cpu: 0,
            task_tgid: prev.0,
            task_tid: prev.1,
            state: state.into(),
            syscall: syscall.map(String::from),
            next_tgid: next.0,
            next_tid: next.1,
            task_cpu_ns: None,
            next_cpu_ns: None,
            irq_steal_ns: None,
        };
        ev(ms, None, body)
    }

    fn wakeup(ms: f64, task: (u32, u32), waker: (u32, u32)) -> Event {
        let body = Body::SchedWakeup {
            cpu: 0,
            task_tgid: task.0,
            task_tid: task.1,
            waker_tgid: waker.0,
            waker_tid: waker.1,
        };
        ev(ms, None, body)
    }

    /// `runc run`: runc runs 1 ms, makes its re-exec and waits for it
    /// (`epoll_pwait`); the re-exec makes the init and ends; the init waits
    /// 10 ms in `read` for what no followed task sends, waits 1 ms for a
    /// CPU, runs, wakes runc and execs the entrypoint at 16 ms. That runs
    /// until 18 ms; runc, woken by its exit, ends at 20 ms. `comm` is the
    /// entrypoint's, `read` the call the init waits in.
    fn events(comm: &str, read: &str) -> Vec<Event> {
        let runc = (RUNC, RUNC);
        let reexec = (REEXEC, REEXEC);
        let init = (INIT, INIT);
        vec![
            exec(
                0.0,
                RUNC,
                "runc",
                "/usr/sbin/runc",
                &["runc", "run", "--bundle", "/b", "tiny"],
            ),
            switch(0.0, IDLE, "R", None, runc),
            fork(1.0, RUNC, "runc", REEXEC),
            switch(2.0, runc, "S", Some("epoll_pwait"), reexec),
            exec(
                2.5,
                REEXEC,
                "runc:[1:CHILD]",
                "/proc/self/exe",
                &["runc", "init"],
            ),
            fork(3.0, REEXEC, "runc:[1:CHILD]", INIT),
            exit(3.5, REEXEC, "runc:[1:CHILD]"),
            switch(3.5, IDLE, "R", None, init),
            switch(4.0, init, "S", Some(read), IDLE),
            wakeup(14.0, init, IDLE),
            switch(15.0, IDLE, "R", None, init),
            wakeup(15.5, runc, init),
            exec(16.0, INIT, comm, "/bin/sleep", &["sleep", "0.002"]),
            switch(16.5, init, "R", None, runc),
            switch(17.0, runc, "S", Some("wait4"), init),
            exit(18.0, INIT, comm),
            wakeup(18.0, runc, init),
            switch(19.0, IDLE, "R", None, runc),
            exit(20.0, RUNC, "runc"),
        ]
    }

    /// The colour of the first cell of the first `text` on screen.
    fn colour_of(app: &mut App, width: u16, height: u16, text: &str) -> Option<Color> {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| draw(f, app)).unwrap();
        let buffer = terminal.backend().buffer();
        for y in 0..height {
            let line: Vec<&str> = (0..width).map(|x| buffer[(x, y)].symbol()).collect();
            let joined = line.concat();
            if let Some(at) = joined.find(text) {
                // Cells to the match: some symbols are more than a byte.
                let mut bytes = 0;
                let x = line.iter().position(|s| {
                    bytes += s.len();
                    bytes > at
                })?;
                return Some(buffer[(x as u16, y)].fg);
            }
        }
        None
    }

    fn why_screen(app: &mut App, width: u16, height: u16) -> String {
        key(app, KeyCode::Char('w'));
        assert_eq!(app.popup, Some(Popup::Why));
        screen(app, width, height)
    }

    #[test]
    fn tui_snapshot_why_view_of_a_tiny_runc_run() {
        let mut app = App::replay(events("sleep", "read"), 100_000);
        assert_eq!(app.rows.len(), 1);
        assert_eq!(app.sched_records(), 11);
        key(&mut app, KeyCode::Char('w'));
        let Some(Explained::Why(why)) = &app.why.shown else {
            panic!("{:?}", app.why.shown);
        };
        // The init's 10 ms in read are its own: no followed task woke it.
        assert_eq!(why.start_latency_ms, 16.0, "{why:?}");
        assert_eq!(why.teardown_ms, Some(2.0));
        let total: f64 = why.critical_path.iter().map(|s| s.dur_ms).sum();
        assert!((total - 16.0).abs() < 1e-9, "the path covers the start");
        check("why-tiny-runc-run-120x40", &mut app, 120, 40, &[]);
        // Coloured by state.
        for (text, colour) in [
            ("blocked  in read", Color::Red),
            ("running  on a CPU", Color::Green),
            ("runnable waiting", Color::Yellow),
        ] {
            assert_eq!(colour_of(&mut app, 120, 40, text), Some(colour), "{text}");
        }
        // Scrolled to the bottom: the teardown's path ends the view.
        key(&mut app, KeyCode::Char('G'));
        let bottom = screen(&mut app, 120, 40);
        assert!(bottom.contains("teardown path: 2 stretches"), "{bottom}");
        key(&mut app, KeyCode::Char('g'));
        assert_eq!(app.why.scroll, 0);
        // `w` again closes it.
        key(&mut app, KeyCode::Char('w'));
        assert_eq!(app.popup, None);
    }

    #[test]
    fn tui_why_view_says_what_to_do_without_scheduler_records() {
        let (mut app, pids) = docker_app();
        assert_eq!(app.sched_records(), 0);
        let shown = why_screen(&mut app, 80, 24);
        assert!(shown.contains("no scheduler records:"), "{shown}");
        // Without records, no hint of the view on the status line.
        assert!(!shown.contains("w why"), "{shown}");
        assert!(shown.contains("`inspector tui --sched`"), "{shown}");
        assert!(shown.contains("`inspector trace --sched`"), "{shown}");
        assert_eq!(
            NO_RECORDS,
            "no scheduler records: start `inspector tui --sched`, or replay a recording made \
             with `inspector trace --sched`"
        );
        check("why-no-records-80x24", &mut app, 80, 24, &pids);
    }

    #[test]
    fn tui_why_view_escapes_hostile_commands_and_causes() {
        const HOSTILE: &str = "\x1b[2J\nFAKE\u{202e}";
        let mut app = App::replay(events(HOSTILE, "re\x1b]0;x\x07ad"), 100_000);
        let shown = why_screen(&mut app, 160, 48);
        assert!(
            !shown
                .chars()
                .any(|c| c != '\n' && crate::escape::needs_escape(c)),
            "{shown:?}"
        );
        assert!(shown.contains(r"\x1b[2J\nFAKE"), "{shown}");
        assert!(shown.contains(r"blocked in re\x1b]0;x\x07ad"), "{shown}");
        assert!(
            !shown.lines().any(|l| l.trim_start().starts_with("FAKE")),
            "{shown}"
        );
    }

    #[test]
    fn tui_why_view_is_worked_out_lazily_not_per_event() {
        let mut ev = events("sleep", "read");
        let last = ev.split_off(12);
        // Live: the start is not over; records keep coming.
        let mut app = App::new(100_000);
        for e in ev {
            app.ingest(e);
        }
        app.tick(at(15.5));
        app.refresh();
        key(&mut app, KeyCode::Char('w'));
        assert_eq!(app.why.shown, Some(Explained::NotStarted));
        // Events alone do not work it out again; a frame does, once
        // `EVERY` has passed since.
        for e in last {
            app.ingest(e);
        }
        assert_eq!(app.why.shown, Some(Explained::NotStarted));
        std::thread::sleep(EVERY);
        app.refresh();
        assert!(
            matches!(app.why.shown, Some(Explained::Why(_))),
            "{:?}",
            app.why.shown
        );
        let shown = screen(&mut app, 120, 40);
        assert!(
            shown.contains(" LIVE ") && shown.contains("w why"),
            "{shown}"
        );
    }
}
