//! The audit line: the one record of every target deletion, on target `s3_reconciler::audit`.
//! Its fields are a schema people grep and ship to their SIEM, so it is written here and
//! nowhere else: `deleting` (with the request's `batch_id`, before the request is sent), then
//! `delete` or `delete_failed` (with the per-entry error), or `would_delete` in a dry run.

use tracing::{info, warn};

use crate::aws::s3::Entry;

/// Why an entry is being deleted: the event name (`manual`, `sweep`) and what carried it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    /// The event name, `manual` or `sweep`.
    pub reason: String,
    /// The SQS message id, or what started a manual run.
    pub message_id: String,
}

/// What happened to the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuditAction<'a> {
    /// About to be sent in request `batch_id`.
    Deleting { batch_id: &'a str },
    /// Confirmed deleted by request `batch_id`.
    Deleted { batch_id: &'a str },
    /// Not deleted (or not confirmed) by request `batch_id`, with why.
    Failed { batch_id: &'a str, error: &'a str },
    /// A dry run would delete it.
    WouldDelete,
}

/// One audit line for one target entry.
pub(crate) struct AuditLine<'a> {
    pub bucket: &'a str,
    pub entry: &'a Entry,
    pub origin: &'a Origin,
    pub action: AuditAction<'a>,
}

impl AuditLine<'_> {
    pub(crate) fn record(&self) {
        let (bucket, e, o) = (self.bucket, self.entry, self.origin);
        match self.action {
            AuditAction::Deleting { batch_id } => {
                info!(target: "s3_reconciler::audit", action = "deleting", bucket = %bucket, key = %e.key,
                      version_id = %e.version_id, delete_marker = e.delete_marker, reason = %o.reason,
                      message_id = %o.message_id, batch_id, "deleting target entry");
            }
            AuditAction::Deleted { batch_id } => {
                info!(target: "s3_reconciler::audit", action = "delete", bucket = %bucket,
                      key = %e.key, version_id = %e.version_id,
                      delete_marker = e.delete_marker, reason = %o.reason,
                      message_id = %o.message_id, batch_id, "deleted target entry");
            }
            AuditAction::Failed { batch_id, error } => {
                warn!(target: "s3_reconciler::audit", action = "delete_failed", bucket = %bucket,
                      key = %e.key, version_id = %e.version_id, delete_marker = e.delete_marker,
                      reason = %o.reason, message_id = %o.message_id, batch_id, error,
                      "target entry not deleted");
            }
            AuditAction::WouldDelete => {
                info!(target: "s3_reconciler::audit", action = "would_delete", bucket, key = %e.key,
                      version_id = %e.version_id, delete_marker = e.delete_marker,
                      reason = %o.reason, message_id = %o.message_id, dry_run = true,
                      "dry run: target entry would be deleted");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The schema, byte for byte as the daemon's JSON logs carry it (timestamp aside): a
    /// change here breaks every search and alert built on the audit trail.
    #[test]
    fn the_audit_lines_keep_their_schema() {
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        let entry = Entry {
            key: "topics/p/a.json".into(),
            version_id: "v1".into(),
            delete_marker: false,
            last_modified: None,
        };
        let origin = Origin {
            reason: "ObjectRemoved:Delete".into(),
            message_id: "m-1".into(),
        };
        tracing::subscriber::with_default(subscriber, || {
            for action in [
                AuditAction::Deleting { batch_id: "b1" },
                AuditAction::Deleted { batch_id: "b1" },
                AuditAction::Failed {
                    batch_id: "b1",
                    error: "AccessDenied",
                },
                AuditAction::WouldDelete,
            ] {
                AuditLine {
                    bucket: "tgt",
                    entry: &entry,
                    origin: &origin,
                    action,
                }
                .record();
            }
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let common = r#""bucket":"tgt","key":"topics/p/a.json","version_id":"v1","delete_marker":false,"reason":"ObjectRemoved:Delete","message_id":"m-1""#;
        assert_eq!(
            lines,
            vec![
                format!(
                    r#"{{"level":"INFO","message":"deleting target entry","action":"deleting",{common},"batch_id":"b1","target":"s3_reconciler::audit"}}"#
                ),
                format!(
                    r#"{{"level":"INFO","message":"deleted target entry","action":"delete",{common},"batch_id":"b1","target":"s3_reconciler::audit"}}"#
                ),
                format!(
                    r#"{{"level":"WARN","message":"target entry not deleted","action":"delete_failed",{common},"batch_id":"b1","error":"AccessDenied","target":"s3_reconciler::audit"}}"#
                ),
                format!(
                    r#"{{"level":"INFO","message":"dry run: target entry would be deleted","action":"would_delete",{common},"dry_run":true,"target":"s3_reconciler::audit"}}"#
                ),
            ]
        );
    }
}
