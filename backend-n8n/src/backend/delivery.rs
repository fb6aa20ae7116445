//! Delivery to a webhook: the allowlist check, the request headers (task id, name, source,
//! HMAC signature), the POST with retries, and reading an execution id from the answer.

use super::api::message_of;
use super::*;
use hmac::{Hmac, KeyInit, Mac};

/// Header carrying the dispatch's signed task id (`n8n:<dispatch id>.<signature>`); the task id gains
/// `:<execution id>` when n8n reports one.
pub const TASK_ID_HEADER: &str = "X-Orchestrator-Task-Id";

/// Header carrying the task name.
pub const TASK_NAME_HEADER: &str = "X-Orchestrator-Task-Name";

/// Header carrying `n8n.integrationSource`.
pub const SOURCE_HEADER: &str = "X-Orchestrator-Integration-Source";

/// Header carrying `sha256=<hex HMAC-SHA256 of the body>` when `hmac_secret` is set.
pub const SIGNATURE_HEADER: &str = "X-Orchestrator-Signature";

/// Where a workflow's webhook lives.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) url: String,
    pub(crate) method: Method,
    pub(crate) workflow_id: Option<String>,
}

pub(crate) fn execution_id_from(
    headers: &reqwest::header::HeaderMap,
    body: &Value,
) -> Option<String> {
    let from_header = headers
        .get("x-n8n-execution-id")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    let from_body = body.get("executionId").and_then(|v| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    from_header
        .or(from_body)
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
}

pub(crate) fn parse_body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| {
        if text.is_empty() {
            Value::Null
        } else {
            Value::String(text.to_string())
        }
    })
}

impl N8nBackend {
    /// The headers every delivery of dispatch `dispatch` carries: task id and name, the
    /// integration source, and the body's HMAC-SHA256 signature when `hmac_secret` is set.
    pub(crate) fn request_headers(
        &self,
        dispatch: &str,
        task_name: &str,
        n: &crate::spec::N8nOptions,
        body: &[u8],
    ) -> Result<Vec<(String, String)>> {
        let mut headers = vec![
            (
                TASK_ID_HEADER.to_string(),
                self.task_id(dispatch, None)?.to_string(),
            ),
            (TASK_NAME_HEADER.to_string(), task_name.to_string()),
        ];
        if let Some(src) = &n.integration_source {
            headers.push((SOURCE_HEADER.to_string(), src.clone()));
        }
        if let Some(secret) = &self.inner.config.hmac_secret {
            let mut mac =
                <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.expose().as_bytes())
                    .map_err(|_| {
                        err(
                            ErrorKind::InvalidConfig,
                            "this backend's `hmac_secret` is not usable as an HMAC key",
                        )
                    })?;
            mac.update(body);
            headers.push((
                SIGNATURE_HEADER.to_string(),
                format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
            ));
        }
        Ok(headers)
    }

    /// Webhooks may only be called on the configured n8n's own host and port, or on the
    /// `host[:port]` entries of `allowed_hosts`: the auth headers and the signature go with
    /// every call.
    pub(crate) fn check_allowed(&self, url: &str) -> Result<()> {
        let parsed = url::Url::parse(url).map_err(|e| {
            Error::invalid(
                "n8n.webhookUrl",
                format!(
                    "`{}` is not a URL: {e}",
                    orchestrator_core::raw::redact_url(url)
                ),
            )
        })?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let port = parsed.port_or_known_default().unwrap_or(0);
        let cfg = &self.inner.config;
        let allowed = match &cfg.allowed_hosts {
            Some(list) => list.iter().any(|entry| host_matches(entry, &host, port)),
            None => url::Url::parse(cfg.base()).is_ok_and(|n8n| {
                n8n.host_str()
                    .is_some_and(|h| h.eq_ignore_ascii_case(&host))
                    && n8n.port_or_known_default() == Some(port)
            }),
        };
        if !allowed {
            return Err(Error::invalid(
                "n8n.webhookUrl",
                format!(
                    "`{host}:{port}` is not this backend's n8n (`url`) nor in its `allowed_hosts`; list it there (host or host:port) to send webhooks to it"
                ),
            ));
        }
        Ok(())
    }

    /// POST the body, retrying connection errors, 5xx and 429 with exponential backoff.
    pub(crate) async fn deliver(
        &self,
        target: &Target,
        body: Vec<u8>,
        headers: &[(String, String)],
        attempts: u32,
    ) -> Result<(StatusCode, reqwest::header::HeaderMap, String)> {
        let cfg = &self.inner.config;
        let backoff = Backoff::exponential(cfg.backoff_ms.0);
        let mut last: Option<Error> = None;
        for attempt in 1..=attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(backoff.delay_after(attempt - 1)).await;
            }
            let _permit = self
                .inner
                .in_flight
                .acquire()
                .await
                .map_err(|_| err(ErrorKind::Unexpected, "the delivery limiter was closed"))?;
            let mut req = self
                .inner
                .http
                .request(target.method.clone(), &target.url)
                .header("Content-Type", "application/json")
                .body(body.clone());
            for (k, v) in headers {
                req = req.header(k, v);
            }
            if let Some(h) = &cfg.header_auth {
                req = req.header(&h.name, h.value.expose());
            }
            if let Some(b) = &cfg.basic_auth {
                req = req.basic_auth(&b.user, Some(b.password.expose()));
            }
            match req.send().await {
                Err(e) => last = Some(transport(e, "delivering to the n8n webhook")),
                Ok(resp) => {
                    let status = resp.status();
                    let resp_headers = resp.headers().clone();
                    let text =
                        super::api::capped_text(resp, cfg.max_response_bytes, "the n8n webhook")
                            .await?;
                    if status.is_success() {
                        return Ok((status, resp_headers, text));
                    }
                    let msg = message_of(&text);
                    let name = match &target.workflow_id {
                        Some(wf) => wf.clone(),
                        None => orchestrator_core::raw::redact_url(&target.url),
                    };
                    let e = match status {
                        StatusCode::NOT_FOUND if lookup_failed_once(&msg, &target.method) => {
                            // Seen once in CI on n8n 2.40.7: the path is registered for
                            // this very method, but resolving the node's webhook failed;
                            // n8n answers before running anything, so a retry is safe.
                            err(
                                ErrorKind::Unavailable,
                                format!("n8n could not resolve the webhook for `{name}` ({msg})"),
                            )
                        }
                        StatusCode::NOT_FOUND => {
                            return Err(err(
                                ErrorKind::Rejected,
                                format!(
                                    "n8n has no active webhook for `{name}` ({msg}); the workflow must be active"
                                ),
                            ));
                        }
                        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                            return Err(err(
                                ErrorKind::Unauthorized,
                                format!(
                                    "the n8n webhook for `{name}` refused our credentials ({status}); check this backend's `header_auth` / `basic_auth`"
                                ),
                            ));
                        }
                        StatusCode::INTERNAL_SERVER_ERROR if msg == "Error in workflow" => {
                            // The workflow ran and failed: running it again is not a retry
                            // of the delivery.
                            return Err(err(
                                ErrorKind::Rejected,
                                format!("the n8n workflow `{name}` failed: {msg}"),
                            ));
                        }
                        s if s.is_redirection() => {
                            return Err(err(
                                ErrorKind::Rejected,
                                format!(
                                    "the webhook for `{name}` answered {s} (a redirect); redirects are not followed, so credentials and signatures stay with the configured hosts"
                                ),
                            ));
                        }
                        StatusCode::TOO_MANY_REQUESTS => err(
                            ErrorKind::RateLimited,
                            format!("n8n is throttling `{name}`: {msg}"),
                        ),
                        s if s.is_server_error() => err(
                            ErrorKind::Unavailable,
                            format!("n8n answered {s} for `{name}`: {msg}"),
                        ),
                        s => {
                            return Err(err(
                                ErrorKind::Rejected,
                                format!("n8n answered {s} for `{name}`: {msg}"),
                            ));
                        }
                    };
                    last = Some(e);
                }
            }
            tracing::debug!(attempt, "n8n delivery failed, retrying");
        }
        Err(last.unwrap_or_else(|| err(ErrorKind::Unexpected, "no delivery attempt ran")))
    }
}

/// Whether n8n's 404 says the webhook *is* registered for `method` (its message
/// "This webhook is not registered for POST requests. Did you mean to make a POST
/// request?"): n8n found the path but failed to resolve the node's webhook, which a
/// retry fixes, unlike an inactive workflow or a wrong method.
fn lookup_failed_once(msg: &str, method: &Method) -> bool {
    msg.strip_prefix("This webhook is not registered for ")
        .and_then(|rest| rest.split_once(" requests. Did you mean to make a "))
        .and_then(|(asked, rest)| Some((asked, rest.strip_suffix(" request?")?)))
        .is_some_and(|(asked, offered)| {
            asked == method.as_str() && offered.split([',', ' ']).any(|m| m == method.as_str())
        })
}

/// Whether `entry` (`host` or `host:port` of `allowed_hosts`) admits `host`/`port`.
fn host_matches(entry: &str, host: &str, port: u16) -> bool {
    match entry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => {
            h.eq_ignore_ascii_case(host) && p.parse() == Ok(port)
        }
        _ => entry.eq_ignore_ascii_case(host),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_404_naming_our_own_method_is_retried() {
        let post = Method::POST;
        assert!(lookup_failed_once(
            "This webhook is not registered for POST requests. Did you mean to make a POST request?",
            &post
        ));
        assert!(lookup_failed_once(
            "This webhook is not registered for POST requests. Did you mean to make a GET or POST request?",
            &post
        ));
        // A wrong method and an inactive workflow stay refusals.
        assert!(!lookup_failed_once(
            "This webhook is not registered for POST requests. Did you mean to make a GET request?",
            &post
        ));
        assert!(!lookup_failed_once(
            "The requested webhook \"POST x\" is not registered.",
            &post
        ));
        assert!(!lookup_failed_once(
            "This webhook is not registered for GET requests. Did you mean to make a GET request?",
            &post
        ));
    }
}
