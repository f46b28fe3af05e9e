//! inspector for machines that do not build it: the DaemonSet and the
//! systemd unit in deploy/, and what `cargo xtask dist` makes (static
//! binaries, the .deb, the agent's image). `cargo xtask test` runs dist
//! first; the VM test (kernel_vm.rs) runs the static binaries on a root
//! with no shared library.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::Value;
use tests::{DOCKER, dist_dir, in_ci, inspector_bin, require, workspace};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// What `cargo xtask dist --image` names the image (xtask/src/dist.rs).
fn image() -> String {
    format!("inspector/agent:{VERSION}")
}

// ---- the DaemonSet -------------------------------------------------------

/// The manifest's documents, as JSON values.
fn manifest() -> Vec<Value> {
    let path = workspace().join("deploy/kubernetes/inspector-agent.yaml");
    let text = std::fs::read_to_string(&path).expect("the manifest");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| {
            let yaml = <serde_yaml_ng::Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            serde_json::to_value(yaml).expect("YAML as JSON")
        })
        .collect()
}

fn daemonset() -> Value {
    manifest()
        .into_iter()
        .find(|d| d["kind"] == "DaemonSet")
        .expect("a DaemonSet in the manifest")
}

fn agent_container(ds: &Value) -> Value {
    let containers = ds["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 1, "one container: {containers:?}");
    containers[0].clone()
}

/// The value that follows `flag` in `args`.
fn arg_after<'a>(args: &'a [Value], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1)?.as_str()
}

#[test]
fn the_manifest_is_an_apps_v1_daemonset_whose_selector_matches_its_pods() {
    let docs = manifest();
    for doc in &docs {
        assert!(
            doc["metadata"].get("namespace").is_none(),
            "the manifest leaves the namespace to `kubectl apply -n`: {doc}"
        );
    }
    let ds = daemonset();
    assert_eq!(ds["apiVersion"], "apps/v1");
    let selector = ds["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels");
    let labels = &ds["spec"]["template"]["metadata"]["labels"];
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(&labels[key], value, "the pods' label {key}");
    }
    if let Some(service) = docs.iter().find(|d| d["kind"] == "Service") {
        assert_eq!(service["apiVersion"], "v1");
        for (key, value) in service["spec"]["selector"].as_object().expect("selector") {
            assert_eq!(&labels[key], value, "the service selects the pods by {key}");
        }
    }
}

#[test]
fn the_agent_runs_privileged_in_the_hosts_pid_namespace_on_every_node() {
    let ds = daemonset();
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["terminationGracePeriodSeconds"], 5);
    assert!(
        pod["tolerations"]
            .as_array()
            .expect("tolerations")
            .iter()
            .any(|t| t["operator"] == "Exists" && t.get("key").is_none()),
        "a toleration of every taint"
    );
    let agent = agent_container(&ds);
    assert_eq!(agent["securityContext"]["privileged"], true);
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                agent["resources"][kind][resource].is_string(),
                "resources.{kind}.{resource}"
            );
        }
    }
    let env = agent["env"].as_array().expect("env");
    let host_ip = env
        .iter()
        .find(|e| e["name"] == "HOST_IP")
        .expect("HOST_IP in env");
    assert_eq!(
        host_ip["valueFrom"]["fieldRef"]["fieldPath"],
        "status.hostIP"
    );
    let args = agent["args"].as_array().expect("args");
    let otlp = arg_after(args, "--otlp-endpoint").expect("--otlp-endpoint");
    assert!(otlp.contains("$(HOST_IP)"), "{otlp}");
}

#[test]
fn every_mount_names_a_volume_and_the_hosts_kernel_paths_are_mounted_as_the_probe_needs() {
    let ds = daemonset();
    let volumes = ds["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes");
    let agent = agent_container(&ds);
    let mounts = agent["volumeMounts"].as_array().expect("volumeMounts");
    let mut host_paths = Vec::new();
    for mount in mounts {
        let volume = volumes
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap_or_else(|| panic!("no volume named by {mount}"));
        let host = volume["hostPath"]["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{volume} is not a hostPath"));
        // Each host path appears where the agent looks for it.
        assert_eq!(mount["mountPath"], host, "{mount}");
        host_paths.push((host.to_string(), mount["readOnly"] == true));
    }
    // (path, read-only): the probe pins in bpffs and locks in /run/inspector;
    // it only reads the rest.
    let wanted = [
        ("/sys/kernel/btf", true),
        ("/sys/kernel/tracing", true),
        ("/sys/fs/bpf", false),
        ("/run/inspector", false),
        ("/sys/fs/cgroup", true),
        ("/run/runc", true),
        ("/run/docker/runtime-runc", true),
        ("/run/containerd/runc", true),
        ("/run/youki", true),
    ];
    for (path, read_only) in wanted {
        let found = host_paths.iter().find(|(p, _)| p == path);
        assert_eq!(
            found.map(|(_, ro)| *ro),
            Some(read_only),
            "{path} mounted {}: {host_paths:?}",
            if read_only { "read-only" } else { "read-write" }
        );
    }
    // The engines' sockets are not the agent's business.
    assert!(
        !host_paths.iter().any(|(p, _)| p.ends_with(".sock")),
        "{host_paths:?}"
    );
}

#[test]
fn the_metrics_port_is_the_one_the_agent_serves_and_prometheus_scrapes() {
    let ds = daemonset();
    let agent = agent_container(&ds);
    let args = agent["args"].as_array().expect("args");
    let listen = arg_after(args, "--metrics").expect("--metrics ADDR:PORT");
    let port: u64 = listen
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("--metrics {listen}"));
    let ports = agent["ports"].as_array().expect("ports");
    let metrics = ports
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a port named metrics");
    assert_eq!(metrics["containerPort"], port);
    let annotations = &ds["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], port.to_string());
    let probe = &agent["readinessProbe"]["httpGet"];
    assert_eq!(probe["path"], "/metrics");
    assert!(
        probe["port"] == "metrics" || probe["port"] == port,
        "{probe}"
    );
}

#[test]
fn the_daemonset_runs_the_image_cargo_xtask_dist_makes() {
    let agent = agent_container(&daemonset());
    assert_eq!(agent["image"], image().as_str());
    let containerfile =
        std::fs::read_to_string(workspace().join("deploy/Containerfile")).expect("Containerfile");
    assert!(
        containerfile.contains(r#"ENTRYPOINT ["/usr/bin/inspector", "agent"]"#),
        "{containerfile}"
    );
}

// ---- the agent's flags, in the unit and the manifest -----------------------

/// `inspector agent --help` of the built inspector.
fn agent_help() -> Option<String> {
    if !require(
        inspector_bin().exists(),
        "a built inspector (cargo xtask build)",
    ) {
        return None;
    }
    let out = Command::new(inspector_bin())
        .args(["agent", "--help"])
        .output()
        .expect("inspector agent --help");
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn assert_flags_exist<'a>(flags: impl IntoIterator<Item = &'a str>, help: &str, whose: &str) {
    for flag in flags.into_iter().filter(|a| a.starts_with("--")) {
        let flag = flag.split('=').next().unwrap_or(flag);
        assert!(
            help.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']')
                .any(|w| w == flag),
            "{whose} passes {flag}, which `inspector agent --help` does not list:\n{help}"
        );
    }
}

fn unit_text() -> String {
    std::fs::read_to_string(workspace().join("deploy/systemd/inspector-agent.service"))
        .expect("the unit")
}

/// The unit's `Key=value` lines, continuation lines aside (it has none).
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_units_and_the_manifests_agent_flags_are_flags_of_inspector_agent() {
    let Some(help) = agent_help() else { return };
    let unit = unit_text();
    let exec = unit_values(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "{exec:?}");
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    assert_eq!(words[..2], ["/usr/bin/inspector", "agent"], "{exec:?}");
    assert_flags_exist(words.iter().copied(), &help, "the systemd unit");

    let agent = agent_container(&daemonset());
    let args: Vec<&str> = agent["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_flags_exist(args, &help, "the DaemonSet");
}

#[test]
fn the_unit_runs_as_root_with_bpf_capabilities_and_reloads_with_sighup() {
    let unit = unit_text();
    assert_eq!(unit_values(&unit, "Type"), ["simple"]);
    assert_eq!(
        unit_values(&unit, "EnvironmentFile"),
        ["-/etc/default/inspector-agent"]
    );
    assert_eq!(
        unit_values(&unit, "ExecReload"),
        ["/bin/kill -HUP $MAINPID"]
    );
    assert_eq!(unit_values(&unit, "Restart"), ["on-failure"]);
    assert_eq!(unit_values(&unit, "LogsDirectory"), ["inspector"]);
    let bounding = unit_values(&unit, "CapabilityBoundingSet").join(" ");
    for cap in ["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"] {
        assert!(bounding.split_whitespace().any(|c| c == cap), "{bounding}");
    }
    // The probe needs /sys read-write (bpffs) and its tracepoints.
    for key in [
        "ProtectKernelTunables",
        "PrivateDevices",
        "DynamicUser",
        "User",
    ] {
        let values = unit_values(&unit, key);
        assert!(
            values.is_empty() || values == ["no"] || (key == "User" && values == ["root"]),
            "{key}={values:?} would keep the probe from loading"
        );
    }
}

#[test]
fn systemd_analyze_verifies_the_unit_run_with_the_built_inspector() {
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if !require(
        analyze.is_ok_and(|o| o.status.success()),
        "systemd-analyze (systemd)",
    ) || !require(
        inspector_bin().exists(),
        "a built inspector (cargo xtask build)",
    ) {
        return;
    }
    // The installed path does not exist here: verify a copy that runs the
    // built binary instead (systemd checks that ExecStart is executable).
    let dir = tempfile::tempdir().expect("a scratch directory");
    let unit = unit_text().replace(
        "ExecStart=/usr/bin/inspector ",
        &format!("ExecStart={} ", inspector_bin().display()),
    );
    let path = dir.path().join("inspector-agent.service");
    std::fs::write(&path, unit).expect("the copy");
    // --man=no: the man page is installed by the .deb, not on this machine.
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "systemd-analyze verify:\n{said}");
    assert!(
        !said.contains("inspector-agent.service"),
        "systemd-analyze verify warned about the unit:\n{said}"
    );
}

// ---- what `cargo xtask dist` made -----------------------------------------

/// A file of `cargo xtask dist`'s; `None` (skip, or fail in CI) when missing.
fn dist_file(name: &str) -> Option<PathBuf> {
    let path = dist_dir().join(name);
    require(
        path.exists(),
        &format!("{} (cargo xtask dist)", path.display()),
    )
    .then_some(path)
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_static_binaries_have_no_dynamic_loader_and_no_shared_library() {
    for name in ["inspector", "inspector-runtime"] {
        let Some(binary) = dist_file(name) else {
            return;
        };
        let headers = run_ok(Command::new("readelf").args(["-l", "-d"]).arg(&binary));
        assert!(
            headers.contains("Elf file type is EXEC") || headers.contains("Elf file type is DYN"),
            "{name} is not an executable:\n{headers}"
        );
        assert!(
            !headers.contains("INTERP"),
            "{name} names a loader:\n{headers}"
        );
        assert!(
            !headers.contains("(NEEDED)"),
            "{name} needs shared libraries:\n{headers}"
        );
    }
}

/// The commit HEAD names, as build.rs writes it; `None` outside a checkout.
fn head_commit() -> Option<String> {
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(workspace())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn the_version_names_the_commit_and_the_probes_build() {
    let Some(binary) = dist_file("inspector") else {
        return;
    };
    for inspector in [binary, inspector_bin()] {
        if !inspector.exists() {
            continue;
        }
        let line = run_ok(Command::new(&inspector).arg("--version"));
        let commit = head_commit().unwrap_or_else(|| "unknown".into());
        let prefix = format!("inspector {VERSION} (commit {commit}, probe sha256:");
        assert!(
            line.starts_with(&prefix),
            "{} --version: {line:?}, expected {prefix:?}... (rebuild: cargo xtask dist)",
            inspector.display()
        );
        let probe = line.trim_end().strip_prefix(&prefix).unwrap_or_default();
        assert!(
            probe.len() == 13
                && probe.ends_with(')')
                && probe[..12].bytes().all(|b| b.is_ascii_hexdigit()),
            "{line:?}"
        );
    }
    let Some(runtime) = dist_file("inspector-runtime") else {
        return;
    };
    let text = run_ok(Command::new(runtime).arg("--version"));
    let commit = head_commit().unwrap_or_else(|| "unknown".into());
    assert!(
        text.starts_with(&format!(
            "inspector-runtime version {VERSION}\ncommit: {commit}\n"
        )),
        "{text:?}"
    );
}

fn deb() -> Option<PathBuf> {
    dist_file(&format!("inspector_{VERSION}_amd64.deb"))
}

#[test]
fn the_deb_installs_the_binaries_unit_completions_and_man_pages() {
    let Some(deb) = deb() else { return };
    let listing = run_ok(Command::new("dpkg-deb").arg("--contents").arg(&deb));
    // `-rwxr-xr-x root/root  123 2026-01-01 00:00 ./usr/bin/inspector`
    let files: Vec<(&str, &str, &str)> = listing
        .lines()
        .filter_map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            Some((*fields.first()?, *fields.get(1)?, *fields.get(5)?))
        })
        .collect();
    let find = |path: &str| {
        files
            .iter()
            .find(|(_, _, p)| p.strip_prefix('.') == Some(path))
            .copied()
            .unwrap_or_else(|| panic!("{path} is not in the package:\n{listing}"))
    };
    for bin in ["/usr/bin/inspector", "/usr/bin/inspector-runtime"] {
        assert_eq!(find(bin).0, "-rwxr-xr-x", "{bin}");
    }
    for file in [
        "/lib/systemd/system/inspector-agent.service",
        "/etc/default/inspector-agent",
        "/usr/share/bash-completion/completions/inspector",
        "/usr/share/zsh/vendor-completions/_inspector",
        "/usr/share/fish/vendor_completions.d/inspector.fish",
        "/usr/share/man/man1/inspector.1.gz",
        "/usr/share/man/man1/inspector-agent.1.gz",
        "/usr/share/man/man1/inspector-run.1.gz",
    ] {
        assert_eq!(find(file).0, "-rw-r--r--", "{file}");
    }
    for (_, owner, path) in &files {
        assert_eq!(*owner, "root/root", "{path}");
    }
    // Hidden subcommands are for inspector itself: no page.
    assert!(!listing.contains("inspector-keep-probe"), "{listing}");
    // What is installed is what is in the repository.
    let unit = extract(&deb, "./lib/systemd/system/inspector-agent.service");
    assert_eq!(unit, unit_text());
}

/// One file of a package's data, as `dpkg-deb --fsys-tarfile` holds it.
fn extract(deb: &Path, path: &str) -> String {
    let mut tar = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("dpkg-deb --fsys-tarfile");
    let out = Command::new("tar")
        .args(["-xO", path])
        .stdin(tar.stdout.take().expect("piped"))
        .output()
        .expect("tar -xO");
    let packed = tar.wait().expect("dpkg-deb --fsys-tarfile");
    assert!(out.status.success() && packed.success(), "{path}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_debs_control_names_the_package_and_its_conffile() {
    let Some(deb) = deb() else { return };
    let field = |name: &str| {
        run_ok(
            Command::new("dpkg-deb")
                .args(["--field"])
                .arg(&deb)
                .arg(name),
        )
        .trim()
        .to_string()
    };
    assert_eq!(field("Package"), "inspector");
    assert_eq!(field("Version"), VERSION);
    assert_eq!(field("Architecture"), "amd64");
    assert_eq!(field("Depends"), "", "static binaries depend on nothing");
    assert!(field("Description").starts_with("see how containers"));
    let info = run_ok(Command::new("dpkg-deb").arg("--info").arg(&deb));
    assert!(info.contains(" conffiles"), "{info}");
    let conffiles = run_ok(
        Command::new("dpkg-deb")
            .args(["--info"])
            .arg(&deb)
            .arg("conffiles"),
    );
    assert_eq!(conffiles.trim(), "/etc/default/inspector-agent");
}

#[test]
fn the_agents_image_holds_the_static_binaries_and_runs_the_agent() {
    let docker = Command::new(DOCKER).arg("info").output();
    if !require(
        docker.is_ok_and(|o| o.status.success()),
        "a running Docker engine (cargo xtask docker)",
    ) {
        return;
    }
    let inspect = Command::new(DOCKER)
        .args([
            "image",
            "inspect",
            "--format",
            "{{json .Config.Entrypoint}}",
        ])
        .arg(image())
        .output()
        .expect("docker image inspect");
    if !inspect.status.success() {
        let what = format!("the image {} (cargo xtask dist --image)", image());
        if in_ci() {
            panic!("prerequisite missing in CI: {what}");
        }
        eprintln!("skipped: {what}");
        return;
    }
    let entrypoint: Value =
        serde_json::from_slice(&inspect.stdout).expect("the entrypoint as JSON");
    assert_eq!(
        entrypoint,
        serde_json::json!(["/usr/bin/inspector", "agent"])
    );
    // An image of nothing but the two binaries: they run there.
    for (binary, expected) in [
        (
            "/usr/bin/inspector",
            format!("inspector {VERSION} (commit "),
        ),
        (
            "/usr/bin/inspector-runtime",
            format!("inspector-runtime version {VERSION}\n"),
        ),
    ] {
        let out = run_ok(
            Command::new(DOCKER)
                .args(["run", "--rm", "--network", "none", "--entrypoint", binary])
                .arg(image())
                .arg("--version"),
        );
        assert!(out.starts_with(&expected), "{binary} --version: {out:?}");
    }
}
