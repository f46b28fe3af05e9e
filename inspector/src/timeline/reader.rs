//! Reading a recording (`inspector trace --format jsonl`) back.

use std::io::Read;

use thiserror::Error;

use crate::event::Event;

#[derive(Debug, Error)]
pub enum ReadError {
    #[error("reading the recording failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("line {line}: not an inspector event ({message})")]
    Malformed { line: usize, message: String },
}

/// What reading found besides events.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ReadSummary {
    pub lines: usize,
    /// The last line was cut short (the recorder was killed mid-write) and skipped.
    pub truncated_last_line: Option<usize>,
}

/// Calls `f` with every event of a JSON Lines recording (only the first few
/// keep their `time`: the rest is the same clock). A malformed line is an
/// error naming it; a last line without its newline that does not parse is
/// what a killed recorder leaves, and is skipped.
pub fn for_each_event(
    mut input: impl Read,
    mut f: impl FnMut(Event),
) -> Result<ReadSummary, ReadError> {
    let mut summary = ReadSummary::default();
    // Lines are cut out of large blocks rather than copied one by one; the
    // buffer is reused, with what is left of a block moved to its front.
    let mut buf: Vec<u8> = vec![0; BLOCK];
    let mut predictor = super::fast::Predictor::default();
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            // One line longer than the buffer: make room.
            buf.resize(buf.len() * 2, 0);
        }
        let n = read_full(&mut input, &mut buf[filled..])?;
        filled += n;
        let eof = n == 0;
        let mut start = 0;
        // The whole lines of the block, checked as UTF-8 at once.
        let whole = memchr::memrchr(b'\n', &buf[..filled]).map_or(0, |i| i + 1);
        let valid = std::str::from_utf8(&buf[..whole]).is_ok();
        while let Some(nl) = memchr::memchr(b'\n', &buf[start..filled]) {
            summary.lines += 1;
            parse_checked_line(
                &buf[start..start + nl],
                summary.lines,
                true,
                valid,
                &mut predictor,
                &mut f,
            )?;
            start += nl + 1;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if eof {
            if filled > 0 {
                summary.lines += 1;
                if !parse_line(&buf[..filled], summary.lines, false, &mut predictor, &mut f)? {
                    summary.truncated_last_line = Some(summary.lines);
                }
            }
            return Ok(summary);
        }
    }
}

const BLOCK: usize = 1 << 20;

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

/// `Ok(false)`: a last line without its newline that does not parse, which is
/// what a killed recorder leaves.
fn parse_line(
    bytes: &[u8],
    line: usize,
    complete: bool,
    predictor: &mut super::fast::Predictor,
    f: &mut impl FnMut(Event),
) -> Result<bool, ReadError> {
    parse_checked_line(bytes, line, complete, false, predictor, f)
}

/// `valid`: the bytes are known to be UTF-8 (their block was checked whole).
fn parse_checked_line(
    bytes: &[u8],
    line: usize,
    complete: bool,
    valid: bool,
    predictor: &mut super::fast::Predictor,
    f: &mut impl FnMut(Event),
) -> Result<bool, ReadError> {
    let malformed = |message: String| ReadError::Malformed { line, message };
    let text = if valid {
        // SAFETY: checked as part of a larger UTF-8 string; a line ends at a
        // newline byte, which is always a character boundary.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    } else {
        match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(_) if !complete => return Ok(false),
            Err(e) => return Err(malformed(e.to_string())),
        }
    };
    let text = text.trim_end_matches('\r');
    if text.trim().is_empty() {
        return Ok(true);
    }
    // Timelines need one wall-clock time; the rest of the stream goes without.
    match super::fast::parse(text, line <= 16, predictor) {
        Ok(Some(event)) => f(event),
        // A kind from a newer inspector: what this one knows still counts.
        Ok(None) => {}
        Err(_) if !complete => return Ok(false),
        Err(e) => return Err(malformed(e.to_string())),
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: &str = r#"{"v":1,"ktime_ns":5,"time":"2026-11-29T13:00:00.000000005Z","tgid":1,"tid":1,"ptgid":0,"nspid":1,"comm":"x","start_ns":0,"cgroup_id":0,"pidns":0,"mntns":0,"kind":"exit","exit_code":0,"core_dumped":false,"status":0}"#;

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
    fn a_cut_last_line_is_skipped() {
        let input = format!("{EXIT}\n{}", &EXIT[..40]);
        let mut n = 0;
        let s = for_each_event(input.as_bytes(), |_| n += 1).unwrap();
        assert_eq!(n, 1);
        assert_eq!(s.truncated_last_line, Some(2));
    }
}
