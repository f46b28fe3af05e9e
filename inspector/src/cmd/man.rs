//! `inspector man --dir DIR`: manual pages from the clap definitions,
//! `inspector.1` and one per visible subcommand (`inspector-agent.1`), as
//! packages install them (`cargo xtask dist`).
//!
//! Each page is written to a fresh temporary file in DIR and renamed over
//! its name: DIR may be one other users can write to (a /tmp directory),
//! and a name they planted as a link is replaced, never followed.

use std::{
    io::Write as _,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context as _;
use clap::CommandFactory as _;

#[derive(clap::Args)]
pub struct ManArgs {
    /// Where to write the pages (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

pub fn run(args: ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // Built once so that each subcommand knows its full name
    // (`inspector-agent`), which names its page; `help` gets none.
    let mut cli = crate::Cli::command().disable_help_subcommand(true);
    cli.build();
    let mut written = Vec::new();
    pages(&cli, &args.dir, &mut written)?;
    for path in &written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// The page of `cmd` and of each of its visible subcommands, recursively.
fn pages(cmd: &clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render(&mut page)?;
    let path = dir.join(man.get_filename());
    write_new(&path, &page).with_context(|| format!("cannot write {}", path.display()))?;
    written.push(path);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages(sub, dir, written)?;
    }
    Ok(())
}

/// Writes `path` through a new file beside it (O_EXCL, unpredictable
/// name), renamed into place: readable by all, as man pages are.
fn write_new(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::Builder::new().prefix(".man-").tempfile_in(dir)?;
    file.write_all(contents)?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
