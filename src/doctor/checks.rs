//! Which checks run (pure): each check's dependents (the tasks its failure makes not ready),
//! whether it applies to the configuration, and which facts it needs gathered.

use crate::config::{Config, PurgeMode, SweepAction};
use crate::labels::{CheckId, Task};

/// The tasks a check's failure makes not ready.
pub(crate) fn dependents(check: CheckId, config: &Config) -> &'static [Task] {
    use CheckId::*;
    match check {
        // Deleting is the purge's, and the sweep's only when it purges.
        TargetDelete => match config.sweep.action {
            SweepAction::Purge => &[Task::Purge, Task::Sweep],
            SweepAction::Report => &[Task::Purge],
        },
        SourceBucket | TargetBucket => &[Task::Sync, Task::Purge, Task::Sweep],
        SourceVersioning | TargetVersioning => &[Task::Purge, Task::Sweep],
        SourceNotification | QueueExists | QueueRedrive => &[Task::Purge],
        SourceReplication | TargetLifecycle => &[Task::Purge, Task::Sweep],
        DatasyncTask | DatasyncLocations | DatasyncSchedule | DatasyncFilters | DatasyncOptions => {
            &[Task::Sync]
        }
        StateBucket => &[Task::Sync, Task::Sweep],
    }
}

/// Whether a check means anything in this configuration, whatever the tasks.
fn applies(check: CheckId, config: &Config) -> bool {
    match check {
        CheckId::SourceReplication | CheckId::TargetLifecycle => {
            config.purge.mode == PurgeMode::MirrorVersions
        }
        // A dry run deletes nothing.
        CheckId::TargetDelete => !config.purge.dry_run,
        _ => true,
    }
}

/// The checks the enabled tasks depend on, in a stable order.
pub(crate) fn relevant(config: &Config) -> Vec<CheckId> {
    let enabled = |t: Task| match t {
        Task::Sync => config.sync.enabled,
        Task::Purge => config.purge.enabled,
        Task::Sweep => config.sweep.enabled,
        Task::Preflight => false,
    };
    CheckId::ALL
        .iter()
        .copied()
        .filter(|c| applies(*c, config) && dependents(*c, config).iter().any(|t| enabled(*t)))
        .collect()
}

/// The facts a check's verdict is made from; each is gathered once for every check that
/// needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Facts {
    /// Both buckets listed (and their versioning read, for the versioning checks).
    Buckets,
    /// The source's notifications and the queue's attributes.
    Purge,
    /// The DataSync task and its locations.
    DataSync,
    /// A probe document in the state bucket.
    State,
    /// A delete of a version that does not exist, in the target.
    Delete,
    /// The source's replication and the target's lifecycle.
    Mirror,
}

/// What `check` needs gathered. Every check is listed, so a new one cannot be left out.
pub(crate) fn needs(check: CheckId) -> Facts {
    use CheckId::*;
    match check {
        SourceBucket | TargetBucket | SourceVersioning | TargetVersioning => Facts::Buckets,
        SourceNotification | QueueExists | QueueRedrive => Facts::Purge,
        DatasyncTask | DatasyncLocations | DatasyncSchedule | DatasyncFilters | DatasyncOptions => {
            Facts::DataSync
        }
        StateBucket => Facts::State,
        TargetDelete => Facts::Delete,
        SourceReplication | TargetLifecycle => Facts::Mirror,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks that used to ride on another check of their group being wanted bring
    /// their own facts.
    #[test]
    fn checks_bring_their_own_facts() {
        assert_eq!(needs(CheckId::TargetVersioning), Facts::Buckets);
        assert_eq!(needs(CheckId::QueueRedrive), Facts::Purge);
        assert_eq!(needs(CheckId::SourceNotification), Facts::Purge);
        assert_eq!(needs(CheckId::DatasyncOptions), Facts::DataSync);
        assert_eq!(needs(CheckId::TargetLifecycle), Facts::Mirror);
        assert_eq!(needs(CheckId::TargetDelete), Facts::Delete);
    }

    /// The delete probe gates the purge, and the sweep only when it purges; a dry run has
    /// nothing to prove.
    #[test]
    fn the_delete_probe_gates_what_deletes() {
        let mut c = Config::default();
        c.purge.enabled = true;
        c.sweep.action = SweepAction::Report;
        assert_eq!(dependents(CheckId::TargetDelete, &c), &[Task::Purge]);
        c.sweep.action = SweepAction::Purge;
        assert_eq!(
            dependents(CheckId::TargetDelete, &c),
            &[Task::Purge, Task::Sweep]
        );
        assert!(relevant(&c).contains(&CheckId::TargetDelete));
        c.purge.dry_run = true;
        assert!(!relevant(&c).contains(&CheckId::TargetDelete));
        c.purge.dry_run = false;
        c.purge.enabled = false;
        c.sweep.enabled = true;
        c.sweep.action = SweepAction::Report;
        assert!(!relevant(&c).contains(&CheckId::TargetDelete));
    }
}
