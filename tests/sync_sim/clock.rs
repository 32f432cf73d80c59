//! Virtual time for the sync simulation: days in minutes. Time runs `speed` times faster than
//! real time and jumps ahead when every daemon is asleep for long (waiting for the next fire,
//! a retry, a claim to go stale), so a simulated day costs only the seconds its work takes.
//! The lab's clock for the seed's buckets (and so its DataSync model) follows the same
//! anchor: `now = at + (real - real_anchor) * speed`.
//!
//! Each process gets its own handle: its sleeps are registered under its id, which tells the
//! harness whether that process is idle (asleep, with nothing to do before its deadline).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use s3_reconciler::clock::Clock;

#[derive(Debug, Clone, Copy)]
struct Anchor {
    real_ms: f64,
    at_ms: f64,
    speed: f64,
}

fn real_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or_default()
}

#[derive(Default)]
struct Sleepers {
    next_id: u64,
    /// (process, sleep id) → deadline in virtual ms.
    deadlines: BTreeMap<(usize, u64), f64>,
}

/// The shared virtual time.
#[derive(Clone)]
pub struct SimTime {
    anchor: Arc<Mutex<Anchor>>,
    /// Every anchor so far: (real ms, virtual ms), to place log lines in virtual time.
    history: Arc<Mutex<Vec<(f64, f64)>>>,
    sleepers: Arc<Mutex<Sleepers>>,
}

impl SimTime {
    pub fn new(at: DateTime<Utc>, speed: f64) -> SimTime {
        let real = real_ms().floor();
        let at_ms = at.timestamp_millis() as f64;
        SimTime {
            anchor: Arc::new(Mutex::new(Anchor {
                real_ms: real,
                at_ms,
                speed,
            })),
            history: Arc::new(Mutex::new(vec![(real, at_ms)])),
            sleepers: Arc::default(),
        }
    }

    /// The virtual time at real time `real_ms` (a log line's timestamp).
    pub fn virtual_at(&self, real_ms: f64) -> i64 {
        let speed = self.speed();
        let h = self.history.lock().unwrap();
        let (r, v) = h
            .iter()
            .rev()
            .find(|(r, _)| *r <= real_ms)
            .copied()
            .unwrap_or(h[0]);
        (v + (real_ms - r) * speed) as i64
    }

    pub fn now_ms(&self) -> i64 {
        let a = *self.anchor.lock().unwrap();
        (a.at_ms + (real_ms() - a.real_ms) * a.speed) as i64
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.now_ms()).unwrap_or_default()
    }

    pub fn speed(&self) -> f64 {
        self.anchor.lock().unwrap().speed
    }

    /// The anchor as the lab's `/_lab/clock` takes it.
    pub fn lab_clock(&self, buckets: &[String]) -> serde_json::Value {
        let a = *self.anchor.lock().unwrap();
        let at = DateTime::from_timestamp_millis(a.at_ms as i64).unwrap_or_default();
        serde_json::json!({
            "at": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "speed": a.speed,
            "real_ms": a.real_ms as u64,
            "buckets": buckets,
        })
    }

    /// Moves time ahead by `by` (a new anchor at this instant); returns the new anchor for
    /// the lab.
    pub fn jump(&self, by: Duration, buckets: &[String]) -> serde_json::Value {
        {
            let mut a = self.anchor.lock().unwrap();
            let real = real_ms();
            let now = a.at_ms + (real - a.real_ms) * a.speed;
            // Whole milliseconds on both sides: the lab takes the anchor in milliseconds.
            *a = Anchor {
                real_ms: real.floor(),
                at_ms: (now + by.as_secs_f64() * 1000.0).floor(),
                speed: a.speed,
            };
            self.history.lock().unwrap().push((a.real_ms, a.at_ms));
        }
        self.lab_clock(buckets)
    }

    /// A clock for process `id`.
    pub fn process(&self, id: usize) -> ProcessClock {
        ProcessClock {
            time: self.clone(),
            id,
        }
    }

    /// When process `id` wakes next, if it is asleep (virtual ms); `None` when it is awake.
    pub fn asleep_until(&self, id: usize) -> Option<i64> {
        let s = self.sleepers.lock().unwrap();
        s.deadlines
            .range((id, 0)..(id, u64::MAX))
            .map(|(_, d)| *d as i64)
            .min()
    }

    /// Forgets a killed process's sleeps (its runtime was dropped mid-sleep).
    pub fn forget(&self, id: usize) {
        let mut s = self.sleepers.lock().unwrap();
        s.deadlines.retain(|(p, _), _| *p != id);
    }
}

/// One process's view of the virtual time.
#[derive(Clone)]
pub struct ProcessClock {
    time: SimTime,
    id: usize,
}

/// Removes a sleep's registration when it ends or is dropped (cancelled by a shutdown, or
/// by a kill).
struct Registered {
    sleepers: Arc<Mutex<Sleepers>>,
    key: (usize, u64),
}

impl Drop for Registered {
    fn drop(&mut self) {
        if let Ok(mut s) = self.sleepers.lock() {
            s.deadlines.remove(&self.key);
        }
    }
}

impl Clock for ProcessClock {
    fn now(&self) -> DateTime<Utc> {
        self.time.now()
    }

    fn sleep(&self, d: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let time = self.time.clone();
        let deadline = time.now_ms() as f64 + d.as_secs_f64() * 1000.0;
        let key = {
            let mut s = time.sleepers.lock().unwrap();
            s.next_id += 1;
            let key = (self.id, s.next_id);
            s.deadlines.insert(key, deadline);
            key
        };
        let registered = Registered {
            sleepers: time.sleepers.clone(),
            key,
        };
        Box::pin(async move {
            let _registered = registered;
            loop {
                let left = deadline - time.now_ms() as f64;
                if left <= 0.0 {
                    return;
                }
                // In slices: a jump ahead ends the sleep early.
                let real = (left / time.speed()).clamp(1.0, 5.0);
                tokio::time::sleep(Duration::from_micros((real * 1000.0) as u64)).await;
            }
        })
    }
}
