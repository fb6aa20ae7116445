//! The one error type of the orchestrator.
//!
//! [`Error`] is an enum a caller can `match` on; [`Error::kind`] folds it into a coarse
//! [`ErrorKind`] for code that only cares about the category, and [`Error::is_retryable`]
//! says whether trying again later can help. Engine errors (Redis, gRPC, HTTP) are kept as
//! [`std::error::Error::source`] so a caller can still downcast to them.

use std::fmt;

use crate::task::TaskType;

/// A boxed engine error kept as the `source()` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used across the orchestrator crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Coarse category of an [`Error`], stable enough to branch on. Its serde form (in
/// `errors[]` of a listing) is the variant's name in `SCREAMING_SNAKE_CASE`
/// (`UNAVAILABLE`, `TIMEOUT`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input (name, payload, options) was rejected before any I/O.
    InvalidInput,
    /// A task id string could not be parsed.
    InvalidTaskId,
    /// The configuration is invalid or incomplete.
    InvalidConfig,
    /// No backend is configured for a task type, or a backend name is unknown.
    NoBackend,
    /// The task (or workflow, or execution) does not exist.
    NotFound,
    /// A task with the same id already exists and the policy forbids reusing it.
    AlreadyExists,
    /// The engine could not be reached (connection refused, DNS, pool exhausted).
    Unavailable,
    /// The engine did not answer within the configured timeout.
    Timeout,
    /// The engine refused our credentials.
    Unauthorized,
    /// The engine asked us to slow down.
    RateLimited,
    /// The backend does not support this operation.
    Unsupported,
    /// The engine rejected the request for a reason of its own.
    Rejected,
    /// The COMPLEX task started but its tracking task could not be scheduled.
    TrackingFailed,
    /// Anything else: a bug or an engine answer we do not understand.
    Unexpected,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A field of the caller's input that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid `{field}`: {reason}")]
pub struct ValidationError {
    /// Path of the offending field in camelCase, as the seed's option objects spell it
    /// (for example `temporal.workflowType` or `priority`).
    pub field: String,
    /// What is wrong and how to fix it.
    pub reason: String,
}

impl ValidationError {
    /// Build a validation error for `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Every way an orchestrator call can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The caller's input was rejected before any I/O.
    #[error(transparent)]
    InvalidInput(#[from] ValidationError),

    /// A task id string could not be parsed.
    #[error(transparent)]
    InvalidTaskId(#[from] crate::id::TaskIdError),

    /// The configuration is invalid.
    #[error("invalid configuration: {message}")]
    InvalidConfig {
        /// What is wrong and how to fix it.
        message: String,
        /// The parse error behind it, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// No backend handles this task type.
    #[error("no backend is configured for {task_type} tasks: {hint}")]
    NoRoute {
        /// The task type that has no backend.
        task_type: TaskType,
        /// What to configure (an environment variable, a config key).
        hint: String,
    },

    /// A backend name is not known to this orchestrator.
    #[error("{}", unknown_backend_message(name, available, feature.as_deref()))]
    UnknownBackend {
        /// The name that was asked for.
        name: String,
        /// Names that are available.
        available: Vec<String>,
        /// For a backend this build knows of but was compiled without: the Cargo feature.
        feature: Option<String>,
    },

    /// The task does not exist (never did, or was removed).
    #[error("task `{task_id}` not found")]
    NotFound {
        /// The id that was looked up.
        task_id: String,
    },

    /// A task with this id already exists.
    #[error("task `{task_id}` already exists")]
    AlreadyExists {
        /// The conflicting id.
        task_id: String,
    },

    /// The backend does not support the operation.
    #[error("backend `{backend}` does not support {operation}")]
    Unsupported {
        /// The backend's name.
        backend: String,
        /// The operation that is not supported.
        operation: String,
    },

    /// The request sets an option the target backend does not honour: refused before any
    /// I/O rather than dropped.
    #[error(
        "backend `{backend}` does not support option `{option}`; remove it or route the task to a backend that does"
    )]
    UnsupportedOption {
        /// The backend instance's name.
        backend: String,
        /// The option, as the option object spells it (`delay`, `jobId`, `temporal`).
        option: String,
    },

    /// The request's task type is not one the backend runs.
    #[error(
        "backend `{backend}` does not run {task_type} tasks (it runs {})",
        join_types(runs)
    )]
    WrongTaskType {
        /// The backend instance's name.
        backend: String,
        /// The task type asked for.
        task_type: TaskType,
        /// The task types it runs.
        runs: Vec<TaskType>,
    },

    /// The COMPLEX task was started but its tracking task on `queue` failed: the workflow
    /// runs, only its tracking job is missing. `task_id` is the workflow's id.
    #[error(
        "workflow `{task_id}` started, but its tracking task on queue `{queue}` failed: {source}"
    )]
    TrackingFailed {
        /// The started workflow's id.
        task_id: crate::TaskId,
        /// The tracking queue.
        queue: String,
        /// Why scheduling the tracking task failed.
        #[source]
        source: Box<Error>,
    },

    /// A task of a bulk call that was not sent because the engine failed earlier in the
    /// same call: it was not written, so scheduling it again cannot duplicate it. (A task
    /// whose own call failed with `Unavailable` or `Timeout` may have been written: the
    /// engine's answer was lost.)
    #[error("{backend}: not sent, nothing written ({reason})")]
    NotSent {
        /// The backend's name.
        backend: String,
        /// The failure that stopped the call.
        reason: String,
    },

    /// An engine call failed.
    #[error("{backend}: {kind}: {message}")]
    Engine {
        /// The backend's name.
        backend: String,
        /// The category.
        kind: ErrorKind,
        /// What happened, and what to do about it.
        message: String,
        /// Whether trying again later can succeed.
        retryable: bool,
        /// The engine's original error.
        #[source]
        source: Option<BoxError>,
    },
}

pub(crate) fn join_types(types: &[TaskType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn unknown_backend_message(name: &str, available: &[String], feature: Option<&str>) -> String {
    match feature {
        Some(feature) => format!(
            "backend `{name}` is not compiled in: enable the `{feature}` feature of the `orchestrator` crate"
        ),
        None => format!(
            "unknown backend `{name}`; available: {}",
            if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            }
        ),
    }
}

impl Error {
    /// The coarse category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::InvalidTaskId(_) => ErrorKind::InvalidTaskId,
            Error::InvalidConfig { .. } => ErrorKind::InvalidConfig,
            Error::NoRoute { .. } | Error::UnknownBackend { .. } => ErrorKind::NoBackend,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::AlreadyExists { .. } => ErrorKind::AlreadyExists,
            Error::Unsupported { .. }
            | Error::UnsupportedOption { .. }
            | Error::WrongTaskType { .. } => ErrorKind::Unsupported,
            Error::TrackingFailed { .. } => ErrorKind::TrackingFailed,
            Error::NotSent { .. } => ErrorKind::Unavailable,
            Error::Engine { kind, .. } => *kind,
        }
    }

    /// Whether the same call may succeed if tried again later.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Engine { retryable, .. } => *retryable,
            // The workflow started: retrying the call would start a second one.
            Error::TrackingFailed { .. } => false,
            Error::NotSent { .. } => true,
            _ => false,
        }
    }

    /// A copy of this error without its source (sources are not `Clone`), to hand one
    /// failure to several waiters: the same kind, retryability and message. Engine errors
    /// keep their variant and backend; other variants become an engine error whose message
    /// is this error's text.
    pub fn clone_without_source(&self) -> Error {
        match self {
            Error::Engine {
                backend,
                kind,
                message,
                retryable,
                ..
            } => Error::Engine {
                backend: backend.clone(),
                kind: *kind,
                message: message.clone(),
                retryable: *retryable,
                source: None,
            },
            Error::InvalidConfig { message, .. } => Error::InvalidConfig {
                message: message.clone(),
                source: None,
            },
            Error::NotSent { backend, reason } => Error::NotSent {
                backend: backend.clone(),
                reason: reason.clone(),
            },
            other => Error::Engine {
                backend: "orchestrator".into(),
                kind: other.kind(),
                message: other.to_string(),
                retryable: other.is_retryable(),
                source: None,
            },
        }
    }

    /// An engine error of `kind` from `backend`; retryable by default for
    /// [`ErrorKind::Unavailable`], [`ErrorKind::Timeout`] and [`ErrorKind::RateLimited`].
    pub fn engine(backend: impl Into<String>, kind: ErrorKind, message: impl Into<String>) -> Self {
        Error::Engine {
            backend: backend.into(),
            kind,
            message: message.into(),
            retryable: matches!(
                kind,
                ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::RateLimited
            ),
            source: None,
        }
    }

    /// Attach the engine's original error as `source()`.
    #[must_use]
    pub fn with_source(mut self, err: impl Into<BoxError>) -> Self {
        match &mut self {
            Error::Engine { source, .. } | Error::InvalidConfig { source, .. } => {
                *source = Some(err.into());
            }
            _ => {}
        }
        self
    }

    /// Name the backend instance in an engine error (backends may report their kind).
    #[must_use]
    pub(crate) fn in_instance(mut self, instance: &str) -> Self {
        if let Error::Engine { backend, .. }
        | Error::NotSent { backend, .. }
        | Error::Unsupported { backend, .. } = &mut self
        {
            if backend != instance {
                *backend = instance.to_string();
            }
        }
        self
    }

    /// Override the retry hint of a backend error.
    #[must_use]
    pub fn retryable(mut self, value: bool) -> Self {
        if let Error::Engine { retryable, .. } = &mut self {
            *retryable = value;
        }
        self
    }

    /// An invalid-configuration error.
    pub fn config(message: impl Into<String>) -> Self {
        Error::InvalidConfig {
            message: message.into(),
            source: None,
        }
    }

    /// An invalid-input error on `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput(ValidationError::new(field, reason))
    }

    /// A not-found error for `task_id`.
    pub fn not_found(task_id: impl fmt::Display) -> Self {
        Error::NotFound {
            task_id: task_id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_retry_hints() {
        let e = Error::engine("bullmq", ErrorKind::Unavailable, "connection refused");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.is_retryable());
        let e = Error::engine("bullmq", ErrorKind::Rejected, "bad");
        assert!(!e.is_retryable());
        assert_eq!(
            Error::invalid("priority", "too big").kind(),
            ErrorKind::InvalidInput
        );
    }

    #[test]
    fn unknown_backend_names_the_feature() {
        let e = Error::UnknownBackend {
            name: "temporal".into(),
            available: vec!["memory-bullmq".into()],
            feature: Some("temporal".into()),
        };
        assert!(e.to_string().contains("enable the `temporal` feature"));
        let e = Error::UnknownBackend {
            name: "nope".into(),
            available: vec!["a".into(), "b".into()],
            feature: None,
        };
        assert!(e.to_string().contains("available: a, b"));
    }

    #[test]
    fn source_is_kept() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let e = Error::engine("bullmq", ErrorKind::Unavailable, "down").with_source(io);
        let src = std::error::Error::source(&e).expect("source");
        assert!(src.downcast_ref::<std::io::Error>().is_some());
    }
}
