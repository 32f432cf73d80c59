//! Plays one seed's plan on the lab: buckets and a DataSync task on the seed's own virtual
//! clock, the writer's files, one or two daemon replicas killed, restarted, rolled out and
//! taken down, manual runs, fault windows; time jumps ahead whenever every process sleeps.
//! While it plays, the claims are watched for dates left stalled.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use s3_reconciler::clock::SharedClock;
use s3_reconciler::config::{Config, FilterMode, Schedule};
use s3_reconciler::metrics::Metrics;
use s3_reconciler::sync::runner::RunOpts;
use s3_reconciler::sync::state::{Claim, ClaimStatus, StateStore};
use serde_json::{Value, json};

use super::clock::SimTime;
use super::plan::{CLAIM_TTL, Event, POLL, SPEED, SyncPlan};
use crate::common::lab::{self, datasync_task, executions, lab_sync_config};
use crate::common::unique;
use crate::daemon::{Daemon, Life};

/// A date whose claim should have been acted on this long ago, with a replica up all along
/// and no disruption, is stalled.
const SLACK: chrono::Duration = chrono::Duration::minutes(45);
/// Real time a seed may take before it is judged stuck.
const REAL_LIMIT: Duration = Duration::from_secs(420);

/// What a seed left behind, for the checker.
pub struct Observed {
    pub lives: Vec<Life>,
    pub executions: Vec<Value>,
    pub claims: BTreeMap<NaiveDate, Option<Claim>>,
    pub journal: Vec<Value>,
    pub time: SimTime,
    /// Dates found stalled while the plan played.
    pub stalls: Vec<String>,
    pub timed_out: bool,
    pub source: String,
}

struct World {
    src: String,
    tgt: String,
    state: String,
    task: String,
}

fn config(plan: &SyncPlan, w: &World) -> Config {
    let mut c = lab_sync_config(&w.src, &w.tgt, &w.state, &w.task);
    let s = &mut c.sync;
    s.schedule = Schedule::parse("0 0 1 * * *").expect("a schedule");
    s.timezone = chrono_tz::UTC;
    s.lag_days = 1;
    s.lookback_days = 1;
    s.catch_up_days = 3;
    s.poll_interval = POLL;
    s.timeout = Duration::from_secs(3600);
    s.claim_ttl = CLAIM_TTL;
    s.retry_interval = plan.retry_interval;
    s.max_attempts = std::num::NonZeroU32::new(plan.max_attempts).unwrap_or(s.max_attempts);
    s.filter_mode = if plan.task_filter_mode {
        FilterMode::Task
    } else {
        FilterMode::Execution
    };
    s.prefix = "topics/".into();
    c.aws.max_attempts = std::num::NonZeroU32::new(3).unwrap_or(c.aws.max_attempts);
    c.aws.attempt_timeout = Duration::from_secs(1);
    c.aws.operation_timeout = Duration::from_secs(4);
    c.shutdown.grace = Duration::from_secs(5);
    c
}

async fn seed_world(plan: &SyncPlan) -> World {
    let (src, tgt) = (lab::bucket("syncsrc").await, lab::bucket("synctgt").await);
    let state = unique("syncstate");
    lab::admin("bucket", json!({"name": state, "versioned": false})).await;
    lab::admin("journal/watch", json!({"buckets": [src, tgt]})).await;
    // Frozen at the start while the files written before it are seeded.
    let buckets = [src.clone(), tgt.clone(), state.clone()];
    lab::admin(
        "clock",
        json!({"at": plan.start.to_rfc3339(), "speed": 0.0, "buckets": buckets}),
    )
    .await;
    for f in plan.files.iter().filter(|f| f.at <= plan.start) {
        let age = (plan.start - f.at).num_seconds();
        lab::write(
            &src,
            &f.key,
            json!({"body": "x".repeat(f.size), "age_seconds": age}),
        )
        .await;
    }
    let task = datasync_task(&src, &tgt, plan.timing.clone(), json!({})).await;
    World {
        src,
        tgt,
        state,
        task,
    }
}

/// The replicas' processes and everything that ran.
struct Cast {
    cfg: Config,
    time: SimTime,
    slots: Vec<Option<(Daemon, DateTime<Utc>)>>,
    names: Vec<String>,
    manual: Vec<Daemon>,
    lives: Vec<Life>,
    next_id: usize,
    generation: usize,
}

impl Cast {
    fn start(&mut self, replica: usize, new_name: bool) {
        if self.slots[replica].is_some() {
            return;
        }
        if new_name || self.names[replica].is_empty() {
            self.generation += 1;
            self.names[replica] = format!("pod-{replica}-{}", self.generation);
        }
        let mut cfg = self.cfg.clone();
        cfg.state.holder_id = self.names[replica].clone();
        self.next_id += 1;
        let clock = SharedClock::new(self.time.process(self.next_id));
        let d = Daemon::start_on(cfg, self.next_id, clock);
        self.slots[replica] = Some((d, self.time.now()));
    }

    fn kill(&mut self, replica: usize) {
        if let Some((d, _)) = self.slots[replica].take() {
            let id = d.life.id;
            self.lives.push(d.kill());
            self.time.forget(id);
        }
    }

    async fn stop(&mut self, replica: usize) {
        let Some((d, _)) = self.slots[replica].take() else {
            return;
        };
        let id = d.life.id;
        if let Ok(life) = tokio::task::spawn_blocking(move || d.stop()).await {
            self.lives.push(life);
        }
        self.time.forget(id);
    }

    fn manual(&mut self, date: NaiveDate, force: bool) {
        self.next_id += 1;
        let mut cfg = self.cfg.clone();
        cfg.state.holder_id = format!("shell-{}", self.next_id);
        let clock = SharedClock::new(self.time.process(self.next_id));
        let opts = RunOpts { force, wait: false };
        self.manual
            .push(Daemon::manual(cfg, self.next_id, clock, date, opts));
    }

    fn kill_manual(&mut self) {
        for d in std::mem::take(&mut self.manual) {
            let id = d.life.id;
            self.lives.push(d.kill());
            self.time.forget(id);
        }
    }

    /// Collects manual runs that ended.
    fn reap(&mut self) {
        let (done, running): (Vec<Daemon>, Vec<Daemon>) =
            self.manual.drain(..).partition(Daemon::finished);
        self.manual = running;
        self.lives.extend(done.into_iter().map(Daemon::stop));
    }

    /// Every live process is asleep: the earliest wake among them.
    fn all_asleep_until(&self) -> Option<i64> {
        let ids = self
            .slots
            .iter()
            .flatten()
            .filter(|(d, _)| !d.finished())
            .map(|(d, _)| d.life.id)
            .chain(self.manual.iter().map(|d| d.life.id));
        let mut earliest = i64::MAX;
        for id in ids {
            earliest = earliest.min(self.time.asleep_until(id)?);
        }
        Some(earliest)
    }

    /// Since when some replica has been up without interruption (`None`: none is up).
    fn up_since(&self) -> Option<DateTime<Utc>> {
        self.slots
            .iter()
            .flatten()
            .filter(|(d, _)| !d.finished())
            .map(|(_, started)| *started)
            .min()
    }
}

enum Due<'a> {
    Step(&'a Event),
    Write(&'a super::plan::FileWrite),
}

/// Plays the plan and gathers what happened.
pub async fn play(plan: &SyncPlan) -> Observed {
    let w = seed_world(plan).await;
    let cfg = config(plan, &w);
    let buckets = [w.src.clone(), w.tgt.clone(), w.state.clone()];
    let time = SimTime::new(plan.start, SPEED);
    lab::admin("clock", time.lab_clock(&buckets)).await;
    let store = StateStore::new(
        s3_reconciler::aws::Clients::new(&cfg).await.source,
        &w.state,
        &cfg.state.prefix,
        Metrics::new().expect("metrics"),
    );
    let mut cast = Cast {
        cfg,
        time: time.clone(),
        slots: (0..plan.replicas).map(|_| None).collect(),
        names: vec![String::new(); plan.replicas],
        manual: Vec::new(),
        lives: Vec::new(),
        next_id: 0,
        generation: 0,
    };
    for r in 0..plan.replicas {
        cast.start(r, true);
    }
    // Everything that happens at a planned time, in order.
    let mut due: Vec<(DateTime<Utc>, Due)> = plan
        .steps
        .iter()
        .map(|s| (s.at, Due::Step(&s.event)))
        .chain(
            plan.files
                .iter()
                .filter(|f| f.at > plan.start)
                .map(|f| (f.at, Due::Write(f))),
        )
        .collect();
    due.sort_by_key(|(at, _)| *at);
    let mut next = 0;
    let mut stalls: BTreeMap<NaiveDate, String> = BTreeMap::new();
    let mut last_look = plan.start;
    let real_start = Instant::now();
    let mut timed_out = false;
    loop {
        let now = time.now();
        if now >= plan.end {
            break;
        }
        if real_start.elapsed() > REAL_LIMIT {
            timed_out = true;
            break;
        }
        while next < due.len() && due[next].0 <= now {
            match &due[next].1 {
                Due::Write(f) => {
                    lab::write(&w.src, &f.key, json!({"body": "x".repeat(f.size)})).await;
                }
                Due::Step(e) => act(&mut cast, e, &w).await,
            }
            next += 1;
        }
        cast.reap();
        if now - last_look >= chrono::Duration::minutes(10) {
            last_look = now;
            look_for_stalls(plan, &cast, &store, now, &mut stalls).await;
        }
        if let Some(wake) = cast.all_asleep_until() {
            let upcoming = due
                .get(next)
                .map_or(i64::MAX, |(at, _)| at.timestamp_millis());
            let target = wake.min(upcoming).min(plan.end.timestamp_millis());
            let ahead = target - time.now_ms();
            if ahead > 500 {
                let anchor = time.jump(Duration::from_millis(ahead as u64), &buckets);
                lab::admin("clock", anchor).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for r in 0..plan.replicas {
        cast.stop(r).await;
    }
    for d in cast.manual.drain(..) {
        cast.lives.push(d.kill());
    }
    let mut claims = BTreeMap::new();
    for date in plan.dates() {
        claims.insert(date, store.get(date).await.ok().flatten().map(|s| s.value));
    }
    let journal = lab::admin("journal", json!({"since": 0}))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|j| j["bucket"] == w.src.as_str() || j["bucket"] == w.tgt.as_str())
        .collect();
    Observed {
        lives: cast.lives,
        executions: executions(&w.task).await,
        claims,
        journal,
        time,
        stalls: stalls.into_values().collect(),
        timed_out,
        source: w.src,
    }
}

async fn act(cast: &mut Cast, e: &Event, w: &World) {
    match e {
        Event::Kill { replica } => cast.kill(*replica),
        Event::Start { replica, new_name } => cast.start(*replica, *new_name),
        Event::Rollout { replica } => {
            cast.stop(*replica).await;
            cast.start(*replica, true);
        }
        Event::Manual { date, force } => cast.manual(*date, *force),
        Event::KillManual => cast.kill_manual(),
        Event::DataSyncFaults(f) => lab::datasync_faults(&w.task, f.clone()).await,
        Event::StateFaults(f) => {
            let mut f = f.clone();
            f["buckets"] = json!([w.state]);
            lab::admin("faults", f).await;
        }
    }
}

/// Records dates whose claim should have been acted on (a running claim gone stale, a retry
/// or follow-up due) more than [`SLACK`] ago, while a replica was up and nothing disrupted.
async fn look_for_stalls(
    plan: &SyncPlan,
    cast: &Cast,
    store: &StateStore,
    now: DateTime<Utc>,
    stalls: &mut BTreeMap<NaiveDate, String>,
) {
    let ttl = chrono::Duration::from_std(CLAIM_TTL).unwrap_or_default();
    let fired = super::plan::last_fire_before(now);
    let target = fired.date_naive() - chrono::Days::new(1);
    for back in 0..=3 {
        let date = target - chrono::Days::new(back);
        let Ok(Some(c)) = store.get(date).await else {
            continue;
        };
        let c = c.value;
        let due = match c.status {
            ClaimStatus::Running => Some(c.updated_at + ttl),
            ClaimStatus::Late => c.retry_at,
            ClaimStatus::Failed | ClaimStatus::Empty if c.attempts < plan.max_attempts => {
                Some(c.retry_at.unwrap_or(c.updated_at))
            }
            _ => None,
        };
        let Some(due) = due else { continue };
        // Not due before the fire that brought the date into the window, nor before a
        // replica came up.
        let Some(up) = cast.up_since() else { continue };
        let due = due.max(fired).max(up);
        if now - due > SLACK && !plan.state_faults_between(due - ttl, now) {
            stalls.entry(date).or_insert_with(|| {
                format!(
                    "S3: {date} stalled: its claim ({:?}, attempts {}, updated {}, retry at {:?}) was due at {due} and is untouched at {now}",
                    c.status, c.attempts, c.updated_at, c.retry_at
                )
            });
        }
    }
}
