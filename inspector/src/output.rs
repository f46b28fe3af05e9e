//! Writing events: JSON Lines for programs, one strace-like line for people,
//! with every string a traced process chose escaped (see [`crate::escape`]).

use std::io::{self, Write};

use crate::escape::{bare, quoted};
use crate::event::{Body, Event};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Jsonl,
    Text,
}

pub fn write_event(out: &mut impl Write, format: Format, event: &Event) -> io::Result<()> {
    match format {
        Format::Jsonl => {
            crate::escape::to_json_writer(&mut *out, event).map_err(io::Error::other)?;
            out.write_all(b"\n")
        }
        Format::Text => writeln!(out, "{}", text_line(event)),
    }
}

fn ret_text(ret: i64, errno: &Option<String>) -> String {
    match errno {
        Some(e) => format!("-1 {}", bare(e)),
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
        Some(t) if t.tid != t.tgid => format!("{}[{}/{}]", bare(&t.comm), t.tgid, t.tid),
        Some(t) => format!("{}[{}]", bare(&t.comm), t.tgid),
        None => match &e.body {
            Body::SchedSwitch { cpu, .. } | Body::SchedWakeup { cpu, .. } => format!("cpu{cpu}"),
            _ => "inspector".to_string(),
        },
    };
    let what = describe(&e.body);
    format!("{clock} {who} {what}")
}

fn quoted_or_null(s: &Option<String>) -> String {
    match s {
        Some(s) => quoted(s),
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
                Some(f) => format!("fork {what} ({})", bare(f)),
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
            let argv = argv.iter().map(|a| quoted(a)).collect::<Vec<_>>().join(",");
            let more = if *argv_truncated { "..." } else { "" };
            format!(
                "execve({}, [{argv}]{more}) = {}",
                quoted(filename),
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
                format!("+++ killed by {}{core} +++", bare(sig))
            }
            (None, None) => "+++ exited +++".to_string(),
        },
        Body::Clone { flags, result, .. } => format!(
            "clone(flags={}) = {} {}",
            bare(flags),
            ret_text(result.ret, &result.errno),
            dur(result.duration_ns)
        ),
        Body::Unshare { flags, result, .. } => format!(
            "unshare({}) = {} {}",
            bare(flags),
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
                "setns({fd}{ns}, {}) = {} {}",
                bare(nstype),
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
            "mount({}, {}, {}, {}) = {} {}",
            quoted_or_null(source),
            quoted(target),
            quoted_or_null(fstype),
            bare(flags),
            ret_text(result.ret, &result.errno),
            dur(result.duration_ns)
        ),
        Body::Umount {
            target,
            flags,
            result,
            ..
        } => format!(
            "umount2({}, {}) = {} {}",
            quoted(target),
            bare(flags),
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
                .map(|c| format!(" [cwd {}]", bare(c)))
                .unwrap_or_default();
            format!(
                "pivot_root({}, {}){cwd} = {} {}",
                quoted(new_root),
                quoted(put_old),
                ret_text(result.ret, &result.errno),
                dur(result.duration_ns)
            )
        }
        Body::Chroot { path, result } => {
            let path = quoted(path);
            format!("chroot({path}) = {}", ret_text(result.ret, &result.errno))
        }
        Body::Chdir { path, result } => {
            let path = quoted(path);
            format!("chdir({path}) = {}", ret_text(result.ret, &result.errno))
        }
        Body::Fchdir { fd, path, result } => {
            let p = path
                .as_ref()
                .map(|p| format!(" [{}]", bare(p)))
                .unwrap_or_default();
            format!("fchdir({fd}{p}) = {}", ret_text(result.ret, &result.errno))
        }
        Body::CgroupMkdir(c) => format!("cgroup mkdir {}:{}", bare(&c.hierarchy), bare(&c.path)),
        Body::CgroupRmdir(c) => format!("cgroup rmdir {}:{}", bare(&c.hierarchy), bare(&c.path)),
        Body::CgroupAttach {
            cgroup,
            task_tgid,
            threadgroup,
            ..
        } => {
            let what = if *threadgroup { "process" } else { "thread" };
            format!(
                "cgroup attach {what} {task_tgid} → {}:{}",
                bare(&cgroup.hierarchy),
                bare(&cgroup.path)
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
                "cgroup write {}:{} {}{more}{ret}",
                bare(hierarchy),
                bare(file),
                quoted(value.trim_end_matches('\n')),
            )
        }
        Body::Message {
            stream,
            fd,
            text,
            text_truncated,
        } => {
            let more = if *text_truncated { "..." } else { "" };
            let to = match stream.as_str() {
                "runtime_log" => format!("runtime log (fd {fd})"),
                other => bare(other).into_owned(),
            };
            format!("{to}: {}{more}", quoted(text.trim_end_matches('\n')))
        }
        Body::Killed {
            cause,
            task_tgid,
            syscall,
            ..
        } => match (cause.as_str(), syscall) {
            ("oom", _) => format!("--- OOM killer chose process {task_tgid} ---"),
            (_, Some(call)) => {
                format!(
                    "--- seccomp killed process {task_tgid} at {} ---",
                    bare(call)
                )
            }
            (other, None) => format!("--- {} killed process {task_tgid} ---", bare(other)),
        },
        Body::SyscallFailed {
            syscall,
            resource,
            result,
        } => {
            let args = resource.as_deref().map(bare).unwrap_or_default();
            format!(
                "{}({args}) = {}",
                bare(syscall),
                ret_text(result.ret, &result.errno)
            )
        }
        Body::SchedSwitch {
            task_tgid,
            task_tid,
            state,
            syscall,
            next_tgid,
            next_tid,
            ..
        } => {
            let why = match syscall {
                Some(call) => format!("{} in {}", bare(state), bare(call)),
                None => bare(state).into_owned(),
            };
            format!("sched_switch {task_tgid}/{task_tid} ({why}) → {next_tgid}/{next_tid}")
        }
        Body::SchedWakeup {
            task_tgid,
            task_tid,
            waker_tgid,
            waker_tid,
            ..
        } => format!("sched_wakeup {task_tgid}/{task_tid} by {waker_tgid}/{waker_tid}"),
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

    /// What a traced process names itself: a screen clear and a forged line.
    const HOSTILE: &str = "\x1b[2J\nFAKE\u{202e}";

    /// Neither a control character nor a character that reorders text.
    fn printable(line: &str) -> bool {
        !line.chars().any(crate::escape::needs_escape)
    }

    #[test]
    fn text_escapes_every_string_a_traced_process_chose() {
        let mut e = ev(Body::Exec {
            filename: format!("/tmp/{HOSTILE}"),
            argv: vec![HOSTILE.into(), "a\"b\\c".into()],
            argv_truncated: false,
            old_tid: None,
            ret: 0,
            errno: None,
        });
        e.task.as_mut().unwrap().comm = HOSTILE.into();
        let line = text_line(&e);
        assert!(printable(&line), "{line:?}");
        assert_eq!(
            line,
            r#"13:45:01.123456 \x1b[2J\nFAKE\u{202e}[20765] execve("/tmp/\x1b[2J\nFAKE\u{202e}", ["\x1b[2J\nFAKE\u{202e}","a\"b\\c"]) = 0"#
        );
        let result = SyscallResult {
            ret: 0,
            errno: None,
            duration_ns: 0,
        };
        let cgroup = crate::event::CgroupChange {
            hierarchy_id: 0,
            hierarchy: HOSTILE.into(),
            path: format!("/x/{HOSTILE}"),
            level: 1,
            id: 1,
        };
        let bodies = [
            Body::Mount {
                source: Some(HOSTILE.into()),
                target: HOSTILE.into(),
                fstype: Some(HOSTILE.into()),
                flags: HOSTILE.into(),
                flags_raw: 0,
                result: result.clone(),
            },
            Body::Umount {
                target: HOSTILE.into(),
                flags: "0".into(),
                flags_raw: 0,
                result: result.clone(),
            },
            Body::PivotRoot {
                new_root: HOSTILE.into(),
                put_old: HOSTILE.into(),
                cwd: Some(HOSTILE.into()),
                result: result.clone(),
            },
            Body::Chroot {
                path: HOSTILE.into(),
                result: result.clone(),
            },
            Body::Chdir {
                path: HOSTILE.into(),
                result: result.clone(),
            },
            Body::Fchdir {
                fd: 3,
                path: Some(HOSTILE.into()),
                result: result.clone(),
            },
            Body::CgroupMkdir(cgroup.clone()),
            Body::CgroupRmdir(cgroup.clone()),
            Body::CgroupAttach {
                cgroup: cgroup.clone(),
                task_tgid: 1,
                task_tid: 1,
                threadgroup: true,
            },
            Body::CgroupWrite {
                file: HOSTILE.into(),
                hierarchy: HOSTILE.into(),
                path: Some(HOSTILE.into()),
                cgroup_version: 2,
                value: format!("{HOSTILE}\n"),
                value_truncated: false,
                fd: 3,
                result: Some(result.clone()),
            },
        ];
        for body in bodies {
            let text = describe(&body);
            assert!(printable(&text), "{text:?}");
            assert!(text.contains(r"\x1b[2J\nFAKE\u{202e}"), "{text}");
        }
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
