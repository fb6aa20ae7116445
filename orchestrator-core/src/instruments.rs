//! The orchestrator's metrics, recorded through the [`metrics`] facade: the application
//! installs the recorder it wants (Prometheus, StatsD, …); without one, recording costs one
//! check of the global recorder and building the key (BENCHMARKS.md measures it).
//!
//! Recorded once, in [`crate::BackendHandle`], so every backend (custom ones included) has
//! them. Labels: `backend` is the instance name, `kind` its engine kind.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `orchestrator_schedule_total` | counter | `backend`, `kind`, `type`, `outcome` | tasks scheduled (`outcome` = `ok` or the error kind, `invalid_input`, `unavailable`, …); a bulk call counts each task |
//! | `orchestrator_operation_duration_seconds` | histogram | `backend`, `kind`, `op`, `outcome` | one engine operation: `op` = `schedule`, `schedule_bulk`, `status`, `cancel`, `wait`, `list`, `counts`, `health`; `outcome` = `ok` or `error` |
//! | `orchestrator_tasks` | gauge | `backend`, `kind`, `state` | tasks per state, as [`crate::Orchestrator::record_task_counts`] last read them (a sampler calls it periodically) |

use std::sync::Arc;
use std::time::Instant;

use metrics::SharedString;

use crate::error::{Error, ErrorKind};
use crate::task::TaskType;

/// Tasks scheduled: counter.
pub const SCHEDULE_TOTAL: &str = "orchestrator_schedule_total";
/// One engine operation's duration: histogram, in seconds.
pub const OPERATION_DURATION: &str = "orchestrator_operation_duration_seconds";
/// Tasks per state from the last sample: gauge.
pub const TASKS: &str = "orchestrator_tasks";

/// Describe every metric (help text and unit) to the installed recorder. Call it once after
/// installing one; exporters show the descriptions (Prometheus `# HELP`).
pub fn describe() {
    metrics::describe_counter!(
        SCHEDULE_TOTAL,
        metrics::Unit::Count,
        "Tasks scheduled, by instance, kind, task type and outcome (ok or the error kind)."
    );
    metrics::describe_histogram!(
        OPERATION_DURATION,
        metrics::Unit::Seconds,
        "Duration of one operation on an instance (schedule, schedule_bulk, status, cancel, wait, list, counts, health)."
    );
    metrics::describe_gauge!(
        TASKS,
        metrics::Unit::Count,
        "Tasks per instance and state, from the last sample of counts."
    );
}

/// An error kind as a label value.
pub(crate) fn kind_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidInput => "invalid_input",
        ErrorKind::InvalidTaskId => "invalid_task_id",
        ErrorKind::InvalidConfig => "invalid_config",
        ErrorKind::NoBackend => "no_backend",
        ErrorKind::NotFound => "not_found",
        ErrorKind::AlreadyExists => "already_exists",
        ErrorKind::Unavailable => "unavailable",
        ErrorKind::Timeout => "timeout",
        ErrorKind::Unauthorized => "unauthorized",
        ErrorKind::RateLimited => "rate_limited",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::Rejected => "rejected",
        ErrorKind::TrackingFailed => "tracking_failed",
        ErrorKind::Unexpected => "unexpected",
    }
}

/// One instance's labels, built once per handle (the name shared, never copied per call).
#[derive(Clone)]
pub(crate) struct InstanceLabels {
    backend: SharedString,
    kind: &'static str,
}

impl InstanceLabels {
    pub(crate) fn new(name: &str, kind: &'static str) -> Self {
        Self {
            backend: SharedString::from_shared(Arc::<str>::from(name)),
            kind,
        }
    }

    /// Count one scheduled task of `task_type` with its outcome.
    pub(crate) fn scheduled<T>(&self, task_type: TaskType, result: &Result<T, Error>) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(e) => kind_label(e.kind()),
        };
        metrics::counter!(
            SCHEDULE_TOTAL,
            "backend" => self.backend.clone(),
            "kind" => self.kind,
            "type" => task_type.as_str(),
            "outcome" => outcome,
        )
        .increment(1);
    }

    /// Record one operation `op` that started at `started`.
    pub(crate) fn operation(&self, op: &'static str, started: Instant, ok: bool) {
        metrics::histogram!(
            OPERATION_DURATION,
            "backend" => self.backend.clone(),
            "kind" => self.kind,
            "op" => op,
            "outcome" => if ok { "ok" } else { "error" },
        )
        .record(started.elapsed().as_secs_f64());
    }

    /// Set the gauge of tasks in `state`.
    pub(crate) fn tasks(&self, state: &'static str, count: u64) {
        metrics::gauge!(
            TASKS,
            "backend" => self.backend.clone(),
            "kind" => self.kind,
            "state" => state,
        )
        .set(count as f64);
    }
}
