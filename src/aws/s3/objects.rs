//! Objects: the only deletes (DeleteObjects, DeleteObject), a version's replication status, and the small JSON documents of the state bucket.

use super::*;

impl Bucket {
    /// Deletes up to [`DELETE_BATCH`] versions in one request; every entry's fate is reported.
    pub(crate) async fn delete_versions(
        &self,
        entries: &[&Entry],
    ) -> Result<DeleteReport, AwsError> {
        let resource = self.uri(entries.first().map_or("", |e| e.key.as_str()));
        let invalid = |message: String| {
            self.failed(AwsError::in_response(
                crate::labels::S3Op::DeleteObjects.into(),
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
        let out = self
            .client
            .delete_objects()
            .bucket(&self.name)
            .delete(delete)
            .send()
            .timed(&self.metrics, S3Op::DeleteObjects)
            .await
            .map_err(|e| self.sdk_failed(S3Op::DeleteObjects, resource.clone(), e))?;
        Ok(report_of(&out))
    }

    /// Deletes one version with DeleteObject: for a key [`xml_safe`] says a DeleteObjects body
    /// cannot carry (the key travels in the URL path instead).
    pub(crate) async fn delete_version(&self, entry: &Entry) -> Result<(), AwsError> {
        self.client
            .delete_object()
            .bucket(&self.name)
            .key(&entry.key)
            .version_id(&entry.version_id)
            .send()
            .timed(&self.metrics, S3Op::DeleteObject)
            .await
            .map(|_| ())
            .map_err(|e| self.sdk_failed(S3Op::DeleteObject, self.uri(&entry.key), e))
    }

    /// A version's replication status (`REPLICA` when S3 Replication wrote it), from
    /// HeadObject; `None` when it has none.
    pub(crate) async fn replication_status(
        &self,
        key: &str,
        version_id: &str,
    ) -> Result<Option<String>, AwsError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.name)
            .key(key)
            .version_id(version_id)
            .send()
            .timed(&self.metrics, S3Op::HeadObject)
            .await
            .map_err(|e| self.sdk_failed(S3Op::HeadObject, self.uri(key), e))?;
        Ok(out.replication_status().map(|s| s.as_str().to_string()))
    }

    /// Reads a small object whole; `None` when it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<Fetched>, AwsError> {
        let out = match self
            .client
            .get_object()
            .bucket(&self.name)
            .key(key)
            .send()
            .timed(&self.metrics, S3Op::GetObject)
            .await
        {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(self.sdk_failed(S3Op::GetObject, self.uri(key), e));
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let body = out
            .body
            .collect()
            .await
            .map_err(|e| {
                self.failed(AwsError::in_response(
                    crate::labels::S3Op::GetObject.into(),
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
        match req.send().timed(&self.metrics, S3Op::PutObject).await {
            Ok(out) => Ok(Put::Written {
                etag: out.e_tag().unwrap_or_default().to_string(),
            }),
            Err(e) => {
                let e = AwsError::from_sdk(S3Op::PutObject.into(), self.uri(key), e);
                match (e.kind, e.code.as_deref()) {
                    (_, Some("ConditionalRequestConflict")) => Ok(Put::Busy),
                    (ErrorKind::Precondition, _) => Ok(Put::Conflict),
                    _ => Err(self.failed(e)),
                }
            }
        }
    }
}

/// Every entry's fate in a DeleteObjects answer.
fn report_of(out: &aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput) -> DeleteReport {
    DeleteReport {
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
    }
}
