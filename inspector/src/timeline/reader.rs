//! Reading a recording (`inspector trace --format jsonl`) back.

use std::io::BufRead;

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

/// Calls `f` with every event of a JSON Lines recording. A malformed line is an
/// error naming it; a last line without its newline that does not parse is
/// what a killed recorder leaves, and is skipped.
pub fn for_each_event(
    mut input: impl BufRead,
    mut f: impl FnMut(Event),
) -> Result<ReadSummary, ReadError> {
    let mut summary = ReadSummary::default();
    let mut line = String::new();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(summary);
        }
        summary.lines += 1;
        let text = line.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(text) {
            Ok(event) => f(event),
            Err(_) if !line.ends_with('\n') => {
                summary.truncated_last_line = Some(summary.lines);
                return Ok(summary);
            }
            Err(e) => {
                return Err(ReadError::Malformed {
                    line: summary.lines,
                    message: e.to_string(),
                });
            }
        }
    }
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
