//! The latency lab: a loopback server speaking the subset of S3 (REST, through `s3s`), SQS
//! and DataSync (JSON protocols) that s3-reconciler uses, with state in ordered maps, an injected
//! latency per request, and request counts per operation. Benchmark and test support only.

pub mod datasync;
pub mod faults;
pub mod s3;
pub mod server;
pub mod sqs;
pub mod stats;
pub mod store;
