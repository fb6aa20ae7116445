//! Input validation, run before any I/O.
//!
//! [`task`] holds the task model's rules (names, bounds, the options block each task type
//! needs); engine rules that only apply to some backends, such as [`bullmq_rules`]
//! (BullMQ's client-side job-id rules, which its Lua enforces none of, and its priority
//! limit), are referenced from those backends' [`crate::Descriptor`].

use crate::error::ValidationError;
use crate::task::{TaskOptions, TaskType};

/// Highest BullMQ priority value (`PRIORITY_LIMIT`, 2^21 - 1).
pub const MAX_PRIORITY: u32 = 2_097_151;

/// Longest task, queue, job or workflow name accepted.
pub const MAX_NAME_LEN: usize = 512;

/// Longest delay accepted: BullMQ stores `due_ms * 4096` in a double, exact up to 2^53,
/// so the due time must stay below 2^41 ms (year 2039). We cap delays at 10 years and
/// check the absolute bound at schedule time.
pub const MAX_DELAY_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

const MAX_DUE_MS: u64 = 1 << 41;

/// Most attempts a task may ask for (the first run counts).
pub const MAX_ATTEMPTS: u32 = 1000;

/// Largest payload (serialized JSON) of a SIMPLE task by default: BullMQ keeps every job's
/// data in Redis memory. `[backends.<bullmq>] max_payload_bytes` changes it.
pub const DEFAULT_MAX_PAYLOAD_SIMPLE: usize = 1024 * 1024;

/// Largest payload of a COMPLEX task by default: under Temporal's 2 MB limit for one
/// payload, with room for the rest of the start request.
pub const DEFAULT_MAX_PAYLOAD_COMPLEX: usize = 1536 * 1024;

/// Largest payload of an INTEGRATION task by default: n8n's own default request limit
/// (`N8N_PAYLOAD_SIZE_MAX`, 16 MiB).
pub const DEFAULT_MAX_PAYLOAD_INTEGRATION: usize = 16 * 1024 * 1024;

/// The longest retry horizon (all backoff waits of all retries together) a task may ask
/// for: the delay cap.
pub const MAX_RETRY_HORIZON_MS: u64 = MAX_DELAY_MS;

type V = Result<(), ValidationError>;

/// Check a name used as a task, queue, job or workflow name.
pub fn name(field: &str, value: &str) -> V {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(ValidationError::new(
            field,
            format!("is {} bytes long; the limit is {MAX_NAME_LEN}", value.len()),
        ));
    }
    if value.trim() != value {
        return Err(ValidationError::new(
            field,
            "must not start or end with whitespace",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Check a BullMQ queue name: a name without `:` (BullMQ builds keys as `prefix:queue:…`).
pub fn queue_name(field: &str, value: &str) -> V {
    name(field, value)?;
    if value.contains(':') {
        return Err(ValidationError::new(
            field,
            "a queue name must not contain `:` (BullMQ builds its keys as `prefix:queue:suffix`)",
        ));
    }
    Ok(())
}

/// Key names BullMQ (and the orchestrator's cancel, `orchestrator-cancelled`) use inside a
/// queue (`<prefix>:<queue>:<name>`); a job id equal to one would name that key instead of a
/// job.
pub const BULLMQ_KEY_NAMES: &[&str] = &[
    "id",
    "meta",
    "events",
    "wait",
    "paused",
    "active",
    "delayed",
    "prioritized",
    "completed",
    "failed",
    "waiting-children",
    "stalled",
    "stalled-check",
    "limiter",
    "marker",
    "pc",
    "de",
    "repeat",
    "metrics",
    "orchestrator-cancelled",
];

/// Check a custom BullMQ job id the way Node BullMQ does before adding, and refuse the
/// queue's own key names.
pub fn job_id(field: &str, id: &str) -> V {
    name(field, id)?;
    if BULLMQ_KEY_NAMES.contains(&id) {
        return Err(ValidationError::new(
            field,
            format!("`{id}` is one of BullMQ's key names inside a queue; choose another job id"),
        ));
    }
    if id == "0" || id.starts_with("0:") {
        return Err(ValidationError::new(
            field,
            "a job id must not be `0` or start with `0:` (BullMQ reserves them)",
        ));
    }
    if id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValidationError::new(
            field,
            "a custom job id must not be an integer: it would collide with BullMQ's automatic ids",
        ));
    }
    if id.contains(':') && id.split(':').count() != 3 {
        return Err(ValidationError::new(
            field,
            "a job id may contain `:` only in BullMQ's legacy `a:b:c` form",
        ));
    }
    Ok(())
}

fn webhook_url(field: &str, value: &str) -> V {
    let url = url::Url::parse(value)
        .map_err(|e| ValidationError::new(field, format!("`{value}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValidationError::new(
            field,
            format!("scheme `{}` is not http or https", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(field, "the URL has no host"));
    }
    Ok(())
}

/// Validate a whole schedule request against the task model: the task name, the generic
/// bounds (`attempts`, `delay`) and the options block each task type needs. Which options a
/// backend honours is its descriptor's business ([`crate::Descriptor::admit`]), and so are
/// engine rules such as [`bullmq_rules`].
pub fn task(task_name: &str, o: &TaskOptions, now_ms: u64) -> V {
    name("name", task_name)?;
    if o.attempts == Some(0) {
        return Err(ValidationError::new(
            "attempts",
            "must be at least 1 (the first run counts as an attempt)",
        ));
    }
    if let Some(n) = o.attempts.filter(|n| *n > MAX_ATTEMPTS) {
        return Err(ValidationError::new(
            "attempts",
            format!("{n} is above the limit of {MAX_ATTEMPTS}"),
        ));
    }
    if let Some(b) = o.backoff {
        let (delay, exponential) = match b {
            crate::Backoff::Fixed { delay_ms } => (delay_ms, false),
            crate::Backoff::Exponential { delay_ms } => (delay_ms, true),
        };
        if delay > MAX_DELAY_MS {
            return Err(ValidationError::new(
                "backoff.delay",
                format!("{delay} ms is above the limit of {MAX_DELAY_MS} ms"),
            ));
        }
        let horizon = retry_horizon_ms(delay, exponential, o.attempts.unwrap_or(1));
        if horizon > MAX_RETRY_HORIZON_MS {
            return Err(ValidationError::new(
                "backoff",
                format!(
                    "all retries together would wait {} ms, above the limit of {MAX_RETRY_HORIZON_MS} ms (fewer attempts or a shorter delay)",
                    if horizon == u64::MAX {
                        "more than 2^64".to_string()
                    } else {
                        horizon.to_string()
                    }
                ),
            ));
        }
    }
    if let Some(ttl) = o.deduplication.as_ref().and_then(|d| d.ttl) {
        if ttl > MAX_DELAY_MS {
            return Err(ValidationError::new(
                "deduplication.ttl",
                format!("{ttl} ms is above the limit of {MAX_DELAY_MS} ms"),
            ));
        }
    }
    for (field, policy) in [
        ("removeOnComplete", o.remove_on_complete),
        ("removeOnFail", o.remove_on_fail),
    ] {
        if let Some(crate::RemovePolicy::Keep { age: Some(age), .. }) = policy {
            if age > MAX_DELAY_MS / 1000 {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "age {age} s is above the limit of {} s",
                        MAX_DELAY_MS / 1000
                    ),
                ));
            }
        }
    }
    if let Some(d) = o.delay {
        if d > MAX_DELAY_MS || now_ms.saturating_add(d) >= MAX_DUE_MS {
            return Err(ValidationError::new(
                "delay",
                format!("{d} ms is too far in the future (limit {MAX_DELAY_MS} ms)"),
            ));
        }
    }
    if let Some(n) = &o.job_name {
        name("jobName", n)?;
    }
    if let Some(d) = &o.deduplication {
        name("deduplication.id", &d.id)?;
    }
    if o.task_type != TaskType::Complex && o.temporal.is_some() {
        return Err(ValidationError::new(
            "temporal",
            format!("is only for COMPLEX tasks, this one is {}", o.task_type),
        ));
    }
    if o.task_type != TaskType::Integration && o.n8n.is_some() {
        return Err(ValidationError::new(
            "n8n",
            format!("is only for INTEGRATION tasks, this one is {}", o.task_type),
        ));
    }

    match o.task_type {
        TaskType::Simple => {}
        TaskType::Complex => {
            let t = o.temporal.as_ref().ok_or_else(|| {
                ValidationError::new(
                    "temporal",
                    "COMPLEX tasks need `temporal` options (at least `workflowType`)",
                )
            })?;
            name("temporal.workflowType", &t.workflow_type)?;
            for arg in &t.workflow_args {
                json_nesting("temporal.workflowArgs", arg)?;
            }
            if let Some(q) = &t.task_queue {
                name("temporal.taskQueue", q)?;
            }
            if let Some(q) = &t.tracking_queue {
                name("temporal.trackingQueue", q)?;
            }
            if let Some(id) = &t.workflow_id {
                name("temporal.workflowId", id)?;
            }
            if t.execution_timeout_ms == Some(0) {
                return Err(ValidationError::new(
                    "temporal.executionTimeoutMs",
                    "must be greater than 0 (leave it unset for no timeout)",
                ));
            }
            if let Some(ms) = t.execution_timeout_ms.filter(|ms| *ms > MAX_DELAY_MS) {
                return Err(ValidationError::new(
                    "temporal.executionTimeoutMs",
                    format!("{ms} ms is above the limit of {MAX_DELAY_MS} ms"),
                ));
            }
        }
        TaskType::Integration => {
            let n = o.n8n.as_ref().ok_or_else(|| {
                ValidationError::new(
                    "n8n",
                    "INTEGRATION tasks need `n8n` options (`workflowId` and/or `webhookUrl`)",
                )
            })?;
            if n.workflow_id.is_none() && n.webhook_url.is_none() {
                return Err(ValidationError::new(
                    "n8n",
                    "give `workflowId` (resolved through n8n's API) or `webhookUrl`",
                ));
            }
            if let Some(id) = &n.workflow_id {
                name("n8n.workflowId", id)?;
            }
            if let Some(url) = &n.webhook_url {
                webhook_url("n8n.webhookUrl", url)?;
            }
            if let Some(s) = &n.integration_source {
                name("n8n.integrationSource", s)?;
            }
        }
    }
    Ok(())
}

/// BullMQ's own rules, for backends that write BullMQ's data model (the `bullmq` backend
/// and its `memory-bullmq` fake): the task name is a queue name (no `:`), custom job ids
/// follow Node BullMQ's client-side checks, priorities stay under `PRIORITY_LIMIT`, and
/// `lifo` cannot be combined with a priority.
pub fn bullmq_rules(request: &crate::ScheduleRequest) -> V {
    let o = request.options();
    queue_name("name", request.name())?;
    if let Some(p) = o.priority {
        if p > MAX_PRIORITY {
            return Err(ValidationError::new(
                "priority",
                format!("{p} is above BullMQ's limit of {MAX_PRIORITY}"),
            ));
        }
    }
    if let Some(id) = &o.job_id {
        job_id("jobId", id)?;
    }
    if o.lifo == Some(true) && o.priority.is_some_and(|p| p > 0) {
        return Err(ValidationError::new(
            "lifo",
            "cannot be combined with a priority (BullMQ orders prioritized jobs by priority only)",
        ));
    }
    Ok(())
}

/// The largest payload (serialized JSON, bytes) kept beside explicit `workflowArgs` in a
/// Temporal workflow's memo (`orchestratorPayload`): 256 KiB, well under Temporal's 2 MB
/// blob limit for the whole start request.
pub const MAX_MEMO_PAYLOAD: usize = 256 * 1024;

/// Whether a COMPLEX request's payload is carried beside its `workflowArgs` (in the memo):
/// when there are explicit arguments and the payload is neither `null` nor `{}`. Without
/// arguments the payload is the workflow's single argument.
pub fn payload_in_memo(request: &crate::ScheduleRequest) -> bool {
    let args = request
        .options()
        .temporal
        .as_ref()
        .is_some_and(|t| !t.workflow_args.is_empty());
    let p = request.payload();
    args && !(p.is_null() || p.as_object().is_some_and(serde_json::Map::is_empty))
}

/// Temporal's rules (the `temporal` backend and `memory-temporal`): a payload sent beside
/// `workflowArgs` is kept in the memo, so it must fit [`MAX_MEMO_PAYLOAD`].
pub fn temporal_rules(request: &crate::ScheduleRequest) -> V {
    if payload_in_memo(request) {
        let size = json_size(request.payload());
        if size > MAX_MEMO_PAYLOAD {
            return Err(ValidationError::new(
                "payload",
                format!(
                    "is {size} bytes; beside workflowArgs it is kept in the workflow memo, at most {MAX_MEMO_PAYLOAD} bytes (pass it as an argument instead)"
                ),
            ));
        }
    }
    Ok(())
}

/// The size of `value` serialized as JSON, without building the text.
pub fn json_size(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut n, value);
    n.0
}

/// The total wait of all retries: `attempts - 1` waits of `delay` (fixed), or
/// `delay * (2^(attempts-1) - 1)` (exponential); saturates at `u64::MAX`.
pub fn retry_horizon_ms(delay: u64, exponential: bool, attempts: u32) -> u64 {
    let retries = u64::from(attempts.saturating_sub(1));
    if !exponential {
        return delay.saturating_mul(retries);
    }
    if retries >= 64 {
        return if delay == 0 { 0 } else { u64::MAX };
    }
    delay.saturating_mul((1u64 << retries) - 1)
}

/// Refuse a payload larger than `limit` bytes of JSON (a backend's `max_payload_bytes`).
pub fn payload_size(payload: &serde_json::Value, limit: usize) -> V {
    let size = json_size(payload);
    if size > limit {
        return Err(ValidationError::new(
            "payload",
            format!(
                "is {size} bytes of JSON, above this backend's limit of {limit} bytes (max_payload_bytes)"
            ),
        ));
    }
    Ok(())
}

/// The deepest nesting of arrays and objects accepted in a payload or an options object:
/// 128, serde_json's own parsing limit, so whatever is written can be read back.
pub const MAX_JSON_DEPTH: usize = 128;

/// How deeply `value` nests arrays and objects (a scalar is 0), without recursion, giving
/// up (returning `limit + 1`) as soon as it is deeper than `limit`.
pub fn json_depth(value: &serde_json::Value, limit: usize) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(a) => Box::new(a.iter()),
            serde_json::Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        let depth = depth + 1;
        if depth > limit {
            return limit + 1;
        }
        deepest = deepest.max(depth);
        stack.extend(children.map(|c| (c, depth)));
    }
    deepest
}

/// Refuse a JSON value nested deeper than [`MAX_JSON_DEPTH`].
pub fn json_nesting(field: &str, value: &serde_json::Value) -> V {
    if json_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH {
        return Err(ValidationError::new(
            field,
            format!("nests arrays/objects deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// Drop `value` without recursion (dropping a deeply nested value recursively can
/// overflow the stack).
pub fn drop_deep(value: serde_json::Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Array(a) => stack.extend(a),
            serde_json::Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}

/// n8n's rules (the `n8n` backend and `memory-n8n`): a workflow id is what n8n issues
/// (letters, digits, `_`, `-`; at most 64), since it goes into API paths
/// (`/api/v1/workflows/<id>`): `../../rest/login` is refused before any request; a webhook
/// URL carries no credentials (`user:password@`).
pub fn n8n_rules(request: &crate::ScheduleRequest) -> V {
    if let Some(id) = request
        .options()
        .n8n
        .as_ref()
        .and_then(|n| n.workflow_id.as_deref())
    {
        let ok = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !ok {
            return Err(ValidationError::new(
                "n8n.workflowId",
                "an n8n workflow id is 1 to 64 letters, digits, `_` or `-`",
            ));
        }
    }
    if let Some(url) = request
        .options()
        .n8n
        .as_ref()
        .and_then(|n| n.webhook_url.as_deref())
    {
        // Credentials in the URL would be stored with an outbox dispatch and shown by
        // anything that prints the URL; the backend's auth settings carry them instead.
        if url::Url::parse(url).is_ok_and(|u| !u.username().is_empty() || u.password().is_some()) {
            return Err(ValidationError::new(
                "n8n.webhookUrl",
                "credentials in the URL are refused; set backends.n8n.basic_auth or header_auth instead",
            ));
        }
    }
    Ok(())
}
