//! `orchestrator dispatch`: the n8n outbox dispatcher as a long-running command, for CLI
//! users whose `schedule` calls only store dispatches (outbox mode).

use clap::Args;
use orchestrator::n8n::N8nBackend;
use orchestrator::{Error, OrchestratorConfig};

#[derive(Args, Debug)]
pub(crate) struct DispatchArgs {
    /// The n8n instance whose outbox to deliver (`[backends.<instance>]`); default: the
    /// INTEGRATION route.
    #[arg(long, value_name = "INSTANCE")]
    backend: Option<String>,
}

/// Deliver until a signal; returns how many delivery outcomes were not recorded.
pub(crate) async fn run(cfg: &OrchestratorConfig, args: DispatchArgs) -> Result<u64, Error> {
    let backend: std::sync::Arc<N8nBackend> = crate::typed_backend(
        cfg,
        args.backend,
        orchestrator::TaskType::Integration,
        "n8n",
        "dispatch",
    )?;
    let instance = orchestrator::raw::Backend::name(&*backend).to_string();
    let mut signals = crate::signals::Signals::new()?;
    eprintln!("dispatching the n8n outbox of `{instance}` (Ctrl-C or SIGTERM to stop)");
    backend.dispatch_until(signals.next()).await
}
