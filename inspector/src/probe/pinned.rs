//! The loaded probe, kept between runs: its programs and maps pinned on the
//! BPF filesystem, with no link attached, so that the next run attaches them
//! instead of loading them again (parsing the kernel's BTF and having the
//! kernel verify every program): `cargo xtask bench startup` measures both.
//!
//! One set per probe build and settings, under `/sys/fs/bpf/inspector/<key>`;
//! a run takes the set's lock (`/run/inspector/probe/<key>.lock`) for as long as
//! it uses it, since the set's maps hold one run's state, and hands it on to
//! the keeper of its links (see `keeper`). A run that finds the lock taken by
//! another inspector that is tracing loads a private probe. Making a set
//! removes the sets of other builds that no one holds. Pinned programs attach
//! to nothing: once their keeper is gone they cost the machine only their
//! memory, until `inspector unload` or the next boot. In the probe's
//! lifecycle ([`super::lifecycle`]) this is the Reopen way, and where the
//! Load way pins what it loaded.
//!
//! All of this runs as root in places other users may reach (a bpffs that an
//! older inspector, or the host, mounted writable by all), so nothing here
//! follows a link or trusts a directory someone else could write to:
//! `/sys/fs/bpf/inspector`, each set in it and the lock directory are used
//! only when root owns them and no one else may write to them (a bpffs
//! inspector mounts itself is 0700, as systemd mounts it), and a set is
//! removed entry by entry relative to directory descriptors, leaving alone,
//! and naming, whatever is not a directory or pin of root's. Otherwise a
//! user who planted `/sys/fs/bpf/inspector/x -> /etc` would have root empty
//! `/etc` at the next `inspector unload`.

use std::{
    fs::File,
    io,
    os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd},
    path::{Path, PathBuf},
};

use nix::{
    dir::Dir,
    errno::Errno,
    fcntl::{AtFlags, OFlag, openat, renameat},
    sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat},
    unistd::{UnlinkatFlags, unlinkat},
};

use aya::maps::{Map, MapData};

use super::{
    ProbeError, link,
    maps::{Loaded, Maps},
};

/// Where bpffs is mounted by every distribution that mounts it.
pub const BPFFS: &str = "/sys/fs/bpf";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;
/// The directory of the sets, in [`BPFFS`].
const SETS: &str = "inspector";
const LOCKS: &str = "/run/inspector/probe";
/// A set being pinned. (bpffs refuses names with dots: reserved, it says.)
const TMP_PREFIX: &str = "tmp-";

fn root() -> PathBuf {
    Path::new(BPFFS).join(SETS)
}

/// Where the keeper of the set `key` listens: in root's private lock
/// directory, so that no other user can take the name first (see `keeper`).
pub fn socket(key: &str) -> PathBuf {
    Path::new(LOCKS).join(format!("{key}.sock"))
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

    /// Whether the set is there to be opened: a directory of root's.
    pub fn is_filled(&self) -> bool {
        matches!(sets(false), Ok(Some(sets)) if open_private(sets.dir.as_fd(), &self.key).is_ok())
    }

    /// The Reopen way (see [`super::lifecycle`]): the set's programs
    /// (`wanted`; none when they are all attached already) and maps, opened
    /// from their pins.
    pub(super) fn reopen(&self, wanted: &[&'static str]) -> Result<Loaded, ProbeError> {
        let mut programs = Vec::new();
        for &name in wanted {
            let fd = link::pinned(&self.dir.join(name)).map_err(|e| ProbeError::Program {
                program: name.to_string(),
                error: Box::new(aya::programs::ProgramError::IOError(e)),
            })?;
            programs.push((name, fd));
        }
        let maps = Maps::take(|name| {
            MapData::from_pin(self.dir.join(name))
                .and_then(Map::from_map_data)
                .map_err(|source| ProbeError::Map {
                    name,
                    error: source,
                })
        })?;
        Ok(Loaded { programs, maps })
    }

    /// Removes what is pinned of the set (a set found broken).
    pub fn clear(&self) {
        if let Ok(Some(sets)) = sets(false) {
            let mut skipped = Vec::new();
            remove_set(sets.dir.as_fd(), &self.key, &mut skipped);
            warn_skipped(&skipped);
        }
    }

    /// Makes the set: `pin` pins every program and map in the directory it
    /// is given, a directory of its own (0700) renamed into place at the
    /// end, so that a set is whole or absent.
    ///
    /// Pinning goes by path (aya's and the kernel's interface): safe, since
    /// the directories on the way are root's and no one else may rename
    /// their entries (checked by [`sets`]).
    pub fn fill(&self, pin: impl FnOnce(&Path) -> io::Result<()>) -> io::Result<()> {
        let sets = sets(false)?.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{} is gone", root().display()),
            )
        })?;
        let dir = sets.dir.as_fd();
        let tmp = format!("{TMP_PREFIX}{}-{}", self.key, std::process::id());
        let mut skipped = Vec::new();
        remove_set(dir, &tmp, &mut skipped);
        mkdirat(dir, tmp.as_str(), Mode::S_IRWXU)?;
        let pinned = pin(&root().join(&tmp))
            .and_then(|()| Ok(renameat(dir, tmp.as_str(), dir, self.key.as_str())?));
        if pinned.is_err() {
            remove_set(dir, &tmp, &mut skipped);
        }
        warn_skipped(&skipped);
        pinned
    }
}

/// Takes the lock of the set for `key`, mounting bpffs if it is not. `None`
/// when another inspector holds it; an error when sets cannot be kept here
/// (among them: a `/sys/fs/bpf/inspector` that is not root's alone).
pub fn claim(key: &str) -> io::Result<Option<Lease>> {
    ensure_bpffs()?;
    if sets(true)?.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("bpffs is not mounted at {BPFFS}"),
        ));
    }
    let locks = locks()?;
    // Only root may open it: flock needs no write access, and a lock held
    // by anyone else would keep every run from the kept probe.
    let lock = open_lock(locks.as_fd(), key, true)?;
    if !try_lock(&lock) {
        return Ok(None);
    }
    Ok(Some(Lease::adopted(key, lock.into())))
}

/// Removes the sets of other keys that no one holds, and leftovers of fills
/// that did not finish.
pub fn evict_others(key: &str) {
    let (Ok(Some(sets)), Ok(locks)) = (sets(false), locks()) else {
        return;
    };
    let mut skipped = Vec::new();
    for name in entries(sets.dir.as_fd(), &mut skipped) {
        if name == key {
            continue;
        }
        if let Some(rest) = name.strip_prefix(TMP_PREFIX) {
            // `tmp-<key>-<pid>`: a fill in progress, unless its process is gone.
            let alive = rest
                .rsplit('-')
                .next()
                .and_then(|pid| pid.parse::<u32>().ok())
                .is_some_and(|pid| Path::new("/proc").join(pid.to_string()).exists());
            if !alive {
                remove_set(sets.dir.as_fd(), &name, &mut skipped);
            }
            continue;
        }
        let _ = remove_unheld(sets.dir.as_fd(), locks.as_fd(), &name, &mut skipped);
    }
    warn_skipped(&skipped);
}

/// What `inspector unload` did.
#[derive(Debug, Default)]
pub struct Unloaded {
    /// Sets removed.
    pub removed: usize,
    /// Sets left because an inspector is tracing with them.
    pub busy: usize,
    /// What was found in `/sys/fs/bpf/inspector` that inspector did not
    /// make, left alone: each a path and what it is.
    pub skipped: Vec<String>,
}

/// Removes every set no inspector is tracing with (dismissing keepers
/// first). With `links_only`, only the keepers are dismissed (their links
/// detached, which is waited for) and the programs stay pinned.
pub fn unload_all(links_only: bool) -> io::Result<Unloaded> {
    let mut done = Unloaded::default();
    let Some(sets) = sets(false)? else {
        return Ok(done);
    };
    let locks = locks()?;
    let dir = sets.dir.as_fd();
    for name in entries(dir, &mut done.skipped) {
        if let Err(e) = check_private(dir, &name) {
            done.skipped.push(e.to_string());
            continue;
        }
        if name.starts_with(TMP_PREFIX) {
            remove_set(dir, &name, &mut done.skipped);
            continue;
        }
        if super::keeper::dismiss(&name) {
            // It frees the lock once its links are detached.
            wait_unheld(locks.as_fd(), &name, std::time::Duration::from_secs(10));
        }
        if links_only {
            continue;
        }
        if remove_unheld(dir, locks.as_fd(), &name, &mut done.skipped)? {
            done.removed += 1;
        } else {
            done.busy += 1;
        }
    }
    if !links_only {
        // Fails while anything is left in it, as it should.
        let _ = unlinkat(sets.bpffs.as_fd(), SETS, UnlinkatFlags::RemoveDir);
    }
    Ok(done)
}

/// Removes the set `key` if its lock can be taken.
fn remove_unheld(
    sets: BorrowedFd,
    locks: BorrowedFd,
    key: &str,
    skipped: &mut Vec<String>,
) -> io::Result<bool> {
    let lock = match open_lock(locks, key, false) {
        Ok(lock) => Some(lock),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    if lock.as_ref().is_some_and(|lock| !try_lock(lock)) {
        return Ok(false);
    }
    // Held until the set is gone (dropped at return).
    // The lock file stays: removing it while another inspector opens it
    // could leave two holders of one set. The socket of a keeper goes: with
    // the lock free, no keeper of this set is alive.
    remove_set(sets, key, skipped);
    let _ = unlinkat(
        locks,
        format!("{key}.sock").as_str(),
        UnlinkatFlags::NoRemoveDir,
    );
    Ok(true)
}

fn wait_unheld(locks: BorrowedFd, key: &str, limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    let Ok(lock) = open_lock(locks, key, false) else {
        return;
    };
    while !try_lock(&lock) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Unpins the set `name` in `sets`: its programs and maps are freed once
/// nothing else holds them. Only root's pins in a directory of root's are
/// removed, never through a link; anything else is added to `skipped`.
fn remove_set(sets: BorrowedFd, name: &str, skipped: &mut Vec<String>) {
    let shown = root().join(name);
    let dir = match open_private(sets, name) {
        Ok(dir) => dir,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => {
            skipped.push(e.to_string());
            return;
        }
    };
    for entry in entries(dir.as_fd(), skipped) {
        match fstatat(dir.as_fd(), entry.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if kind(&st) == SFlag::S_IFREG && st.st_uid == euid() => {
                let _ = unlinkat(dir.as_fd(), entry.as_str(), UnlinkatFlags::NoRemoveDir);
            }
            Ok(st) => skipped.push(format!(
                "{} is {}; inspector pins only files of root's",
                shown.join(&entry).display(),
                describe(&st)
            )),
            Err(_) => {}
        }
    }
    let _ = unlinkat(sets, name, UnlinkatFlags::RemoveDir);
}

/// The names in the directory `dir`, but `.` and `..`; a name that is not
/// UTF-8 (inspector makes none) is added to `skipped`.
fn entries(dir: BorrowedFd, skipped: &mut Vec<String>) -> Vec<String> {
    // A descriptor of its own: reading moves its offset.
    let Ok(mut listing) = Dir::openat(
        dir,
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for entry in listing.iter().flatten() {
        let name = entry.file_name();
        match name.to_str() {
            Ok("." | "..") => {}
            Ok(name) => names.push(name.to_string()),
            Err(_) => skipped.push(format!(
                "{:?} has a name inspector never makes",
                name.to_string_lossy()
            )),
        }
    }
    names
}

/// `/sys/fs/bpf` and `/sys/fs/bpf/inspector`, opened.
struct Sets {
    bpffs: OwnedFd,
    dir: OwnedFd,
}

/// Opens the directory of the sets (making it with `create`): `None` when
/// bpffs is not mounted or, without `create`, when there is none. An error
/// when it is not root's alone: another user could have planted links in it.
fn sets(create: bool) -> io::Result<Option<Sets>> {
    let bpffs: OwnedFd = File::open(BPFFS)?.into();
    if !is_bpffs(bpffs.as_fd()) {
        return Ok(None);
    }
    let st = fstat(bpffs.as_fd())?;
    // Writable by others without the sticky bit: anyone could rename root's
    // directory away and put one of theirs in its place.
    if st.st_mode & 0o022 != 0 && st.st_mode & 0o1000 == 0 {
        return Err(untrusted(
            Path::new(BPFFS),
            &format!(
                "others may rename what is in it (mode {:o}, without the sticky bit); \
                 mount bpffs with mode=0700, as systemd does",
                st.st_mode & 0o7777
            ),
        ));
    }
    let dir = if create {
        make_private(bpffs.as_fd(), SETS)
    } else {
        open_private(bpffs.as_fd(), SETS)
    };
    match dir {
        Ok(dir) => Ok(Some(Sets { bpffs, dir })),
        Err(e) if !create && e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens (making it if need be) `/run/inspector/probe`, root's alone.
fn locks() -> io::Result<OwnedFd> {
    let run: OwnedFd = File::open("/run")?.into();
    let top = make_private(run.as_fd(), "inspector")?;
    make_private(top.as_fd(), "probe")
}

/// Opens the lock of the set `key` in the lock directory, never through a link.
fn open_lock(locks: BorrowedFd, key: &str, create: bool) -> io::Result<File> {
    let mut flags = OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    if create {
        flags |= OFlag::O_CREAT;
    }
    let fd = openat(
        locks,
        format!("{key}.lock").as_str(),
        flags,
        Mode::S_IRUSR | Mode::S_IWUSR,
    )
    .map_err(|e| at_path(e, &Path::new(LOCKS).join(format!("{key}.lock"))))?;
    Ok(fd.into())
}

/// [`open_private`], making the directory (0700) first if it is not there.
fn make_private(parent: BorrowedFd, name: &str) -> io::Result<OwnedFd> {
    match mkdirat(parent, name, Mode::S_IRWXU) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(at_path(e, &shown(parent, name))),
    }
    open_private(parent, name)
}

/// Opens the directory `name` in `parent`, never through a link, if it is
/// root's and no one else may write to it; narrowed to 0700 (older
/// inspectors made these 0755).
fn open_private(parent: BorrowedFd, name: &str) -> io::Result<OwnedFd> {
    let dir = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        // O_NOFOLLOW on a link; O_DIRECTORY on anything else.
        Errno::ELOOP | Errno::ENOTDIR => {
            match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st) => untrusted(&shown(parent, name), &format!("it is {}", describe(&st))),
                Err(e) => at_path(e, &shown(parent, name)),
            }
        }
        e => at_path(e, &shown(parent, name)),
    })?;
    let st = fstat(dir.as_fd())?;
    trusted(&st).map_err(|why| untrusted(&shown(parent, name), &why))?;
    if st.st_mode & 0o077 != 0 {
        fchmod(dir.as_fd(), Mode::S_IRWXU)?;
    }
    Ok(dir)
}

/// Whether `name` in `parent` is a directory of root's alone, without opening it.
fn check_private(parent: BorrowedFd, name: &str) -> io::Result<()> {
    let st = fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| at_path(e, &shown(parent, name)))?;
    let why = if kind(&st) != SFlag::S_IFDIR {
        Err(format!("it is {}", describe(&st)))
    } else {
        trusted(&st)
    };
    why.map_err(|why| untrusted(&shown(parent, name), &why))
}

/// Whether what `st` describes is root's and no one else may write to it;
/// if not, why.
fn trusted(st: &FileStat) -> Result<(), String> {
    if st.st_uid != euid() {
        return Err(format!("it belongs to uid {}, not to root", st.st_uid));
    }
    if st.st_mode & 0o022 != 0 {
        return Err(format!(
            "others may write to it (mode {:o})",
            st.st_mode & 0o7777
        ));
    }
    Ok(())
}

fn untrusted(path: &Path, why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!(
            "{} is not inspector's: {why}. Inspector does not use it nor follow links in it; \
             remove it as root once you know who made it",
            path.display()
        ),
    )
}

/// What a directory entry is, for a message.
fn describe(st: &FileStat) -> String {
    let what = match kind(st) {
        SFlag::S_IFLNK => "a symbolic link",
        SFlag::S_IFDIR => "a directory",
        SFlag::S_IFREG => "a file",
        _ => "a special file",
    };
    format!("{what} of uid {}", st.st_uid)
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// The path of `name` in `parent`, for messages: read back from /proc.
fn shown(parent: BorrowedFd, name: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/self/fd/{}", parent.as_raw_fd()))
        .unwrap_or_default()
        .join(name)
}

fn at_path(e: Errno, path: &Path) -> io::Error {
    io::Error::new(
        io::Error::from(e).kind(),
        format!("{}: {e}", path.display()),
    )
}

fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// Logs what [`remove_set`] and its callers left alone.
fn warn_skipped(skipped: &[String]) {
    for s in skipped {
        log::warn!("left alone: {s}");
    }
}

fn try_lock(file: &File) -> bool {
    // SAFETY: flock on a descriptor we own.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// Mounts bpffs where systemd would have, if nothing is mounted there:
/// 0700, as systemd mounts it (a bpffs writable by all lets any user plant
/// entries where root pins).
fn ensure_bpffs() -> io::Result<()> {
    if let Ok(dir) = File::open(BPFFS)
        && is_bpffs(dir.as_fd())
    {
        return Ok(());
    }
    let target = c"/sys/fs/bpf";
    // SAFETY: NUL-terminated strings for mount(2).
    let r = unsafe {
        libc::mount(
            c"bpf".as_ptr(),
            target.as_ptr(),
            c"bpf".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            c"mode=0700".as_ptr().cast(),
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn is_bpffs(dir: BorrowedFd) -> bool {
    // SAFETY: a zeroed statfs for the kernel to fill.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: an open descriptor and a valid statfs.
    unsafe { libc::fstatfs(dir.as_raw_fd(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC }
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
    fn removing_sets_never_follows_a_link_and_names_what_it_left() {
        let sets = tempfile::tempdir().unwrap();
        let victim = tempfile::tempdir().unwrap();
        std::fs::write(victim.path().join("precious"), b"p").unwrap();
        std::os::unix::fs::symlink(victim.path(), sets.path().join("zzz")).unwrap();
        // A set with a pin, and a link among its entries.
        std::fs::create_dir(sets.path().join("set")).unwrap();
        std::fs::write(sets.path().join("set/prog"), b"").unwrap();
        std::os::unix::fs::symlink(victim.path().join("precious"), sets.path().join("set/link"))
            .unwrap();
        let dir: OwnedFd = File::open(sets.path()).unwrap().into();

        let mut skipped = Vec::new();
        remove_set(dir.as_fd(), "zzz", &mut skipped);
        remove_set(dir.as_fd(), "set", &mut skipped);

        assert_eq!(std::fs::read(victim.path().join("precious")).unwrap(), b"p");
        assert!(!sets.path().join("set/prog").exists());
        assert!(std::fs::symlink_metadata(sets.path().join("set/link")).is_ok());
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        assert!(skipped[0].contains("zzz is not inspector's: it is a symbolic link"));
        assert!(skipped[1].contains("link is a symbolic link"));
    }

    #[test]
    fn a_directory_others_may_write_to_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let parent = tempfile::tempdir().unwrap();
        std::fs::create_dir(parent.path().join("open")).unwrap();
        std::fs::set_permissions(
            parent.path().join("open"),
            std::fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        std::fs::create_dir(parent.path().join("narrow")).unwrap();
        let dir: OwnedFd = File::open(parent.path()).unwrap().into();

        let refused = open_private(dir.as_fd(), "open").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("others may write to it (mode 777)")
        );
        open_private(dir.as_fd(), "narrow").unwrap();
        let mode = std::fs::metadata(parent.path().join("narrow"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "narrowed to 0700");
    }

    #[test]
    fn keys_differ_with_any_part_and_with_where_parts_split() {
        let a = key(&[b"probe", b"config"]);
        assert_eq!(a, key(&[b"probe", b"config"]));
        assert_ne!(a, key(&[b"probe", b"confih"]));
        assert_ne!(a, key(&[b"probec", b"onfig"]));
        assert_eq!(a.len(), 16);
    }
}
