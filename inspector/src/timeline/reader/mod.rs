//! Reading a recording (`inspector trace --format jsonl`) back: every reader
//! of recordings (`timeline`, `diff`, `tui --replay`) goes through here, so
//! that each gets the same line limit, the same checks of time order and the
//! same warnings. Here: lines cut out of the input and checked for time
//! order; [`fields`]: the fields of an event, listed once, and the event they
//! make; [`scan`]: the scanner that reads a line into them.

use std::io::Read;

use thiserror::Error;

use crate::event::Event;

pub(super) mod fields;
mod scan;

/// The longest line a recording may have. inspector's own lines are a few
/// hundred bytes, a few kilobytes at most (argv and paths are cut by the
/// probe): a line this long is not one of its events, and reading on would
/// only grow memory (a newline-free stream like /dev/zero never ends).
pub const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum ReadError {
    // In the message, so not also a source (it would be said twice).
    #[error("reading the recording failed: {0}")]
    Io(std::io::Error),
    #[error("line {line}: not an inspector event ({message})")]
    Malformed { line: usize, message: String },
    #[error(
        "line {line}: longer than {limit} bytes without a newline; recordings of \
         `inspector trace --format jsonl` have lines of a few kilobytes at most: \
         is this the right file?"
    )]
    LineTooLong { line: usize, limit: usize },
}

/// Events that step back further than this behind the latest time seen are
/// out of time order. A recording is written in the order events reach the
/// ring buffer, and a syscall's event carries its entry time but reaches the
/// ring at its exit: what steps back less than the call took is natural. The
/// slack covers the moments between reading the clock and reserving room in
/// the ring (a virtual CPU can be descheduled there).
pub const ORDER_SLACK_NS: u64 = 10_000_000;

/// What reading found besides events.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReadSummary {
    pub lines: usize,
    /// The last line was cut short (the recorder was killed mid-write) and skipped.
    pub truncated_last_line: Option<usize>,
    /// Events dated more than [`ORDER_SLACK_NS`] before an event above them:
    /// timelines attribute events in the order they come, so these may be
    /// attributed wrongly.
    pub out_of_order: u64,
    /// The largest of those steps back, and the line it was on.
    pub largest_step_back_ns: u64,
    pub largest_step_back_line: usize,
    /// Events with the time and thread of an earlier one: the same event twice.
    pub duplicates: u64,
}

impl ReadSummary {
    /// What a reader of the recording should be told, one line each, without
    /// the program's name: every command that reads recordings says the same.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(line) = self.truncated_last_line {
            out.push(format!(
                "line {line} is cut short (the recording was interrupted); skipped it"
            ));
        }
        if self.out_of_order > 0 || self.duplicates > 0 {
            let mut what = Vec::new();
            if self.out_of_order > 0 {
                what.push(format!(
                    "{} {} out of time order (largest step back {} at line {})",
                    self.out_of_order,
                    events(self.out_of_order),
                    seconds(self.largest_step_back_ns),
                    self.largest_step_back_line
                ));
            }
            if self.duplicates > 0 {
                what.push(format!(
                    "{} {} recorded twice",
                    self.duplicates,
                    events(self.duplicates)
                ));
            }
            out.push(format!(
                "warning: {}: is this two recordings concatenated, or a reordered \
                 file? Events are attributed to containers in the order they come, \
                 so what is shown may be wrong",
                what.join(", ")
            ));
        }
        out
    }
}

fn events(n: u64) -> &'static str {
    if n == 1 { "event" } else { "events" }
}

/// `3.2 s`, `41.0 ms`, `950 µs`.
fn seconds(ns: u64) -> String {
    match ns {
        1_000_000_000.. => format!("{:.1} s", ns as f64 / 1e9),
        1_000_000.. => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{} µs", ns / 1000),
    }
}

/// How much of each event a reader keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Detail {
    /// Every field of every event, as recorded.
    Full,
    /// What timelines use, and no more: `time` on the first lines only (one
    /// wall-clock time dates the stream), and a thread's creation without
    /// its body (timelines only count it). Copying the rest is most of the
    /// cost of reading.
    Timeline,
    /// What a critical path uses: every field but `time` (first lines only).
    Path,
}

/// Calls `f` with every event of a JSON Lines recording, every field as it
/// was recorded. A malformed line is an error naming it; a last line without
/// its newline that does not parse is what a killed recorder leaves, and is
/// skipped; a line over [`MAX_LINE_BYTES`] is an error.
pub fn for_each_event(input: impl Read, f: impl FnMut(Event)) -> Result<ReadSummary, ReadError> {
    read(input, Detail::Full, f)
}

/// [`for_each_event`] for building timelines, and faster: only the first few
/// events keep their `time` (the rest is the same clock), and thread
/// creations keep their task and `thread: true` only.
pub fn for_each_timeline_event(
    input: impl Read,
    f: impl FnMut(Event),
) -> Result<ReadSummary, ReadError> {
    read(input, Detail::Timeline, f)
}

/// [`for_each_event`] for walking critical paths (`--why`, `diff --timing`),
/// and faster: only the first few events keep their `time`; thread
/// creations are whole (a path goes through the thread that made another).
pub fn for_each_path_event(
    input: impl Read,
    f: impl FnMut(Event),
) -> Result<ReadSummary, ReadError> {
    read(input, Detail::Path, f)
}

fn read(
    mut input: impl Read,
    detail: Detail,
    mut f: impl FnMut(Event),
) -> Result<ReadSummary, ReadError> {
    let mut summary = ReadSummary::default();
    let mut order = Order::default();
    // Lines are cut out of large blocks rather than copied one by one; the
    // buffer is reused, with what is left of a block moved to its front. It
    // never grows: a line that fills it whole is too long.
    let mut buf: Vec<u8> = vec![0; MAX_LINE_BYTES + 1];
    let mut predictor = fields::Predictor::default();
    let mut filled = 0;
    let mut emit = |e: Event, line: usize, summary: &mut ReadSummary| {
        order.check(&e, line, summary);
        f(e);
    };
    loop {
        if filled == buf.len() {
            return Err(ReadError::LineTooLong {
                line: summary.lines + 1,
                limit: MAX_LINE_BYTES,
            });
        }
        let n = read_full(&mut input, &mut buf[filled..]).map_err(ReadError::Io)?;
        filled += n;
        let eof = n == 0;
        let mut start = 0;
        // The whole lines of the block, checked as UTF-8 at once.
        let whole = memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1);
        let valid = std::str::from_utf8(&buf[..whole]).is_ok();
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..filled]) {
            summary.lines += 1;
            let line = summary.lines;
            let event = parse_line(&buf[start..start + nl], line, valid, detail, &mut predictor)
                .map_err(|message| ReadError::Malformed { line, message })?;
            if let Some(e) = event {
                emit(e, line, &mut summary);
            }
            start += nl + 1;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if eof {
            if filled > 0 {
                summary.lines += 1;
                let line = summary.lines;
                // A last line without its newline that does not parse is
                // what a killed recorder leaves: skipped, and said.
                match parse_line(&buf[..filled], line, false, detail, &mut predictor) {
                    Ok(Some(e)) => emit(e, line, &mut summary),
                    Ok(None) => {}
                    Err(_) => summary.truncated_last_line = Some(line),
                }
            }
            return Ok(summary);
        }
    }
}

/// The time order of the events so far: one comparison an event in order,
/// and its (time, thread) appended to a ring of the last ones, which is then
/// sorted by time: an event that steps back is looked up there, to tell the
/// same event recorded twice.
struct Order {
    latest_ns: u64,
    recent: Box<[(u64, u32)]>,
    /// Where the next goes, and how many the ring holds.
    head: usize,
    len: usize,
}

/// Events in order remembered for telling duplicates (1 MiB): duplicates
/// are counted exactly when the copy starts within this many events.
const RECENT: usize = 1 << 16;

impl Default for Order {
    fn default() -> Self {
        Order {
            latest_ns: 0,
            recent: vec![(0, 0); RECENT].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }
}

impl Order {
    #[inline]
    fn check(&mut self, e: &Event, line: usize, summary: &mut ReadSummary) {
        // Records inspector makes itself (`lost`) are dated when it noticed.
        let Some(task) = &e.task else { return };
        let t = e.ktime_ns;
        if t > self.latest_ns {
            self.latest_ns = t;
            self.recent[self.head] = (t, task.tid);
            self.head = (self.head + 1) % RECENT;
            self.len = (self.len + 1).min(RECENT);
            return;
        }
        // Two events of one thread in the same nanosecond: the same event.
        if self.seen(t, task.tid) {
            summary.duplicates += 1;
        }
        // An event reaches the ring buffer when its syscall returns: its
        // end is what is in order with the rest.
        let end = t.saturating_add(e.body.syscall_result().map_or(0, |r| r.duration_ns));
        if end.saturating_add(ORDER_SLACK_NS) < self.latest_ns {
            summary.out_of_order += 1;
            let back = self.latest_ns - t;
            if back > summary.largest_step_back_ns {
                summary.largest_step_back_ns = back;
                summary.largest_step_back_line = line;
            }
        }
    }

    /// Whether an event of thread `tid` at `t` is in the ring.
    fn seen(&self, t: u64, tid: u32) -> bool {
        let at = |i: usize| self.recent[(self.head + RECENT - self.len + i) % RECENT];
        // The first at `t` or later: the ring is sorted by time.
        let (mut lo, mut hi) = (0, self.len);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if at(mid).0 < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        (lo..self.len)
            .map(at)
            .take_while(|r| r.0 == t)
            .any(|r| r.1 == tid)
    }
}

fn read_full(input: &mut impl Read, mut buf: &mut [u8]) -> std::io::Result<usize> {
    let mut total = 0;
    while !buf.is_empty() {
        match input.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(total)
}

/// One line: `Ok(None)` for a blank line or a kind from a newer inspector,
/// `Err` with what is wrong. `valid`: the bytes are known to be UTF-8 (their
/// block was checked whole).
fn parse_line(
    bytes: &[u8],
    line: usize,
    valid: bool,
    detail: Detail,
    predictor: &mut fields::Predictor,
) -> Result<Option<Event>, String> {
    let text = if valid {
        // SAFETY: checked as part of a larger UTF-8 string; a line ends at a
        // newline byte, which is always a character boundary.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    } else {
        std::str::from_utf8(bytes).map_err(|e| e.to_string())?
    };
    let text = text.trim_end_matches('\r');
    if text.trim().is_empty() {
        return Ok(None);
    }
    // Timelines need one wall-clock time; the rest of the stream goes without.
    let with_time = detail == Detail::Full || line <= 16;
    let lean_threads = detail == Detail::Timeline && !with_time;
    fields::parse(text, with_time, lean_threads, predictor).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: &str = r#"{"v":1,"ktime_ns":5,"time":"2026-11-29T13:00:00.000000005Z","tgid":1,"tid":1,"ptgid":0,"nspid":1,"comm":"x","start_ns":0,"cgroup_id":0,"pidns":0,"mntns":0,"kind":"exit","exit_code":0,"core_dumped":false,"status":0}"#;
    const RUNC_RUN: &str = include_str!("../../../tests/fixtures/runc-run-exit-3.jsonl");

    fn summary_of(text: &str) -> ReadSummary {
        for_each_event(text.as_bytes(), |_| {}).unwrap()
    }

    /// `line` with its `ktime_ns` set to `t`.
    fn at(line: &str, t: u64) -> String {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v["ktime_ns"] = t.into();
        serde_json::to_string(&v).unwrap()
    }

    #[test]
    fn reads_every_line() {
        let input = format!("{EXIT}\n\n{EXIT}\n");
        let mut n = 0;
        let s = for_each_event(input.as_bytes(), |_| n += 1).unwrap();
        assert_eq!(n, 2);
        assert_eq!(s.truncated_last_line, None);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let input = format!("{EXIT}\n{{\"v\":1,\"kind\":\"exit\"\n{EXIT}\n");
        let err = for_each_event(input.as_bytes(), |_| {}).unwrap_err();
        assert!(matches!(err, ReadError::Malformed { line: 2, .. }), "{err}");
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }

    #[test]
    fn a_cut_last_line_is_skipped_and_said() {
        let input = format!("{EXIT}\n{}", &EXIT[..40]);
        let mut n = 0;
        let s = for_each_event(input.as_bytes(), |_| n += 1).unwrap();
        assert_eq!(n, 1);
        assert_eq!(s.truncated_last_line, Some(2));
        assert_eq!(
            s.warnings(),
            ["line 2 is cut short (the recording was interrupted); skipped it"]
        );
    }

    #[test]
    fn a_stream_without_newlines_is_an_error_after_one_limit_of_reading() {
        // /dev/zero: endless, no newline. Reading stops at the limit.
        let mut read = 0u64;
        let endless = std::io::repeat(0).take(u64::MAX);
        let counting = CountingRead(endless, &mut read);
        let err = for_each_event(counting, |_| {}).unwrap_err();
        assert!(
            matches!(
                err,
                ReadError::LineTooLong {
                    line: 1,
                    limit: MAX_LINE_BYTES
                }
            ),
            "{err}"
        );
        assert!(read <= 2 * MAX_LINE_BYTES as u64, "read {read} bytes");
        let text = err.to_string();
        assert!(
            text.starts_with("line 1: longer than 1048576 bytes"),
            "{text}"
        );
        // After good lines, the long one is named by its number.
        let input = format!("{EXIT}\n{EXIT}\n{}", "x".repeat(3 * MAX_LINE_BYTES));
        let err = for_each_event(input.as_bytes(), |_| {}).unwrap_err();
        assert!(
            matches!(err, ReadError::LineTooLong { line: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_line_of_the_longest_length_allowed_is_read() {
        // White space inside the object pads the line to the limit exactly.
        let pad = MAX_LINE_BYTES - EXIT.len();
        let long = format!("{}{}}}", &EXIT[..EXIT.len() - 1], " ".repeat(pad));
        assert_eq!(long.len(), MAX_LINE_BYTES);
        let mut n = 0;
        for_each_event(format!("{EXIT}\n{long}\n{EXIT}\n").as_bytes(), |_| n += 1).unwrap();
        assert_eq!(n, 3);
        // One byte more is too long.
        let longer = format!("{} {}", &long[..1], &long[1..]);
        let err = for_each_event(format!("{longer}\n").as_bytes(), |_| {}).unwrap_err();
        assert!(
            matches!(err, ReadError::LineTooLong { line: 1, .. }),
            "{err}"
        );
    }

    struct CountingRead<'a, R>(R, &'a mut u64);

    impl<R: Read> Read for CountingRead<'_, R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.0.read(buf)?;
            *self.1 += n as u64;
            Ok(n)
        }
    }

    #[test]
    fn a_real_recording_is_in_time_order() {
        let s = summary_of(RUNC_RUN);
        assert_eq!((s.out_of_order, s.duplicates), (0, 0));
        assert!(s.warnings().is_empty());
    }

    #[test]
    fn a_recording_concatenated_with_itself_is_said_with_counts() {
        let twice = format!("{RUNC_RUN}{RUNC_RUN}");
        let s = summary_of(&twice);
        let lines = RUNC_RUN.lines().count() as u64;
        // Every event of the second copy is behind the first copy's last;
        // those of its last 10 ms are within the slack.
        assert!(s.out_of_order >= lines * 3 / 4, "{s:?}");
        assert_eq!(s.duplicates, lines, "{s:?}");
        assert_eq!(s.largest_step_back_line as u64, lines + 1);
        let warnings = s.warnings();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with(&format!(
                "warning: {} events out of time order (largest step back 55.3 ms at line {}), \
                 {lines} events recorded twice: is this two recordings concatenated",
                s.out_of_order,
                lines + 1
            )),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn a_syscall_that_returned_after_later_events_is_in_order() {
        // A mount entered at 1 s and returned at 1.5 s reaches the ring
        // after an exit at 1.2 s: natural. An exit dated 0.5 s behind is not.
        let mount = r#"{"v":1,"ktime_ns":1000000000,"time":"","tgid":2,"tid":2,"ptgid":1,"nspid":2,"comm":"runc","start_ns":0,"cgroup_id":0,"pidns":0,"mntns":0,"kind":"mount","target":"/x","flags":"","flags_raw":0,"ret":0,"duration_ns":500000000}"#;
        let s = summary_of(&format!("{}\n{mount}\n", at(EXIT, 1_200_000_000)));
        assert_eq!(s.out_of_order, 0, "{s:?}");
        let s = summary_of(&format!(
            "{}\n{}\n{}\n",
            at(EXIT, 1_200_000_000),
            at(EXIT, 700_000_000),
            at(EXIT, 1_195_000_000)
        ));
        assert_eq!(s.out_of_order, 1, "within the slack is not counted: {s:?}");
        assert_eq!(
            (s.largest_step_back_ns, s.largest_step_back_line),
            (500_000_000, 2)
        );
        assert_eq!(s.duplicates, 0);
    }

    #[test]
    fn a_shuffled_recording_is_said_to_be_out_of_order() {
        let mut lines: Vec<&str> = RUNC_RUN.lines().collect();
        // A fixed shuffle: every third line to the end, reversed.
        let moved: Vec<&str> = lines.iter().step_by(3).rev().copied().collect();
        lines = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 3 != 0)
            .map(|(_, l)| *l)
            .chain(moved)
            .collect();
        let s = summary_of(&(lines.join("\n") + "\n"));
        assert!(s.out_of_order > 20, "{s:?}");
        assert_eq!(s.duplicates, 0);
    }
}
