//! The translation of AWS's answers (SDK shapes) into the facts the verdicts take.

use aws_sdk_datasync::types::ScheduleStatus;
use aws_sdk_s3::types::{Event, FilterRuleName};

use super::eval::{CallError, Destination, Notification, TaskFacts};
use crate::aws::AwsError;
use crate::aws::s3::{DeleteReport, Entry};

impl From<AwsError> for CallError {
    fn from(e: AwsError) -> Self {
        CallError {
            kind: e.kind,
            code: e.code.as_deref().map(str::to_string),
            bucket_region: e.bucket_region.as_deref().map(str::to_string),
            line: e.to_string(),
        }
    }
}

pub(crate) fn notifications(
    out: &aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput,
) -> (Vec<Notification>, bool) {
    // S3 answers `Prefix`, the SDK's enum and the emulator say `prefix`.
    let filter = |f: Option<&aws_sdk_s3::types::NotificationConfigurationFilter>,
                  name: FilterRuleName| {
        f.and_then(|f| f.key())
            .map(|k| k.filter_rules())
            .unwrap_or_default()
            .iter()
            .find(|r| {
                r.name()
                    .is_some_and(|n| n.as_str().eq_ignore_ascii_case(name.as_str()))
            })
            .and_then(|r| r.value().map(str::to_string))
    };
    let events = |e: &[Event]| e.iter().map(|e| e.as_str().to_string()).collect::<Vec<_>>();
    let mut v = Vec::new();
    for q in out.queue_configurations() {
        v.push(Notification {
            destination: Destination::Queue,
            arn: q.queue_arn().to_string(),
            id: q.id().map(str::to_string),
            events: events(q.events()),
            prefix: filter(q.filter(), FilterRuleName::Prefix),
            suffix: filter(q.filter(), FilterRuleName::Suffix),
        });
    }
    for t in out.topic_configurations() {
        v.push(Notification {
            destination: Destination::Topic,
            arn: t.topic_arn().to_string(),
            id: t.id().map(str::to_string),
            events: events(t.events()),
            prefix: filter(t.filter(), FilterRuleName::Prefix),
            suffix: filter(t.filter(), FilterRuleName::Suffix),
        });
    }
    for l in out.lambda_function_configurations() {
        v.push(Notification {
            destination: Destination::Lambda,
            arn: l.lambda_function_arn().to_string(),
            id: l.id().map(str::to_string),
            events: events(l.events()),
            prefix: filter(l.filter(), FilterRuleName::Prefix),
            suffix: filter(l.filter(), FilterRuleName::Suffix),
        });
    }
    (v, out.event_bridge_configuration().is_some())
}

pub(crate) fn task_facts(
    d: &aws_sdk_datasync::operation::describe_task::DescribeTaskOutput,
) -> TaskFacts {
    let rules = |r: &[aws_sdk_datasync::types::FilterRule]| {
        r.iter()
            .filter_map(|f| f.value().map(str::to_string))
            .filter(|v| !v.is_empty())
            .collect::<Vec<_>>()
    };
    let o = d.options();
    let mut options = Vec::new();
    if let Some(o) = o {
        let mut add = |name: &str, v: Option<&str>| {
            if let Some(v) = v {
                options.push(format!("{name}={v}"));
            }
        };
        add("VerifyMode", o.verify_mode().map(|v| v.as_str()));
        add("OverwriteMode", o.overwrite_mode().map(|v| v.as_str()));
        add(
            "PreserveDeletedFiles",
            o.preserve_deleted_files().map(|v| v.as_str()),
        );
        add("ObjectTags", o.object_tags().map(|v| v.as_str()));
        add("LogLevel", o.log_level().map(|v| v.as_str()));
    }
    TaskFacts {
        status: d.status().map(|s| s.as_str().to_string()),
        source_location: d.source_location_arn().map(str::to_string),
        destination_location: d.destination_location_arn().map(str::to_string),
        schedule: d
            .schedule()
            .map(|s| s.schedule_expression().to_string())
            .filter(|s| !s.is_empty()),
        schedule_enabled: d
            .schedule()
            .and_then(|s| s.status())
            .map(|s| *s == ScheduleStatus::Enabled),
        includes: rules(d.includes()),
        excludes: rules(d.excludes()),
        transfer_mode: o
            .and_then(|o| o.transfer_mode())
            .map(|m| m.as_str().to_string()),
        options,
    }
}

/// A DeleteObjects answer for the probe's one entry: deleted (`None`), or refused with its
/// code and message; an entry named neither way is not a pass.
pub(crate) fn delete_answer(report: &DeleteReport, entry: &Entry) -> Option<(String, String)> {
    let ours = |k: &str, v: &str| k == entry.key && v == entry.version_id;
    if report.deleted.iter().any(|(k, v)| ours(k, v)) {
        return None;
    }
    Some(
        match report.errors.iter().find(|e| ours(&e.key, &e.version_id)) {
            Some(e) => (e.code.clone(), e.message.clone()),
            None => (
                "Unconfirmed".into(),
                "the answer named the entry neither deleted nor failed".into(),
            ),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::s3::EntryError;

    #[test]
    fn only_the_probes_own_entry_deleted_is_a_pass() {
        let entry = Entry {
            key: "p/.s3-reconciler-probe/x".into(),
            version_id: "null".into(),
            delete_marker: false,
            last_modified: None,
        };
        let deleted = |k: &str| DeleteReport {
            deleted: vec![(k.into(), "null".into())],
            errors: Vec::new(),
        };
        assert_eq!(delete_answer(&deleted(&entry.key), &entry), None);
        let other = delete_answer(&deleted("p/.s3-reconciler-probe/x.bak"), &entry);
        assert_eq!(other.map(|(c, _)| c).as_deref(), Some("Unconfirmed"));
        let refused = DeleteReport {
            deleted: Vec::new(),
            errors: vec![EntryError {
                key: entry.key.clone(),
                version_id: "null".into(),
                code: "AccessDenied".into(),
                message: "Access Denied".into(),
            }],
        };
        assert_eq!(
            delete_answer(&refused, &entry),
            Some(("AccessDenied".into(), "Access Denied".into()))
        );
    }
}
