//! `orchestrator worker QUEUE --exec CMD`: any language can serve a BullMQ queue.

use std::time::Duration;

use std::sync::Arc;

use clap::Args;
use orchestrator::bullmq::{BullmqBackend, JobContext, WorkerConfig};
use orchestrator::{Error, OrchestratorConfig, TaskType};
use serde_json::Value;

use crate::durations;
use crate::exec::{self, ExecPolicy, Running};
use crate::signals::{Signals, start_retrying};

#[derive(Args, Debug)]
pub(crate) struct WorkerArgs {
    /// The queue to serve.
    queue: String,
    /// Shell command run once per job (`sh -c CMD`), in its own process group.
    #[arg(long, value_parser = non_empty_command)]
    exec: String,
    /// The bullmq instance to serve (`[backends.<instance>]`); default: the SIMPLE route.
    #[arg(long, value_name = "INSTANCE")]
    backend: Option<String>,
    /// Jobs run at once (1 to 1000).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
    concurrency: u16,
    /// Worker name stored on processed jobs.
    #[arg(long)]
    name: Option<String>,
    /// Kill a job's command (with its process group) after this long and fail the attempt;
    /// default: no limit.
    #[arg(long, value_parser = durations::job_timeout)]
    timeout: Option<Duration>,
    /// The most stdout a command may write (its JSON result), e.g. `16MiB`; more fails the
    /// attempt.
    #[arg(long, value_parser = byte_size, default_value = "16MiB")]
    max_stdout: usize,
    /// The most stderr kept as a failed attempt's reason (its end), e.g. `64KiB`.
    #[arg(long, value_parser = byte_size, default_value = "64KiB")]
    max_stderr: usize,
    /// Pass this environment variable to the commands (repeatable). Only PATH, HOME, LANG
    /// and the per-job ORCHESTRATOR_* variables are passed otherwise.
    #[arg(long = "env", value_name = "NAME", value_parser = env_name)]
    env: Vec<String>,
    /// Lock duration, 1s to 24h (a job whose worker dies is recovered after this).
    #[arg(long, value_parser = durations::lock, default_value = "30s")]
    lock_duration: Duration,
    /// Stalled-job check interval, 1s to 24h.
    #[arg(long, value_parser = durations::lock, default_value = "30s")]
    stalled_interval: Duration,
    /// After Redis failed a fetch (an outage), wait this long before fetching again, from
    /// 10ms to 1h (BullMQ's `runRetryDelay`).
    #[arg(long, value_parser = durations::retry_delay, default_value = "15s")]
    retry_delay: Duration,
    /// On shutdown (SIGTERM, Ctrl-C), how long running jobs may take to finish (up to
    /// 24h); a second signal stops at once.
    #[arg(long, value_parser = durations::grace, default_value = "30s")]
    grace: Duration,
    /// Alias of `--lock-duration`, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "lock_duration", value_parser = clap::value_parser!(u64).range(1000..=durations::MAX_MS))]
    lock_duration_ms: Option<u64>,
    /// Alias of `--stalled-interval`, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "stalled_interval", value_parser = clap::value_parser!(u64).range(1000..=durations::MAX_MS))]
    stalled_interval_ms: Option<u64>,
    /// Alias of `--grace`, in milliseconds.
    #[arg(long, hide = true, conflicts_with = "grace", value_parser = clap::value_parser!(u64).range(..=durations::MAX_MS))]
    grace_ms: Option<u64>,
}

fn non_empty_command(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the command is empty; give the shell command to run for each job".into());
    }
    Ok(s.to_string())
}

fn byte_size(s: &str) -> Result<usize, String> {
    let size: bytesize::ByteSize = s
        .parse()
        .map_err(|e| format!("`{s}` is not a size ({e}); write it like 16MiB, 64KiB or 1024"))?;
    let n = usize::try_from(size.as_u64()).map_err(|_| format!("`{s}` is too large"))?;
    if n == 0 {
        return Err("must be greater than 0".into());
    }
    Ok(n)
}

fn env_name(s: &str) -> Result<String, String> {
    let valid = !s.is_empty()
        && !s.starts_with(|c: char| c.is_ascii_digit())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("`{s}` is not an environment variable name"));
    }
    Ok(s.to_string())
}

/// The bullmq backend instance `backend` (default: the SIMPLE route) of `cfg`, for a
/// command (`what`) that serves one of its queues.
pub(crate) fn bullmq_instance(
    cfg: &OrchestratorConfig,
    backend: Option<String>,
    what: &str,
) -> Result<BullmqBackend, Error> {
    let typed: Arc<BullmqBackend> =
        crate::typed_backend(cfg, backend, TaskType::Simple, "bullmq", what)?;
    Ok(BullmqBackend::clone(&typed))
}

/// Serve the queue until a signal; returns how many job outcomes were not recorded.
pub(crate) async fn run(cfg: &OrchestratorConfig, args: WorkerArgs) -> Result<u64, Error> {
    let backend = bullmq_instance(cfg, args.backend.clone(), "worker")?;
    let ms = |alias: Option<u64>, human: Duration| alias.map_or(human, Duration::from_millis);
    let lock = ms(args.lock_duration_ms, args.lock_duration);
    let stalled = ms(args.stalled_interval_ms, args.stalled_interval);
    let grace = ms(args.grace_ms, args.grace);
    let mut wc = WorkerConfig::default()
        .concurrency(usize::from(args.concurrency))
        .stall_detection(lock, stalled)
        .retry_delay(args.retry_delay);
    if let Some(name) = args.name {
        wc = wc.name(name);
    }
    let policy = Arc::new(ExecPolicy {
        cmd: args.exec,
        timeout: args.timeout,
        max_stdout: args.max_stdout,
        max_stderr: args.max_stderr,
        env: ExecPolicy::environment(&args.env),
    });
    let running = Running::default();
    let mut signals = Signals::new()?;
    let Some(worker) = start_retrying(&mut signals, "worker", args.retry_delay, || {
        let (policy, jobs) = (Arc::clone(&policy), running.clone());
        backend.worker(&args.queue, wc.clone(), move |ctx: JobContext<Value>| {
            let (policy, running) = (Arc::clone(&policy), jobs.clone());
            async move { exec::run(&policy, &running, ctx).await }
        })
    })
    .await?
    else {
        eprintln!("stopped before the worker started");
        return Ok(0);
    };
    eprintln!("worker {} serving queue {}", worker.id(), args.queue);
    signals.next().await;
    eprintln!(
        "shutting down: {} running job(s) may finish within {} (signal again to stop now)",
        running.len(),
        humantime::format_duration(grace)
    );
    // Bounded even when Redis is unreachable: the close itself gets the grace plus 5 s.
    let closed = tokio::select! {
        r = tokio::time::timeout(grace + Duration::from_secs(5), worker.close(grace)) => {
            r.unwrap_or_else(|_| Err(Error::engine(
                "bullmq",
                orchestrator::ErrorKind::Timeout,
                "the worker did not close in time (is Redis reachable?)",
            )))
        }
        _ = signals.next() => {
            eprintln!("second signal: stopping now");
            Ok(())
        }
    };
    // Whatever still runs (grace over, second signal) is killed with its process group;
    // this worker never records those jobs' outcomes (they run again once their locks
    // expire), so they count as unrecorded.
    let killed = u64::try_from(running.kill_all()).unwrap_or(u64::MAX);
    closed?;
    Ok(worker.unrecorded().saturating_add(killed))
}
