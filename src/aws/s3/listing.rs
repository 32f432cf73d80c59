//! Listings: one page of versions and delete markers, one page of current objects.

use super::*;

impl Bucket {
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
        let entries = page_entries(&out, &key)?;
        let next = match out.is_truncated() == Some(true) {
            true => Some(Marker {
                key: key(out.next_key_marker())?.ok_or_else(|| {
                    bad("the page says it is truncated but gives no NextKeyMarker".into())
                })?,
                version_id: out.next_version_id_marker().map(str::to_string),
            }),
            false => None,
        };
        if let Some(next) = next.as_ref().filter(|n| start == Some(*n)) {
            return Err(bad(format!(
                "the next page would start where this one did ({}, version {}): the listing does not advance",
                next.key,
                next.version_id.as_deref().unwrap_or("-")
            )));
        }
        Ok(VersionPage { entries, next })
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
}

/// Decodes a listed key (`None` in: none listed).
type KeyDecoder<'a> = dyn Fn(Option<&str>) -> Result<Option<String>, AwsError> + 'a;

/// A version listing page's versions and delete markers, in key order, with their keys
/// decoded by `key` (`None`: not a key to keep).
fn page_entries(
    out: &aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput,
    key: &KeyDecoder,
) -> Result<Vec<Entry>, AwsError> {
    let entry =
        |k: String, v: Option<&str>, dm: bool, at: Option<&aws_smithy_types::DateTime>| Entry {
            key: k,
            version_id: v.unwrap_or("null").to_string(),
            delete_marker: dm,
            last_modified: at.and_then(to_chrono),
        };
    let mut versions = Vec::with_capacity(out.versions().len());
    for v in out.versions() {
        if let Some(k) = key(v.key())? {
            versions.push(entry(k, v.version_id(), false, v.last_modified()));
        }
    }
    let mut markers = Vec::with_capacity(out.delete_markers().len());
    for m in out.delete_markers() {
        if let Some(k) = key(m.key())? {
            markers.push(entry(k, m.version_id(), true, m.last_modified()));
        }
    }
    Ok(merge_by_key(versions, markers))
}
