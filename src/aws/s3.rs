//! S3 primitives shared by the capabilities: one page of a version or object listing, one
//! DeleteObjects, conditional reads and writes of small JSON objects. Each call is counted in
//! `s3_requests_total`, and each failure in `aws_errors_total`, here and nowhere else.
//!
//! Listings ask for `EncodingType=url`: any key S3 can store comes back, including keys with
//! characters XML 1.0 cannot carry (U+0001–U+0008, U+000B, U+000C, U+000E–U+001F, U+FFFE,
//! U+FFFF), which would otherwise make the whole page unreadable. A page that says it is
//! truncated must say where the next one starts, and that must be further on: anything else
//! is an error, never the end of the listing (an empty-looking source is what a purge acts on).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Delete, EncodingType, ObjectIdentifier};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use chrono::{DateTime, Utc};

use super::AwsError;
use crate::labels::{ErrorKind, S3Op, Service};
use crate::metrics::Metrics;

/// S3's DeleteObjects limit.
pub(crate) const DELETE_BATCH: usize = 1000;

/// One version or delete marker of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub version_id: String,
    pub delete_marker: bool,
    pub last_modified: Option<DateTime<Utc>>,
}

impl crate::merge::Keyed for Entry {
    fn key(&self) -> &str {
        &self.key
    }
}

impl crate::merge::Keyed for Object {
    fn key(&self) -> &str {
        &self.key
    }
}

/// Where a version listing continues: S3's `NextKeyMarker` and `NextVersionIdMarker`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Marker {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
}

/// One page of ListObjectVersions: versions and delete markers in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct VersionPage {
    pub entries: Vec<Entry>,
    /// `None` on the last page.
    pub next: Option<Marker>,
}

/// A current object, as ListObjectsV2 reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub key: String,
    pub size: i64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of ListObjectsV2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ObjectPage {
    pub objects: Vec<Object>,
    /// Common prefixes when listed with a delimiter.
    pub prefixes: Vec<String>,
    /// Continuation token; `None` on the last page.
    pub next: Option<String>,
}

/// What DeleteObjects reported, entry by entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DeleteReport {
    /// (key, version id) confirmed deleted.
    pub deleted: Vec<(String, String)>,
    pub errors: Vec<EntryError>,
}

/// One entry DeleteObjects did not delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryError {
    pub key: String,
    pub version_id: String,
    pub code: String,
    pub message: String,
}

/// Decodes a value S3 sent form-encoded: object keys in event notifications and in listings
/// asked for with `EncodingType=url` (a space is `+`, a `+` is `%2B`, other bytes `%XX`). A
/// `%` not followed by two hex digits, or bytes that are not UTF-8, mean the value is not what
/// S3 sends: deciding on it would be a guess.
pub fn url_decode(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                let pair = bytes
                    .get(i + 1)
                    .copied()
                    .and_then(hex)
                    .zip(bytes.get(i + 2).copied().and_then(hex));
                let Some((hi, lo)) = pair else {
                    return Err(format!(
                        "key `{raw}` has a `%` not followed by two hex digits at byte {i}"
                    ));
                };
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("key `{raw}` does not decode to UTF-8"))
}

/// A key from a listing: URL-decoded when the answer says `EncodingType=url`.
fn decoded(raw: &str, encoded: bool) -> Result<String, String> {
    if encoded {
        url_decode(raw)
    } else {
        Ok(raw.to_string())
    }
}

/// Whether XML 1.0 can carry every character of `key` (its `Char` production). A key that it
/// cannot is never put in a DeleteObjects body: S3 would refuse the whole request.
pub(crate) fn xml_safe(key: &str) -> bool {
    key.chars().all(|c| {
        matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
    })
}

/// One replication rule of a bucket, as far as the doctor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationRule {
    pub enabled: bool,
    /// The key prefix it replicates (`""`: every key); `None` when its filter is on tags.
    pub prefix: Option<String>,
    /// The destination bucket's ARN.
    pub destination: String,
}

/// One lifecycle rule of a bucket, as far as the doctor needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleRule {
    pub id: String,
    pub enabled: bool,
    /// The key prefix it applies to (`""`: every key); `None` when its filter is on tags or
    /// sizes only.
    pub prefix: Option<String>,
    /// It expires current versions (Days or Date): in a versioned bucket, that writes delete
    /// markers.
    pub expires_current: bool,
}

/// How a write is conditioned.
#[derive(Debug, Clone, Copy)]
pub enum Condition<'a> {
    /// `If-None-Match: *`: only if no object exists.
    Create,
    /// `If-Match: etag`: only if the object is still the one read.
    Replace(&'a str),
    /// Unconditional.
    Overwrite,
}

/// Result of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Put {
    Written {
        etag: String,
    },
    /// The condition failed (412): someone else wrote first.
    Conflict,
    /// S3 saw another conditional write to the key in flight (409
    /// `ConditionalRequestConflict`): nobody won yet; AWS advises trying again.
    Busy,
}

/// A small object read whole, with the ETag that guards the next write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub body: Vec<u8>,
    pub etag: String,
}

/// One bucket reached with one client; every call is counted.
#[derive(Clone, Debug)]
pub struct Bucket {
    pub client: aws_sdk_s3::Client,
    pub name: String,
    metrics: Metrics,
}

impl Bucket {
    pub fn new(client: aws_sdk_s3::Client, name: impl Into<String>, metrics: Metrics) -> Self {
        Bucket {
            client,
            name: name.into(),
            metrics,
        }
    }

    /// `s3://bucket/key` for messages and audit lines.
    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.name)
    }

    fn failed(&self, e: AwsError) -> AwsError {
        super::counted(&self.metrics, e)
    }

    /// An SDK failure of `operation` on `resource`, counted.
    fn sdk_failed<E>(
        &self,
        operation: &'static str,
        resource: String,
        err: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.failed(AwsError::from_sdk(Service::S3, operation, resource, err))
    }

    /// One page of versions and delete markers under `prefix`, continuing at `start`.
    pub(crate) async fn list_versions(
        &self,
        prefix: &str,
        start: Option<&Marker>,
    ) -> Result<VersionPage, AwsError> {
        self.metrics.aws.s3_called(S3Op::ListObjectVersions);
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.name)
            .prefix(prefix)
            .encoding_type(EncodingType::Url)
            .set_key_marker(start.map(|m| m.key.clone()))
            .set_version_id_marker(start.and_then(|m| m.version_id.clone()))
            .send()
            .await
            .map_err(|e| self.sdk_failed("ListObjectVersions", self.uri(prefix), e))?;
        let bad = |message: String| self.bad_page("ListObjectVersions", prefix, message);
        // Decoded only when the answer says it is encoded: a store that ignores the request
        // sends keys as they are, and decoding those would turn `+` into a space.
        let encoded = out.encoding_type() == Some(&EncodingType::Url);
        let key = |k: Option<&str>| -> Result<Option<String>, AwsError> {
            k.map(|k| decoded(k, encoded).map_err(&bad)).transpose()
        };
        let mut versions = Vec::with_capacity(out.versions().len());
        for v in out.versions() {
            if let Some(k) = key(v.key())? {
                versions.push(Entry {
                    key: k,
                    version_id: v.version_id().unwrap_or("null").to_string(),
                    delete_marker: false,
                    last_modified: v.last_modified().and_then(to_chrono),
                });
            }
        }
        let mut markers = Vec::with_capacity(out.delete_markers().len());
        for m in out.delete_markers() {
            if let Some(k) = key(m.key())? {
                markers.push(Entry {
                    key: k,
                    version_id: m.version_id().unwrap_or("null").to_string(),
                    delete_marker: true,
                    last_modified: m.last_modified().and_then(to_chrono),
                });
            }
        }
        let entries = merge_by_key(versions, markers);
        let next = if out.is_truncated() == Some(true) {
            let Some(k) = key(out.next_key_marker())? else {
                return Err(bad(
                    "the page says it is truncated but gives no NextKeyMarker".into(),
                ));
            };
            let next = Marker {
                key: k,
                version_id: out.next_version_id_marker().map(str::to_string),
            };
            if start == Some(&next) {
                return Err(bad(format!(
                    "the next page would start where this one did ({}, version {}): the listing does not advance",
                    next.key,
                    next.version_id.as_deref().unwrap_or("-")
                )));
            }
            Some(next)
        } else {
            None
        };
        Ok(VersionPage { entries, next })
    }

    /// A page S3 (or something in front of it) answered that cannot be followed safely.
    fn bad_page(&self, operation: &'static str, prefix: &str, message: String) -> AwsError {
        self.failed(AwsError::in_response(
            Service::S3,
            operation,
            self.uri(prefix),
            ErrorKind::Invalid,
            None,
            message,
        ))
    }

    /// A one-entry version listing: proves the bucket is there, reachable in the configured
    /// region, and listable with the permissions the purge uses.
    pub async fn probe(&self) -> Result<(), AwsError> {
        self.metrics.aws.s3_called(S3Op::ListObjectVersions);
        self.client
            .list_object_versions()
            .bucket(&self.name)
            .max_keys(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.sdk_failed("ListObjectVersions", self.uri(""), e))
    }

    /// The bucket's versioning status (`Enabled`, `Suspended`), `None` if never enabled.
    pub async fn versioning(&self) -> Result<Option<String>, AwsError> {
        self.metrics.aws.s3_called(S3Op::GetBucketVersioning);
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(&self.name)
            .send()
            .await
            .map_err(|e| self.sdk_failed("GetBucketVersioning", self.uri(""), e))?;
        Ok(out.status().map(|s| s.as_str().to_string()))
    }

    /// The bucket's event notification configuration.
    pub async fn notifications(
        &self,
    ) -> Result<
        aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput,
        AwsError,
    >{
        self.metrics
            .aws
            .s3_called(S3Op::GetBucketNotificationConfiguration);
        self.client
            .get_bucket_notification_configuration()
            .bucket(&self.name)
            .send()
            .await
            .map_err(|e| self.sdk_failed("GetBucketNotificationConfiguration", self.uri(""), e))
    }

    /// The bucket's replication rules; `None` when it has no replication configuration.
    pub async fn replication(&self) -> Result<Option<Vec<ReplicationRule>>, AwsError> {
        self.metrics.aws.s3_called(S3Op::GetBucketReplication);
        let out = match self
            .client
            .get_bucket_replication()
            .bucket(&self.name)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.code() == Some("ReplicationConfigurationNotFoundError") => {
                return Ok(None);
            }
            Err(e) => return Err(self.sdk_failed("GetBucketReplication", self.uri(""), e)),
        };
        let rules = out
            .replication_configuration()
            .map(|c| c.rules())
            .unwrap_or_default();
        Ok(Some(
            rules
                .iter()
                .map(|r| {
                    #[allow(deprecated)]
                    let legacy = r.prefix().map(str::to_string);
                    let prefix = match r.filter() {
                        None => legacy.or(Some(String::new())),
                        Some(f) => match (f.prefix(), f.and(), f.tag()) {
                            (Some(p), _, _) => Some(p.to_string()),
                            (None, Some(a), _) if a.tags().is_empty() => {
                                Some(a.prefix().unwrap_or_default().to_string())
                            }
                            (None, None, None) => Some(String::new()),
                            _ => None,
                        },
                    };
                    ReplicationRule {
                        enabled: r.status().as_str() == "Enabled",
                        prefix,
                        destination: r
                            .destination()
                            .map(|d| d.bucket().to_string())
                            .unwrap_or_default(),
                    }
                })
                .collect(),
        ))
    }

    /// The bucket's lifecycle rules; `None` when it has no lifecycle configuration.
    pub async fn lifecycle(&self) -> Result<Option<Vec<LifecycleRule>>, AwsError> {
        self.metrics
            .aws
            .s3_called(S3Op::GetBucketLifecycleConfiguration);
        let out = match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.name)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => return Ok(None),
            Err(e) => {
                return Err(self.sdk_failed("GetBucketLifecycleConfiguration", self.uri(""), e));
            }
        };
        Ok(Some(
            out.rules()
                .iter()
                .map(|r| {
                    #[allow(deprecated)]
                    let legacy = r.prefix().map(str::to_string);
                    let prefix = match r.filter() {
                        None => legacy.or(Some(String::new())),
                        Some(f) => match (f.prefix(), f.and(), f.tag()) {
                            (Some(p), _, _) => Some(p.to_string()),
                            (None, Some(a), _) => Some(a.prefix().unwrap_or_default().to_string()),
                            (None, None, None) => Some(String::new()),
                            _ => None,
                        },
                    };
                    let e = r.expiration();
                    LifecycleRule {
                        id: r.id().unwrap_or_default().to_string(),
                        enabled: r.status().as_str() == "Enabled",
                        prefix,
                        expires_current: e
                            .is_some_and(|e| e.days().is_some() || e.date().is_some()),
                    }
                })
                .collect(),
        ))
    }

    /// One page of current objects (and common prefixes, with a delimiter) under `prefix`.
    pub(crate) async fn list_objects(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
    ) -> Result<ObjectPage, AwsError> {
        self.metrics.aws.s3_called(S3Op::ListObjectsV2);
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .encoding_type(EncodingType::Url)
            .set_delimiter(delimiter.map(str::to_string))
            .set_continuation_token(token.clone())
            .send()
            .await
            .map_err(|e| self.sdk_failed("ListObjectsV2", self.uri(prefix), e))?;
        let bad = |message: String| self.bad_page("ListObjectsV2", prefix, message);
        let encoded = out.encoding_type() == Some(&EncodingType::Url);
        let mut objects = Vec::with_capacity(out.contents().len());
        for o in out.contents() {
            if let Some(k) = o.key() {
                objects.push(Object {
                    key: decoded(k, encoded).map_err(&bad)?,
                    size: o.size().unwrap_or(0),
                    last_modified: o.last_modified().and_then(to_chrono),
                });
            }
        }
        let mut prefixes = Vec::with_capacity(out.common_prefixes().len());
        for p in out.common_prefixes() {
            if let Some(p) = p.prefix() {
                prefixes.push(decoded(p, encoded).map_err(&bad)?);
            }
        }
        let next = if out.is_truncated() == Some(true) {
            let Some(t) = out.next_continuation_token() else {
                return Err(bad(
                    "the page says it is truncated but gives no NextContinuationToken".into(),
                ));
            };
            if token.as_deref() == Some(t) {
                return Err(bad(
                    "the next page would start where this one did: the listing does not advance"
                        .into(),
                ));
            }
            Some(t.to_string())
        } else {
            None
        };
        Ok(ObjectPage {
            objects,
            prefixes,
            next,
        })
    }

    /// Deletes up to [`DELETE_BATCH`] versions in one request; every entry's fate is reported.
    pub(crate) async fn delete_versions(
        &self,
        entries: &[&Entry],
    ) -> Result<DeleteReport, AwsError> {
        let resource = self.uri(entries.first().map_or("", |e| e.key.as_str()));
        let invalid = |message: String| {
            self.failed(AwsError::in_response(
                Service::S3,
                "DeleteObjects",
                resource.clone(),
                ErrorKind::Invalid,
                None,
                message,
            ))
        };
        let objects = entries
            .iter()
            .map(|e| {
                ObjectIdentifier::builder()
                    .key(&e.key)
                    .version_id(&e.version_id)
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(e.to_string()))?;
        let delete = Delete::builder()
            .set_objects(Some(objects))
            .quiet(false)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        self.metrics.aws.s3_called(S3Op::DeleteObjects);
        let out = self
            .client
            .delete_objects()
            .bucket(&self.name)
            .delete(delete)
            .send()
            .await
            .map_err(|e| self.sdk_failed("DeleteObjects", resource.clone(), e))?;
        Ok(DeleteReport {
            deleted: out
                .deleted()
                .iter()
                .map(|d| {
                    (
                        d.key().unwrap_or_default().to_string(),
                        d.version_id().unwrap_or("null").to_string(),
                    )
                })
                .collect(),
            errors: out
                .errors()
                .iter()
                .map(|e| EntryError {
                    key: e.key().unwrap_or_default().to_string(),
                    version_id: e.version_id().unwrap_or("null").to_string(),
                    code: e.code().unwrap_or("Unknown").to_string(),
                    message: e.message().unwrap_or_default().to_string(),
                })
                .collect(),
        })
    }

    /// Deletes one version with DeleteObject: for a key [`xml_safe`] says a DeleteObjects body
    /// cannot carry (the key travels in the URL path instead).
    pub(crate) async fn delete_version(&self, entry: &Entry) -> Result<(), AwsError> {
        self.metrics.aws.s3_called(S3Op::DeleteObject);
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(&entry.key)
            .version_id(&entry.version_id)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| self.sdk_failed("DeleteObject", self.uri(&entry.key), e))
    }

    /// A version's replication status (`REPLICA` when S3 Replication wrote it), from
    /// HeadObject; `None` when it has none.
    pub(crate) async fn replication_status(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Option<String>, AwsError> {
        self.metrics.aws.s3_called(S3Op::HeadObject);
        let out = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .version_id(version_id)
            .send()
            .await
            .map_err(|e| self.sdk_failed("HeadObject", self.uri(key), e))?;
        Ok(out.replication_status().map(|s| s.as_str().to_string()))
    }

    /// Reads a small object whole; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Fetched>, AwsError> {
        self.metrics.aws.s3_called(S3Op::GetObject);
        let out = match self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(self.sdk_failed("GetObject", self.uri(key), e));
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| {
                self.failed(AwsError::in_response(
                    Service::S3,
                    "GetObject",
                    self.uri(key),
                    ErrorKind::Network,
                    None,
                    e.to_string(),
                ))
            })?
            .into_bytes()
            .to_vec();
        Ok(Some(Fetched { body, etag }))
    }

    /// Writes a small JSON object under `condition`.
    pub async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        condition: Condition<'_>,
    ) -> Result<Put, AwsError> {
        let mut req = self
            .client
            .put_object()
            .bucket(&self.name)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        req = match condition {
            Condition::Create => req.if_none_match("*"),
            Condition::Replace(etag) => req.if_match(etag),
            Condition::Overwrite => req,
        };
        self.metrics.aws.s3_called(S3Op::PutObject);
        match req.send().await {
            Ok(out) => Ok(Put::Written {
                etag: out.e_tag().unwrap_or_default().to_string(),
            }),
            Err(e) => {
                let e = AwsError::from_sdk(Service::S3, "PutObject", self.uri(key), e);
                match (e.kind, e.code.as_deref()) {
                    (_, Some("ConditionalRequestConflict")) => Ok(Put::Busy),
                    (ErrorKind::Precondition, _) => Ok(Put::Conflict),
                    _ => Err(self.failed(e)),
                }
            }
        }
    }
}

/// Merges two lists sorted by key into one, keeping each list's order within a key.
fn merge_by_key(a: Vec<Entry>, b: Vec<Entry>) -> Vec<Entry> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut b = b.into_iter().peekable();
    for x in a {
        while let Some(y) = b.next_if(|y| y.key < x.key) {
            out.push(y);
        }
        out.push(x);
    }
    out.extend(b);
    out
}

pub(crate) fn to_chrono(t: &aws_smithy_types::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.secs(), t.subsec_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(key: &str, v: &str, dm: bool) -> Entry {
        Entry {
            key: key.into(),
            version_id: v.into(),
            delete_marker: dm,
            last_modified: None,
        }
    }

    #[test]
    fn versions_and_markers_merge_in_key_order() {
        let versions = vec![e("a", "1", false), e("c", "2", false), e("c", "3", false)];
        let markers = vec![e("b", "m1", true), e("c", "m2", true), e("d", "m3", true)];
        let keys: Vec<(String, String)> = merge_by_key(versions, markers)
            .into_iter()
            .map(|x| (x.key, x.version_id))
            .collect();
        let want: Vec<(String, String)> = [
            ("a", "1"),
            ("b", "m1"),
            ("c", "2"),
            ("c", "3"),
            ("c", "m2"),
            ("d", "m3"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(keys, want);
    }
}
