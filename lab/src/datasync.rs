//! A DataSync model with AWS's semantics, in the JSON protocol the SDK speaks
//! (`X-Amz-Target: FmrsService.<Op>`), for the sync simulation: S3 locations, tasks with
//! Includes, and executions that queue behind each other on a task (QUEUED, then LAUNCHING,
//! PREPARING, TRANSFERRING, VERIFYING, then SUCCESS or ERROR), with `StartTime` (when started)
//! and `LaunchTime` (when it left the queue), tags, ListTaskExecutions and cancellation.
//!
//! Time is the lab's clock for the task's source bucket, so a simulation that runs days in
//! minutes sees executions take virtual minutes. Nothing runs in the background: an execution's
//! phases follow from its start, the executions queued before it and its drawn durations, and
//! are worked out whenever someone looks. Its copy happens as of the moment its transfer
//! began: every matching object's version current then is copied to the destination unless the
//! destination already holds the same bytes (TransferMode CHANGED).
//!
//! Admin endpoints (for the simulation):
//! - `POST /_lab/datasync/task` `{"source_bucket", "dest_bucket", "timing", "faults"}` creates
//!   a task and its locations, or `{"task_arn", "faults"}` replaces a task's faults;
//! - `POST /_lab/datasync/executions` `{"task_arn"}`: every execution with its times (virtual
//!   milliseconds), tags, Includes, outcome and copies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::stats::Stats;
use crate::store::Store;

const REGION: &str = "us-east-1";
const ACCOUNT: &str = "123456789012";

/// How long an execution's phases last, in virtual seconds; the transfer is drawn per
/// execution between `transfer_s[0]` and `transfer_s[1]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Timing {
    pub launch_s: f64,
    pub prepare_s: f64,
    pub transfer_s: [f64; 2],
    pub verify_s: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            launch_s: 20.0,
            prepare_s: 30.0,
            transfer_s: [60.0, 300.0],
            verify_s: 30.0,
        }
    }
}

/// Faults of one task's API and executions; probabilities between 0 and 1.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DataSyncFaults {
    pub seed: u64,
    /// StartTaskExecution fails with 500 before doing anything.
    pub start_error: f64,
    /// StartTaskExecution starts the execution, then answers 500.
    pub start_lost: f64,
    /// StartTaskExecution starts the execution, then answers this much later (real
    /// milliseconds: past the client's timeout, the answer is lost).
    pub start_slow: f64,
    pub start_slow_ms: u64,
    /// An execution ends in ERROR during its transfer.
    pub exec_error: f64,
    /// DescribeTask, DescribeTaskExecution, ListTaskExecutions, ListTagsForResource fail
    /// with 500.
    pub read_error: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum Phase {
    Queued,
    Launching,
    Preparing,
    Transferring,
    Verifying,
    Success,
    Error,
}

#[derive(Debug, Clone)]
struct Location {
    bucket: String,
    /// Always starts and ends with `/`.
    subdir: String,
}

#[derive(Debug)]
struct Task {
    name: String,
    source: String,
    dest: String,
    options: Value,
    includes: Vec<Value>,
    excludes: Vec<Value>,
    /// Execution ARNs in start order.
    executions: Vec<String>,
    timing: Timing,
    faults: DataSyncFaults,
    rng: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Copied {
    key: String,
    size: usize,
}

#[derive(Debug)]
struct Exec {
    arn: String,
    task: String,
    /// The Includes value it runs with (its override, else the task's when started).
    includes: String,
    tags: Vec<(String, String)>,
    start_ms: i64,
    /// Drawn at start: phase lengths in ms, and whether it fails.
    phases_ms: [i64; 4],
    fails: bool,
    cancel_ms: Option<i64>,
    /// Worked out as time passes.
    launch_ms: Option<i64>,
    end_ms: Option<i64>,
    phase: Phase,
    copied: Option<Vec<Copied>>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct State {
    seq: u64,
    locations: HashMap<String, Location>,
    tasks: HashMap<String, Task>,
    execs: HashMap<String, Exec>,
}

/// A failed call, as DataSync's JSON protocol reports it.
#[derive(Debug)]
pub struct DsError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl DsError {
    fn invalid(message: impl Into<String>) -> DsError {
        DsError {
            status: 400,
            code: "InvalidRequestException",
            message: message.into(),
        }
    }

    fn internal() -> DsError {
        DsError {
            status: 500,
            code: "InternalException",
            message: "An internal error occurred in the DataSync service.".into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"__type": self.code, "message": self.message})
    }
}

/// What a call answers: its JSON, or an error; and how long to hold the answer back.
pub struct Answer {
    pub result: Result<Value, DsError>,
    pub delay: Option<Duration>,
}

impl From<Result<Value, DsError>> for Answer {
    fn from(result: Result<Value, DsError>) -> Self {
        Answer {
            result,
            delay: None,
        }
    }
}

fn next(x: &mut u64) -> f64 {
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
    r as f64 / (1u64 << 53) as f64
}

fn draw(x: &mut u64, p: f64) -> bool {
    p > 0.0 && next(x) < p
}

fn str_field<'a>(input: &'a Value, name: &str) -> Result<&'a str, DsError> {
    input[name]
        .as_str()
        .ok_or_else(|| DsError::invalid(format!("{name} is required")))
}

/// The single SIMPLE_PATTERN value of a filter list (DataSync takes exactly one rule).
fn filter_value(rules: &Value) -> Result<Option<String>, DsError> {
    let Some(list) = rules.as_array() else {
        return Ok(None);
    };
    match list.as_slice() {
        [] => Ok(None),
        [one] => {
            if one["FilterType"].as_str() != Some("SIMPLE_PATTERN") {
                return Err(DsError::invalid("FilterType must be SIMPLE_PATTERN"));
            }
            let v = one["Value"].as_str().unwrap_or_default();
            if v.len() > 102_400 {
                return Err(DsError::invalid(
                    "a filter value is at most 102,400 characters",
                ));
            }
            Ok(Some(v.to_string()))
        }
        _ => Err(DsError::invalid("only one filter rule is accepted")),
    }
}

/// Whether `path` (`/`-rooted, relative to the location) is selected by an Includes value
/// (`|`-separated patterns; `*` only at the end, matching anything after).
pub fn included(filter: &str, path: &str) -> bool {
    filter.split('|').any(|p| match p.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => path == p || path.starts_with(&format!("{}/", p.trim_end_matches('/'))),
    })
}

fn hex17(n: u64) -> String {
    format!("{n:017x}")
}

fn epoch_s(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

#[derive(Default)]
pub struct DataSync {
    state: Mutex<State>,
}

impl DataSync {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serves one call.
    pub fn call(&self, op: &str, input: Value, store: &Arc<Store>, stats: &Stats) -> Answer {
        stats.count(&format!("datasync:{op}"));
        match op {
            "CreateLocationS3" => self.create_location(&input).into(),
            "DescribeLocationS3" => self.describe_location(&input).into(),
            "CreateTask" => self.create_task(&input).into(),
            "UpdateTask" => self.update_task(&input).into(),
            "StartTaskExecution" => self.start(&input, store),
            "CancelTaskExecution" => self.cancel(&input, store).into(),
            "DescribeTask"
            | "DescribeTaskExecution"
            | "ListTaskExecutions"
            | "ListTagsForResource" => self.read(op, &input, store).into(),
            _ => Answer::from(Err(DsError::invalid(format!(
                "the lab does not model DataSync's {op}"
            )))),
        }
    }

    fn create_location(&self, input: &Value) -> Result<Value, DsError> {
        let bucket_arn = str_field(input, "S3BucketArn")?;
        let bucket = bucket_arn
            .strip_prefix("arn:aws:s3:::")
            .ok_or_else(|| DsError::invalid("S3BucketArn must be arn:aws:s3:::<bucket>"))?;
        let sub = input["Subdirectory"].as_str().unwrap_or("/");
        let subdir = format!("/{}/", sub.trim_matches('/')).replace("//", "/");
        let mut s = self.lock();
        s.seq += 1;
        let arn = format!(
            "arn:aws:datasync:{REGION}:{ACCOUNT}:location/loc-{}",
            hex17(s.seq)
        );
        s.locations.insert(
            arn.clone(),
            Location {
                bucket: bucket.to_string(),
                subdir,
            },
        );
        Ok(json!({"LocationArn": arn}))
    }

    fn describe_location(&self, input: &Value) -> Result<Value, DsError> {
        let arn = str_field(input, "LocationArn")?;
        let s = self.lock();
        let l = s
            .locations
            .get(arn)
            .ok_or_else(|| DsError::invalid(format!("location {arn} not found")))?;
        Ok(json!({
            "LocationArn": arn,
            "LocationUri": format!("s3://{}{}", l.bucket, l.subdir),
            "S3Config": {"BucketAccessRoleArn": format!("arn:aws:iam::{ACCOUNT}:role/lab")},
        }))
    }

    fn create_task(&self, input: &Value) -> Result<Value, DsError> {
        let source = str_field(input, "SourceLocationArn")?.to_string();
        let dest = str_field(input, "DestinationLocationArn")?.to_string();
        let includes = filter_value(&input["Includes"])?;
        let mut s = self.lock();
        for l in [&source, &dest] {
            if !s.locations.contains_key(l) {
                return Err(DsError::invalid(format!("location {l} not found")));
            }
        }
        s.seq += 1;
        let arn = format!(
            "arn:aws:datasync:{REGION}:{ACCOUNT}:task/task-{}",
            hex17(s.seq)
        );
        let seed = s.seq;
        s.tasks.insert(
            arn.clone(),
            Task {
                name: input["Name"].as_str().unwrap_or_default().to_string(),
                source,
                dest,
                options: input["Options"].clone(),
                includes: includes
                    .map(|v| vec![json!({"FilterType": "SIMPLE_PATTERN", "Value": v})])
                    .unwrap_or_default(),
                excludes: input["Excludes"].as_array().cloned().unwrap_or_default(),
                executions: Vec::new(),
                timing: Timing::default(),
                faults: DataSyncFaults::default(),
                rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            },
        );
        Ok(json!({"TaskArn": arn}))
    }

    fn update_task(&self, input: &Value) -> Result<Value, DsError> {
        let arn = str_field(input, "TaskArn")?;
        let includes = filter_value(&input["Includes"])?;
        let mut s = self.lock();
        let t = s
            .tasks
            .get_mut(arn)
            .ok_or_else(|| DsError::invalid(format!("task {arn} not found")))?;
        if input.get("Includes").is_some() {
            t.includes = includes
                .map(|v| vec![json!({"FilterType": "SIMPLE_PATTERN", "Value": v})])
                .unwrap_or_default();
        }
        if let Some(e) = input["Excludes"].as_array() {
            t.excludes = e.clone();
        }
        if input["Options"].is_object() {
            t.options = input["Options"].clone();
        }
        Ok(json!({}))
    }

    /// The virtual time of a task, in milliseconds: its source bucket's clock.
    fn now_ms(s: &State, task: &str, store: &Store) -> i64 {
        let bucket = s
            .tasks
            .get(task)
            .and_then(|t| s.locations.get(&t.source))
            .map(|l| l.bucket.clone())
            .unwrap_or_default();
        (store.now_in(&bucket).unix_timestamp_nanos() / 1_000_000) as i64
    }

    fn start(&self, input: &Value, store: &Arc<Store>) -> Answer {
        let mut s = self.lock();
        let Ok(task_arn) = str_field(input, "TaskArn") else {
            return Err(DsError::invalid("TaskArn is required")).into();
        };
        let override_includes = match filter_value(&input["Includes"]) {
            Ok(v) => v,
            Err(e) => return Err(e).into(),
        };
        let now = Self::now_ms(&s, task_arn, store);
        let state = &mut *s;
        let Some(task) = state.tasks.get_mut(task_arn) else {
            return Err(DsError::invalid(format!("task {task_arn} not found"))).into();
        };
        let f = task.faults.clone();
        if draw(&mut task.rng, f.start_error) {
            return Err(DsError::internal()).into();
        }
        let includes = override_includes.unwrap_or_else(|| {
            task.includes
                .first()
                .and_then(|r| r["Value"].as_str())
                .unwrap_or_default()
                .to_string()
        });
        let tags = input["Tags"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .map(|t| {
                        (
                            t["Key"].as_str().unwrap_or_default().to_string(),
                            t["Value"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let tm = task.timing.clone();
        let transfer =
            tm.transfer_s[0] + next(&mut task.rng) * (tm.transfer_s[1] - tm.transfer_s[0]).max(0.0);
        let ms = |s: f64| (s * 1000.0) as i64;
        let phases_ms = [
            ms(tm.launch_s),
            ms(tm.prepare_s),
            ms(transfer),
            ms(tm.verify_s),
        ];
        let fails = draw(&mut task.rng, f.exec_error);
        let lost = draw(&mut task.rng, f.start_lost);
        let slow = draw(&mut task.rng, f.start_slow);
        state.seq += 1;
        let arn = format!("{task_arn}/execution/exec-{}", hex17(state.seq));
        task.executions.push(arn.clone());
        state.execs.insert(
            arn.clone(),
            Exec {
                arn: arn.clone(),
                task: task_arn.to_string(),
                includes,
                tags,
                start_ms: now,
                phases_ms,
                fails,
                cancel_ms: None,
                launch_ms: None,
                end_ms: None,
                phase: Phase::Queued,
                copied: None,
                bytes: 0,
            },
        );
        if lost {
            return Err(DsError::internal()).into();
        }
        Answer {
            result: Ok(json!({"TaskExecutionArn": arn})),
            delay: slow.then(|| Duration::from_millis(f.start_slow_ms)),
        }
    }

    fn cancel(&self, input: &Value, store: &Arc<Store>) -> Result<Value, DsError> {
        let arn = str_field(input, "TaskExecutionArn")?;
        let mut s = self.lock();
        let task = s
            .execs
            .get(arn)
            .map(|e| e.task.clone())
            .ok_or_else(|| DsError::invalid(format!("execution {arn} not found")))?;
        Self::advance(&mut s, &task, store);
        let now = Self::now_ms(&s, &task, store);
        let e = s
            .execs
            .get_mut(arn)
            .ok_or_else(|| DsError::invalid(format!("execution {arn} not found")))?;
        if e.end_ms.is_some() {
            return Err(DsError::invalid(format!(
                "execution {arn} has already ended"
            )));
        }
        e.cancel_ms = Some(now);
        Self::advance(&mut s, &task, store);
        Ok(json!({}))
    }

    fn read(&self, op: &str, input: &Value, store: &Arc<Store>) -> Result<Value, DsError> {
        let mut s = self.lock();
        let arn = match op {
            "DescribeTask" | "ListTaskExecutions" => str_field(input, "TaskArn")?,
            "DescribeTaskExecution" => str_field(input, "TaskExecutionArn")?,
            _ => str_field(input, "ResourceArn")?,
        };
        let task = arn.split("/execution/").next().unwrap_or(arn).to_string();
        if !s.tasks.contains_key(&task) {
            return Err(DsError::invalid(format!("{arn} not found")));
        }
        let state = &mut *s;
        if let Some(t) = state.tasks.get_mut(&task) {
            let p = t.faults.read_error;
            if draw(&mut t.rng, p) {
                return Err(DsError::internal());
            }
        }
        Self::advance(&mut s, &task, store);
        match op {
            "DescribeTask" => Ok(Self::describe_task(&s, &task)),
            "ListTaskExecutions" => Ok(Self::list(&s, &task, input)),
            "DescribeTaskExecution" => {
                let e = s
                    .execs
                    .get(arn)
                    .ok_or_else(|| DsError::invalid(format!("execution {arn} not found")))?;
                Ok(Self::describe_exec(e))
            }
            _ => {
                let tags: Vec<Value> = match s.execs.get(arn) {
                    Some(e) => e
                        .tags
                        .iter()
                        .map(|(k, v)| json!({"Key": k, "Value": v}))
                        .collect(),
                    None => Vec::new(),
                };
                Ok(json!({"Tags": tags}))
            }
        }
    }

    fn describe_task(s: &State, task: &str) -> Value {
        let Some(t) = s.tasks.get(task) else {
            return json!({});
        };
        let current = t
            .executions
            .iter()
            .filter_map(|a| s.execs.get(a))
            .find(|e| e.end_ms.is_none());
        let mut out = json!({
            "TaskArn": task,
            "Name": t.name,
            "Status": if current.is_some() { "RUNNING" } else { "AVAILABLE" },
            "SourceLocationArn": t.source,
            "DestinationLocationArn": t.dest,
            "Options": t.options,
            "Includes": t.includes,
            "Excludes": t.excludes,
        });
        if let Some(e) = current {
            out["CurrentTaskExecutionArn"] = json!(e.arn);
        }
        out
    }

    fn list(s: &State, task: &str, input: &Value) -> Value {
        let Some(t) = s.tasks.get(task) else {
            return json!({"TaskExecutions": []});
        };
        let max = input["MaxResults"].as_u64().unwrap_or(100).clamp(1, 100) as usize;
        let from: usize = input["NextToken"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        // Newest first, as the console shows them.
        let all: Vec<&String> = t.executions.iter().rev().collect();
        let page: Vec<Value> = all
            .iter()
            .skip(from)
            .take(max)
            .filter_map(|a| s.execs.get(*a))
            .map(|e| json!({"TaskExecutionArn": e.arn, "Status": e.phase}))
            .collect();
        let mut out = json!({"TaskExecutions": page});
        if from + max < all.len() {
            out["NextToken"] = json!((from + max).to_string());
        }
        out
    }

    fn describe_exec(e: &Exec) -> Value {
        let mut out = json!({
            "TaskExecutionArn": e.arn,
            "Status": e.phase,
            "StartTime": epoch_s(e.start_ms),
            "Includes": [{"FilterType": "SIMPLE_PATTERN", "Value": e.includes}],
            "FilesTransferred": e.copied.as_ref().map_or(0, Vec::len),
            "BytesTransferred": e.bytes,
        });
        if let Some(l) = e.launch_ms {
            out["LaunchTime"] = json!(epoch_s(l));
        }
        if e.phase == Phase::Error {
            let (code, detail) = if e.cancel_ms.is_some() {
                ("OpCancelled", "the execution was cancelled")
            } else {
                ("S3AccessDenied", "the lab drew an error for this execution")
            };
            out["Result"] = json!({"ErrorCode": code, "ErrorDetail": detail});
        }
        out
    }

    /// Works out the phases of `task`'s executions up to now: each leaves the queue when the
    /// one before it ended, and copies as of its transfer's start.
    fn advance(s: &mut State, task: &str, store: &Store) {
        let now = Self::now_ms(s, task, store);
        let Some(t) = s.tasks.get(task) else { return };
        let (Some(src), Some(dst)) = (
            s.locations.get(&t.source).cloned(),
            s.locations.get(&t.dest).cloned(),
        ) else {
            return;
        };
        let order = t.executions.clone();
        let mut free_at = i64::MIN;
        for arn in order {
            let Some(e) = s.execs.get_mut(&arn) else {
                continue;
            };
            if let Some(end) = e.end_ms {
                free_at = free_at.max(end);
                continue;
            }
            let launch = e.start_ms.max(free_at);
            let [l, p, x, v] = e.phases_ms;
            let transfer_at = launch + l + p;
            let cancel = e.cancel_ms.unwrap_or(i64::MAX);
            // Cancelled while still queued: it never launches.
            if cancel < launch {
                e.phase = Phase::Error;
                e.end_ms = Some(cancel);
                free_at = free_at.max(cancel);
                continue;
            }
            let failed_at = transfer_at + x / 2;
            let end = if e.fails {
                failed_at
            } else {
                transfer_at + x + v
            };
            let end = end.min(cancel);
            // Whatever comes after this one waits for its (projected) end.
            free_at = end;
            if now < launch {
                e.phase = Phase::Queued;
                continue;
            }
            e.launch_ms = Some(launch);
            if now >= transfer_at && cancel > transfer_at && e.copied.is_none() {
                let copied = if e.fails {
                    Vec::new()
                } else {
                    copy(store, &src, &dst, &e.includes, transfer_at)
                };
                e.bytes = copied.iter().map(|c| c.size).sum();
                e.copied = Some(copied);
            }
            if now >= end {
                e.end_ms = Some(end);
                e.phase = if e.fails || end == cancel {
                    Phase::Error
                } else {
                    Phase::Success
                };
                continue;
            }
            e.phase = if now < launch + l {
                Phase::Launching
            } else if now < transfer_at {
                Phase::Preparing
            } else if now < transfer_at + x {
                Phase::Transferring
            } else {
                Phase::Verifying
            };
        }
    }

    /// The admin endpoints.
    pub fn admin(&self, path: &str, input: Value, store: &Arc<Store>) -> Result<Value, String> {
        match path {
            "/_lab/datasync/task" => self.admin_task(input, store),
            "/_lab/datasync/executions" => {
                let task = input["task_arn"].as_str().unwrap_or_default().to_string();
                let mut s = self.lock();
                if !s.tasks.contains_key(&task) {
                    return Err(format!("task {task} not found"));
                }
                Self::advance(&mut s, &task, store);
                let t = &s.tasks[&task];
                let list: Vec<Value> = t
                    .executions
                    .iter()
                    .filter_map(|a| s.execs.get(a))
                    .map(|e| {
                        json!({
                            "arn": e.arn, "status": e.phase, "includes": e.includes,
                            "tags": e.tags.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
                            "start_ms": e.start_ms, "launch_ms": e.launch_ms, "end_ms": e.end_ms,
                            "cancelled": e.cancel_ms.is_some(), "failed": e.fails,
                            "copied": e.copied,
                        })
                    })
                    .collect();
                Ok(json!(list))
            }
            _ => Err(format!("no such lab endpoint {path}")),
        }
    }

    fn admin_task(&self, input: Value, _store: &Arc<Store>) -> Result<Value, String> {
        let faults: Option<DataSyncFaults> = match input.get("faults") {
            Some(f) => Some(serde_json::from_value(f.clone()).map_err(|e| e.to_string())?),
            None => None,
        };
        if let Some(task) = input["task_arn"].as_str() {
            let mut s = self.lock();
            let t = s
                .tasks
                .get_mut(task)
                .ok_or_else(|| format!("task {task} not found"))?;
            if let Some(f) = faults {
                t.rng = f.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                t.faults = f;
            }
            return Ok(json!({"task_arn": task}));
        }
        let timing: Timing = match input.get("timing") {
            Some(t) => serde_json::from_value(t.clone()).map_err(|e| e.to_string())?,
            None => Timing::default(),
        };
        let loc = |bucket: &str| -> Result<String, String> {
            let v = self
                .create_location(&json!({"S3BucketArn": format!("arn:aws:s3:::{bucket}")}))
                .map_err(|e| e.message)?;
            Ok(v["LocationArn"].as_str().unwrap_or_default().to_string())
        };
        let src = loc(input["source_bucket"].as_str().unwrap_or_default())?;
        let dst = loc(input["dest_bucket"].as_str().unwrap_or_default())?;
        let created = self
            .create_task(
                &json!({"SourceLocationArn": src, "DestinationLocationArn": dst,
                                 "Name": input["name"].as_str().unwrap_or("lab"),
                                 "Options": {"TransferMode": "CHANGED", "OverwriteMode": "ALWAYS",
                                             "VerifyMode": "ONLY_FILES_TRANSFERRED"}}),
            )
            .map_err(|e| e.message)?;
        let arn = created["TaskArn"].as_str().unwrap_or_default().to_string();
        let mut s = self.lock();
        if let Some(t) = s.tasks.get_mut(&arn) {
            t.timing = timing;
            if let Some(f) = faults {
                t.rng = f.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                t.faults = f;
            }
        }
        Ok(json!({"task_arn": arn, "source_location_arn": src, "destination_location_arn": dst}))
    }
}

/// Copies every object under `src` selected by `filter`, as it was at `at_ms`, to `dst`,
/// unless `dst` holds the same bytes already.
fn copy(store: &Store, src: &Location, dst: &Location, filter: &str, at_ms: i64) -> Vec<Copied> {
    let src_prefix = src.subdir.trim_start_matches('/');
    let dst_prefix = dst.subdir.trim_start_matches('/');
    let wanted = store.current_as_of(&src.bucket, src_prefix, at_ms, |key| {
        let rel = &key[src_prefix.len()..];
        included(filter, &format!("/{rel}"))
    });
    let mut out = Vec::new();
    for (key, body) in wanted {
        let rel = &key[src_prefix.len()..];
        let to = format!("{dst_prefix}{rel}");
        let same = store
            .get(&dst.bucket, &to, None)
            .is_ok_and(|v| v.body == body);
        if same {
            continue;
        }
        let size = body.len();
        if store.copy_in(&dst.bucket, &to, body).is_ok() {
            out.push(Copied { key: to, size });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn includes_select_by_prefix_or_whole_path() {
        let f = "/topics/a/year=2024/month=03/day=05/*|/topics/b/x.json";
        assert!(included(f, "/topics/a/year=2024/month=03/day=05/a+0.json"));
        assert!(!included(f, "/topics/a/year=2024/month=03/day=06/a+0.json"));
        assert!(included(f, "/topics/b/x.json"));
        assert!(!included(f, "/topics/b/x.json.bak"));
        assert!(!included(
            f,
            "/topics/ab/year=2024/month=03/day=05/a+0.json"
        ));
    }
}
