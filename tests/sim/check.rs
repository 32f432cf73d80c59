//! The invariants, judged on what happened (pure): the lab's journal of every change in both
//! buckets, in the order the changes took effect, the daemon's own log lines, the events sent
//! and where their messages ended, and the sweep's reports.
//!
//! - I1 no wrongful delete: a target entry the daemon deletes had, at some moment after it was
//!   written, a source that held nothing for its key (`when-source-empty`; with
//!   `marker_only_source = "keep"` a delete marker counts); in `mirror-versions` it may also be
//!   a replica of a version the source no longer has. Nothing in the source is ever deleted.
//! - I2 no resurrection: no daemon delete turns a hidden key visible.
//! - I3 eventual purge: every delivered event ends with the target purged, the source holding
//!   the key, or its message in the DLQ with a logged reason; after a sweep that completed,
//!   no key the source does not hold keeps deletable target entries.
//! - I4 audit: every daemon delete has a `deleting` line before it, and a result line unless
//!   its process was killed; a sweep's report says what happened (purged keys are gone, kept
//!   keys lost nothing, `deleted` counts the confirmed deletes).
//! - I5 guardrails: a sweep run purges at most `max_deletes` keys, across kills.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::daemon::Life;
use super::plan::{Mode, Plan};

#[derive(Debug, Clone)]
pub struct SentEvent {
    pub key: String,
    pub version_id: String,
    pub message_ids: Vec<String>,
}

/// What the journal says about one event's key after its delete.
#[derive(Debug, Clone, Default)]
struct Since {
    /// The journal position of the delete the event announces.
    seq: u64,
    /// The source held the key at some moment from then on.
    source_held: bool,
}

#[derive(Clone)]
pub struct SweepRun {
    pub life: Life,
    pub lines: Vec<Value>,
    pub summary: Option<Value>,
}

/// Everything one seed's run left behind.
pub struct Observed {
    pub source: String,
    pub journal: Vec<Value>,
    pub lives: Vec<Life>,
    pub events: Vec<SentEvent>,
    /// Message ids found in the dead-letter queue.
    pub dead: Vec<String>,
    /// Messages still in the queue when the run ended.
    pub unsettled: usize,
    pub sweeps: Vec<SweepRun>,
}

#[derive(Debug, Clone)]
struct Entry {
    id: String,
    marker: bool,
    replica: bool,
    held: bool,
    modified_ms: i64,
    seq: u64,
    /// The source held nothing for the key at some moment since this entry was written.
    source_was_empty: bool,
}

type Bucket = BTreeMap<String, Vec<Entry>>;

/// The key's newest entry: last modified, then written last.
fn latest(entries: &[Entry]) -> Option<&Entry> {
    entries.iter().max_by_key(|e| (e.modified_ms, e.seq))
}

fn hidden(entries: &[Entry]) -> bool {
    latest(entries).is_some_and(|e| e.marker)
}

fn visible(entries: &[Entry]) -> bool {
    latest(entries).is_some_and(|e| !e.marker)
}

/// Whatever may remain of a purged key: versions under a legal hold, and the markers above
/// them (a marker only goes once no version stays).
fn only_held_left(entries: &[Entry]) -> bool {
    let held = entries.iter().any(|e| e.held && !e.marker);
    entries
        .iter()
        .all(|e| (e.held && !e.marker) || (e.marker && held))
}

struct Judge<'a> {
    plan: &'a Plan,
    o: &'a Observed,
    source: Bucket,
    target: Bucket,
    violations: Vec<String>,
    /// (key, version id, real µs) of every daemon delete in the target.
    deletes: Vec<(String, String, i64)>,
    /// By (key, version id) of a source delete: what happened to the key since.
    since: BTreeMap<(String, String), Since>,
}

impl Judge<'_> {
    fn holds(&self, key: &str) -> bool {
        let entries = self.source.get(key).map(Vec::as_slice).unwrap_or_default();
        if self.plan.marker_only_keep {
            !entries.is_empty()
        } else {
            entries.iter().any(|e| !e.marker)
        }
    }

    fn mark_if_source_empty(&mut self, key: &str) {
        if !self.holds(key)
            && let Some(t) = self.target.get_mut(key)
        {
            for e in t.iter_mut() {
                e.source_was_empty = true;
            }
        }
    }

    fn replay(&mut self) {
        let journal = self.o.journal.clone();
        for j in &journal {
            let on_source = j["bucket"] == self.o.source.as_str();
            let key = j["key"].as_str().unwrap_or_default().to_string();
            let id = j["version_id"].as_str().unwrap_or_default().to_string();
            let seq = j["seq"].as_u64().unwrap_or(0);
            let client = j["actor"] == "client";
            match j["change"].as_str().unwrap_or_default() {
                "put" => {
                    let source_was_empty = !on_source && !self.holds(&key);
                    let e = Entry {
                        id: id.clone(),
                        marker: j["delete_marker"].as_bool().unwrap_or(false),
                        replica: j["replica"].as_bool().unwrap_or(false),
                        held: j["held"].as_bool().unwrap_or(false),
                        modified_ms: j["modified_ms"].as_i64().unwrap_or(0),
                        seq,
                        source_was_empty,
                    };
                    let bucket = if on_source {
                        &mut self.source
                    } else {
                        &mut self.target
                    };
                    let list = bucket.entry(key.clone()).or_default();
                    list.retain(|x| x.id != id);
                    list.push(e);
                    if on_source {
                        self.mark_if_source_empty(&key);
                    }
                }
                "hold" | "release" => {
                    let bucket = if on_source {
                        &mut self.source
                    } else {
                        &mut self.target
                    };
                    if let Some(e) = bucket
                        .get_mut(&key)
                        .and_then(|l| l.iter_mut().find(|e| e.id == id))
                    {
                        e.held = j["change"] == "hold";
                    }
                }
                "delete" => {
                    if client && on_source {
                        self.violations.push(format!(
                            "I1: the daemon deleted source entry {key:?} {id} (journal #{seq})"
                        ));
                    }
                    if client && !on_source {
                        self.judge_delete(&key, &id, seq, j["real_us"].as_i64().unwrap_or(0));
                    }
                    let bucket = if on_source {
                        &mut self.source
                    } else {
                        &mut self.target
                    };
                    if let Some(l) = bucket.get_mut(&key) {
                        l.retain(|e| e.id != id);
                        if l.is_empty() {
                            bucket.remove(&key);
                        }
                    }
                    if on_source {
                        self.mark_if_source_empty(&key);
                        self.since.insert(
                            (key.clone(), id.clone()),
                            Since {
                                seq,
                                source_held: self.holds(&key),
                            },
                        );
                    }
                }
                _ => {}
            }
            if on_source && self.holds(&key) {
                for ((k, _), s) in self.since.iter_mut() {
                    if *k == key {
                        s.source_held = true;
                    }
                }
            }
        }
    }

    /// I1 and I2 for one daemon delete in the target, before it takes effect.
    fn judge_delete(&mut self, key: &str, id: &str, seq: u64, real_us: i64) {
        self.deletes
            .push((key.to_string(), id.to_string(), real_us));
        if self.plan.dry_run {
            self.violations.push(format!(
                "I1: a dry run deleted {key:?} {id} (journal #{seq})"
            ));
        }
        let entries = self.target.get(key).cloned().unwrap_or_default();
        let Some(e) = entries.iter().find(|e| e.id == id) else {
            return; // already gone: deleting it again changes nothing
        };
        let source_has_it = self
            .source
            .get(key)
            .is_some_and(|l| l.iter().any(|s| s.id == id));
        let allowed = match self.plan.mode {
            Mode::WhenSourceEmpty => e.source_was_empty,
            Mode::Mirror => e.source_was_empty || (e.replica && !source_has_it),
        };
        if !allowed {
            self.violations.push(format!(
                "I1: {key:?} {id} ({}) deleted while the source held the key since it was written (journal #{seq})",
                if e.marker { "marker" } else { "version" }
            ));
        }
        let after: Vec<Entry> = entries.iter().filter(|x| x.id != id).cloned().collect();
        if hidden(&entries) && visible(&after) {
            self.violations.push(format!(
                "I2: deleting {key:?} {id} made the hidden key visible (journal #{seq})"
            ));
        }
    }

    fn logs(&self) -> Vec<(&Life, Vec<Value>)> {
        self.o
            .lives
            .iter()
            .chain(self.o.sweeps.iter().map(|s| &s.life))
            .map(|l| (l, l.log.lines()))
            .collect()
    }

    fn audit(&mut self) {
        let logs = self.logs();
        let audit = |l: &Value, action: &str| {
            l["target"] == "s3_reconciler::audit" && l["fields"]["action"] == action
        };
        let f = |l: &Value, k: &str| l["fields"][k].as_str().unwrap_or_default().to_string();
        let mut violations = Vec::new();
        for (key, id, real_us) in &self.deletes {
            let announced = logs.iter().flat_map(|(_, ls)| ls).any(|l| {
                audit(l, "deleting")
                    && f(l, "key") == *key
                    && f(l, "version_id") == *id
                    && ts_us(l) <= *real_us
            });
            if !announced {
                violations.push(format!(
                    "I4: {key:?} {id} deleted without a `deleting` audit line before the request"
                ));
            }
        }
        for (life, lines) in &logs {
            if life.killed_us.is_some() {
                continue;
            }
            for l in lines.iter().filter(|l| audit(l, "deleting")) {
                let (b, k, v) = (f(l, "batch_id"), f(l, "key"), f(l, "version_id"));
                let ended = lines.iter().any(|r| {
                    (audit(r, "delete") || audit(r, "delete_failed"))
                        && f(r, "batch_id") == b
                        && f(r, "key") == k
                        && f(r, "version_id") == v
                });
                if !ended {
                    violations.push(format!(
                        "I4: `deleting` {k:?} {v} (batch {b}) has no result line in process {} that was not killed",
                        life.id
                    ));
                }
            }
        }
        self.violations.extend(violations);
    }

    /// I3 for the events, on the final state.
    fn events(&mut self) {
        if self.o.unsettled > 0 {
            self.violations.push(format!(
                "I3: {} message(s) never settled (neither acknowledged nor dead-lettered)",
                self.o.unsettled
            ));
        }
        if self.plan.dry_run {
            return;
        }
        let logs = self.logs();
        let dead_reason = |ids: &[String]| {
            logs.iter().flat_map(|(_, ls)| ls).any(|l| {
                l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("handed to the DLQ"))
                    && l["fields"]["reason"]
                        .as_str()
                        .is_some_and(|r| !r.is_empty())
                    && ids
                        .iter()
                        .any(|id| span_message_id(l).as_deref() == Some(id))
            })
        };
        let mut violations = Vec::new();
        for e in self.o.events.iter().filter(|e| !e.message_ids.is_empty()) {
            if e.message_ids.iter().any(|id| self.o.dead.contains(id)) {
                if !dead_reason(&e.message_ids) {
                    violations.push(format!(
                        "I3: the event for {:?} {} went to the DLQ without a logged reason",
                        e.key, e.version_id
                    ));
                }
                continue;
            }
            let Some(since) = self.since.get(&(e.key.clone(), e.version_id.clone())) else {
                continue;
            };
            // What the target held when the source lost the version: later writes (a
            // lifecycle marker on a gone key) are not this event's to purge.
            let left: Vec<Entry> = self
                .target
                .get(&e.key)
                .map(|l| l.iter().filter(|x| x.seq < since.seq).cloned().collect())
                .unwrap_or_default();
            let purged = if since.source_held {
                match self.plan.mode {
                    Mode::WhenSourceEmpty => true,
                    Mode::Mirror => !left
                        .iter()
                        .any(|x| x.id == e.version_id && x.replica && !x.held),
                }
            } else {
                only_held_left(&left)
            };
            if !purged {
                violations.push(format!(
                    "I3: the event for {:?} {} was settled, yet the target keeps {:?} (the source {} since journal #{})",
                    e.key,
                    e.version_id,
                    left.iter().map(|x| (&x.id, x.marker, x.held)).collect::<Vec<_>>(),
                    if since.source_held { "held the key again" } else { "has held nothing" },
                    since.seq
                ));
            }
        }
        self.violations.extend(violations);
    }

    /// I3 (after a completed sweep), I4 (reports) and I5.
    fn sweeps(&mut self) {
        let Some(sp) = &self.plan.sweep else { return };
        let f = |l: &Value, k: &str| l["fields"][k].as_str().unwrap_or_default().to_string();
        let mut violations = Vec::new();
        let mut purged_keys: BTreeSet<String> = BTreeSet::new();
        for run in &self.o.sweeps {
            let log = run.life.log.lines();
            let mut confirmed: BTreeMap<String, usize> = BTreeMap::new();
            for l in log.iter().filter(|l| {
                l["target"] == "s3_reconciler::audit" && l["fields"]["action"] == "delete"
            }) {
                *confirmed.entry(f(l, "key")).or_default() += 1;
            }
            purged_keys.extend(confirmed.keys().cloned());
            for line in &run.lines {
                let key = line["key"].as_str().unwrap_or_default();
                let action = line["action"].as_str().unwrap_or_default();
                let done = confirmed.get(key).copied().unwrap_or(0);
                let said = line["deleted"].as_u64().unwrap_or(0) as usize;
                match action {
                    "kept" | "would_purge" if done > 0 => violations.push(format!(
                        "I4: the sweep reported {key:?} {action} but deleted {done} of its entries"
                    )),
                    "purged" | "partly_purged" if said != done => violations.push(format!(
                        "I4: the sweep reported {key:?} {action} with {said} entries deleted; {done} were"
                    )),
                    "purged" if !self.purged(key) => violations.push(format!(
                        "I4: the sweep reported {key:?} purged but the target still holds {:?}",
                        self.target.get(key).map(|l| l.iter().map(|x| (&x.id, x.marker)).collect::<Vec<_>>())
                    )),
                    _ => {}
                }
            }
        }
        if (!sp.purge || self.plan.dry_run) && !purged_keys.is_empty() {
            violations.push(format!(
                "I1: a sweep that deletes nothing deleted {purged_keys:?}"
            ));
        }
        if purged_keys.len() > sp.max_deletes as usize {
            violations.push(format!(
                "I5: one sweep run purged {} keys, max_deletes is {}: {purged_keys:?}",
                purged_keys.len(),
                sp.max_deletes
            ));
        }
        let completed = self
            .o
            .sweeps
            .last()
            .and_then(|r| r.summary.as_ref())
            .is_some_and(|s| s["result"] == "completed");
        if sp.purge && !self.plan.dry_run && completed {
            for (key, left) in &self.target {
                if !self.holds(key) && !only_held_left(left) {
                    violations.push(format!(
                        "I3: after a completed sweep, {key:?} keeps {:?} though the source holds nothing",
                        left.iter().map(|x| (&x.id, x.marker, x.held)).collect::<Vec<_>>()
                    ));
                }
            }
        }
        self.violations.extend(violations);
    }
}

impl Judge<'_> {
    /// Whether the target keeps nothing a purge of `key` should have taken: nothing at all;
    /// in `mirror-versions` while the source holds the key, no replica of a version the
    /// source no longer has.
    fn purged(&self, key: &str) -> bool {
        let left = self.target.get(key).map(Vec::as_slice).unwrap_or_default();
        if self.plan.mode == Mode::Mirror && self.holds(key) {
            let source = self.source.get(key).map(Vec::as_slice).unwrap_or_default();
            return !left
                .iter()
                .any(|x| x.replica && !x.held && !source.iter().any(|s| s.id == x.id));
        }
        left.is_empty()
    }
}

fn ts_us(l: &Value) -> i64 {
    l["timestamp"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.timestamp_micros())
        .unwrap_or(i64::MAX)
}

fn span_message_id(l: &Value) -> Option<String> {
    let direct = l["span"]["message_id"].as_str().map(str::to_string);
    direct.or_else(|| {
        l["spans"]
            .as_array()?
            .iter()
            .find_map(|s| s["message_id"].as_str().map(str::to_string))
    })
}

/// Every invariant violation of one run.
pub fn check(plan: &Plan, o: &Observed) -> Vec<String> {
    let mut j = Judge {
        plan,
        o,
        source: Bucket::new(),
        target: Bucket::new(),
        violations: Vec::new(),
        deletes: Vec::new(),
        since: BTreeMap::new(),
    };
    j.replay();
    j.audit();
    j.events();
    j.sweeps();
    j.violations
}
