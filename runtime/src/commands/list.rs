//! `list`: every container under `--root`.

use std::path::Path;

use crate::{Result, container::Saved};

pub fn list(root: &Path) -> Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(root) else {
        return Ok(out);
    };
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    for id in names {
        if let Ok(saved) = Saved::load(root, &id) {
            out.push(saved.oci_state(saved.status(root)));
        }
    }
    Ok(out)
}

/// `list`: the ids alone (`--quiet`), JSON (`--format json`) or the table.
pub fn print(root: &Path, format: &str, quiet: bool) -> Result<()> {
    let states = list(root)?;
    if quiet {
        for s in &states {
            println!("{}", s["id"].as_str().unwrap_or(""));
        }
    } else if format == "json" {
        println!(
            "{}",
            serde_json::to_string(&states).map_err(|e| crate::error::msg(e.to_string()))?
        );
    } else {
        print!("{}", table(&states));
    }
    Ok(())
}

/// runc's table: ID, PID, STATUS, BUNDLE, CREATED, OWNER.
pub fn table(states: &[serde_json::Value]) -> String {
    let mut s = format!(
        "{:<20} {:<8} {:<10} {:<40} {:<32} OWNER\n",
        "ID", "PID", "STATUS", "BUNDLE", "CREATED"
    );
    for st in states {
        s.push_str(&format!(
            "{:<20} {:<8} {:<10} {:<40} {:<32} {}\n",
            st["id"].as_str().unwrap_or(""),
            st["pid"],
            st["status"].as_str().unwrap_or(""),
            st["bundle"].as_str().unwrap_or(""),
            st["created"].as_str().unwrap_or(""),
            "root"
        ));
    }
    s
}
