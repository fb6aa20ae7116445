//! What a backend kind is and can do: one [`Descriptor`] per kind, declared by the crate
//! that owns the engine and enforced centrally.
//!
//! A descriptor names the kind, the label its statuses report, the task types it runs, the
//! generic [`Capability`] set it honours, the **engine options** it owns (keys of the
//! seed's option object that only this engine understands: BullMQ's `jobId`, the
//! `temporal` and `n8n` blocks…), its input rules, its native-state table and its default
//! limits. Core knows no engine: every engine fact lives in that engine's crate (its `spec`
//! module), and the in-memory fake of an engine is built from the same spec.
//!
//! The orchestrator checks every request against the target backend before any I/O
//! ([`Descriptor::admit`], run by [`crate::BackendHandle`]): a generic option the backend
//! does not honour, or an engine option it does not own, is refused with
//! [`Error::UnsupportedOption`] naming the option and the backend, never dropped.
//!
//! Backend crates implement [`BackendFactory`] (descriptor + typed configuration + build)
//! and register it with [`crate::register_backend!`].

use std::fmt;

use schemars::{JsonSchema, Schema};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{AdmittedRequest, ScheduleRequest, SharedBackend};
use crate::error::{Error, Result, ValidationError};
use crate::status::{EngineLabel, TaskState};
use crate::task::{OptionBlock, TaskOptions, TaskType};

/// A generic thing a backend may or may not honour: a task option every engine could
/// mean the same way, or an operation beyond the required ones. Options only one engine
/// understands are that engine's [`EngineOption`]s instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, strum::EnumCount)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Capability {
    /// Option `delay`: the task does not start before its time.
    Delay,
    /// Option `priority`: waiting tasks start in priority order.
    Priority,
    /// Option `attempts` (above 1): the task is retried until it succeeds or runs out.
    Attempts,
    /// Option `backoff`: the wait between attempts.
    Backoff,
    /// Cancelling a task that has not started.
    CancelPending,
    /// Cancelling (or requesting cancellation of) a running task.
    CancelRunning,
    /// Progress reported by the task shows in its status.
    Progress,
    /// Listing tasks ([`crate::Orchestrator::list`]), started here or elsewhere.
    List,
    /// Counting tasks per state ([`crate::Orchestrator::counts`]).
    Counts,
}

impl Capability {
    /// Every capability, in declaration order (a test checks that it lists every variant).
    pub const ALL: [Capability; 9] = [
        Capability::Delay,
        Capability::Priority,
        Capability::Attempts,
        Capability::Backoff,
        Capability::CancelPending,
        Capability::CancelRunning,
        Capability::Progress,
        Capability::List,
        Capability::Counts,
    ];

    /// The option's name as the seed's option objects spell it (`delay`…), or the
    /// operation's name (`cancel pending`…).
    pub const fn as_str(self) -> &'static str {
        match self {
            Capability::Delay => "delay",
            Capability::Priority => "priority",
            Capability::Attempts => "attempts",
            Capability::Backoff => "backoff",
            Capability::CancelPending => "cancel pending",
            Capability::CancelRunning => "cancel running",
            Capability::Progress => "progress",
            Capability::List => "list",
            Capability::Counts => "counts",
        }
    }

    /// Whether this is a task option (as opposed to an operation).
    pub const fn is_option(self) -> bool {
        !matches!(
            self,
            Capability::CancelPending
                | Capability::CancelRunning
                | Capability::Progress
                | Capability::List
                | Capability::Counts
        )
    }

    const fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

// A variant missing from `ALL` fails the build.
const _: () = assert!(Capability::ALL.len() == <Capability as strum::EnumCount>::COUNT);

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Capability`] values, buildable in `const` context.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Capabilities(u32);

impl Capabilities {
    /// Nothing optional.
    pub const NONE: Capabilities = Capabilities(0);

    /// The set of `list`.
    pub const fn of(list: &[Capability]) -> Self {
        let mut bits = 0;
        let mut i = 0;
        while i < list.len() {
            bits |= list[i].bit();
            i += 1;
        }
        Capabilities(bits)
    }

    /// Whether `c` is in the set.
    pub const fn has(self, c: Capability) -> bool {
        self.0 & c.bit() != 0
    }

    /// This set without `c` (a running backend that can do less than its kind).
    #[must_use]
    pub const fn without(self, c: Capability) -> Self {
        Capabilities(self.0 & !c.bit())
    }

    /// The members, in [`Capability::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.has(*c))
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for Capabilities {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// A key of the option object that one engine owns (BullMQ's `jobId`, the `temporal`
/// block…): the backend that declares it reads and validates it; every other backend
/// refuses it. The wire form is the seed's, unchanged.
#[derive(Clone, Copy)]
pub struct EngineOption {
    /// The key in the option object (`jobId`, `temporal`).
    pub key: &'static str,
    /// One line saying what it does.
    pub summary: &'static str,
    schema: fn() -> Schema,
    shape: fn(&serde_json::Value) -> Result<(), String>,
}

impl EngineOption {
    /// The key `key`, whose value has type `T` (its JSON Schema, and the shape
    /// [`crate::TaskOptions::from_json`] checks).
    pub const fn new<T: JsonSchema + DeserializeOwned>(
        key: &'static str,
        summary: &'static str,
    ) -> Self {
        Self {
            key,
            summary,
            schema: schema_of::<T>,
            shape: shape_of::<T>,
        }
    }

    /// Whether `value` has this option's shape; the error names the offending path
    /// (`args: unknown field`).
    pub fn check_shape(&self, value: &serde_json::Value) -> Result<(), String> {
        (self.shape)(value)
    }

    /// The block `B` (`B::KEY`).
    pub const fn block<B: OptionBlock>(summary: &'static str) -> Self {
        Self::new::<B>(B::KEY, summary)
    }

    /// The JSON Schema of the key's value.
    pub fn schema(&self) -> Schema {
        (self.schema)()
    }
}

fn schema_of<T: JsonSchema>() -> Schema {
    schemars::schema_for!(T)
}

fn shape_of<T: DeserializeOwned>(value: &serde_json::Value) -> Result<(), String> {
    serde_path_to_error::deserialize::<_, T>(value)
        .map(drop)
        .map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                e.into_inner().to_string()
            } else {
                format!("{path}: {}", e.into_inner())
            }
        })
}

impl fmt::Debug for EngineOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key)
    }
}

/// Engine-specific input rules, run before any I/O (after the core's own checks).
pub type InputRules = fn(&ScheduleRequest) -> Result<(), ValidationError>;

/// No rules beyond the core's.
pub fn no_rules(_: &ScheduleRequest) -> Result<(), ValidationError> {
    Ok(())
}

/// An engine's native states and the unified state each maps to.
pub type NativeStates = &'static [(&'static str, TaskState)];

/// The unified state of `native` in `table`; `UNKNOWN` for a word it does not list.
pub fn map_native_state(table: NativeStates, native: &str) -> TaskState {
    table
        .iter()
        .find(|(n, _)| *n == native)
        .map_or(TaskState::Unknown, |(_, s)| *s)
}

/// Check an engine's state-mapping table in its docs against its code: `docs` holds a
/// markdown table whose rows start with a backticked unified state (`| `PENDING` |`) and whose second cell lists the
/// engine's words in backticks (the first table of that shape). Every word of `table` must
/// be in its unified state's row and every word in the docs must be in `table` with that
/// state. For a unit test beside each engine's table, so docs and code cannot drift.
pub fn check_state_table(docs: &str, table: NativeStates) -> Result<(), String> {
    let rows: Vec<(String, Vec<String>)> = docs
        .lines()
        .map(|l| {
            let l = l.trim();
            l.strip_prefix("//!")
                .or_else(|| l.strip_prefix("///"))
                .unwrap_or(l)
                .trim()
        })
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').collect();
            let unified = cells.get(1)?.trim().trim_matches('`').to_string();
            let words = cells
                .get(2)?
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect();
            Some((unified, words))
        })
        .collect();
    if rows.is_empty() {
        return Err("no state table (rows starting with a backticked state) in the docs".into());
    }
    for (word, state) in table {
        let listed = rows
            .iter()
            .any(|(u, words)| u == state.as_str() && words.iter().any(|w| w == word));
        if !listed {
            return Err(format!(
                "`{word}` maps to {state} in the code but not in the docs"
            ));
        }
    }
    for (unified, words) in &rows {
        for word in words {
            if !table
                .iter()
                .any(|(n, s)| n == word && s.as_str() == unified)
            {
                return Err(format!(
                    "the docs map `{word}` to {unified}, the code does not"
                ));
            }
        }
    }
    Ok(())
}

/// Limits of a backend instance, checked by the orchestrator before any I/O.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The largest payload (serialized JSON, bytes) accepted.
    pub max_payload_bytes: usize,
}

impl Limits {
    /// Limits with the given payload cap.
    pub const fn max_payload(bytes: usize) -> Self {
        Self {
            max_payload_bytes: bytes,
        }
    }
}

/// A tracking task to schedule beside a task: a SIMPLE job on `queue` that `orchestrator
/// track` completes with the task's outcome. Its payload is `fields` plus `taskId`, `name`
/// and `source`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tracking {
    /// The SIMPLE queue of the tracking task.
    pub queue: String,
    /// The option that asked for it (`temporal.trackingQueue`), for error messages.
    pub option: &'static str,
    /// Engine fields added to the tracking task's payload (`workflowType`).
    pub fields: serde_json::Map<String, serde_json::Value>,
}

/// How an engine asks for a tracking task: read from the request's options.
pub type TrackingHook = fn(&TaskOptions) -> Option<Tracking>;

/// What one backend kind is and can do. Build it in a `const` with [`Descriptor::new`] and
/// the `with_*` methods; new facts get new methods, so declaring one never breaks.
///
/// ```
/// use orchestrator_core::{Capabilities, Capability, Descriptor, TaskType};
/// const ECHO: Descriptor = Descriptor::new("echo", "ECHO", &[TaskType::Simple], "echoes payloads")
///     .with_capabilities(Capabilities::of(&[Capability::CancelPending]));
/// assert!(ECHO.accepts(TaskType::Simple));
/// ```
#[derive(Clone, Copy)]
#[non_exhaustive]
pub struct Descriptor {
    /// The kind's name (`bullmq`, `temporal`, `memory-bullmq`…): its config table and
    /// default instance name.
    pub kind: &'static str,
    /// The label its statuses report as `source` (`BULLMQ`, …).
    pub label: &'static str,
    /// Task types it runs; routing another type to it is a configuration error.
    pub task_types: &'static [TaskType],
    /// The generic capabilities it honours.
    pub capabilities: Capabilities,
    /// One line saying what it is.
    pub summary: &'static str,
    /// The engine options it owns.
    pub options: &'static [EngineOption],
    /// Its own input rules.
    pub input_rules: InputRules,
    /// Its native states and the unified state of each (the docs' mapping table).
    pub native_states: NativeStates,
    /// Default limits of an instance (its configuration may change them).
    pub limits: Limits,
    /// Whether (and how) a request asks for a tracking task.
    pub tracking: Option<TrackingHook>,
    /// States its `counts` cannot tell apart, and the state it counts them under
    /// ([`Descriptor::counted_as`]).
    pub counts_fold: &'static [(TaskState, TaskState)],
}

/// Payload cap of a descriptor that sets none: 1 MiB.
pub const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

impl fmt::Debug for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Descriptor")
            .field("kind", &self.kind)
            .field("label", &self.label)
            .field("task_types", &self.task_types)
            .field("capabilities", &self.capabilities)
            .field("options", &self.options)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Descriptor {
    /// A kind called `kind`, reporting `label`, running `task_types`: no capabilities, no
    /// engine options, no extra rules, no native states, a 1 MiB payload cap.
    pub const fn new(
        kind: &'static str,
        label: &'static str,
        task_types: &'static [TaskType],
        summary: &'static str,
    ) -> Self {
        Self {
            kind,
            label,
            task_types,
            capabilities: Capabilities::NONE,
            summary,
            options: &[],
            input_rules: no_rules,
            native_states: &[],
            limits: Limits::max_payload(DEFAULT_MAX_PAYLOAD),
            tracking: None,
            counts_fold: &[],
        }
    }

    /// The same kind under another name and label (a fake of an engine: `memory-bullmq`).
    pub const fn renamed(
        mut self,
        kind: &'static str,
        label: &'static str,
        summary: &'static str,
    ) -> Self {
        self.kind = kind;
        self.label = label;
        self.summary = summary;
        self
    }

    /// With these generic capabilities.
    pub const fn with_capabilities(mut self, capabilities: Capabilities) -> Self {
        self.capabilities = capabilities;
        self
    }

    /// With these engine options.
    pub const fn with_options(mut self, options: &'static [EngineOption]) -> Self {
        self.options = options;
        self
    }

    /// With these input rules.
    pub const fn with_input_rules(mut self, rules: InputRules) -> Self {
        self.input_rules = rules;
        self
    }

    /// With this native-state table.
    pub const fn with_native_states(mut self, states: NativeStates) -> Self {
        self.native_states = states;
        self
    }

    /// With these default limits.
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// With a tracking hook.
    pub const fn with_tracking(mut self, hook: TrackingHook) -> Self {
        self.tracking = Some(hook);
        self
    }

    /// `counts` reports each `(from, to)` pair's `from` tasks under `to`: the engine's
    /// count cannot tell them apart (Temporal counts a workflow no worker picked up, which
    /// `status` and `list` call `PENDING`, as `RUNNING`).
    pub const fn with_counts_fold(mut self, fold: &'static [(TaskState, TaskState)]) -> Self {
        self.counts_fold = fold;
        self
    }

    /// The state `counts` reports a task in `state` under (see
    /// [`Descriptor::with_counts_fold`]).
    pub fn counted_as(&self, state: TaskState) -> TaskState {
        self.counts_fold
            .iter()
            .find(|(from, _)| *from == state)
            .map_or(state, |(_, to)| *to)
    }

    /// The label as an [`EngineLabel`].
    pub fn label(&self) -> EngineLabel {
        EngineLabel::new(self.label)
    }

    /// Whether this kind runs `task_type`.
    pub fn accepts(&self, task_type: TaskType) -> bool {
        self.task_types.contains(&task_type)
    }

    /// Whether this kind owns engine option `key`.
    pub fn owns(&self, key: &str) -> bool {
        self.options.iter().any(|o| o.key == key)
    }

    /// The unified state of native state `word`, from this kind's table.
    pub fn map_state(&self, word: &str) -> TaskState {
        map_native_state(self.native_states, word)
    }

    /// The tracking task `options` ask for, if any.
    pub fn tracking_of(&self, options: &TaskOptions) -> Option<Tracking> {
        self.tracking.and_then(|hook| hook(options))
    }

    /// Check `request` for the backend instance `backend`, which honours `capabilities`
    /// (its kind's, or less): the task type is one it runs, every generic option set is one
    /// it honours, every engine option is one it owns, and its input rules pass. No I/O.
    pub fn admit(
        &self,
        backend: &str,
        capabilities: Capabilities,
        request: ScheduleRequest,
    ) -> Result<AdmittedRequest> {
        let task_type = request.task_type();
        if !self.accepts(task_type) {
            return Err(Error::WrongTaskType {
                backend: backend.to_string(),
                task_type,
                runs: self.task_types.to_vec(),
            });
        }
        if let Some(option) = options_used(request.options())
            .into_iter()
            .find(|c| !capabilities.has(*c))
        {
            return Err(Error::UnsupportedOption {
                backend: backend.to_string(),
                option: option.as_str().to_string(),
            });
        }
        if let Some(key) = request
            .options()
            .engine_options()
            .filter(|(_, v)| !is_neutral(v))
            .map(|(k, _)| k)
            .find(|k| !self.owns(k))
        {
            return Err(Error::UnsupportedOption {
                backend: backend.to_string(),
                option: key.to_string(),
            });
        }
        (self.input_rules)(&request)?;
        Ok(AdmittedRequest::new(request))
    }
}

/// Engine options set to `null` or `false` ask for nothing (`lifo: false`), so a seed user
/// who spreads neutral BullMQ options into a COMPLEX task is not refused.
fn is_neutral(v: &serde_json::Value) -> bool {
    matches!(v, serde_json::Value::Null | serde_json::Value::Bool(false))
}

/// The generic capabilities a request's options ask for. Neutral values ask for nothing:
/// `delay: 0`, `priority: 0`, `attempts: 1`.
pub fn options_used(o: &TaskOptions) -> Vec<Capability> {
    let used = [
        (Capability::Delay, o.delay.is_some_and(|d| d > 0)),
        (Capability::Priority, o.priority.is_some_and(|p| p > 0)),
        (Capability::Attempts, o.attempts.is_some_and(|a| a > 1)),
        (Capability::Backoff, o.backoff.is_some()),
    ];
    used.into_iter()
        .filter(|(_, u)| *u)
        .map(|(c, _)| c)
        .collect()
}

/// A backend kind: its descriptor, its typed configuration and how to build an instance.
///
/// Register it with [`crate::register_backend!`]; the registry then parses the kind's
/// configuration table into [`BackendFactory::Config`] (unknown keys are the config
/// type's business: use `#[serde(deny_unknown_fields)]`) and calls [`BackendFactory::build`].
pub trait BackendFactory: 'static {
    /// What the kind is and can do.
    const DESCRIPTOR: Descriptor;

    /// The kind's configuration table.
    type Config: DeserializeOwned + JsonSchema;

    /// The configuration used when no table is given (an explicit route with no table);
    /// `None` (the default) means the kind needs settings and says which.
    fn default_config() -> Option<Self::Config> {
        None
    }

    /// Build the instance called `instance` (its [`crate::raw::Backend::name`] and the
    /// prefix of its task ids), validating `config`; no I/O: backends connect on first use.
    fn build(instance: &str, config: Self::Config) -> Result<SharedBackend>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Backoff;

    #[test]
    fn all_lists_every_capability_once_in_order() {
        // With the compile-time check above (`ALL.len() == COUNT`), distinct entries in
        // declaration order mean every variant is listed.
        let bits: Vec<u32> = Capability::ALL.iter().map(|c| c.bit()).collect();
        let expected: Vec<u32> = (0..Capability::ALL.len() as u32).map(|i| 1 << i).collect();
        assert_eq!(bits, expected);
    }

    fn refuse_queue_named_bad(r: &ScheduleRequest) -> Result<(), ValidationError> {
        if r.name() == "bad" {
            return Err(ValidationError::new(
                "name",
                "`bad` is refused by the rules",
            ));
        }
        Ok(())
    }

    /// A kind honouring nothing generic, owning one engine option.
    const PLAIN: Descriptor = Descriptor::new("plain", "PLAIN", &[TaskType::Simple], "test")
        .with_options(&[EngineOption::new::<String>("color", "a color")])
        .with_input_rules(refuse_queue_named_bad);

    fn request(name: &str, options: TaskOptions) -> ScheduleRequest {
        ScheduleRequest::new(name, serde_json::json!({}), options).expect("valid")
    }

    fn refused_option(d: &Descriptor, caps: Capabilities, options: TaskOptions) -> String {
        match d.admit("inst", caps, request("q", options)) {
            Err(Error::UnsupportedOption { backend, option }) => {
                assert_eq!(backend, "inst");
                option
            }
            other => panic!("expected UnsupportedOption, got {other:?}"),
        }
    }

    /// Every generic option a kind does not declare is refused at admission, naming the
    /// option and the instance: these refusals never reach an engine, so they are tested
    /// here once rather than per backend.
    #[test]
    fn refuses_every_undeclared_generic_option() {
        let set: [(Capability, TaskOptions); 4] = [
            (
                Capability::Delay,
                TaskOptions::simple().delay(std::time::Duration::from_secs(1)),
            ),
            (Capability::Priority, TaskOptions::simple().priority(1)),
            (Capability::Attempts, TaskOptions::simple().attempts(2)),
            (
                Capability::Backoff,
                TaskOptions::simple().backoff(Backoff::fixed(10)),
            ),
        ];
        assert_eq!(
            set.len(),
            Capability::ALL.iter().filter(|c| c.is_option()).count(),
            "a new generic option needs a row here"
        );
        for (c, options) in set {
            assert_eq!(
                refused_option(&PLAIN, PLAIN.capabilities, options.clone()),
                c.as_str()
            );
            // Declared, it is admitted.
            let caps = Capabilities::of(&[c]);
            PLAIN
                .admit("inst", caps, request("q", options))
                .unwrap_or_else(|e| panic!("{c} declared: {e}"));
        }
        // Neutral values ask for nothing.
        let neutral = TaskOptions::simple()
            .priority(0)
            .attempts(1)
            .delay(std::time::Duration::ZERO);
        PLAIN
            .admit("inst", PLAIN.capabilities, request("q", neutral))
            .expect("neutral values");
    }

    /// A running backend that can do less than its kind is held to what it can do.
    #[test]
    fn admission_follows_the_running_capabilities() {
        let kind = PLAIN.with_capabilities(Capabilities::of(&[Capability::Delay]));
        let delayed = TaskOptions::simple().delay(std::time::Duration::from_secs(1));
        kind.admit("inst", kind.capabilities, request("q", delayed.clone()))
            .expect("the kind honours delay");
        let less = kind.capabilities.without(Capability::Delay);
        assert_eq!(refused_option(&kind, less, delayed), "delay");
    }

    #[test]
    fn refuses_engine_options_it_does_not_own() {
        let caps = PLAIN.capabilities;
        let own = TaskOptions::simple().engine_option("color", "red".into());
        PLAIN
            .admit("inst", caps, request("q", own))
            .expect("owned option");
        let other = TaskOptions::simple().engine_option("size", 3.into());
        assert_eq!(refused_option(&PLAIN, caps, other), "size");
        // `false` asks for nothing (a seed user's spread `lifo: false`).
        let neutral = TaskOptions::simple().engine_option("lifo", false.into());
        PLAIN
            .admit("inst", caps, request("q", neutral))
            .expect("neutral engine option");
    }

    #[test]
    fn refuses_other_task_types_and_runs_the_kinds_rules() {
        let complex = TaskOptions::simple().task_type(TaskType::Complex);
        match PLAIN.admit("inst", PLAIN.capabilities, request("q", complex)) {
            Err(Error::WrongTaskType {
                backend,
                task_type,
                runs,
            }) => {
                assert_eq!((backend.as_str(), task_type), ("inst", TaskType::Complex));
                assert_eq!(runs, vec![TaskType::Simple]);
            }
            other => panic!("expected WrongTaskType, got {other:?}"),
        }
        let e = PLAIN
            .admit(
                "inst",
                PLAIN.capabilities,
                request("bad", TaskOptions::simple()),
            )
            .expect_err("rules");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidInput, "{e}");
    }

    #[test]
    fn engine_options_are_shape_checked_with_their_path() {
        let option = EngineOption::new::<Backoff>("retry", "test");
        assert!(option.check_shape(&serde_json::json!(100)).is_ok());
        let e = option
            .check_shape(&serde_json::json!({"type": "linear"}))
            .expect_err("shape");
        assert!(!e.is_empty());
    }
}
