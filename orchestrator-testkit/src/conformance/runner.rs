//! The table of cases for one descriptor, and its `libtest-mimic` runner with the
//! engine/fake parity check.

use std::fmt;

use futures::future::BoxFuture;
use orchestrator_core::{Capability, Descriptor};

use super::Harness;
use super::cases::*;
use super::snake;

/// A case: an async function over a harness.
pub type CaseFn = for<'a> fn(&'a dyn Harness) -> BoxFuture<'a, ()>;

macro_rules! case_fn {
    ($f:ident) => {{
        fn boxed(h: &dyn Harness) -> BoxFuture<'_, ()> {
            Box::pin($f(h))
        }
        boxed as CaseFn
    }};
}

/// One row of the suite: a trial name and either what it runs or why it cannot run.
pub struct Case {
    /// The trial name (without the kind).
    pub name: String,
    run: Result<CaseFn, String>,
}

impl fmt::Debug for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Case")
            .field("name", &self.name)
            .field("skip", &self.run.as_ref().err())
            .finish()
    }
}

impl Case {
    /// Why the case does not run, if it does not.
    pub fn skip_reason(&self) -> Option<&str> {
        self.run.as_ref().err().map(String::as_str)
    }
}

/// The case of a declared capability, and whether it needs Rust handlers.
fn honour_case(c: Capability) -> (CaseFn, bool) {
    match c {
        Capability::Delay => (case_fn!(honours_delay), true),
        Capability::Priority => (case_fn!(honours_priority), true),
        Capability::Attempts => (case_fn!(honours_attempts), true),
        Capability::Backoff => (case_fn!(honours_backoff), true),
        Capability::CancelPending => (case_fn!(honours_cancel_pending), true),
        Capability::CancelRunning => (case_fn!(honours_cancel_running), false),
        Capability::List => (case_fn!(honours_list), false),
        Capability::Counts => (case_fn!(honours_counts), false),
        _ => (case_fn!(honours_progress), true),
    }
}

/// The case showing the engine does not honour undeclared capability `c` either, whether
/// it needs Rust handlers, or why there is none.
fn raw_case(
    c: Capability,
    declared: impl Fn(Capability) -> bool,
) -> Result<(CaseFn, bool), String> {
    match c {
        Capability::Delay => Ok((case_fn!(raw_delay), false)),
        Capability::Attempts => Ok((case_fn!(raw_attempts), false)),
        Capability::CancelRunning => Ok((case_fn!(raw_cancel_running), false)),
        Capability::Progress => Ok((case_fn!(raw_progress), true)),
        Capability::List => Ok((case_fn!(raw_list), false)),
        Capability::Counts => Ok((case_fn!(raw_counts), false)),
        Capability::Priority => Err(
            "the start order of tasks is not observable on an engine whose workers run many at once"
                .into(),
        ),
        Capability::Backoff if !declared(Capability::Attempts) => {
            Err("a backoff needs retries, which this engine does not make".into())
        }
        Capability::Backoff => Err("no raw case yet for a backoff without its declaration".into()),
        _ => Err(
            "a task is started when the engine takes it: there is no pending task to cancel"
                .into(),
        ),
    }
}

/// The cases of each engine option, by key (every case sets the option it observes).
const OPTION_CASES: &[(&str, &[(&str, CaseFn)])] = &[
    ("jobId", &[("honours_job_id", case_fn!(honours_job_id))]),
    (
        "jobName",
        &[("honours_job_name", case_fn!(honours_job_name))],
    ),
    ("lifo", &[("honours_lifo", case_fn!(honours_lifo))]),
    (
        "removeOnComplete",
        &[(
            "honours_remove_on_complete",
            case_fn!(honours_remove_on_complete),
        )],
    ),
    (
        "removeOnFail",
        &[("honours_remove_on_fail", case_fn!(honours_remove_on_fail))],
    ),
    (
        "deduplication",
        &[("honours_deduplication", case_fn!(honours_deduplication))],
    ),
    (
        "temporal",
        &[
            ("honours_workflow_id", case_fn!(honours_workflow_id)),
            (
                "honours_id_conflict_policy",
                case_fn!(honours_id_conflict_policy),
            ),
            (
                "honours_execution_timeout",
                case_fn!(honours_execution_timeout),
            ),
            ("honours_tracking_queue", case_fn!(honours_tracking_queue)),
        ],
    ),
];

/// Engine options whose effect every generic case observes (they select the work).
const OBSERVED_BY_EVERY_CASE: &[(&str, &str)] = &[(
    "n8n",
    "the `n8n` block selects the workflow every case runs; schedule_status_complete observes its result",
)];

/// Option cases that need Rust handlers (they observe what ran, in which order, by name).
fn option_case_needs_rust(name: &str) -> bool {
    !matches!(
        name,
        "honours_id_conflict_policy" | "honours_tracking_queue"
    )
}

/// The suite for one backend kind.
#[derive(Clone)]
pub struct Suite {
    descriptor: Descriptor,
    no_rust: Option<String>,
    unobservable: Vec<(Capability, String)>,
    extra: Vec<(String, CaseFn, bool)>,
    serial: bool,
}

impl fmt::Debug for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suite")
            .field("descriptor", &self.descriptor)
            .field("no_rust", &self.no_rust)
            .field("unobservable", &self.unobservable)
            .finish_non_exhaustive()
    }
}

impl Suite {
    /// The suite for a backend of `descriptor`'s kind.
    pub fn new(descriptor: Descriptor) -> Self {
        Self {
            descriptor,
            no_rust: None,
            unobservable: Vec::new(),
            extra: Vec::new(),
            serial: false,
        }
    }

    /// Run one case at a time (unless the command line says otherwise): for an engine that
    /// one case's load slows past another's timeouts (n8n running 1,000 executions).
    #[must_use]
    pub fn one_at_a_time(mut self) -> Self {
        self.serial = true;
        self
    }

    /// The harness cannot observe declared capability `c` yet (say why, and which issue
    /// tracks it): its `honours_` case is listed as skipped with `why`, never passed.
    #[must_use]
    pub fn unobservable(mut self, c: Capability, why: impl Into<String>) -> Self {
        self.unobservable.push((c, why.into()));
        self
    }

    /// The harness cannot run [`super::Behavior::Rust`] handlers (the engine runs work
    /// defined elsewhere, like n8n workflows); cases that need one are listed as skipped
    /// with `why`.
    #[must_use]
    pub fn without_rust_handlers(mut self, why: impl Into<String>) -> Self {
        self.no_rust = Some(why.into());
        self
    }

    /// Add a case of this backend's own (an engine option the suite has no case for),
    /// named `name`; `rust` says whether it needs Rust handlers.
    #[must_use]
    pub fn case(mut self, name: impl Into<String>, f: CaseFn, rust: bool) -> Self {
        self.extra.push((name.into(), f, rust));
        self
    }

    fn runnable(&self, f: CaseFn, rust: bool) -> Result<CaseFn, String> {
        match (&self.no_rust, rust) {
            (Some(why), true) => Err(format!("needs Rust handlers: {why}")),
            _ => Ok(f),
        }
    }

    /// Every case, in order, each runnable or with its skip reason.
    pub fn cases(&self) -> Vec<Case> {
        let generic: [(&str, CaseFn); 9] = [
            (
                "schedule_status_complete",
                case_fn!(schedule_status_complete),
            ),
            ("cancel_finished", case_fn!(cancel_finished)),
            (
                "wait_returns_the_outcome",
                case_fn!(wait_returns_the_outcome),
            ),
            (
                "wait_deadline_and_cancel",
                case_fn!(wait_deadline_and_cancel),
            ),
            ("task_id_round_trip", case_fn!(task_id_round_trip)),
            ("unknown_id_not_found", case_fn!(unknown_id_not_found)),
            ("malformed_id_invalid", case_fn!(malformed_id_invalid)),
            ("invalid_input_rejected", case_fn!(invalid_input_rejected)),
            ("concurrent_unique_ids", case_fn!(concurrent_unique_ids)),
        ];
        let mut cases: Vec<Case> = generic
            .into_iter()
            .map(|(name, f)| Case {
                name: name.to_string(),
                run: Ok(f),
            })
            .collect();
        let caps = self.descriptor.capabilities;
        for c in Capability::ALL {
            let unobservable = self.unobservable.iter().find(|(u, _)| *u == c);
            let case = if caps.has(c) {
                let name = format!("honours_{}", snake(c));
                match unobservable {
                    Some((_, why)) => Case {
                        name,
                        run: Err(format!("unobservable here: {why}")),
                    },
                    None => {
                        let (f, rust) = honour_case(c);
                        Case {
                            name,
                            run: self.runnable(f, rust),
                        }
                    }
                }
            } else {
                Case {
                    name: format!("raw_{}", snake(c)),
                    run: raw_case(c, |d| caps.has(d)).and_then(|(f, rust)| self.runnable(f, rust)),
                }
            };
            cases.push(case);
        }
        for option in self.descriptor.options {
            if let Some((_, list)) = OPTION_CASES.iter().find(|(k, _)| *k == option.key) {
                for (name, f) in *list {
                    cases.push(Case {
                        name: (*name).to_string(),
                        run: self.runnable(*f, option_case_needs_rust(name)),
                    });
                }
            } else if let Some((_, why)) = OBSERVED_BY_EVERY_CASE
                .iter()
                .find(|(k, _)| *k == option.key)
            {
                cases.push(Case {
                    name: format!("option_{}", option.key),
                    run: Err((*why).to_string()),
                });
            } else if !self.extra.is_empty() {
                // The backend brings its own cases for its own options.
            } else {
                cases.push(Case {
                    name: format!("option_{}", option.key),
                    run: Err(format!(
                        "no case in the suite for engine option `{}`; add one with Suite::case",
                        option.key
                    )),
                });
            }
        }
        for (name, f, rust) in &self.extra {
            cases.push(Case {
                name: name.clone(),
                run: self.runnable(*f, *rust),
            });
        }
        cases
    }
}

#[cfg(feature = "harness")]
mod trials {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use libtest_mimic::{Arguments, Failed, Trial};

    use super::*;

    /// What happened to one trial.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Outcome {
        Passed,
        Failed,
        Skipped(String),
    }

    /// The outcomes of the trials that ran, and what the harness's backend said it
    /// honours, per kind.
    #[derive(Default)]
    struct Record {
        outcomes: BTreeMap<(String, String), Outcome>,
        capabilities: BTreeMap<String, String>,
    }

    type Shared = Arc<Mutex<Record>>;

    fn lock(r: &Shared) -> std::sync::MutexGuard<'_, Record> {
        r.lock().unwrap_or_else(|p| p.into_inner())
    }

    impl Suite {
        fn trials_into<H, F, Fut>(self, setup: F, record: &Shared) -> Vec<Trial>
        where
            H: Harness + 'static,
            F: FnOnce() -> Fut + Send + 'static,
            Fut: std::future::Future<Output = H> + Send + 'static,
        {
            let rt = Arc::new(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}")),
            );
            let setup: Arc<Mutex<Option<F>>> = Arc::new(Mutex::new(Some(setup)));
            let harness: Arc<tokio::sync::OnceCell<H>> = Arc::new(tokio::sync::OnceCell::new());
            let kind = self.descriptor.kind;
            let descriptor = self.descriptor;
            self.cases()
                .into_iter()
                .map(|case| {
                    let key = (kind.to_string(), case.name.clone());
                    let name = format!("{kind}::{}", case.name);
                    match case.run {
                        Err(why) => {
                            lock(record).outcomes.insert(key, Outcome::Skipped(why.clone()));
                            let reason = why.clone();
                            // Forced to run (`--include-ignored`), a skipped case fails: it
                            // did not run, so it must not read as passed.
                            Trial::test(name, move || Err(Failed::from(format!("not run: {reason}"))))
                                .with_kind(format!("skip: {why}"))
                                .with_ignored_flag(true)
                        }
                        Ok(f) => {
                            let (rt, setup, harness, record) =
                                (rt.clone(), setup.clone(), harness.clone(), record.clone());
                            Trial::test(name, move || {
                                let run = std::panic::AssertUnwindSafe(|| {
                                    rt.block_on(async {
                                        let h = harness
                                            .get_or_init(|| async {
                                                let f = setup.lock().expect("setup").take();
                                                let f = f.unwrap_or_else(|| {
                                                    panic!("the harness setup failed in an earlier case; see its message")
                                                });
                                                f().await
                                            })
                                            .await;
                                        let backend = h.backend();
                                        assert_eq!(backend.descriptor().kind, kind, "harness backend kind");
                                        // What the running backend honours is what its kind
                                        // declares: admission follows the running backend.
                                        let running = backend.capabilities();
                                        lock(&record)
                                            .capabilities
                                            .insert(kind.to_string(), format!("{running:?}"));
                                        assert_eq!(
                                            running, descriptor.capabilities,
                                            "the running backend honours other capabilities than its kind declares"
                                        );
                                        f(h).await;
                                    });
                                });
                                let result = std::panic::catch_unwind(run);
                                let outcome = if result.is_ok() { Outcome::Passed } else { Outcome::Failed };
                                lock(&record).outcomes.insert(key.clone(), outcome);
                                if let Err(panic) = result {
                                    std::panic::resume_unwind(panic);
                                }
                                Ok(())
                            })
                        }
                    }
                })
                .collect()
        }

        /// The suite as `libtest-mimic` trials over the harness `setup` builds, once, on
        /// the first trial that runs.
        pub fn trials<H, F, Fut>(self, setup: F) -> Vec<Trial>
        where
            H: Harness + 'static,
            F: FnOnce() -> Fut + Send + 'static,
            Fut: std::future::Future<Output = H> + Send + 'static,
        {
            self.trials_into(setup, &Shared::default())
        }

        /// Run the suite as a test binary's `main` (`harness = false`), parsing libtest's
        /// command line (filters, `--ignored`, `--list`…).
        pub fn run<H, F, Fut>(self, setup: F) -> std::process::ExitCode
        where
            H: Harness + 'static,
            F: FnOnce() -> Fut + Send + 'static,
            Fut: std::future::Future<Output = H> + Send + 'static,
        {
            run_trials(self.trials(setup))
        }

        /// Run this (engine) suite and `fake`'s suite side by side as a test binary's
        /// `main`, then compare them: every case that ran on both must have the same
        /// outcome, both running backends must honour what their kinds declare, and the
        /// table of what ran and what was skipped (with why) on each side must equal the
        /// one checked in at `table` (regenerate it with `ORCH_PARITY_WRITE=1`). A
        /// filtered run (`cargo test … -- NAME`) checks what ran and skips the table.
        pub fn run_with_parity<H, F, Fut, H2, F2, Fut2>(
            self,
            setup: F,
            fake: Suite,
            fake_setup: F2,
            table: &str,
        ) -> std::process::ExitCode
        where
            H: Harness + 'static,
            F: FnOnce() -> Fut + Send + 'static,
            Fut: std::future::Future<Output = H> + Send + 'static,
            H2: Harness + 'static,
            F2: FnOnce() -> Fut2 + Send + 'static,
            Fut2: std::future::Future<Output = H2> + Send + 'static,
        {
            let record = Shared::default();
            let (engine, fake_kind) = (self.descriptor.kind, fake.descriptor.kind);
            let serial = self.serial;
            let mut trials = self.trials_into(setup, &record);
            trials.extend(fake.trials_into(fake_setup, &record));
            let mut args = Arguments::from_args();
            if serial && args.test_threads.is_none() {
                args.test_threads = Some(1);
            }
            let whole =
                args.filter.is_none() && args.skip.is_empty() && !args.list && !args.ignored;
            let conclusion = libtest_mimic::run(&args, trials);
            if args.list {
                return conclusion.exit_code();
            }
            let rec = lock(&record);
            let mut problems = Vec::new();
            let names: std::collections::BTreeSet<&String> =
                rec.outcomes.keys().map(|(_, c)| c).collect();
            let mut lines = vec![
                format!(
                    "# Conformance parity: `{engine}` (the engine) and `{fake_kind}` (its fake), case by case."
                ),
                "# Checked by the engine's conformance binary; regenerate with ORCH_PARITY_WRITE=1.".to_string(),
            ];
            for (kind, caps) in [
                (engine, rec.capabilities.get(engine)),
                (fake_kind, rec.capabilities.get(fake_kind)),
            ] {
                if let Some(caps) = caps {
                    lines.push(format!("capabilities {kind} {caps}"));
                }
            }
            for case in names {
                let e = rec.outcomes.get(&(engine.to_string(), case.clone()));
                let f = rec.outcomes.get(&(fake_kind.to_string(), case.clone()));
                let word = |o: Option<&Outcome>| match o {
                    None => "absent".to_string(),
                    Some(Outcome::Skipped(why)) => format!("skip ({why})"),
                    Some(_) => "runs".to_string(),
                };
                if let (Some(a), Some(b)) = (e, f) {
                    let ran = |o: &Outcome| !matches!(o, Outcome::Skipped(_));
                    if ran(a) && ran(b) && a != b {
                        problems.push(format!(
                            "{case}: {engine} {a:?}, {fake_kind} {b:?} — the fake and its engine disagree"
                        ));
                    }
                }
                lines.push(format!(
                    "{case}: {engine} {}; {fake_kind} {}",
                    word(e),
                    word(f)
                ));
            }
            if whole {
                if rec.capabilities.get(engine) != rec.capabilities.get(fake_kind) {
                    problems.push(format!(
                        "the running backends honour different capabilities: {engine} {:?}, {fake_kind} {:?}",
                        rec.capabilities.get(engine),
                        rec.capabilities.get(fake_kind)
                    ));
                }
                let text = lines.join("\n") + "\n";
                if std::env::var_os("ORCH_PARITY_WRITE").is_some() {
                    if let Err(e) = std::fs::write(table, &text) {
                        problems.push(format!("cannot write {table}: {e}"));
                    }
                } else {
                    let checked_in = std::fs::read_to_string(table).unwrap_or_default();
                    if checked_in != text {
                        problems.push(format!(
                            "the parity table differs from {table} (ORCH_PARITY_WRITE=1 rewrites it; review the diff):\n--- checked in\n{checked_in}--- this run\n{text}"
                        ));
                    }
                }
            }
            if problems.is_empty() {
                println!(
                    "parity `{engine}` / `{fake_kind}`: {}",
                    if whole {
                        "table matches"
                    } else {
                        "outcomes agree (filtered run: table not checked)"
                    }
                );
                conclusion.exit_code()
            } else {
                eprintln!("parity `{engine}` / `{fake_kind}` FAILED:");
                for p in problems {
                    eprintln!("  {p}");
                }
                std::process::ExitCode::FAILURE
            }
        }
    }

    /// Run `trials` (of one or several suites) as a test binary's `main`.
    pub fn run_trials(trials: Vec<Trial>) -> std::process::ExitCode {
        let args = Arguments::from_args();
        libtest_mimic::run(&args, trials).exit_code()
    }
}

#[cfg(feature = "harness")]
pub use trials::run_trials;
