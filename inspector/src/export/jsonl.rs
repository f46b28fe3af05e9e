//! `--output FILE`: each finished container's timeline as one JSON line
//! (the form `inspector timeline --format json` writes, docs/timeline.md),
//! appended, for log shippers (Vector, Fluent Bit, Promtail) to follow.
//!
//! The file is reopened on SIGHUP, so that logrotate can move it away. It
//! is opened as root in a directory others may write to: a link planted at
//! its name is not followed, and a file that is not the agent's own (another
//! owner, another link to it) is refused rather than appended to.

use std::{
    fs::{File, OpenOptions},
    io::Write as _,
    os::unix::fs::{MetadataExt as _, OpenOptionsExt as _},
    path::{Path, PathBuf},
};

use super::ExportError;
use crate::timeline::ContainerTimeline;

pub struct JsonLines {
    path: PathBuf,
    file: File,
    line: Vec<u8>,
    /// It made the file (it did not exist): [`JsonLines::discard`] removes it.
    created: bool,
}

impl JsonLines {
    pub fn open(path: &Path) -> Result<Self, ExportError> {
        let created = path.symlink_metadata().is_err();
        Ok(JsonLines {
            path: path.to_path_buf(),
            file: open(path)?,
            line: Vec::with_capacity(64 << 10),
            created,
        })
    }

    /// For a start that failed after the file was opened: removes it if
    /// this made it and nothing was written, so a failed start leaves no
    /// file behind.
    pub fn discard(self) {
        let empty = self.file.metadata().is_ok_and(|m| m.len() == 0);
        if self.created && empty {
            let _ = std::fs::remove_file(&self.path);
        }
    }

    /// Opens the file again at its path (after log rotation moved it).
    pub fn reopen(&mut self) -> Result<(), ExportError> {
        self.file = open(&self.path)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one timeline as one line, in one write: a reader never sees
    /// half a line followed by another's.
    pub fn write(&mut self, t: &ContainerTimeline) -> std::io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, t)?;
        self.line.push(b'\n');
        self.file.write_all(&self.line)
    }
}

fn open(path: &Path) -> Result<File, ExportError> {
    let refused = |why: &str| ExportError::UnsafeOutput {
        path: path.display().to_string(),
        why: why.to_string(),
    };
    let file = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| match error.raw_os_error() {
            Some(libc::ELOOP) => refused("is a symbolic link: not followed (give the real path)"),
            _ => ExportError::Output {
                path: path.display().to_string(),
                error,
            },
        })?;
    let meta = file.metadata().map_err(|error| ExportError::Output {
        path: path.display().to_string(),
        error,
    })?;
    if !meta.file_type().is_file() {
        return Err(refused("is not a regular file"));
    }
    // SAFETY: geteuid has no failure mode.
    if meta.uid() != unsafe { libc::geteuid() } {
        return Err(refused(
            "belongs to another user: not appended to (remove it, or choose another path)",
        ));
    }
    if meta.nlink() > 1 {
        return Err(refused(
            "has other hard links: not appended to (remove it, or choose another path)",
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::docker_run_timeline as timeline;

    #[test]
    fn each_timeline_is_a_line_and_a_rotated_file_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("containers.jsonl");
        let mut out = JsonLines::open(&path).unwrap();
        let t = timeline();
        out.write(&t).unwrap();
        std::fs::rename(&path, dir.path().join("containers.jsonl.1")).unwrap();
        out.write(&t).unwrap(); // still to the moved file
        out.reopen().unwrap();
        out.write(&t).unwrap();
        let old = std::fs::read_to_string(dir.path().join("containers.jsonl.1")).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!((old.lines().count(), new.lines().count()), (2, 1));
        let back: ContainerTimeline = serde_json::from_str(new.trim_end()).unwrap();
        assert_eq!((back.id, back.phases), (t.id, t.phases));
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_file_it_made_is_removed_when_the_start_fails_one_it_found_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let made = dir.path().join("new.jsonl");
        JsonLines::open(&made).unwrap().discard();
        assert!(!made.exists());
        let found = dir.path().join("old.jsonl");
        std::fs::write(&found, "").unwrap();
        JsonLines::open(&found).unwrap().discard();
        assert!(found.exists());
    }

    #[test]
    fn a_planted_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious\n").unwrap();
        let path = dir.path().join("out.jsonl");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let e = JsonLines::open(&path).err().expect("refused");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let hard = dir.path().join("hard.jsonl");
        std::fs::hard_link(&target, &hard).unwrap();
        let e = JsonLines::open(&hard).err().expect("refused");
        assert!(e.to_string().contains("hard links"), "{e}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    }
}
