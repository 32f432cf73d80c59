//! Every AWS call the wrappers in `aws/` make, how long it took, and every one that failed:
//! one family per concern, labelled by service and operation (`AwsOp`), so a dashboard reads
//! rate, errors and latency of a call from the same label set.

use std::future::Future;

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};

use super::family::Registrar;
use crate::labels::{AwsOp, ErrorKind};

/// Call latencies, from a LAN round trip to the SDK's operation timeout.
const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Clone)]
pub struct AwsMetrics {
    requests: IntCounterVec,
    errors: IntCounterVec,
    duration: HistogramVec,
}

impl AwsMetrics {
    pub(crate) fn register(r: &mut Registrar) -> Result<Self, prometheus::Error> {
        let requests = r.dense(
            "aws_requests_total",
            IntCounterVec::new(
                Opts::new(
                    "aws_requests_total",
                    "AWS API calls made, by service and operation (the SDK's retries of one call count once).",
                ),
                &["service", "operation"],
            )?,
        )?;
        let errors = r.dense(
            "aws_request_errors_total",
            IntCounterVec::new(
                Opts::new(
                    "aws_request_errors_total",
                    "AWS API calls that failed after the SDK's retries, by service, operation and error kind.",
                ),
                &["service", "operation", "kind"],
            )?,
        )?;
        let duration = r.dense(
            "aws_request_duration_seconds",
            HistogramVec::new(
                HistogramOpts::new(
                    "aws_request_duration_seconds",
                    "Wall time of an AWS API call, the SDK's retries included, by service and operation.",
                )
                .buckets(DURATION_BUCKETS.to_vec()),
                &["service", "operation"],
            )?,
        )?;
        for op in AwsOp::all() {
            let call = call_labels(op);
            requests.with_label_values(&call);
            duration.with_label_values(&call);
            for kind in ErrorKind::ALL {
                errors.with_label_values(&[call[0], call[1], kind.label()]);
            }
        }
        Ok(AwsMetrics {
            requests,
            errors,
            duration,
        })
    }

    /// Counts the call `fut` makes and times it until it completes (or is dropped). The SDK's
    /// futures are large: boxed once here, they are not copied again from frame to frame.
    pub(crate) fn call<F: Future>(&self, op: AwsOp, fut: F) -> impl Future<Output = F::Output> {
        let call = call_labels(op);
        self.requests.with_label_values(&call).inc();
        let timer = self.duration.with_label_values(&call).start_timer();
        let fut = Box::pin(fut);
        async move {
            let out = fut.await;
            timer.observe_duration();
            out
        }
    }

    pub(crate) fn call_failed(&self, op: AwsOp, kind: ErrorKind) {
        let [service, operation] = call_labels(op);
        self.errors
            .with_label_values(&[service, operation, kind.label()])
            .inc();
    }

    /// Calls made of `op`.
    pub fn calls(&self, op: impl Into<AwsOp>) -> u64 {
        self.requests
            .with_label_values(&call_labels(op.into()))
            .get()
    }

    /// Calls of `op` that failed with `kind`.
    pub fn failures(&self, op: impl Into<AwsOp>, kind: ErrorKind) -> u64 {
        let [service, operation] = call_labels(op.into());
        self.errors
            .with_label_values(&[service, operation, kind.label()])
            .get()
    }

    /// Calls of `op` timed so far.
    pub fn timed_calls(&self, op: impl Into<AwsOp>) -> u64 {
        self.duration
            .with_label_values(&call_labels(op.into()))
            .get_sample_count()
    }
}

/// The `service` and `operation` labels of a call, in the families' label order.
fn call_labels(op: AwsOp) -> [&'static str; 2] {
    [op.service().label(), op.operation()]
}
