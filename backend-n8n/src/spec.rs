//! What n8n is and honours, with no client dependency: the `n8n` kind's [`DESCRIPTOR`],
//! its option block ([`N8nOptions`], the seed's `n8n` object), input rules and native
//! states. The `memory-n8n` fake of `orchestrator-testkit` is built from this module
//! (`default-features = false` compiles nothing else of this crate).
//!
//! Execution statuses (`GET /api/v1/executions/{id}`) and outbox dispatch states, and the
//! unified state of each:
//!
//! | unified | n8n (dispatch / execution) |
//! |---|---|
//! | `PENDING` | dispatch `queued`, `delivering`; execution `new` |
//! | `DELAYED` | dispatch `retrying` |
//! | `RUNNING` | `running` |
//! | `WAITING` | `waiting` |
//! | `COMPLETED` | `success` |
//! | `FAILED` | `error`, `crashed`, dispatch `failed` |
//! | `CANCELLED` | `canceled`, dispatch `cancelled` |
//! | `UNKNOWN` | delivered, execution not tracked |

use orchestrator_core::raw::validate;
use orchestrator_core::{
    Capabilities, Capability, Descriptor, EngineLabel, EngineOption, Limits, OptionBlock,
    ScheduleRequest, TaskOptions, TaskState, TaskType, ValidationError,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The kind's name and default instance name.
pub const KIND: &str = "n8n";

/// The label statuses report as `source`.
pub const LABEL: EngineLabel = EngineLabel::new("N8N");

/// Largest payload accepted by default: n8n's own default request limit
/// (`N8N_PAYLOAD_SIZE_MAX`, 16 MiB).
pub const DEFAULT_MAX_PAYLOAD: usize = 16 * 1024 * 1024;

/// What n8n honours. Not `Attempts`/`Backoff`: n8n never re-runs a workflow that failed
/// (delivery retries on connection errors, 5xx and 429 are the backend's configuration,
/// not a task option). Not `Delay` or `Priority` (a webhook call happens now), not
/// `CancelPending` (direct mode returns once n8n took the call).
/// `List` and `Counts` read n8n's executions API (and the outbox's records): an instance
/// without an API key offers neither.
pub const CAPABILITIES: Capabilities = Capabilities::of(&[
    Capability::CancelRunning,
    Capability::List,
    Capability::Counts,
]);

/// Execution statuses.
pub const EXECUTION_STATES: &[(&str, TaskState)] = &[
    ("new", TaskState::Pending),
    ("running", TaskState::Running),
    ("waiting", TaskState::Waiting),
    ("success", TaskState::Completed),
    ("error", TaskState::Failed),
    ("crashed", TaskState::Failed),
    ("canceled", TaskState::Cancelled),
];

/// States of a dispatch in the backend's outbox (a `delivered` dispatch reports its
/// execution instead).
pub const DISPATCH_STATES: &[(&str, TaskState)] = &[
    ("queued", TaskState::Pending),
    ("delivering", TaskState::Pending),
    ("retrying", TaskState::Delayed),
    ("failed", TaskState::Failed),
    ("cancelled", TaskState::Cancelled),
];

/// Both tables (their words do not overlap).
pub const NATIVE_STATES: &[(&str, TaskState)] = &[
    ("new", TaskState::Pending),
    ("running", TaskState::Running),
    ("waiting", TaskState::Waiting),
    ("success", TaskState::Completed),
    ("error", TaskState::Failed),
    ("crashed", TaskState::Failed),
    ("canceled", TaskState::Cancelled),
    ("queued", TaskState::Pending),
    ("delivering", TaskState::Pending),
    ("retrying", TaskState::Delayed),
    ("failed", TaskState::Failed),
    ("cancelled", TaskState::Cancelled),
];

/// The `n8n` kind.
pub const DESCRIPTOR: Descriptor = Descriptor::new(
    KIND,
    "N8N",
    &[TaskType::Integration],
    "INTEGRATION tasks delivered to n8n webhooks, tracked through its API",
)
.with_capabilities(CAPABILITIES)
.with_options(&[EngineOption::block::<N8nOptions>(
    "the n8n workflow: its id and/or webhook URL, and where the integration comes from",
)])
.with_input_rules(rules)
.with_native_states(NATIVE_STATES)
.with_limits(Limits::max_payload(DEFAULT_MAX_PAYLOAD));

/// Options of an INTEGRATION task: the seed's `n8n` block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct N8nOptions {
    /// The n8n workflow id; its webhook URL is resolved through n8n's API when
    /// `webhook_url` is not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    /// The webhook to POST the payload to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Where the integration comes from (`github`, `jenkins`, …), sent along as a header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration_source: Option<String>,
}

impl OptionBlock for N8nOptions {
    const KEY: &'static str = "n8n";
}

impl N8nOptions {
    /// Target the n8n workflow `workflow_id`.
    pub fn workflow(workflow_id: impl Into<String>) -> Self {
        Self {
            workflow_id: Some(workflow_id.into()),
            ..Self::default()
        }
    }

    /// Target the webhook `url` directly.
    pub fn webhook(url: impl Into<String>) -> Self {
        Self {
            webhook_url: Some(url.into()),
            ..Self::default()
        }
    }

    /// Record where the integration comes from.
    #[must_use]
    pub fn integration_source(mut self, source: impl Into<String>) -> Self {
        self.integration_source = Some(source.into());
        self
    }

    /// Use this webhook URL.
    #[must_use]
    pub fn webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// The block of an admitted request (its rules required it).
    pub fn of(options: &TaskOptions) -> Result<Self, ValidationError> {
        options.block::<Self>()?.ok_or_else(|| {
            ValidationError::new(
                "n8n",
                "INTEGRATION tasks on n8n need `n8n` options (`workflowId` and/or `webhookUrl`)",
            )
        })
    }
}

type V = Result<(), ValidationError>;

/// n8n's rules (the `n8n` backend and `memory-n8n`): the `n8n` block names a workflow id
/// and/or a webhook URL; a workflow id is what n8n issues (letters, digits, `_`, `-`; at
/// most 64), since it goes into API paths (`/api/v1/workflows/<id>`): `../../rest/login`
/// is refused before any request; a webhook URL is `http(s)` and carries no credentials
/// (`user:password@`).
pub fn rules(request: &ScheduleRequest) -> V {
    let n = N8nOptions::of(request.options())?;
    if n.workflow_id.is_none() && n.webhook_url.is_none() {
        return Err(ValidationError::new(
            "n8n",
            "give `workflowId` (resolved through n8n's API) or `webhookUrl`",
        ));
    }
    if let Some(id) = &n.workflow_id {
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
    if let Some(url) = &n.webhook_url {
        validate::http_url("n8n.webhookUrl", url)?;
        // Credentials in the URL would be stored with an outbox dispatch and shown by
        // anything that prints the URL; the backend's auth settings carry them instead.
        if url::Url::parse(url).is_ok_and(|u| !u.username().is_empty() || u.password().is_some()) {
            return Err(ValidationError::new(
                "n8n.webhookUrl",
                "credentials in the URL are refused; set the backend's basic_auth or header_auth instead",
            ));
        }
    }
    if let Some(s) = &n.integration_source {
        validate::name("n8n.integrationSource", s)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_table_matches_the_code() {
        assert_eq!(
            orchestrator_core::raw::check_state_table(include_str!("spec.rs"), NATIVE_STATES),
            Ok(())
        );
        for (word, state) in EXECUTION_STATES.iter().chain(DISPATCH_STATES) {
            assert!(NATIVE_STATES.contains(&(*word, *state)), "{word}");
        }
        assert_eq!(
            NATIVE_STATES.len(),
            EXECUTION_STATES.len() + DISPATCH_STATES.len()
        );
    }
}
