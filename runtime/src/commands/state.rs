//! `state`: the OCI state of a container, as JSON.

use std::path::Path;

use crate::{Result, container::Saved};

pub fn state(root: &Path, id: &str) -> Result<serde_json::Value> {
    let saved = Saved::load(root, id)?;
    Ok(saved.oci_state(saved.status(root)))
}

/// `state ID`: the state, pretty-printed on stdout.
pub fn print(root: &Path, id: &str) -> Result<()> {
    let state = state(root, id)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&state).map_err(|e| crate::error::msg(e.to_string()))?
    );
    Ok(())
}
