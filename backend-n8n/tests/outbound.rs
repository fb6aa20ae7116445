//! Outbound HTTP is secure by default: webhooks only on the configured n8n's host and port
//! (or `allowed_hosts`), no redirects followed, answers read up to a cap, workflow ids
//! checked before they reach an API path. The "other hosts" are local sinks that record
//! what they receive.

use orchestrator_testkit::Checked;
use std::time::Duration;

use backend_n8n::N8nOptions;
use backend_n8n::{HeaderAuth, N8nBackend, N8nConfig};
use orchestrator_core::{ErrorKind, ScheduleRequest, TaskOptions};
use orchestrator_testkit::engines::{HttpReply, HttpServer};
use serde_json::json;

/// How a sink answers.
#[derive(Clone)]
enum Answer {
    Ok,
    Redirect(String),
    /// 200 with a 1 GB body, streamed until the client hangs up.
    Huge,
}

/// A local HTTP server recording each request, answering as `answer` says.
struct Sink(HttpServer);

impl Sink {
    async fn start(answer: Answer) -> Sink {
        Sink(HttpServer::start(move |_| {
            match &answer {
            Answer::Ok => HttpReply::Json(json!({}), Vec::new()),
            Answer::Redirect(to) => HttpReply::Raw(
                format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .into_bytes(),
            ),
            Answer::Huge => HttpReply::Stream(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1073741824\r\nconnection: close\r\n\r\n".into(),
                vec![b' '; 64 * 1024],
                16_384,
            ),
        }
        }))
    }

    fn url(&self) -> &str {
        &self.0.url
    }

    fn requests(&self) -> usize {
        self.0.requests().len()
    }

    fn first_head(&self) -> String {
        self.0.requests()[0].head.clone()
    }

    fn host_port(&self) -> String {
        self.0.host_port()
    }
}

fn secured(n8n: &Sink) -> N8nConfig {
    let mut c = N8nConfig::new(n8n.url())
        .api_key("api-key-secret")
        .delivery(Duration::from_secs(5), 1, Duration::from_millis(10));
    c.header_auth = Some(HeaderAuth {
        name: "X-Webhook-Token".into(),
        value: orchestrator_core::Secret::new("header-secret"),
    });
    c.hmac_secret = Some(orchestrator_core::Secret::new("hmac-secret"));
    c
}

async fn send(
    b: &N8nBackend,
    options: N8nOptions,
) -> orchestrator_core::Result<orchestrator_core::TaskId> {
    b.checked()
        .schedule(
            ScheduleRequest::new("hook", json!({"x": 1}), TaskOptions::integration(options))
                .expect("valid"),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_stay_with_the_configured_hosts() {
    let n8n = Sink::start(Answer::Ok).await;
    let elsewhere = Sink::start(Answer::Ok).await;
    let third = Sink::start(Answer::Ok).await;
    let redirecting = Sink::start(Answer::Redirect(format!("{}/stolen", third.url()))).await;

    // Default: only the n8n at `url` (host and port) gets webhooks.
    let b = N8nBackend::new(secured(&n8n)).expect("backend");
    let e = send(
        &b,
        N8nOptions::webhook(format!("{}/webhook/x", elsewhere.url())),
    )
    .await
    .expect_err("another port is another host");
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("allowed_hosts"), "{e}");
    assert_eq!(elsewhere.requests(), 0, "the other host received a request");
    send(&b, N8nOptions::webhook(format!("{}/webhook/x", n8n.url())))
        .await
        .expect("the configured n8n itself");
    let head = n8n.first_head();
    assert!(head.contains("x-webhook-token: header-secret"), "{head}");
    assert!(head.contains("x-orchestrator-signature: sha256="), "{head}");

    // Allowed host that redirects: not followed, the third host sees nothing.
    let mut config = secured(&n8n);
    config.allowed_hosts = Some(vec![n8n.host_port(), redirecting.host_port()]);
    let b = N8nBackend::new(config).expect("backend");
    let e = send(
        &b,
        N8nOptions::webhook(format!("{}/webhook/x", redirecting.url())),
    )
    .await
    .expect_err("a redirect is not followed");
    assert_eq!(e.kind(), ErrorKind::Rejected, "{e}");
    assert!(e.to_string().contains("redirect"), "{e}");
    assert_eq!(redirecting.requests(), 1);
    assert_eq!(
        third.requests(),
        0,
        "the redirect target received the credentials"
    );
    for secret in ["header-secret", "hmac-secret", "api-key-secret"] {
        assert!(!e.to_string().contains(secret), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1_gb_answer_is_cut_at_the_cap() {
    let n8n = Sink::start(Answer::Ok).await;
    let huge = Sink::start(Answer::Huge).await;
    let mut config = secured(&n8n);
    config.allowed_hosts = Some(vec![huge.host_port()]);
    config.max_response_bytes = 1024 * 1024;
    let b = N8nBackend::new(config).expect("backend");
    let started = tokio::time::Instant::now();
    let e = send(&b, N8nOptions::webhook(format!("{}/webhook/x", huge.url())))
        .await
        .expect_err("over the cap");
    assert!(e.to_string().contains("max_response_bytes"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "read for {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_id_that_is_a_path_is_refused_before_any_request() {
    let n8n = Sink::start(Answer::Ok).await;
    let b = N8nBackend::new(secured(&n8n)).expect("backend");
    for id in ["../../rest/login", "a/b", "x?y=1", "wf%2F"] {
        let e = send(&b, N8nOptions::workflow(id)).await.expect_err(id);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{id}: {e}");
    }
    assert_eq!(n8n.requests(), 0, "a request reached n8n");
}

/// Credentials in a webhook URL are refused before any request (they would be stored with
/// an outbox dispatch and sent on every retry), and the error does not repeat them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_a_webhook_url_are_refused_before_any_request() {
    let n8n = Sink::start(Answer::Ok).await;
    let b = N8nBackend::new(secured(&n8n)).expect("backend");
    let host = n8n.url().trim_start_matches("http://");
    for url in [
        format!("http://user:pa55-word@{host}/webhook/x"),
        format!("http://token-only@{host}/webhook/x"),
    ] {
        let e = send(&b, N8nOptions::webhook(url.clone()))
            .await
            .expect_err(&url);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("pa55-word") && !text.contains("token-only"),
            "{text}"
        );
    }
    assert_eq!(n8n.requests(), 0, "a request reached the webhook host");
}
