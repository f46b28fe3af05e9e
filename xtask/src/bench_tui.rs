//! `cargo xtask bench tui`: the TUI under 10,000 events/s (frame render p99,
//! input delay) and the memory of 1M retained events. The measuring is
//! inspector's own bench (`inspector/benches/tui.rs`), which draws the real
//! app; this runs it and reads its results.

use anyhow::{Result, bail};

use crate::{bench::Row, util};

pub fn run() -> Result<Vec<Row>> {
    let out = util::output(util::cargo().args(["bench", "-p", "inspector", "--bench", "tui"]))?;
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines().filter(|l| !l.starts_with("xtask-measure")) {
        println!("{line}");
    }
    let mut measures = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("xtask-measure\t") else {
            continue;
        };
        let fields: Vec<&str> = rest.split('\t').collect();
        let [name, value, unit, limit] = fields[..] else {
            bail!("unreadable result line: {line}");
        };
        let row = Row::new(
            name,
            value.parse()?,
            if unit == "MiB" { "MiB" } else { "ms" },
        );
        measures.push(match limit.parse() {
            Ok(limit) => row.at_most(limit),
            Err(_) => row,
        });
    }
    if measures.is_empty() {
        bail!("the tui bench reported nothing");
    }
    Ok(measures)
}
