//! Permanent-delete propagation: when a key is permanently gone from the versioned source,
//! purge the target's versions and delete markers of exactly that key.
//!
//! - [`event`]: parsing message bodies (pure);
//! - [`decide`]: the decision, from both sides' current listings (pure);
//! - [`listing`]: exact-key listings; [`delete`]: the only deletes, batched and audited;
//! - [`purger`]: one key from listing to deletion;
//! - [`consumer`]: the SQS pipeline that drives it.

pub mod coalesce;
pub mod consumer;
pub mod decide;
pub mod delete;
pub mod event;
pub mod lister;
pub mod listing;
pub mod purger;

pub use purger::{KeyOutcome, ManualResult, PurgeError, Purger};
