//! The sweep: repairs what delete events missed. It walks the source's and the target's
//! versions under each prefix together, nominates target keys the source no longer backs
//! ([`nominate`]), and decides each one exactly as an event's key is decided, within
//! guardrails ([`run`]). One lease per prefix keeps replicas apart and holds the checkpoint an
//! interrupted sweep resumes from ([`lease`]).

pub mod budget;
pub mod lease;
pub mod nominate;
pub mod run;
pub mod scheduler;
pub mod walk;

pub use lease::RunKind;
pub use run::{OrphanLine, Summary, Sweeper};
