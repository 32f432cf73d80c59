//! Every AWS call the wrappers in `aws/` make, and every one that failed.

use super::family::{Counters, Counters2, Registrar};
use crate::labels::{DataSyncOp, ErrorKind, S3Op, Service, SqsOp};

#[derive(Clone)]
pub struct AwsMetrics {
    s3: Counters<S3Op>,
    sqs: Counters<SqsOp>,
    datasync: Counters<DataSyncOp>,
    errors: Counters2<Service, ErrorKind>,
}

impl AwsMetrics {
    pub(crate) fn register(r: &mut Registrar) -> Result<Self, prometheus::Error> {
        Ok(AwsMetrics {
            s3: r.counters(
                "s3_requests_total",
                "S3 API calls made, by operation (SDK retries of one call count once).",
                "operation",
            )?,
            sqs: r.counters(
                "sqs_requests_total",
                "SQS API calls made, by operation (SDK retries of one call count once).",
                "operation",
            )?,
            datasync: r.counters(
                "datasync_requests_total",
                "DataSync API calls made, by operation (SDK retries of one call count once).",
                "operation",
            )?,
            errors: r.counters2(
                "aws_errors_total",
                "AWS calls that failed after the SDK's retries, by service and kind.",
                ["service", "kind"],
            )?,
        })
    }

    pub(crate) fn s3_called(&self, op: S3Op) {
        self.s3.inc(op);
    }

    pub(crate) fn sqs_called(&self, op: SqsOp) {
        self.sqs.inc(op);
    }

    pub(crate) fn datasync_called(&self, op: DataSyncOp) {
        self.datasync.inc(op);
    }

    pub(crate) fn call_failed(&self, service: Service, kind: ErrorKind) {
        self.errors.inc(service, kind);
    }

    pub fn s3_calls(&self, op: S3Op) -> u64 {
        self.s3.get(op)
    }

    pub fn sqs_calls(&self, op: SqsOp) -> u64 {
        self.sqs.get(op)
    }

    pub fn datasync_calls(&self, op: DataSyncOp) -> u64 {
        self.datasync.get(op)
    }

    pub fn failures(&self, service: Service, kind: ErrorKind) -> u64 {
        self.errors.get(service, kind)
    }
}
