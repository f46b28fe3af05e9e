//! Who a process is in the container chain, and which container its command
//! line names. The roles are the engines' common parts (client, shim,
//! runtime, init, entrypoint), so that Docker's chain and podman's,
//! containerd's or a plain runtime's read, and compare, role by role; which
//! engine and runtime played them is [`super::engine`]'s.

use serde::{Deserialize, Serialize};

/// A process's part in starting or stopping a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The command a user typed: `docker`, `podman` (client and engine in
    /// one process: it mounts the rootfs, starts conmon and `runtime
    /// start`), `ctr`, `nerdctl`. Read as `docker-cli` too, its name before
    /// other engines had one.
    #[serde(alias = "docker-cli")]
    Client,
    Dockerd,
    Containerd,
    /// `containerd-shim-runc-v2 ... start`, or podman's first `conmon`:
    /// starts the real shim and exits.
    ShimStart,
    /// The long-lived `containerd-shim-runc-v2` or `conmon`, parent of the
    /// container.
    Shim,
    /// The OCI runtime as invoked (`runc create|start|delete|run ...`).
    Runtime,
    /// The runtime re-executing itself (`runc init`, from a sealed memfd).
    RuntimeReexec,
    /// The runtime's child that becomes the container's init.
    RuntimeInit,
    /// A hook the runtime runs (Docker's networking is a prestart hook).
    Hook,
    /// The container's entrypoint.
    Entrypoint,
    /// A process the entrypoint started.
    EntrypointChild,
    /// The engine cleaning up after the entrypoint exited: `podman container
    /// cleanup`, which conmon runs (its `--exit-command`) and which deletes
    /// the container through the runtime.
    EngineCleanup,
    Other,
}

impl Role {
    /// Every role, in the order of the chain.
    pub const ALL: [Role; 13] = [
        Role::Client,
        Role::Dockerd,
        Role::Containerd,
        Role::ShimStart,
        Role::Shim,
        Role::Runtime,
        Role::RuntimeReexec,
        Role::RuntimeInit,
        Role::Hook,
        Role::Entrypoint,
        Role::EntrypointChild,
        Role::EngineCleanup,
        Role::Other,
    ];

    /// The roles every `docker run` has in its chain, from the client the
    /// user typed to the entrypoint (Docker's networking is a hook).
    pub const DOCKER_RUN: [Role; 8] = [
        Role::Client,
        Role::ShimStart,
        Role::Shim,
        Role::Runtime,
        Role::RuntimeReexec,
        Role::RuntimeInit,
        Role::Hook,
        Role::Entrypoint,
    ];

    /// A role whose process makes the container before its entrypoint
    /// runs: when one fails, the container's start has failed.
    pub fn makes_the_container(self) -> bool {
        matches!(
            self,
            Role::ShimStart | Role::Runtime | Role::RuntimeReexec | Role::RuntimeInit | Role::Hook
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Dockerd => "dockerd",
            Role::Containerd => "containerd",
            Role::ShimStart => "shim (start)",
            Role::Shim => "shim",
            Role::Runtime => "runtime",
            Role::RuntimeReexec => "runtime re-exec",
            Role::RuntimeInit => "runtime init",
            Role::Hook => "hook",
            Role::Entrypoint => "entrypoint",
            Role::EntrypointChild => "entrypoint child",
            Role::EngineCleanup => "engine cleanup",
            Role::Other => "other",
        }
    }

    /// Its name in machine-read forms: the JSON, metric labels, span
    /// names (`runtime-init`).
    pub fn key(self) -> &'static str {
        match self {
            Role::ShimStart => "shim-start",
            Role::RuntimeReexec => "runtime-reexec",
            Role::RuntimeInit => "runtime-init",
            Role::EntrypointChild => "entrypoint-child",
            Role::EngineCleanup => "engine-cleanup",
            r => r.name(),
        }
    }

    /// Roles that exist for one container only: their events belong to it.
    pub fn is_per_container(self) -> bool {
        matches!(
            self,
            Role::ShimStart
                | Role::Shim
                | Role::Runtime
                | Role::RuntimeReexec
                | Role::RuntimeInit
                | Role::Hook
                | Role::Entrypoint
                | Role::EntrypointChild
                | Role::EngineCleanup
        )
    }

    /// The role of a name [`Role::name`] gave, or gave before: goldens
    /// written before other engines had a client say `docker CLI`.
    pub fn named(name: &str) -> Option<Role> {
        if name == "docker CLI" {
            return Some(Role::Client);
        }
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// The last part of a path: a program's name.
pub(super) fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// OCI runtimes inspector knows by their binary's name.
pub fn is_runtime_binary(path: &str) -> bool {
    matches!(
        basename(path),
        "runc" | "crun" | "youki" | "inspector-runtime" | "runsc"
    )
}

/// containerd's shims and podman's conmon (and conmon-rs).
pub fn is_shim_binary(path: &str) -> bool {
    let name = basename(path);
    name.starts_with("containerd-shim") || is_conmon(path)
}

pub fn is_conmon(path: &str) -> bool {
    matches!(basename(path), "conmon" | "conmonrs")
}

/// Clients a user types to start containers.
const CLIENTS: &[&str] = &["docker", "podman", "ctr", "nerdctl"];

/// Does a client's command line ask for a container to be made or started?
/// `docker run|create|start`, `podman run|create|start`, `ctr run`, `ctr
/// container create`, `ctr task start`, `nerdctl run|create|start`; the
/// clients' global flags and their values are skipped.
pub fn client_wants_container(argv: &[String]) -> bool {
    // Global flags that take a value, of the four clients.
    const WITH_VALUE: &[&str] = &[
        "-H",
        "--host",
        "--config",
        "--context",
        "-c",
        "-l",
        "--log-level", // docker
        "--root",
        "--runroot",
        "--runtime",
        "--cgroup-manager",
        "--storage-driver",
        "--storage-opt",
        "--tmpdir",
        "--network-config-dir",
        "--network-backend",
        "--events-backend",
        "--url",
        "--connection",
        "--conmon",
        "--volumepath",
        "--hooks-dir",
        "--module",
        "--identity",
        "--cni-config-dir", // podman
        "-a",
        "--address",
        "-n",
        "--namespace",
        "--timeout",
        "--connect-timeout", // ctr, nerdctl
        "--snapshotter",
        "--data-root",
    ];
    let mut positional = Vec::with_capacity(2);
    let mut args = argv.iter().skip(1);
    while let Some(a) = args.next() {
        if a.starts_with('-') {
            if WITH_VALUE.contains(&a.as_str()) {
                args.next();
            }
            continue;
        }
        positional.push(a.as_str());
        if positional.len() == 2 {
            break;
        }
    }
    matches!(
        positional.as_slice(),
        ["run" | "create" | "start", ..]
            | ["container" | "containers" | "c", "create" | "run" | "start"]
            | ["task" | "tasks" | "t", "start"]
    )
}

/// The role a process has from what it exec'd, before its parent is considered.
pub fn role_of_exec(filename: &str, argv: &[String]) -> Option<Role> {
    let name = basename(filename);
    let argv0 = argv.first().map(|a| basename(a)).unwrap_or("");
    if is_conmon(filename) {
        // conmon starts its own copy, which stays, and exits. One that names
        // no container is podman asking its `--version`: a helper of
        // whatever asked, with its part.
        return shim_container(filename, argv).map(|_| Role::ShimStart);
    }
    if is_shim_binary(filename) {
        // `start` is the last argument of the short-lived invocation.
        return Some(if argv.last().is_some_and(|a| a == "start") {
            Role::ShimStart
        } else {
            Role::Shim
        });
    }
    // podman run by conmon once the entrypoint exited (its exit command).
    if name == "podman" && is_podman_cleanup(argv) {
        return Some(Role::EngineCleanup);
    }
    // inspector-runtime keeps a sealed copy of itself alive in a process of
    // its own, shared by every container: part of none.
    if argv0 == "inspector-runtime" && argv.get(1).is_some_and(|a| a == "exe-keeper") {
        return Some(Role::Other);
    }
    // A runtime that executes a sealed copy of itself with its own command
    // line (youki's `/proc/self/fd/N run ...`) goes on being that command;
    // one that re-executes as `init` is `is_runtime_reexec`.
    if is_runtime_binary(filename)
        || (argv0 == "runc" && argv.get(1).is_some_and(|a| a != "init"))
        || (is_self_exec(filename)
            && is_runtime_binary(argv0)
            && argv.get(1).is_some_and(|a| a != "init"))
    {
        // `runc --version`, `crun features`: asked by an engine, about no
        // container.
        return Some(if names_no_container(argv) {
            Role::Other
        } else {
            Role::Runtime
        });
    }
    match name {
        n if CLIENTS.contains(&n) => Some(Role::Client),
        "dockerd" => Some(Role::Dockerd),
        "containerd" => Some(Role::Containerd),
        _ => None,
    }
}

/// The name a runtime's child gives itself for its stage of making the
/// container, after runc's `runc:[1:CHILD]`: youki's `youki:[1:INTER]`
/// and `youki:[2:INIT]`.
pub fn is_init_stage(comm: &str) -> bool {
    comm.contains(":[")
        && ["INIT]", "INTER]", "CHILD]"]
            .iter()
            .any(|s| comm.ends_with(s))
}

/// A runtime re-executing itself: `/proc/self/exe init`, `/dev/fd/N init`.
pub fn is_runtime_reexec(filename: &str, argv: &[String]) -> bool {
    is_self_exec(filename) && argv.get(1).is_some_and(|a| a == "init")
}

/// A process executing its own binary again (or a sealed copy of it).
fn is_self_exec(filename: &str) -> bool {
    filename == "/proc/self/exe"
        || filename.starts_with("/dev/fd/")
        || filename.starts_with("/proc/self/fd/")
}

/// The role a process has from its command name alone (a process that was
/// running before the trace started has no exec to go by).
pub fn role_of_comm(comm: &str) -> Role {
    match comm {
        c if CLIENTS.contains(&c) => Role::Client,
        "dockerd" => Role::Dockerd,
        "containerd" => Role::Containerd,
        "containerd-shim" | "conmon" | "conmonrs" => Role::Shim,
        "runc" | "crun" | "youki" | "inspector-runti" => Role::Runtime,
        c if c.starts_with("runc:[") => Role::RuntimeInit,
        _ => Role::Other,
    }
}

/// A runtime invocation about no container: no command (`--version`,
/// `--help`), or one about the runtime itself (`spec`, `features`, `list`,
/// `help`, `version`).
fn names_no_container(argv: &[String]) -> bool {
    match runtime_words(argv).next() {
        None => argv
            .iter()
            .skip(1)
            .any(|a| matches!(a.as_str(), "--version" | "-v" | "-V" | "--help" | "-h")),
        Some(first) => matches!(
            first,
            "spec" | "features" | "list" | "help" | "version" | "info"
        ),
    }
}

/// What a runtime invocation does and to which container:
/// `runc --root R create --bundle B --pid-file F ID` → ("create", ID).
pub fn runtime_command(argv: &[String]) -> Option<(String, String)> {
    const VERBS: &[&str] = &[
        "create",
        "start",
        "run",
        "delete",
        "kill",
        "state",
        "exec",
        "pause",
        "resume",
        "ps",
        "update",
        "events",
        "checkpoint",
        "restore",
    ];
    let mut words = runtime_words(argv);
    let verb = words.next().filter(|v| VERBS.contains(v))?;
    Some((verb.to_string(), words.next()?.to_string()))
}

/// A runtime's command line without its flags and their values: the
/// command, then its arguments.
fn runtime_words(argv: &[String]) -> impl Iterator<Item = &str> {
    // Flags that take a value, global or per command, in runc's command line.
    const WITH_VALUE: &[&str] = &[
        "--root",
        "--log",
        "--log-format",
        "--criu",
        "--rootless",
        "--bundle",
        "-b",
        "--pid-file",
        "--console-socket",
        "--process",
        "-p",
        "--format",
        "-f",
        "--preserve-fds",
        "--cwd",
        "--env",
        "-e",
        "--user",
        "-u",
        "--cap",
        "-c",
        "--process-label",
        "--apparmor",
        "--signal",
        "-s",
        "--cgroup-manager", // crun
    ];
    let mut skip_value = false;
    argv.iter().skip(1).filter_map(move |a| {
        if std::mem::take(&mut skip_value) {
            return None;
        }
        if a.starts_with('-') {
            skip_value = WITH_VALUE.contains(&a.as_str()) && !a.contains('=');
            return None;
        }
        Some(a.as_str())
    })
}

/// The container a shim serves: containerd's `-id ID`, conmon's `-c ID`.
pub fn shim_container(filename: &str, argv: &[String]) -> Option<String> {
    let flags: &[&str] = if is_conmon(filename) {
        &["-c", "--cid"]
    } else {
        &["-id", "--id"]
    };
    argv.iter()
        .position(|a| flags.contains(&a.as_str()))
        .and_then(|i| argv.get(i + 1))
        .cloned()
}

/// `podman [flags] container cleanup [--rm] ID`: the container is the last word.
pub fn is_podman_cleanup(argv: &[String]) -> bool {
    argv.windows(2)
        .any(|w| w[0] == "container" && w[1] == "cleanup")
}

/// The container `podman container cleanup` names: its last word. `None`
/// for the helpers it runs (netavark), which keep its container.
pub fn cleanup_container(argv: &[String]) -> Option<String> {
    if !is_podman_cleanup(argv) {
        return None;
    }
    argv.last().filter(|a| !a.starts_with('-')).cloned()
}

/// A container id in a cgroup path, as the engines and their systemd
/// drivers name them: Docker's `/docker/<64 hex>` and
/// `docker-<64 hex>.scope`, podman's `libpod-<64 hex>` and
/// `libpod-<64 hex>.scope` (not `libpod-conmon-…`: conmon's own),
/// containerd's CRI `cri-containerd-<64 hex>.scope`.
pub fn container_id_in_path(path: &str) -> Option<&str> {
    path.split('/').find_map(|part| {
        let part = part.strip_suffix(".scope").unwrap_or(part);
        let part = ["docker-", "libpod-", "cri-containerd-"]
            .iter()
            .find_map(|prefix| part.strip_prefix(prefix))
            .unwrap_or(part);
        is_hex_id(part).then_some(part)
    })
}

/// A 64-hex id, as Docker and podman make them.
pub fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_is_the_json_name() {
        for r in Role::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.key());
        }
        for p in crate::timeline::Phase::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.key());
        }
    }

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn runc_command_lines_name_verb_and_container() {
        let create = v(&[
            "runc",
            "--root",
            "/var/run/docker/runtime-runc/moby",
            "--log",
            "/x/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/init.pid",
            "abc",
        ]);
        assert_eq!(
            runtime_command(&create),
            Some(("create".into(), "abc".into()))
        );
        let kill = v(&["runc", "--root", "/r", "kill", "--all", "abc", "9"]);
        assert_eq!(runtime_command(&kill), Some(("kill".into(), "abc".into())));
        let delete = v(&["runc", "delete", "--force", "abc"]);
        assert_eq!(
            runtime_command(&delete),
            Some(("delete".into(), "abc".into()))
        );
        assert_eq!(runtime_command(&v(&["runc", "init"])), None);
        assert_eq!(runtime_command(&v(&["runc", "--version"])), None);
    }

    #[test]
    fn shims_are_told_apart() {
        let start = v(&[
            "/usr/bin/containerd-shim-runc-v2",
            "-namespace",
            "moby",
            "-address",
            "/a",
            "-publish-binary",
            "/usr/bin/containerd",
            "-id",
            "abc",
            "start",
        ]);
        let serve = v(&[
            "/usr/bin/containerd-shim-runc-v2",
            "-namespace",
            "moby",
            "-id",
            "abc",
            "-address",
            "/a",
        ]);
        assert_eq!(
            role_of_exec("/usr/bin/containerd-shim-runc-v2", &start),
            Some(Role::ShimStart)
        );
        assert_eq!(
            role_of_exec("/usr/bin/containerd-shim-runc-v2", &serve),
            Some(Role::Shim)
        );
        assert_eq!(
            shim_container("/usr/bin/containerd-shim-runc-v2", &start).as_deref(),
            Some("abc")
        );
    }

    #[test]
    fn a_runtime_executing_a_sealed_copy_of_its_own_command_stays_that_command() {
        let youki = v(&[
            "youki",
            "--root",
            "/run/youki",
            "run",
            "--bundle",
            "b",
            "c1",
        ]);
        assert_eq!(role_of_exec("/proc/self/fd/5", &youki), Some(Role::Runtime));
        assert_eq!(
            runtime_command(&youki),
            Some(("run".to_string(), "c1".to_string()))
        );
        // `init` is the re-exec that builds the container, not a command.
        assert_eq!(role_of_exec("/proc/self/fd/5", &v(&["runc", "init"])), None);
        // Any other program executed from an fd is not a runtime.
        assert_eq!(
            role_of_exec("/proc/self/fd/5", &v(&["sh", "-c", "x"])),
            None
        );
    }

    #[test]
    fn each_engines_client_and_shim_are_known() {
        for (argv, wants) in [
            (&["docker", "run", "--rm", "img", "true"][..], true),
            (&["docker", "-H", "unix:///x", "run", "img"], true),
            (&["docker", "ps"], false),
            (&["podman", "--runtime", "runc", "run", "--rm", "img"], true),
            (&["podman", "--root", "/r", "start", "x"], true),
            (
                &["ctr", "-a", "/s.sock", "-n", "k8s.io", "run", "img", "c1"],
                true,
            ),
            (&["ctr", "-n", "k8s.io", "task", "start", "c1"], true),
            (&["ctr", "-n", "k8s.io", "images", "import", "x.tar"], false),
            (&["nerdctl", "run", "img"], true),
        ] {
            assert_eq!(client_wants_container(&v(argv)), wants, "{argv:?}");
            assert_eq!(role_of_exec(argv[0], &v(argv)), Some(Role::Client));
        }
        let conmon = v(&[
            "/usr/bin/conmon",
            "--api-version",
            "1",
            "-c",
            "abc",
            "-u",
            "abc",
        ]);
        assert_eq!(
            role_of_exec("/usr/bin/conmon", &conmon),
            Some(Role::ShimStart)
        );
        assert_eq!(
            shim_container("/usr/bin/conmon", &conmon).as_deref(),
            Some("abc")
        );
        // podman asking conmon its version: a helper, with its asker's part.
        assert_eq!(
            role_of_exec("/usr/bin/conmon", &v(&["conmon", "--version"])),
            None
        );
        let cleanup = v(&[
            "/usr/bin/podman",
            "--root",
            "/r",
            "container",
            "cleanup",
            "--rm",
            "abc",
        ]);
        assert_eq!(
            role_of_exec("/usr/bin/podman", &cleanup),
            Some(Role::EngineCleanup)
        );
        assert_eq!(cleanup_container(&cleanup).as_deref(), Some("abc"));
        assert!(is_init_stage("youki:[1:INTER]") && is_init_stage("youki:[2:INIT]"));
        assert!(!is_init_stage("youki") && !is_init_stage("sh"));
        assert_eq!(Role::named("docker CLI"), Some(Role::Client));
        assert_eq!(Role::named("engine cleanup"), Some(Role::EngineCleanup));
    }

    #[test]
    fn a_runtime_asked_about_itself_is_part_of_no_container() {
        for argv in [
            &["runc", "--version"][..],
            &["crun", "features"],
            &["inspector-runtime", "spec"],
            &["youki", "--root", "/r", "list"],
        ] {
            assert_eq!(
                role_of_exec(argv[0], &v(argv)),
                Some(Role::Other),
                "{argv:?}"
            );
        }
        assert_eq!(
            role_of_exec("runc", &v(&["runc", "--root", "/r", "state", "x"])),
            Some(Role::Runtime)
        );
    }

    #[test]
    fn runtime_reexec_is_recognised() {
        assert!(is_runtime_reexec("/proc/self/exe", &v(&["runc", "init"])));
        assert!(is_runtime_reexec("/dev/fd/6", &v(&["runc", "init"])));
        assert!(!is_runtime_reexec("/proc/self/exe", &v(&["set-ipv6", "x"])));
        assert_eq!(
            role_of_exec("/usr/sbin/runc", &v(&["runc", "create", "x"])),
            Some(Role::Runtime)
        );
    }

    #[test]
    fn container_ids_in_cgroup_paths() {
        let id = "f260ba8622e395b1d8861491d645b0d5c4fea396dcc332c1eea2755a7495be7c";
        assert_eq!(container_id_in_path(&format!("/docker/{id}")), Some(id));
        assert_eq!(
            container_id_in_path(&format!("/system.slice/docker-{id}.scope")),
            Some(id)
        );
        assert_eq!(
            container_id_in_path(&format!("/docker/{id}/memory.max")),
            Some(id)
        );
        assert_eq!(container_id_in_path("/docker"), None);
        assert_eq!(
            container_id_in_path(&format!("/libpod_parent/libpod-{id}")),
            Some(id)
        );
        assert_eq!(
            container_id_in_path(&format!("/machine.slice/libpod-{id}.scope/container")),
            Some(id)
        );
        assert_eq!(
            container_id_in_path(&format!("/machine.slice/libpod-conmon-{id}.scope")),
            None,
            "conmon's own cgroup"
        );
    }
}
