//! Faults the simulation injects into the S3 side: errors before or after a request does its
//! work, listing pages that say "truncated" without saying where to go on, short pages,
//! latency spikes and slow keys. Each probability is drawn per request from a seeded
//! generator. Configurations are per set of buckets, so simulations running side by side on
//! one lab each have their own.

use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What `POST /_lab/faults` sets; every probability is between 0 and 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Seeds the generator, so a run can be replayed.
    pub seed: u64,
    /// Buckets the faults apply to; empty means every bucket. Setting a configuration
    /// replaces the ones that name any of the same buckets.
    pub buckets: Vec<String>,
    /// A request fails with 500 InternalError before doing anything.
    pub error: f64,
    /// A request fails with 503 SlowDown before doing anything.
    pub slow_down: f64,
    /// A put or delete does its work, then answers 500 InternalError.
    pub error_after: f64,
    /// A listing page that has more after it says truncated, without a next marker.
    pub truncate: f64,
    /// Listing pages hold at most this many entries (0: as asked, at most 1,000).
    pub page: usize,
    /// A request's answer waits `spike_ms` more.
    pub spike: f64,
    pub spike_ms: u64,
    /// Requests whose key (or listing prefix) starts with `prefix` are always answered `ms`
    /// later (the work is done on arrival: a listing reads the state it arrived to).
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

/// What one request gets: an error instead of its work, and a delay before its answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Drawn {
    pub fault: Option<Before>,
    pub delay: Option<Duration>,
}

#[derive(Debug, Default)]
pub struct Faults {
    /// Each configuration with its generator state.
    rules: Mutex<Vec<(FaultConfig, u64)>>,
}

fn next(x: &mut u64) -> f64 {
    // xorshift64*
    *x ^= *x >> 12;
    *x ^= *x << 25;
    *x ^= *x >> 27;
    let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
    r as f64 / (1u64 << 53) as f64
}

impl Faults {
    /// Sets `cfg` for its buckets (an empty configuration with buckets clears them).
    pub fn set(&self, cfg: FaultConfig) {
        let seed = cfg.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        rules.retain(|(r, _)| {
            !(cfg.buckets.is_empty() && r.buckets.is_empty()
                || r.buckets.iter().any(|b| cfg.buckets.contains(b)))
        });
        rules.push((cfg, seed));
    }

    /// Draws for a request on `bucket`, with the configuration that names it (else the one
    /// for every bucket).
    fn with<T>(&self, bucket: &str, f: impl FnOnce(&FaultConfig, &mut u64) -> T) -> Option<T> {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let i = rules
            .iter()
            .position(|(c, _)| c.buckets.iter().any(|b| b == bucket))
            .or_else(|| rules.iter().position(|(c, _)| c.buckets.is_empty()))?;
        let (cfg, x) = &mut rules[i];
        Some(f(cfg, x))
    }

    /// The error (if any) and the answer's delay for a request on `subject` (a key, or a
    /// listing's prefix) in `bucket`.
    pub fn draw(&self, bucket: &str, subject: &str) -> Drawn {
        self.with(bucket, |cfg, x| {
            let slow: u64 = cfg
                .slow
                .iter()
                .filter(|s| subject.starts_with(&s.prefix))
                .map(|s| s.ms)
                .sum();
            let spike = if cfg.spike > 0.0 && next(x) < cfg.spike {
                cfg.spike_ms
            } else {
                0
            };
            let fault = if cfg.error > 0.0 && next(x) < cfg.error {
                Some(Before::InternalError)
            } else if cfg.slow_down > 0.0 && next(x) < cfg.slow_down {
                Some(Before::SlowDown)
            } else {
                None
            };
            Drawn {
                fault,
                delay: (slow + spike > 0).then(|| Duration::from_millis(slow + spike)),
            }
        })
        .unwrap_or_default()
    }

    /// Whether a delete that did its work answers 500.
    pub fn error_after(&self, bucket: &str) -> bool {
        self.with(bucket, |c, x| {
            c.error_after > 0.0 && next(x) < c.error_after
        })
        .unwrap_or(false)
    }

    /// Whether a page with more after it loses its next marker.
    pub fn truncate(&self, bucket: &str) -> bool {
        self.with(bucket, |c, x| c.truncate > 0.0 && next(x) < c.truncate)
            .unwrap_or(false)
    }

    /// The largest page a listing of `bucket` may return.
    pub fn page(&self, bucket: &str, asked: usize) -> usize {
        self.with(bucket, |c, _| match c.page {
            0 => asked,
            p => asked.min(p),
        })
        .unwrap_or(asked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(seed: u64, bucket: &str) -> FaultConfig {
        FaultConfig {
            seed,
            error: 0.25,
            buckets: vec![bucket.into()],
            ..FaultConfig::default()
        }
    }

    #[test]
    fn draws_follow_the_probability_and_the_seed() {
        let f = Faults::default();
        f.set(config(7, "b"));
        let draws: Vec<bool> = (0..4000)
            .map(|_| f.draw("b", "k").fault.is_some())
            .collect();
        let n = draws.iter().filter(|d| **d).count();
        assert!((800..1200).contains(&n), "{n}");
        assert!(
            (0..100).all(|_| f.draw("other", "k").fault.is_none()),
            "only b"
        );
        f.set(config(7, "b"));
        let again: Vec<bool> = (0..4000)
            .map(|_| f.draw("b", "k").fault.is_some())
            .collect();
        assert_eq!(draws, again, "the same seed draws the same faults");
    }

    #[test]
    fn each_set_of_buckets_has_its_own_configuration() {
        let f = Faults::default();
        f.set(FaultConfig {
            buckets: vec!["a".into()],
            page: 3,
            slow: vec![Slow {
                prefix: "s/".into(),
                ms: 40,
            }],
            ..FaultConfig::default()
        });
        f.set(FaultConfig {
            buckets: vec!["b".into()],
            page: 5,
            ..FaultConfig::default()
        });
        assert_eq!((f.page("a", 1000), f.page("b", 1000)), (3, 5));
        assert_eq!(f.page("c", 1000), 1000);
        assert_eq!(f.draw("a", "s/x").delay, Some(Duration::from_millis(40)));
        assert_eq!(f.draw("a", "t/x").delay, None);
        // Clearing a's configuration leaves b's.
        f.set(FaultConfig {
            buckets: vec!["a".into()],
            ..FaultConfig::default()
        });
        assert_eq!((f.page("a", 1000), f.page("b", 1000)), (1000, 5));
    }
}
