//! `orchestrator track QUEUE`: the tracker (see `orchestrator::track`) as a long-running
//! command.

use std::time::Duration;

use clap::Args;
use orchestrator::track::{TrackerConfig, track};
use orchestrator::{Error, Orchestrator, OrchestratorConfig};

use crate::durations;
use crate::signals::{Signals, start_retrying};
use crate::worker_cmd::bullmq_instance;

#[derive(Args, Debug)]
pub(crate) struct TrackArgs {
    /// The tracking queue to serve (a COMPLEX task's `trackingQueue`).
    queue: String,
    /// The bullmq instance holding the queue (`[backends.<instance>]`); default: the
    /// SIMPLE route.
    #[arg(long, value_name = "INSTANCE")]
    backend: Option<String>,
    /// How long one check waits for the workflow to close.
    #[arg(long, value_parser = durations::hold, default_value = "1s")]
    hold: Duration,
    /// How long a job of a running workflow stays delayed between checks (at least 100ms).
    #[arg(long, value_parser = durations::recheck, default_value = "5s")]
    recheck: Duration,
    /// Checks run at once (1 to 1000).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    concurrency: u16,
    /// On shutdown, how long running checks may take to finish.
    #[arg(long, value_parser = durations::grace, default_value = "10s")]
    grace: Duration,
}

/// How long the tracker waits before trying to start again while Redis is unreachable.
const RETRY: Duration = Duration::from_secs(5);

/// Serve the tracking queue until a signal; returns how many outcomes were not recorded.
pub(crate) async fn run(cfg: OrchestratorConfig, args: TrackArgs) -> Result<u64, Error> {
    let bullmq = bullmq_instance(&cfg, args.backend, "track")?;
    let orch = Orchestrator::from_config(cfg)?;
    let config = TrackerConfig {
        hold: args.hold,
        recheck: args.recheck,
        concurrency: usize::from(args.concurrency),
    };
    let mut signals = Signals::new()?;
    let Some(worker) = start_retrying(&mut signals, "tracker", RETRY, || {
        track(&orch, &bullmq, &args.queue, config.clone())
    })
    .await?
    else {
        eprintln!("stopped before the tracker started");
        return Ok(0);
    };
    eprintln!("tracker {} serving queue {}", worker.id(), args.queue);
    signals.next().await;
    eprintln!("shutting down: finishing running checks");
    worker.close(args.grace).await?;
    Ok(worker.unrecorded())
}
