//! A container's times, to compare: its start latency, each phase's
//! duration and, from a recording made with `--sched`, its critical path's
//! time by role and by cause ([`super::why`]). Several runs make one timing
//! by medians (goldens record it, `inspector check --max-slowdown` compares
//! against it); two timings are compared key by key, largest change first
//! (`inspector diff --timing`).

use std::collections::BTreeMap;

use super::{ContainerTimeline, Phase, reader, why};
use crate::escape::bare;

/// What a key measures: the order rows are shown in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// From the client's exec to the entrypoint's.
    StartLatency,
    Phase,
    /// Time on the critical path, by role.
    Role,
    /// Time on the critical path, by state and cause.
    Cause,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::StartLatency => "start latency",
            Kind::Phase => "phase",
            Kind::Role => "role",
            Kind::Cause => "cause",
        }
    }
}

/// A container's times, ms.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timing {
    /// `None` when the entrypoint never ran (a failed or unfinished start).
    pub start_latency_ms: Option<f64>,
    /// Every phase that happened, by name, in [`Phase::ALL`]'s order.
    pub phases: Vec<(String, f64)>,
    /// The start's critical path by role and by cause (empty without
    /// scheduler records).
    pub by_role: BTreeMap<String, f64>,
    pub by_cause: BTreeMap<String, f64>,
}

const NS_PER_MS: f64 = 1e6;

impl Timing {
    /// `t`'s times; its critical path's when it was explained (`t.why`).
    pub fn of(t: &ContainerTimeline) -> Timing {
        let running = t.phases.iter().find(|p| p.phase == Phase::Running);
        let start_latency_ms = match (&t.why, running) {
            (Some(why), Some(_)) => Some(why.start_latency_ms),
            (None, Some(r)) => Some(r.start_ns.saturating_sub(t.start_ns) as f64 / NS_PER_MS),
            (_, None) => None,
        };
        Timing {
            start_latency_ms,
            phases: t
                .phases
                .iter()
                .map(|p| (p.phase.name().to_string(), p.duration_ns as f64 / NS_PER_MS))
                .collect(),
            by_role: t
                .why
                .as_ref()
                .map(|w| w.by_role.clone())
                .unwrap_or_default(),
            by_cause: t
                .why
                .as_ref()
                .map(|w| w.by_cause.clone())
                .unwrap_or_default(),
        }
    }

    /// To a tenth of a millisecond, as goldens write it (so that what was
    /// written reads back equal).
    pub fn rounded(mut self) -> Timing {
        let tenth = |ms: &mut f64| *ms = (*ms * 10.0).round() / 10.0;
        self.start_latency_ms.iter_mut().for_each(tenth);
        self.phases.iter_mut().for_each(|(_, ms)| tenth(ms));
        self.by_role.values_mut().for_each(tenth);
        self.by_cause.values_mut().for_each(tenth);
        self
    }

    /// Every key with its value, in showing order.
    pub fn rows(&self) -> Vec<(Kind, String, f64)> {
        let mut out = Vec::new();
        if let Some(ms) = self.start_latency_ms {
            out.push((Kind::StartLatency, String::new(), ms));
        }
        out.extend(
            self.phases
                .iter()
                .map(|(name, ms)| (Kind::Phase, name.clone(), *ms)),
        );
        out.extend(
            self.by_role
                .iter()
                .map(|(k, ms)| (Kind::Role, k.clone(), *ms)),
        );
        out.extend(
            self.by_cause
                .iter()
                .map(|(k, ms)| (Kind::Cause, k.clone(), *ms)),
        );
        out
    }

    /// The median of several runs, key by key: a phase or latency over the
    /// runs that had it; a role's or cause's time over every run (a run
    /// whose path did not pass there spent 0 ms there).
    pub fn median(runs: &[Timing]) -> Timing {
        let latency: Vec<f64> = runs.iter().filter_map(|r| r.start_latency_ms).collect();
        let mut phases: Vec<(String, Vec<f64>)> = Vec::new();
        for run in runs {
            for (name, ms) in &run.phases {
                match phases.iter_mut().find(|(n, _)| n == name) {
                    Some((_, v)) => v.push(*ms),
                    None => phases.push((name.clone(), vec![*ms])),
                }
            }
        }
        // Keep the phases' life order, whatever run first saw each.
        let order = |name: &str| Phase::ALL.iter().position(|p| p.name() == name);
        phases.sort_by_key(|(name, _)| order(name));
        let over_all = |pick: fn(&Timing) -> &BTreeMap<String, f64>| {
            let keys: std::collections::BTreeSet<&String> =
                runs.iter().flat_map(|r| pick(r).keys()).collect();
            keys.into_iter()
                .map(|k| {
                    let v: Vec<f64> = runs
                        .iter()
                        .map(|r| pick(r).get(k).copied().unwrap_or(0.0))
                        .collect();
                    (k.clone(), median(v).unwrap_or(0.0))
                })
                .collect::<BTreeMap<_, _>>()
        };
        Timing {
            start_latency_ms: median(latency),
            phases: phases
                .into_iter()
                .filter_map(|(name, v)| Some((name, median(v)?)))
                .collect(),
            by_role: over_all(|r| &r.by_role),
            by_cause: over_all(|r| &r.by_cause),
        }
    }
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// One key compared: its value on each side (`None`: not on that side).
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub kind: Kind,
    pub key: String,
    pub a_ms: Option<f64>,
    pub b_ms: Option<f64>,
}

impl Change {
    /// B − A, a missing side counting 0.
    pub fn delta_ms(&self) -> f64 {
        self.b_ms.unwrap_or(0.0) - self.a_ms.unwrap_or(0.0)
    }

    /// B / A, when both are there and A is not 0.
    pub fn ratio(&self) -> Option<f64> {
        match (self.a_ms, self.b_ms) {
            (Some(a), Some(b)) if a > 0.0 => Some(b / a),
            _ => None,
        }
    }
}

/// `a` against `b`: the latency, every phase in life order, then roles and
/// causes, each group largest change first.
pub fn compare(a: &Timing, b: &Timing) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::new();
    for (side, timing) in [(0, a), (1, b)] {
        for (kind, key, ms) in timing.rows() {
            let i = match out.iter().position(|c| c.kind == kind && c.key == key) {
                Some(i) => i,
                None => {
                    out.push(Change {
                        kind,
                        key,
                        a_ms: None,
                        b_ms: None,
                    });
                    out.len() - 1
                }
            };
            if side == 0 {
                out[i].a_ms = Some(ms);
            } else {
                out[i].b_ms = Some(ms);
            }
        }
    }
    let order = |c: &Change| match c.kind {
        Kind::Phase => Phase::ALL
            .iter()
            .position(|p| p.name() == c.key)
            .unwrap_or(usize::MAX),
        _ => 0,
    };
    out.sort_by(|x, y| {
        x.kind
            .cmp(&y.kind)
            .then(order(x).cmp(&order(y)))
            .then(y.delta_ms().abs().total_cmp(&x.delta_ms().abs()))
            .then(x.key.cmp(&y.key))
    });
    out
}

/// The comparison as a table; `causes` caps the cause rows (the rest are
/// counted). Every key is escaped: phase and role names are ours, a cause
/// names a syscall.
pub fn render(changes: &[Change], a_name: &str, b_name: &str, causes: usize) -> String {
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
    let mut out = format!(
        "{:<44} {:>10} {:>10} {:>10} {:>7}\n",
        "ms",
        truncate(&bare(a_name), 10),
        truncate(&bare(b_name), 10),
        "change",
        "ratio"
    );
    let mut shown_causes = 0;
    let mut hidden = 0;
    for c in changes {
        if c.kind == Kind::Cause {
            if shown_causes == causes {
                hidden += 1;
                continue;
            }
            shown_causes += 1;
        }
        let label = match c.kind {
            Kind::StartLatency => c.kind.name().to_string(),
            kind => format!("{} {}", kind.name(), bare(&c.key)),
        };
        let ratio = c.ratio().map_or_else(String::new, |r| format!("{r:.2}×"));
        out.push_str(&format!(
            "{:<44} {:>10} {:>10} {:>+10.1} {:>7}\n",
            truncate(&label, 44),
            ms(c.a_ms),
            ms(c.b_ms),
            c.delta_ms(),
            ratio
        ));
    }
    if hidden > 0 {
        out.push_str(&format!("({hidden} smaller changes of cause not shown)\n"));
    }
    out
}

/// `s` cut to `n` characters, the last one an ellipsis when cut.
fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    let mut out: String = s.chars().take(n.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The timings of a recording's containers (those whose id starts with
/// `container`, when given), explained when it has scheduler records, with
/// what reading it found.
pub fn of_recording(
    input: impl std::io::Read,
    container: Option<&str>,
) -> Result<(Vec<Timing>, reader::ReadSummary), reader::ReadError> {
    let mut builder = super::Builder::new();
    let mut sched = why::Sched::default();
    let mut timings = Vec::new();
    let mut keep = |mut t: ContainerTimeline, sched: &why::Sched| {
        if container.is_none_or(|prefix| t.id.starts_with(prefix)) {
            t.why = sched.explain(&t);
            timings.push(Timing::of(&t));
        }
    };
    let summary = reader::for_each_path_event(input, |e| {
        sched.push(&e);
        builder.push(e);
        for t in builder.take_finished() {
            keep(t, &sched);
        }
    })?;
    for t in builder.finish() {
        keep(t, &sched);
    }
    Ok((timings, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(latency: f64, create: f64, dockerd: Option<f64>) -> Timing {
        Timing {
            start_latency_ms: Some(latency),
            phases: vec![("request".into(), 10.0), ("create".into(), create)],
            by_role: dockerd
                .map(|ms| BTreeMap::from([("dockerd".to_string(), ms)]))
                .unwrap_or_default(),
            by_cause: BTreeMap::new(),
        }
    }

    #[test]
    fn the_median_is_taken_key_by_key() {
        let m = Timing::median(&[
            timing(100.0, 50.0, Some(30.0)),
            timing(300.0, 70.0, None),
            timing(200.0, 60.0, Some(10.0)),
        ]);
        assert_eq!(m.start_latency_ms, Some(200.0));
        assert_eq!(
            m.phases,
            [("request".into(), 10.0), ("create".into(), 60.0)]
        );
        // The run whose path missed dockerd spent 0 ms there.
        assert_eq!(m.by_role["dockerd"], 10.0);
        assert_eq!(median(vec![1.0, 4.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![f64::NAN]), None);
        assert_eq!(Timing::median(&[]).start_latency_ms, None);
    }

    #[test]
    fn changes_come_in_life_order_then_largest_first() {
        let a = timing(100.0, 50.0, Some(30.0));
        let mut b = timing(180.0, 120.0, Some(35.0));
        b.by_role.insert("runtime".into(), 40.0);
        b.phases.insert(0, ("shim start".into(), 1.0));
        let changes = compare(&a, &b);
        let keys: Vec<(Kind, &str)> = changes.iter().map(|c| (c.kind, c.key.as_str())).collect();
        assert_eq!(
            keys,
            [
                (Kind::StartLatency, ""),
                (Kind::Phase, "request"),
                (Kind::Phase, "shim start"),
                (Kind::Phase, "create"),
                (Kind::Role, "runtime"),
                (Kind::Role, "dockerd"),
            ]
        );
        assert_eq!(changes[0].delta_ms(), 80.0);
        assert_eq!(changes[0].ratio(), Some(1.8));
        assert_eq!(changes[4].a_ms, None);
        let text = render(&changes, "a.jsonl", "b.jsonl", 10);
        assert!(
            text.lines().any(|l| l.starts_with("start latency")
                && l.contains("+80.0")
                && l.contains("1.80×")),
            "{text}"
        );
        assert!(text.contains("role runtime"), "{text}");
    }

    #[test]
    fn names_from_the_traced_system_are_escaped() {
        let mut b = Timing::default();
        b.by_cause.insert("blocked in \x1b[2Jx".into(), 1.0);
        let text = render(&compare(&Timing::default(), &b), "\x1b]0;a", "b", 10);
        assert!(!text.contains('\x1b'), "{text:?}");
    }
}
