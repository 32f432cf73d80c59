//! s3-reconciler: keeps a destination S3 bucket in step with a source bucket where AWS's own
//! tools stop short — daily DataSync partition syncs and permanent-delete propagation.
//!
//! Pure logic (date math, pattern rendering, event parsing, purge decisions) lives apart from
//! I/O so it is unit-tested without the network: `sync::plan`, `purge::event`, `purge::decide`.

pub mod app;
pub mod aws;
pub mod cli;
pub mod config;
pub mod health;
pub mod http;
pub mod metrics;
pub mod purge;
pub mod shutdown;
pub mod sync;
pub mod telemetry;
