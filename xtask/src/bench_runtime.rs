//! `cargo xtask bench runtime`: the bundled runtime against runc, in the same
//! run: `run` (create + start + wait + delete) of /bin/true in a busybox
//! bundle, the two alternating so machine noise falls on both alike.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::{
    bench::{self, Row, median},
    docker, util,
};

const ROUNDS: usize = 60;
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

pub fn run() -> Result<Vec<Row>> {
    let dir = util::root().join("target/bench-runtime");
    let _ = std::fs::remove_dir_all(&dir);
    true_bundle(&dir)?;

    let ours = docker::runtime_binary();
    let runtimes = [ours.to_string_lossy().into_owned(), "runc".to_string()];
    let times = bench::alternating(WARMUP, ROUNDS, |which, round| {
        let root = dir.join(format!("state-{which}"));
        let id = format!("bench-{round}");
        let started = Instant::now();
        let out = Command::new(&runtimes[which])
            .arg("--root")
            .arg(&root)
            .args(["run", "--bundle"])
            .arg(&dir)
            .arg(&id)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .with_context(|| format!("cannot start {}", runtimes[which]))?;
        let took = started.elapsed().as_secs_f64();
        if !out.status.success() {
            bail!(
                "{} run /bin/true failed ({}): {}",
                runtimes[which],
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(took)
    })?;
    let [ours, runc] = times.map(median);
    Ok(vec![
        Row::new("runc run /bin/true, median", runc * 1000.0, "ms"),
        Row::new(
            "inspector-runtime run /bin/true, median",
            ours * 1000.0,
            "ms",
        ),
        Row::new(
            "inspector-runtime / runc, run /bin/true (medians)",
            ours / runc,
            "x",
        )
        .at_most(0.35),
    ])
}
