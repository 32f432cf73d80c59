//! The randomized simulation: worlds and histories from a seed, played on the lab against
//! the daemon, with faults and kills, judged against the safety invariants.

pub mod check;
pub mod daemon;
pub mod plan;
pub mod run;
