//! The Load way (see [`super::lifecycle`]): the probe's object loaded into
//! the kernel, with the offsets its programs read taken from the kernel's
//! BTF, its maps made and its programs verified; then pinned, when the run
//! holds a set's lease, for the runs that follow.

use std::{os::fd::AsFd as _, path::Path};

use aya::{
    Ebpf, EbpfLoader,
    programs::{Program, TracePoint},
};
use aya_log::EbpfLogger;
use inspector_common::KernelOffsets;

use super::{
    ProbeError,
    btf::Btf,
    kernel::{self, Variants},
    link,
    maps::{Loaded, MAP_NAMES, Maps},
    offsets,
    pinned::{self, Lease},
    plan::Plan,
    prereq,
};

/// Built by build.rs from `inspector-ebpf`.
pub(super) static PROBE_OBJECT: &[u8] =
    aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/inspector"));

/// The reader of the probe's kernel-side log.
pub type Logger = EbpfLogger<&'static dyn log::Log>;

/// The probe loaded from its object.
struct Fresh {
    ebpf: Ebpf,
    logger: Option<Logger>,
    /// The program that fills each hook's place on this kernel.
    variants: Variants,
}

/// Loads the probe for `plan` (its tracepoints checked first: a kept probe
/// was checked when it was loaded, this boot), and pins it in the set of
/// `lease`, if one is held, removing the sets of other builds.
pub(super) fn load(
    plan: &Plan,
    events_dir: &Path,
    lease: Option<&Lease>,
) -> Result<(Loaded, Option<Logger>), ProbeError> {
    plan.check_tracepoints(events_dir)?;
    let Fresh {
        mut ebpf,
        logger,
        variants,
    } = load_fresh(plan)?;
    if let Some(lease) = lease {
        match lease.fill(|dir| pin_all(&ebpf, &plan.wanted, &variants, dir)) {
            Ok(()) => pinned::evict_others(&lease.key),
            Err(e) => log::debug!("cannot keep the probe loaded: {e}"),
        }
    }
    let loaded = take_loaded(&mut ebpf, &plan.wanted, &variants)?;
    Ok((loaded, logger))
}

/// Loads the probe from its object: the kernel's BTF read for the offsets
/// and the programs that fit this kernel, the maps made, the programs of
/// the `wanted` hooks verified.
fn load_fresh(plan: &Plan) -> Result<Fresh, ProbeError> {
    let btf = Btf::from_file(prereq::btf_path())?;
    let offsets: KernelOffsets = offsets::from_btf(&btf)?;
    let _memlock = kernel::Memlock::raise();
    let variants = kernel::fit(&btf)?;
    drop(btf);
    // No CO-RE relocations to resolve (see offsets.rs): `.btf(None)`.
    // aya's loader still parses the kernel's BTF as it is made, although
    // none of it is used; making it on a thread, alongside our own parse,
    // was faster but held both at once: a higher peak RSS, over the target
    // that `cargo xtask bench startup` holds.
    let mut ebpf = EbpfLoader::new()
        .btf(None)
        .override_global("OFFSETS", &offsets, true)
        .override_global("CONFIG", &plan.config, true)
        .override_global("AYA_LOG_LEVEL", &plan.log_level, false)
        .map_max_entries("EVENTS", plan.buffer_size)
        .map_max_entries("TRACKED_BITS", plan.bits_len)
        .map_max_entries("SPEAKS_BITS", plan.bits_len)
        .load(PROBE_OBJECT)
        .map_err(|e| ProbeError::Load(Box::new(e)))?;
    let logger = if plan.log_level > 0 {
        EbpfLogger::init(&mut ebpf)
            .map_err(|e| log::warn!("kernel-side logging is unavailable: {e}"))
            .ok()
    } else {
        None
    };
    let programs: Vec<&str> = plan.wanted.iter().map(|&h| variants.program(h)).collect();
    load_in_parallel(&mut ebpf, &programs)?;
    Ok(Fresh {
        ebpf,
        logger,
        variants,
    })
}

/// The baseline for the syscall-storm benchmark: one program that does nothing,
/// attached to `syscalls:sys_enter_write`. Kept attached while the value lives.
pub struct Floor {
    _ebpf: Ebpf,
}

impl Floor {
    pub fn attach() -> Result<Self, ProbeError> {
        let tracefs = prereq::check()?;
        prereq::check_syscall_tracepoint(&tracefs, "sys_enter_write")?;
        let mut ebpf = EbpfLoader::new()
            .btf(None)
            .override_global("AYA_LOG_LEVEL", &0u8, false)
            .load(PROBE_OBJECT)
            .map_err(|e| ProbeError::Load(Box::new(e)))?;
        let prog: &mut TracePoint = ebpf
            .program_mut("insp_noop")
            .expect("program compiled into the probe")
            .try_into()
            .expect("a tracepoint program");
        prog.load().map_err(|source| ProbeError::Program {
            program: "insp_noop".to_string(),
            error: Box::new(source),
        })?;
        prog.attach("syscalls", "sys_enter_write")
            .map_err(|source| ProbeError::Attach {
                program: "insp_noop".to_string(),
                tracepoint: "syscalls:sys_enter_write".to_string(),
                error: std::io::Error::other(source),
            })?;
        Ok(Floor { _ebpf: ebpf })
    }

    /// The baseline of the context-switch storm: one program that does
    /// nothing on the raw tracepoints `--sched` attaches to.
    pub fn attach_sched() -> Result<Self, ProbeError> {
        prereq::check()?;
        let mut ebpf = EbpfLoader::new()
            .btf(None)
            .override_global("AYA_LOG_LEVEL", &0u8, false)
            .load(PROBE_OBJECT)
            .map_err(|e| ProbeError::Load(Box::new(e)))?;
        let prog: &mut aya::programs::RawTracePoint = ebpf
            .program_mut("insp_raw_noop")
            .expect("program compiled into the probe")
            .try_into()
            .expect("a raw tracepoint program");
        prog.load().map_err(|source| ProbeError::Program {
            program: "insp_raw_noop".to_string(),
            error: Box::new(source),
        })?;
        for tp in ["sched_switch", "sched_waking"] {
            prog.attach(tp).map_err(|source| ProbeError::Attach {
                program: "insp_raw_noop".to_string(),
                tracepoint: format!("raw {tp}"),
                error: std::io::Error::other(source),
            })?;
        }
        Ok(Floor { _ebpf: ebpf })
    }
}

/// Loads the `wanted` programs on as many threads as there are cores: the
/// kernel verifies privileged programs concurrently, and verifying is most of
/// the time a cold attach takes (`cargo xtask bench startup` measures it).
fn load_in_parallel(ebpf: &mut Ebpf, wanted: &[&str]) -> Result<(), ProbeError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut shares: Vec<Vec<(&str, &mut Program)>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, (name, program)) in ebpf
        .programs_mut()
        .filter(|(name, _)| wanted.contains(name))
        .enumerate()
    {
        shares[i % threads].push((name, program));
    }
    std::thread::scope(|scope| {
        let loaders: Vec<_> = shares
            .into_iter()
            .map(|share| {
                scope.spawn(move || {
                    for (name, program) in share {
                        let loaded = match program {
                            Program::TracePoint(p) => p.load(),
                            Program::RawTracePoint(p) => p.load(),
                            _ => continue,
                        };
                        loaded.map_err(|source| ProbeError::Program {
                            program: name.to_string(),
                            error: Box::new(source),
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        loaders
            .into_iter()
            .try_for_each(|loader| loader.join().expect("a loader thread panicked"))
    })
}

/// Takes the loaded programs (by the hook whose place each fills) and the
/// maps out of `ebpf`.
fn take_loaded(
    ebpf: &mut Ebpf,
    wanted: &[&'static str],
    variants: &Variants,
) -> Result<Loaded, ProbeError> {
    let mut programs = Vec::new();
    for &name in wanted {
        let fd = ebpf
            .program(variants.program(name))
            .expect("program compiled into the probe")
            .fd()
            .and_then(|fd| Ok(fd.as_fd().try_clone_to_owned()?))
            .map_err(|source| ProbeError::Program {
                program: name.to_string(),
                error: Box::new(source),
            })?;
        programs.push((name, fd));
    }
    let maps = Maps::take(|name| {
        ebpf.take_map(name).ok_or(ProbeError::Map {
            name,
            error: aya::maps::MapError::InvalidName {
                name: name.to_string(),
            },
        })
    })?;
    Ok(Loaded { programs, maps })
}

/// Pins the programs and maps of a loaded `ebpf` in `dir`; each program
/// under the name of the hook whose place it fills.
fn pin_all(
    ebpf: &Ebpf,
    wanted: &[&'static str],
    variants: &Variants,
    dir: &Path,
) -> std::io::Result<()> {
    for &name in wanted {
        let program = ebpf
            .program(variants.program(name))
            .ok_or(std::io::ErrorKind::NotFound)?;
        let fd = program.fd().map_err(std::io::Error::other)?;
        link::pin(fd.as_fd(), &dir.join(name))?;
    }
    for name in MAP_NAMES {
        let map = ebpf.map(name).ok_or(std::io::ErrorKind::NotFound)?;
        map.pin(dir.join(name)).map_err(std::io::Error::other)?;
    }
    Ok(())
}
