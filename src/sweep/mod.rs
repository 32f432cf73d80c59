//! The sweep: repairs what delete events missed. It walks the source's and the target's
//! versions under each prefix together, nominates target keys the source no longer backs
//! ([`nominate`]), and decides each one exactly as an event's key is decided, within
//! guardrails ([`sweeper`]; what it reports: [`report`]). One lease per prefix keeps replicas
//! apart and holds the checkpoint an interrupted sweep resumes from ([`lease`], where the walk
//! may resume: [`frontier`]).

pub mod budget;
pub mod frontier;
pub mod lease;
pub mod leasing;
pub mod nominate;
pub mod report;
pub mod scheduler;
pub mod sweeper;
pub mod walk;

pub use lease::RunKind;
pub use report::{OrphanLine, Summary};
pub use sweeper::Sweeper;
