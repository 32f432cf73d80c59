use super::*;
use crate::config::{FilterMode, RemovalEventName};
use crate::labels::{CheckId, CheckStatus, ErrorKind};

const Q: &str = "arn:aws:sqs:ap-northeast-2:111111111111:s3-reconciler-permanent-deletes";

fn err(kind: ErrorKind, code: &str) -> CallError {
    CallError {
        kind,
        code: Some(code.into()),
        line: format!("Call x: {kind}: {code}"),
        bucket_region: None,
    }
}

fn queue_notification(arn: &str, events: &[&str], prefix: Option<&str>) -> Notification {
    Notification {
        destination: Destination::Queue,
        arn: arn.into(),
        id: Some("permanent-deletes".into()),
        events: events.iter().map(|e| e.to_string()).collect(),
        prefix: prefix.map(str::to_string),
        suffix: None,
    }
}

fn default_events() -> Vec<RemovalEventName> {
    vec![
        RemovalEventName::ObjectRemovedDelete,
        RemovalEventName::LifecycleExpirationDelete,
    ]
}

#[test]
fn buckets_reachable_missing_denied_or_elsewhere() {
    let ok = bucket(
        CheckId::SourceBucket,
        "b",
        "ap-northeast-2",
        "source",
        Ok(()),
    );
    assert_eq!(ok.status, CheckStatus::Pass);
    let missing = bucket(
        CheckId::SourceBucket,
        "b",
        "ap-northeast-2",
        "source",
        Err(err(ErrorKind::NotFound, "NoSuchBucket")),
    );
    assert_eq!(missing.status, CheckStatus::Fail);
    assert!(missing.detail.contains("does not exist"));
    let mut moved = err(ErrorKind::Invalid, "AuthorizationHeaderMalformed");
    moved.bucket_region = Some("us-east-1".into());
    let moved = bucket(
        CheckId::TargetBucket,
        "b",
        "ap-northeast-2",
        "target",
        Err(moved),
    );
    assert!(moved.detail.contains("us-east-1") && moved.fix.unwrap().contains("target.region"));
    let denied = bucket(
        CheckId::TargetBucket,
        "b",
        "ap-northeast-2",
        "target",
        Err(err(ErrorKind::AccessDenied, "AccessDenied")),
    );
    assert!(denied.fix.unwrap().contains("s3:ListBucketVersions"));
}

#[test]
fn versioning_states() {
    let v = |s: Option<&str>| versioning(CheckId::SourceVersioning, "b", Ok(s.map(str::to_string)));
    assert_eq!(v(Some("Enabled")).status, CheckStatus::Pass);
    assert_eq!(v(Some("Suspended")).status, CheckStatus::Fail);
    let never = v(None);
    assert_eq!(never.status, CheckStatus::Fail);
    assert!(never.detail.contains("never enabled"));
    assert!(
        never
            .fix
            .unwrap()
            .contains("put-bucket-versioning --bucket b")
    );
}

#[test]
fn the_notification_must_reach_our_queue_with_every_event() {
    let events = default_events();
    let n = |configs: Vec<Notification>| {
        notification("src", Ok((configs, false)), Some(Q), &events, &[])
    };
    // Exactly the seeds' stack: both events to our queue.
    let ok = n(vec![queue_notification(
        Q,
        &["s3:ObjectRemoved:Delete", "s3:LifecycleExpiration:Delete"],
        None,
    )]);
    assert_eq!(ok.status, CheckStatus::Pass, "{ok:?}");
    // Wildcards cover.
    assert_eq!(
        n(vec![queue_notification(
            Q,
            &["s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"],
            None
        )])
        .status,
        CheckStatus::Pass
    );
    // Nothing at all.
    let none = n(vec![]);
    assert_eq!(none.status, CheckStatus::Fail);
    assert!(
        none.detail.contains(
            "no notification sends s3:ObjectRemoved:Delete, s3:LifecycleExpiration:Delete"
        )
    );
    // Another queue: named, and a failure.
    let other = "arn:aws:sqs:ap-northeast-2:111111111111:someone-elses";
    let elsewhere = n(vec![queue_notification(
        other,
        &["s3:ObjectRemoved:*"],
        None,
    )]);
    assert_eq!(elsewhere.status, CheckStatus::Fail);
    assert!(elsewhere.detail.contains(other), "{elsewhere:?}");
    // Only one of the two events.
    let half = n(vec![queue_notification(
        Q,
        &["s3:ObjectRemoved:Delete"],
        None,
    )]);
    assert_eq!(half.status, CheckStatus::Fail);
    assert!(
        half.detail.contains("s3:LifecycleExpiration:Delete")
            && !half.detail.contains("s3:ObjectRemoved:Delete,")
    );
    // A delete-marker notification alone is not a permanent delete.
    assert_eq!(
        n(vec![queue_notification(
            Q,
            &[
                "s3:ObjectRemoved:DeleteMarkerCreated",
                "s3:LifecycleExpiration:*"
            ],
            None
        )])
        .status,
        CheckStatus::Fail
    );
}

#[test]
fn the_seed_lambda_left_configured_is_a_warning_naming_it() {
    let lambda = Notification {
        destination: Destination::Lambda,
        arn: "arn:aws:lambda:ap-northeast-2:111111111111:function:purge-target-versions".into(),
        id: Some("seed-lambda".into()),
        events: vec!["s3:ObjectRemoved:Delete".into()],
        prefix: None,
        suffix: None,
    };
    let both = vec![
        queue_notification(
            Q,
            &["s3:ObjectRemoved:Delete", "s3:LifecycleExpiration:Delete"],
            None,
        ),
        lambda,
    ];
    let c = notification("src", Ok((both, false)), Some(Q), &default_events(), &[]);
    assert_eq!(c.status, CheckStatus::Warn);
    assert!(
        c.detail
            .contains("function:purge-target-versions (id seed-lambda)"),
        "{c:?}"
    );
    // Unrelated events to elsewhere are no overlap.
    let created = Notification {
        destination: Destination::Topic,
        arn: "arn:aws:sns:ap-northeast-2:111111111111:uploads".into(),
        id: None,
        events: vec!["s3:ObjectCreated:*".into()],
        prefix: None,
        suffix: None,
    };
    let configs = vec![
        queue_notification(Q, &["s3:ObjectRemoved:*", "s3:LifecycleExpiration:*"], None),
        created,
    ];
    let c = notification("src", Ok((configs, false)), Some(Q), &default_events(), &[]);
    assert_eq!(c.status, CheckStatus::Pass);
}

#[test]
fn notification_filters_must_cover_the_purge_prefixes() {
    let events = [RemovalEventName::ObjectRemovedDelete];
    let topics = vec!["topics/".to_string()];
    let narrow = vec![queue_notification(
        Q,
        &["s3:ObjectRemoved:Delete"],
        Some("topics/car/"),
    )];
    assert_eq!(
        notification(
            "src",
            Ok((narrow.clone(), false)),
            Some(Q),
            &events,
            &topics
        )
        .status,
        CheckStatus::Fail
    );
    let broad = vec![queue_notification(
        Q,
        &["s3:ObjectRemoved:Delete"],
        Some("topics/"),
    )];
    assert_eq!(
        notification("src", Ok((broad, false)), Some(Q), &events, &topics).status,
        CheckStatus::Pass
    );
    // Purging every key needs a notification without a prefix filter.
    assert_eq!(
        notification("src", Ok((narrow, false)), Some(Q), &events, &[]).status,
        CheckStatus::Fail
    );
    let mut suffixed = queue_notification(Q, &["s3:ObjectRemoved:Delete"], None);
    suffixed.suffix = Some(".json".into());
    assert_eq!(
        notification("src", Ok((vec![suffixed], false)), Some(Q), &events, &[]).status,
        CheckStatus::Warn
    );
    // EventBridge delivery instead of a queue notification.
    assert_eq!(
        notification("src", Ok((vec![], true)), Some(Q), &events, &[]).status,
        CheckStatus::Pass
    );
    // ... still warns of another consumer of the same events (a forgotten purge Lambda), and
    // not of one that takes other events.
    let lambda = Notification {
        destination: Destination::Lambda,
        arn: "arn:aws:lambda:ap-northeast-2:111111111111:function:purge".into(),
        ..queue_notification(Q, &["s3:ObjectRemoved:*"], None)
    };
    let warned = notification("src", Ok((vec![lambda], true)), Some(Q), &events, &[]);
    assert_eq!(warned.status, CheckStatus::Warn, "{warned:?}");
    assert!(warned.detail.contains("function:purge"), "{warned:?}");
    let created = queue_notification("arn:aws:sqs:x:1:analytics", &["s3:ObjectCreated:*"], None);
    assert_eq!(
        notification("src", Ok((vec![created], true)), Some(Q), &events, &[]).status,
        CheckStatus::Pass
    );
}

#[test]
fn redrive_policies() {
    let policy = r#"{"deadLetterTargetArn":"arn:aws:sqs:ap-northeast-2:111111111111:dlq","maxReceiveCount":5}"#;
    let ok = queue_redrive("q", Ok((Some(policy.into()), Some(30))), 60);
    assert_eq!(ok.status, CheckStatus::Pass);
    assert!(
        ok.detail.contains("after 5 receives")
            && ok.detail.contains("30s")
            && ok.detail.contains("60s"),
        "{ok:?}"
    );
    assert_eq!(
        queue_redrive("q", Ok((None, Some(30))), 60).status,
        CheckStatus::Fail
    );
    let one = r#"{"deadLetterTargetArn":"arn:x","maxReceiveCount":"1"}"#;
    assert_eq!(
        queue_redrive("q", Ok((Some(one.into()), None)), 60).status,
        CheckStatus::Warn
    );
}

#[test]
fn datasync_task_locations_schedule_filters_options() {
    let arn = "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0";
    let facts = TaskFacts {
        status: Some("AVAILABLE".into()),
        transfer_mode: Some("CHANGED".into()),
        ..TaskFacts::default()
    };
    assert_eq!(
        task(arn, "ap-northeast-2", "ap-northeast-2", &Ok(facts.clone())).status,
        CheckStatus::Pass
    );
    assert!(
        task(arn, "ap-northeast-2", "us-east-1", &Ok(facts.clone()))
            .detail
            .contains("us-east-1")
    );
    let unavailable = TaskFacts {
        status: Some("UNAVAILABLE".into()),
        ..facts.clone()
    };
    assert_eq!(
        task(arn, "ap-northeast-2", "ap-northeast-2", &Ok(unavailable)).status,
        CheckStatus::Fail
    );

    let loc =
        |s: &str, d: &str, sub: &str| locations(arn, Ok(s.into()), Ok(d.into()), "src", "dst", sub);
    assert_eq!(loc("s3://src/", "s3://dst/", "/").status, CheckStatus::Pass);
    assert_eq!(
        loc("s3://src/topics/", "s3://dst/topics/", "/topics").status,
        CheckStatus::Pass
    );
    let wrong = loc("s3://src/topic/", "s3://other/", "/topics/");
    assert_eq!(wrong.status, CheckStatus::Fail);
    assert!(
        wrong.detail.contains("subdirectory is /topic/")
            && wrong.detail.contains("bucket is other"),
        "{wrong:?}"
    );
    assert!(wrong.detail.contains("0 files"));

    let scheduled = TaskFacts {
        schedule: Some("cron(0 1 * * ? *)".into()),
        ..facts.clone()
    };
    let s = schedule(arn, &scheduled, FilterMode::Execution);
    assert_eq!(s.status, CheckStatus::Fail);
    assert!(s.detail.contains("copies everything"));
    assert_eq!(
        schedule(arn, &scheduled, FilterMode::Task).status,
        CheckStatus::Warn
    );
    let disabled = TaskFacts {
        schedule_enabled: Some(false),
        ..scheduled
    };
    assert_eq!(
        schedule(arn, &disabled, FilterMode::Execution).status,
        CheckStatus::Pass
    );
    assert_eq!(
        schedule(arn, &facts, FilterMode::Execution).status,
        CheckStatus::Pass
    );

    let with_includes = TaskFacts {
        includes: vec!["/topics/p1/*".into()],
        ..facts.clone()
    };
    assert_eq!(
        filters(arn, &with_includes, FilterMode::Execution).status,
        CheckStatus::Warn
    );
    assert_eq!(
        filters(arn, &with_includes, FilterMode::Task).status,
        CheckStatus::Pass
    );
    let with_excludes = TaskFacts {
        excludes: vec!["*/tmp/*".into()],
        ..facts.clone()
    };
    let f = filters(arn, &with_excludes, FilterMode::Execution);
    assert!(f.status == CheckStatus::Warn && f.detail.contains("*/tmp/*"));

    let all = TaskFacts {
        transfer_mode: Some("ALL".into()),
        options: vec!["VerifyMode=ONLY_FILES_TRANSFERRED".into()],
        ..facts
    };
    let o = options(arn, &all);
    assert!(
        o.status == CheckStatus::Warn && o.detail.contains("VerifyMode=ONLY_FILES_TRANSFERRED")
    );
    let unset = TaskFacts {
        transfer_mode: None,
        options: vec![],
        ..all
    };
    let o = options(arn, &unset);
    assert_eq!(o.status, CheckStatus::Pass);
    assert_eq!(
        o.detail,
        "TransferMode not set (DataSync's default, CHANGED)"
    );
}

#[test]
fn the_state_bucket_probe() {
    let good = StateProbe {
        write: Ok(()),
        conditional_refused: Ok(true),
        read_back: Ok(true),
        missing: Ok(()),
    };
    assert_eq!(
        state("st", "s3-reconciler/state/", &good).status,
        CheckStatus::Pass
    );
    let hidden = StateProbe {
        missing: Err(err(ErrorKind::AccessDenied, "AccessDenied")),
        ..good.clone()
    };
    let c = state("st", "s3-reconciler/state/", &hidden);
    assert_eq!(c.status, CheckStatus::Fail);
    assert!(
        c.fix
            .unwrap()
            .contains("s3:ListBucket on arn:aws:s3:::st (no s3:prefix condition")
    );
    let lax = StateProbe {
        conditional_refused: Ok(false),
        ..good.clone()
    };
    assert!(
        state("st", "p/", &lax)
            .detail
            .contains("ignores conditional writes")
    );
    let no_bucket = StateProbe {
        write: Err(err(ErrorKind::NotFound, "NoSuchBucket")),
        ..good
    };
    assert_eq!(state("st", "p/", &no_bucket).status, CheckStatus::Fail);
}

#[test]
fn replication_must_cover_every_purge_prefix_with_an_enabled_rule_to_the_target() {
    use crate::aws::s3::ReplicationRule;
    let rule = |enabled: bool, prefix: Option<&str>, dest: &str| ReplicationRule {
        enabled,
        prefix: prefix.map(str::to_string),
        destination: format!("arn:aws:s3:::{dest}"),
    };
    let scope = vec!["topics/a/".to_string(), "topics/b/".to_string()];
    let check = |rules: Vec<ReplicationRule>| replication("src", "tgt", Ok(Some(rules)), &scope);
    assert_eq!(
        check(vec![rule(true, Some("topics/"), "tgt")]).status,
        CheckStatus::Pass
    );
    assert_eq!(
        check(vec![rule(true, Some(""), "tgt")]).status,
        CheckStatus::Pass
    );
    assert_eq!(
        check(vec![
            rule(true, Some("topics/a/"), "tgt"),
            rule(true, Some("topics/b/"), "tgt")
        ])
        .status,
        CheckStatus::Pass
    );
    let partial = check(vec![rule(true, Some("topics/a/"), "tgt")]);
    assert_eq!(partial.status, CheckStatus::Fail);
    assert!(partial.detail.contains("`topics/b/`") && !partial.detail.contains("`topics/a/`"));
    // Disabled, to another bucket, or filtered on tags (coverage unprovable): none counts.
    for r in [
        rule(false, Some(""), "tgt"),
        rule(true, Some(""), "elsewhere"),
        rule(true, None, "tgt"),
        rule(true, Some("topics/a/b"), "tgt"),
    ] {
        assert_eq!(check(vec![r.clone()]).status, CheckStatus::Fail, "{r:?}");
    }
    assert_eq!(
        replication("src", "tgt", Ok(None), &scope).status,
        CheckStatus::Fail
    );
}

#[test]
fn a_target_lifecycle_expiring_current_versions_in_the_mirror_is_a_warning() {
    use crate::aws::s3::LifecycleRule;
    let rule = |id: &str, enabled: bool, prefix: Option<&str>, expires: bool| LifecycleRule {
        id: id.into(),
        enabled,
        prefix: prefix.map(str::to_string),
        expires_current: expires,
    };
    let scope = vec!["topics/".to_string()];
    let check = |rules: Vec<LifecycleRule>| lifecycle("tgt", Ok(Some(rules)), &scope);
    let w = check(vec![rule("retention", true, Some(""), true)]);
    assert_eq!(w.status, CheckStatus::Warn);
    assert!(w.detail.contains("`retention`"));
    assert_eq!(
        check(vec![rule("t", true, Some("topics/x/"), true)]).status,
        CheckStatus::Warn
    );
    assert_eq!(
        check(vec![rule("t", true, None, true)]).status,
        CheckStatus::Warn,
        "tag filters may match"
    );
    for ok in [
        rule("noncurrent-only", true, Some(""), false),
        rule("off", false, Some(""), true),
        rule("elsewhere", true, Some("logs/"), true),
    ] {
        assert_eq!(check(vec![ok.clone()]).status, CheckStatus::Pass, "{ok:?}");
    }
    assert_eq!(lifecycle("tgt", Ok(None), &scope).status, CheckStatus::Pass);
}

#[test]
fn target_delete_passes_only_when_the_entry_is_deleted() {
    let probe = |answer| DeleteProbe {
        key: "topics/.s3-reconciler-probe/x".into(),
        answer,
    };
    let pass = target_delete("tgt", &probe(Ok(None)));
    assert_eq!(pass.status, CheckStatus::Pass, "{pass:?}");
    assert_eq!(pass.resource, "s3://tgt/topics/.s3-reconciler-probe/x");
    let refused = target_delete(
        "tgt",
        &probe(Ok(Some(("AccessDenied".into(), "Access Denied".into())))),
    );
    assert_eq!(refused.status, CheckStatus::Fail);
    assert!(refused.detail.contains("AccessDenied"), "{refused:?}");
    assert!(
        refused.fix.as_deref().unwrap().contains("s3:DeleteObject "),
        "{refused:?}"
    );
    let denied = target_delete(
        "tgt",
        &probe(Err(err(ErrorKind::AccessDenied, "AccessDenied"))),
    );
    assert_eq!(denied.status, CheckStatus::Fail);
    assert!(
        denied
            .fix
            .as_deref()
            .unwrap()
            .contains("DeleteObjectVersion")
    );
    let down = target_delete("tgt", &probe(Err(err(ErrorKind::Network, ""))));
    assert_eq!(down.status, CheckStatus::Fail);
    assert!(down.fix.as_deref().unwrap().contains("network"), "{down:?}");
}
