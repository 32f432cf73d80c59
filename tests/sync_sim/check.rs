//! The sync invariants, judged on what a seed left: the lab's executions (with tags, times
//! and copies), the final claims, the buckets' journal and the processes' logs.
//!
//! - S1: at most one execution per (date, attempt, chunk) unless the earlier ones ended in
//!   ERROR or were cancelled; and none runs untracked (every execution that was not cancelled
//!   or failed was started or adopted by a runner that said so).
//! - S2: never two executions of the task at once (none waits in the task's queue).
//! - S3: every date ends `success`, or failed or empty with its attempts used up, and none
//!   stalls while a replica is up (see the runner's watch).
//! - S4: no busy loop: at most 64 scheduler wakes in any hour of a process's life.
//! - S5: no `success` with objects missing: a success was verified complete, and every object
//!   in its partitions that existed when the covering execution launched had been copied by
//!   the time the claim said success.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::plan::SyncPlan;
use super::run::Observed;
use s3_reconciler::sync::state::ClaimStatus;

const DATE_TAG: &str = "s3-reconciler:partition-date";

pub fn check(plan: &SyncPlan, o: &Observed) -> Vec<String> {
    let mut v = Vec::new();
    if o.timed_out {
        v.push("the seed did not reach its end within the real-time limit".into());
    }
    v.extend(o.stalls.iter().cloned());
    executions_once(o, &mut v);
    one_at_a_time(o, &mut v);
    dates_final(plan, o, &mut v);
    no_busy_loop(o, &mut v);
    successes_complete(o, &mut v);
    v
}

fn ended_badly(e: &Value) -> bool {
    e["status"] == "ERROR" || e["cancelled"] == true
}

fn tag<'a>(e: &'a Value, k: &str) -> &'a str {
    e["tags"][k].as_str().unwrap_or("")
}

/// S1.
fn executions_once(o: &Observed, v: &mut Vec<String>) {
    let mut groups: BTreeMap<(String, String, String), Vec<&Value>> = BTreeMap::new();
    for e in &o.executions {
        let key = (
            tag(e, DATE_TAG).to_string(),
            tag(e, "s3-reconciler:attempt").to_string(),
            tag(e, "s3-reconciler:chunk").to_string(),
        );
        groups.entry(key).or_default().push(e);
    }
    for ((date, attempt, chunk), list) in &groups {
        for (i, e) in list.iter().enumerate() {
            if let Some(live) = list[..i].iter().find(|x| !ended_badly(x)) {
                v.push(format!(
                    "S1: {date} attempt {attempt} chunk {chunk} started again ({}) while {} had not failed ({})",
                    e["arn"], live["arn"], live["status"]
                ));
            }
        }
    }
    let tracked: BTreeSet<String> = o
        .lives
        .iter()
        .flat_map(|l| l.log.lines())
        .filter(|l| {
            let m = l["fields"]["message"].as_str().unwrap_or("");
            m == "started DataSync execution" || m.contains("adopting")
        })
        .filter_map(|l| l["fields"]["execution_arn"].as_str().map(str::to_string))
        .collect();
    for e in &o.executions {
        let arn = e["arn"].as_str().unwrap_or("");
        if !ended_badly(e) && !tracked.contains(arn) {
            v.push(format!(
                "S1: execution {arn} ({} attempt {} chunk {}, {}) ran untracked: no runner started or adopted it",
                tag(e, DATE_TAG),
                tag(e, "s3-reconciler:attempt"),
                tag(e, "s3-reconciler:chunk"),
                e["status"]
            ));
        }
    }
}

/// S2.
fn one_at_a_time(o: &Observed, v: &mut Vec<String>) {
    let mut by_start: Vec<&Value> = o.executions.iter().collect();
    by_start.sort_by_key(|e| e["start_ms"].as_i64().unwrap_or(0));
    for pair in by_start.windows(2) {
        let end = pair[0]["end_ms"].as_i64().unwrap_or(i64::MAX);
        let next = pair[1]["start_ms"].as_i64().unwrap_or(0);
        if next < end {
            v.push(format!(
                "S2: {} ({} chunk {}) was started while {} ({} chunk {}) still ran",
                pair[1]["arn"],
                tag(pair[1], DATE_TAG),
                tag(pair[1], "s3-reconciler:chunk"),
                pair[0]["arn"],
                tag(pair[0], DATE_TAG),
                tag(pair[0], "s3-reconciler:chunk"),
            ));
        }
    }
}

/// S3, the end state.
fn dates_final(plan: &SyncPlan, o: &Observed, v: &mut Vec<String>) {
    for (date, claim) in &o.claims {
        match claim {
            None => v.push(format!("S3: {date} was never claimed: the date is lost")),
            Some(c) => {
                let given_up = matches!(c.status, ClaimStatus::Failed | ClaimStatus::Empty)
                    && c.attempts >= plan.max_attempts;
                if c.status != ClaimStatus::Success && !given_up {
                    v.push(format!(
                        "S3: {date} ended {:?} with {} of {} attempts (retry at {:?}, holder {}, error {:?})",
                        c.status, c.attempts, plan.max_attempts, c.retry_at, c.holder, c.error
                    ));
                }
            }
        }
    }
}

/// S4.
fn no_busy_loop(o: &Observed, v: &mut Vec<String>) {
    for life in &o.lives {
        let wakes: Vec<i64> = life
            .log
            .lines()
            .iter()
            .filter(|l| l["fields"]["message"] == "scheduler woke")
            .filter_map(|l| {
                let t = chrono::DateTime::parse_from_rfc3339(l["timestamp"].as_str()?).ok()?;
                Some(o.time.virtual_at(t.timestamp_millis() as f64))
            })
            .collect();
        for (i, t) in wakes.iter().enumerate() {
            let within = wakes[i..]
                .iter()
                .take_while(|x| **x < t + 3_600_000)
                .count();
            if within > 64 {
                v.push(format!(
                    "S4: process {} woke its scheduler {within} times within an hour",
                    life.id
                ));
                break;
            }
        }
    }
}

/// S5.
fn successes_complete(o: &Observed, v: &mut Vec<String>) {
    // key → when the source got it (its LastModified); key → when DataSync first copied it.
    let mut written: HashMap<&str, i64> = HashMap::new();
    let mut copied: HashMap<&str, i64> = HashMap::new();
    for j in &o.journal {
        let key = j["key"].as_str().unwrap_or("");
        let at = j["at_ms"].as_i64().unwrap_or(0);
        if j["bucket"] == o.source.as_str() && j["change"] == "put" {
            written.insert(key, j["modified_ms"].as_i64().unwrap_or(0));
        } else if j["actor"] == "datasync" && j["change"] == "put" {
            copied.entry(key).or_insert(at);
        }
    }
    for (date, claim) in &o.claims {
        let Some(c) = claim.as_ref().filter(|c| c.status == ClaimStatus::Success) else {
            continue;
        };
        match &c.verification {
            Some(ver)
                if ver.counts.missing == 0
                    && ver.counts.size_mismatched == 0
                    && ver.counts.late == 0 => {}
            other => v.push(format!(
                "S5: {date} is a success without a complete verification: {:?}",
                other.as_ref().map(|x| x.counts)
            )),
        }
        // Each partition pattern with the latest launch of the executions that covered it.
        let mut launched: HashMap<&str, i64> = HashMap::new();
        for ch in &c.chunks {
            let at = ch
                .launched_at
                .or(ch.started_at)
                .map_or(0, |t| t.timestamp_millis());
            for p in ch.filter.split('|') {
                let e = launched.entry(p).or_insert(at);
                *e = (*e).max(at);
            }
        }
        let success_at = c.updated_at.timestamp_millis() + 2_000;
        for (key, modified) in &written {
            let path = format!("/{key}");
            let Some(launch) = launched
                .iter()
                .filter(|(p, _)| path.starts_with(p.trim_end_matches('*')))
                .map(|(_, at)| *at)
                .max()
            else {
                continue;
            };
            if *modified > launch {
                continue;
            }
            match copied.get(key) {
                Some(at) if *at <= success_at => {}
                other => v.push(format!(
                    "S5: {date} is a success but {key} (written {modified}, before the launch at {launch}) was not in the target by then (copied at {other:?}, success at {})",
                    c.updated_at
                )),
            }
        }
    }
}
