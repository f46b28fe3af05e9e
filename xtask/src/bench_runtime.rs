//! `cargo xtask bench runtime`: the bundled runtime against runc and its
//! peers, in the same run: `run` (create + start + wait + delete) of
//! /bin/true in a busybox bundle, taking turns so machine noise falls on all
//! alike. youki is measured when installed (`cargo xtask setup` builds it);
//! crun when it can run here (1.8 refuses a hybrid cgroup layout whose
//! cgroup2 tree holds any controller): otherwise the bench says why.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::{
    bench::{self, Row, median},
    docker, util,
};

const ROUNDS: usize = 100;
const WARMUP: usize = 5;

/// A busybox bundle in `dir` whose config is runc's own default (so that the
/// baseline runs exactly what runc would) running `/bin/true`.
pub fn true_bundle(dir: &Path) -> Result<()> {
    docker::make_busybox_rootfs(&dir.join("rootfs"))?;
    util::run(
        Command::new("runc")
            .arg("spec")
            .current_dir(dir)
            .stdout(Stdio::null()),
    )
    .context("runc spec (is runc installed? cargo xtask setup)")?;
    let path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    config["process"]["terminal"] = false.into();
    config["process"]["args"] = serde_json::json!(["/bin/true"]);
    std::fs::write(&path, serde_json::to_string_pretty(&config)?)?;
    Ok(())
}

/// How long one `run` of /bin/true may take before it counts as hung
/// (youki 0.7 now and then waits forever for a child that already exited).
const HUNG: Duration = Duration::from_secs(10);

/// One `RUNTIME --root ROOT run --bundle DIR ID`: its wall-clock seconds, or
/// `None` when it hung and was killed.
fn run_once(runtime: &str, root: &Path, dir: &Path, id: &str) -> Result<Option<f64>> {
    let started = Instant::now();
    let child = Command::new(runtime)
        .arg("--root")
        .arg(root)
        .args(["run", "--bundle"])
        .arg(dir)
        .arg(id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {runtime}"))?;
    // A watchdog, so that the measured wait is a plain wait.
    let pid = child.id() as i32;
    let (done, wait_done) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let hung = wait_done.recv_timeout(HUNG).is_err();
        if hung {
            // SAFETY: killing our own child, not yet reaped (the wait below blocks on it).
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        hung
    });
    let out = child.wait_with_output()?;
    let took = started.elapsed().as_secs_f64();
    let _ = done.send(());
    if watchdog.join().unwrap_or(false) {
        // Its container may be left: delete it, and say nothing of its time.
        let _ = Command::new(runtime)
            .arg("--root")
            .arg(root)
            .args(["delete", "--force", id])
            .output();
        return Ok(None);
    }
    if !out.status.success() {
        bail!(
            "{runtime} run /bin/true failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(Some(took))
}

/// The peers to measure besides runc: those installed that can run the
/// bundle here; a row saying why for the others.
fn peers(dir: &Path) -> (Vec<&'static str>, Vec<Row>) {
    let mut ok = Vec::new();
    let mut notes = Vec::new();
    for peer in ["youki", "crun"] {
        if !util::succeeds(Command::new(peer).arg("--version")) {
            notes.push(Row::note(&format!(
                "{peer}: not installed (cargo xtask setup)"
            )));
            continue;
        }
        match run_once(
            peer,
            &dir.join(format!("state-{peer}-try")),
            dir,
            "bench-try",
        ) {
            Ok(Some(_)) => ok.push(peer),
            Ok(None) => notes.push(Row::note(&format!("{peer}: hung on its first run here"))),
            Err(e) => notes.push(Row::note(&format!("{peer}: cannot run here: {e}"))),
        }
    }
    (ok, notes)
}

pub fn run() -> Result<Vec<Row>> {
    let dir = util::root().join("target/bench-runtime");
    let _ = std::fs::remove_dir_all(&dir);
    true_bundle(&dir)?;

    let ours = docker::runtime_binary().to_string_lossy().into_owned();
    let (peers, mut rows) = peers(&dir);
    let mut runtimes = vec![ours.as_str(), "runc"];
    runtimes.extend(&peers);
    let times: [Vec<Option<f64>>; 4] = bench::alternating(WARMUP, ROUNDS, |which, round| {
        // Fewer than four runtimes: the missing ones measure nothing.
        let Some(runtime) = runtimes.get(which) else {
            return Ok(None);
        };
        let root = dir.join(format!("state-{which}"));
        run_once(runtime, &root, &dir, &format!("bench-{round}"))
    })?;
    for (runtime, runs) in runtimes.iter().zip(&times) {
        let hung = runs.iter().filter(|t| t.is_none()).count();
        if hung > 0 {
            let name = Path::new(runtime)
                .file_name()
                .unwrap_or_default()
                .to_string_lossy();
            rows.push(Row::note(&format!(
                "{name}: {hung} of {} runs hung (killed after {} s, not counted)",
                runs.len(),
                HUNG.as_secs()
            )));
        }
    }
    let medians: Vec<f64> = times
        .into_iter()
        .map(|runs| median(runs.into_iter().flatten().collect()))
        .collect();
    let (ours_s, runc_s) = (medians[0], medians[1]);
    rows.push(Row::new(
        "runc run /bin/true, median",
        runc_s * 1000.0,
        "ms",
    ));
    rows.push(Row::new(
        "inspector-runtime run /bin/true, median",
        ours_s * 1000.0,
        "ms",
    ));
    for (k, peer) in peers.iter().enumerate() {
        let peer_s = medians[2 + k];
        rows.push(Row::new(
            format!("{peer} run /bin/true, median"),
            peer_s * 1000.0,
            "ms",
        ));
        rows.push(Row::new(
            format!("{peer} / runc, run /bin/true (medians)"),
            peer_s / runc_s,
            "x",
        ));
        rows.push(
            Row::new(
                format!("inspector-runtime / {peer}, run /bin/true (medians)"),
                ours_s / peer_s,
                "x",
            )
            .at_most(1.0),
        );
    }
    rows.push(
        Row::new(
            "inspector-runtime / runc, run /bin/true (medians)",
            ours_s / runc_s,
            "x",
        )
        .at_most(0.25),
    );
    Ok(rows)
}
