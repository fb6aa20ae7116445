//! `orchestrator dispatch`: the n8n outbox dispatcher as a long-running command, for CLI
//! users whose `schedule` calls only store dispatches (outbox mode).

use clap::Args;
use orchestrator::n8n::{N8nBackend, N8nConfig};
use orchestrator::{Error, OrchestratorConfig};

#[derive(Args, Debug)]
pub(crate) struct DispatchArgs {
    /// The n8n instance whose outbox to deliver (`[backends.<instance>]`); default: the
    /// INTEGRATION route.
    #[arg(long, value_name = "INSTANCE")]
    backend: Option<String>,
}

pub(crate) async fn run(cfg: &OrchestratorConfig, args: DispatchArgs) -> Result<(), Error> {
    let (instance, table) = crate::instance_table(
        cfg,
        args.backend,
        orchestrator::TaskType::Integration,
        "n8n",
        "dispatch",
    )?;
    let config: N8nConfig = orchestrator::config::parse_backend_config(&instance, &table)?;
    let backend = N8nBackend::named(&instance, config)?;
    let mut signals = crate::signals::Signals::new()?;
    eprintln!("dispatching the n8n outbox of `{instance}` (Ctrl-C or SIGTERM to stop)");
    backend.dispatch_until(signals.next()).await?;
    eprintln!("stopped: the round in flight was recorded");
    Ok(())
}
