//! `orchestrator worker QUEUE --exec CMD`: any language can serve a BullMQ queue.

use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use orchestrator::bullmq::{BullmqBackend, BullmqConfig, HandlerError, JobContext, WorkerConfig};
use orchestrator::{Error, OrchestratorConfig, TaskType};
use serde_json::Value;

use crate::parse_duration;
use tokio::io::AsyncWriteExt;

#[derive(Args, Debug)]
pub(crate) struct WorkerArgs {
    /// The queue to serve.
    queue: String,
    /// Shell command run once per job (`sh -c CMD`).
    #[arg(long)]
    exec: String,
    /// The bullmq instance to serve (`[backends.<instance>]`); default: the SIMPLE route.
    #[arg(long, value_name = "INSTANCE")]
    backend: Option<String>,
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Worker name stored on processed jobs.
    #[arg(long)]
    name: Option<String>,
    /// Lock duration (a job whose worker dies is recovered after this).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    lock_duration: Duration,
    /// Stalled-job check interval.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    stalled_interval: Duration,
    /// On shutdown, how long running jobs may take to finish.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    grace: Duration,
    /// Alias of `--lock-duration`, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "lock_duration")]
    lock_duration_ms: Option<u64>,
    /// Alias of `--stalled-interval`, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "stalled_interval")]
    stalled_interval_ms: Option<u64>,
    /// Alias of `--grace`, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "grace")]
    grace_ms: Option<u64>,
}

async fn run_once(cmd: String, ctx: JobContext<Value>) -> Result<Value, HandlerError> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(&cmd)
        .env("ORCHESTRATOR_TASK_ID", ctx.task_id.to_string())
        .env("ORCHESTRATOR_JOB_ID", &ctx.job_id)
        .env("ORCHESTRATOR_JOB_NAME", &ctx.job_name)
        .env("ORCHESTRATOR_ATTEMPT", ctx.attempt.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(&serde_json::to_vec(&ctx.data)?).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(if stderr.is_empty() {
            format!("command failed: {}", out.status)
        } else {
            stderr
        }
        .into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(stdout.trim())
        .map_err(|e| format!("command output is not JSON ({e}): {}", stdout.trim()).into())
}

/// The bullmq backend instance `backend` (default: the SIMPLE route) of `cfg`, for a
/// command (`what`) that serves one of its queues.
pub(crate) fn bullmq_instance(
    cfg: &OrchestratorConfig,
    backend: Option<String>,
    what: &str,
) -> Result<BullmqBackend, Error> {
    let instance = backend.unwrap_or_else(|| cfg.routing.backend_for(TaskType::Simple).to_string());
    let (_, kind, table) = cfg
        .instances()?
        .into_iter()
        .find(|(name, _, _)| *name == instance)
        .ok_or_else(|| {
            Error::config(format!(
                "`orchestrator {what}` serves backend instance `{instance}`, which is not configured: \
                 set [backends.{instance}] url (kind = \"bullmq\") or ORCHESTRATOR_BULLMQ_URL"
            ))
        })?;
    if kind != "bullmq" {
        return Err(Error::config(format!(
            "backend instance `{instance}` is of kind `{kind}`; `orchestrator {what}` serves bullmq instances"
        )));
    }
    let config: BullmqConfig = orchestrator::config::parse_backend_config(&instance, &table)?;
    BullmqBackend::named(&instance, config)
}

/// Wait for Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() -> Result<(), Error> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::config(format!("cannot listen for SIGTERM: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

pub(crate) async fn run(cfg: &OrchestratorConfig, args: WorkerArgs) -> Result<(), Error> {
    let backend = bullmq_instance(cfg, args.backend.clone(), "worker")?;
    let ms = |alias: Option<u64>, human: Duration| alias.map_or(human, Duration::from_millis);
    let lock = ms(args.lock_duration_ms, args.lock_duration);
    let stalled = ms(args.stalled_interval_ms, args.stalled_interval);
    let grace = ms(args.grace_ms, args.grace);
    let mut wc = WorkerConfig::default()
        .concurrency(args.concurrency)
        .stall_detection(lock, stalled);
    if let Some(name) = args.name {
        wc = wc.name(name);
    }
    let cmd = args.exec;
    let worker = backend
        .worker(&args.queue, wc, move |ctx: JobContext<Value>| {
            run_once(cmd.clone(), ctx)
        })
        .await?;
    eprintln!("worker {} serving queue {}", worker.id(), args.queue);
    shutdown_signal().await?;
    eprintln!("shutting down: finishing running jobs");
    worker.close(grace).await
}
