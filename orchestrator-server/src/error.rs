//! RFC 9457 problem details, and the one table from error kind to HTTP status.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use orchestrator_core::{Error, ErrorKind};
use serde::Serialize;

/// The HTTP status of an error kind. Engine credentials refused are `502` (the engine
/// refused *us*), never `401`, which is for the caller's token.
pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput | ErrorKind::InvalidTaskId => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::AlreadyExists => StatusCode::CONFLICT,
        ErrorKind::Unsupported | ErrorKind::Rejected => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable | ErrorKind::NoBackend => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unauthorized | ErrorKind::TrackingFailed => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An RFC 9457 problem: `application/problem+json`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:orchestrator:<kind>`, or `about:blank` for
    /// problems of the HTTP layer (token, host, body size).
    #[serde(rename = "type")]
    pub kind_uri: String,
    /// A short summary of the type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// This occurrence, as the error's `Display` says it (never a secret).
    pub detail: String,
    /// The orchestrator's error kind (`INVALID_INPUT`, `NOT_FOUND`, …), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    /// Whether the same request may succeed later.
    pub retryable: bool,
}

impl Problem {
    /// The problem of an orchestrator error.
    pub fn of(e: &Error) -> Self {
        let kind = e.kind();
        let status = http_status(kind);
        let name = serde_json::to_value(kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "UNEXPECTED".into());
        Self {
            kind_uri: format!("urn:orchestrator:{}", name.to_ascii_lowercase()),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: e.to_string(),
            kind: Some(kind),
            retryable: e.is_retryable(),
        }
    }

    /// A problem of the HTTP layer itself.
    pub fn http(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind_uri: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            kind: None,
            retryable: false,
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

/// An orchestrator error as a response.
pub(crate) struct ApiError(pub(crate) Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        Problem::of(&self.0).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_status() {
        let table = [
            (ErrorKind::InvalidInput, 400),
            (ErrorKind::InvalidTaskId, 400),
            (ErrorKind::InvalidConfig, 500),
            (ErrorKind::NoBackend, 503),
            (ErrorKind::NotFound, 404),
            (ErrorKind::AlreadyExists, 409),
            (ErrorKind::Unavailable, 503),
            (ErrorKind::Timeout, 504),
            (ErrorKind::Unauthorized, 502),
            (ErrorKind::RateLimited, 429),
            (ErrorKind::Unsupported, 422),
            (ErrorKind::Rejected, 422),
            (ErrorKind::TrackingFailed, 502),
            (ErrorKind::Unexpected, 500),
        ];
        for (kind, status) in table {
            assert_eq!(http_status(kind).as_u16(), status, "{kind:?}");
        }
        let p = Problem::of(&Error::invalid("name", "must not be empty"));
        assert_eq!(
            (p.kind_uri.as_str(), p.status, p.kind),
            (
                "urn:orchestrator:invalid_input",
                400,
                Some(ErrorKind::InvalidInput)
            )
        );
        let json = serde_json::to_value(&p).expect("json");
        assert_eq!(json["kind"], "INVALID_INPUT");
        assert_eq!(json["type"], "urn:orchestrator:invalid_input");
    }
}
