//! `cargo xtask bench run`: `inspector run -- /bin/true` end to end (probes
//! attached, container created, started, waited for and deleted, timeline
//! printed) against `runc run` of the same root filesystem, alternating the
//! two so machine noise falls on both alike.
//!
//! Run after run, as a user or a CI loop does, the probe's programs stay
//! loaded (see the probe's `pinned`); each run here attaches them itself
//! (what the run before left attached is let go before each timed run, so
//! that runc is not timed with it): that is the number with the target. A
//! cold start, the first run after a boot or after `inspector unload`, loads
//! the probe into the kernel; it is measured too.

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    bench::{self, Row, median},
    bench_runtime, util,
};

const ROUNDS: usize = 20;
const WARMUP: usize = 3;
/// Cold starts: each one after `inspector unload`.
const COLD_ROUNDS: usize = 5;

pub fn run() -> Result<Vec<Row>> {
    let dir = util::root().join("target/bench-run");
    let _ = std::fs::remove_dir_all(&dir);
    bench_runtime::true_bundle(&dir)?;
    let rootfs = dir.join("rootfs");

    let inspector = util::root().join("target/release/inspector");
    let time = |which: usize, id: &str| -> Result<(f64, String)> {
        // Nothing of inspector attached before either: runc's time must not
        // carry the probe an earlier run kept attached (switched off), and
        // inspector's then attaches the kept programs itself, slower than
        // taking a keeper's links over (`cargo xtask bench startup` measures
        // both).
        bench::quiesce()?;
        let started = Instant::now();
        let out = if which == 0 {
            Command::new(&inspector)
                .args(["run", "--rootfs"])
                .arg(&rootfs)
                .args(["--name", id, "--", "/bin/true"])
                .stdin(Stdio::null())
                .output()
                .context("cannot start inspector run")?
        } else {
            Command::new("runc")
                .arg("--root")
                .arg(dir.join("runc-state"))
                .args(["run", "--bundle"])
                .arg(&dir)
                .arg(id)
                .stdin(Stdio::null())
                .output()
                .context("cannot start runc")?
        };
        let took = started.elapsed().as_secs_f64();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let name = ["inspector run", "runc run"][which];
        if !out.status.success() {
            bail!("{name} of /bin/true failed: {}\n{stderr}", out.status);
        }
        if which == 0 && !stderr.contains("phases") {
            bail!("inspector run printed no timeline:\n{stderr}");
        }
        Ok((took, stderr))
    };

    let [ours_runs, runc_runs] = bench::alternating(WARMUP, ROUNDS, |which, round| {
        time(which, &format!("bench-run-{round}"))
    })?;
    // inspector's own account of the container's part, from `create` to the
    // end of `delete`: what is left once the probe's attach is taken out.
    let container_part: Vec<f64> = ours_runs
        .iter()
        .filter_map(|(_, stderr)| reported_ms(stderr))
        .map(|ms| ms / 1000.0)
        .collect();
    let mut cold = [Vec::new(), Vec::new()];
    for round in 0..COLD_ROUNDS {
        bench::unload()?;
        for which in [0, 1] {
            let (took, _) = time(which, &format!("bench-run-cold-{round}"))?;
            cold[which].push(took);
        }
    }
    let [ours, runc] =
        [&ours_runs, &runc_runs].map(|runs| median(runs.iter().map(|(took, _)| *took).collect()));
    let part = median(container_part);
    let (cold_ours, cold_runc) = (median(cold[0].clone()), median(cold[1].clone()));
    Ok(vec![
        Row::new("runc run /bin/true, median", runc * 1000.0, "ms"),
        Row::new(
            "inspector run -- /bin/true end to end, median",
            ours * 1000.0,
            "ms",
        ),
        Row::new(
            "  of which create..delete under the probe, median",
            part * 1000.0,
            "ms",
        ),
        Row::new(
            "inspector run / runc run, /bin/true (medians)",
            ours / runc,
            "x",
        )
        .at_most(1.5),
        Row::new(
            format!("  cold start (after inspector unload), median of {COLD_ROUNDS}"),
            cold_ours * 1000.0,
            "ms",
        ),
        Row::new(
            "  cold start / runc run (medians)",
            cold_ours / cold_runc,
            "x",
        ),
    ])
}

/// `inspector: container ID exited 0 after 31.2 ms` → 31.2.
fn reported_ms(stderr: &str) -> Option<f64> {
    stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("inspector: container "))
        .and_then(|l| l.rsplit_once(" after "))
        .and_then(|(_, ms)| ms.strip_suffix(" ms"))
        .and_then(|ms| ms.parse().ok())
}
