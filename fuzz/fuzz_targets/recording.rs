//! A recording (`inspector trace --format jsonl`) is a file a user hands to
//! `timeline`, `diff` and `tui --replay`: any bytes may come in. This feeds
//! them through the same public entry points those commands use — the reader
//! (its line scanner and serde fallback), the timeline builder and every
//! output it renders, and the golden a recording turns into for `diff` — and
//! requires that none of them panics.

#![no_main]

use inspector::{
    golden,
    timeline::{Builder, ContainerTimeline, perfetto, reader, render},
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut builder = Builder::new();
    let mut events = Vec::new();
    let mut timelines = Vec::new();
    let read = reader::for_each_event(data, |e| {
        events.push(e.clone());
        builder.push(e);
        timelines.extend(builder.take_finished());
    });
    if read.is_err() {
        // A named error is the right answer to a malformed file; what was
        // built so far must still be safe to finish, as a caller may do.
    }
    let _ = builder.stats();
    timelines.extend(builder.finish());
    for t in &mut timelines {
        show(t);
    }
    let _ = inspector::escape::to_json_writer(std::io::sink(), &perfetto::document(&timelines));

    // `inspector diff RECORDING ...`: the recording's golden, which must
    // read back as itself and compare equal to itself.
    let g = golden::from_events(&events, None);
    let text = golden::format::render(&g);
    let back = golden::format::parse(&text).expect("a rendered golden parses");
    assert!(
        golden::compare::compare(&back, &back)
            .iter()
            .all(|d| !d.differs()),
        "a golden differs from itself"
    );
});

/// Everything `inspector timeline` prints for one container.
fn show(t: &mut ContainerTimeline) {
    let _ = render::text(t, true);
    let _ = render::text(t, false);
    t.fill_details();
    let _ = inspector::escape::to_json_writer(std::io::sink(), &*t);
}
