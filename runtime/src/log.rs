//! `--log` and `--log-format`: where errors and warnings go.
//!
//! containerd-shim-runc-v2 reads the log file as JSON lines and shows the last
//! `error` message to the user. Without `--log` messages go to stderr.

use std::{io::Write, path::PathBuf, sync::OnceLock};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Sink {
    file: Option<PathBuf>,
    format: Format,
}

static SINK: OnceLock<Sink> = OnceLock::new();

pub fn init(file: Option<PathBuf>, format: Format) {
    let _ = SINK.set(Sink { file, format });
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
}

pub fn line(level: &str, msg: &str, format: Format) -> String {
    let time = crate::time::now_rfc3339();
    match format {
        Format::Json => serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string(),
        Format::Text => format!("time={time:?} level={level} msg={msg:?}"),
    }
}

fn write(level: &str, msg: &str) {
    let (file, format) = match SINK.get() {
        Some(s) => (s.file.as_ref(), s.format),
        None => (None, Format::Text),
    };
    let text = line(level, msg, format);
    let written = file.is_some_and(|path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            // One write per line, as runc does: appended whole even when
            // another writer shares the file, and read whole by whoever
            // watches writes (inspector's probe).
            .and_then(|mut f| f.write_all(format!("{text}\n").as_bytes()))
            .is_ok()
    });
    if !written {
        eprintln!("{msg}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_have_level_msg_time() {
        let v: serde_json::Value =
            serde_json::from_str(&line("error", "container not running", Format::Json)).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container not running");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
