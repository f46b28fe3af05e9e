//! `inspector tui`, the real binary in a real terminal (tmux): a `docker run`
//! in another window shows up in its container list and reaches its end with
//! its exit code; quitting or SIGTERM restores the terminal and detaches the
//! probes.

use std::time::{Duration, Instant};

use tests::{
    DOCKER, Need, TempDir, TmuxSession, assert_no_links_left, image, probe_test,
    settled_inspector_links, tmux,
};

fn attached(screen: &str) -> bool {
    screen.contains(" LIVE ") && screen.contains("probes")
}

/// The container list's row of container `short`, if listed.
fn row<'a>(screen: &'a str, short: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.contains(short) && l.contains("busybox"))
}

#[test]
fn tui_shows_a_docker_run_until_it_stops_with_exit_code_0() {
    let Some(_lock) = probe_test(&[Need::Docker, Need::Tmux]) else {
        return;
    };
    let programs_before = settled_inspector_links();
    let session = TmuxSession::start("tui-docker", 120, 40);
    session.wait_for("the probes to attach", Duration::from_secs(30), attached);

    // `docker run` in another window of the same session, as a user would.
    let dir = TempDir::new("tui");
    let cidfile = dir.path().join("cid");
    let statusfile = dir.path().join("status");
    let run = format!(
        "{DOCKER} run --rm --cidfile {} {} true; echo $? > {}",
        cidfile.display(),
        image(),
        statusfile.display()
    );
    tmux(&["new-window", "-d", "-t", &session.name, &run]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut phases_seen: Vec<String> = Vec::new();
    let mut short = None;
    while !statusfile.exists() {
        assert!(Instant::now() < deadline, "docker run did not finish");
        if short.is_none()
            && let Ok(id) = std::fs::read_to_string(&cidfile)
            && id.trim().len() == 64
        {
            let s = id.trim()[..12].to_string();
            // Other containers may come and go on the machine: show ours.
            session.filter_to(&s, false);
            short = Some(s);
        }
        if let Some(s) = &short
            && let Some(line) = row(&session.screen(), s)
        {
            phases_seen.push(line.to_string());
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    let short_seen = short;
    let status = std::fs::read_to_string(&statusfile).unwrap();
    assert_eq!(status.trim(), "0", "docker run failed");
    let id = std::fs::read_to_string(&cidfile).unwrap();
    let short = id.trim()[..12].to_string();
    // Filtered on it (again, if it ended before the cidfile was read).
    session.filter_to(&short, short_seen.is_some());

    // Listed, ended with exit code 0, its waterfall through `stopped`.
    session.wait_for(
        "the container to be listed with exit code 0",
        Duration::from_secs(15),
        |s| row(s, &short).is_some_and(|l| l.trim_end_matches(['│', '║', ' ']).ends_with(" 0")),
    );
    let screen = session.wait_for(
        "the waterfall to reach the stopped phase",
        Duration::from_secs(10),
        |s| {
            s.contains(&format!("Lifecycle {short}"))
                && s.contains("exited 0")
                && s.lines().any(|l| l.contains("stopped") && l.contains('█'))
        },
    );
    eprintln!("rows seen while docker ran: {phases_seen:#?}\nfinal screen:\n{screen}");
    // Whether it was caught while starting depends on timing (its whole
    // life is about half a second); the snapshot tests check that a
    // container is listed from its runtime's start, deterministically.

    // q quits, restores the terminal and detaches the probes.
    session.keys(&["q"]);
    assert_eq!(session.wait_exit(), 0, "inspector tui failed");
    let after = session.screen();
    assert!(
        !after.contains("Containers ("),
        "the terminal was not restored:\n{after}"
    );
    assert_no_links_left(programs_before);
}

#[test]
fn tui_restores_the_terminal_and_detaches_on_sigterm() {
    let Some(_lock) = probe_test(&[Need::Docker, Need::Tmux]) else {
        return;
    };
    let programs_before = settled_inspector_links();
    let session = TmuxSession::start("tui-sigterm", 80, 24);
    session.wait_for("the probes to attach", Duration::from_secs(30), attached);
    // Usable at 80x24: every pane is there.
    let screen = session.screen();
    for pane in ["Containers (", "Lifecycle", "Events (", "? keys"] {
        assert!(screen.contains(pane), "no {pane} at 80x24:\n{screen}");
    }
    // Resizing redraws at the new size.
    tmux(&[
        "resize-window",
        "-t",
        &session.name,
        "-x",
        "100",
        "-y",
        "30",
    ]);
    session.wait_for("a redraw at 100x30", Duration::from_secs(5), |s| {
        s.lines()
            .next()
            .is_some_and(|top| top.chars().count() == 100 && top.contains("Containers ("))
    });
    // SAFETY: signalling the process tmux started for this test.
    unsafe { libc::kill(session.pid(), libc::SIGTERM) };
    assert_eq!(session.wait_exit(), 0, "inspector tui failed on SIGTERM");
    let after = session.screen();
    assert!(
        !after.contains("Containers ("),
        "the terminal was not restored:\n{after}"
    );
    assert_no_links_left(programs_before);
}

#[test]
fn run_tui_shows_its_container_live_and_exits_with_its_code() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::Tmux, Need::BundledRuntime]) else {
        return;
    };
    let links_before = settled_inspector_links();
    let id = format!("tui-run-{}", std::process::id());
    let session = TmuxSession::start_with(
        "run-tui",
        140,
        40,
        &format!("run --tui --name {id} -- /bin/sh -c 'echo hello from the tui; sleep 1; exit 4'"),
    );
    // Filtered on the container from the start; it runs, ends and is deleted
    // while the TUI watches.
    let screen = session.wait_for(
        "the container to end with exit code 4",
        Duration::from_secs(30),
        |s| {
            s.contains(&format!("filter: ctr:{id}"))
                && s.contains(&format!("Lifecycle {id}"))
                && s.contains("exited 4")
                && s.contains("delete")
        },
    );
    assert!(screen.contains("sleep 1"), "{screen}");
    session.keys(&["q"]);
    assert_eq!(
        session.wait_exit(),
        4,
        "inspector run exits with the container's code"
    );
    let printed = tests::run_tui_output(&id)
        .and_then(|output| std::fs::read_to_string(output).ok())
        .unwrap_or_default();
    tests::remove_run_tui_output(&id);
    assert_eq!(
        printed, "hello from the tui\n",
        "the container's output file"
    );
    assert!(
        !std::path::Path::new("/run/inspector-runtime")
            .join(&id)
            .exists(),
        "the container's state was left behind"
    );
    assert_no_links_left(links_before);
}

#[test]
fn closing_the_run_tui_stops_a_running_container() {
    let Some(_lock) = probe_test(&[Need::Trace, Need::Tmux, Need::BundledRuntime]) else {
        return;
    };
    let id = format!("tui-stop-{}", std::process::id());
    let session = TmuxSession::start_with(
        "run-tui-stop",
        140,
        40,
        &format!("run --tui --name {id} -- /bin/sleep 60"),
    );
    session.wait_for("the container to run", Duration::from_secs(30), |s| {
        s.contains(&format!("Lifecycle {id}")) && s.contains("running")
    });
    let started = Instant::now();
    session.keys(&["q"]);
    // sleep, as pid 1, ignores SIGTERM: SIGKILL after the grace period.
    assert_eq!(session.wait_exit(), 137);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        !std::path::Path::new("/run/inspector-runtime")
            .join(&id)
            .exists(),
        "the container's state was left behind"
    );
    tests::remove_run_tui_output(&id);
}

/// `inspector tui --sched` live: a `docker run` in another window, then `w`
/// on its row shows where its start's time went, the path through dockerd.
#[test]
fn tui_sched_shows_why_a_docker_run_took_its_time() {
    let Some(_lock) = probe_test(&[Need::Docker, Need::Tmux]) else {
        return;
    };
    let session = TmuxSession::start_with("tui-why", 120, 50, "tui --sched");
    session.wait_for("the probes to attach", Duration::from_secs(30), attached);
    let dir = TempDir::new("tui-why");
    let cidfile = dir.path().join("cid");
    let status = std::process::Command::new(DOCKER)
        .args(["run", "--rm", "--cidfile"])
        .arg(&cidfile)
        .arg(image())
        .arg("true")
        .status()
        .unwrap();
    assert!(status.success());
    let id = std::fs::read_to_string(&cidfile).unwrap();
    let short = id.trim()[..12].to_string();
    session.filter_to(&short, true);
    session.wait_for("the container to end", Duration::from_secs(15), |s| {
        s.contains(&format!("Lifecycle {short}")) && s.contains("exited 0")
    });
    session.keys(&["w"]);
    let screen = session.wait_for("the why view", Duration::from_secs(10), |s| {
        s.contains(&format!("Why {short}")) && s.contains("largest causes of the start")
    });
    assert!(
        screen.contains("(client's exec → entrypoint's exec)"),
        "{screen}"
    );
    assert!(
        screen.contains("dockerd"),
        "the path runs through dockerd:\n{screen}"
    );
    session.keys(&["w", "q"]);
    assert_eq!(session.wait_exit(), 0, "inspector tui failed");
}
