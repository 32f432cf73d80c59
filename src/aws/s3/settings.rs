//! The bucket's settings the doctor reads: versioning, notifications, replication, lifecycle.

use super::*;

impl Bucket {
    /// The bucket's versioning status (`Enabled`, `Suspended`), `None` if never enabled.
    pub async fn versioning(&self) -> Result<Option<String>, AwsError> {
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(&self.name)
            .send()
            .timed(&self.metrics, S3Op::GetBucketVersioning)
            .await
            .map_err(|e| self.sdk_failed(S3Op::GetBucketVersioning, self.uri(""), e))?;
        Ok(out.status().map(|s| s.as_str().to_string()))
    }

    /// The bucket's event notification configuration.
    pub async fn notifications(
        &self,
    ) -> Result<
        aws_sdk_s3::operation::get_bucket_notification_configuration::GetBucketNotificationConfigurationOutput,
        AwsError,
    >{
        self.client
            .get_bucket_notification_configuration()
            .bucket(&self.name)
            .send()
            .timed(&self.metrics, S3Op::GetBucketNotificationConfiguration)
            .await
            .map_err(|e| self.sdk_failed(S3Op::GetBucketNotificationConfiguration, self.uri(""), e))
    }

    /// The bucket's replication rules; `None` when it has no replication configuration.
    pub async fn replication(&self) -> Result<Option<Vec<ReplicationRule>>, AwsError> {
        let out = match self
            .client
            .get_bucket_replication()
            .bucket(&self.name)
            .send()
            .timed(&self.metrics, S3Op::GetBucketReplication)
            .await
        {
            Ok(o) => o,
            Err(e) if e.code() == Some("ReplicationConfigurationNotFoundError") => {
                return Ok(None);
            }
            Err(e) => return Err(self.sdk_failed(S3Op::GetBucketReplication, self.uri(""), e)),
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
        let out = match self
            .client
            .get_bucket_lifecycle_configuration()
            .bucket(&self.name)
            .send()
            .timed(&self.metrics, S3Op::GetBucketLifecycleConfiguration)
            .await
        {
            Ok(o) => o,
            Err(e) if e.code() == Some("NoSuchLifecycleConfiguration") => return Ok(None),
            Err(e) => {
                return Err(self.sdk_failed(
                    S3Op::GetBucketLifecycleConfiguration,
                    self.uri(""),
                    e,
                ));
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
}
