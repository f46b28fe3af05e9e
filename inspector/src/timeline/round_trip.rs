//! A recording read back is the recording: every field of every kind of
//! event, generated, goes line → reader → event → JSON and comes out the
//! same line, through the fast scanner, its serde fallback and `Event`'s own
//! `Deserialize`. A field one of them drops (a thread's `child_tid` and
//! `flags` did, in replays) fails here first.

use compact_str::CompactString;
use proptest::prelude::*;

use super::reader::{self, fields};
use crate::event::{Body, CgroupChange, Event, SyscallResult, Task};

/// Text as traced processes give it: any character, with the ones JSON and
/// terminals treat apart made likely.
fn text() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        4 => any::<char>(),
        2 => proptest::char::range('a', 'z'),
        1 => prop::sample::select(vec!['"', '\\', '/', '\n', '\r', '\t', '\0', '\u{1b}', '\u{7f}',
            '\u{85}', '\u{202e}', '\u{feff}', 'é', '😀', '}', ',', ':', '[']),
    ];
    prop::collection::vec(c, 0..12).prop_map(String::from_iter)
}

fn result() -> impl Strategy<Value = SyscallResult> {
    (any::<i64>(), prop::option::of(text()), any::<u64>()).prop_map(|(ret, errno, duration_ns)| {
        SyscallResult {
            ret,
            errno,
            duration_ns,
        }
    })
}

fn cgroup() -> impl Strategy<Value = CgroupChange> {
    (any::<u32>(), text(), text(), any::<u32>(), any::<u64>()).prop_map(
        |(hierarchy_id, hierarchy, path, level, id)| CgroupChange {
            hierarchy_id,
            hierarchy,
            path,
            level,
            id,
        },
    )
}

fn task() -> impl Strategy<Value = Task> {
    (
        (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()),
        text(),
        (any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>()),
    )
        .prop_map(
            |((tgid, tid, ptgid, nspid), comm, (start_ns, cgroup_id, pidns, mntns))| Task {
                tgid,
                tid,
                ptgid,
                nspid,
                comm: CompactString::from(comm),
                start_ns,
                cgroup_id,
                pidns,
                mntns,
            },
        )
}

/// Every kind, every optional field present or not.
fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            any::<bool>(),
            prop::option::of(text()),
            prop::option::of(any::<u64>())
        )
            .prop_map(
                |(child_tgid, child_tid, child_start_ns, thread, flags, flags_raw)| Body::Fork {
                    child_tgid,
                    child_tid,
                    child_start_ns,
                    thread,
                    flags,
                    flags_raw,
                }
            ),
        (
            text(),
            prop::collection::vec(text(), 0..4),
            any::<bool>(),
            prop::option::of(any::<u32>()),
            any::<i64>(),
            prop::option::of(text())
        )
            .prop_map(
                |(filename, argv, argv_truncated, old_tid, ret, errno)| Body::Exec {
                    filename,
                    argv,
                    argv_truncated,
                    old_tid,
                    ret,
                    errno,
                }
            ),
        (
            prop::option::of(any::<i32>()),
            prop::option::of(text()),
            any::<bool>(),
            any::<u32>()
        )
            .prop_map(|(exit_code, signal, core_dumped, status)| Body::Exit {
                exit_code,
                signal,
                core_dumped,
                status,
            }),
        (text(), any::<u64>(), result()).prop_map(|(flags, flags_raw, result)| Body::Clone {
            flags,
            flags_raw,
            result
        }),
        (text(), any::<u64>(), result()).prop_map(|(flags, flags_raw, result)| Body::Unshare {
            flags,
            flags_raw,
            result
        }),
        (
            any::<i32>(),
            text(),
            any::<u64>(),
            prop::option::of(any::<u64>()),
            result()
        )
            .prop_map(|(fd, nstype, nstype_raw, ns_inode, result)| Body::Setns {
                fd,
                nstype,
                nstype_raw,
                ns_inode,
                result
            }),
        (
            prop::option::of(text()),
            text(),
            prop::option::of(text()),
            text(),
            any::<u64>(),
            result()
        )
            .prop_map(
                |(source, target, fstype, flags, flags_raw, result)| Body::Mount {
                    source,
                    target,
                    fstype,
                    flags,
                    flags_raw,
                    result,
                }
            ),
        (text(), text(), any::<u64>(), result()).prop_map(|(target, flags, flags_raw, result)| {
            Body::Umount {
                target,
                flags,
                flags_raw,
                result,
            }
        }),
        (text(), text(), prop::option::of(text()), result()).prop_map(
            |(new_root, put_old, cwd, result)| {
                Body::PivotRoot {
                    new_root,
                    put_old,
                    cwd,
                    result,
                }
            }
        ),
        (text(), result()).prop_map(|(path, result)| Body::Chroot { path, result }),
        (text(), result()).prop_map(|(path, result)| Body::Chdir { path, result }),
        (any::<i32>(), prop::option::of(text()), result())
            .prop_map(|(fd, path, result)| Body::Fchdir { fd, path, result }),
        cgroup().prop_map(Body::CgroupMkdir),
        cgroup().prop_map(Body::CgroupRmdir),
        (cgroup(), any::<u32>(), any::<u32>(), any::<bool>()).prop_map(
            |(cgroup, task_tgid, task_tid, threadgroup)| Body::CgroupAttach {
                cgroup,
                task_tgid,
                task_tid,
                threadgroup,
            }
        ),
        (
            (text(), text(), prop::option::of(text()), any::<u8>()),
            (
                text(),
                any::<bool>(),
                any::<i32>(),
                prop::option::of(result())
            )
        )
            .prop_map(
                |(
                    (file, hierarchy, path, cgroup_version),
                    (value, value_truncated, fd, result),
                )| {
                    Body::CgroupWrite {
                        file,
                        hierarchy,
                        path,
                        cgroup_version,
                        value,
                        value_truncated,
                        fd,
                        result,
                    }
                }
            ),
        (text(), any::<i32>(), text(), any::<bool>()).prop_map(
            |(stream, fd, text, text_truncated)| Body::Message {
                stream,
                fd,
                text,
                text_truncated
            }
        ),
        (text(), any::<u32>(), any::<u32>(), prop::option::of(text())).prop_map(
            |(cause, task_tgid, task_tid, syscall)| Body::Killed {
                cause,
                task_tgid,
                task_tid,
                syscall
            }
        ),
        (text(), prop::option::of(text()), result()).prop_map(|(syscall, resource, result)| {
            Body::SyscallFailed {
                syscall,
                resource,
                result,
            }
        }),
        (
            any::<u32>(),
            (any::<u32>(), any::<u32>()),
            text(),
            prop::option::of(text()),
            (any::<u32>(), any::<u32>()),
            (
                prop::option::of(any::<u64>()),
                prop::option::of(any::<u64>()),
                prop::option::of(any::<u64>())
            )
        )
            .prop_map(
                |(
                    cpu,
                    (task_tgid, task_tid),
                    state,
                    syscall,
                    (next_tgid, next_tid),
                    (task_cpu_ns, next_cpu_ns, irq_steal_ns),
                )| {
                    Body::SchedSwitch {
                        cpu,
                        task_tgid,
                        task_tid,
                        state,
                        syscall,
                        next_tgid,
                        next_tid,
                        task_cpu_ns,
                        next_cpu_ns,
                        irq_steal_ns,
                    }
                }
            ),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            any::<u32>()
        )
            .prop_map(|(cpu, task_tgid, task_tid, waker_tgid, waker_tid)| {
                Body::SchedWakeup {
                    cpu,
                    task_tgid,
                    task_tid,
                    waker_tgid,
                    waker_tid,
                }
            }),
        (any::<u64>(), any::<u64>()).prop_map(|(count, total)| Body::Lost { count, total }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (
        any::<u32>(),
        any::<u64>(),
        text(),
        prop::option::of(task()),
        body(),
    )
        .prop_map(|(v, ktime_ns, time, task, body)| Event {
            v,
            ktime_ns,
            time,
            task,
            body,
        })
}

/// A line as `inspector trace --format jsonl` writes it.
fn line(e: &Event) -> String {
    let mut out = Vec::new();
    crate::escape::to_json_writer(&mut out, e).unwrap();
    String::from_utf8(out).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// The reader (fast scanner, one predictor for the whole recording) gives
    /// back every event whole, and each writes out as its line did.
    #[test]
    fn a_recording_read_back_writes_out_as_the_same_lines(
        events in prop::collection::vec(event(), 1..24)
    ) {
        let lines: Vec<String> = events.iter().map(line).collect();
        let recording = lines.join("\n") + "\n";
        let mut read = Vec::new();
        let summary = reader::for_each_event(recording.as_bytes(), |e| read.push(e)).unwrap();
        prop_assert_eq!(summary.truncated_last_line, None);
        prop_assert_eq!(&read, &events);
        for (e, l) in read.iter().zip(&lines) {
            prop_assert_eq!(&line(e), l);
        }
    }

    /// `Event`'s own `Deserialize`, the scanner alone, and the scanner's
    /// serde fallback (taken for anything unexpected, here a `null`) agree
    /// with the line.
    #[test]
    fn every_field_round_trips_through_serde_and_the_fast_reader(e in event()) {
        let l = line(&e);
        let slow: Event = serde_json::from_str(&l).unwrap();
        prop_assert_eq!(&slow, &e);
        prop_assert_eq!(line(&slow), l.clone());
        let fast = fields::parse(&l, true, false, &mut fields::Predictor::default()).unwrap();
        prop_assert_eq!(fast.as_ref(), Some(&e));
        let unexpected = format!("{},\"from_the_future\":null}}", &l[..l.len() - 1]);
        let fallback = fields::parse(&unexpected, true, false, &mut fields::Predictor::default()).unwrap();
        prop_assert_eq!(fallback.as_ref(), Some(&e));
        // Another field order, as a tool that rewrites JSON leaves it.
        let sorted = serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&l).unwrap())
            .unwrap();
        let resorted = fields::parse(&sorted, true, false, &mut fields::Predictor::default()).unwrap();
        prop_assert_eq!(resorted.as_ref(), Some(&e));
    }

    /// The timeline's reading keeps what timelines use: the header of every
    /// event, and the body of every event but a thread's creation.
    #[test]
    fn the_timeline_reading_keeps_what_timelines_use(
        events in prop::collection::vec(event(), 1..40)
    ) {
        let recording: String = events.iter().map(|e| line(e) + "\n").collect();
        let mut read = Vec::new();
        reader::for_each_timeline_event(recording.as_bytes(), |e| read.push(e)).unwrap();
        prop_assert_eq!(read.len(), events.len());
        for (i, (got, want)) in read.iter().zip(&events).enumerate() {
            prop_assert_eq!(got.ktime_ns, want.ktime_ns);
            prop_assert_eq!(&got.task, &want.task);
            if i < 16 {
                prop_assert_eq!(&got.time, &want.time);
            }
            let thread = matches!(want.body, Body::Fork { thread: true, .. }) && want.task.is_some();
            if thread {
                let kept_thread = matches!(got.body, Body::Fork { thread: true, .. });
                prop_assert!(kept_thread, "{:?}", got.body);
            } else {
                prop_assert_eq!(&got.body, &want.body);
            }
        }
    }
}
