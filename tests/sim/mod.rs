//! The randomized simulation: worlds and histories from a seed, played on the lab against
//! the daemon, with faults and kills, judged against the safety invariants.

pub mod check;
#[allow(dead_code)] // the sync simulation uses the rest
pub mod daemon;
pub mod plan;
pub mod run;
