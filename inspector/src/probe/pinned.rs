//! The loaded probe, kept between runs: its programs and maps pinned on the
//! BPF filesystem, with no link attached, so that the next run attaches them
//! in a few milliseconds instead of loading them again (parsing the kernel's
//! BTF and having the kernel verify every program takes about 100 ms here).
//!
//! One set per probe build and settings, under `/sys/fs/bpf/inspector/<key>`;
//! a run takes the set's lock (`/run/inspector/probe/<key>.lock`) for as long as
//! it uses it, since the set's maps hold one run's state, and hands it on to
//! the keeper of its links (see `keeper`). A run that finds the lock taken by
//! another inspector that is tracing loads a private probe. Making a set
//! removes the sets of other builds that no one holds. Pinned programs attach
//! to nothing: once their keeper is gone they cost the machine only their
//! memory, until `inspector unload` or the next boot.

use std::{
    fs::File,
    io,
    os::{
        fd::{AsRawFd as _, OwnedFd},
        unix::fs::{DirBuilderExt as _, OpenOptionsExt as _},
    },
    path::{Path, PathBuf},
};

use super::link;

/// Where bpffs is mounted by every distribution that mounts it.
pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
const LOCKS: &str = "/run/inspector/probe";
/// A set being pinned. (bpffs refuses names with dots: reserved, it says.)
const TMP_PREFIX: &str = "tmp-";

fn root() -> PathBuf {
    Path::new(BPFFS).join("inspector")
}

/// The right to use (or make) the set for one key while it is held.
pub struct Lease {
    pub lock: OwnedFd,
    pub key: String,
    pub dir: PathBuf,
}

impl Lease {
    /// The lease a keeper handed over with its links.
    pub fn adopted(key: &str, lock: OwnedFd) -> Self {
        Lease {
            lock,
            key: key.to_string(),
            dir: root().join(key),
        }
    }

    /// Whether the set is there to be opened.
    pub fn is_filled(&self) -> bool {
        self.dir.is_dir()
    }

    /// Opens a pinned program or map of the set.
    pub fn open(&self, name: &str) -> io::Result<OwnedFd> {
        link::pinned(&self.dir.join(name))
    }

    /// Removes what is pinned of the set (a set found broken).
    pub fn clear(&self) {
        remove_set(&self.dir);
    }

    /// Makes the set: `pin` pins every program and map in the directory it
    /// is given, a directory of its own renamed into place at the end, so
    /// that a set is whole or absent.
    pub fn fill(&self, pin: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
        let name = self.dir.file_name().unwrap_or_default().to_string_lossy();
        let tmp = self
            .dir
            .with_file_name(format!("{TMP_PREFIX}{name}-{}", std::process::id()));
        remove_set(&tmp);
        std::fs::create_dir(&tmp)?;
        let pinned = pin(&tmp).and_then(|()| std::fs::rename(&tmp, &self.dir));
        if pinned.is_err() {
            remove_set(&tmp);
        }
        pinned
    }
}

/// Takes the lock of the set for `key`, mounting bpffs if it is not. `None`
/// when another inspector holds it; an error when sets cannot be kept here.
pub fn claim(key: &str) -> io::Result<Option<Lease>> {
    ensure_bpffs()?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(LOCKS)?;
    // Only root may open it: flock needs no write access, and a lock held
    // by anyone else would keep every run from the kept probe.
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(Path::new(LOCKS).join(format!("{key}.lock")))?;
    if !try_lock(&lock) {
        return Ok(None);
    }
    std::fs::create_dir_all(root())?;
    Ok(Some(Lease::adopted(key, lock.into())))
}

/// Removes the sets of other keys that no one holds, and leftovers of fills
/// that did not finish.
pub fn evict_others(key: &str) {
    let Ok(entries) = std::fs::read_dir(root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == key {
            continue;
        }
        if let Some(rest) = name.strip_prefix(TMP_PREFIX) {
            // `tmp-<key>-<pid>`: a fill in progress, unless its process is gone.
            let pid = rest.rsplit('-').next().unwrap_or_default();
            if !Path::new("/proc").join(pid).exists() {
                remove_set(&entry.path());
            }
            continue;
        }
        let _ = remove_unheld(&name);
    }
}

/// Removes every set no inspector is tracing with (dismissing keepers first);
/// the number removed and the number left because in use. With
/// `links_only`, only the keepers are dismissed (their links detached, which
/// is waited for) and the programs stay pinned.
pub fn unload_all(links_only: bool) -> io::Result<(usize, usize)> {
    let entries = match std::fs::read_dir(root()) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
        Err(e) => return Err(e),
    };
    let (mut removed, mut busy) = (0, 0);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(TMP_PREFIX) {
            remove_set(&entry.path());
            continue;
        }
        if super::keeper::dismiss(&name) {
            // It frees the lock once its links are detached.
            wait_unheld(&name, std::time::Duration::from_secs(10));
        }
        if links_only {
            continue;
        }
        if remove_unheld(&name)? {
            removed += 1;
        } else {
            busy += 1;
        }
    }
    if !links_only {
        let _ = std::fs::remove_dir(root());
    }
    Ok((removed, busy))
}

/// Removes the set `key` if its lock can be taken.
fn remove_unheld(key: &str) -> io::Result<bool> {
    let lock_path = Path::new(LOCKS).join(format!("{key}.lock"));
    let lock = match File::options().write(true).open(&lock_path) {
        Ok(lock) => Some(lock),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if lock.as_ref().is_some_and(|lock| !try_lock(lock)) {
        return Ok(false);
    }
    // Held until the set is gone (dropped at return).
    // The lock file stays: removing it while another inspector opens it
    // could leave two holders of one set.
    remove_set(&root().join(key));
    Ok(true)
}

fn wait_unheld(key: &str, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    let Ok(lock) = File::options()
        .write(true)
        .open(Path::new(LOCKS).join(format!("{key}.lock")))
    else {
        return;
    };
    while !try_lock(&lock) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Unpins a set: its programs and maps are freed once nothing else holds them.
fn remove_set(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Mounts bpffs where systemd would have, if nothing is mounted there.
fn ensure_bpffs() -> io::Result<()> {
    if is_bpffs(Path::new(BPFFS)) {
        return Ok(());
    }
    let target = c"/sys/fs/bpf";
    // SAFETY: NUL-terminated strings for mount(2).
    let r = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn is_bpffs(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: a zeroed statfs for the kernel to fill.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid path and a valid statfs.
    unsafe { libc::statfs(path.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC }
}

/// A key naming one build of the probe with its settings: a hash of what
/// decides the programs' code and the maps' sizes. Read eight bytes a step:
/// the probe's object is over a megabyte, hashed at every start.
pub fn key(parts: &[&[u8]]) -> String {
    const PRIME: u64 = 0x0100_0000_01b3;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |word: u64| {
        hash = (hash ^ word).wrapping_mul(PRIME);
        hash ^= hash >> 29;
    };
    for part in parts {
        let mut words = part.chunks_exact(8);
        for word in words.by_ref() {
            mix(u64::from_le_bytes(word.try_into().expect("8 bytes")));
        }
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        mix(u64::from_le_bytes(tail));
        mix(part.len() as u64);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_with_any_part_and_with_where_parts_split() {
        let a = key(&[b"probe", b"config"]);
        assert_eq!(a, key(&[b"probe", b"config"]));
        assert_ne!(a, key(&[b"probe", b"confih"]));
        assert_ne!(a, key(&[b"probec", b"onfig"]));
        assert_eq!(a.len(), 16);
    }
}
