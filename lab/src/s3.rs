//! The S3 side: `s3s` speaks the protocol (routing, XML); this maps its operations onto the
//! [`Store`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use s3s::dto::*;
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result, s3_error};

use crate::faults::{Before, Faults};
use crate::stats::Stats;
use crate::store::{Actor, Store, StoreError, Version};

#[derive(Clone)]
pub struct LabS3 {
    pub store: Arc<Store>,
    pub stats: Arc<Stats>,
    pub faults: Arc<Faults>,
}

/// S3's codes and messages.
fn err(e: StoreError) -> S3Error {
    match e {
        StoreError::NoSuchBucket => s3_error!(NoSuchBucket, "The specified bucket does not exist"),
        StoreError::NoSuchKey => s3_error!(NoSuchKey, "The specified key does not exist."),
        StoreError::BucketExists => s3_error!(
            BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it."
        ),
        StoreError::PreconditionFailed => s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        ),
        StoreError::AccessDenied => s3_error!(AccessDenied, "Access Denied"),
    }
}

/// Whether XML 1.0 can carry `c` (its `Char` production).
fn xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// A key as S3 writes it with `EncodingType=url`: form-encoded (a space is `+`).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Encodes `s` when the request asked for `EncodingType=url`.
fn encoded(s: String, url: bool) -> String {
    if url { url_encode(&s) } else { s }
}

fn wants_url(e: &Option<EncodingType>) -> bool {
    e.as_ref().is_some_and(|e| e.as_str() == EncodingType::URL)
}

/// A continuation token that any key can hide in (hex of the key).
fn token(key: &str) -> String {
    hex::encode(key.as_bytes())
}

fn untoken(t: &str) -> S3Result<String> {
    hex::decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}

fn ts(v: &Version) -> Timestamp {
    Timestamp::from(v.modified)
}

fn etag(v: &Version) -> Option<ETag> {
    ETag::parse_http_header(v.etag.as_bytes()).ok()
}

fn vid(id: &str) -> Option<String> {
    (id != "null").then(|| id.to_string())
}

/// Page sizes as S3 takes them: 1 to 1,000 (default 1,000).
fn page_size(max_keys: Option<i32>) -> usize {
    max_keys.map_or(1000, |m| m.clamp(1, 1000) as usize)
}

impl LabS3 {
    fn count(&self, op: &str) {
        self.stats.count(&format!("s3:{op}"));
    }

    /// Counts a request on `subject` (a key or a listing's prefix) in `bucket` and draws its
    /// faults: an error instead of the work, or the delay its answer waits after the work.
    fn enter(&self, op: &str, bucket: &str, subject: &str) -> S3Result<Option<Duration>> {
        self.count(op);
        // Per bucket as well, for benchmarks that compare the two sides of a walk.
        self.stats.count(&format!("bucket:{bucket}:s3:{op}"));
        let drawn = self.faults.draw(bucket, subject);
        match drawn.fault {
            Some(Before::InternalError) => Err(s3_error!(
                InternalError,
                "We encountered an internal error. Please try again."
            )),
            Some(Before::SlowDown) => Err(s3_error!(SlowDown, "Please reduce your request rate.")),
            None => Ok(drawn.delay),
        }
    }

    /// The answer, after the delay drawn for it.
    async fn answer<T>(&self, delay: Option<Duration>, out: T) -> S3Result<S3Response<T>> {
        if let Some(d) = delay {
            tokio::time::sleep(d).await;
        }
        Ok(S3Response::new(out))
    }

    /// A write or delete that did its work may still answer 500 (the client cannot tell).
    fn after_write(&self, bucket: &str) -> S3Result<()> {
        if self.faults.error_after(bucket) {
            return Err(s3_error!(
                InternalError,
                "We encountered an internal error. Please try again."
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl S3 for LabS3 {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.count("CreateBucket");
        self.store.create_bucket(&req.input.bucket).map_err(err)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{}", req.input.bucket)),
        }))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.count("HeadBucket");
        if !self.store.bucket_exists(&req.input.bucket) {
            return Err(err(StoreError::NoSuchBucket));
        }
        Ok(S3Response::new(HeadBucketOutput::default()))
    }

    async fn put_bucket_versioning(
        &self,
        req: S3Request<PutBucketVersioningInput>,
    ) -> S3Result<S3Response<PutBucketVersioningOutput>> {
        self.count("PutBucketVersioning");
        let status = req
            .input
            .versioning_configuration
            .status
            .map(|s| s.as_str().to_string())
            .unwrap_or_else(|| "Suspended".into());
        self.store
            .set_versioning(&req.input.bucket, &status)
            .map_err(err)?;
        Ok(S3Response::new(PutBucketVersioningOutput::default()))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.count("GetBucketVersioning");
        let status = self.store.versioning(&req.input.bucket).map_err(err)?;
        Ok(S3Response::new(GetBucketVersioningOutput {
            status: status.map(BucketVersioningStatus::from),
            ..Default::default()
        }))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let input = req.input;
        let delay = self.enter("PutObject", &input.bucket, &input.key)?;
        let body = match input.body {
            Some(blob) => s3s::Body::from(blob)
                .store_all_limited(64 << 20)
                .await
                .map_err(|e| S3Error::with_message(S3ErrorCode::IncompleteBody, e.to_string()))?,
            None => Bytes::new(),
        };
        let if_none_match = input.if_none_match.as_ref().is_some_and(|c| c.is_any());
        let if_match = input
            .if_match
            .as_ref()
            .and_then(|c| c.as_etag())
            .map(|e| e.value().to_string());
        let v = self
            .store
            .put(
                &input.bucket,
                &input.key,
                body,
                if_none_match,
                if_match.as_deref(),
            )
            .map_err(err)?;
        self.after_write(&input.bucket)?;
        self.answer(
            delay,
            PutObjectOutput {
                e_tag: etag(&v),
                version_id: vid(&v.id),
                ..Default::default()
            },
        )
        .await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let i = req.input;
        let delay = self.enter("GetObject", &i.bucket, &i.key)?;
        let v = self
            .store
            .get(&i.bucket, &i.key, i.version_id.as_deref())
            .map_err(err)?;
        let len = v.body.len() as i64;
        self.answer(
            delay,
            GetObjectOutput {
                body: Some(StreamingBlob::from(s3s::Body::from(v.body.clone()))),
                content_length: Some(len),
                e_tag: etag(&v),
                last_modified: Some(ts(&v)),
                version_id: vid(&v.id),
                ..Default::default()
            },
        )
        .await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let i = req.input;
        let delay = self.enter("HeadObject", &i.bucket, &i.key)?;
        let v = self
            .store
            .get(&i.bucket, &i.key, i.version_id.as_deref())
            .map_err(err)?;
        self.answer(
            delay,
            HeadObjectOutput {
                replication_status: v
                    .replica
                    .then(|| ReplicationStatus::from_static(ReplicationStatus::REPLICA)),
                content_length: Some(v.body.len() as i64),
                e_tag: etag(&v),
                last_modified: Some(ts(&v)),
                version_id: vid(&v.id),
                ..Default::default()
            },
        )
        .await
    }

    async fn put_object_legal_hold(
        &self,
        req: S3Request<PutObjectLegalHoldInput>,
    ) -> S3Result<S3Response<PutObjectLegalHoldOutput>> {
        let i = req.input;
        let delay = self.enter("PutObjectLegalHold", &i.bucket, &i.key)?;
        let on = i
            .legal_hold
            .and_then(|h| h.status)
            .is_some_and(|s| s.as_str() == ObjectLockLegalHoldStatus::ON);
        let id = match i.version_id {
            Some(v) => v,
            None => self.store.get(&i.bucket, &i.key, None).map_err(err)?.id,
        };
        self.store
            .hold(Actor::Client, &i.bucket, &i.key, &id, on)
            .map_err(err)?;
        self.answer(delay, PutObjectLegalHoldOutput::default())
            .await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let i = req.input;
        let delay = self.enter("DeleteObject", &i.bucket, &i.key)?;
        let d = self
            .store
            .delete(&i.bucket, &i.key, i.version_id.as_deref())
            .map_err(err)?;
        self.after_write(&i.bucket)?;
        self.answer(
            delay,
            DeleteObjectOutput {
                delete_marker: d.delete_marker.then_some(true),
                version_id: d.delete_marker_version_id.or(d.version_id),
                ..Default::default()
            },
        )
        .await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let i = req.input;
        let first = i.delete.objects.first().map(|o| o.key.clone());
        let delay = self.enter(
            "DeleteObjects",
            &i.bucket,
            first.as_deref().unwrap_or_default(),
        )?;
        if i.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "more than 1000 objects"));
        }
        // S3 reads the body as XML 1.0: a key it cannot carry makes the whole body malformed.
        if i.delete
            .objects
            .iter()
            .any(|o| !o.key.chars().all(xml_char))
        {
            return Err(s3_error!(
                MalformedXML,
                "The XML you provided was not well-formed or did not validate against our published schema"
            ));
        }
        let quiet = i.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in i.delete.objects {
            match self
                .store
                .delete(&i.bucket, &o.key, o.version_id.as_deref())
            {
                Ok(d) if !quiet => deleted.push(DeletedObject {
                    key: Some(d.key),
                    version_id: d.version_id,
                    delete_marker: d.delete_marker.then_some(true),
                    delete_marker_version_id: d.delete_marker_version_id,
                }),
                Ok(_) => {}
                Err(StoreError::AccessDenied) => errors.push(Error {
                    code: Some("AccessDenied".into()),
                    key: Some(o.key),
                    message: Some("Access Denied".into()),
                    version_id: o.version_id,
                }),
                Err(e) => return Err(err(e)),
            }
        }
        self.after_write(&i.bucket)?;
        self.answer(
            delay,
            DeleteObjectsOutput {
                deleted: Some(deleted),
                errors: (!errors.is_empty()).then_some(errors),
                ..Default::default()
            },
        )
        .await
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let i = req.input;
        let delay = self.enter(
            "ListObjectVersions",
            &i.bucket,
            i.prefix.as_deref().unwrap_or_default(),
        )?;
        let url = wants_url(&i.encoding_type);
        if i.delimiter.as_deref().is_some_and(|d| !d.is_empty()) {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "the lab lists versions without a delimiter",
            ));
        }
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = self.faults.page(&i.bucket, page_size(i.max_keys));
        let l = self
            .store
            .list_versions(
                &i.bucket,
                &prefix,
                i.key_marker.as_deref().filter(|k| !k.is_empty()),
                i.version_id_marker.as_deref().filter(|v| !v.is_empty()),
                max,
            )
            .map_err(err)?;
        let mut versions = Vec::new();
        let mut markers = Vec::new();
        for (key, v, latest) in l.entries {
            if v.delete_marker {
                markers.push(DeleteMarkerEntry {
                    key: Some(encoded(key, url)),
                    version_id: Some(v.id.clone()),
                    is_latest: Some(latest),
                    last_modified: Some(ts(&v)),
                    ..Default::default()
                });
            } else {
                versions.push(ObjectVersion {
                    key: Some(encoded(key, url)),
                    version_id: Some(v.id.clone()),
                    is_latest: Some(latest),
                    last_modified: Some(ts(&v)),
                    e_tag: etag(&v),
                    size: Some(v.body.len() as i64),
                    ..Default::default()
                });
            }
        }
        let truncated = l.next.is_some();
        let (next_key, next_version) = match l.next {
            // A faulty store: more to come, and no word of where it starts.
            Some(_) if self.faults.truncate(&i.bucket) => (None, None),
            next => next.unzip(),
        };
        self.answer(
            delay,
            ListObjectVersionsOutput {
                encoding_type: i.encoding_type.clone(),
                name: Some(i.bucket),
                prefix: Some(encoded(prefix, url)),
                key_marker: i.key_marker.map(|k| encoded(k, url)),
                version_id_marker: i.version_id_marker,
                max_keys: Some(max as i32),
                is_truncated: Some(truncated),
                next_key_marker: next_key.map(|k| encoded(k, url)),
                next_version_id_marker: next_version,
                versions: Some(versions),
                delete_markers: Some(markers),
                ..Default::default()
            },
        )
        .await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let i = req.input;
        let delay = self.enter(
            "ListObjectsV2",
            &i.bucket,
            i.prefix.as_deref().unwrap_or_default(),
        )?;
        let url = wants_url(&i.encoding_type);
        let prefix = i.prefix.clone().unwrap_or_default();
        let max = self.faults.page(&i.bucket, page_size(i.max_keys));
        let after = match &i.continuation_token {
            Some(t) => Some(untoken(t)?),
            None => i.start_after.clone(),
        };
        let l = self
            .store
            .list_objects(
                &i.bucket,
                &prefix,
                i.delimiter.as_deref(),
                after.as_deref(),
                max,
            )
            .map_err(err)?;
        let contents: Vec<Object> = l
            .objects
            .iter()
            .map(|(k, v)| Object {
                key: Some(encoded(k.clone(), url)),
                last_modified: Some(ts(v)),
                e_tag: etag(v),
                size: Some(v.body.len() as i64),
                ..Default::default()
            })
            .collect();
        let prefixes: Vec<CommonPrefix> = l
            .common_prefixes
            .iter()
            .map(|p| CommonPrefix {
                prefix: Some(encoded(p.clone(), url)),
            })
            .collect();
        let truncated = l.next.is_some();
        let next = match l.next {
            Some(_) if self.faults.truncate(&i.bucket) => None,
            next => next.map(|k| token(&k)),
        };
        self.answer(
            delay,
            ListObjectsV2Output {
                encoding_type: i.encoding_type.clone(),
                name: Some(i.bucket),
                prefix: Some(encoded(prefix, url)),
                max_keys: Some(max as i32),
                key_count: Some((contents.len() + prefixes.len()) as i32),
                is_truncated: Some(truncated),
                next_continuation_token: next,
                continuation_token: i.continuation_token,
                contents: Some(contents),
                common_prefixes: Some(prefixes),
                delimiter: i.delimiter.map(|d| encoded(d, url)),
                start_after: i.start_after.map(|s| encoded(s, url)),
                ..Default::default()
            },
        )
        .await
    }
}
