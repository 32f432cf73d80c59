//! Listings: one page of versions and delete markers, one page of current objects.

use super::*;
use aws_smithy_types::body::SdkBody;

/// How long reading a listing page's body may take once its response arrived.
const PAGE_READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

impl Bucket {
    /// One page of versions and delete markers under `prefix`, continuing at `start`. The
    /// body is read by the lean reader ([`lean`]); the SDK still sends the request and reads
    /// any error.
    pub(crate) async fn list_versions(
        &self,
        prefix: &str,
        start: Option<&Marker>,
    ) -> Result<VersionPage, AwsError> {
        let take = lean::TakeBody::default();
        let out = self
            .client
            .list_object_versions()
            .bucket(&self.name)
            .prefix(prefix)
            .encoding_type(EncodingType::Url)
            .set_key_marker(start.map(|m| m.key.clone()))
            .set_version_id_marker(start.and_then(|m| m.version_id.clone()))
            .customize()
            .interceptor(take.clone())
            .send()
            .timed(&self.metrics, S3Op::ListObjectVersions)
            .await
            .map_err(|e| self.sdk_failed(S3Op::ListObjectVersions, self.uri(prefix), e))?;
        let bad = |message: String| self.bad_page(S3Op::ListObjectVersions, prefix, message);
        let body = match take.take() {
            Some(body) => Some(self.read_page(body, prefix).await?),
            None => None,
        };
        let raw = match &body {
            Some(body) => lean::parse(body).map_err(&bad)?,
            // Nothing taken (a stubbed client's modelled answer): the SDK read the page.
            None => lean::RawPage::from_sdk(&out),
        };
        version_page(raw, start, &bad)
    }

    /// A taken page body, read whole. The SDK's time limits end with its call, so the read
    /// has its own: a page is at most about a megabyte.
    async fn read_page(&self, body: SdkBody, prefix: &str) -> Result<bytes::Bytes, AwsError> {
        let failed = |kind: ErrorKind, message: String| {
            self.failed(AwsError::in_response(
                crate::labels::S3Op::ListObjectVersions.into(),
                self.uri(prefix),
                kind,
                None,
                message,
            ))
        };
        match tokio::time::timeout(PAGE_READ_LIMIT, ByteStream::new(body).collect()).await {
            Ok(Ok(b)) => Ok(b.into_bytes()),
            Ok(Err(e)) => Err(failed(ErrorKind::Network, format!("reading the page: {e}"))),
            Err(_) => Err(failed(
                ErrorKind::Timeout,
                format!("the page was not read within {PAGE_READ_LIMIT:?}"),
            )),
        }
    }

    /// One page of current objects (and common prefixes, with a delimiter) under `prefix`.
    pub(crate) async fn list_objects(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<String>,
    ) -> Result<ObjectPage, AwsError> {
        let out = self
            .client
            .list_objects_v2()
            .bucket(&self.name)
            .prefix(prefix)
            .encoding_type(EncodingType::Url)
            .set_delimiter(delimiter.map(str::to_string))
            .set_continuation_token(token.clone())
            .send()
            .timed(&self.metrics, S3Op::ListObjectsV2)
            .await
            .map_err(|e| self.sdk_failed(S3Op::ListObjectsV2, self.uri(prefix), e))?;
        let bad = |message: String| self.bad_page(S3Op::ListObjectsV2, prefix, message);
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

/// A listed page, its keys decoded (only when the page says they are encoded: a store that
/// ignores the request sends keys as they are, and decoding those would turn `+` into a space),
/// versions and delete markers in key order, and where the next page starts: it must be given
/// when the page is truncated, and be further on than `start`.
fn version_page(
    raw: lean::RawPage,
    start: Option<&Marker>,
    bad: &dyn Fn(String) -> AwsError,
) -> Result<VersionPage, AwsError> {
    let encoded = raw.url_encoded;
    let key = |k: std::borrow::Cow<'_, str>| match encoded {
        true => url_decode(&k).map_err(bad),
        false => Ok(k.into_owned()),
    };
    let entries = |raw: Vec<lean::RawEntry>, delete_marker: bool| {
        let mut out = Vec::with_capacity(raw.len());
        for e in raw {
            if let Some(k) = e.key {
                out.push(Entry {
                    key: key(k)?,
                    version_id: e
                        .version_id
                        .map_or_else(|| "null".to_string(), |v| v.into_owned()),
                    delete_marker,
                    last_modified: e.last_modified,
                });
            }
        }
        Ok::<_, AwsError>(out)
    };
    let versions = entries(raw.versions, false)?;
    let markers = entries(raw.delete_markers, true)?;
    let next = match raw.truncated {
        true => Some(Marker {
            key: key(raw.next_key_marker.ok_or_else(|| {
                bad("the page says it is truncated but gives no NextKeyMarker".into())
            })?)?,
            version_id: raw.next_version_id_marker.map(|v| v.into_owned()),
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
    Ok(VersionPage {
        entries: merge_by_key(versions, markers),
        next,
    })
}
