//! The other local user of the attack tests (`nobody`, through `setpriv`),
//! and a host made as weak as many are for them.

use std::sync::{Mutex, MutexGuard};

/// The command prefix that runs a command as `nobody`, with no
/// supplementary groups: the other local user of the attack tests.
pub const NOBODY: &[&str] = &[
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// `fs.protected_symlinks` set to 0 while held, as on many hosts and in
/// containers (root then follows links other users made in /tmp); the old
/// value is put back on drop. One at a time in a test binary.
pub struct SymlinksUnprotected {
    old: String,
    _serial: MutexGuard<'static, ()>,
}

const PROTECTED_SYMLINKS: &str = "/proc/sys/fs/protected_symlinks";

impl SymlinksUnprotected {
    // Not `Default`: it changes the host, so it is only ever made on purpose.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        static SERIAL: Mutex<()> = Mutex::new(());
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let old = std::fs::read_to_string(PROTECTED_SYMLINKS).expect("read protected_symlinks");
        std::fs::write(PROTECTED_SYMLINKS, "0").expect("set fs.protected_symlinks=0");
        SymlinksUnprotected {
            old,
            _serial: serial,
        }
    }
}

impl Drop for SymlinksUnprotected {
    fn drop(&mut self) {
        let _ = std::fs::write(PROTECTED_SYMLINKS, self.old.trim());
    }
}
