//! inspector's BPF programs and the links attached to them, as `bpftool`
//! lists them: what the integration tests check is gone when inspector ends,
//! and what `cargo xtask bench` waits to see detached before a baseline.
//!
//! One copy of the filter (a program is inspector's when its name starts with
//! [`PROGRAM_PREFIX`]; a link is when it points at one of those programs), so
//! that the tests and the benchmarks count the same thing. bpftool's JSON is
//! read as [`serde_json::Value`]: only `name`, `id` and `prog_id` matter, and
//! a field bpftool adds or drops must not break the count.

use std::{
    collections::HashSet,
    process::{Command, ExitStatus},
};

use serde_json::Value;

/// The prefix of every BPF program inspector loads.
pub const PROGRAM_PREFIX: &str = "insp_";

/// Why bpftool gave no listing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot start bpftool (cargo xtask setup installs it): {0}")]
    Start(#[source] std::io::Error),
    #[error("bpftool {object} show failed ({status}): {stderr}")]
    Failed {
        object: String,
        status: ExitStatus,
        stderr: String,
    },
}

/// `bpftool OBJECT show --json` (`prog` or `link`). Output that is not JSON
/// reads as `null`, which lists nothing.
pub fn show(object: &str) -> Result<Value, Error> {
    let out = Command::new("bpftool")
        .args([object, "show", "--json"])
        .output()
        .map_err(Error::Start)?;
    if !out.status.success() {
        return Err(Error::Failed {
            object: object.to_string(),
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap_or_default())
}

/// The names of the programs in a `bpftool prog show --json` listing.
pub fn program_names(progs: &Value) -> Vec<String> {
    entries(progs)
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect()
}

/// How many links of a `bpftool link show --json` listing are attached to
/// inspector's programs in a `bpftool prog show --json` listing.
pub fn inspector_link_count(progs: &Value, links: &Value) -> usize {
    let ours: HashSet<u64> = entries(progs)
        .filter(|p| p["name"].as_str().is_some_and(is_inspector_program))
        .filter_map(|p| p["id"].as_u64())
        .collect();
    entries(links)
        .filter(|l| l["prog_id"].as_u64().is_some_and(|id| ours.contains(&id)))
        .count()
}

/// Is the program called `name` one of inspector's?
pub fn is_inspector_program(name: &str) -> bool {
    name.starts_with(PROGRAM_PREFIX)
}

/// The links attached to inspector's programs right now.
pub fn inspector_links() -> Result<usize, Error> {
    Ok(inspector_link_count(&show("prog")?, &show("link")?))
}

fn entries(listing: &Value) -> impl Iterator<Item = &Value> {
    listing.as_array().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn only_links_to_inspector_programs_count() {
        let progs = json!([
            {"id": 7, "name": "insp_exec"},
            {"id": 8, "name": "other"},
            {"id": 9, "name": "insp_exit"},
            {"name": "insp_no_id"}
        ]);
        let links = json!([
            {"id": 1, "prog_id": 7},
            {"id": 2, "prog_id": 8},
            {"id": 3, "prog_id": 9},
            {"id": 4, "prog_id": 9},
            {"id": 5}
        ]);
        assert_eq!(inspector_link_count(&progs, &links), 3);
        assert_eq!(
            program_names(&progs),
            ["insp_exec", "other", "insp_exit", "insp_no_id"]
        );
    }

    #[test]
    fn a_listing_that_is_not_an_array_lists_nothing() {
        assert_eq!(inspector_link_count(&Value::Null, &json!({"x": 1})), 0);
        assert!(program_names(&json!("text")).is_empty());
    }
}
