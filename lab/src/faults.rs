//! Faults the simulation injects into the S3 side: errors before or after a request does its
//! work, listing pages that say "truncated" without saying where to go on, and latency spikes.
//! Each is a probability per request, drawn from a seeded generator, and limited to the
//! buckets named (all buckets when none is).

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What `POST /_lab/faults` sets; every probability is between 0 and 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Seeds the generator, so a run can be replayed.
    pub seed: u64,
    /// Buckets the faults apply to; empty means every bucket.
    pub buckets: Vec<String>,
    /// A request fails with 500 InternalError before doing anything.
    pub error: f64,
    /// A request fails with 503 SlowDown before doing anything.
    pub slow_down: f64,
    /// A delete does its work, then answers 500 InternalError.
    pub error_after: f64,
    /// A listing page that has more after it says truncated, without a next marker.
    pub truncate: f64,
    /// A request waits `spike_ms` more.
    pub spike: f64,
    pub spike_ms: u64,
    /// Requests whose key (or listing prefix) starts with `prefix` always wait `ms` more.
    pub slow: Vec<Slow>,
}

/// A deterministic delay for requests on keys under `prefix`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Slow {
    pub prefix: String,
    pub ms: u64,
}

/// A fault to apply before a request does its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Before {
    InternalError,
    SlowDown,
}

#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<(FaultConfig, u64)>,
}

impl Faults {
    pub fn set(&self, cfg: FaultConfig) {
        let seed = cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        *self.state.lock().unwrap_or_else(|p| p.into_inner()) = (cfg, seed);
    }

    pub fn config(&self) -> FaultConfig {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// Draws with probability `p(config)` for a request on `bucket`.
    fn roll(&self, bucket: &str, p: impl Fn(&FaultConfig) -> f64) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (cfg, x) = &mut *s;
        let chance = p(cfg);
        if chance <= 0.0 || !(cfg.buckets.is_empty() || cfg.buckets.iter().any(|b| b == bucket)) {
            return false;
        }
        // xorshift64*
        *x ^= *x >> 12;
        *x ^= *x << 25;
        *x ^= *x >> 27;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        (r as f64 / (1u64 << 53) as f64) < chance
    }

    /// The extra wait and the error (if any) for a request on `subject` (a key, or a
    /// listing's prefix) in `bucket`, before its work.
    pub fn before(&self, bucket: &str, subject: &str) -> (Option<Duration>, Option<Before>) {
        let cfg = self.config();
        let slow: u64 = cfg
            .slow
            .iter()
            .filter(|s| subject.starts_with(&s.prefix))
            .map(|s| s.ms)
            .sum();
        let spike = if self.roll(bucket, |c| c.spike) {
            cfg.spike_ms
        } else {
            0
        };
        let wait = (slow + spike > 0).then(|| Duration::from_millis(slow + spike));
        let fault = if self.roll(bucket, |c| c.error) {
            Some(Before::InternalError)
        } else if self.roll(bucket, |c| c.slow_down) {
            Some(Before::SlowDown)
        } else {
            None
        };
        (wait, fault)
    }

    /// Whether a delete that did its work answers 500.
    pub fn error_after(&self, bucket: &str) -> bool {
        self.roll(bucket, |c| c.error_after)
    }

    /// Whether a page with more after it loses its next marker.
    pub fn truncate(&self, bucket: &str) -> bool {
        self.roll(bucket, |c| c.truncate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_follow_the_probability_and_the_seed() {
        let f = Faults::default();
        f.set(FaultConfig {
            seed: 7,
            error: 0.25,
            buckets: vec!["b".into()],
            ..FaultConfig::default()
        });
        let draws: Vec<bool> = (0..4000).map(|_| f.before("b", "k").1.is_some()).collect();
        let n = draws.iter().filter(|d| **d).count();
        assert!((800..1200).contains(&n), "{n}");
        assert!(
            (0..100).all(|_| f.before("other", "k").1.is_none()),
            "only b"
        );
        f.set(FaultConfig {
            seed: 7,
            error: 0.25,
            buckets: vec!["b".into()],
            ..FaultConfig::default()
        });
        let again: Vec<bool> = (0..4000).map(|_| f.before("b", "k").1.is_some()).collect();
        assert_eq!(draws, again, "the same seed draws the same faults");
    }
}
