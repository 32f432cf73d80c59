//! The checks' verdicts, without I/O: facts in (what AWS answered), a [`Check`] out. One
//! module per area: [`buckets`], [`purge`], [`datasync`], [`state`].

pub mod buckets;
mod check;
pub mod datasync;
pub mod purge;
pub mod state;

pub use buckets::{DeleteProbe, bucket, lifecycle, replication, target_delete, versioning};
pub use check::{CallError, Check};
pub use datasync::{TaskFacts, filters, locations, options, schedule, task};

pub use purge::{Destination, Notification, notification};
pub(crate) use purge::{queue_exists, queue_redrive};
pub use state::{StateProbe, state};

#[cfg(test)]
mod tests;
