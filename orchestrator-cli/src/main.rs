//! `orchestrator`: schedule, inspect and cancel tasks from scripts.
//!
//! Exit codes: 0 success, 1 the operation failed, 2 usage error, 3 a long-running command
//! stopped with outcomes it could not record.
//!
//! Conventions every subcommand follows: durations are human strings (`30s`, `500ms`,
//! `5m`; older `--*-ms` integer flags stay as aliases); enum values are case-insensitive
//! (`--type simple` = `--type SIMPLE`).

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[cfg(feature = "n8n")]
mod dispatch_cmd;
mod durations;
#[cfg(feature = "bullmq")]
mod exec;
#[cfg(feature = "bullmq")]
mod guard;
mod serve_cmd;
mod signals;
mod terminal;
#[cfg(feature = "bullmq")]
mod track_cmd;
#[cfg(feature = "bullmq")]
mod worker_cmd;
use orchestrator::{Orchestrator, OrchestratorConfig, Registry, TaskOptions, TaskType};

#[derive(Parser, Debug)]
#[command(
    name = "orchestrator",
    version,
    about = "One task API over BullMQ, Temporal and n8n"
)]
struct Cli {
    /// TOML configuration file (otherwise ORCHESTRATOR_CONFIG and ORCHESTRATOR_* variables).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    command: Command,
}

/// The instances and tasks `list` and `counts` cover.
#[derive(clap::Args, Debug)]
struct ScopeArgs {
    /// Only this backend instance.
    #[arg(long)]
    backend: Option<String>,
    /// Only tasks of this type.
    #[arg(long = "type", value_enum, ignore_case = true)]
    task_type: Option<TypeArg>,
    /// Only tasks of this name (the queue for SIMPLE tasks).
    #[arg(long)]
    name: Option<String>,
    /// How long each instance may take to answer (`5s`; at most 5m).
    #[arg(long, value_parser = durations::monitor_timeout, default_value = "5s")]
    timeout: std::time::Duration,
}

impl ScopeArgs {
    fn filter(&self) -> orchestrator::ListFilter {
        orchestrator::ListFilter {
            backend: self.backend.clone(),
            task_type: self.task_type.map(Into::into),
            name: self.name.clone(),
            ..orchestrator::ListFilter::default()
        }
    }
}

/// A unified state, in any case (`running`, `TIMED_OUT`, `timed-out`).
fn parse_state(s: &str) -> Result<orchestrator::TaskState, String> {
    let word = s.trim().to_uppercase().replace('-', "_");
    serde_json::from_value(serde_json::Value::String(word)).map_err(|_| {
        format!(
            "`{s}` is not a state; one of PENDING, DELAYED, RUNNING, WAITING, COMPLETED, FAILED, CANCELLED, TERMINATED, TIMED_OUT, CONTINUED_AS_NEW, UNKNOWN"
        )
    })
}

/// Report the instances that could not answer on stderr; an error when there were some.
fn instance_errors(errors: &[orchestrator::InstanceError], json: bool) -> Result<(), Failure> {
    if !json {
        for e in errors {
            eprintln!(
                "error: {}: {} ({})",
                terminal::one_line(&e.backend),
                terminal::one_line(&e.message),
                e.kind
            );
        }
    }
    match errors.len() {
        0 => Ok(()),
        n => Err(Failure::Partial(n)),
    }
}

/// Print `rows` (the first is the header) with each column as wide as its widest cell.
fn print_table(rows: &[Vec<String>]) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}

fn rfc3339(ms: Option<u64>) -> String {
    ms.map_or_else(
        || "-".to_string(),
        |ms| {
            humantime::format_rfc3339_millis(
                std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
            )
            .to_string()
        },
    )
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum TypeArg {
    Simple,
    Complex,
    Integration,
}

impl From<TypeArg> for TaskType {
    fn from(t: TypeArg) -> Self {
        match t {
            TypeArg::Simple => TaskType::Simple,
            TypeArg::Complex => TaskType::Complex,
            TypeArg::Integration => TaskType::Integration,
        }
    }
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Schedule a task and print its id.
    Schedule {
        /// Task name (the queue for SIMPLE tasks).
        name: String,
        /// Task type (any case: `simple`, `SIMPLE`).
        #[arg(long = "type", value_enum, ignore_case = true)]
        task_type: TypeArg,
        /// Payload as JSON; `@FILE` reads it from a file, `-` from stdin (at most 64 MiB),
        /// for payloads longer than a command-line argument may be (128 KiB on Linux).
        #[arg(long, default_value = "{}")]
        data: String,
        /// The seed's option object as JSON (camelCase).
        #[arg(long)]
        options: Option<String>,
        /// Print `{"taskId": …}`.
        #[arg(long)]
        json: bool,
    },
    /// Print a task's status.
    Status {
        /// The task id.
        task_id: String,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Wait until a task finishes, then print its status like `status`. Exit 0 when it
    /// completed; 1 when it failed, was cancelled, or still runs at the deadline.
    Wait {
        /// The task id.
        task_id: String,
        /// How long to wait at most (`30s`, `5m`; at most 24h).
        #[arg(long, value_parser = durations::wait_timeout, default_value = "30s")]
        timeout: std::time::Duration,
        /// Print the status as JSON (as `status --json`).
        #[arg(long)]
        json: bool,
    },
    /// Cancel a task.
    Cancel {
        /// The task id.
        task_id: String,
        /// Print `{"taskId": …, "outcome": …, "cancelled": bool}`.
        #[arg(long)]
        json: bool,
    },
    /// List tasks across every configured instance, newest first (each engine's order:
    /// see the README's monitoring section), as an aligned table or, with `--json`,
    /// `{"tasks": [<status --json>…], "next": CURSOR|null, "errors": […]}`. Exit 1 when an
    /// instance could not answer (the others are still printed).
    List {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Only tasks in this state (`pending`, `running`, `completed`, `failed`, …).
        #[arg(long, value_parser = parse_state)]
        state: Option<orchestrator::TaskState>,
        /// Only tasks created at or after this: a duration back from now (`1h`) or an RFC
        /// 3339 time.
        #[arg(long, value_parser = durations::instant)]
        since: Option<u64>,
        /// Only tasks created before this (as `--since`).
        #[arg(long, value_parser = durations::instant)]
        until: Option<u64>,
        /// At most this many tasks (1 to 1000).
        #[arg(long, default_value_t = orchestrator::DEFAULT_PAGE)]
        limit: usize,
        /// Continue after a previous page (its `next`).
        #[arg(long)]
        cursor: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Count tasks per instance and state, as a table or, with `--json`, `{"counts":
    /// [{"backend", "source", "state", "count"}…], "errors": […]}`. Exit 1 when an instance
    /// could not answer.
    Counts {
        #[command(flatten)]
        scope: ScopeArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the backends compiled in and those configured.
    Backends,
    /// Check every configured backend.
    Health,
    /// Print the JSON Schemas of the configuration and of TaskOptions.
    Schema,
    /// Serve a BullMQ queue: run CMD once per job, with the job's data as JSON on stdin.
    /// CMD's stdout (JSON) is the job's return value; a non-zero exit fails the attempt
    /// with stderr as the reason. Stops gracefully on Ctrl-C / SIGTERM.
    #[cfg(feature = "bullmq")]
    Worker(worker_cmd::WorkerArgs),
    /// Make the tracking jobs of a tracking queue mirror their workflows: each completes
    /// with its workflow's result or fails with its failure when the workflow closes
    /// (delayed between checks meanwhile). Stops gracefully on Ctrl-C / SIGTERM.
    #[cfg(feature = "bullmq")]
    Track(track_cmd::TrackArgs),
    /// Deliver an n8n outbox: what `schedule` stored in outbox mode goes to n8n, with
    /// retries, until Ctrl-C / SIGTERM (the round in flight is finished and recorded).
    #[cfg(feature = "n8n")]
    Dispatch(dispatch_cmd::DispatchArgs),
    /// Serve the HTTP API (routes, errors and security defaults: the README's HTTP API
    /// section) until Ctrl-C / SIGTERM, finishing the requests in flight.
    Serve(serve_cmd::ServeArgs),
    /// Internal: the exec worker runs each job's command under this guard, which kills the
    /// command's whole process group when the worker dies.
    #[cfg(feature = "bullmq")]
    #[command(name = "exec-guard", hide = true)]
    ExecGuard {
        /// The shell command.
        #[arg(last = true, required = true)]
        cmd: String,
    },
}

enum Failure {
    Usage(String),
    Operation(orchestrator::Error),
    /// `list`/`counts` printed what answered, and this many instances did not (exit 1).
    Partial(usize),
    /// A long-running command stopped, but `count` outcomes of what it processed were not
    /// recorded (exit 3).
    #[cfg_attr(not(any(feature = "bullmq", feature = "n8n")), allow(dead_code))]
    Unrecorded {
        what: &'static str,
        count: u64,
    },
}

/// Exit code of a worker, tracker or dispatcher that stopped with outcomes not recorded.
const EXIT_UNRECORDED: u8 = 3;

impl From<orchestrator::Error> for Failure {
    fn from(e: orchestrator::Error) -> Self {
        Failure::Operation(e)
    }
}

/// The `--config` file (if any) overlaid with `ORCHESTRATOR_*` variables.
fn load_config(config: Option<&std::path::Path>) -> Result<OrchestratorConfig, Failure> {
    let names = Registry::global().known_names();
    // Two files would be merged, the variable's silently winning: one file, named once.
    if let (Some(flag), Some(var)) = (config, std::env::var_os("ORCHESTRATOR_CONFIG")) {
        let same = |a: &std::path::Path, b: &std::path::Path| {
            a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
        };
        if !var.is_empty() && !same(flag, std::path::Path::new(&var)) {
            return Err(Failure::Usage(format!(
                "--config {} and ORCHESTRATOR_CONFIG={} name two files; give one",
                flag.display(),
                std::path::Path::new(&var).display()
            )));
        }
    }
    let mut cfg = match config {
        Some(path) => OrchestratorConfig::from_toml_file(path)?,
        None => OrchestratorConfig::default(),
    };
    // Environment variables override the file.
    cfg.merge(OrchestratorConfig::from_env(&names)?);
    Ok(cfg)
}

fn load(config: Option<&std::path::Path>) -> Result<Orchestrator, Failure> {
    Ok(Orchestrator::from_config(load_config(config)?)?)
}

/// This process ends right after `schedule`: an n8n outbox's dispatcher started here would
/// die mid-delivery. Outbox dispatches are delivered by `orchestrator dispatch` (or any
/// long-running process of the deployment) unless the configuration says otherwise.
fn no_dispatcher_in_this_process(cfg: &mut OrchestratorConfig) {
    for (_, outbox) in n8n_outboxes(cfg) {
        outbox
            .entry("dispatch_in_process")
            .or_insert(serde_json::Value::Bool(false));
    }
}

/// Each n8n instance with an outbox: its name and its `outbox` table.
pub(crate) fn n8n_outboxes(
    cfg: &mut OrchestratorConfig,
) -> impl Iterator<Item = (&String, &mut serde_json::Map<String, serde_json::Value>)> {
    cfg.backends.iter_mut().filter_map(|(name, table)| {
        let kind = table.get("kind").and_then(|k| k.as_str()).unwrap_or(name);
        if kind != "n8n" {
            return None;
        }
        let outbox = table.get_mut("outbox")?.as_object_mut()?;
        Some((name, outbox))
    })
}

/// Backend instance `instance` (default: the route of `task_type`) as its typed backend
/// `T` (of kind `kind`), built through the registry from the configuration as every
/// command builds it, for the long-running command `what`.
#[cfg(any(feature = "bullmq", feature = "n8n"))]
pub(crate) fn typed_backend<T: orchestrator::raw::Backend>(
    cfg: &OrchestratorConfig,
    instance: Option<String>,
    task_type: TaskType,
    kind: &str,
    what: &str,
) -> Result<std::sync::Arc<T>, orchestrator::Error> {
    let orch = Orchestrator::from_config(cfg.clone())?;
    let handle = match &instance {
        Some(name) => orch.backend(name),
        None => orch.backend_for(task_type),
    };
    let handle = handle.ok_or_else(|| {
        orchestrator::Error::config(match &instance {
            Some(name) => format!(
                "`orchestrator {what}` serves backend instance `{name}`, which is not configured: set [backends.{name}] (kind = \"{kind}\")"
            ),
            None => format!(
                "`orchestrator {what}` serves a {kind} instance, and none is configured for {task_type} tasks: set [backends.<instance>] (kind = \"{kind}\"), or pass --backend"
            ),
        })
    })?;
    handle.downcast::<T>().ok_or_else(|| {
        orchestrator::Error::config(format!(
            "backend instance `{}` is of kind `{}`; `orchestrator {what}` serves {kind} instances",
            handle.name(),
            handle.descriptor().kind
        ))
    })
}

/// The most `--data @FILE` / `--data -` reads: above every backend's payload limit.
const MAX_DATA_BYTES: u64 = 64 << 20;

/// `--data`'s text: inline, `@FILE` or `-` (stdin), read up to [`MAX_DATA_BYTES`].
fn read_data(arg: &str) -> Result<String, Failure> {
    let read = |reader: &mut dyn std::io::Read, what: &str| {
        orchestrator::raw::read_capped(reader, MAX_DATA_BYTES, what)
            .map_err(|e| Failure::Usage(format!("--data: {e}")))
    };
    if arg == "-" {
        read(&mut std::io::stdin().lock(), "stdin")
    } else if let Some(path) = arg.strip_prefix('@') {
        let mut file = std::fs::File::open(path)
            .map_err(|e| Failure::Usage(format!("--data @{path}: cannot open it: {e}")))?;
        read(&mut file, path)
    } else {
        Ok(arg.to_string())
    }
}

fn parse_json(flag: &str, text: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Usage(format!("{flag} is not valid JSON: {e}")))
}

/// Print a status: JSON, or one line plus the result and error lines for a person.
fn print_status(s: &orchestrator::TaskStatus, json: bool) {
    if json {
        print_json(s);
        return;
    }
    // Engine text is escaped: a job's stderr may hold terminal escapes and fake lines.
    println!(
        "{} {} {} ({})",
        terminal::one_line(&s.task_id.to_string()),
        s.source,
        s.state,
        terminal::one_line(&s.native_state)
    );
    if let Some(r) = &s.result {
        println!("result: {}", terminal::one_line(&r.to_string()));
    }
    if let Some(e) = &s.error {
        println!("error: {}", terminal::one_line(e));
    }
}

fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: cannot print JSON: {e}"),
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Schedule {
            name,
            task_type,
            data,
            options,
            json,
        } => {
            let payload = parse_json("--data", &read_data(&data)?)?;
            let task_type: TaskType = task_type.into();
            let mut opts = match options {
                Some(text) => {
                    let json = parse_json("--options", &text)?;
                    let opts =
                        TaskOptions::from_json(json.clone()).map_err(orchestrator::Error::from)?;
                    // `taskType` in --options must agree with --type, never be overridden.
                    if json.get("taskType").is_some() && opts.task_type != task_type {
                        return Err(Failure::Usage(format!(
                            "--type {task_type} conflicts with \"taskType\": \"{}\" in --options",
                            opts.task_type
                        )));
                    }
                    opts
                }
                None => TaskOptions::default(),
            };
            opts.task_type = task_type;
            let mut cfg = load_config(cli.config.as_deref())?;
            no_dispatcher_in_this_process(&mut cfg);
            let orch = Orchestrator::from_config(cfg)?;
            let id = orch.schedule_task(&name, payload, opts).await?;
            if json {
                print_json(&serde_json::json!({ "taskId": id }));
            } else {
                println!("{id}");
            }
        }
        Command::Status { task_id, json } => {
            let orch = load(cli.config.as_deref())?;
            let s = orch.get_task_status(task_id.as_str()).await?;
            print_status(&s, json);
        }
        Command::Wait {
            task_id,
            timeout,
            json,
        } => {
            let orch = load(cli.config.as_deref())?;
            let outcome = orch.wait(task_id.as_str(), timeout).await?;
            print_status(outcome.status(), json);
            let state = outcome.status().state;
            if !outcome.is_finished() {
                return Err(Failure::Operation(orchestrator::Error::engine(
                    "orchestrator",
                    orchestrator::ErrorKind::Timeout,
                    format!(
                        "{task_id} is still {state} after {}",
                        humantime::format_duration(timeout)
                    ),
                )));
            }
            if state != orchestrator::TaskState::Completed {
                return Err(Failure::Operation(orchestrator::Error::engine(
                    "orchestrator",
                    orchestrator::ErrorKind::Rejected,
                    format!("{task_id} ended {state}"),
                )));
            }
        }
        Command::Cancel { task_id, json } => {
            let orch = load(cli.config.as_deref())?;
            let outcome = orch.cancel(task_id.as_str()).await?;
            if json {
                print_json(&serde_json::json!({
                    "taskId": task_id, "outcome": outcome, "cancelled": outcome.is_cancelled()
                }));
            } else {
                println!("{task_id} {outcome:?}");
            }
            if !outcome.is_cancelled() {
                return Err(Failure::Operation(orchestrator::Error::engine(
                    "orchestrator",
                    orchestrator::ErrorKind::Rejected,
                    format!("task not cancelled: {outcome:?}"),
                )));
            }
        }
        Command::List {
            scope,
            state,
            since,
            until,
            limit,
            cursor,
            json,
        } => {
            let orch = load(cli.config.as_deref())?;
            let mut filter = scope.filter();
            filter.state = state;
            filter.since = since;
            filter.until = until;
            let mut request = orchestrator::PageRequest::first(limit).timeout(scope.timeout);
            request.cursor = cursor;
            let page = orch.list(&filter, &request).await?;
            if json {
                print_json(&page);
            } else {
                let mut rows = vec![
                    ["TASK ID", "SOURCE", "STATE", "NATIVE", "CREATED", "ORIGIN"]
                        .map(String::from)
                        .to_vec(),
                ];
                rows.extend(page.tasks.iter().map(|t| {
                    vec![
                        terminal::one_line(&t.task_id.to_string()).into_owned(),
                        t.source.to_string(),
                        t.state.to_string(),
                        terminal::one_line(&t.native_state).into_owned(),
                        rfc3339(t.created_at),
                        t.origin.as_str().to_string(),
                    ]
                }));
                print_table(&rows);
                if let Some(next) = &page.next {
                    println!("next page: --cursor {next}");
                }
            }
            instance_errors(&page.errors, json)?;
        }
        Command::Counts { scope, json } => {
            let orch = load(cli.config.as_deref())?;
            let counts = orch.counts(&scope.filter(), scope.timeout).await?;
            if json {
                print_json(&counts);
            } else {
                let mut rows = vec![
                    ["BACKEND", "SOURCE", "STATE", "COUNT"]
                        .map(String::from)
                        .to_vec(),
                ];
                rows.extend(counts.counts.iter().map(|c| {
                    vec![
                        c.backend.clone(),
                        c.source.to_string(),
                        c.state.to_string(),
                        c.count.to_string(),
                    ]
                }));
                print_table(&rows);
            }
            instance_errors(&counts.errors, json)?;
        }
        Command::Backends => {
            println!("compiled in:");
            for d in Registry::global().iter().filter_map(|r| r.descriptor()) {
                let types: Vec<&str> = d.task_types.iter().map(|t| t.as_str()).collect();
                let caps: Vec<&str> = d.capabilities.iter().map(|c| c.as_str()).collect();
                println!(
                    "  {:<16} {:<9} {:<22} {}\n  {:<16} honours: {}",
                    d.kind,
                    d.label,
                    types.join(","),
                    d.summary,
                    "",
                    caps.join(", ")
                );
            }
            match load(cli.config.as_deref()) {
                Ok(orch) => {
                    println!("configured:");
                    for b in orch.backends() {
                        let routed: Vec<&str> = b.routed.iter().map(|t| t.as_str()).collect();
                        println!(
                            "  {:<16} routes {}",
                            b.name,
                            if routed.is_empty() {
                                "-".into()
                            } else {
                                routed.join(",")
                            }
                        );
                    }
                }
                Err(Failure::Operation(e)) => {
                    println!("configured: none ({})", terminal::one_line(&e.to_string()));
                }
                Err(Failure::Usage(m)) => println!("configured: none ({})", terminal::one_line(&m)),
                Err(Failure::Unrecorded { .. } | Failure::Partial(_)) => {}
            }
        }
        Command::Health => {
            let orch = load(cli.config.as_deref())?;
            let checks = orch.health().await;
            print_json(&checks);
            if checks.iter().any(|h| !h.ok) {
                return Err(Failure::Operation(orchestrator::Error::engine(
                    "orchestrator",
                    orchestrator::ErrorKind::Unavailable,
                    "at least one backend is unhealthy",
                )));
            }
        }
        Command::Schema => {
            let mut schemas = orchestrator::json_schemas(Registry::global());
            // The `[serve]` table belongs to the server crate, which the library does not pull.
            schemas["serve"] = schemars::schema_for!(orchestrator_server::ServeSettings).to_value();
            print_json(&schemas);
        }
        Command::Serve(args) => {
            let count = serve_cmd::run(load_config(cli.config.as_deref())?, args).await?;
            #[cfg(any(feature = "bullmq", feature = "n8n"))]
            stopped("background outcome", count)?;
            #[cfg(not(any(feature = "bullmq", feature = "n8n")))]
            {
                let _: u64 = count;
                eprintln!("stopped");
            }
        }
        #[cfg(feature = "bullmq")]
        Command::Worker(args) => {
            let count = worker_cmd::run(&load_config(cli.config.as_deref())?, args).await?;
            stopped("job outcome", count)?;
        }
        #[cfg(feature = "n8n")]
        Command::Dispatch(args) => {
            let count = dispatch_cmd::run(&load_config(cli.config.as_deref())?, args).await?;
            stopped("delivery outcome", count)?;
        }
        #[cfg(feature = "bullmq")]
        Command::Track(args) => {
            let count = track_cmd::run(load_config(cli.config.as_deref())?, args).await?;
            stopped("tracking outcome", count)?;
        }
        #[cfg(feature = "bullmq")]
        Command::ExecGuard { .. } => {
            unreachable!("exec-guard runs before the runtime starts")
        }
    }
    Ok(())
}

/// The last line of a long-running command: every outcome recorded, or how many were not.
#[cfg(any(feature = "bullmq", feature = "n8n"))]
fn stopped(what: &'static str, count: u64) -> Result<(), Failure> {
    if count == 0 {
        eprintln!("stopped: every {what} recorded");
        Ok(())
    } else {
        Err(Failure::Unrecorded { what, count })
    }
}

fn main() -> ExitCode {
    // The exec guard is a small blocking process of its own: no runtime, no logging.
    #[cfg(feature = "bullmq")]
    {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        if args.get(1).is_some_and(|a| a == "exec-guard") {
            return match Cli::try_parse() {
                Ok(Cli {
                    command: Command::ExecGuard { cmd },
                    ..
                }) => guard::run(&cmd),
                _ => ExitCode::from(2),
            };
        }
    }
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(async_main()),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            ExitCode::from(1)
        }
    }
}

async fn async_main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ORCHESTRATOR_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            // One line, like every other error: clap's first line, without its prefix.
            let text = e.to_string();
            // clap's message is its first paragraph (a list of missing arguments continues
            // on indented lines).
            let first =
                if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    "a subcommand is required".to_string()
                } else {
                    text.lines()
                        .take_while(|l| !l.trim().is_empty())
                        .map(str::trim)
                        .collect::<Vec<_>>()
                        .join(" ")
                };
            let first = first.strip_prefix("error: ").unwrap_or(&first);
            eprintln!("usage error: {first} (see --help)");
            return ExitCode::from(2);
        }
    };
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            eprintln!("usage error: {}", terminal::one_line(&m));
            ExitCode::from(2)
        }
        Err(Failure::Operation(e)) => {
            // One line: the error, then each cause not already in the text.
            let mut line = format!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let cause = s.to_string();
                if !line.contains(&cause) {
                    line.push_str(": ");
                    line.push_str(&cause);
                }
                source = s.source();
            }
            eprintln!("{}", terminal::one_line(&line));
            ExitCode::from(1)
        }
        Err(Failure::Partial(n)) => {
            eprintln!("error: {n} instance(s) did not answer (see above); the rest is complete");
            ExitCode::FAILURE
        }
        Err(Failure::Unrecorded { what, count }) => {
            eprintln!(
                "stopped: {count} {what}(s) could not be recorded (exit {EXIT_UNRECORDED}); their jobs run again once their locks or leases expire"
            );
            ExitCode::from(EXIT_UNRECORDED)
        }
    }
}
