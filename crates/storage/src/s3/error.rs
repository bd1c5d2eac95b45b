//! SDK errors turned into [`StoreError`]s that name the object and, for credential and bucket
//! problems, say what to do. Messages come from the SDK's error context, which never includes
//! credentials.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::StoreError;

/// What a failed request was about, for the message.
pub(super) struct Subject<'a> {
    pub operation: &'static str,
    /// `s3://bucket/prefix/key`.
    pub location: &'a str,
    pub bucket: &'a str,
}

/// The HTTP status and S3 error code of a failed request, where the server answered.
pub(super) fn status_and_code<E: ProvideErrorMetadata>(
    error: &SdkError<E, HttpResponse>,
) -> (Option<u16>, Option<String>) {
    match error {
        SdkError::ServiceError(service) => (
            Some(service.raw().status().as_u16()),
            service.err().code().map(str::to_owned),
        ),
        SdkError::ResponseError(response) => (Some(response.raw().status().as_u16()), None),
        _ => (None, None),
    }
}

pub(super) fn map<E>(subject: &Subject<'_>, error: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let (status, code) = status_and_code(&error);
    let location = subject.location.to_owned();
    match (status, code.as_deref()) {
        (_, Some("NoSuchBucket")) => StoreError::NoSuchBucket {
            bucket: subject.bucket.to_owned(),
            location,
        },
        (_, Some("NoSuchKey" | "NotFound")) | (Some(404), None) => {
            StoreError::NotFound { location }
        }
        (
            _,
            Some("InvalidAccessKeyId" | "SignatureDoesNotMatch" | "InvalidToken" | "ExpiredToken"),
        )
        | (Some(401), _) => StoreError::AccessDenied {
            location,
            hint: format!(
                "the S3 server rejected the credentials ({}); check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the profile named by AWS_PROFILE",
                code.as_deref().unwrap_or("401")
            ),
        },
        (Some(403), _) | (_, Some("AccessDenied")) => StoreError::AccessDenied {
            location,
            hint: format!(
                "the credentials lack permission for {} ({}); check the IAM and bucket policies",
                subject.operation,
                code.as_deref().unwrap_or("403 Forbidden")
            ),
        },
        _ => {
            let message = describe(&error);
            if status.is_none() && message.contains("no credentials found") {
                StoreError::AccessDenied {
                    location,
                    hint: "no AWS credentials found (tried the environment, the profile, web identity, container and instance metadata): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run where a role is available".into(),
                }
            } else if status.is_none() && message.contains("credential") {
                StoreError::AccessDenied {
                    location,
                    hint: format!("the AWS credentials could not be loaded: {message}"),
                }
            } else if is_transient(&error, status, code.as_deref()) {
                StoreError::Unavailable {
                    operation: subject.operation,
                    location,
                    message,
                    source: Some(Box::new(error)),
                }
            } else {
                StoreError::Rejected {
                    operation: subject.operation,
                    location,
                    message,
                    source: Some(Box::new(error)),
                }
            }
        }
    }
}

/// Whether a failure that outlasted the SDK's retries may still pass later: the endpoint did not
/// answer or could not be reached, answered with a server error, or asked the client to slow down.
/// Other answers (a malformed request, a precondition, an unsupported feature) will not change.
fn is_transient<E>(
    error: &SdkError<E, HttpResponse>,
    status: Option<u16>,
    code: Option<&str>,
) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(_) => {
            status.is_some_and(|status| status >= 500 || status == 408 || status == 429)
                || matches!(
                    code,
                    Some(
                        "SlowDown"
                            | "Throttling"
                            | "ThrottlingException"
                            | "RequestTimeout"
                            | "InternalError"
                            | "ServiceUnavailable"
                    )
                )
        }
        _ => false,
    }
}

/// One line: the server's code and message, or what went wrong on the way there.
fn describe<E>(error: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match error {
        SdkError::ServiceError(service) => {
            let err = service.err();
            let answer = match (err.code(), err.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => chain(error),
            };
            let status = service.raw().status().as_u16();
            if status >= 500 {
                // Server errors are retried with backoff before they get here.
                format!("{answer} (HTTP {status}, still failing after retries)")
            } else {
                answer
            }
        }
        SdkError::TimeoutError(_) => format!(
            "the S3 endpoint did not answer in time, on any attempt (it may be stalled or \
             overloaded): {}",
            chain(error)
        ),
        SdkError::DispatchFailure(failure) if failure.is_timeout() => format!(
            "the S3 endpoint did not answer in time, on any attempt (it accepts connections \
             but does not respond: stalled or overloaded): {}",
            chain(error)
        ),
        SdkError::DispatchFailure(_) => {
            format!(
                "cannot reach the S3 endpoint (after retries): {}",
                chain(error)
            )
        }
        _ => chain(error),
    }
}

/// The error and its sources on one line, without the repetitions the SDK's layers add.
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}
