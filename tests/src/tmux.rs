//! The TUI in a real terminal: a tmux session running the real `inspector`
//! binary ([`TmuxSession`]), read back screen by screen, and what
//! `inspector run --tui` leaves for its user.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{paths::inspector_bin, probe::KEEP};

/// The file `inspector run --tui --name ID` wrote the container's output to,
/// `$TMPDIR/inspector-run-ID-output-XXXXXX/output`, if there is one.
pub fn run_tui_output(id: &str) -> Option<PathBuf> {
    let prefix = format!("inspector-run-{id}-output-");
    std::fs::read_dir(std::env::temp_dir())
        .ok()?
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path().join("output"))
}

/// Removes what `inspector run --tui --name ID` left for its user: the
/// directory of the container's output.
pub fn remove_run_tui_output(id: &str) {
    if let Some(dir) = run_tui_output(id).as_deref().and_then(Path::parent) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Runs tmux (the terminal the TUI tests drive) and returns what it printed.
pub fn tmux(args: &[&str]) -> String {
    let out = Command::new("tmux")
        .args(args)
        .stderr(Stdio::null())
        .output()
        .expect("run tmux");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tmux session running `inspector ARGS` (the real binary in a real
/// terminal), killed on drop.
pub struct TmuxSession {
    pub name: String,
}

impl TmuxSession {
    /// A session running `inspector ARGS` (a shell's words).
    pub fn start_with(test: &str, width: u16, height: u16, args: &str) -> TmuxSession {
        let name = format!("inspector-{test}-{}", std::process::id());
        let _ = tmux(&["kill-session", "-t", &name]);
        let command = format!(
            "INSPECTOR_KEEP_PROBE={} exec {} {args}",
            KEEP,
            inspector_bin().display()
        );
        // The pane stays after inspector exits, to read its exit status and
        // what it left on the screen.
        let out = Command::new("tmux")
            .args(["new-session", "-d", "-s", &name])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .arg(&command)
            .args([";", "set-option", "-t", &name, "remain-on-exit", "on"])
            .status()
            .expect("start tmux");
        assert!(out.success(), "tmux new-session failed");
        TmuxSession { name }
    }

    pub fn pane(&self) -> String {
        format!("{}:0.0", self.name)
    }

    pub fn screen(&self) -> String {
        tmux(&["capture-pane", "-p", "-t", &self.pane()])
    }

    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t"];
        let pane = self.pane();
        args.push(&pane);
        args.extend_from_slice(keys);
        tmux(&args);
    }

    /// `Some(status)` once inspector has exited.
    pub fn exited(&self) -> Option<i32> {
        let s = tmux(&[
            "display-message",
            "-p",
            "-t",
            &self.pane(),
            "#{pane_dead} #{pane_dead_status}",
        ]);
        let mut parts = s.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("1"), Some(code)) => code.parse().ok(),
            _ => None,
        }
    }

    pub fn pid(&self) -> i32 {
        tmux(&["display-message", "-p", "-t", &self.pane(), "#{pane_pid}"])
            .trim()
            .parse()
            .expect("pane pid")
    }

    /// Waits until `ok` holds for the screen; fails with the last screen.
    pub fn wait_for(&self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            if let Some(code) = self.exited() {
                panic!("inspector tui exited ({code}) waiting for {what}; screen:\n{screen}");
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits for inspector to exit, and returns its exit status. Read from
    /// the kernel (a zombie's `/proc/PID/stat` has its wait status) rather
    /// than only from tmux, which was seen to leave its pane's process
    /// unreaped for minutes.
    pub fn wait_exit(&self) -> i32 {
        let pid = self.pid();
        let start = Instant::now();
        let mut told = false;
        loop {
            if let Some(code) = zombie_status(pid).or_else(|| self.exited()) {
                return code;
            }
            if !told && start.elapsed() > Duration::from_secs(10) {
                told = true;
                eprintln!("inspector tui still exiting after 10 s; its threads:");
                for task in std::fs::read_dir(format!("/proc/{pid}/task"))
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    let stack =
                        std::fs::read_to_string(task.path().join("stack")).unwrap_or_default();
                    eprintln!("{}:\n{stack}", task.path().display());
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "inspector tui did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The exit status of process `pid` once it has exited but is not reaped
/// yet: the last field of `/proc/PID/stat` is its wait status.
fn zombie_status(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    if fields.first() != Some(&"Z") {
        return None;
    }
    let status: i32 = fields.last()?.parse().ok()?;
    Some(if status & 0x7f == 0 {
        (status >> 8) & 0xff
    } else {
        128 + (status & 0x7f)
    })
}

impl Drop for TmuxSession {
    fn drop(&mut self) {
        let _ = tmux(&["kill-session", "-t", &self.name]);
    }
}

/// `inspector tui` and its filter, in a [`TmuxSession`].
impl TmuxSession {
    pub fn start(test: &str, width: u16, height: u16) -> TmuxSession {
        Self::start_with(test, width, height, "tui")
    }

    /// Types the filter that shows container `short` only (`f`, then
    /// `ctr:ID`, Enter), and with `confirm` waits until the stream's title
    /// shows it, typing it again if it does not.
    pub fn filter_to(&self, short: &str, confirm: bool) {
        let shown = |s: &str| s.contains(&format!("filter: ctr:{short} "));
        for _ in 0..3 {
            // Esc first: out of any prompt or popup, the filter cleared.
            self.keys(&["Escape", "Escape", "f"]);
            self.keys(&["-l", &format!("ctr:{short}")]);
            self.keys(&["Enter"]);
            if !confirm {
                return;
            }
            let deadline = Instant::now() + Duration::from_secs(3);
            while Instant::now() < deadline {
                if shown(&self.screen()) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        panic!(
            "the filter on {short} did not take; screen:\n{}",
            self.screen()
        );
    }
}
