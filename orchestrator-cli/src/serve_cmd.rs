//! `orchestrator serve`: the HTTP API (`orchestrator-server`), plus the background work a
//! deployment needs one process for: each n8n outbox's dispatcher and the tracking queues
//! of `[serve] track`. Settings come from `[serve]` / `ORCHESTRATOR_SERVE_*`; flags win.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;
use orchestrator::{Error, Orchestrator, OrchestratorConfig};
use orchestrator_server::ServeSettings;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::signals::Signals;

#[derive(Args, Debug)]
pub(crate) struct ServeArgs {
    /// Where to listen (default: `serve.bind`, else 127.0.0.1:8080). Beyond loopback a
    /// token is required.
    #[arg(long)]
    bind: Option<SocketAddr>,
    /// A file holding the bearer token every route but the health ones requires (wins over
    /// `serve.token` / `serve.token_file`).
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Serve browser requests from this origin (`https://app.example`); repeatable, added
    /// to `serve.allowed_origins`.
    #[arg(long)]
    allow_origin: Vec<String>,
}

/// Background work: how many of its outcomes it could not record.
type Work = JoinHandle<Result<u64, Error>>;

/// How long tracking checks may take to finish on shutdown.
#[cfg(feature = "bullmq")]
const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Serve until a signal; returns how many outcomes of the background work were not
/// recorded. A second signal exits at once.
pub(crate) async fn run(mut cfg: OrchestratorConfig, args: ServeArgs) -> Result<u64, Error> {
    let mut settings = ServeSettings::from_table(&cfg.serve)?;
    if let Some(path) = args.token_file {
        settings.token = None;
        settings.token_file = Some(path);
    }
    settings.allowed_origins.extend(args.allow_origin);
    let bind = args.bind.unwrap_or_else(|| settings.bind());
    let mut config = settings.server_config()?;
    config.check_bind(bind)?;
    let period = settings.metrics_period_ms.unwrap_or(METRICS_PERIOD);
    period.check_positive("serve.metrics_period_ms")?;
    let prometheus = if settings.metrics.unwrap_or(true) {
        let handle = prometheus()?;
        let render = handle.clone();
        config.metrics = Some(orchestrator_server::MetricsText::new(move || {
            render.render()
        }));
        Some(handle)
    } else {
        None
    };
    let dispatched = outboxes_served_here(&mut cfg, settings.dispatch.unwrap_or(true));
    let orch = Orchestrator::from_config(cfg.clone())?;
    #[cfg(feature = "testkit")]
    let orch = if orch.backends().is_empty() {
        // Tasks that vanish with the process are a local tool's default, never a
        // deployment's: beyond loopback, a missing configuration is an error.
        if !bind.ip().is_loopback() {
            return Err(Error::config(
                "no backend is configured; `serve` beyond loopback needs one (set [backends.<instance>] or ORCHESTRATOR_* variables)",
            ));
        }
        eprintln!(
            "no backend configured: serving the in-memory engines (tasks live in this process)"
        );
        orchestrator::testkit::in_memory().orchestrator
    } else {
        orch
    };
    if !settings.track.is_empty() && !cfg!(feature = "bullmq") {
        return Err(Error::config(
            "serve.track needs the bullmq feature, which this build lacks",
        ));
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| Error::config(format!("cannot listen on {bind}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::config(format!("cannot listen on {bind}: {e}")))?;
    // Signals first: a supervisor may send SIGTERM as soon as it reads the address.
    let mut signals = Signals::new()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    // Any background work that ends before the shutdown failed: it stops the process.
    let failed = Arc::new(Notify::new());
    #[cfg(feature = "n8n")]
    let dispatchers = dispatched
        .iter()
        .map(|name| dispatcher(&orch, name, stop_rx.clone(), failed.clone()))
        .collect::<Result<Vec<Work>, Error>>()?;
    #[cfg(not(feature = "n8n"))]
    let dispatchers: Vec<Work> = {
        drop(dispatched);
        Vec::new()
    };
    #[cfg(feature = "bullmq")]
    let trackers: Vec<Work> = if settings.track.is_empty() {
        Vec::new()
    } else {
        let bullmq = tracking_instance(&orch, settings.track_backend.as_deref())?;
        settings
            .track
            .into_iter()
            .map(|queue| tracker(&orch, &bullmq, queue, stop_rx.clone(), failed.clone()))
            .collect()
    };
    #[cfg(not(feature = "bullmq"))]
    let trackers: Vec<Work> = Vec::new();
    if let Some(handle) = prometheus {
        tokio::spawn(sampler(orch.clone(), handle, period.get(), stop_rx.clone()));
    }
    drop(stop_rx);
    let background: Vec<Work> = dispatchers.into_iter().chain(trackers).collect();
    eprintln!("serving on http://{addr}");
    orchestrator_server::serve_on(orch, config, listener, async move {
        tokio::select! {
            () = signals.next() => {}
            () = failed.notified() => eprintln!("background work failed (above): stopping"),
        }
        eprintln!("shutting down: finishing requests and background work");
        let _ = stop_tx.send(true);
        tokio::spawn(async move {
            signals.next().await;
            eprintln!("second signal: exiting now");
            std::process::exit(130);
        });
    })
    .await?;
    let mut unrecorded = 0;
    let mut first_error = None;
    for mut task in background {
        let e = match tokio::time::timeout(DRAIN, &mut task).await {
            Ok(Ok(Ok(n))) => {
                unrecorded += n;
                continue;
            }
            // Printed when it happened (`spawn_work`).
            Ok(Ok(Err(e))) => {
                first_error.get_or_insert(e);
                continue;
            }
            Ok(Err(e)) => Error::config(format!("background work panicked: {e}")),
            Err(_) => {
                task.abort();
                Error::engine(
                    "orchestrator",
                    orchestrator::ErrorKind::Timeout,
                    format!(
                        "background work did not stop within {}; abandoned (its outcomes may be unrecorded)",
                        humantime::format_duration(DRAIN)
                    ),
                )
            }
        };
        eprintln!("error: {e}");
        first_error.get_or_insert(e);
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(unrecorded),
    }
}

/// How long the background work may take to stop after the API has: the trackers' grace,
/// plus a delivery round in flight (each delivery bounded by its request timeout).
const DRAIN: std::time::Duration = std::time::Duration::from_secs(30);

/// `work` spawned; its failure wakes `failed`.
#[cfg(any(feature = "bullmq", feature = "n8n"))]
fn spawn_work(
    failed: Arc<Notify>,
    work: impl std::future::Future<Output = Result<u64, Error>> + Send + 'static,
) -> Work {
    tokio::spawn(async move {
        let r = work.await;
        if let Err(e) = &r {
            eprintln!("error: {e}");
            failed.notify_one();
        }
        r
    })
}

/// The n8n instances whose outbox this process delivers: every one with an outbox whose
/// `dispatch_in_process` is not false, when `dispatch` is on. Each is set to not start its
/// own dispatcher on `schedule` (this process runs one per instance, stopped gracefully).
fn outboxes_served_here(cfg: &mut OrchestratorConfig, dispatch: bool) -> Vec<String> {
    crate::n8n_outboxes(cfg)
        .filter_map(|(name, outbox)| {
            let wanted = outbox
                .insert("dispatch_in_process".into(), serde_json::Value::Bool(false))
                .is_none_or(|v| v != serde_json::Value::Bool(false));
            (wanted && dispatch).then(|| name.clone())
        })
        .collect()
}

/// How often `serve` refreshes the `orchestrator_tasks` gauge by default.
const METRICS_PERIOD: orchestrator::Millis = orchestrator::Millis::new(15_000);

/// Buckets of `orchestrator_operation_duration_seconds`, in seconds: from a Redis round
/// trip to a long `wait`.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process-wide Prometheus recorder, its metrics described.
fn prometheus() -> Result<metrics_exporter_prometheus::PrometheusHandle, Error> {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full(orchestrator::instruments::OPERATION_DURATION.into()),
            DURATION_BUCKETS,
        )
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|e| Error::config(format!("cannot install the metrics recorder: {e}")))?;
    orchestrator::instruments::describe();
    Ok(handle)
}

/// Every `period` until shutdown: the recorder's upkeep, then the task gauges from
/// `counts` (bounded by the monitoring timeout).
async fn sampler(
    orch: Orchestrator,
    handle: metrics_exporter_prometheus::PrometheusHandle,
    period: std::time::Duration,
    stop: watch::Receiver<bool>,
) {
    loop {
        handle.run_upkeep();
        let sample = orch.record_task_counts(orchestrator::DEFAULT_MONITOR_TIMEOUT);
        let counts = tokio::select! {
            c = sample => c,
            () = stopped(stop.clone()) => return,
        };
        // Instances that did not answer keep their last gauges: say so, each period.
        match counts {
            Ok(c) => {
                for e in c.errors {
                    eprintln!(
                        "metrics: no counts from {} ({}): gauges kept",
                        e.backend, e.message
                    );
                }
            }
            Err(e) => eprintln!("metrics: counts failed: {e}"),
        }
        tokio::select! {
            () = tokio::time::sleep(period) => {}
            () = stopped(stop.clone()) => return,
        }
    }
}

/// Resolves once the shutdown has begun.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Instance `name`'s outbox dispatcher, until shutdown.
#[cfg(feature = "n8n")]
fn dispatcher(
    orch: &Orchestrator,
    name: &str,
    stop: watch::Receiver<bool>,
    failed: Arc<Notify>,
) -> Result<Work, Error> {
    let backend = orch
        .backend(name)
        .and_then(|h| h.downcast::<orchestrator::n8n::N8nBackend>())
        .ok_or_else(|| Error::config(format!("backend instance `{name}` is not an n8n one")))?;
    eprintln!("dispatching the n8n outbox of `{name}`");
    Ok(spawn_work(failed, async move {
        backend.dispatch_until(stopped(stop)).await
    }))
}

/// How long a tracker waits before trying to start again while Redis is unreachable.
#[cfg(feature = "bullmq")]
const RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// A tracker on `queue` (started again every [`RETRY`] while Redis is unreachable), until
/// shutdown.
#[cfg(feature = "bullmq")]
fn tracker(
    orch: &Orchestrator,
    bullmq: &orchestrator::bullmq::BullmqBackend,
    queue: String,
    stop: watch::Receiver<bool>,
    failed: Arc<Notify>,
) -> Work {
    use orchestrator::track::{TrackerConfig, track};
    let (orch, bullmq) = (orch.clone(), bullmq.clone());
    spawn_work(failed, async move {
        let worker = loop {
            let attempt = tokio::select! {
                r = track(&orch, &bullmq, &queue, TrackerConfig::default()) => r,
                () = stopped(stop.clone()) => return Ok(0),
            };
            match attempt {
                Ok(w) => break w,
                Err(e) if e.is_retryable() => {
                    eprintln!(
                        "tracker on {queue}: not started ({e}); trying again in {}",
                        humantime::format_duration(RETRY)
                    );
                    tokio::select! {
                        () = tokio::time::sleep(RETRY) => {}
                        () = stopped(stop.clone()) => return Ok(0),
                    }
                }
                Err(e) => return Err(e),
            }
        };
        eprintln!("tracker {} serving queue {queue}", worker.id());
        stopped(stop).await;
        worker.close(GRACE).await?;
        Ok(worker.unrecorded())
    })
}

/// The bullmq instance holding the `track` queues (default: the SIMPLE route), from the
/// orchestrator already built.
#[cfg(feature = "bullmq")]
fn tracking_instance(
    orch: &Orchestrator,
    instance: Option<&str>,
) -> Result<orchestrator::bullmq::BullmqBackend, Error> {
    let handle = match instance {
        Some(name) => orch.backend(name),
        None => orch.backend_for(orchestrator::TaskType::Simple),
    }
    .ok_or_else(|| {
        Error::config(match instance {
            Some(name) => format!(
                "serve.track_backend names `{name}`, which is not configured: set [backends.{name}] (kind = \"bullmq\")"
            ),
            None => "serve.track needs a bullmq instance for SIMPLE tasks: configure one, or set serve.track_backend".to_string(),
        })
    })?;
    let typed = handle
        .downcast::<orchestrator::bullmq::BullmqBackend>()
        .ok_or_else(|| {
            Error::config(format!(
                "backend instance `{}` is of kind `{}`; serve.track needs a bullmq instance",
                handle.name(),
                handle.descriptor().kind
            ))
        })?;
    Ok(orchestrator::bullmq::BullmqBackend::clone(&typed))
}
