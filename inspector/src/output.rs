//! Writing events: JSON Lines for programs, one strace-like line for people.

use std::io::{self, Write};

use crate::event::{Body, Event};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Text,
}

pub fn write_event(out: &mut impl Write, format: Format, event: &Event) -> io::Result<()> {
    match format {
        Format::Jsonl => {
            serde_json::to_writer(&mut *out, event).map_err(io::Error::other)?;
            out.write_all(b"\n")
        }
        Format::Text => writeln!(out, "{}", text_line(event)),
    }
}

fn ret_text(ret: i64, errno: &Option<String>) -> String {
    match errno {
        Some(e) => format!("-1 {e}"),
        None => ret.to_string(),
    }
}

/// `12:00:01.123456 runc[2041/2043] unshare(CLONE_NEWNS|...) = 0 <0.012ms>`
pub fn text_line(e: &Event) -> String {
    // RFC 3339 time → "HH:MM:SS.micros".
    let clock = e
        .time
        .split('T')
        .nth(1)
        .map(|t| t.trim_end_matches('Z'))
        .map(|t| if t.len() > 15 { &t[..15] } else { t })
        .unwrap_or("");
    let who = match &e.task {
        Some(t) if t.tid != t.tgid => format!("{}[{}/{}]", t.comm, t.tgid, t.tid),
        Some(t) => format!("{}[{}]", t.comm, t.tgid),
        None => "inspector".to_string(),
    };
    let what = describe(&e.body);
    format!("{clock} {who} {what}")
}

fn quoted_or_null(s: &Option<String>) -> String {
    match s {
        Some(s) => format!("{s:?}"),
        None => "NULL".to_string(),
    }
}

fn dur(ns: u64) -> String {
    format!("<{:.3}ms>", ns as f64 / 1e6)
}

/// An event's body in strace-like form, without time or task.
pub fn describe(body: &Body) -> String {
    match body {
        Body::Fork {
            child_tgid,
            child_tid,
            thread,
            flags,
            ..
        } => {
            let what = if *thread {
                format!("thread {child_tid}")
            } else {
                format!("child {child_tgid}")
            };
            match flags {
                Some(f) => format!("fork {what} ({f})"),
                None => format!("fork {what}"),
            }
        }
        Body::Exec {
            filename,
            argv,
            argv_truncated,
            ret,
            errno,
            ..
        } => {
            let argv = serde_json::to_string(argv).unwrap_or_default();
            let more = if *argv_truncated { "..." } else { "" };
            format!(
                "execve({filename:?}, {argv}{more}) = {}",
                ret_text(*ret, errno)
            )
        }
        Body::Exit {
            exit_code,
            signal,
            core_dumped,
            ..
        } => match (exit_code, signal) {
            (Some(code), _) => format!("+++ exited with {code} +++"),
            (None, Some(sig)) => {
                let core = if *core_dumped { " (core dumped)" } else { "" };
                format!("+++ killed by {sig}{core} +++")
            }
            (None, None) => "+++ exited +++".to_string(),
        },
        Body::Clone { flags, result, .. } => format!(
            "clone(flags={flags}) = {} {}",
            ret_text(result.ret, &result.errno),
            dur(result.duration_ns)
        ),
        Body::Unshare { flags, result, .. } => format!(
            "unshare({flags}) = {} {}",
            ret_text(result.ret, &result.errno),
            dur(result.duration_ns)
        ),
        Body::Setns {
            fd,
            nstype,
            ns_inode,
            result,
            ..
        } => {
            let ns = ns_inode.map(|i| format!(" [ns {i}]")).unwrap_or_default();
            format!(
                "setns({fd}{ns}, {nstype}) = {} {}",
                ret_text(result.ret, &result.errno),
                dur(result.duration_ns)
            )
        }
        Body::Mount {
            source,
            target,
            fstype,
            flags,
            result,
            ..
        } => format!(
            "mount({}, {target:?}, {}, {flags}) = {} {}",
            quoted_or_null(source),
            quoted_or_null(fstype),
            ret_text(result.ret, &result.errno),
            dur(result.duration_ns)
        ),
        Body::Umount {
            target,
            flags,
            result,
            ..
        } => format!(
            "umount2({target:?}, {flags}) = {} {}",
            ret_text(result.ret, &result.errno),
            dur(result.duration_ns)
        ),
        Body::PivotRoot {
            new_root,
            put_old,
            cwd,
            result,
        } => {
            let cwd = cwd
                .as_ref()
                .map(|c| format!(" [cwd {c}]"))
                .unwrap_or_default();
            format!(
                "pivot_root({new_root:?}, {put_old:?}){cwd} = {} {}",
                ret_text(result.ret, &result.errno),
                dur(result.duration_ns)
            )
        }
        Body::Chroot { path, result } => {
            format!("chroot({path:?}) = {}", ret_text(result.ret, &result.errno))
        }
        Body::Chdir { path, result } => {
            format!("chdir({path:?}) = {}", ret_text(result.ret, &result.errno))
        }
        Body::Fchdir { fd, path, result } => {
            let p = path.as_ref().map(|p| format!(" [{p}]")).unwrap_or_default();
            format!("fchdir({fd}{p}) = {}", ret_text(result.ret, &result.errno))
        }
        Body::CgroupMkdir(c) => format!("cgroup mkdir {}:{}", c.hierarchy, c.path),
        Body::CgroupRmdir(c) => format!("cgroup rmdir {}:{}", c.hierarchy, c.path),
        Body::CgroupAttach {
            cgroup,
            task_tgid,
            threadgroup,
            ..
        } => {
            let what = if *threadgroup { "process" } else { "thread" };
            format!(
                "cgroup attach {what} {task_tgid} → {}:{}",
                cgroup.hierarchy, cgroup.path
            )
        }
        Body::CgroupWrite {
            file,
            hierarchy,
            value,
            value_truncated,
            result,
            ..
        } => {
            let more = if *value_truncated { "..." } else { "" };
            let ret = match result {
                Some(r) => format!(" = {}", ret_text(r.ret, &r.errno)),
                None => String::new(),
            };
            format!(
                "cgroup write {hierarchy}:{file} {:?}{more}{ret}",
                value.trim_end_matches('\n'),
            )
        }
        Body::Lost { count, total } => {
            format!("!!! lost {count} events (ring buffer full), {total} so far")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{SyscallResult, Task};

    fn ev(body: Body) -> Event {
        Event {
            v: 1,
            ktime_ns: 0,
            time: "2026-11-29T13:45:01.123456789Z".to_string(),
            task: Some(Task {
                tgid: 20765,
                tid: 20765,
                ptgid: 20764,
                nspid: 20765,
                comm: "runc:[1:CHILD]".into(),
                start_ns: 0,
                cgroup_id: 0,
                pidns: 0,
                mntns: 0,
            }),
            body,
        }
    }

    #[test]
    fn text_reads_like_strace() {
        let line = text_line(&ev(Body::Unshare {
            flags: "CLONE_NEWNS|CLONE_NEWPID".to_string(),
            flags_raw: 0,
            result: SyscallResult {
                ret: 0,
                errno: None,
                duration_ns: 12_000,
            },
        }));
        assert_eq!(
            line,
            "13:45:01.123456 runc:[1:CHILD][20765] unshare(CLONE_NEWNS|CLONE_NEWPID) = 0 <0.012ms>"
        );
    }

    #[test]
    fn failures_show_errno() {
        let line = text_line(&ev(Body::Chdir {
            path: "/nope".to_string(),
            result: SyscallResult {
                ret: -2,
                errno: Some("ENOENT".to_string()),
                duration_ns: 0,
            },
        }));
        assert!(line.ends_with("chdir(\"/nope\") = -1 ENOENT"), "{line}");
    }

    #[test]
    fn jsonl_is_one_line_per_event() {
        let mut out = Vec::new();
        let e = ev(Body::Exit {
            exit_code: Some(0),
            signal: None,
            core_dumped: false,
            status: 0,
        });
        write_event(&mut out, Format::Jsonl, &e).unwrap();
        write_event(&mut out, Format::Jsonl, &e).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 2);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["kind"], "exit");
            assert_eq!(v["exit_code"], 0);
        }
    }
}
