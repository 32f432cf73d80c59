//! Daily partition sync through an existing DataSync task.
//!
//! The pure parts: `plan` (dates, patterns, chunking), `claim` (the claim state machine and
//! retry times) and `tasklock` (who may run the task now). `state` keeps claims and the task
//! lock in S3. `runner` takes one date from its claim to its final status, with `execution`
//! (starting, adopting and following DataSync executions) and `verification` (comparing the
//! partitions, follow-ups). `scheduler` is the daemon task and `manual` the `sync` and
//! `verify` commands.

pub mod claim;
pub mod events;
pub mod execution;
pub mod hold;
pub mod manual;
pub mod outcome;
pub mod plan;
pub mod runner;
pub mod scheduler;
pub mod state;
pub mod tasklock;
pub mod verification;
pub mod watch;
