//! gRPC and client errors mapped to the orchestrator's error kinds, once.

use super::*;

pub(super) fn map_status(code: tonic::Code, message: &str, operation: &str) -> Error {
    use tonic::Code;
    let (kind, hint) = match code {
        Code::Unavailable => (
            ErrorKind::Unavailable,
            "is the Temporal server running at the configured url?",
        ),
        Code::DeadlineExceeded => (ErrorKind::Timeout, "the server did not answer in time"),
        Code::Unauthenticated | Code::PermissionDenied => (
            ErrorKind::Unauthorized,
            "check the configured api_key and TLS settings",
        ),
        Code::NotFound => (ErrorKind::NotFound, ""),
        Code::AlreadyExists => (ErrorKind::AlreadyExists, ""),
        Code::InvalidArgument | Code::FailedPrecondition => (ErrorKind::Rejected, ""),
        Code::ResourceExhausted => (ErrorKind::RateLimited, "the server is throttling requests"),
        _ => (ErrorKind::Unexpected, ""),
    };
    let mut text = format!("{operation}: {message}");
    if !hint.is_empty() {
        text.push_str("; ");
        text.push_str(hint);
    }
    Error::engine(NAME, kind, text)
}

pub(super) fn interaction(e: WorkflowInteractionError, id: &TaskId, operation: &str) -> Error {
    match e {
        WorkflowInteractionError::NotFound(_) => Error::not_found(id),
        WorkflowInteractionError::Rpc(s) => {
            let msg = s.message().to_string();
            map_status(s.code(), &msg, operation).with_source(s)
        }
        other => Error::engine(NAME, ErrorKind::Unexpected, format!("{operation}: {other}"))
            .with_source(other),
    }
}

pub(super) fn bad_namespace(e: Error, instance: &str, namespace: &str) -> Error {
    if e.kind() == ErrorKind::NotFound {
        Error::engine(
            NAME,
            ErrorKind::InvalidConfig,
            format!(
                "namespace `{namespace}` does not exist on the server (backends.{instance}.namespace)"
            ),
        )
    } else {
        e
    }
}
