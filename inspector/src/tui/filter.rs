//! What the event stream shows: a filter by kind, container, pid and free text,
//! typed as `kind:exec,exit ctr:f260 pid:7805 pivot`.

use std::fmt;

use crate::{
    event::{Event, Task},
    output,
};

/// An event stream filter; the empty filter lets everything through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// Event kinds (`exec`, `cgroup_mkdir`...); any of them.
    pub kinds: Vec<String>,
    /// A container id prefix.
    pub container: Option<String>,
    /// A process (tgid) or thread id.
    pub pid: Option<u32>,
    /// Words that must all appear in the event's text, case-insensitive.
    pub text: Vec<String>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self == &Filter::default()
    }

    /// `kind:K[,K..]`, `ctr:ID` (or `container:`), `pid:N`; any other word is
    /// free text. An invalid pid is kept as text, so nothing typed is lost.
    pub fn parse(input: &str) -> Filter {
        let mut f = Filter::default();
        for word in input.split_whitespace() {
            match word.split_once(':') {
                Some(("kind" | "k", kinds)) => f
                    .kinds
                    .extend(kinds.split(',').filter(|k| !k.is_empty()).map(String::from)),
                Some(("ctr" | "container" | "c", id)) if !id.is_empty() => {
                    f.container = Some(id.to_string())
                }
                Some(("pid" | "p", pid)) if pid.parse::<u32>().is_ok() => {
                    f.pid = pid.parse().ok();
                }
                _ => f.text.push(word.to_lowercase()),
            }
        }
        f
    }

    pub fn matches(&self, e: &Event, container: Option<&str>) -> bool {
        self.matches_parts(e.body.kind(), e.task.as_ref(), container, || {
            output::describe(&e.body)
        })
    }

    /// The same, from an event's parts: `describe` (its text) is only made
    /// when free text is asked for.
    pub fn matches_parts(
        &self,
        kind: &str,
        task: Option<&Task>,
        container: Option<&str>,
        describe: impl FnOnce() -> String,
    ) -> bool {
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == kind) {
            return false;
        }
        if let Some(prefix) = &self.container
            && !container.is_some_and(|c| c.starts_with(prefix.as_str()))
        {
            return false;
        }
        if let Some(pid) = self.pid
            && !task.is_some_and(|t| t.tgid == pid || t.tid == pid)
        {
            return false;
        }
        if !self.text.is_empty() {
            let who = task
                .map(|t| format!("{}[{}/{}] ", t.comm, t.tgid, t.tid))
                .unwrap_or_default();
            let text = (who + &describe()).to_lowercase();
            if !self.text.iter().all(|w| text.contains(w.as_str())) {
                return false;
            }
        }
        true
    }
}

/// Written back the way it is typed.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut words = Vec::new();
        if !self.kinds.is_empty() {
            words.push(format!("kind:{}", self.kinds.join(",")));
        }
        if let Some(c) = &self.container {
            words.push(format!("ctr:{c}"));
        }
        if let Some(p) = self.pid {
            words.push(format!("pid:{p}"));
        }
        words.extend(self.text.iter().cloned());
        f.write_str(&words.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(pid: u32) -> Event {
        serde_json::from_str(&format!(
            r#"{{"v":1,"ktime_ns":5,"time":"","tgid":{pid},"tid":{pid},"ptgid":1,"nspid":1,"comm":"runc","start_ns":0,"cgroup_id":0,"pidns":0,"mntns":0,"kind":"exec","filename":"/usr/sbin/runc","argv":["runc","create","abc"],"argv_truncated":false,"ret":0}}"#
        ))
        .unwrap()
    }

    #[test]
    fn tui_filter_parses_what_it_prints() {
        let f = Filter::parse("kind:exec,exit ctr:f260 pid:42 Create");
        assert_eq!(f.kinds, ["exec", "exit"]);
        assert_eq!(f.container.as_deref(), Some("f260"));
        assert_eq!(f.pid, Some(42));
        assert_eq!(f.text, ["create"]);
        assert_eq!(Filter::parse(&f.to_string()), f);
        assert!(Filter::parse("  ").is_empty());
    }

    #[test]
    fn tui_filter_matches_kind_container_pid_and_text() {
        let e = exec(42);
        assert!(Filter::parse("").matches(&e, None));
        assert!(Filter::parse("kind:exec pid:42 CREATE").matches(&e, Some("abc")));
        assert!(!Filter::parse("kind:exit").matches(&e, None));
        assert!(!Filter::parse("pid:43").matches(&e, None));
        assert!(Filter::parse("ctr:ab").matches(&e, Some("abc")));
        assert!(!Filter::parse("ctr:ab").matches(&e, None));
        assert!(!Filter::parse("delete").matches(&e, None));
    }
}
