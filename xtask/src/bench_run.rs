//! `cargo xtask bench run`: `inspector run -- /bin/true` end to end (probes
//! attached, container created, started, waited for and deleted, timeline
//! printed) against `runc run` of the same root filesystem, alternating the
//! two so machine noise falls on both alike.

use std::{
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    bench::{Row, median},
    bench_runtime, util,
};

const ROUNDS: usize = 20;
const WARMUP: usize = 3;

pub fn run() -> Result<Vec<Row>> {
    let dir = util::root().join("target/bench-run");
    let _ = std::fs::remove_dir_all(&dir);
    bench_runtime::true_bundle(&dir)?;
    let rootfs = dir.join("rootfs");

    let inspector = util::root().join("target/release/inspector");
    let mut whole = [Vec::new(), Vec::new()];
    // inspector's own account of the container's part, from `create` to the
    // end of `delete`: what is left once the probe's attach is taken out.
    let mut container_part = Vec::new();
    for round in 0..WARMUP + ROUNDS {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let id = format!("bench-run-{round}");
            let started = Instant::now();
            let out = if which == 0 {
                Command::new(&inspector)
                    .args(["run", "--rootfs"])
                    .arg(&rootfs)
                    .args(["--name", &id, "--", "/bin/true"])
                    .stdin(Stdio::null())
                    .output()
                    .context("cannot start inspector run")?
            } else {
                Command::new("runc")
                    .arg("--root")
                    .arg(dir.join("runc-state"))
                    .args(["run", "--bundle"])
                    .arg(&dir)
                    .arg(&id)
                    .stdin(Stdio::null())
                    .output()
                    .context("cannot start runc")?
            };
            let took = started.elapsed().as_secs_f64();
            if !out.status.success() {
                bail!(
                    "{} of /bin/true failed: {}\n{}",
                    if which == 0 {
                        "inspector run"
                    } else {
                        "runc run"
                    },
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            if round < WARMUP {
                continue;
            }
            whole[which].push(took);
            if which == 0 {
                let stderr = String::from_utf8_lossy(&out.stderr);
                if !stderr.contains("phases") {
                    bail!("inspector run printed no timeline:\n{stderr}");
                }
                if let Some(ms) = reported_ms(&stderr) {
                    container_part.push(ms / 1000.0);
                }
            }
        }
    }
    let (ours, runc) = (median(whole[0].clone()), median(whole[1].clone()));
    let part = median(container_part);
    Ok(vec![
        Row {
            name: "runc run /bin/true, median".into(),
            value: runc * 1000.0,
            unit: "ms",
            target: None,
        },
        Row {
            name: "inspector run -- /bin/true end to end, median".into(),
            value: ours * 1000.0,
            unit: "ms",
            target: None,
        },
        Row {
            name: "  of which create..delete under the probe, median".into(),
            value: part * 1000.0,
            unit: "ms",
            target: None,
        },
        Row {
            name: "inspector run / runc run, /bin/true (medians)".into(),
            value: ours / runc,
            unit: "x",
            target: Some((1.5, true)),
        },
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
