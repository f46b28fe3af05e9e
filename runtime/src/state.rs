//! `state`: the OCI state of a container, as JSON.

use std::path::Path;

use crate::{Result, container::Saved};

pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let saved = Saved::load(root, id)?;
    Ok(saved.oci_state(saved.status(root)))
}
