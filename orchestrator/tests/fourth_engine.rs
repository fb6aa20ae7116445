//! A fourth engine kind, whole, in this one file: its spec (label, task type, capabilities,
//! its own option block, rules, native states), an in-memory engine, and a factory
//! registered by name. No file of `orchestrator-core` (or of any other crate) knows it,
//! yet it is configured, routed, admitted, reported and run through the conformance suite
//! like the built-in kinds.
// The module below stands for a crate: its items are `pub` as a crate's would be.
#![allow(unreachable_pub, missing_docs)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator::raw::async_trait;
use orchestrator::testkit::conformance::{self, Behavior, Harness, Suite, Worker, wait_until};
use orchestrator::{
    BackendHandle, Error, ErrorKind, Orchestrator, OrchestratorConfig, TaskOptions, TaskState,
    TaskType, TemporalOptions,
};
use serde_json::json;

/// What would be the `backend-hatchet` crate.
mod hatchet {
    /// The engine's facts, as a backend crate's `spec` module declares them.
    ///
    /// | unified | Hatchet |
    /// |---|---|
    /// | `PENDING` | `QUEUED` |
    /// | `RUNNING` | `RUNNING` |
    /// | `COMPLETED` | `SUCCEEDED` |
    /// | `FAILED` | `FAILED` |
    /// | `CANCELLED` | `CANCELLED` |
    pub mod spec {
        use orchestrator::raw::validate;
        use orchestrator::{
            Capabilities, Capability, Descriptor, EngineOption, OptionBlock, ScheduleRequest,
            TaskState, TaskType, ValidationError,
        };
        use serde::{Deserialize, Serialize};

        /// The engine's own option block: `{"hatchet": {"workflow": …, "concurrencyKey": …}}`.
        #[derive(
            Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema,
        )]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        pub struct HatchetOptions {
            /// The workflow to run.
            pub workflow: String,
            /// Tasks sharing a key run one at a time.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub concurrency_key: Option<String>,
        }

        impl OptionBlock for HatchetOptions {
            const KEY: &'static str = "hatchet";
        }

        pub const NATIVE_STATES: &[(&str, TaskState)] = &[
            ("QUEUED", TaskState::Pending),
            ("RUNNING", TaskState::Running),
            ("SUCCEEDED", TaskState::Completed),
            ("FAILED", TaskState::Failed),
            ("CANCELLED", TaskState::Cancelled),
        ];

        pub fn rules(r: &ScheduleRequest) -> Result<(), ValidationError> {
            let h = r.options().block::<HatchetOptions>()?.ok_or_else(|| {
                ValidationError::new("hatchet", "COMPLEX tasks on Hatchet need `hatchet` options")
            })?;
            validate::name("hatchet.workflow", &h.workflow)?;
            if let Some(k) = &h.concurrency_key {
                validate::name("hatchet.concurrencyKey", k)?;
            }
            Ok(())
        }

        pub const DESCRIPTOR: Descriptor = Descriptor::new(
            "hatchet",
            "HATCHET",
            &[TaskType::Complex],
            "COMPLEX tasks on an in-memory Hatchet-like engine (the 4th-kind test)",
        )
        .with_capabilities(Capabilities::of(&[
            Capability::CancelPending,
            Capability::CancelRunning,
        ]))
        .with_options(&[EngineOption::block::<HatchetOptions>(
            "the workflow and its concurrency key",
        )])
        .with_input_rules(rules)
        .with_native_states(NATIVE_STATES);
    }

    use super::*;
    use orchestrator::raw::{AdmittedRequest, Backend, BackendFactory, SharedBackend};
    use orchestrator::testkit::{Handler, TaskContext};
    use orchestrator::{
        CancelOutcome, Descriptor, Health, Result, TaskId, TaskIdError, TaskStatus,
    };
    use spec::HatchetOptions;

    struct Task {
        workflow: String,
        key: Option<String>,
        payload: serde_json::Value,
        native: &'static str,
        result: Option<serde_json::Value>,
        error: Option<String>,
        run: Option<tokio::task::AbortHandle>,
        created_at: u64,
        finished_at: Option<u64>,
    }

    #[derive(Default)]
    struct State {
        tasks: HashMap<u64, Task>,
        handlers: HashMap<String, Handler>,
    }

    /// The engine: tasks run by workflow, one at a time per concurrency key.
    #[derive(Clone, Default)]
    pub struct Engine {
        name: String,
        next: Arc<AtomicU64>,
        state: Arc<Mutex<State>>,
    }

    impl std::fmt::Debug for Engine {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Engine").field("name", &self.name).finish()
        }
    }

    impl Engine {
        pub fn named(name: &str) -> Self {
            Self {
                name: name.to_string(),
                ..Self::default()
            }
        }

        pub fn serve(&self, workflow: &str, handler: Handler) {
            self.state
                .lock()
                .expect("state")
                .handlers
                .insert(workflow.into(), handler);
            self.pump();
        }

        pub fn unserve(&self, workflow: &str) {
            self.state.lock().expect("state").handlers.remove(workflow);
        }

        fn pump(&self) {
            let mut st = self.state.lock().expect("state");
            let busy: Vec<String> = st
                .tasks
                .values()
                .filter(|t| t.native == "RUNNING")
                .filter_map(|t| t.key.clone())
                .collect();
            let mut ids: Vec<u64> = st.tasks.keys().copied().collect();
            ids.sort_unstable();
            let mut started: Vec<String> = Vec::new();
            for n in ids {
                let task = &st.tasks[&n];
                let key_busy = task
                    .key
                    .as_ref()
                    .is_some_and(|k| busy.contains(k) || started.contains(k));
                if task.native != "QUEUED" || key_busy {
                    continue;
                }
                let Some(handler) = st.handlers.get(&task.workflow).cloned() else {
                    continue;
                };
                let id = TaskId::new(&self.name, &n.to_string()).expect("id");
                let ctx = TaskContext::new(
                    id,
                    task.workflow.clone(),
                    task.payload.clone(),
                    Vec::new(),
                    1,
                    None,
                );
                let run = tokio::spawn(handler.call(ctx));
                let this = self.clone();
                let abort = run.abort_handle();
                tokio::spawn(async move {
                    if let Ok(outcome) = run.await {
                        this.finish(n, outcome);
                    }
                });
                let task = st.tasks.get_mut(&n).expect("task");
                task.native = "RUNNING";
                task.run = Some(abort);
                started.extend(task.key.clone());
            }
        }

        fn finish(&self, n: u64, outcome: std::result::Result<serde_json::Value, String>) {
            {
                let mut st = self.state.lock().expect("state");
                let Some(t) = st.tasks.get_mut(&n).filter(|t| t.native == "RUNNING") else {
                    return;
                };
                t.run = None;
                t.finished_at = Some(orchestrator::raw::now_ms());
                match outcome {
                    Ok(v) => (t.native, t.result) = ("SUCCEEDED", Some(v)),
                    Err(e) => (t.native, t.error) = ("FAILED", Some(e)),
                }
            }
            self.pump();
        }

        fn number(id: &TaskId) -> Result<u64> {
            id.native().parse().map_err(|_| {
                Error::from(TaskIdError::Malformed {
                    id: id.to_string(),
                    reason: "a hatchet task id is `<instance>:<run number>`".into(),
                })
            })
        }
    }

    #[async_trait]
    impl Backend for Engine {
        fn name(&self) -> &str {
            &self.name
        }

        fn descriptor(&self) -> &Descriptor {
            &spec::DESCRIPTOR
        }

        async fn schedule(&self, r: AdmittedRequest) -> Result<TaskId> {
            // Admission ran the spec's rules: the block is there and well formed.
            let h: HatchetOptions = r.options().block()?.unwrap_or_default();
            let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            self.state.lock().expect("state").tasks.insert(
                n,
                Task {
                    workflow: h.workflow,
                    key: h.concurrency_key,
                    payload: r.payload().clone(),
                    native: "QUEUED",
                    result: None,
                    error: None,
                    run: None,
                    created_at: r.created_at(),
                    finished_at: None,
                },
            );
            self.pump();
            Ok(TaskId::new(&self.name, &n.to_string())?)
        }

        async fn status(&self, id: &TaskId) -> Result<TaskStatus> {
            let n = Self::number(id)?;
            let st = self.state.lock().expect("state");
            let t = st.tasks.get(&n).ok_or_else(|| Error::not_found(id))?;
            let d = self.descriptor();
            let state = d.map_state(t.native);
            let mut s = TaskStatus::new(id.clone(), d.label(), state, t.native);
            s.attempts_made = u32::from(state.is_finished() && state != TaskState::Cancelled);
            s.result.clone_from(&t.result);
            s.error.clone_from(&t.error);
            s.created_at = Some(t.created_at);
            s.finished_at = t.finished_at;
            Ok(s)
        }

        async fn cancel(&self, id: &TaskId) -> Result<CancelOutcome> {
            let n = Self::number(id)?;
            let outcome = {
                let mut st = self.state.lock().expect("state");
                let Some(t) = st.tasks.get_mut(&n) else {
                    return Ok(CancelOutcome::NotFound);
                };
                if matches!(t.native, "SUCCEEDED" | "FAILED" | "CANCELLED") {
                    return Ok(CancelOutcome::NotCancellableFinished);
                }
                if let Some(run) = t.run.take() {
                    run.abort();
                }
                t.native = "CANCELLED";
                t.finished_at = Some(orchestrator::raw::now_ms());
                CancelOutcome::Cancelled
            };
            self.pump();
            Ok(outcome)
        }

        async fn health(&self) -> Result<Health> {
            Ok(Health {
                backend: self.name.clone(),
                ok: true,
                detail: "in memory".into(),
                warnings: Vec::new(),
            })
        }
    }

    /// `[backends.<name>] kind = "hatchet"`: nothing to set.
    #[derive(Debug, Default, serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Config {}

    pub struct Factory;

    impl BackendFactory for Factory {
        const DESCRIPTOR: Descriptor = spec::DESCRIPTOR;
        type Config = Config;

        fn default_config() -> Option<Config> {
            Some(Config {})
        }

        fn build(instance: &str, _: Config) -> Result<SharedBackend> {
            Ok(Arc::new(Engine::named(instance)))
        }
    }

    orchestrator::register_backend!(Factory);
}

use hatchet::spec::HatchetOptions;

fn hatchet_options(workflow: &str) -> TaskOptions {
    TaskOptions::complex(HatchetOptions {
        workflow: workflow.into(),
        concurrency_key: None,
    })
}

/// The conformance suite's view of the engine.
struct HatchetHarness {
    engine: hatchet::Engine,
}

struct Served(hatchet::Engine, String);

#[async_trait]
impl Worker for Served {
    async fn stop(self: Box<Self>) -> Result<(), String> {
        self.0.unserve(&self.1);
        Ok(())
    }
}

#[async_trait]
impl Harness for HatchetHarness {
    fn backend(&self) -> BackendHandle {
        BackendHandle::new(self.engine.clone())
    }

    fn task_type(&self) -> TaskType {
        TaskType::Complex
    }

    fn options(&self, name: &str) -> TaskOptions {
        hatchet_options(name)
    }

    fn unknown_id(&self, _name: &str) -> orchestrator::TaskId {
        "hatchet:987654321".parse().expect("id")
    }

    async fn serve(&self, name: &str, behavior: Behavior) -> orchestrator::Result<Box<dyn Worker>> {
        self.engine.serve(name, behavior.into_handler());
        Ok(Box::new(Served(self.engine.clone(), name.to_string())))
    }
}

/// Its own option's case: tasks sharing a concurrency key run one at a time.
fn honours_concurrency_key(h: &dyn Harness) -> futures::future::BoxFuture<'_, ()> {
    Box::pin(async move {
        let b = h.backend();
        let gate = conformance::Gate::default();
        let name = format!("key-{}", uuid::Uuid::new_v4().simple());
        let w = h
            .serve(&name, Behavior::Hold(gate.clone()))
            .await
            .expect("serve");
        let keyed = TaskOptions::complex(HatchetOptions {
            workflow: name.clone(),
            concurrency_key: Some("k".into()),
        });
        let request = |o: TaskOptions| {
            orchestrator::ScheduleRequest::new(name.as_str(), json!({}), o).expect("valid")
        };
        let first = b.schedule(request(keyed.clone())).await.expect("first");
        let second = b.schedule(request(keyed)).await.expect("second");
        let free = b
            .schedule(request(h.options(&name)))
            .await
            .expect("unkeyed");
        let t = Duration::from_secs(5);
        wait_until(&b, &first, t, |s| s.state == TaskState::Running).await;
        wait_until(&b, &free, t, |s| s.state == TaskState::Running).await;
        assert_eq!(
            b.status(&second).await.expect("status").state,
            TaskState::Pending
        );
        gate.release();
        wait_until(&b, &second, t, |s| s.state == TaskState::Completed).await;
        w.stop().await.expect("stop");
    })
}

fn admission_and_reporting() {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            // Configured by name like any kind; the COMPLEX route named explicitly, since
            // memory-temporal (the default build's fake) runs COMPLEX tasks too.
            let config = OrchestratorConfig::from_toml_str(
                "[routing]\ncomplex = \"hatchet-eu\"\n[backends.hatchet-eu]\nkind = \"hatchet\"\n",
            )
            .expect("config");
            let orch = Orchestrator::from_config(config).expect("orchestrator");
            // The seed's JSON, with the engine's own block, parses (its shape checked).
            let options = TaskOptions::from_json(
                json!({"taskType": "COMPLEX", "hatchet": {"workflow": "w", "concurrencyKey": "k"}}),
            )
            .expect("the hatchet block is known");
            let e = TaskOptions::from_json(json!({"taskType": "COMPLEX", "hatchet": {"wf": 1}}))
                .expect_err("wrong shape");
            assert_eq!(e.field, "options", "{e}");
            let id = orch
                .schedule_task("nightly", json!({"n": 1}), options)
                .await
                .expect("scheduled");
            assert_eq!(id.backend(), "hatchet-eu");
            let s = orch.get_task_status(&id).await.expect("status");
            assert_eq!(
                (s.source.as_str(), s.state, s.native_state.as_str()),
                ("HATCHET", TaskState::Pending, "QUEUED")
            );
            // What it does not own or honour is refused, naming option and instance.
            for (options, option) in [
                (
                    TaskOptions::complex(TemporalOptions::new("w", "q")),
                    "temporal",
                ),
                (hatchet_options("w").delay(Duration::from_secs(1)), "delay"),
            ] {
                match orch.schedule_task("t", json!({}), options).await {
                    Err(Error::UnsupportedOption { backend, option: o }) => {
                        assert_eq!((backend.as_str(), o.as_str()), ("hatchet-eu", option));
                    }
                    other => panic!("expected UnsupportedOption({option}), got {other:?}"),
                }
            }
            let e = orch
                .schedule_task(
                    "t",
                    json!({}),
                    TaskOptions::simple().task_type(TaskType::Complex),
                )
                .await
                .expect_err("no block");
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
            // Its block is in the option schema, its configuration table in the schemas.
            let schemas = orchestrator::json_schemas(orchestrator::Registry::global());
            assert!(
                schemas["taskOptions"]["properties"]["hatchet"].is_object(),
                "{schemas}"
            );
            assert!(schemas["backends"]["hatchet"].is_object());
            // The docs' state table is the code's.
            assert_eq!(
                orchestrator::raw::check_state_table(
                    include_str!("fourth_engine.rs"),
                    hatchet::spec::NATIVE_STATES
                ),
                Ok(())
            );
        });
}

fn main() -> std::process::ExitCode {
    let mut trials = Suite::new(hatchet::spec::DESCRIPTOR)
        .case("honours_concurrency_key", honours_concurrency_key, true)
        .trials(|| async {
            HatchetHarness {
                engine: hatchet::Engine::named("hatchet"),
            }
        });
    trials.push(conformance::libtest_mimic::Trial::test(
        "hatchet::admission_and_reporting",
        || {
            admission_and_reporting();
            Ok(())
        },
    ));
    conformance::run_trials(trials)
}
