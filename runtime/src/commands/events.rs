//! `events`: a container's resource usage and OOM kills, one JSON object per
//! line, as `runc events` prints them (`{"type":"stats","id":…,"data":…}`,
//! `{"type":"oom","id":…}`). `--stats` prints the usage once; otherwise every
//! `--interval`, with each OOM kill as it is seen, until the container stops
//! (runc's keeps going after that; there is nothing more to say).

use std::{io::Write as _, path::Path, time::Duration};

use serde::Serialize;

use crate::{
    Result,
    container::{Saved, Status},
    error::{Context as _, msg},
    linux::cgroups::stats::Stats,
};

#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<Stats>,
}

/// How often an OOM kill is looked for between two stats.
const OOM_POLL: Duration = Duration::from_millis(100);

pub fn events(root: &Path, id: &str, stats_once: bool, interval: Duration) -> Result<()> {
    if interval.is_zero() {
        return Err(msg("--interval must be above zero (e.g. 5s, 100ms)"));
    }
    let saved = Saved::load(root, id)?;
    if saved.status(root) == Status::Stopped {
        return Err(msg(format!("container {id} is not running")));
    }
    let print = |e: &Event| -> Result<()> {
        let line = serde_json::to_string(e).map_err(|e| msg(e.to_string()))?;
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|()| out.flush())
            .ctx(|| "cannot write to standard output".into())
    };
    let stats = |saved: &Saved| Event {
        kind: "stats",
        id,
        data: Some(saved.cgroup.stats()),
    };
    if stats_once {
        return print(&stats(&saved));
    }
    let mut ooms = saved.cgroup.oom_kills();
    let mut next_stats = std::time::Instant::now();
    loop {
        let kills = saved.cgroup.oom_kills();
        for _ in ooms..kills {
            print(&Event {
                kind: "oom",
                id,
                data: None,
            })?;
        }
        ooms = kills;
        if saved.status(root) == Status::Stopped {
            return Ok(());
        }
        if std::time::Instant::now() >= next_stats {
            print(&stats(&saved))?;
            next_stats += interval;
        }
        std::thread::sleep(OOM_POLL.min(interval));
    }
}
