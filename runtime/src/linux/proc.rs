//! Reading /proc: a process's `stat` line (its state, parent and start time)
//! and `mountinfo` lines (where each filesystem is mounted).
//!
//! Hand-written rather than the `procfs` crate: its `Stat` insists on every
//! field a recent kernel writes, while these callers need three, and its
//! parsers would bring a crate tree of their own for two loops over a line.
//! inspector reads the same files through these functions, so the rules
//! (a comm may hold spaces and parentheses; a mount point is octal-escaped)
//! are written once.

use std::{ffi::OsString, os::unix::ffi::OsStringExt as _, path::PathBuf};

/// One `/proc/PID/stat` line, split: `pid (comm) state ppid ...`.
#[derive(Debug)]
pub struct Stat<'a> {
    /// Everything between the first `(` and the last `)`: a comm may hold
    /// both, and spaces.
    pub comm: &'a str,
    /// Fields 3 onwards (proc(5) numbers them from 1), after the comm.
    fields: Vec<&'a str>,
}

impl<'a> Stat<'a> {
    /// Splits a stat line; `None` when it has no `(comm)` or no state.
    pub fn parse(line: &'a str) -> Option<Self> {
        let open = line.find('(')?;
        let close = line.rfind(')')?;
        let comm = line.get(open + 1..close)?;
        let fields: Vec<&str> = line.get(close + 1..)?.split_whitespace().collect();
        fields.first()?;
        Some(Stat { comm, fields })
    }

    /// Field `n` as proc(5) numbers them (3 is the state).
    fn field(&self, n: usize) -> Option<&'a str> {
        self.fields.get(n.checked_sub(3)?).copied()
    }

    /// The state letter: `R`, `S`, `Z`, ...
    pub fn state(&self) -> &'a str {
        self.fields[0]
    }

    /// A zombie (`Z`) or dead (`X`) process: gone but for its entry.
    pub fn is_dead(&self) -> bool {
        matches!(self.state(), "Z" | "X")
    }

    pub fn ppid(&self) -> Option<u32> {
        self.field(4)?.parse().ok()
    }

    /// When the process started, in clock ticks after boot (field 22): with
    /// the pid, it names one process even after the pid is reused.
    pub fn start_time(&self) -> Option<u64> {
        self.field(22)?.parse().ok()
    }
}

/// (start time, is a zombie) of a process, from /proc/PID/stat.
pub fn process_start_time(pid: i32) -> Option<(u64, bool)> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let stat = Stat::parse(&text)?;
    Some((stat.start_time()?, stat.is_dead()))
}

/// One line of /proc/PID/mountinfo:
/// `id parent major:minor root mount-point options [optional...] - fstype source super-options`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    /// The device (major, minor) of the mounted filesystem.
    pub dev: (u32, u32),
    /// The mount point, unescaped (the kernel writes a space as `\040`).
    pub mount_point: PathBuf,
    pub fstype: String,
    /// The filesystem's own options (`rw,memory` for a cgroup v1 hierarchy).
    pub super_options: String,
    /// In a peer group (`shared:N` among the optional fields).
    pub shared: bool,
}

impl MountInfo {
    /// Parses one line; `None` for a line that is not one.
    pub fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split(' ').collect();
        // Six fixed fields, then optional ones up to the lone "-".
        let dash = 6 + fields.get(6..)?.iter().position(|f| *f == "-")?;
        let (major, minor) = fields[2].split_once(':')?;
        Some(MountInfo {
            dev: (major.parse().ok()?, minor.parse().ok()?),
            mount_point: PathBuf::from(unescape(fields[4])),
            fstype: fields.get(dash + 1)?.to_string(),
            super_options: fields.get(dash + 3)?.to_string(),
            shared: fields[6..dash].iter().any(|f| f.starts_with("shared:")),
        })
    }

    /// Every mount in a mountinfo file's text, skipping lines that are not one.
    pub fn parse_all(text: &str) -> impl Iterator<Item = MountInfo> + '_ {
        text.lines().filter_map(MountInfo::parse)
    }
}

/// Undoes the kernel's escaping of a mountinfo path: `\` and three octal
/// digits stand for that byte (space, tab, newline and `\` itself).
pub fn unescape(field: &str) -> OsString {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| d[0] <= b'3' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_start_time() {
        let (t, zombie) = process_start_time(std::process::id() as i32).unwrap();
        assert!(t > 0 && !zombie);
    }

    #[test]
    fn a_comm_with_spaces_and_parentheses_is_read_whole() {
        let line = "42 (a (b) c) Z 7 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 99 20\n";
        let s = Stat::parse(line).unwrap();
        assert_eq!(s.comm, "a (b) c");
        assert_eq!(s.ppid(), Some(7));
        assert_eq!(s.start_time(), Some(99));
        assert!(s.is_dead());
        // Cut short: what is there is read, what is not is None, nothing panics.
        assert_eq!(Stat::parse("1 (x) S 0").unwrap().start_time(), None);
        assert!(Stat::parse("1 (x)").is_none());
        assert!(Stat::parse("1 )x(").is_none());
    }

    #[test]
    fn a_mount_point_with_a_space_is_unescaped() {
        let line =
            r"36 30 0:32 / /mnt/my\040disk\134x rw,nosuid shared:15 - cgroup cgroup rw,memory";
        let m = MountInfo::parse(line).unwrap();
        assert_eq!(m.mount_point, PathBuf::from(r"/mnt/my disk\x"));
        assert_eq!(m.dev, (0, 32));
        assert_eq!(m.fstype, "cgroup");
        assert_eq!(m.super_options, "rw,memory");
        assert_eq!(unescape(r"a\0401\9"), "a 1\\9");
        assert!(MountInfo::parse("not a mountinfo line").is_none());
    }
}
