//! Daily partition sync through an existing DataSync task.
//!
//! `plan` is the pure part (dates, patterns, chunking) and `claim` the pure claim state
//! machine; `state` keeps claims in S3, `datasync` calls DataSync, `runner` takes one date from
//! claim to final status, `scheduler` is the daemon task and `manual` the `sync` subcommand.

pub mod claim;
pub mod datasync;
pub mod manual;
pub mod plan;
pub mod runner;
pub mod scheduler;
pub mod state;
