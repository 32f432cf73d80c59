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

mod lean;
mod listing;
mod objects;
mod settings;
pub(crate) use super::Timed;
use crate::labels::{ErrorKind, S3Op};
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
        operation: S3Op,
        resource: String,
        err: SdkError<E, HttpResponse>,
    ) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        self.failed(AwsError::from_sdk(operation.into(), resource, err))
    }

    /// A page S3 (or something in front of it) answered that cannot be followed safely.
    fn bad_page(&self, operation: S3Op, prefix: &str, message: String) -> AwsError {
        self.failed(AwsError::in_response(
            operation.into(),
            self.uri(prefix),
            ErrorKind::Invalid,
            None,
            message,
        ))
    }

    /// A one-entry version listing: proves the bucket is there, reachable in the configured
    /// region, and listable with the permissions the purge uses.
    pub async fn probe(&self) -> Result<(), AwsError> {
        self.client
            .list_object_versions()
            .bucket(&self.name)
            .max_keys(1)
            .send()
            .timed(&self.metrics, S3Op::ListObjectVersions)
            .await
            .map(|_| ())
            .map_err(|e| self.sdk_failed(S3Op::ListObjectVersions, self.uri(""), e))
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
