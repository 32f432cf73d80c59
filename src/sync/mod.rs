//! Daily partition sync through an existing DataSync task.
//!
//! `plan` is the pure part (dates, patterns, chunking), `state` the per-date claims in S3,
//! `datasync` the DataSync calls, `runner` one date from claim to final status, `scheduler`
//! the daemon task and `manual` the `sync` subcommand.

pub mod datasync;
pub mod manual;
pub mod plan;
pub mod runner;
pub mod scheduler;
pub mod state;
