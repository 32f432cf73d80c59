//! The sync simulation: plans from a seed, played on the lab's DataSync model on a virtual
//! clock, judged against the sync invariants.

pub mod check;
pub mod clock;
pub mod plan;
pub mod run;
