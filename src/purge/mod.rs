//! Permanent-delete propagation: when a key is permanently gone from the versioned source,
//! purge the target's versions and delete markers of exactly that key.
//!
//! - [`event`]: parsing message bodies (pure);
//! - [`decide`]: the decision, from both sides' current listings (pure);
//! - [`exact_key`]: collecting exactly one key's entries from listing pages (pure);
//! - [`coalesce`]: which keys share one range listing, and each key's entries from its pages
//!   (pure);
//! - [`lister`]: the listing task (rounds, range or per-key listings, both sides at once);
//! - [`delete`]: the only deletes, batched and audited ([`audit`]: the audit line);
//! - [`purger`]: one key from listing to deletion; [`outcome`]: what became of it;
//! - [`consumer`]: the SQS pipeline that drives it.

pub mod audit;
pub mod coalesce;
pub mod consumer;
pub mod decide;
pub mod delete;
pub mod event;
pub mod exact_key;
pub mod lister;
pub mod outcome;
pub mod purger;

pub use outcome::{KeyOutcome, PurgeError};
pub use purger::{ManualResult, Purger};
