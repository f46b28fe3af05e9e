//! Who a process is in the container chain, and which container its command
//! line names.

use serde::{Deserialize, Serialize};

/// A process's part in starting or stopping a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The `docker` command a user typed.
    DockerCli,
    Dockerd,
    Containerd,
    /// `containerd-shim-runc-v2 ... start`: starts the real shim and exits.
    ShimStart,
    /// The long-lived `containerd-shim-runc-v2`, parent of the container.
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
    Other,
}

impl Role {
    /// Every role, in the order of the chain.
    pub const ALL: [Role; 12] = [
        Role::DockerCli,
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
        Role::Other,
    ];

    /// The roles every `docker run` has in its chain, from the CLI the user
    /// typed to the entrypoint (Docker's networking is a hook).
    pub const DOCKER_RUN: [Role; 8] = [
        Role::DockerCli,
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
            Role::DockerCli => "docker CLI",
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
            Role::Other => "other",
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
        )
    }
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// OCI runtimes inspector knows by their binary's name.
pub fn is_runtime_binary(path: &str) -> bool {
    matches!(
        basename(path),
        "runc" | "crun" | "youki" | "inspector-runtime" | "runsc"
    )
}

pub fn is_shim_binary(path: &str) -> bool {
    basename(path).starts_with("containerd-shim")
}

/// The role a process has from what it exec'd, before its parent is considered.
pub fn role_of_exec(filename: &str, argv: &[String]) -> Option<Role> {
    let name = basename(filename);
    let argv0 = argv.first().map(|a| basename(a)).unwrap_or("");
    if is_shim_binary(filename) {
        // `start` is the last argument of the short-lived invocation.
        return Some(if argv.last().is_some_and(|a| a == "start") {
            Role::ShimStart
        } else {
            Role::Shim
        });
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
        return Some(Role::Runtime);
    }
    match name {
        "docker" => Some(Role::DockerCli),
        "dockerd" => Some(Role::Dockerd),
        "containerd" => Some(Role::Containerd),
        _ => None,
    }
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
        "docker" => Role::DockerCli,
        "dockerd" => Role::Dockerd,
        "containerd" => Role::Containerd,
        "containerd-shim" => Role::Shim,
        "runc" | "crun" | "youki" | "inspector-runti" => Role::Runtime,
        c if c.starts_with("runc:[") => Role::RuntimeInit,
        _ => Role::Other,
    }
}

/// What a runtime invocation does and to which container:
/// `runc --root R create --bundle B --pid-file F ID` → ("create", ID).
pub fn runtime_command(argv: &[String]) -> Option<(String, String)> {
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
    ];
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
    let mut args = argv.iter().skip(1);
    let mut verb: Option<&str> = None;
    while let Some(a) = args.next() {
        if a.starts_with('-') {
            if WITH_VALUE.contains(&a.as_str()) && !a.contains('=') {
                args.next();
            }
            continue;
        }
        match verb {
            None if VERBS.contains(&a.as_str()) => verb = Some(a),
            None => return None,
            Some(v) => return Some((v.to_string(), a.clone())),
        }
    }
    None
}

/// The container a shim serves: `-id ID`.
pub fn shim_container(argv: &[String]) -> Option<String> {
    argv.iter()
        .position(|a| a == "-id" || a == "--id")
        .and_then(|i| argv.get(i + 1))
        .cloned()
}

/// A container id in a cgroup path, as Docker and its systemd driver name
/// them: `/docker/<64 hex>`, `.../docker-<64 hex>.scope`.
pub fn docker_id_in_path(path: &str) -> Option<&str> {
    path.split('/').find_map(|part| {
        let part = part
            .strip_prefix("docker-")
            .and_then(|p| p.strip_suffix(".scope"))
            .unwrap_or(part);
        (part.len() == 64 && part.bytes().all(|b| b.is_ascii_hexdigit())).then_some(part)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(shim_container(&start).as_deref(), Some("abc"));
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
    fn docker_ids_in_cgroup_paths() {
        let id = "f260ba8622e395b1d8861491d645b0d5c4fea396dcc332c1eea2755a7495be7c";
        assert_eq!(docker_id_in_path(&format!("/docker/{id}")), Some(id));
        assert_eq!(
            docker_id_in_path(&format!("/system.slice/docker-{id}.scope")),
            Some(id)
        );
        assert_eq!(
            docker_id_in_path(&format!("/docker/{id}/memory.max")),
            Some(id)
        );
        assert_eq!(docker_id_in_path("/docker"), None);
    }
}
