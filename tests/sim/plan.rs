//! What one seed makes (pure): a world in both buckets, a history of deletes, re-creations,
//! copies and lifecycle markers with their events duplicated, delayed and lost, the faults,
//! the daemon's configuration, its kills, and the sweep at the end.

use std::fmt::Write as _;

pub use crate::common::rng::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    WhenSourceEmpty,
    Mirror,
}

/// One entry of the initial world.
#[derive(Debug, Clone)]
pub struct Initial {
    pub label: usize,
    pub target: bool,
    pub key: String,
    pub marker: bool,
    /// Target only: a replica of this source entry (same version id, `REPLICA`).
    pub replica_of: Option<usize>,
    pub held: bool,
    pub null: bool,
    pub age_s: i64,
}

/// What becomes of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Lost,
    Once { delay_ms: u64 },
    Twice { delay_ms: u64, again_ms: u64 },
}

#[derive(Debug, Clone)]
pub enum Action {
    /// A permanent delete of a source entry, and its event.
    SourceDelete { label: usize, event: Delivery },
    /// A new version in the source.
    SourceWrite { key: String, label: usize },
    /// S3 Replication copies a source entry (same id, `REPLICA`).
    Replicate { label: usize },
    /// DataSync copies the source's current version (a new id).
    Copy { key: String },
    /// The target's lifecycle rule hides the key.
    LifecycleMarker { key: String },
    /// The daemon is killed; it comes back after `down_ms`.
    Kill { down_ms: u64 },
}

#[derive(Debug, Clone)]
pub struct Step {
    pub at_ms: u64,
    pub action: Action,
}

/// The faults of one bucket (see the lab's `FaultConfig`).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub error: f64,
    pub slow_down: f64,
    pub error_after: f64,
    pub truncate: f64,
    pub page: usize,
    pub spike: f64,
    pub spike_ms: u64,
    pub slow: Vec<(String, u64)>,
}

/// The sweep at the end.
#[derive(Debug, Clone)]
pub struct SweepPlan {
    pub purge: bool,
    pub max_deletes: u32,
    pub concurrency: usize,
    /// Kill the sweep after this many keys purged, then run it again.
    pub kill_after: Option<usize>,
    /// Shards walked at once, and the folder levels that split a prefix into them.
    pub parallelism: usize,
    pub shard_depth: usize,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub seed: u64,
    pub mode: Mode,
    pub marker_only_keep: bool,
    pub dry_run: bool,
    pub concurrency: usize,
    pub keys: Vec<String>,
    pub initial: Vec<Initial>,
    pub history: Vec<Step>,
    pub source_faults: Faults,
    pub target_faults: Faults,
    pub sweep: Option<SweepPlan>,
}

/// Families of keys that a careless listing, decode or compare would confuse.
fn families(r: &mut Rng, dir: &str) -> Vec<Vec<String>> {
    let n = r.below(1000);
    let all: Vec<Vec<String>> = vec![
        vec![
            format!("{dir}obj{n}.json"),
            format!("{dir}obj{n}.json.bak"),
            format!("{dir}obj{n}.json/x"),
        ],
        vec![format!("{dir}k{n}"), format!("{dir}k{n}0")],
        vec![
            format!("{dir}caf\u{e9}{n}.json"),
            format!("{dir}cafe\u{301}{n}.json"),
        ],
        vec![
            format!("{dir}c\u{1}{n}.json"),
            format!("{dir}c\u{2}{n}.json"),
        ],
        vec![format!("{dir}r\r{n}"), format!("{dir}r\n{n}")],
        vec![format!("{dir}p+q{n}"), format!("{dir}p q{n}")],
        vec![format!("{dir}v{n}+0+0000000001.json")],
    ];
    let mut picked: Vec<Vec<String>> = Vec::new();
    for f in all {
        if r.chance(0.5) {
            picked.push(f);
        }
    }
    if picked.is_empty() {
        picked.push(vec![format!("{dir}only{n}")]);
    }
    picked
}

impl Plan {
    pub fn new(seed: u64) -> Plan {
        let mut r = Rng::new(seed);
        let mode = if r.chance(0.3) {
            Mode::Mirror
        } else {
            Mode::WhenSourceEmpty
        };
        let dirs: Vec<String> = (0..1 + r.below(3)).map(|i| format!("d{i}/")).collect();
        let mut keys: Vec<String> = Vec::new();
        for d in &dirs {
            for f in families(&mut r, d) {
                keys.extend(f);
            }
        }
        keys.sort();
        keys.dedup();
        let held_world = r.chance(0.4);
        let mut initial = Vec::new();
        let mut label = 0usize;
        let mut next = || {
            label += 1;
            label
        };
        for key in &keys {
            // The source: a few versions, sometimes a marker on top, sometimes nothing at all
            // (an orphan whose event was lost).
            let orphan = r.chance(0.2);
            let versions = if orphan { 0 } else { 1 + r.below(3) as usize };
            let mut src_labels = Vec::new();
            for v in 0..versions {
                let l = next();
                src_labels.push(l);
                initial.push(Initial {
                    label: l,
                    target: false,
                    key: key.clone(),
                    marker: false,
                    replica_of: None,
                    held: false,
                    null: v == 0 && r.chance(0.1),
                    age_s: 7200 - v as i64 * 60,
                });
            }
            if versions > 0 && r.chance(0.15) {
                initial.push(Initial {
                    label: next(),
                    target: false,
                    key: key.clone(),
                    marker: true,
                    replica_of: None,
                    held: false,
                    null: false,
                    age_s: 3000,
                });
            }
            // The target: replicas (mirror) or copies of the source's versions, plus what
            // else lands there.
            let copies = if orphan {
                2 + r.below(2) as usize
            } else {
                versions
            };
            for c in 0..copies {
                let replica_of = match mode {
                    Mode::Mirror => src_labels.get(c).copied(),
                    Mode::WhenSourceEmpty => None,
                };
                initial.push(Initial {
                    label: next(),
                    target: true,
                    key: key.clone(),
                    marker: false,
                    replica_of,
                    held: held_world && r.chance(if orphan { 0.4 } else { 0.25 }),
                    null: false,
                    age_s: 7000 - c as i64 * 60,
                });
            }
            if r.chance(0.15) {
                initial.push(Initial {
                    label: next(),
                    target: true,
                    key: key.clone(),
                    marker: false,
                    replica_of: None,
                    held: false,
                    null: true,
                    age_s: 9000,
                });
            }
            if r.chance(0.25) {
                // A marker on top: the lifecycle's, or a replicated one.
                initial.push(Initial {
                    label: next(),
                    target: true,
                    key: key.clone(),
                    marker: true,
                    replica_of: None,
                    held: false,
                    null: false,
                    age_s: 2000,
                });
            }
        }
        let history = history(&mut r, mode, &keys, &initial, &mut next);
        let faults = |r: &mut Rng, target: bool| Faults {
            error: *r.pick(&[0.0, 0.0, 0.05, 0.15]),
            slow_down: *r.pick(&[0.0, 0.0, 0.05]),
            error_after: if target {
                *r.pick(&[0.0, 0.0, 0.1])
            } else {
                0.0
            },
            truncate: *r.pick(&[0.0, 0.0, 0.1]),
            page: *r.pick(&[0, 0, 2, 3, 7]),
            spike: *r.pick(&[0.0, 0.05]),
            spike_ms: 50 + r.below(250),
            slow: if r.chance(if target { 0.3 } else { 0.5 }) {
                vec![(r.pick(&dirs).clone(), 100 + r.below(300))]
            } else {
                Vec::new()
            },
        };
        let source_faults = faults(&mut r, false);
        let target_faults = faults(&mut r, true);
        let sweep = r.chance(0.7).then(|| {
            // Small budgets often: a guardrail that holds across a kill is only tested when
            // the kill comes before it is used up and there is more to purge.
            let max_deletes = if r.chance(0.5) {
                1 + r.below(3) as u32
            } else {
                1 + r.below(keys.len() as u64 + 2) as u32
            };
            SweepPlan {
                purge: r.chance(0.85),
                max_deletes,
                concurrency: *r.pick(&[1, 2, 4]),
                kill_after: r
                    .chance(0.6)
                    .then(|| 1 + r.below(u64::from(max_deletes)) as usize),
                parallelism: *r.pick(&[1, 2, 4]),
                shard_depth: *r.pick(&[0, 1, 2]),
            }
        });
        Plan {
            seed,
            mode,
            marker_only_keep: r.chance(0.15),
            dry_run: r.chance(0.08),
            concurrency: *r.pick(&[1, 2, 4, 16]),
            keys,
            initial,
            history,
            source_faults,
            target_faults,
            sweep,
        }
    }

    /// The whole case, to read and to replay (`S3R_SIM_SEED`).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "seed {} mode {:?} marker_only_keep {} dry_run {} concurrency {}",
            self.seed, self.mode, self.marker_only_keep, self.dry_run, self.concurrency
        );
        let _ = writeln!(s, "faults: source {:?}", self.source_faults);
        let _ = writeln!(s, "        target {:?}", self.target_faults);
        let _ = writeln!(s, "world:");
        for e in &self.initial {
            let _ = writeln!(
                s,
                "  #{:<3} {} {:?}{}{}{}{} age {}s",
                e.label,
                if e.target { "target" } else { "source" },
                e.key,
                if e.marker { " marker" } else { "" },
                e.replica_of
                    .map(|l| format!(" replica-of #{l}"))
                    .unwrap_or_default(),
                if e.held { " held" } else { "" },
                if e.null { " null" } else { "" },
                e.age_s
            );
        }
        let _ = writeln!(s, "history:");
        for st in &self.history {
            let _ = writeln!(s, "  +{}ms {:?}", st.at_ms, st.action);
        }
        let _ = writeln!(s, "sweep: {:?}", self.sweep);
        let _ = writeln!(
            s,
            "replay: S3R_SIM_SEED={} cargo test --test simulation -- --nocapture",
            self.seed
        );
        s
    }
}

fn history(
    r: &mut Rng,
    mode: Mode,
    keys: &[String],
    initial: &[Initial],
    next: &mut impl FnMut() -> usize,
) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut at = 0u64;
    let mut live: Vec<&Initial> = initial.iter().filter(|e| !e.target).collect();
    r.shuffle(&mut live);
    let delivery = |r: &mut Rng| match r.below(10) {
        0 => Delivery::Lost,
        1 | 2 => Delivery::Twice {
            delay_ms: r.below(300),
            again_ms: r.below(1500),
        },
        _ => Delivery::Once {
            delay_ms: if r.chance(0.3) { r.below(1200) } else { 0 },
        },
    };
    // Bursts: every version of a key deleted in quick succession, each event delivered at
    // once (a second event arrives while the first one's decision is still listing).
    let mut burst: Vec<usize> = Vec::new();
    if r.chance(0.6) {
        let mut by_key: std::collections::BTreeMap<&str, Vec<usize>> = Default::default();
        for e in &live {
            if !e.marker {
                by_key.entry(e.key.as_str()).or_default().push(e.label);
            }
        }
        let multi: Vec<Vec<usize>> = by_key.into_values().filter(|v| v.len() >= 2).collect();
        for _ in 0..1 + r.below(3) {
            if multi.is_empty() {
                break;
            }
            let labels = r.pick(&multi).clone();
            if labels.iter().any(|l| burst.contains(l)) {
                continue;
            }
            at += r.below(100);
            for l in &labels {
                at += 10 + r.below(40);
                steps.push(Step {
                    at_ms: at,
                    action: Action::SourceDelete {
                        label: *l,
                        event: Delivery::Once { delay_ms: 0 },
                    },
                });
            }
            burst.extend(labels);
        }
    }
    live.retain(|e| !burst.contains(&e.label));
    // Deletes, some in quick succession.
    let deletes = live.len() * (3 + r.below(5) as usize) / 8;
    for e in live.iter().take(deletes) {
        at += if r.chance(0.4) {
            r.below(20)
        } else {
            r.below(200)
        };
        steps.push(Step {
            at_ms: at,
            action: Action::SourceDelete {
                label: e.label,
                event: delivery(r),
            },
        });
    }
    let extra = 2 + r.below(6);
    for _ in 0..extra {
        let key = r.pick(keys).clone();
        let at_ms = r.below(at.max(1) + 400);
        let action = match r.below(5) {
            0 => {
                let label = next();
                Action::SourceWrite { key, label }
            }
            1 if mode == Mode::Mirror => match live.get(r.below(live.len() as u64) as usize) {
                Some(e) => Action::Replicate { label: e.label },
                None => Action::Copy { key },
            },
            1 | 2 => Action::Copy { key },
            _ => Action::LifecycleMarker { key },
        };
        steps.push(Step { at_ms, action });
    }
    for _ in 0..r.below(3) {
        steps.push(Step {
            at_ms: r.below(at + 600),
            action: Action::Kill {
                down_ms: 50 + r.below(500),
            },
        });
    }
    steps.sort_by_key(|s| s.at_ms);
    steps
}
