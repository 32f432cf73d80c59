//! Typed metric families. A labelled family is built with its label's whole value set and
//! registers every series at once, so it cannot exist without them: dashboards and alerts see
//! zeros from the start, never gaps. Every family goes through a [`Registrar`], which keeps
//! the names it registered (the test that every family shows at start reads them).

use std::marker::PhantomData;

use prometheus::core::Collector;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::labels::Label;

/// Registers families in one registry and remembers their names.
pub(crate) struct Registrar<'r> {
    registry: &'r Registry,
    /// Families whose series all exist from the start.
    pub(crate) dense: Vec<String>,
}

impl<'r> Registrar<'r> {
    pub(crate) fn new(registry: &'r Registry) -> Self {
        Registrar {
            registry,
            dense: Vec::new(),
        }
    }

    fn add<C: Collector + Clone + 'static>(
        &mut self,
        name: &str,
        c: C,
        dense: bool,
    ) -> Result<C, prometheus::Error> {
        self.registry.register(Box::new(c.clone()))?;
        if dense {
            self.dense.push(name.to_string());
        }
        Ok(c)
    }

    /// A family built by its group, whose every series the group registers at once.
    pub(crate) fn dense<C: Collector + Clone + 'static>(
        &mut self,
        name: &str,
        c: C,
    ) -> Result<C, prometheus::Error> {
        self.add(name, c, true)
    }

    pub(crate) fn counter(
        &mut self,
        name: &str,
        help: &str,
    ) -> Result<IntCounter, prometheus::Error> {
        self.add(name, IntCounter::new(name, help)?, true)
    }

    pub(crate) fn gauge(&mut self, name: &str, help: &str) -> Result<IntGauge, prometheus::Error> {
        self.add(name, IntGauge::new(name, help)?, true)
    }

    pub(crate) fn histogram(
        &mut self,
        name: &str,
        help: &str,
        buckets: &[f64],
    ) -> Result<Histogram, prometheus::Error> {
        let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets.to_vec()))?;
        self.add(name, h, true)
    }

    /// A counter per value of `L`, every one registered at 0.
    pub(crate) fn counters<L: Label>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
    ) -> Result<Counters<L>, prometheus::Error> {
        let vec = self.add(
            name,
            IntCounterVec::new(Opts::new(name, help), &[label])?,
            true,
        )?;
        for l in L::ALL {
            vec.with_label_values(&[l.label()]);
        }
        Ok(Counters {
            vec,
            _label: PhantomData,
        })
    }

    /// A gauge per value of `L`, every one registered at 0.
    pub(crate) fn gauges<L: Label>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
    ) -> Result<Gauges<L>, prometheus::Error> {
        self.gauges_with(name, help, label, true)
    }

    /// A gauge per value of `L`, a series appearing only once set: for a family whose absent
    /// series mean something (a disabled task has no readiness).
    pub(crate) fn sparse_gauges<L: Label>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
    ) -> Result<Gauges<L>, prometheus::Error> {
        self.gauges_with(name, help, label, false)
    }

    fn gauges_with<L: Label>(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        dense: bool,
    ) -> Result<Gauges<L>, prometheus::Error> {
        let vec = self.add(
            name,
            IntGaugeVec::new(Opts::new(name, help), &[label])?,
            dense,
        )?;
        if dense {
            for l in L::ALL {
                vec.with_label_values(&[l.label()]);
            }
        }
        Ok(Gauges {
            vec,
            _label: PhantomData,
        })
    }

    /// A gauge per pair of values of `A` and `B`, a series appearing only once set (a
    /// one-hot status per check, say, where zeros for a check that never ran would mislead).
    pub(crate) fn sparse_gauges2<A: Label, B: Label>(
        &mut self,
        name: &str,
        help: &str,
        labels: [&str; 2],
    ) -> Result<Gauges2<A, B>, prometheus::Error> {
        let vec = self.add(
            name,
            IntGaugeVec::new(Opts::new(name, help), &labels)?,
            false,
        )?;
        Ok(Gauges2 {
            vec,
            _labels: PhantomData,
        })
    }
}

/// Counters labelled by one fixed set.
#[derive(Clone)]
pub struct Counters<L> {
    vec: IntCounterVec,
    _label: PhantomData<L>,
}

impl<L: Label> Counters<L> {
    pub(crate) fn inc_by(&self, l: L, n: u64) {
        self.vec.with_label_values(&[l.label()]).inc_by(n);
    }

    pub(crate) fn inc(&self, l: L) {
        self.inc_by(l, 1);
    }

    pub fn get(&self, l: L) -> u64 {
        self.vec.with_label_values(&[l.label()]).get()
    }
}

/// Gauges labelled by one fixed set.
#[derive(Clone)]
pub struct Gauges<L> {
    vec: IntGaugeVec,
    _label: PhantomData<L>,
}

impl<L: Label> Gauges<L> {
    pub(crate) fn set(&self, l: L, v: i64) {
        self.vec.with_label_values(&[l.label()]).set(v);
    }

    pub fn get(&self, l: L) -> i64 {
        self.vec.with_label_values(&[l.label()]).get()
    }
}

/// Gauges labelled by two fixed sets.
#[derive(Clone)]
pub struct Gauges2<A, B> {
    vec: IntGaugeVec,
    _labels: PhantomData<(A, B)>,
}

impl<A: Label, B: Label> Gauges2<A, B> {
    pub(crate) fn set(&self, a: A, b: B, v: i64) {
        self.vec.with_label_values(&[a.label(), b.label()]).set(v);
    }

    pub fn get(&self, a: A, b: B) -> i64 {
        self.vec.with_label_values(&[a.label(), b.label()]).get()
    }
}

/// Adds to a gauge on creation and takes it back on drop, so an early return or a panic
/// cannot leave the gauge drifting.
pub(crate) struct GaugeGuard {
    gauge: IntGauge,
    n: i64,
}

impl GaugeGuard {
    pub(crate) fn new(gauge: &IntGauge, n: i64) -> Self {
        gauge.add(n);
        GaugeGuard {
            gauge: gauge.clone(),
            n,
        }
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.gauge.sub(self.n);
    }
}
