//! `orchestrator worker QUEUE --exec CMD`: any language can serve a BullMQ queue.

use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use orchestrator::bullmq::{BullmqBackend, BullmqConfig, HandlerError, JobContext, WorkerConfig};
use orchestrator::{Error, OrchestratorConfig};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

#[derive(Args, Debug)]
pub(crate) struct WorkerArgs {
    /// The queue to serve.
    queue: String,
    /// Shell command run once per job (`sh -c CMD`).
    #[arg(long)]
    exec: String,
    /// Jobs run at once.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    /// Worker name stored on processed jobs.
    #[arg(long)]
    name: Option<String>,
    /// Lock duration in ms (a job whose worker dies is recovered after this).
    #[arg(long, default_value_t = 30_000)]
    lock_duration_ms: u64,
    /// Stalled-job check interval in ms.
    #[arg(long, default_value_t = 30_000)]
    stalled_interval_ms: u64,
    /// On shutdown, how long running jobs may take to finish, in ms.
    #[arg(long, default_value_t = 30_000)]
    grace_ms: u64,
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

pub(crate) async fn run(cfg: &OrchestratorConfig, args: WorkerArgs) -> Result<(), Error> {
    let table = cfg.backends.get("bullmq").ok_or_else(|| {
        Error::config(
            "the worker needs Redis: set ORCHESTRATOR_BULLMQ_URL or [backends.bullmq] url",
        )
    })?;
    let config: BullmqConfig = orchestrator::config::parse_backend_config("bullmq", table)?;
    let backend = BullmqBackend::new(config)?;
    let mut wc = WorkerConfig::default()
        .concurrency(args.concurrency)
        .stall_detection(
            Duration::from_millis(args.lock_duration_ms),
            Duration::from_millis(args.stalled_interval_ms),
        );
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
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| Error::config(format!("cannot listen for SIGTERM: {e}")))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("shutting down: finishing running jobs");
    worker.close(Duration::from_millis(args.grace_ms)).await
}
