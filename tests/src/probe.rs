//! The probe as the kernel shows it: inspector's loaded programs, the links
//! attached to them (counted by `inspector-bpftool`, the filter the
//! benchmarks use too), and the `inspector keep-probe` processes that hold
//! them for a moment after a run.

use std::time::{Duration, Instant};

use serde_json::Value;

/// How long (seconds) the tests let a finished run's keeper hold its links
/// (`INSPECTOR_KEEP_PROBE`): short, so that what a test checks is released soon.
pub const KEEP: &str = "0.5";

/// `bpftool OBJECT show --json`; fails the test when bpftool cannot start.
fn bpftool_show(object: &str) -> Value {
    match inspector_bpftool::show(object) {
        Ok(listing) => listing,
        // A listing bpftool refuses lists nothing, as the tests have always
        // read it (they run as root, where it is not refused).
        Err(inspector_bpftool::Error::Failed { .. }) => Value::Null,
        Err(e) => panic!("{e}"),
    }
}

/// Names of the BPF programs loaded right now.
pub fn loaded_programs() -> Vec<String> {
    inspector_bpftool::program_names(&bpftool_show("prog"))
}

/// The number of inspector's programs (`insp_*`) loaded right now.
pub fn inspector_programs() -> usize {
    loaded_programs()
        .iter()
        .filter(|n| inspector_bpftool::is_inspector_program(n))
        .count()
}

/// The number of BPF links attached to inspector's programs (`insp_*`).
pub fn inspector_links() -> usize {
    inspector_bpftool::inspector_link_count(&bpftool_show("prog"), &bpftool_show("link"))
}

/// The number of links attached to inspector programs once it stops
/// changing, with no keeper left: the kernel detaches a closed link
/// asynchronously, and an earlier test's keeper may still hold some.
pub fn settled_inspector_links() -> usize {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !keepers().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut last = inspector_links();
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        let now = inspector_links();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// Waits for every link an inspector attached since `before` was counted to
/// be gone (its keeper, if any, lets go after `KEEP`), and fails if any stays.
pub fn assert_no_links_left(before: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while inspector_links() > before || !keepers().is_empty() {
        assert!(
            Instant::now() < deadline,
            "links stayed attached: {} now, {before} before; keepers: {:?}",
            inspector_links(),
            keepers()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pids of `inspector keep-probe` processes.
pub fn keepers() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            (args.get(1) == Some(&&b"keep-probe"[..])).then_some(pid)
        })
        .collect()
}
