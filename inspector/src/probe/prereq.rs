//! What the probe needs from the machine, checked before loading so that a
//! missing piece is named, with what to do about it.

use std::path::{Path, PathBuf};

use thiserror::Error;

use super::btf::VMLINUX;

/// Overrides where tracefs is looked for (tests point it at an empty directory).
pub const TRACEFS_ENV: &str = "INSPECTOR_TRACEFS";
/// Overrides where the kernel's BTF is read from (tests point it at nothing).
pub const BTF_ENV: &str = "INSPECTOR_BTF";

/// Where the running kernel's BTF is.
pub fn btf_path() -> PathBuf {
    std::env::var_os(BTF_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(VMLINUX))
}

#[derive(Debug, Error)]
pub enum PrereqError {
    #[error(
        "inspector needs root to load eBPF programs (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN); run it with sudo"
    )]
    NotRoot,
    #[error(
        "kernel BTF is missing ({path}): inspector needs a kernel built with CONFIG_DEBUG_INFO_BTF=y"
    )]
    NoBtf { path: String },
    #[error(
        "tracefs is not mounted (looked in {looked}): mount it with `mount -t tracefs tracefs /sys/kernel/tracing`"
    )]
    NoTracefs { looked: String },
    #[error(
        "tracepoint {category}:{name} is missing from this kernel ({path} does not exist){hint}"
    )]
    NoTracepoint {
        category: String,
        name: String,
        path: String,
        hint: &'static str,
    },
    #[error(
        "tracepoint syscalls:{name} has a record layout inspector does not know ({detail}); please report it with the output of `cat {path}`"
    )]
    Layout {
        name: String,
        path: String,
        detail: String,
    },
}

/// Checks privileges, BTF and tracefs; returns tracefs's `events` directory.
pub fn check() -> Result<PathBuf, PrereqError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(PrereqError::NotRoot);
    }
    let btf = btf_path();
    if !btf.exists() {
        return Err(PrereqError::NoBtf {
            path: btf.display().to_string(),
        });
    }
    tracefs_events()
}

/// tracefs's `events` directory.
pub fn tracefs_events() -> Result<PathBuf, PrereqError> {
    let candidates: Vec<PathBuf> = match std::env::var_os(TRACEFS_ENV) {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![
            PathBuf::from("/sys/kernel/tracing"),
            PathBuf::from("/sys/kernel/debug/tracing"),
        ],
    };
    for dir in &candidates {
        let events = dir.join("events");
        if events.is_dir() {
            return Ok(events);
        }
    }
    Err(PrereqError::NoTracefs {
        looked: candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

pub fn check_tracepoint(events: &Path, category: &str, name: &str) -> Result<(), PrereqError> {
    let dir = events.join(category).join(name);
    if dir.is_dir() {
        return Ok(());
    }
    Err(PrereqError::NoTracepoint {
        category: category.to_string(),
        name: name.to_string(),
        path: dir.display().to_string(),
        hint: "",
    })
}

/// Checks that a syscall tracepoint exists and that its record puts
/// `__syscall_nr` at 8 and the arguments (or `ret`) from 16, as the probe reads them.
pub fn check_syscall_tracepoint(events: &Path, name: &str) -> Result<(), PrereqError> {
    let format_path = events.join("syscalls").join(name).join("format");
    let format = std::fs::read_to_string(&format_path).map_err(|_| PrereqError::NoTracepoint {
        category: "syscalls".to_string(),
        name: name.to_string(),
        path: format_path.display().to_string(),
        hint: "; syscall tracepoints need a kernel built with CONFIG_FTRACE_SYSCALLS=y",
    })?;
    let layout_error = |detail: String| PrereqError::Layout {
        name: name.to_string(),
        path: format_path.display().to_string(),
        detail,
    };
    let fields = parse_format_offsets(&format);
    let nr = fields.iter().find(|(n, _)| n == "__syscall_nr");
    if nr.map(|(_, o)| *o) != Some(8) {
        return Err(layout_error(format!(
            "__syscall_nr at {:?}",
            nr.map(|f| f.1)
        )));
    }
    let first = fields
        .iter()
        .find(|(n, _)| n != "__syscall_nr" && !n.starts_with("common_"));
    match first {
        Some((_, 16)) | None => Ok(()),
        Some((n, o)) => Err(layout_error(format!("first field {n} at {o}, expected 16"))),
    }
}

/// (field name, offset) pairs from a tracefs `format` file.
pub fn parse_format_offsets(format: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for line in format.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else {
            continue;
        };
        let mut parts = rest.split(';');
        let decl = parts.next().unwrap_or("").trim();
        let offset = parts
            .next()
            .and_then(|p| p.trim().strip_prefix("offset:"))
            .and_then(|o| o.parse().ok());
        let name = decl
            .rsplit(|c: char| c.is_whitespace() || c == '*')
            .next()
            .unwrap_or("")
            .split('[')
            .next()
            .unwrap_or("")
            .to_string();
        if let Some(offset) = offset {
            out.push((name, offset));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNSHARE: &str = "name: sys_enter_unshare
ID: 123
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:int __syscall_nr;	offset:8;	size:4;	signed:1;
	field:unsigned long unshare_flags;	offset:16;	size:8;	signed:0;
";

    #[test]
    fn parses_tracefs_format() {
        let fields = parse_format_offsets(UNSHARE);
        assert!(fields.contains(&("__syscall_nr".to_string(), 8)));
        assert!(fields.contains(&("unshare_flags".to_string(), 16)));
        assert!(fields.contains(&("common_pid".to_string(), 4)));
    }

    #[test]
    fn missing_tracepoint_names_it_and_the_fix() {
        let dir = std::env::temp_dir().join(format!("inspector-prereq-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("syscalls")).unwrap();
        let err = check_syscall_tracepoint(&dir, "sys_enter_unshare").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("syscalls:sys_enter_unshare"), "{msg}");
        assert!(msg.contains("CONFIG_FTRACE_SYSCALLS"), "{msg}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unexpected_layout_is_refused() {
        let dir = std::env::temp_dir().join(format!("inspector-layout-{}", std::process::id()));
        let tp = dir.join("syscalls/sys_enter_unshare");
        std::fs::create_dir_all(&tp).unwrap();
        std::fs::write(tp.join("format"), UNSHARE.replace("offset:16", "offset:24")).unwrap();
        let err = check_syscall_tracepoint(&dir, "sys_enter_unshare").unwrap_err();
        assert!(matches!(err, PrereqError::Layout { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
