//! The fields of a recorded event, listed once, and the event they make.
//! `Event`'s own `Deserialize` goes through serde's buffering for flattened,
//! internally tagged enums (a tree of values per event), and the timeline of
//! a long recording is bound by reading. So a line is read into
//! [`Flat`], one struct of borrowed strings with every field any kind has:
//! by the [scanner](super::scan) when the line has the shape inspector
//! writes, by serde_json otherwise (which also reports what is wrong). The
//! event is then built from it by its `kind`.

use std::borrow::Cow;

use compact_str::CompactString;
use serde::Deserialize;

pub use super::scan::Predictor;
use super::scan::{self, Scan, Scanner};
use crate::event::{Body, CgroupChange, Event, SyscallResult, Task};

/// From the one list of fields: [`Flat`] (which serde_json also reads),
/// their numbers ([`Field`]), their keys as written ([`KEYS`], for the
/// scanner's predictions) and the scanner's reading of each
/// ([`Flat::read`], by the field's type).
macro_rules! fields {
    ($($(#[$attr:meta])* $name:ident: $ty:ty,)*) => {
        /// Every field any event kind has, by name (docs/events.md).
        #[derive(Deserialize, Default)]
        #[serde(default)]
        pub(super) struct Flat<'a> {
            $($(#[$attr])* pub(super) $name: $ty,)*
        }

        /// A field's number: its place in the list.
        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        #[repr(u8)]
        pub(super) enum Field {
            $($name,)*
        }

        /// Every key, quoted and followed by its colon, by field number.
        pub(super) const KEYS: &[&[u8]] = &[$(concat!("\"", stringify!($name), "\":").as_bytes(),)*];

        /// Field numbers as constants, to match on.
        #[allow(non_upper_case_globals)]
        mod number {
            $(pub(super) const $name: u8 = super::Field::$name as u8;)*
        }

        impl<'a> Flat<'a> {
            /// Reads field number `n`'s value; an unknown number's is skipped.
            #[inline(always)]
            pub(super) fn read(&mut self, n: u8, s: &mut Scanner<'a>) -> Option<()> {
                match n {
                    $(number::$name => self.$name = Scan::scan(s)?,)*
                    _ => s.skip()?,
                }
                Some(())
            }
        }
    };
}

fields! {
    v: u32,
    ktime_ns: u64,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    tgid: Option<u32>,
    tid: u32,
    ptgid: u32,
    nspid: u32,
    #[serde(borrow)]
    comm: Cow<'a, str>,
    start_ns: u64,
    cgroup_id: u64,
    pidns: u32,
    mntns: u32,

    child_tgid: u32,
    child_tid: u32,
    child_start_ns: u64,
    thread: bool,
    #[serde(borrow)]
    flags: Option<Cow<'a, str>>,
    flags_raw: Option<u64>,

    #[serde(borrow)]
    filename: Cow<'a, str>,
    #[serde(borrow)]
    argv: Vec<Cow<'a, str>>,
    argv_truncated: bool,
    old_tid: Option<u32>,
    ret: i64,
    #[serde(borrow)]
    errno: Option<Cow<'a, str>>,
    duration_ns: Option<u64>,

    exit_code: Option<i32>,
    #[serde(borrow)]
    signal: Option<Cow<'a, str>>,
    core_dumped: bool,
    status: u32,

    fd: i32,
    #[serde(borrow)]
    nstype: Cow<'a, str>,
    nstype_raw: u64,
    ns_inode: Option<u64>,

    #[serde(borrow)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow)]
    target: Cow<'a, str>,
    #[serde(borrow)]
    fstype: Option<Cow<'a, str>>,
    #[serde(borrow)]
    new_root: Cow<'a, str>,
    #[serde(borrow)]
    put_old: Cow<'a, str>,
    #[serde(borrow)]
    cwd: Option<Cow<'a, str>>,
    #[serde(borrow)]
    path: Option<Cow<'a, str>>,

    hierarchy_id: u32,
    #[serde(borrow)]
    hierarchy: Cow<'a, str>,
    level: u32,
    id: u64,
    task_tgid: u32,
    task_tid: u32,
    threadgroup: bool,
    #[serde(borrow)]
    file: Cow<'a, str>,
    cgroup_version: u8,
    #[serde(borrow)]
    value: Cow<'a, str>,
    value_truncated: bool,

    #[serde(borrow)]
    stream: Cow<'a, str>,
    #[serde(borrow)]
    text: Cow<'a, str>,
    text_truncated: bool,
    #[serde(borrow)]
    cause: Cow<'a, str>,
    #[serde(borrow)]
    syscall: Option<Cow<'a, str>>,
    #[serde(borrow)]
    resource: Option<Cow<'a, str>>,

    cpu: u32,
    #[serde(borrow)]
    state: Cow<'a, str>,
    next_tgid: u32,
    next_tid: u32,
    task_cpu_ns: Option<u64>,
    next_cpu_ns: Option<u64>,
    irq_steal_ns: Option<u64>,
    waker_tgid: u32,
    waker_tid: u32,

    count: u64,
    total: u64,
}

fn own(s: Cow<'_, str>) -> String {
    s.into_owned()
}

fn own_opt(s: Option<Cow<'_, str>>) -> Option<String> {
    s.map(Cow::into_owned)
}

/// Parses one JSON Lines record, with its `time`.
#[cfg(test)]
fn parse_event(line: &str) -> Result<Option<Event>, serde_json::Error> {
    parse(line, true, false, &mut Predictor::default())
}

/// Parses one JSON Lines record. `Ok(None)`: a kind this version does not know
/// (newer recordings may have more), skipped. Without `time` (left empty) when
/// `with_time` is false: a reader that needs one wall-clock time in the stream
/// saves copying the rest. With `lean_threads`, a thread's creation is its
/// header alone (timelines only count it; a critical path needs its ids).
pub fn parse(
    line: &str,
    with_time: bool,
    lean_threads: bool,
    predictor: &mut Predictor,
) -> Result<Option<Event>, serde_json::Error> {
    // Filled in place: returning a struct this size is a copy per event.
    let mut f = Flat::default();
    // A thread's creation is a quarter of a recording; timelines only count
    // it, so the lean reading stops after its header.
    if scan::flat(line, predictor, &mut f, lean_threads).is_none() {
        f = serde_json::from_str(line)?;
    }
    if f.kind.is_empty() {
        return Err(serde::de::Error::missing_field("kind"));
    }
    let result = |f: &Flat| SyscallResult {
        ret: f.ret,
        errno: f.errno.as_deref().map(str::to_string),
        duration_ns: f.duration_ns.unwrap_or(0),
    };
    let cgroup = |f: &mut Flat| CgroupChange {
        hierarchy_id: f.hierarchy_id,
        hierarchy: own(std::mem::take(&mut f.hierarchy)),
        path: own(f.path.take().unwrap_or_default()),
        level: f.level,
        id: f.id,
    };
    let body = match f.kind.as_ref() {
        "fork" => Body::Fork {
            child_tgid: f.child_tgid,
            child_tid: f.child_tid,
            child_start_ns: f.child_start_ns,
            thread: f.thread,
            flags: own_opt(f.flags.take()),
            flags_raw: f.flags_raw,
        },
        "exec" => Body::Exec {
            filename: own(std::mem::take(&mut f.filename)),
            argv: f.argv.drain(..).map(own).collect(),
            argv_truncated: f.argv_truncated,
            old_tid: f.old_tid,
            ret: f.ret,
            errno: own_opt(f.errno.take()),
        },
        "exit" => Body::Exit {
            exit_code: f.exit_code,
            signal: own_opt(f.signal.take()),
            core_dumped: f.core_dumped,
            status: f.status,
        },
        "clone" => Body::Clone {
            flags: own_opt(f.flags.take()).unwrap_or_default(),
            flags_raw: f.flags_raw.unwrap_or(0),
            result: result(&f),
        },
        "unshare" => Body::Unshare {
            flags: own_opt(f.flags.take()).unwrap_or_default(),
            flags_raw: f.flags_raw.unwrap_or(0),
            result: result(&f),
        },
        "setns" => Body::Setns {
            fd: f.fd,
            nstype: own(std::mem::take(&mut f.nstype)),
            nstype_raw: f.nstype_raw,
            ns_inode: f.ns_inode,
            result: result(&f),
        },
        "mount" => Body::Mount {
            source: own_opt(f.source.take()),
            target: own(std::mem::take(&mut f.target)),
            fstype: own_opt(f.fstype.take()),
            flags: own_opt(f.flags.take()).unwrap_or_default(),
            flags_raw: f.flags_raw.unwrap_or(0),
            result: result(&f),
        },
        "umount" => Body::Umount {
            target: own(std::mem::take(&mut f.target)),
            flags: own_opt(f.flags.take()).unwrap_or_default(),
            flags_raw: f.flags_raw.unwrap_or(0),
            result: result(&f),
        },
        "pivot_root" => Body::PivotRoot {
            new_root: own(std::mem::take(&mut f.new_root)),
            put_old: own(std::mem::take(&mut f.put_old)),
            cwd: own_opt(f.cwd.take()),
            result: result(&f),
        },
        "chroot" => Body::Chroot {
            path: own_opt(f.path.take()).unwrap_or_default(),
            result: result(&f),
        },
        "chdir" => Body::Chdir {
            path: own_opt(f.path.take()).unwrap_or_default(),
            result: result(&f),
        },
        "fchdir" => Body::Fchdir {
            fd: f.fd,
            path: own_opt(f.path.take()),
            result: result(&f),
        },
        "cgroup_mkdir" => Body::CgroupMkdir(cgroup(&mut f)),
        "cgroup_rmdir" => Body::CgroupRmdir(cgroup(&mut f)),
        "cgroup_attach" => Body::CgroupAttach {
            cgroup: cgroup(&mut f),
            task_tgid: f.task_tgid,
            task_tid: f.task_tid,
            threadgroup: f.threadgroup,
        },
        "cgroup_write" => Body::CgroupWrite {
            file: own(std::mem::take(&mut f.file)),
            hierarchy: own(std::mem::take(&mut f.hierarchy)),
            path: own_opt(f.path.take()),
            cgroup_version: f.cgroup_version,
            value: own(std::mem::take(&mut f.value)),
            value_truncated: f.value_truncated,
            fd: f.fd,
            result: f.duration_ns.map(|_| result(&f)),
        },
        "message" => Body::Message {
            stream: own(std::mem::take(&mut f.stream)),
            fd: f.fd,
            text: own(std::mem::take(&mut f.text)),
            text_truncated: f.text_truncated,
        },
        "killed" => Body::Killed {
            cause: own(std::mem::take(&mut f.cause)),
            task_tgid: f.task_tgid,
            task_tid: f.task_tid,
            syscall: own_opt(f.syscall.take()),
        },
        "syscall_failed" => Body::SyscallFailed {
            syscall: own_opt(f.syscall.take()).unwrap_or_default(),
            resource: own_opt(f.resource.take()),
            result: result(&f),
        },
        "sched_switch" => Body::SchedSwitch {
            cpu: f.cpu,
            task_tgid: f.task_tgid,
            task_tid: f.task_tid,
            state: own(std::mem::take(&mut f.state)),
            syscall: own_opt(f.syscall.take()),
            next_tgid: f.next_tgid,
            next_tid: f.next_tid,
            task_cpu_ns: f.task_cpu_ns,
            next_cpu_ns: f.next_cpu_ns,
            irq_steal_ns: f.irq_steal_ns,
        },
        "sched_wakeup" => Body::SchedWakeup {
            cpu: f.cpu,
            task_tgid: f.task_tgid,
            task_tid: f.task_tid,
            waker_tgid: f.waker_tgid,
            waker_tid: f.waker_tid,
        },
        "lost" => Body::Lost {
            count: f.count,
            total: f.total,
        },
        _ => return Ok(None),
    };
    let task = f.tgid.map(|tgid| Task {
        tgid,
        tid: f.tid,
        ptgid: f.ptgid,
        nspid: f.nspid,
        comm: CompactString::from(f.comm.as_ref()),
        start_ns: f.start_ns,
        cgroup_id: f.cgroup_id,
        pidns: f.pidns,
        mntns: f.mntns,
    });
    Ok(Some(Event {
        v: f.v,
        ktime_ns: f.ktime_ns,
        time: if with_time {
            own(f.time)
        } else {
            String::new()
        },
        task,
        body,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: [&str; 3] = [
        include_str!("../../../tests/fixtures/docker-run-rm-true.jsonl"),
        include_str!("../../../tests/fixtures/runc-run-exit-3.jsonl"),
        include_str!("../../../tests/fixtures/failures.jsonl"),
    ];

    /// The fast reader and `Event`'s own `Deserialize` agree on every line of
    /// real recordings, and the scanner takes every one of them.
    #[test]
    fn agrees_with_the_schema_on_real_recordings() {
        for fixture in FIXTURES {
            for line in fixture.lines() {
                assert!(
                    scan::flat(line, &mut Predictor::default(), &mut Flat::default(), false)
                        .is_some(),
                    "the scanner gave up on {line}"
                );
                let slow: Event = serde_json::from_str(line).unwrap();
                let fast = parse_event(line).unwrap().expect("a known kind");
                assert_eq!(fast, slow, "{line}");
            }
        }
    }

    #[test]
    fn escapes_unicode_and_unknown_nested_values() {
        let line = r#"{"v":1,"ktime_ns":2,"time":"t","kind":"exec","tgid":3,"tid":3,"ptgid":1,"nspid":3,"comm":"c","start_ns":0,"cgroup_id":0,"pidns":0,"mntns":0,"filename":"/a\"b\\c\u00e9\ud83d\ude00","argv":["x\ny",""],"argv_truncated":false,"ret":0,"future":{"a":[1,{"b":"]"}]}}"#;
        let fast = parse_event(line).unwrap().unwrap();
        let slow: Event = serde_json::from_str(line).unwrap();
        assert_eq!(fast, slow);
        match fast.body {
            Body::Exec { filename, argv, .. } => {
                assert_eq!(filename, "/a\"b\\c\u{e9}\u{1f600}");
                assert_eq!(argv, ["x\ny", ""]);
            }
            other => panic!("{other:?}"),
        }
        // A cut line, or anything after the object, is not the scanner's to take.
        let p = &mut Predictor::default();
        assert!(scan::flat(&line[..line.len() - 1], p, &mut Flat::default(), false).is_none());
        assert!(scan::flat(&format!("{line} x"), p, &mut Flat::default(), false).is_none());
    }

    #[test]
    fn numbers_of_every_length_read_exactly() {
        // Eight digits are read at once: cover the lengths around each chunk.
        let mut n: u64 = 0;
        for digits in 1..=20u32 {
            n = n * 10 + u64::from(digits % 10);
            let line = format!(
                r#"{{"v":1,"ktime_ns":{n},"time":"t","tgid":1,"tid":1,"ptgid":0,"nspid":1,"comm":"c","start_ns":{n},"cgroup_id":0,"pidns":0,"mntns":0,"kind":"exit","exit_code":0,"core_dumped":false,"status":0}}"#
            );
            let fast = parse_event(&line);
            let slow = serde_json::from_str::<Event>(&line);
            match (fast, slow) {
                (Ok(Some(fast)), Ok(slow)) => assert_eq!(fast, slow, "{digits} digits"),
                (Err(_), Err(_)) => assert!(digits > 19, "{digits} digits"),
                (fast, slow) => panic!("{digits} digits: {fast:?} vs {slow:?}"),
            }
        }
    }

    #[test]
    fn a_lean_thread_keeps_its_header_in_any_field_order() {
        let written = r#"{"v":1,"ktime_ns":7,"time":"t","tgid":3,"tid":3,"ptgid":1,"nspid":3,"comm":"c","start_ns":2,"cgroup_id":9,"pidns":5,"mntns":6,"kind":"fork","child_tgid":3,"child_tid":4,"child_start_ns":8,"thread":true,"flags":"CLONE_VM","flags_raw":256}"#;
        let sorted =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(written).unwrap())
                .unwrap();
        assert!(sorted.starts_with(r#"{"cgroup_id""#), "{sorted}");
        for line in [written, sorted.as_str()] {
            let e = parse(line, false, true, &mut Predictor::default())
                .unwrap()
                .unwrap();
            let t = e.task.unwrap();
            assert_eq!(
                (e.ktime_ns, t.tgid, t.tid, t.start_ns, t.mntns),
                (7, 3, 3, 2, 6),
                "{line}"
            );
            assert!(matches!(e.body, Body::Fork { thread: true, .. }), "{line}");
        }
    }

    #[test]
    fn unknown_kinds_are_skipped_and_garbage_is_an_error() {
        assert!(
            parse_event(r#"{"v":1,"ktime_ns":1,"time":"","kind":"from_the_future"}"#)
                .unwrap()
                .is_none()
        );
        assert!(parse_event("{\"v\":").is_err());
        assert!(parse_event(r#"{"v":"one"}"#).is_err());
        assert!(parse_event(r#"{"v":1}"#).is_err(), "no kind");
    }
}
