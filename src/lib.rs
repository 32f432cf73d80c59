//! s3-reconciler: keeps a destination S3 bucket in step with a source bucket where AWS's own
//! tools stop short — daily DataSync partition syncs and permanent-delete propagation.
//!
//! Dependencies flow one way: `main` → [`cli`] → [`app`] → the capabilities ([`sync`],
//! [`verify`], [`purge`], [`sweep`], [`doctor`]) → the leaves ([`context`], [`store`], [`aws`], [`config`], [`health`], [`build_info`],
//! [`metrics`], [`labels`], [`merge`], [`http`], [`shutdown`], [`telemetry`]). `tests/modules.rs` fails the
//! build when a cycle comes back. Decisions (dates, patterns, event parsing, the purge
//! decision, the claim state machine, message settlement) are pure functions, unit-tested
//! without the network.

pub mod app;
pub mod aws;
pub mod build_info;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod doctor;
pub mod health;
pub mod http;
pub mod labels;
pub mod merge;
pub mod metrics;
pub mod purge;
pub mod shutdown;
pub mod store;
pub mod sweep;
pub mod sync;
pub mod telemetry;
pub mod verify;
