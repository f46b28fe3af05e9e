//! `ps`: the processes in a container: pids as JSON, or ps(1)'s table filtered to them.

use std::{path::Path, process::Command};

use crate::{
    Result,
    container::Saved,
    error::{Context as _, msg},
};

pub fn pids(root: &Path, id: &str) -> Result<Vec<i32>> {
    Ok(Saved::load(root, id)?.cgroup.pids())
}

/// `ps --format json|table ID [-- PS_ARGS]`, on stdout.
pub fn print(root: &Path, id: &str, format: &str, ps_args: &[String]) -> Result<()> {
    match format {
        "json" => println!(
            "{}",
            serde_json::to_string(&pids(root, id)?).map_err(|e| msg(e.to_string()))?
        ),
        "table" => print!("{}", table(root, id, ps_args)?),
        other => return Err(msg(format!("invalid format {other:?} (table or json)"))),
    }
    Ok(())
}

/// `ps ARGS` (default `-ef`), keeping the header and the container's processes.
pub fn table(root: &Path, id: &str, ps_args: &[String]) -> Result<String> {
    let pids = pids(root, id)?;
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .ctx(|| "cannot run ps".into())?;
    if !out.status.success() {
        return Err(msg(format!(
            "ps failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| msg("ps output has no PID column"))?;
    let mut result = format!("{header}\n");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            result.push_str(line);
            result.push('\n');
        }
    }
    Ok(result)
}
