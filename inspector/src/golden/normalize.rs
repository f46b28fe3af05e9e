//! Turning one event's strace-like text into what stays the same from one run
//! to the next: no pids, fds, namespace inodes or durations; container ids,
//! layer ids and random names as placeholders.

/// Rewrites the text of one step of the container whose id is `id` (empty
/// for events that belong to no container).
pub fn line(text: &str, id: &str) -> String {
    let mut s = strip_duration(text).to_string();
    // The bundled runtime runs from wherever inspector was built.
    if let Some(dir) = own_dir()
        && s.contains(dir)
    {
        s = s.replace(dir, "<inspector-dir>");
    }
    if !id.is_empty() {
        s = s.replace(id, "<id>");
        if id.len() > 12 {
            s = s.replace(&id[..12], "<id>");
        }
    }
    s = hex_runs(&s);
    s = after_prefixes(&s);
    s = event_control(&s);
    s = ns_inodes(&s);
    clone_pid(&s)
}

/// `clone(flags=...) = 4242`: a clone that made namespaces returns the new
/// process's pid.
fn clone_pid(s: &str) -> String {
    match s.strip_prefix("clone(").and_then(|r| r.rsplit_once(") = ")) {
        Some((flags, pid)) if !pid.is_empty() && pid.bytes().all(|c| c.is_ascii_digit()) => {
            format!("clone({flags}) = <pid>")
        }
        _ => s.to_string(),
    }
}

/// The directory of the running inspector (and of the runtime built with it).
fn own_dir() -> Option<&'static str> {
    static DIR: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        let dir = exe.parent()?.to_str()?.to_string();
        // `/` alone would rewrite every path.
        (dir.len() > 1).then_some(dir)
    })
    .as_deref()
}

/// ` <0.035ms>` at the end: how long the call took.
fn strip_duration(text: &str) -> &str {
    let t = text.trim_end();
    match t.rfind(" <") {
        Some(at) if t.ends_with("ms>") => t[..at].trim_end(),
        _ => t,
    }
}

/// Runs of 12 or more lowercase hex digits (other containers' ids, overlay
/// layers, network sandboxes) standing alone between other characters.
fn hex_runs(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && matches!(b[i], b'0'..=b'9' | b'a'..=b'f') {
            i += 1;
        }
        let run = i - start;
        let alone = |at: Option<&u8>| at.is_none_or(|c| !c.is_ascii_alphanumeric());
        let has_letter = b[start..i].iter().any(|c| c.is_ascii_lowercase());
        if run >= 12
            && has_letter
            && alone(start.checked_sub(1).and_then(|p| b.get(p)))
            && alone(b.get(i))
        {
            out.push_str("<hex>");
        } else {
            out.push_str(&s[start..i]);
        }
        if i < b.len() && i == start {
            // Not a hex digit: copy the whole character.
            let c = s[i..].chars().next().expect("in bounds");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Numbers and random names after the prefixes that carry them.
fn after_prefixes(s: &str) -> String {
    /// A prefix, what the characters after it become, and which characters.
    type Rule = (&'static str, &'static str, fn(u8) -> bool);
    const RULES: &[Rule] = &[
        ("/proc/", "<pid>", |c| c.is_ascii_digit()),
        ("/dev/fd/", "<fd>", |c| c.is_ascii_digit()),
        ("/proc/self/fd/", "<fd>", |c| c.is_ascii_digit()),
        ("fork child ", "<pid>", |c| c.is_ascii_digit()),
        ("process ", "<pid>", |c| c.is_ascii_digit()),
        ("thread ", "<pid>", |c| c.is_ascii_digit()),
        // inspector-runtime's sealed copy of itself, named after its build.
        ("/.sealed/", "<exe>", |c| c != b'"' && c != b' '),
        ("cgroup.procs \"", "<pid>", |c| c.is_ascii_digit()),
        // cgroup v1's per-thread list: podman moves conmon in through it.
        ("/tasks \"", "<pid>", |c| c.is_ascii_digit()),
        ("fchdir(", "<fd>", |c| c.is_ascii_digit()),
        ("setns(", "<fd>", |c| c.is_ascii_digit()),
        // runc's bind mount of its own binary: runc.XXXXXX
        ("/runc.", "<rand>", |c| c.is_ascii_alphanumeric()),
        ("/tmp/", "<tmp>", |c| c != b'/' && c != b'"'),
    ];
    let mut s = s.to_string();
    for (prefix, placeholder, class) in RULES {
        let mut out = String::with_capacity(s.len());
        let mut rest = s.as_str();
        while let Some(at) = rest.find(prefix) {
            let after = at + prefix.len();
            out.push_str(&rest[..after]);
            let n = rest.as_bytes()[after..]
                .iter()
                .take_while(|&&c| class(c))
                .count();
            if n > 0 {
                out.push_str(placeholder);
            }
            rest = &rest[after + n..];
        }
        out.push_str(rest);
        s = out;
    }
    s
}

/// `cgroup.event_control "3 25 "`: a shim asking for OOM notifications
/// writes two of its fds there.
fn event_control(s: &str) -> String {
    const KEY: &str = "cgroup.event_control \"";
    let Some(at) = s.find(KEY) else {
        return s.to_string();
    };
    let (head, tail) = s.split_at(at + KEY.len());
    let end = tail.find('"').unwrap_or(tail.len());
    let fds = tail[..end]
        .split(' ')
        .map(|w| {
            if !w.is_empty() && w.bytes().all(|c| c.is_ascii_digit()) {
                "<fd>"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    format!("{head}{fds}{}", &tail[end..])
}

/// `[ns 4026532184]`: an inode number differs every run.
fn ns_inodes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(" [ns ") {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 5..];
        let n = tail.bytes().take_while(u8::is_ascii_digit).count();
        if tail[n..].starts_with(']') {
            rest = &tail[n + 1..];
        } else {
            out.push_str(" [ns ");
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "d2a6a5930af6f4e200e834f6dfe8af1d6bb5b3d8295f0a276cc462a6de292e76";

    #[test]
    fn runs_differ_only_in_what_it_removes() {
        let cases = [
            (
                format!("cgroup write pids:/docker/{ID}/cgroup.procs \"29127\""),
                "cgroup write pids:/docker/<id>/cgroup.procs \"<pid>\"",
            ),
            (
                "cgroup write cpu:/libpod_parent/conmon/tasks \"28017\"".to_string(),
                "cgroup write cpu:/libpod_parent/conmon/tasks \"<pid>\"",
            ),
            (
                "mount(\"/proc/self/exe\", \"/var/run/docker/runtime-runc/moby/x/runc.DKsNED\", NULL, MS_BIND) = 0 <0.035ms>".to_string(),
                "mount(\"/proc/self/exe\", \"/var/run/docker/runtime-runc/moby/x/runc.<rand>\", NULL, MS_BIND) = 0",
            ),
            (
                "execve(\"/proc/28300/exe\", [\"libnetwork-setkey\",\"d2a6a5930af6\",\"cb823688b476\"]) = 0".to_string(),
                "execve(\"/proc/<pid>/exe\", [\"libnetwork-setkey\",\"<id>\",\"<hex>\"]) = 0",
            ),
            (
                "chdir(\"/var/lib/docker/overlay2/53faabe4f5bd055aafa05031f5925a620b0c0062f5ec1eb0ba4b929a8e3a69e7-init/merged\") = 0".to_string(),
                "chdir(\"/var/lib/docker/overlay2/<hex>-init/merged\") = 0",
            ),
            (
                "setns(14 [ns 4026531833], CLONE_NEWNET) = 0 <0.020ms>".to_string(),
                "setns(<fd>, CLONE_NEWNET) = 0",
            ),
            ("fork child 29109 (CLONE_VM|SIGCHLD)".to_string(), "fork child <pid> (CLONE_VM|SIGCHLD)"),
            (
                "clone(flags=CLONE_NEWPID|CLONE_INTO_CGROUP) = 25988 <0.210ms>".to_string(),
                "clone(flags=CLONE_NEWPID|CLONE_INTO_CGROUP) = <pid>",
            ),
            (
                "clone(flags=CLONE_NEWPID) = -1 EPERM".to_string(),
                "clone(flags=CLONE_NEWPID) = -1 EPERM",
            ),
            (
                "cgroup write memory:/docker/x/cgroup.event_control \"24 25 \"".to_string(),
                "cgroup write memory:/docker/x/cgroup.event_control \"<fd> <fd> \"",
            ),
            (
                "fchdir(10 [/tmp/inspector-x1/rootfs]) = 0".to_string(),
                "fchdir(<fd> [/tmp/<tmp>/rootfs]) = 0",
            ),
            (
                "mount(\"proc\", \"/proc/self/fd/6\", \"proc\", MS_NOSUID) = 0".to_string(),
                "mount(\"proc\", \"/proc/self/fd/<fd>\", \"proc\", MS_NOSUID) = 0",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(line(&raw, ID), want, "{raw}");
        }
    }

    #[test]
    fn what_matters_is_kept() {
        // Flags, errors, values written and short numbers stay.
        let s = "cgroup write pids:/x/pids.max \"10\"";
        assert_eq!(line(s, ""), s);
        let s = "mount(\"/dev/null\", \"/proc/kcore\", NULL, MS_BIND) = -1 ENOENT";
        assert_eq!(line(s, ""), s);
        let s = "execve(\"/bin/true\", [\"true\"]) = 0";
        assert_eq!(line(s, ""), s);
    }
}
