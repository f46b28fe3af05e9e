//! Every engine with each runtime that runs under it on this machine kind:
//! containers started at once, traced, and each entrypoint found in a
//! timeline of its own, made by that engine and runtime, with the engine's
//! and the runtime's whole chain; nothing unattributed, nothing lost.
//!
//! Engines: Docker, podman (conmon), containerd without Docker (`ctr`), and
//! none (the runtime run directly). Runtimes: runc, inspector-runtime, youki
//! (not run directly: `youki run` 0.7 now and then waits forever for a child
//! that already exited, which would hang the suite; the shims' create/start
//! do not);
//! crun under podman and directly, in a pure cgroup2 mount namespace with
//! cgroups disabled (it refuses this host's hybrid layout). `inspector run`
//! (engine `inspector`) has tests/tests/run.rs.

use std::{collections::HashMap, process::Command};

use inspector::timeline::{ContainerTimeline, Engine, Role};
use tests::{
    Need, TempDir, Tracer,
    engines::{self, Runtime},
    probe_test,
    runtime::{Bundle, unique_id},
    timelines_of,
};

/// Containers started at once per test.
const AT_ONCE: usize = 4;

/// The roles each container of `engine` made by `runtime` shows, in its
/// chain or its steps (a runtime's init that becomes the entrypoint is a
/// link of the entrypoint's, its steps before the exec the init's).
fn expected_roles(engine: Engine, runtime: Runtime) -> Vec<Role> {
    let mut roles = match engine {
        Engine::Docker | Engine::Containerd => vec![Role::Client, Role::ShimStart, Role::Shim],
        Engine::Podman => vec![
            Role::Client,
            Role::ShimStart,
            Role::Shim,
            Role::EngineCleanup,
        ],
        _ => vec![],
    };
    roles.extend([Role::Runtime, Role::RuntimeInit, Role::Entrypoint]);
    if runtime == Runtime::Runc {
        roles.push(Role::RuntimeReexec);
    }
    roles
}

/// The entrypoints' scripts, each with the code it exits with: a word of
/// its own tells each container from the others.
fn scripts() -> Vec<(String, i32)> {
    let tag = unique_id("engines");
    (0..AT_ONCE)
        .map(|k| (format!(": {tag}-{k}; exit {}", 40 + k), 40 + k as i32))
        .collect()
}

/// Traces `AT_ONCE` containers started at once by `start(k, args)`, whose
/// entrypoint is `sh -c SCRIPT` (`scripts[k]`), and checks each one's timeline.
fn containers_at_once(
    engine: Engine,
    runtime: Runtime,
    scripts: &[(String, i32)],
    start: impl Fn(usize, &[&str]) -> Command + Sync,
) {
    let tracer = Tracer::start(&[]);
    std::thread::scope(|s| {
        let runs: Vec<_> = scripts
            .iter()
            .enumerate()
            .map(|(k, (script, _))| {
                let start = &start;
                s.spawn(move || start(k, &["sh", "-c", script]).output().unwrap())
            })
            .collect();
        for (run, (script, code)) in runs.into_iter().zip(scripts) {
            let out = run.join().unwrap();
            assert_eq!(
                out.status.code(),
                Some(*code),
                "{script}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    });
    // Teardown (podman's cleanup, containerd's shim delete) goes on after
    // the clients exit.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let recording = tracer.stop_recording();
    assert!(recording.stderr.contains(" 0 lost"), "{}", recording.stderr);
    let (timelines, stderr) = timelines_of(&recording.path);
    assert!(
        stderr.contains(" 0 container events unattributed"),
        "{stderr}"
    );
    let by_script: HashMap<&str, &ContainerTimeline> = timelines
        .iter()
        .filter_map(|t| {
            let entry = t.chain.iter().find(|l| l.role == Role::Entrypoint)?;
            let script = entry.argv.get(2)?;
            scripts
                .iter()
                .find(|(s, _)| s == script)
                .map(|(s, _)| (s.as_str(), t))
        })
        .collect();
    let what = format!("{} with {}", engine.name(), runtime.name());
    for (script, code) in scripts {
        let t = by_script
            .get(script.as_str())
            .unwrap_or_else(|| panic!("{what}: no timeline has the entrypoint `{script}`"));
        let id = &t.id;
        assert_eq!(t.engine, Some(engine), "{what}: {id}");
        assert_eq!(t.runtime.as_deref(), Some(runtime.name()), "{what}: {id}");
        assert!(t.complete, "{what}: {id} incomplete");
        assert_eq!(t.exit_code, Some(*code), "{what}: {id}");
        let entrypoints: Vec<_> = t
            .chain
            .iter()
            .filter(|l| l.role == Role::Entrypoint)
            .collect();
        assert_eq!(entrypoints.len(), 1, "{what}: {id}: {entrypoints:#?}");
        for role in expected_roles(engine, runtime) {
            assert!(
                t.chain.iter().any(|l| l.role == role) || t.steps.iter().any(|s| s.role == role),
                "{what}: {id} has no {}: {:#?}",
                role.name(),
                t.chain
            );
        }
        // The client is this container's own: it typed its script.
        for client in t.chain.iter().filter(|l| l.role == Role::Client) {
            assert!(
                client.argv.iter().any(|a| a == script),
                "{what}: {id}'s client is another's: {:?}",
                client.argv
            );
        }
        // No process of another of these containers in its chain.
        for link in &t.chain {
            for (other, _) in scripts.iter().filter(|(s, _)| s != script) {
                assert!(
                    !link.argv.iter().any(|a| a == other),
                    "{what}: {id} holds {:?}",
                    link.argv
                );
            }
        }
    }
}

fn docker(runtime: Runtime) {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    if !runtime.ready() {
        return;
    }
    containers_at_once(Engine::Docker, runtime, &scripts(), |_, args| {
        engines::docker_run(runtime, args)
    });
}

// Each takes the probe lock before it looks for its prerequisites: the
// commands that look (`youki --version`) must not land in another test's trace.

fn podman(runtime: Runtime) {
    let Some(_lock) = probe_test(&[Need::Trace, Need::UtilLinux]) else {
        return;
    };
    if !engines::podman_ready() || !runtime.ready() {
        return;
    }
    containers_at_once(Engine::Podman, runtime, &scripts(), |_, args| {
        engines::podman_run(runtime, args)
    });
}

fn containerd(runtime: Runtime) {
    let Some(_lock) = probe_test(&[Need::Docker]) else {
        return;
    };
    if !engines::ctr_ready() || !runtime.ready() {
        return;
    }
    let tag = unique_id("ctr");
    containers_at_once(Engine::Containerd, runtime, &scripts(), |k, args| {
        engines::ctr_run(runtime, &format!("{tag}-{k}"), args)
    });
}

fn direct(runtime: Runtime) {
    let Some(_lock) = probe_test(&[Need::Trace, Need::Runtime, Need::UtilLinux]) else {
        return;
    };
    if !runtime.ready() {
        return;
    }
    let root = TempDir::new("engines-root");
    let scripts = scripts();
    // Made before tracing: `inspector-runtime spec` writes their config.
    let bundles: Vec<Bundle> = scripts
        .iter()
        .map(|(script, _)| {
            Bundle::new(
                &format!("engines-{}", runtime.name()),
                &["sh", "-c", script],
            )
        })
        .collect();
    containers_at_once(Engine::Direct, runtime, &scripts, |k, _| {
        engines::direct_run(runtime, root.path(), &bundles[k])
    });
}
#[test]
fn docker_with_runc() {
    docker(Runtime::Runc);
}

#[test]
fn docker_with_inspector_runtime() {
    docker(Runtime::Ours);
}

#[test]
fn docker_with_youki() {
    docker(Runtime::Youki);
}

#[test]
fn podman_with_runc() {
    podman(Runtime::Runc);
}

#[test]
fn podman_with_inspector_runtime() {
    podman(Runtime::Ours);
}

#[test]
fn podman_with_youki() {
    podman(Runtime::Youki);
}

#[test]
fn podman_with_crun_in_pure_cgroup2() {
    podman(Runtime::Crun);
}

#[test]
fn containerd_with_runc() {
    containerd(Runtime::Runc);
}

#[test]
fn containerd_with_inspector_runtime() {
    containerd(Runtime::Ours);
}

#[test]
fn containerd_with_youki() {
    containerd(Runtime::Youki);
}

#[test]
fn runc_alone() {
    direct(Runtime::Runc);
}

#[test]
fn inspector_runtime_alone() {
    direct(Runtime::Ours);
}

#[test]
fn crun_alone_in_pure_cgroup2() {
    direct(Runtime::Crun);
}

/// A start that fails under podman is explained as under Docker: the
/// failing process, and the runtime's own words from its log (conmon names
/// it `oci-log`) and podman's.
#[test]
fn podman_says_why_a_start_failed_in_its_runtime_s_own_words() {
    let Some(_lock) = probe_test(&[Need::Trace]) else {
        return;
    };
    if !engines::podman_ready() {
        return;
    }
    let tracer = Tracer::start(&[]);
    let out = engines::podman_run(Runtime::Runc, &["/nonexistent"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{out:?}");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let recording = tracer.stop_recording();
    let (timelines, stderr) = timelines_of(&recording.path);
    let failed: Vec<_> = timelines.iter().filter(|t| t.failure.is_some()).collect();
    assert_eq!(failed.len(), 1, "{stderr}: {timelines:#?}");
    let t = failed[0];
    assert_eq!(t.engine, Some(Engine::Podman));
    let f = t.failure.as_ref().unwrap();
    assert_eq!(f.role, Role::RuntimeInit, "{f:#?}");
    let said = |role: Role, stream: &str| {
        f.messages
            .iter()
            .any(|m| m.role == role && m.stream == stream && m.text.contains("/nonexistent"))
    };
    assert!(said(Role::Runtime, "runtime_log"), "{f:#?}");
    assert!(said(Role::Client, "stderr"), "{f:#?}");
    assert!(
        f.summary.contains("no such file or directory"),
        "{}",
        f.summary
    );
}
