//! Per-date claim objects in S3: the coordination between replicas and the memory across
//! restarts.
//!
//! A claim is created with `If-None-Match: *` (exactly one creator wins) and every later write
//! uses `If-Match` on the ETag read (a writer that lost track of the object loses the write).
//! It records the filters, the execution ARNs and their results, status, attempts and times.

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_types::error::display::DisplayErrorContext;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::metrics::Metrics;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClaimStatus {
    Running,
    Success,
    Failed,
}

/// One filter of a date's plan and the execution that ran it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Chunk {
    pub filter: String,
    pub patterns: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// Last DataSync status seen (`SUCCESS`, `ERROR`, `TRANSFERRING`...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default)]
    pub files_transferred: i64,
    #[serde(default)]
    pub bytes_transferred: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claim {
    pub date: NaiveDate,
    pub status: ClaimStatus,
    pub holder: String,
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The dates whose partitions the filters cover (the date and its lookback window).
    #[serde(default)]
    pub window: Vec<NaiveDate>,
    #[serde(default)]
    pub projects: usize,
    #[serde(default)]
    pub chunks: Vec<Chunk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A claim as read, with the ETag that guards the next write.
#[derive(Debug, Clone)]
pub struct Stored {
    pub claim: Claim,
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading claim s3://{bucket}/{key}: {reason}")]
    Read {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("claim s3://{bucket}/{key} is not valid JSON: {reason}")]
    Corrupt {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("writing claim s3://{bucket}/{key}: {reason}")]
    Write {
        bucket: String,
        key: String,
        reason: String,
    },
}

/// Result of a conditional write.
#[derive(Debug)]
pub enum Written {
    Ok(String),
    /// Someone else wrote first (412 or 409): this writer does not own the claim.
    Conflict,
}

#[derive(Clone)]
pub struct StateStore {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
    metrics: Metrics,
}

impl StateStore {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, prefix: &str, metrics: Metrics) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
            metrics,
        }
    }

    pub fn key(&self, date: NaiveDate) -> String {
        format!("{}claims/{}.json", self.prefix, date.format("%Y-%m-%d"))
    }

    /// Proves the state bucket is reachable (readiness).
    pub async fn probe(&self) -> Result<(), StateError> {
        self.metrics.s3_request("ListObjectsV2");
        self.client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(&self.prefix)
            .max_keys(1)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StateError::Read {
                bucket: self.bucket.clone(),
                key: self.prefix.clone(),
                reason: DisplayErrorContext(&e).to_string(),
            })
    }

    pub async fn get(&self, date: NaiveDate) -> Result<Option<Stored>, StateError> {
        let key = self.key(date);
        self.metrics.s3_request("GetObject");
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(&key)
            .send()
            .await
        {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => return Ok(None),
            Err(e) => {
                return Err(StateError::Read {
                    bucket: self.bucket.clone(),
                    key,
                    reason: DisplayErrorContext(&e).to_string(),
                });
            }
        };
        let etag = out.e_tag().unwrap_or_default().to_string();
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| StateError::Read {
                bucket: self.bucket.clone(),
                key: key.clone(),
                reason: e.to_string(),
            })?
            .into_bytes();
        let claim = serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            bucket: self.bucket.clone(),
            key,
            reason: e.to_string(),
        })?;
        Ok(Some(Stored { claim, etag }))
    }

    /// Creates the claim only if none exists.
    pub async fn create(&self, claim: &Claim) -> Result<Written, StateError> {
        self.put(claim, None).await
    }

    /// Replaces the claim only if it still has `etag`.
    pub async fn update(&self, claim: &Claim, etag: &str) -> Result<Written, StateError> {
        self.put(claim, Some(etag)).await
    }

    async fn put(&self, claim: &Claim, etag: Option<&str>) -> Result<Written, StateError> {
        let key = self.key(claim.date);
        let body = serde_json::to_vec_pretty(claim).map_err(|e| StateError::Write {
            bucket: self.bucket.clone(),
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let mut req = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type("application/json")
            .body(ByteStream::from(body));
        req = match etag {
            None => req.if_none_match("*"),
            Some(t) => req.if_match(t),
        };
        self.metrics.s3_request("PutObject");
        match req.send().await {
            Ok(out) => Ok(Written::Ok(out.e_tag().unwrap_or_default().to_string())),
            Err(e) => {
                let status = e.raw_response().map(|r| r.status().as_u16());
                if matches!(status, Some(412) | Some(409)) {
                    Ok(Written::Conflict)
                } else {
                    Err(StateError::Write {
                        bucket: self.bucket.clone(),
                        key,
                        reason: DisplayErrorContext(&e).to_string(),
                    })
                }
            }
        }
    }
}
