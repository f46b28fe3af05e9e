//! The kernel's BTF is read at every fresh load of the probe
//! (inspector/src/probe/btf.rs), from a path a variable can point anywhere
//! (`INSPECTOR_BTF`): any bytes may come in. Parsing, and every lookup the
//! probe makes, must succeed or say the BTF is malformed; never panic, and
//! never loop.

#![no_main]

use inspector::probe::btf::Btf;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = Btf::parse(data.to_vec()) else {
        return;
    };
    // The seeds' names (fuzz/corpus/btf) and the kernel's.
    for (strukt, path) in [
        ("outer", "a"),
        ("outer", "c"),
        ("outer", "in.d"),
        ("inner", "d"),
        ("task_struct", "pid"),
        ("mnt_namespace", "ns.inum"),
    ] {
        let _ = btf.member_offset(strukt, path);
        let _ = btf.struct_size(strukt);
    }
    for tracepoint in ["sched_process_exit", "cgroup_attach_task"] {
        let _ = btf.tracepoint_args(tracepoint);
    }
});
