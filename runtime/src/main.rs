//! `inspector-runtime`: the command line, runc's shape, parsed and handed to
//! the command of the same name in `commands/`.
//!
//! `no_main`: every container start executes this binary twice, and Rust's
//! usual start-up (finding the main thread's stack guard, which makes glibc
//! parse /proc/self/maps) is a measurable part of each. Arguments are read
//! from `main`'s own argv: `std::env::args` is filled by that start-up on
//! musl (glibc fills it earlier), so the static musl build would see none.
#![no_main]

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use runtime::{
    commands::{
        create, delete, events, exec, features, kill, list, pause, ps, run as run_cmd, spec, start,
        state, update,
    },
    linux::signal,
    log,
};

#[derive(Parser)]
#[command(
    name = "inspector-runtime",
    about = "A small OCI runtime with runc's command line",
    disable_version_flag = true
)]
struct Cli {
    /// Where container state lives.
    #[arg(long, global = true, default_value = runtime::DEFAULT_ROOT)]
    root: PathBuf,
    /// Write errors and warnings to this file instead of stderr.
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Use systemd for cgroups (not supported).
    #[arg(long, global = true)]
    systemd_cgroup: bool,
    /// Accepted for runc compatibility; changes nothing.
    #[arg(long, global = true, hide = true)]
    debug: bool,
    /// Accepted for runc compatibility; changes nothing.
    #[arg(long, global = true, hide = true)]
    rootless: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct CreateArgs {
    /// The bundle directory (holding config.json).
    #[arg(short, long, default_value = ".")]
    bundle: PathBuf,
    #[arg(long)]
    pid_file: Option<PathBuf>,
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Move the rootfs to / and chroot instead of pivot_root.
    #[arg(long)]
    no_pivot: bool,
    /// Accepted; this runtime makes no session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass the caller's fds 3 .. 3+N on to the entrypoint (socket activation).
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    id: String,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create a container; its entrypoint waits for `start`.
    Create(CreateArgs),
    /// Run the entrypoint of a created container.
    Start { id: String },
    /// Print a container's OCI state as JSON.
    State { id: String },
    /// Send a signal (default TERM) to a container.
    Kill {
        /// Signal every process in the container.
        #[arg(short, long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete a container's resources.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Create, start, wait and delete; exits with the container's status.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        #[arg(short, long)]
        detach: bool,
    },
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
    },
    /// List the processes in a container.
    Ps {
        #[arg(short, long, default_value = "table")]
        format: String,
        id: String,
        /// Arguments for ps(1) (default -ef), after the id as runc takes them.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Run a process in a running container.
    Exec {
        #[arg(short, long)]
        process: Option<PathBuf>,
        #[arg(short, long)]
        detach: bool,
        #[arg(long)]
        pid_file: Option<PathBuf>,
        #[arg(long)]
        console_socket: Option<PathBuf>,
        #[arg(short, long)]
        tty: bool,
        #[arg(long)]
        cwd: Option<PathBuf>,
        #[arg(short, long)]
        env: Vec<String>,
        /// UID[:GID] to run the process as.
        #[arg(short, long)]
        user: Option<String>,
        /// Supplementary group ids (repeat or separate with commas).
        #[arg(short = 'g', long, value_delimiter = ',')]
        additional_gids: Vec<u32>,
        /// Pass the caller's fds 3 .. 3+N on to the process.
        #[arg(long, default_value_t = 0)]
        preserve_fds: u32,
        /// Add a capability (CAP_NET_ADMIN) to the bounding, effective and permitted sets.
        #[arg(long = "cap", value_name = "CAP")]
        caps: Vec<String>,
        /// Set no_new_privs for the process.
        #[arg(long)]
        no_new_privs: bool,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Freeze every process in a container.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print what this runtime supports (the OCI features document, JSON).
    Features,
    /// Change a container's resources (flags, or `-r FILE` with a
    /// linux.resources JSON object; `-` reads it from standard input).
    Update {
        #[arg(short, long, value_name = "FILE")]
        resources: Option<PathBuf>,
        /// Memory limit in bytes (48m, 1g; -1 for none).
        #[arg(long, value_parser = update::parse_bytes, allow_hyphen_values = true)]
        memory: Option<i64>,
        #[arg(long, value_parser = update::parse_bytes, allow_hyphen_values = true)]
        memory_reservation: Option<i64>,
        /// Memory and swap together (as docker's --memory-swap).
        #[arg(long, value_parser = update::parse_bytes, allow_hyphen_values = true)]
        memory_swap: Option<i64>,
        #[arg(long)]
        cpu_share: Option<u64>,
        #[arg(long)]
        cpu_period: Option<u64>,
        #[arg(long, allow_hyphen_values = true)]
        cpu_quota: Option<i64>,
        #[arg(long)]
        cpuset_cpus: Option<String>,
        #[arg(long)]
        cpuset_mems: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        pids_limit: Option<i64>,
        id: String,
    },
    /// Print a container's resource usage and OOM kills as JSON lines.
    Events {
        /// Print the usage once and exit.
        #[arg(long)]
        stats: bool,
        /// How often to print the usage (5s, 100ms, ...).
        #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        id: String,
    },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table")]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
}

#[unsafe(no_mangle)]
// Only the C runtime calls it, with the argv the kernel gave the process.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
pub extern "C" fn main(argc: libc::c_int, argv: *const *const libc::c_char) -> libc::c_int {
    // SAFETY: the C runtime's argc and argv: argc NUL-terminated strings.
    let args: Vec<std::ffi::OsString> = (0..argc.max(0) as usize)
        .map(|i| unsafe {
            let arg = std::ffi::CStr::from_ptr(*argv.add(i));
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(arg.to_bytes()).to_owned()
        })
        .collect();
    // As Rust's start-up would: a closed pipe (a hook that does not read the
    // state) is an error, not a death. Children get the default back (std's
    // Command and, for the entrypoint, process::finalize_and_exec).
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // The process that enters the container runs this binary as `init`.
    match args.get(1) {
        Some(a) if a == "init" => {
            runtime::init::main(args.get(2).and_then(|n| n.to_str()?.parse().ok()))
        }
        // Keeps the sealed copy of this binary for the next invocations (see reexec).
        Some(a) if a == "exe-keeper" => runtime::reexec::keeper_main(),
        _ => {}
    }
    let cli = Cli::parse_from(args);
    // Before anything of ours is opened (the log file is the first), so that
    // what is found open there is the caller's.
    let preserved = cli.command.as_ref().map_or(Ok(()), |c| match c {
        Cmd::Create(a) | Cmd::Run { create: a, .. } => create::check_preserved(a.preserve_fds),
        Cmd::Exec { preserve_fds, .. } => create::check_preserved(*preserve_fds),
        _ => Ok(()),
    });
    log::init(
        cli.log.clone(),
        match cli.log_format {
            LogFormat::Text => log::Format::Text,
            LogFormat::Json => log::Format::Json,
        },
    );
    match preserved.map_err(Into::into).and_then(|()| run(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            if std::env::var_os("INSPECTOR_RUNTIME_DEBUG").is_some() {
                eprintln!("inspector-runtime: {e:?}");
            }
            log::error(&e.to_string());
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    if cli.version {
        println!(
            "inspector-runtime version {}\ncommit: {}\nspec: 1.0.2",
            env!("CARGO_PKG_VERSION"),
            env!("INSPECTOR_RUNTIME_COMMIT")
        );
        return Ok(0);
    }
    if cli.systemd_cgroup {
        bail!(
            "--systemd-cgroup is not supported: this runtime manages cgroups through cgroupfs only"
        );
    }
    let Some(cmd) = cli.command else {
        bail!("no command given (try --help)");
    };
    let root = cli.root;
    let create_opts = |a: CreateArgs| create::Options {
        root: root.clone(),
        id: a.id,
        bundle: a.bundle,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        terminal_optional: false,
    };
    match cmd {
        Cmd::Create(a) => {
            create::create(&create_opts(a))?;
        }
        Cmd::Start { id } => start::start(&root, &id)?,
        Cmd::State { id } => state::print(&root, &id)?,
        Cmd::Kill { all, id, signal } => {
            let sig = signal::parse(signal.as_deref().unwrap_or("TERM"))?;
            kill::kill(&root, &id, sig, all)?;
        }
        Cmd::Delete { force, id } => delete::delete(&root, &id, force)?,
        Cmd::Run { create, detach } => return Ok(run_cmd::run(&create_opts(create), detach)?),
        Cmd::Spec { bundle } => spec::write(&bundle)?,
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => ps::print(&root, &id, &format, &ps_args)?,
        Cmd::Exec {
            process,
            detach,
            pid_file,
            console_socket,
            tty,
            cwd,
            env,
            user,
            additional_gids,
            preserve_fds,
            caps,
            no_new_privs,
            id,
            command,
        } => {
            return Ok(exec::exec(&exec::Options {
                root,
                id,
                process_file: process,
                detach,
                pid_file,
                console_socket,
                tty,
                cwd,
                env,
                user,
                additional_gids,
                preserve_fds,
                caps,
                no_new_privs,
                args: command,
            })?);
        }
        Cmd::Pause { id } => pause::pause(&root, &id)?,
        Cmd::Resume { id } => pause::resume(&root, &id)?,
        Cmd::List { format, quiet } => list::print(&root, &format, quiet)?,
        Cmd::Features => features::print()?,
        Cmd::Events {
            stats,
            interval,
            id,
        } => events::events(&root, &id, stats, interval)?,
        Cmd::Update {
            resources,
            memory,
            memory_reservation,
            memory_swap,
            cpu_share,
            cpu_period,
            cpu_quota,
            cpuset_cpus,
            cpuset_mems,
            pids_limit,
            id,
        } => update::update(&update::Options {
            root,
            id,
            resources,
            flags: update::Flags {
                memory,
                memory_reservation,
                memory_swap,
                cpu_shares: cpu_share,
                cpu_period,
                cpu_quota,
                cpuset_cpus,
                cpuset_mems,
                pids_limit,
            },
        })?,
    }
    Ok(0)
}
