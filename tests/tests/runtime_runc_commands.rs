//! runc's commands beyond the lifecycle (`events`, `exec`'s flags, `ps`'s
//! arguments), each run against a container of runc's and one of ours made
//! from the same bundle, and compared as a user reads them.

use serde_json::{Value, json};
use tests::runtime::{Bundle, Runtime};
use tests::{Need, ready};

/// A detached container of `rt` running `args`, its config edited by `edit`.
fn detached(rt: &Runtime, name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> Bundle {
    let mut b = Bundle::new(name, args);
    edit(&mut b.config);
    b.save();
    rt.run_detached(&b);
    b
}

fn both(name: &str) -> [(Runtime, &'static str); 2] {
    [
        (Runtime::runc(name), "runc"),
        (Runtime::new(name), "inspector-runtime"),
    ]
}

/// The key paths of a JSON value, `a.b.c`, leaves only.
fn paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                paths(v, &format!("{prefix}.{k}"), out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// `events --stats`: the same JSON as runc's, key for key, for the same
/// limits; the values that are the limits are equal, the usage is there.
#[test]
fn events_stats_match_runc() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let limits = |c: &mut Value| {
        c["linux"]["resources"] = json!({
            "memory": {"limit": 67108864, "swap": 134217728},
            "pids": {"limit": 50},
            "cpu": {"cpus": "0"}
        });
    };
    let mut seen = Vec::new();
    for (rt, who) in both("events-stats") {
        let b = detached(&rt, &format!("events-{who}"), &["sleep", "30"], limits);
        let text = rt.ok(&["events", "--stats", &b.id]);
        rt.ok(&["delete", "--force", &b.id]);
        assert_eq!(text.lines().count(), 1, "{who}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["id"].as_str()),
            (Some("stats"), Some(b.id.as_str())),
            "{who}"
        );
        let d = &v["data"];
        assert_eq!(d["memory"]["usage"]["limit"], 67108864, "{who}: {d}");
        assert_eq!(d["memory"]["swap"]["limit"], 134217728, "{who}: {d}");
        assert_eq!(d["pids"], json!({"current": 1, "limit": 50}), "{who}");
        assert_eq!(d["cpuset"]["cpus"], json!([0]), "{who}");
        assert!(d["cpu"]["usage"]["total"].as_u64() > Some(0), "{who}: {d}");
        assert!(
            d["memory"]["usage"]["usage"].as_u64() > Some(0),
            "{who}: {d}"
        );
        assert!(!d["memory"]["raw"].as_object().unwrap().is_empty(), "{who}");
        let mut keys = Vec::new();
        // Usage that is zero is left out by both: compare where a value is
        // a limit, a list or a count both always have.
        for part in [
            "cpuset",
            "pids",
            "hugetlb",
            "intel_rdt",
            "network_interfaces",
        ] {
            paths(&d[part], part, &mut keys);
        }
        let mut top: Vec<&String> = d.as_object().unwrap().keys().collect();
        top.sort();
        keys.extend(top.into_iter().cloned());
        let mut raw: Vec<String> = d["memory"]["raw"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        raw.sort();
        keys.extend(raw);
        rt.assert_nothing_left(&b);
        seen.push(keys);
    }
    assert_eq!(seen[0], seen[1], "runc's keys, then ours");
}

/// `events --interval`: a stats line every interval and an `oom` line when
/// the kernel's OOM killer strikes in the container (runc's shape,
/// `{"type":"oom","id":…}`); ours ends when the container does.
#[test]
fn events_stream_stats_and_oom() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let rt = Runtime::new("events-oom");
    let b = detached(
        &rt,
        "events-oom",
        &["sh", "-c", "sleep 1; tail /dev/zero; sleep 0.5"],
        |c| c["linux"]["resources"] = json!({"memory": {"limit": 16777216, "swap": 16777216}}),
    );
    let out = rt.out(&["events", "--interval", "200ms", &b.id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stats = events.iter().filter(|e| e["type"] == "stats").count();
    assert!(stats >= 4, "{text}");
    let ooms: Vec<&Value> = events.iter().filter(|e| e["type"] == "oom").collect();
    assert_eq!(ooms, vec![&json!({"type": "oom", "id": b.id})], "{text}");
    // Stopped: the container is over, and so is `events`.
    let out = rt.out(&["events", "--stats", &b.id]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not running"));
    rt.ok(&["delete", &b.id]);
    rt.assert_nothing_left(&b);
}

/// `exec` with runc's flags: `--cap` (as root and as a user), `--no-new-privs`,
/// `--env`, `--user`, `--additional-gids`, `--cwd`: what the process sees is
/// the same under both.
#[test]
fn exec_flags_match_runc() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let script =
        "grep -E '^Cap|NoNewPrivs' /proc/self/status; echo $GREETING; id -u; id -g; id -G; pwd";
    let mut seen = Vec::new();
    for (rt, who) in both("exec-flags") {
        let b = detached(&rt, &format!("exec-flags-{who}"), &["sleep", "30"], |_| {});
        let out = rt.ok(&[
            "exec",
            "--cap",
            "CAP_NET_ADMIN",
            "--cap",
            "CAP_SYS_TIME",
            "--no-new-privs",
            "--env",
            "GREETING=hello",
            "--user",
            "1000:1001",
            "--additional-gids",
            "5",
            "--cwd",
            "/tmp",
            &b.id,
            "sh",
            "-c",
            script,
        ]);
        // As root the added capabilities are there after execve.
        let out = out
            + &rt.ok(&[
                "exec",
                "--cap",
                "CAP_NET_ADMIN",
                &b.id,
                "grep",
                "^Cap",
                "/proc/self/status",
            ]);
        // The same, from a process.json, with --detach and --pid-file.
        let pid_file = rt.root.path().join("exec.pid");
        let process = rt.root.path().join("process.json");
        std::fs::write(
            &process,
            json!({"args": ["sleep", "5"], "cwd": "/", "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]})
                .to_string(),
        )
        .unwrap();
        rt.ok(&[
            "exec",
            "--process",
            process.to_str().unwrap(),
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &b.id,
        ]);
        let pid: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let pids: Vec<i32> =
            serde_json::from_str(&rt.ok(&["ps", "--format", "json", &b.id])).unwrap();
        assert!(pids.contains(&pid), "{who}: {pid} not in {pids:?}");
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
        assert_eq!(comm, "sleep\n", "{who}");
        // A capability that does not exist: runc 1.1 ignores it with a
        // warning; ours refuses it, naming it (a typo should not go unseen).
        let bad = rt.out(&["exec", "--cap", "CAP_NONSENSE", &b.id, "true"]);
        if who != "runc" {
            assert_eq!(bad.status.code(), Some(1));
            let err = String::from_utf8_lossy(&bad.stderr);
            assert!(
                err.contains("--cap \"CAP_NONSENSE\": not a capability"),
                "{err}"
            );
        }
        rt.ok(&["delete", "--force", &b.id]);
        rt.assert_nothing_left(&b);
        seen.push(out);
    }
    assert_eq!(seen[0], seen[1], "runc's, then ours");
    assert!(
        seen[1].contains("NoNewPrivs:\t1")
            && seen[1].contains("hello\n1000\n1001\n")
            && seen[1].contains("CapEff:\t0000000020001420"),
        "{}",
        seen[1]
    );
}

/// `ps ID [ps options]`: runc's form (options straight after the id) gives
/// the container's processes in ps's own columns; ours also takes them after
/// `--` (runc hands the `--` to ps, which refuses it).
#[test]
fn ps_with_options_matches_runc() {
    if !ready(&[Need::Root, Need::Runtime]) {
        return;
    }
    let mut seen = Vec::new();
    for (rt, who) in both("ps-options") {
        let b = detached(&rt, &format!("ps-{who}"), &["sleep", "30"], |_| {});
        // Without the pid column the pid values, which differ, drop out.
        let no_pids = |t: String| -> Vec<Vec<String>> {
            t.lines()
                .map(|l| l.split_whitespace().skip(1).map(String::from).collect())
                .collect()
        };
        let direct = no_pids(rt.ok(&["ps", &b.id, "-o", "pid,comm,args"]));
        if who != "runc" {
            let dashed = no_pids(rt.ok(&["ps", &b.id, "--", "-o", "pid,comm,args"]));
            assert_eq!(dashed, direct);
        }
        rt.ok(&["delete", "--force", &b.id]);
        rt.assert_nothing_left(&b);
        seen.push(direct);
    }
    assert_eq!(seen[0], seen[1], "runc's, then ours");
    assert_eq!(
        seen[1],
        vec![vec!["COMMAND", "COMMAND"], vec!["sleep", "sleep", "30"]],
        "ours"
    );
}
