//! The sweep: repairs what delete events missed. It walks the source's and the target's
//! versions under each prefix together, nominates target keys the source no longer backs
//! ([`nominate`]), and decides each one exactly as an event's key is decided, within
//! guardrails ([`sweeper`]; what it reports: [`report`], how far it is: [`progress`]). Each
//! prefix is split into shards, key ranges walked in parallel ([`shard`], [`sharding`]); one
//! lease per shard keeps replicas apart and holds the checkpoint an interrupted walk resumes
//! from ([`lease`], [`leasing`]; where the walk may resume: [`frontier`]).

pub mod budget;
pub mod frontier;
pub mod lease;
pub mod leasing;
pub mod nominate;
pub mod progress;
pub mod report;
pub mod scheduler;
pub mod shard;
pub mod shard_walk;
pub mod sharding;
pub mod sweeper;
pub mod walk;

pub use lease::RunKind;
pub use progress::{Progress, Snapshot};
pub use report::{OnLine, OrphanLine, Summary};
pub use sweeper::Sweeper;
