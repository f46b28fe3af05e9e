//! Which engine and which runtime made a container, told from the processes
//! of its chain: each engine has a client or shim of its own (Docker's
//! `docker` and containerd's shim in the `moby` namespace, podman's
//! `podman` and `conmon`, containerd's `ctr`/`nerdctl` and shim in any other
//! namespace), and the runtime is the binary its `create` or `run` executed.
//! Views show both beside the container's id; `diff` names them when two
//! goldens of different engines are compared.

use serde::{Deserialize, Serialize};

use super::{
    ChainLink, Role,
    role::{self, basename},
};

/// The engine that made a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    /// dockerd, through containerd and its shim.
    Docker,
    /// podman, through conmon.
    Podman,
    /// containerd without Docker: `ctr`, `nerdctl`, Kubernetes' CRI.
    Containerd,
    /// `inspector run`, with the bundled runtime.
    Inspector,
    /// None: a runtime run directly (`runc run`, `youki run`), by a user or
    /// a script.
    #[serde(rename = "none")]
    Direct,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Docker => "docker",
            Engine::Podman => "podman",
            Engine::Containerd => "containerd",
            Engine::Inspector => "inspector",
            Engine::Direct => "none",
        }
    }

    /// From [`Engine::name`]: what a golden's header says.
    pub fn named(name: &str) -> Option<Engine> {
        [
            Engine::Docker,
            Engine::Podman,
            Engine::Containerd,
            Engine::Inspector,
            Engine::Direct,
        ]
        .into_iter()
        .find(|e| e.name() == name)
    }
}

/// `inspector run` names its containers `inspector-<pid>-<ms>`
/// (`launch/runtime.rs`).
const INSPECTOR_RUN_PREFIX: &str = "inspector-";

/// What a process executed: its file, or, for a sealed copy executed
/// through an fd, the name it gave itself.
fn program(link: &ChainLink) -> &str {
    let exe = link.exe.as_deref().map(basename).unwrap_or("");
    if exe.is_empty() || exe.chars().all(|c| c.is_ascii_digit()) || exe == "exe" {
        link.argv.first().map(|a| basename(a)).unwrap_or(exe)
    } else {
        exe
    }
}

/// The engine of a container with id `id` and processes `chain`; `None`
/// when nothing of an engine or runtime was seen (a container known only
/// from a daemon's paths).
pub fn engine_of(id: &str, chain: &[ChainLink]) -> Option<Engine> {
    // The shim says most: a client may not be known (Docker's, when several
    // were waiting) or not exist (Kubernetes).
    for link in chain {
        if !matches!(link.role, Role::Shim | Role::ShimStart) {
            continue;
        }
        if role::is_conmon(program(link)) {
            return Some(Engine::Podman);
        }
        let namespace = link
            .argv
            .iter()
            .position(|a| a == "-namespace" || a == "--namespace")
            .and_then(|i| link.argv.get(i + 1));
        return Some(match namespace.map(String::as_str) {
            Some("moby") => Engine::Docker,
            _ => Engine::Containerd,
        });
    }
    for link in chain {
        if !matches!(link.role, Role::Client | Role::EngineCleanup) {
            continue;
        }
        match program(link) {
            "docker" => return Some(Engine::Docker),
            "podman" => return Some(Engine::Podman),
            "ctr" | "nerdctl" => return Some(Engine::Containerd),
            _ => {}
        }
    }
    let runtime = chain.iter().any(|l| {
        matches!(
            l.role,
            Role::Runtime | Role::RuntimeReexec | Role::RuntimeInit
        )
    });
    match id.strip_prefix(INSPECTOR_RUN_PREFIX) {
        Some(rest)
            if runtime
                && rest
                    .split('-')
                    .all(|n| n.bytes().all(|b| b.is_ascii_digit())) =>
        {
            Some(Engine::Inspector)
        }
        _ if runtime => Some(Engine::Direct),
        _ => None,
    }
}

/// The OCI runtime that made the container: the program of its first
/// runtime invocation (`runc`, `crun`, `youki`, `inspector-runtime`, or
/// whatever a shim was told to run).
pub fn runtime_of(chain: &[ChainLink]) -> Option<String> {
    chain
        .iter()
        .find(|l| l.role == Role::Runtime && !l.argv.is_empty())
        .map(|l| program(l).to_string())
}

/// The image a container's client named: `docker|podman|nerdctl run|create
/// [OPTIONS] IMAGE`, `ctr run [OPTIONS] IMAGE ID`. Options are skipped by
/// their form (`--opt=value`, a boolean flag, or a flag and its value), so
/// an option of a client this does not know may leave it `None`, never
/// another word of the command line.
pub fn image_of(chain: &[ChainLink]) -> Option<String> {
    let client = chain.iter().find(|l| l.role == Role::Client)?;
    let mut args = client.argv.iter().skip(1).map(String::as_str);
    // The verb, after the client's own options (`docker --log-level x run`).
    let verb = args.by_ref().find(|a| !a.starts_with('-'))?;
    let verb = match verb {
        "container" => args.next()?,
        v => v,
    };
    if !matches!(verb, "run" | "create") {
        return None;
    }
    while let Some(a) = args.next() {
        if a == "--" {
            return args.next().map(str::to_string);
        }
        if let Some(flag) = a.strip_prefix("--") {
            if !flag.contains('=') && !BOOLEAN_LONG.contains(&flag) {
                args.next()?;
            }
            continue;
        }
        if let Some(flags) = a.strip_prefix('-') {
            // `-it`, `-d`: booleans; `-e X`, `-v X`, `-eX`: one value.
            if !flags.chars().all(|c| BOOLEAN_SHORT.contains(c)) && flags.len() == 1 {
                args.next()?;
            }
            continue;
        }
        return Some(a.to_string());
    }
    None
}

/// The clients' flags that take no value (docker, podman, nerdctl, ctr).
const BOOLEAN_LONG: &[&str] = &[
    "rm",
    "detach",
    "interactive",
    "tty",
    "privileged",
    "init",
    "publish-all",
    "read-only",
    "no-healthcheck",
    "oom-kill-disable",
    "quiet",
    "sig-proxy",
    "help",
    "null-io",
    "net-host",
    "rootfs",
    "replace",
    "systemd",
    "no-hosts",
    "pull-always",
    "tls-verify",
    "http-dump",
    "privileged-without-host-devices",
    "gpus",
    "cni",
    "snapshotter-label",
];
const BOOLEAN_SHORT: &str = "ditPq";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_is_the_first_word_after_the_options() {
        let image = |argv: &[&str]| image_of(&[link(Role::Client, "/usr/bin/docker", argv)]);
        let img = Some("busybox:latest".to_string());
        assert_eq!(
            image(&["docker", "run", "--rm", "busybox:latest", "true"]),
            img
        );
        assert_eq!(
            image(&[
                "docker",
                "run",
                "-it",
                "-e",
                "A=1",
                "--name",
                "x",
                "busybox:latest",
                "sh"
            ]),
            img
        );
        assert_eq!(
            image(&[
                "podman",
                "container",
                "create",
                "--net=host",
                "busybox:latest"
            ]),
            img
        );
        assert_eq!(image(&["ctr", "run", "--rm", "busybox:latest", "id1"]), img);
        assert_eq!(image(&["docker", "ps"]), None);
        assert_eq!(image(&["docker", "run", "--name"]), None);
    }

    fn link(role: Role, exe: &str, argv: &[&str]) -> ChainLink {
        ChainLink {
            role,
            pid: 1,
            nspid: 1,
            ppid: 0,
            comm: String::new(),
            exe: Some(exe.to_string()),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            start_ns: 0,
            exit_ns: None,
            exit_code: None,
            signal: None,
        }
    }

    #[test]
    fn each_engine_is_told_by_its_shim_or_client() {
        let shim = |ns: &str| {
            link(
                Role::ShimStart,
                "/usr/bin/containerd-shim-runc-v2",
                &[
                    "containerd-shim-runc-v2",
                    "-namespace",
                    ns,
                    "-id",
                    "x",
                    "start",
                ],
            )
        };
        let runc = link(Role::Runtime, "/usr/sbin/runc", &["runc", "create", "x"]);
        assert_eq!(
            engine_of("x", &[shim("moby"), runc.clone()]),
            Some(Engine::Docker)
        );
        assert_eq!(
            engine_of("x", &[shim("k8s.io"), runc.clone()]),
            Some(Engine::Containerd)
        );
        let conmon = link(
            Role::ShimStart,
            "/usr/bin/conmon",
            &["/usr/bin/conmon", "-c", "x"],
        );
        assert_eq!(engine_of("x", &[conmon]), Some(Engine::Podman));
        let ctr = link(Role::Client, "/usr/bin/ctr", &["ctr", "run", "i", "x"]);
        assert_eq!(engine_of("x", &[ctr]), Some(Engine::Containerd));
        assert_eq!(
            engine_of("inspector-41-1700000000000", std::slice::from_ref(&runc)),
            Some(Engine::Inspector)
        );
        assert_eq!(
            engine_of("inspector-x", std::slice::from_ref(&runc)),
            Some(Engine::Direct)
        );
        assert_eq!(engine_of("c1", &[runc]), Some(Engine::Direct));
        assert_eq!(engine_of("c1", &[]), None);
    }

    #[test]
    fn the_runtime_is_its_program_even_through_a_sealed_copy() {
        let youki = link(
            Role::Runtime,
            "/proc/self/fd/5",
            &["youki", "run", "--bundle", "b", "c1"],
        );
        assert_eq!(runtime_of(&[youki]).as_deref(), Some("youki"));
        let ours = link(
            Role::Runtime,
            "/x/target/release/inspector-runtime",
            &["inspector-runtime", "create", "c1"],
        );
        assert_eq!(runtime_of(&[ours]).as_deref(), Some("inspector-runtime"));
        for name in ["docker", "podman", "containerd", "inspector", "none"] {
            assert_eq!(Engine::named(name).map(Engine::name), Some(name));
        }
    }
}
