//! `orchestrator`: schedule, inspect and cancel tasks from scripts.
//!
//! Exit codes: 0 success, 1 the operation failed, 2 usage error.
//!
//! Conventions every subcommand follows: durations are human strings (`30s`, `500ms`,
//! `5m`; older `--*-ms` integer flags stay as aliases); enum values are case-insensitive
//! (`--type simple` = `--type SIMPLE`).

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[cfg(feature = "n8n")]
mod dispatch_cmd;
#[cfg(feature = "bullmq")]
mod exec;
#[cfg(any(feature = "bullmq", feature = "n8n"))]
mod signals;
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
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
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
}

enum Failure {
    Usage(String),
    Operation(orchestrator::Error),
}

impl From<orchestrator::Error> for Failure {
    fn from(e: orchestrator::Error) -> Self {
        Failure::Operation(e)
    }
}

/// The `--config` file (if any) overlaid with `ORCHESTRATOR_*` variables.
fn load_config(config: Option<&std::path::Path>) -> Result<OrchestratorConfig, Failure> {
    let names = Registry::global().names();
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
    for (name, table) in &mut cfg.backends {
        let kind = table.get("kind").and_then(|k| k.as_str()).unwrap_or(name);
        if kind != "n8n" {
            continue;
        }
        if let Some(outbox) = table.get_mut("outbox").and_then(|o| o.as_object_mut()) {
            outbox
                .entry("dispatch_in_process")
                .or_insert(serde_json::Value::Bool(false));
        }
    }
}

/// The configuration table of backend instance `instance` (default: the route of
/// `task_type`), which must be of kind `kind`, for the long-running command `what`.
#[cfg(any(feature = "bullmq", feature = "n8n"))]
pub(crate) fn instance_table(
    cfg: &OrchestratorConfig,
    instance: Option<String>,
    task_type: TaskType,
    kind: &str,
    what: &str,
) -> Result<(String, serde_json::Value), orchestrator::Error> {
    let instance = instance.unwrap_or_else(|| cfg.routing.backend_for(task_type).to_string());
    let (_, found, table) = cfg
        .instances()?
        .into_iter()
        .find(|(name, _, _)| *name == instance)
        .ok_or_else(|| {
            orchestrator::Error::config(format!(
                "`orchestrator {what}` serves backend instance `{instance}`, which is not configured: set [backends.{instance}] (kind = \"{kind}\")"
            ))
        })?;
    if found != kind {
        return Err(orchestrator::Error::config(format!(
            "backend instance `{instance}` is of kind `{found}`; `orchestrator {what}` serves {kind} instances"
        )));
    }
    Ok((instance, table))
}

/// The most `--data @FILE` / `--data -` reads: above every backend's payload limit.
const MAX_DATA_BYTES: u64 = 64 << 20;

/// `--data`'s text: inline, `@FILE` or `-` (stdin), read up to [`MAX_DATA_BYTES`].
fn read_data(arg: &str) -> Result<String, Failure> {
    use std::io::Read;
    let (source, reader): (String, Box<dyn Read>) = if arg == "-" {
        ("stdin".into(), Box::new(std::io::stdin()))
    } else if let Some(path) = arg.strip_prefix('@') {
        let file = std::fs::File::open(path)
            .map_err(|e| Failure::Usage(format!("--data @{path}: cannot open it: {e}")))?;
        (path.to_string(), Box::new(file))
    } else {
        return Ok(arg.to_string());
    };
    let mut text = String::new();
    reader
        .take(MAX_DATA_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| Failure::Usage(format!("--data: cannot read {source}: {e}")))?;
    if text.len() as u64 > MAX_DATA_BYTES {
        return Err(Failure::Usage(format!(
            "--data: {source} holds more than {MAX_DATA_BYTES} bytes"
        )));
    }
    Ok(text)
}

fn parse_json(flag: &str, text: &str) -> Result<serde_json::Value, Failure> {
    serde_json::from_str(text).map_err(|e| Failure::Usage(format!("{flag} is not valid JSON: {e}")))
}

/// A human duration (`30s`, `500ms`, `5m`, `1h 30m`).
pub(crate) fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); write it like 30s, 500ms or 5m"))
}

fn print_status(s: &orchestrator::TaskStatus, json: bool) {
    if json {
        print_json(s);
        return;
    }
    println!(
        "{} {} {} ({})",
        s.task_id, s.source, s.state, s.native_state
    );
    if let Some(r) = &s.result {
        println!("result: {r}");
    }
    if let Some(e) = &s.error {
        println!("error: {e}");
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
                return Err(Failure::Operation(orchestrator::Error::backend(
                    "orchestrator",
                    orchestrator::ErrorKind::Timeout,
                    format!(
                        "{task_id} is still {state} after {}",
                        humantime::format_duration(timeout)
                    ),
                )));
            }
            if state != orchestrator::TaskState::Completed {
                return Err(Failure::Operation(orchestrator::Error::backend(
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
                return Err(Failure::Operation(orchestrator::Error::backend(
                    "orchestrator",
                    orchestrator::ErrorKind::Rejected,
                    format!("task not cancelled: {outcome:?}"),
                )));
            }
        }
        Command::Backends => {
            println!("compiled in:");
            for r in Registry::global().iter() {
                let d = &r.descriptor;
                let types: Vec<&str> = d.task_types.iter().map(|t| t.as_str()).collect();
                let caps: Vec<&str> = d.capabilities.iter().map(|c| c.as_str()).collect();
                println!(
                    "  {:<16} {:<9} {:<22} {}\n  {:<16} honours: {}",
                    d.kind,
                    d.source,
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
                Err(Failure::Operation(e)) => println!("configured: none ({e})"),
                Err(Failure::Usage(m)) => println!("configured: none ({m})"),
            }
        }
        Command::Health => {
            let orch = load(cli.config.as_deref())?;
            let checks = orch.health().await;
            print_json(&checks);
            if checks.iter().any(|h| !h.ok) {
                return Err(Failure::Operation(orchestrator::Error::backend(
                    "orchestrator",
                    orchestrator::ErrorKind::Unavailable,
                    "at least one backend is unhealthy",
                )));
            }
        }
        Command::Schema => print_json(&orchestrator::json_schemas(Registry::global())),
        #[cfg(feature = "bullmq")]
        Command::Worker(args) => {
            worker_cmd::run(&load_config(cli.config.as_deref())?, args).await?;
        }
        #[cfg(feature = "n8n")]
        Command::Dispatch(args) => {
            dispatch_cmd::run(&load_config(cli.config.as_deref())?, args).await?;
        }
        #[cfg(feature = "bullmq")]
        Command::Track(args) => {
            track_cmd::run(load_config(cli.config.as_deref())?, args).await?;
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
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
            eprintln!("usage error: {m}");
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
            eprintln!("{}", line.replace('\n', " "));
            ExitCode::from(1)
        }
    }
}
