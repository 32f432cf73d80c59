//! Parsing SQS message bodies into removal events.
//!
//! Accepted shapes:
//! - S3 event notifications (`Records[]`, `eventVersion` 2.x), every record;
//! - the same wrapped by SNS (`Type: Notification`, `Message` is a JSON string) or delivered
//!   raw by SNS (identical to the direct form);
//! - EventBridge "Object Deleted" events (`detail.deletion-type`);
//! - `s3:TestEvent`, sent once when a notification is configured, acknowledged and dropped.
//!
//! Object keys arrive URL-encoded as form values (space as `+`, `+` as `%2B`, non-ASCII as
//! UTF-8 `%XX`) in S3 notifications and, the same way, in S3's EventBridge events (AWS Lambda
//! Powertools and OpenSearch Data Prepper decode both); both come out as the real key.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use crate::aws::s3::url_decode;
use crate::config::{RemovalEventName, strip_s3_prefix};

/// One removal announced by an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalEvent {
    pub bucket: String,
    /// The decoded object key.
    pub key: String,
    pub event_name: RemovalEventName,
    pub version_id: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
}

/// What one message body contains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Body {
    /// `s3:TestEvent`: acknowledge and drop.
    Test,
    /// An SNS control message (`SubscriptionConfirmation`, `UnsubscribeConfirmation`) that
    /// reached the queue: nothing to purge; acknowledged so it does not end up in the DLQ.
    SnsControl { kind: String, topic_arn: String },
    /// One entry per record, in order. A record that is not an S3 removal at all (another
    /// service, `ObjectCreated:*`) is `Other` so it is counted as ignored, not as invalid.
    Records(Vec<Record>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Record {
    Removal(RemovalEvent),
    Other { event_name: String },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum EventError {
    #[error("body is not JSON: {0}")]
    NotJson(String),
    #[error(
        "unrecognized message shape (not an S3 notification, SNS envelope or EventBridge event)"
    )]
    UnknownShape,
    #[error("record {index}: {reason}")]
    BadRecord { index: usize, reason: String },
    #[error("SNS Message is not a JSON string")]
    BadSnsMessage,
}

/// Parses one SQS message body.
pub(crate) fn parse_body(body: &str) -> Result<Body, EventError> {
    let v: Value = serde_json::from_str(body).map_err(|e| EventError::NotJson(e.to_string()))?;
    parse_value(&v, 0)
}

fn parse_value(v: &Value, depth: u8) -> Result<Body, EventError> {
    // SNS envelope: unwrap once (an SNS message that itself is SNS is not something S3 sends).
    let sns_type = v.get("Type").and_then(Value::as_str);
    if depth == 0
        && let Some(kind @ ("SubscriptionConfirmation" | "UnsubscribeConfirmation")) = sns_type
        && v.get("TopicArn").is_some()
    {
        return Ok(Body::SnsControl {
            kind: kind.to_string(),
            topic_arn: v
                .get("TopicArn")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        });
    }
    if depth == 0 && sns_type == Some("Notification") {
        let inner = v
            .get("Message")
            .and_then(Value::as_str)
            .ok_or(EventError::BadSnsMessage)?;
        let inner: Value =
            serde_json::from_str(inner).map_err(|e| EventError::NotJson(e.to_string()))?;
        return parse_value(&inner, depth + 1);
    }
    if v.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok(Body::Test);
    }
    if let Some(records) = v.get("Records") {
        let records = records.as_array().ok_or(EventError::UnknownShape)?;
        return records
            .iter()
            .enumerate()
            .map(|(index, r)| {
                parse_s3_record(r).map_err(|reason| EventError::BadRecord { index, reason })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Body::Records);
    }
    if v.get("detail-type").is_some() && v.get("source").and_then(Value::as_str) == Some("aws.s3") {
        return parse_eventbridge(v).map(|r| Body::Records(vec![r]));
    }
    Err(EventError::UnknownShape)
}

#[derive(Deserialize)]
struct S3Record {
    #[serde(rename = "eventVersion")]
    event_version: Option<String>,
    #[serde(rename = "eventSource")]
    event_source: Option<String>,
    #[serde(rename = "eventName")]
    event_name: Option<String>,
    #[serde(rename = "eventTime")]
    event_time: Option<String>,
    s3: Option<S3Entity>,
}

#[derive(Deserialize)]
struct S3Entity {
    bucket: S3Bucket,
    object: S3Object,
}

#[derive(Deserialize)]
struct S3Bucket {
    name: String,
}

#[derive(Deserialize)]
struct S3Object {
    key: String,
    #[serde(rename = "versionId")]
    version_id: Option<String>,
}

fn parse_s3_record(v: &Value) -> Result<Record, String> {
    let r: S3Record = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    let event_name = r.event_name.clone().unwrap_or_default();
    let removal = RemovalEventName::parse(&event_name);
    match r.event_source.as_deref() {
        Some("aws:s3") => {}
        // Without a source nothing vouches for the record; if it claims a removal, deciding
        // on it would be a guess, so it is invalid rather than silently ignored.
        None if removal.is_some() || r.s3.is_some() => {
            return Err(format!(
                "record `{event_name}` has no eventSource (expected `aws:s3`)"
            ));
        }
        _ => return Ok(Record::Other { event_name }),
    }
    if let Some(ver) = &r.event_version
        && !ver.starts_with("2.")
    {
        return Err(format!("unsupported eventVersion `{ver}` (expected 2.x)"));
    }
    let Some(event_name) = removal else {
        return Ok(Record::Other {
            event_name: strip_s3_prefix(&event_name).to_string(),
        });
    };
    let s3 = r.s3.ok_or("missing `s3` entity")?;
    let key = decode_key(&s3.object.key)?;
    Ok(Record::Removal(RemovalEvent {
        bucket: s3.bucket.name,
        key,
        event_name,
        version_id: s3.object.version_id.filter(|v| !v.is_empty()),
        event_time: r.event_time.as_deref().and_then(parse_time),
    }))
}

fn parse_eventbridge(v: &Value) -> Result<Record, EventError> {
    let bad = |reason: &str| EventError::BadRecord {
        index: 0,
        reason: reason.to_string(),
    };
    let detail_type = v.get("detail-type").and_then(Value::as_str).unwrap_or("");
    if detail_type != "Object Deleted" {
        return Ok(Record::Other {
            event_name: detail_type.to_string(),
        });
    }
    let detail = v.get("detail").ok_or_else(|| bad("missing `detail`"))?;
    let bucket = detail
        .pointer("/bucket/name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing `detail.bucket.name`"))?;
    let key = detail
        .pointer("/object/key")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing `detail.object.key`"))?;
    let deletion_type = detail
        .get("deletion-type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("missing `detail.deletion-type`"))?;
    let lifecycle = detail.get("reason").and_then(Value::as_str) == Some("Lifecycle Expiration");
    let event_name = match (deletion_type, lifecycle) {
        ("Permanently Deleted", false) => RemovalEventName::ObjectRemovedDelete,
        ("Permanently Deleted", true) => RemovalEventName::LifecycleExpirationDelete,
        ("Delete Marker Created", false) => RemovalEventName::ObjectRemovedDeleteMarkerCreated,
        ("Delete Marker Created", true) => RemovalEventName::LifecycleExpirationDeleteMarkerCreated,
        (other, _) => return Err(bad(&format!("unknown deletion-type `{other}`"))),
    };
    let key = decode_key(key).map_err(|reason| bad(&reason))?;
    Ok(Record::Removal(RemovalEvent {
        bucket: bucket.to_string(),
        key,
        event_name,
        version_id: detail
            .pointer("/object/version-id")
            .and_then(Value::as_str)
            .map(str::to_string),
        event_time: v.get("time").and_then(Value::as_str).and_then(parse_time),
    }))
}

/// Decodes an S3 notification key: form-urlencoded, so `+` is a space and `%XX` are UTF-8
/// bytes. S3 always encodes `%` itself as `%25`, so a `%` not followed by two hex digits means
/// the event is malformed or was re-encoded by someone else: deciding on it would be a guess.
pub(crate) fn decode_key(raw: &str) -> Result<String, String> {
    let decoded = url_decode(raw)?;
    if decoded.is_empty() {
        return Err("empty object key".into());
    }
    Ok(decoded)
}

fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn removal(body: &str) -> Vec<RemovalEvent> {
        match parse_body(body).unwrap() {
            Body::Records(r) => r
                .into_iter()
                .filter_map(|r| match r {
                    Record::Removal(e) => Some(e),
                    Record::Other { .. } => None,
                })
                .collect(),
            other => panic!("not records: {other:?}"),
        }
    }

    #[test]
    fn decodes_keys_like_s3_encodes_them() {
        assert_eq!(decode_key("a+b.txt").unwrap(), "a b.txt");
        assert_eq!(decode_key("a%2Bb.txt").unwrap(), "a+b.txt");
        assert_eq!(decode_key("day%3D06/x").unwrap(), "day=06/x");
        assert_eq!(
            decode_key("%EC%B0%A8%EB%9F%89/%EB%8D%B0%EC%9D%B4%ED%84%B0.json").unwrap(),
            "차량/데이터.json"
        );
        assert_eq!(decode_key("100%25.txt").unwrap(), "100%.txt");
        // Kafka Connect's S3 sink names files `<topic>+<partition>+<offset>`.
        assert_eq!(
            decode_key("topics/car-telemetry/year%3D2024/month%3D12/day%3D13/car-telemetry%2B0%2B0000001234.json").unwrap(),
            "topics/car-telemetry/year=2024/month=12/day=13/car-telemetry+0+0000001234.json"
        );
        assert!(decode_key("%FF%FE").is_err());
        assert!(decode_key("").is_err());
    }

    #[test]
    fn malformed_percent_encoding_is_rejected() {
        for bad in ["100%.json", "trunc%4", "%", "a%G1b", "a%%20", "x%2"] {
            let err = decode_key(bad).unwrap_err();
            assert!(
                err.contains("not followed by two hex digits"),
                "{bad}: {err}"
            );
        }
        assert_eq!(decode_key("%41%62").unwrap(), "Ab");
        let b = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"data/100%.json"}}}]}"#;
        assert!(matches!(
            parse_body(b),
            Err(EventError::BadRecord { index: 0, .. })
        ));
    }

    #[test]
    fn a_removal_without_event_source_is_invalid_not_ignored() {
        let b = r#"{"Records":[{"eventVersion":"2.1","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        let err = parse_body(b).unwrap_err();
        assert!(err.to_string().contains("no eventSource"), "{err}");
        // Another service's record is not ours to judge.
        let other = r#"{"Records":[{"eventSource":"aws:sqs","eventName":"x"}]}"#;
        assert_eq!(
            parse_body(other).unwrap(),
            Body::Records(vec![Record::Other {
                event_name: "x".into()
            }])
        );
    }

    #[test]
    fn unknown_shapes_and_garbage_are_errors() {
        assert!(matches!(
            parse_body("not json"),
            Err(EventError::NotJson(_))
        ));
        assert_eq!(parse_body("{}"), Err(EventError::UnknownShape));
        assert_eq!(parse_body("[1,2]"), Err(EventError::UnknownShape));
        let sns_bad = r#"{"Type":"Notification","Message":"{not json"}"#;
        assert!(matches!(parse_body(sns_bad), Err(EventError::NotJson(_))));
    }

    #[test]
    fn test_event_direct_and_via_sns() {
        let t = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-12-14T11:00:00.000Z","Bucket":"b","RequestId":"R","HostId":"H"}"#;
        assert_eq!(parse_body(t).unwrap(), Body::Test);
        let wrapped =
            serde_json::json!({"Type":"Notification","MessageId":"m","Message": t}).to_string();
        assert_eq!(parse_body(&wrapped).unwrap(), Body::Test);
    }

    /// Real notification shapes: S3's own event (eventVersion 2.1, three records with keys
    /// encoded the way S3 encodes them), a lifecycle expiration (2.3), and both wrapped by SNS.
    #[test]
    fn corpus_of_real_s3_notification_shapes() {
        let direct = r#"{"Records":[
          {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"ap-northeast-2","eventTime":"2024-12-14T11:35:13.118Z",
           "eventName":"ObjectRemoved:Delete","userIdentity":{"principalId":"AWS:AROAEXAMPLE:ops"},
           "requestParameters":{"sourceIPAddress":"10.1.2.3"},
           "responseElements":{"x-amz-request-id":"C3D13FE58DE4C810","x-amz-id-2":"FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
           "s3":{"s3SchemaVersion":"1.0","configurationId":"permanent-deletes",
                 "bucket":{"name":"vehicle-src","ownerIdentity":{"principalId":"A3NL1KOZZKExample"},"arn":"arn:aws:s3:::vehicle-src"},
                 "object":{"key":"topics/car+1/year%3D2024/month%3D12/day%3D13/%EC%B0%A8%EB%9F%89+a%2Bb.json","versionId":"3HL4kqtJlcpXroDTDmjVBH40Nrjfkd","sequencer":"0055AED6DCD90281E5"}}},
          {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"ap-northeast-2","eventTime":"2024-12-14T11:35:14.000Z",
           "eventName":"ObjectRemoved:DeleteMarkerCreated",
           "s3":{"s3SchemaVersion":"1.0","bucket":{"name":"vehicle-src"},"object":{"key":"a.txt","versionId":"dm1","sequencer":"0055AED6DCD90281E6"}}},
          {"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"ap-northeast-2","eventTime":"2024-12-14T11:35:15.000Z",
           "eventName":"ObjectCreated:Put",
           "s3":{"s3SchemaVersion":"1.0","bucket":{"name":"vehicle-src"},"object":{"key":"b.txt","size":1024,"eTag":"d41d8cd98f00b204e9800998ecf8427e","versionId":"v9","sequencer":"0055AED6DCD90281E7"}}}
        ]}"#;
        let e = removal(direct);
        assert_eq!(e.len(), 2, "every removal record, not only the first");
        assert_eq!(
            e[0].key,
            "topics/car 1/year=2024/month=12/day=13/차량 a+b.json"
        );
        assert_eq!(e[0].bucket, "vehicle-src");
        assert_eq!(e[0].event_name, RemovalEventName::ObjectRemovedDelete);
        assert_eq!(
            e[0].version_id.as_deref(),
            Some("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd")
        );
        assert_eq!(
            e[0].event_time.unwrap().to_rfc3339(),
            "2024-12-14T11:35:13.118+00:00"
        );
        assert_eq!(
            e[1].event_name,
            RemovalEventName::ObjectRemovedDeleteMarkerCreated
        );

        let lifecycle = r#"{"Records":[{"eventVersion":"2.3","eventSource":"aws:s3","awsRegion":"ap-northeast-2",
          "eventTime":"2024-12-14T00:00:00.000Z","eventName":"LifecycleExpiration:Delete",
          "userIdentity":{"principalId":"s3.amazonaws.com"},"requestParameters":{"sourceIPAddress":"s3.amazonaws.com"},
          "responseElements":{"x-amz-request-id":"R","x-amz-id-2":"H"},
          "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"vehicle-src","ownerIdentity":{"principalId":"P"},"arn":"arn:aws:s3:::vehicle-src"},
                "object":{"key":"old/%5Blog%5D+2023.gz","versionId":"v1","sequencer":"S"}}}]}"#;
        let e = removal(lifecycle);
        assert_eq!(e[0].event_name, RemovalEventName::LifecycleExpirationDelete);
        assert_eq!(e[0].key, "old/[log] 2023.gz");

        for inner in [direct, lifecycle] {
            let sns = serde_json::json!({
                "Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                "TopicArn": "arn:aws:sns:ap-northeast-2:111111111111:s3-deletes",
                "Subject": "Amazon S3 Notification", "Message": inner,
                "Timestamp": "2024-12-14T11:35:13.500Z", "SignatureVersion": "1",
                "Signature": "EXAMPLE", "SigningCertURL": "https://sns.ap-northeast-2.amazonaws.com/x.pem",
                "UnsubscribeURL": "https://sns.ap-northeast-2.amazonaws.com/?Action=Unsubscribe"
            })
            .to_string();
            assert_eq!(removal(&sns), removal(inner), "SNS envelope unwrapped");
        }
    }

    #[test]
    fn a_bad_record_names_its_index() {
        let b = r#"{"Records":[
          {"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"ok"}}},
          {"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"%FF"}}}]}"#;
        let err = parse_body(b).unwrap_err();
        assert!(
            matches!(err, EventError::BadRecord { index: 1, .. }),
            "{err:?}"
        );
        let v1 = r#"{"Records":[{"eventVersion":"1.0","eventSource":"aws:s3","eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        assert!(parse_body(v1).unwrap_err().to_string().contains("1.0"));
    }

    #[test]
    fn sns_subscription_confirmation_is_recognized() {
        let b = r#"{"Type":"SubscriptionConfirmation","MessageId":"165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
          "Token":"2336412f37f","TopicArn":"arn:aws:sns:ap-northeast-2:111111111111:s3-deletes",
          "Message":"You have chosen to subscribe to the topic arn:aws:sns:ap-northeast-2:111111111111:s3-deletes.\nTo confirm the subscription, visit the SubscribeURL included in this message.",
          "SubscribeURL":"https://sns.ap-northeast-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:ap-northeast-2:111111111111:s3-deletes&Token=2336412f37f",
          "Timestamp":"2024-12-14T11:00:00.000Z","SignatureVersion":"1","Signature":"EXAMPLE","SigningCertURL":"https://sns.ap-northeast-2.amazonaws.com/x.pem"}"#;
        assert_eq!(
            parse_body(b).unwrap(),
            Body::SnsControl {
                kind: "SubscriptionConfirmation".into(),
                topic_arn: "arn:aws:sns:ap-northeast-2:111111111111:s3-deletes".into()
            }
        );
    }

    #[test]
    fn record_for_other_event_is_not_a_removal() {
        let b = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"k"}}}]}"#;
        assert_eq!(
            parse_body(b).unwrap(),
            Body::Records(vec![Record::Other {
                event_name: "ObjectCreated:Put".into()
            }])
        );
        assert!(removal(b).is_empty());
    }

    #[test]
    fn eventbridge_lifecycle_and_marker() {
        let b = r#"{"version":"0","detail-type":"Object Deleted","source":"aws.s3","time":"2024-12-14T11:35:13Z",
          "detail":{"bucket":{"name":"src"},"object":{"key":"a+b%2Bc%3D%ED%95%9C.txt","version-id":"v1"},"deletion-type":"Delete Marker Created","reason":"Lifecycle Expiration"}}"#;
        let e = removal(b);
        assert_eq!(
            e[0].event_name,
            RemovalEventName::LifecycleExpirationDeleteMarkerCreated
        );
        assert_eq!(e[0].key, "a b+c=한.txt");
    }

    #[test]
    fn eventbridge_key_that_does_not_decode_is_invalid() {
        let b = r#"{"version":"0","detail-type":"Object Deleted","source":"aws.s3",
          "detail":{"bucket":{"name":"src"},"object":{"key":"%FF"},"deletion-type":"Permanently Deleted"}}"#;
        assert!(matches!(
            parse_body(b),
            Err(EventError::BadRecord { index: 0, .. })
        ));
    }
}
