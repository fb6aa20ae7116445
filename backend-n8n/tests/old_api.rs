//! n8n 2.8.x has no public stop endpoint: cancelling falls back to the internal one with
//! the owner's login, and without owner credentials the error says what to configure.

mod support;

use orchestrator_testkit::Checked;
use std::time::Duration;

use backend_n8n::N8nBackend;
use backend_n8n::N8nOptions;
use orchestrator_core::raw::Backend;
use orchestrator_core::{CancelOutcome, ErrorKind, ScheduleRequest, TaskOptions, TaskState};
use orchestrator_testkit::conformance::wait_finished;
use serde_json::json;
use support::N8nServer;

async fn cancel_falls_back_to_the_internal_stop_on_n8n_2_8() {
    let server = N8nServer::start_version("2.8.4", &[]);
    assert_eq!(server.env["N8N_VERSION"], "2.8.4");
    let opts = || TaskOptions::integration(N8nOptions::workflow("otWait0000000001"));
    let req = || ScheduleRequest::new("wait", json!({"seconds": 30}), opts()).expect("valid");

    // Without owner credentials: a typed error naming the settings.
    let plain = support::backend(&server);
    let id = plain.checked().schedule(req()).await.expect("scheduled");
    let e = plain.cancel(&id).await.expect_err("no public stop");
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("owner_email"), "{e}");

    // With them: stopped through /rest/executions/{id}/stop.
    let owner = N8nBackend::new(support::config(&server).owner(
        &server.env["N8N_OWNER_EMAIL"],
        &server.env["N8N_OWNER_PASSWORD"],
    ))
    .expect("backend");
    assert_eq!(
        owner.cancel(&id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    let s = wait_finished(&owner.checked(), &id, Duration::from_secs(15)).await;
    assert_eq!(
        (s.state, s.native_state.as_str()),
        (TaskState::Cancelled, "canceled")
    );
    assert_eq!(
        owner.cancel(&id).await.expect("again"),
        CancelOutcome::NotCancellableFinished
    );
    let e = format!("{owner:?}");
    assert!(!e.contains(&server.env["N8N_OWNER_PASSWORD"]), "{e}");
}

orchestrator_testkit::engine_tests! {
    [N8nOld] async: cancel_falls_back_to_the_internal_stop_on_n8n_2_8;
}
