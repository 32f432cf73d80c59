//! How far a sweep run has come, shared by its shard walks: shards done, running, held by
//! other replicas and left, keys scanned and orphans found, the rate and an estimate of the
//! time left. `/status` shows it, and `s3-reconciler sweep` draws it on a terminal; both
//! render a [`Snapshot`], which is plain data.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

/// The live counters (relaxed atomics: a snapshot may be a count behind).
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    total: AtomicU64,
    done: AtomicU64,
    /// Done by this process in this run (the rate's base).
    finished_here: AtomicU64,
    running: AtomicU64,
    elsewhere: AtomicU64,
    scanned: AtomicU64,
    orphans: AtomicU64,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            started: Instant::now(),
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            finished_here: AtomicU64::new(0),
            running: AtomicU64::new(0),
            elsewhere: AtomicU64::new(0),
            scanned: AtomicU64::new(0),
            orphans: AtomicU64::new(0),
        }
    }
}

/// How a shard's turn in this process ended, for the counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShardEnd {
    /// Walked to its end here.
    Finished,
    /// Found completed in this run already.
    AlreadyDone,
    /// Another replica holds it.
    Elsewhere,
    /// Left for a later run or another replica (interrupted, failed, lost lease).
    Left,
}

impl Progress {
    pub(crate) fn shards(&self, n: usize) {
        self.total.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn shard_started(&self) {
        self.running.fetch_add(1, Ordering::Relaxed);
    }

    /// `walked`: the shard was started with [`Progress::shard_started`].
    pub(crate) fn shard_ended(&self, end: ShardEnd, walked: bool) {
        if walked {
            self.running.fetch_sub(1, Ordering::Relaxed);
        }
        let counter = match end {
            ShardEnd::Finished => {
                self.finished_here.fetch_add(1, Ordering::Relaxed);
                &self.done
            }
            ShardEnd::AlreadyDone => &self.done,
            ShardEnd::Elsewhere => &self.elsewhere,
            ShardEnd::Left => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn scanned(&self, keys: u64) {
        self.scanned.fetch_add(keys, Ordering::Relaxed);
    }

    pub(crate) fn orphan(&self) {
        self.orphans.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> Snapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot::new(
            Counts {
                total: get(&self.total),
                done: get(&self.done),
                finished_here: get(&self.finished_here),
                running: get(&self.running),
                elsewhere: get(&self.elsewhere),
                scanned: get(&self.scanned),
                orphans: get(&self.orphans),
            },
            self.started.elapsed(),
        )
    }
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub done: u64,
    pub finished_here: u64,
    pub running: u64,
    pub elsewhere: u64,
    pub scanned: u64,
    pub orphans: u64,
}

/// A run's progress at one moment, as `/status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    pub shards_total: u64,
    pub shards_done: u64,
    pub shards_running: u64,
    /// Held by other replicas.
    pub shards_elsewhere: u64,
    pub shards_remaining: u64,
    /// Keys scanned by this process (a key on both sides counts once per side).
    pub keys_scanned: u64,
    pub orphans: u64,
    pub elapsed_seconds: f64,
    pub keys_per_second: f64,
    /// At this process's rate of finishing shards; none before it has finished one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eta_seconds: Option<f64>,
}

impl Snapshot {
    pub fn new(c: Counts, elapsed: Duration) -> Snapshot {
        let secs = elapsed.as_secs_f64();
        let remaining = c.total.saturating_sub(c.done + c.running + c.elsewhere);
        let eta = (c.finished_here > 0 && secs > 0.0)
            .then(|| (remaining + c.running) as f64 * secs / c.finished_here as f64);
        Snapshot {
            shards_total: c.total,
            shards_done: c.done,
            shards_running: c.running,
            shards_elsewhere: c.elsewhere,
            shards_remaining: remaining,
            keys_scanned: c.scanned,
            orphans: c.orphans,
            elapsed_seconds: secs,
            keys_per_second: if secs > 0.0 {
                c.scanned as f64 / secs
            } else {
                0.0
            },
            eta_seconds: eta,
        }
    }

    /// One line for a terminal, after the bar.
    pub fn render(&self) -> String {
        let mut line = format!(
            "{}/{} shards, {} running",
            self.shards_done, self.shards_total, self.shards_running
        );
        if self.shards_elsewhere > 0 {
            line.push_str(&format!(", {} on other replicas", self.shards_elsewhere));
        }
        line.push_str(&format!(
            " | {} keys scanned, {} orphans | {} keys/s",
            grouped(self.keys_scanned),
            grouped(self.orphans),
            grouped(self.keys_per_second.round() as u64)
        ));
        if let Some(eta) = self.eta_seconds {
            let eta = Duration::from_secs(eta.round() as u64);
            line.push_str(&format!(" | ETA {}", humantime::format_duration(eta)));
        }
        line
    }
}

/// `1234567` as `1,234,567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_shards_keys_orphans_rate_and_eta() {
        let c = Counts {
            total: 16,
            done: 6,
            finished_here: 4,
            running: 4,
            elsewhere: 2,
            scanned: 1_234_567,
            orphans: 12,
        };
        let s = Snapshot::new(c, Duration::from_secs(40));
        // 4 remaining + 4 running at 4 shards per 40 s.
        assert_eq!(s.shards_remaining, 4);
        assert_eq!(s.eta_seconds, Some(80.0));
        assert_eq!(
            s.render(),
            "6/16 shards, 4 running, 2 on other replicas | 1,234,567 keys scanned, 12 orphans \
             | 30,864 keys/s | ETA 1m 20s"
        );
    }

    #[test]
    fn no_eta_before_a_shard_is_finished_here() {
        let c = Counts {
            total: 3,
            running: 3,
            scanned: 999,
            ..Counts::default()
        };
        let s = Snapshot::new(c, Duration::from_secs(1));
        assert_eq!(s.eta_seconds, None);
        assert_eq!(
            s.render(),
            "0/3 shards, 3 running | 999 keys scanned, 0 orphans | 999 keys/s"
        );
        let zero = Snapshot::new(Counts::default(), Duration::ZERO);
        assert_eq!((zero.keys_per_second, zero.eta_seconds), (0.0, None));
    }

    #[test]
    fn counters_follow_each_shards_end() {
        let p = Progress::default();
        p.shards(5);
        for end in [ShardEnd::Finished, ShardEnd::Left] {
            p.shard_started();
            p.shard_ended(end, true);
        }
        p.shard_ended(ShardEnd::AlreadyDone, false);
        p.shard_ended(ShardEnd::Elsewhere, false);
        p.scanned(10);
        p.orphan();
        let s = p.snapshot();
        assert_eq!(
            (
                s.shards_done,
                s.shards_running,
                s.shards_elsewhere,
                s.shards_remaining
            ),
            (2, 0, 1, 2)
        );
        assert_eq!((s.keys_scanned, s.orphans), (10, 1));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(1_000_000), "1,000,000");
    }
}
