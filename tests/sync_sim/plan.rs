//! What one seed makes (pure): the writer's files (some late, some days late or missing), one
//! or two replicas, their kills, rollouts and outages, manual runs, DataSync and state-bucket
//! fault windows, and the daemon's sync settings.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, NaiveDate, TimeZone, Utc};

use crate::common::rng::Rng;

/// Virtual time runs this much faster than real time (between jumps).
pub const SPEED: f64 = 30.0;
pub const CLAIM_TTL: Duration = Duration::from_secs(1200);
pub const POLL: Duration = Duration::from_secs(10);
/// The schedule fires at 01:00 UTC every day.
pub const FIRE_HOUR: u32 = 1;

#[derive(Debug, Clone)]
pub struct FileWrite {
    pub at: DateTime<Utc>,
    pub key: String,
    pub size: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// SIGKILL the replica's process.
    Kill { replica: usize },
    /// Start the replica again (after a kill or an outage); a new host name, as after a
    /// rollout or on Fargate, or the same one (a container restart).
    Start { replica: usize, new_name: bool },
    /// SIGTERM then start with a new host name: a rollout.
    Rollout { replica: usize },
    /// `sync --date D [--force] --no-wait` from a shell.
    Manual { date: NaiveDate, force: bool },
    /// The shells' runs in flight are killed (the `kubectl exec` session dropped).
    KillManual,
    /// Replaces the DataSync task's faults (the lab's `DataSyncFaults` as JSON).
    DataSyncFaults(serde_json::Value),
    /// Replaces the state bucket's faults (the lab's `FaultConfig` as JSON).
    StateFaults(serde_json::Value),
}

#[derive(Debug, Clone)]
pub struct Step {
    pub at: DateTime<Utc>,
    pub event: Event,
}

#[derive(Debug, Clone)]
pub struct SyncPlan {
    pub seed: u64,
    /// Virtual time when the daemons first start.
    pub start: DateTime<Utc>,
    /// Schedule fires simulated (the last one without disruptions after it).
    pub days: u32,
    /// The last fire, or the end of the last disruption if later.
    pub settled: DateTime<Utc>,
    /// When the simulation stops: every date is final by then.
    pub end: DateTime<Utc>,
    pub projects: Vec<String>,
    pub files: Vec<FileWrite>,
    pub replicas: usize,
    pub steps: Vec<Step>,
    pub retry_interval: Duration,
    pub max_attempts: u32,
    pub task_filter_mode: bool,
    pub timing: serde_json::Value,
    /// When each disruption was under way (kills until the restart, fault windows, outages).
    pub disrupted: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    /// When the state bucket failed requests (claims may not be readable or writable).
    pub state_faults: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

pub fn partition_key(project: &str, date: NaiveDate, name: &str) -> String {
    format!(
        "topics/{project}/year={}/month={}/day={}/{name}",
        date.format("%Y"),
        date.format("%m"),
        date.format("%d")
    )
}

fn fire(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(FIRE_HOUR, 0, 0).unwrap_or_default())
}

fn minutes(rng: &mut Rng, lo: i64, hi: i64) -> Span {
    Span::minutes(lo + rng.below((hi - lo).max(1) as u64) as i64)
}

/// The longest a date may take from its last disruption to its final state: every retry
/// (doubling, at most a day each) plus a claim going stale.
pub fn retry_budget(interval: Duration, max_attempts: u32) -> Duration {
    let mut total = CLAIM_TTL;
    for k in 1..max_attempts {
        total += interval
            .saturating_mul(1 << (k - 1).min(16))
            .min(Duration::from_secs(86_400));
    }
    total
}

impl SyncPlan {
    pub fn new(seed: u64) -> SyncPlan {
        let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let day0 = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default()
            + chrono::Days::new(rng.below(300));
        let start = Utc.from_utc_datetime(&day0.and_hms_opt(0, 30, 0).unwrap_or_default());
        let days = 3 + rng.below(2) as u32;
        let projects: Vec<String> = (0..2 + rng.below(3))
            .map(|i| format!("vehicle-{i:02}"))
            .collect();
        // Short retries, and schedules whose last retries come after the next fire (a day
        // written late, a DataSync outage): then a newer date may succeed first.
        let (retry_interval, max_attempts) = *rng.pick(&[
            (Duration::from_secs(600), 3),
            (Duration::from_secs(1800), 4),
            (Duration::from_secs(7200), 3),
            (Duration::from_secs(3600), 6),
            (Duration::from_secs(14_400), 4),
        ]);
        let files = writer(&mut rng, &projects, day0, days);
        let replicas = 1 + usize::from(rng.chance(0.5));
        let mut plan = SyncPlan {
            seed,
            start,
            days,
            end: start,
            settled: start,
            projects,
            files,
            replicas,
            steps: Vec::new(),
            retry_interval,
            max_attempts,
            task_filter_mode: rng.chance(0.3),
            timing: serde_json::json!({
                "launch_s": 5.0, "prepare_s": 10.0,
                "transfer_s": [20.0, 30.0 + rng.below(150) as f64], "verify_s": 10.0,
            }),
            disrupted: Vec::new(),
            state_faults: Vec::new(),
        };
        // Disruptions on every day but the last; the last day shows the system settles.
        for d in 0..days.saturating_sub(1) {
            plan.disrupt_day(&mut rng, fire(day0 + chrono::Days::new(u64::from(d))));
        }
        plan.steps.sort_by_key(|s| s.at);
        // Time enough after the last fire and the last disruption for every retry.
        let last_fire = fire(day0 + chrono::Days::new(u64::from(days) - 1));
        let calm = plan
            .disrupted
            .iter()
            .map(|(_, b)| *b)
            .chain([last_fire])
            .max()
            .unwrap_or(last_fire);
        plan.settled = calm;
        plan.end = calm
            + Span::from_std(retry_budget(retry_interval, max_attempts)).unwrap_or_default()
            + Span::hours(2);
        plan
    }

    /// The dates that must be final at the end: the start-up's (the fire before the start)
    /// and those of every fire until things settled (lag 1).
    pub fn dates(&self) -> Vec<NaiveDate> {
        let first = self.start.date_naive() - chrono::Days::new(2);
        let last = self.settled.date_naive()
            - chrono::Days::new(
                if self.settled.time() >= fire(self.settled.date_naive()).time() {
                    1
                } else {
                    2
                },
            );
        first.iter_days().take_while(|d| *d <= last).collect()
    }

    fn disrupt_day(&mut self, rng: &mut Rng, fire: DateTime<Utc>) {
        // Kills while the day's executions run, then a restart (often as a new pod).
        for _ in 0..rng.below(3) {
            let replica = rng.below(self.replicas as u64) as usize;
            let at = fire + Span::seconds(rng.below(600) as i64);
            let back = at + minutes(rng, 0, 25);
            self.push(at, Event::Kill { replica });
            self.push(
                back,
                Event::Start {
                    replica,
                    new_name: rng.chance(0.7),
                },
            );
            self.disrupted.push((at, back));
        }
        if rng.chance(0.3) {
            let at = fire + minutes(rng, 0, 15);
            self.push(
                at,
                Event::Rollout {
                    replica: rng.below(self.replicas as u64) as usize,
                },
            );
            self.disrupted.push((at, at + Span::minutes(1)));
        }
        // Someone re-syncs a recent date by hand, and now and then the session drops with
        // the run half done: its claim is left running by a holder that is gone.
        if rng.chance(0.3) {
            let date = fire.date_naive() - chrono::Days::new(1 + rng.below(3));
            let at = fire + minutes(rng, 0, 600);
            self.push(
                at,
                Event::Manual {
                    date,
                    force: rng.chance(0.6),
                },
            );
            let mut until = at + Span::minutes(1);
            if rng.chance(0.5) {
                until = at + Span::seconds(20 + rng.below(200) as i64);
                self.push(until, Event::KillManual);
            }
            self.disrupted.push((at, until));
        }
        // A DataSync fault window: lost or late answers to StartTaskExecution, executions
        // ending in ERROR, failing reads.
        if rng.chance(0.6) {
            let from = fire - Span::minutes(5);
            let to = fire + minutes(rng, 10, 240);
            let p = |rng: &mut Rng, hi: u64| rng.below(hi + 1) as f64 / 100.0;
            let faults = serde_json::json!({
                "seed": rng.next_u64() >> 1,
                "start_error": p(rng, 20), "start_lost": p(rng, 50),
                "start_slow": p(rng, 30), "start_slow_ms": 2500,
                "exec_error": p(rng, 40), "read_error": p(rng, 15),
            });
            self.push(from, Event::DataSyncFaults(faults));
            self.push(to, Event::DataSyncFaults(serde_json::json!({})));
            self.disrupted.push((from, to));
        }
        // Claim writes that take effect and answer 500, and slow answers (client timeouts).
        if rng.chance(0.4) {
            let from = fire - Span::minutes(5);
            let to = fire + minutes(rng, 10, 120);
            let faults = serde_json::json!({
                "seed": rng.next_u64() >> 1,
                "error_after": rng.below(40) as f64 / 100.0,
                "error": rng.below(10) as f64 / 100.0,
                "spike": rng.below(10) as f64 / 100.0, "spike_ms": 2500,
            });
            self.push(from, Event::StateFaults(faults));
            self.push(to, Event::StateFaults(serde_json::json!({})));
            self.disrupted.push((from, to));
            self.state_faults.push((from, to));
        }
        // Everything down across the next fire or two: the dates it missed are caught up
        // after, by two replicas at once if there are two.
        if rng.chance(0.25) {
            let at = fire + minutes(rng, 30, 300);
            let back = at + Span::hours(24 * (1 + rng.below(2) as i64)) + minutes(rng, 0, 300);
            for replica in 0..self.replicas {
                self.push(at, Event::Kill { replica });
                self.push(
                    back + Span::seconds(replica as i64),
                    Event::Start {
                        replica,
                        new_name: true,
                    },
                );
            }
            self.disrupted.push((at, back));
        }
    }

    fn push(&mut self, at: DateTime<Utc>, event: Event) {
        self.steps.push(Step { at, event });
    }

    /// Whether the state bucket failed requests at some time between `from` and `to`.
    pub fn state_faults_between(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
        self.state_faults
            .iter()
            .any(|(a, b)| *a <= to && *b >= from)
    }

    pub fn describe(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "seed {} start {} days {} end {} replicas {} retry_interval {:?} max_attempts {} filter_mode {}",
            self.seed,
            self.start,
            self.days,
            self.end,
            self.replicas,
            self.retry_interval,
            self.max_attempts,
            if self.task_filter_mode {
                "task"
            } else {
                "execution"
            }
        );
        let _ = writeln!(s, "projects {:?} timing {}", self.projects, self.timing);
        let _ = writeln!(s, "steps:");
        for st in &self.steps {
            let _ = writeln!(s, "  {} {:?}", st.at, st.event);
        }
        let _ = writeln!(s, "files: {}", self.files.len());
        for f in &self.files {
            let _ = writeln!(s, "  {} {} ({} bytes)", f.at, f.key, f.size);
        }
        s
    }
}

/// The writer: files of each day in its partition during the day; some a little late (after
/// midnight); some days written hours late (empty at the fire); now and then a day with
/// nothing at all.
fn writer(rng: &mut Rng, projects: &[String], day0: NaiveDate, days: u32) -> Vec<FileWrite> {
    let mut out = Vec::new();
    let mut n = 0;
    for back in 0..u64::from(days) + 3 {
        let date = day0 - chrono::Days::new(3) + chrono::Days::new(back);
        let midnight = Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default());
        if rng.chance(0.1) {
            continue;
        }
        let day_late = rng.chance(0.1);
        for p in projects {
            for _ in 0..1 + rng.below(3) {
                n += 1;
                let at = if day_late {
                    midnight + Span::hours(26) + minutes(rng, 0, 480)
                } else {
                    midnight + Span::seconds(rng.below(86_000) as i64)
                };
                out.push(FileWrite {
                    at,
                    key: partition_key(p, date, &format!("{p}+0+{n:010}.json")),
                    size: 10 + rng.below(200) as usize,
                });
            }
            if rng.chance(0.15) {
                n += 1;
                out.push(FileWrite {
                    at: midnight + Span::hours(24) + minutes(rng, 0, 180),
                    key: partition_key(p, date, &format!("{p}+1+{n:010}.json")),
                    size: 10 + rng.below(200) as usize,
                });
            }
        }
    }
    out.sort_by_key(|f| f.at);
    out
}

/// The schedule's last fire at or before `now`.
pub fn last_fire_before(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = fire(now.date_naive());
    if today <= now {
        today
    } else {
        today - Span::days(1)
    }
}
