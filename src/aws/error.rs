//! One error type for every AWS call: what was called, on what, what kind of failure, the
//! service's message, and the SDK error kept as the source.

use std::error::Error as StdError;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::labels::{AwsOp, ErrorKind, Service};

/// A failed AWS call. `Display` is one readable line: operation, resource, kind, message.
#[derive(Debug, thiserror::Error)]
#[error("{operation} {resource}: {kind}: {message}")]
pub struct AwsError {
    pub service: Service,
    pub operation: AwsOp,
    /// `s3://bucket/key`, a queue URL, a task ARN.
    pub resource: String,
    pub kind: ErrorKind,
    /// The service's error code (`AccessDenied`, `SlowDown`), when it sent one.
    pub code: Option<Box<str>>,
    pub message: String,
    /// The bucket's real region, when S3 said so (`x-amz-bucket-region`, on redirects and
    /// region mismatches).
    pub bucket_region: Option<Box<str>>,
    #[source]
    pub source: Box<dyn StdError + Send + Sync>,
}

impl AwsError {
    pub(crate) fn from_sdk<E>(
        operation: AwsOp,
        resource: impl Into<String>,
        err: SdkError<E, HttpResponse>,
    ) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let bucket_region = err
            .raw_response()
            .and_then(|r| r.headers().get("x-amz-bucket-region"))
            .map(Box::from);
        let (kind, code, message) = match &err {
            SdkError::ServiceError(s) => {
                let e = s.err();
                let code = e.code().map(str::to_string);
                let kind = classify(code.as_deref(), status);
                let message = e
                    .message()
                    .map(str::to_string)
                    .or_else(|| code.clone())
                    // Neither: an unparseable answer; the chain says what did not parse.
                    .unwrap_or_else(|| match status {
                        Some(s) => format!("HTTP {s}: {}", one_line(&err)),
                        None => one_line(&err),
                    });
                (kind, code.map(Box::from), message)
            }
            SdkError::TimeoutError(_) => (
                ErrorKind::Timeout,
                None,
                "no response within the configured timeout".into(),
            ),
            SdkError::DispatchFailure(d) => {
                let kind = if d.is_timeout() {
                    ErrorKind::Timeout
                } else {
                    ErrorKind::Network
                };
                (kind, None, one_line(&err))
            }
            SdkError::ResponseError(_) => (classify(None, status), None, one_line(&err)),
            SdkError::ConstructionFailure(_) => (ErrorKind::Invalid, None, one_line(&err)),
            _ => (ErrorKind::Other, None, one_line(&err)),
        };
        AwsError {
            service: operation.service(),
            operation,
            resource: resource.into(),
            kind,
            code,
            message,
            bucket_region,
            source: Box::new(err),
        }
    }

    /// An error found in an otherwise successful response (a DeleteObjects entry, a field the
    /// service should have sent).
    pub(crate) fn in_response(
        operation: AwsOp,
        resource: impl Into<String>,
        kind: ErrorKind,
        code: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        let message = message.into();
        AwsError {
            service: operation.service(),
            operation,
            resource: resource.into(),
            kind,
            code: code.map(Box::from),
            bucket_region: None,
            source: message.clone().into(),
            message,
        }
    }

    /// Worth trying again later without any change on our side.
    pub(crate) fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Timeout | ErrorKind::Network | ErrorKind::Throttling | ErrorKind::Server
        )
    }
}

/// The error and its sources, each displayed once, on one line (without the raw response
/// that the SDK's `Debug` would add).
fn one_line<E: StdError + 'static>(err: &E) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = next {
        let s = e.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        next = e.source();
    }
    parts.join(": ").replace('\n', " ")
}

/// The kind of a service error, from its code and HTTP status.
pub fn classify(code: Option<&str>, status: Option<u16>) -> ErrorKind {
    let by_code = code.and_then(|c| match c {
        "SlowDown"
        | "Throttling"
        | "ThrottlingException"
        | "ThrottledException"
        | "RequestLimitExceeded"
        | "TooManyRequestsException"
        | "RequestThrottled"
        | "RequestThrottledException"
        | "AWS.SimpleQueueService.RequestThrottled" => Some(ErrorKind::Throttling),
        "AccessDenied"
        | "AccessDeniedException"
        | "Forbidden"
        | "InvalidAccessKeyId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "InvalidClientTokenId"
        | "UnrecognizedClientException"
        | "AllAccessDisabled"
        | "KMS.AccessDeniedException" => Some(ErrorKind::AccessDenied),
        "NoSuchKey"
        | "NoSuchBucket"
        | "NoSuchVersion"
        | "NotFound"
        | "ResourceNotFoundException"
        | "AWS.SimpleQueueService.NonExistentQueue"
        | "QueueDoesNotExist"
        | "NoSuchConfiguration" => Some(ErrorKind::NotFound),
        "PreconditionFailed" | "ConditionalRequestConflict" => Some(ErrorKind::Precondition),
        "InternalError" | "InternalFailure" | "InternalException" | "ServiceUnavailable" => {
            Some(ErrorKind::Server)
        }
        _ => None,
    });
    by_code.unwrap_or(match status {
        Some(429) => ErrorKind::Throttling,
        Some(403) => ErrorKind::AccessDenied,
        Some(404) => ErrorKind::NotFound,
        Some(409 | 412) => ErrorKind::Precondition,
        Some(503) => ErrorKind::Throttling,
        Some(s) if s >= 500 => ErrorKind::Server,
        Some(s) if s >= 400 => ErrorKind::Invalid,
        _ => ErrorKind::Other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_codes_and_statuses() {
        assert_eq!(classify(Some("SlowDown"), Some(503)), ErrorKind::Throttling);
        assert_eq!(
            classify(Some("AccessDenied"), Some(403)),
            ErrorKind::AccessDenied
        );
        assert_eq!(
            classify(Some("NoSuchBucket"), Some(404)),
            ErrorKind::NotFound
        );
        assert_eq!(
            classify(Some("AWS.SimpleQueueService.NonExistentQueue"), Some(400)),
            ErrorKind::NotFound
        );
        assert_eq!(classify(None, Some(412)), ErrorKind::Precondition);
        assert_eq!(classify(None, Some(500)), ErrorKind::Server);
        assert_eq!(
            classify(Some("InvalidRequestException"), Some(400)),
            ErrorKind::Invalid
        );
        assert_eq!(classify(None, None), ErrorKind::Other);
    }
}
