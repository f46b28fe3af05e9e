//! `pause` and `resume`: the freezer cgroup (v1) or cgroup.freeze (v2).

use std::path::Path;

use crate::{
    Result,
    container::{Saved, Status},
    error::msg,
};

pub fn pause(root: &Path, id: &str) -> Result<()> {
    let saved = Saved::load(root, id)?;
    match saved.status(root) {
        Status::Running | Status::Created => saved.cgroup.freeze(true),
        s => Err(msg(format!("cannot pause a container that is {s}"))),
    }
}

pub fn resume(root: &Path, id: &str) -> Result<()> {
    let saved = Saved::load(root, id)?;
    match saved.status(root) {
        Status::Paused => saved.cgroup.freeze(false),
        s => Err(msg(format!("cannot resume a container that is {s}"))),
    }
}
