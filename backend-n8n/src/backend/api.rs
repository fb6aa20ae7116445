//! n8n's REST API: the API key, webhook resolution from a workflow id, executions, and
//! stopping them (public endpoint, or the owner-login fallback on n8n < 2.10).

use super::*;

pub(crate) fn message_of(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| body.chars().take(300).collect())
}

/// Read a response body up to `cap` bytes; a longer one is an error, read no further.
pub(crate) async fn capped_text(
    mut resp: reqwest::Response,
    cap: usize,
    what: &str,
) -> Result<String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(e, what))? {
        if bytes.len() + chunk.len() > cap {
            return Err(err(
                ErrorKind::Rejected,
                format!(
                    "{what} answered more than {cap} bytes (this backend's `max_response_bytes`); the rest was not read"
                ),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The most workflows whose webhook [`N8nBackend::resolve`] keeps.
pub(crate) const MAX_CACHED_TARGETS: usize = 1024;

impl N8nBackend {
    pub(crate) fn api_key(&self) -> Result<&str> {
        self.inner
            .config
            .api_key
            .as_ref()
            .map(|k| k.expose())
            .ok_or_else(|| {
                err(
                    ErrorKind::InvalidConfig,
                    "this needs n8n's public API: set this backend's `api_key`",
                )
            })
    }

    /// `<n8n>/<segments…>[?query]`, each segment percent-encoded (`/`, `?`, `#`, `%`), and
    /// empty, `.` and `..` segments refused: an id is never read as path syntax, whatever
    /// passed validation.
    pub(crate) fn endpoint(&self, segments: &[&str], query: Option<&str>) -> Result<url::Url> {
        if let Some(bad) = segments
            .iter()
            .find(|s| s.is_empty() || **s == "." || **s == "..")
        {
            return Err(Error::invalid(
                "id",
                format!("`{bad}` cannot be part of an n8n API path"),
            ));
        }
        let mut url = url::Url::parse(self.inner.config.base()).map_err(|e| {
            err(
                ErrorKind::InvalidConfig,
                format!("this backend's `url` is not a URL: {e}"),
            )
        })?;
        url.path_segments_mut()
            .map_err(|()| {
                err(
                    ErrorKind::InvalidConfig,
                    "this backend's `url` cannot have a path",
                )
            })?
            .pop_if_empty()
            .extend(segments);
        url.set_query(query);
        Ok(url)
    }

    /// Call n8n's public API at `/api/v1/<segments…>[?query]`.
    pub(crate) async fn api(
        &self,
        method: Method,
        segments: &[&str],
        query: Option<&str>,
    ) -> Result<(StatusCode, String)> {
        let mut path = vec!["api", "v1"];
        path.extend_from_slice(segments);
        let url = self.endpoint(&path, query)?;
        let resp = self
            .inner
            .http
            .request(method, url)
            .header("X-N8N-API-KEY", self.api_key()?)
            .send()
            .await
            .map_err(|e| transport(e, "n8n API"))?;
        let status = resp.status();
        let body = capped_text(resp, self.inner.config.max_response_bytes, "the n8n API").await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(err(
                ErrorKind::Unauthorized,
                "n8n refused the API key (this backend's `api_key`); create a key with the needed scopes",
            ));
        }
        Ok((status, body))
    }

    /// The webhook of workflow `workflow_id`, from n8n's API (cached, at most
    /// [`MAX_CACHED_TARGETS`] workflows; concurrent callers share one lookup, and its
    /// failure).
    pub(crate) async fn resolve(&self, workflow_id: &str) -> Result<Target> {
        let cell = {
            let mut targets = lock(&self.inner.targets);
            if targets.len() >= MAX_CACHED_TARGETS && !targets.contains_key(workflow_id) {
                // Workflow ids come from callers: keep the cache bounded. Failed lookups go
                // first; if resolved ones fill it, start over (each is one API call away).
                targets.retain(|_, c| c.get().is_some() || Arc::strong_count(c) > 1);
                if targets.len() >= MAX_CACHED_TARGETS {
                    targets.clear();
                }
            }
            targets.entry(workflow_id.to_string()).or_default().clone()
        };
        cell.get_or_try_init(|| self.lookup(workflow_id))
            .await
            .cloned()
    }

    pub(crate) async fn lookup(&self, workflow_id: &str) -> Result<Target> {
        let (status, body) = self
            .api(Method::GET, &["workflows", workflow_id], None)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(err(
                ErrorKind::NotFound,
                format!("n8n workflow `{workflow_id}` does not exist"),
            ));
        }
        if !status.is_success() {
            return Err(err(
                ErrorKind::Unexpected,
                format!(
                    "reading n8n workflow `{workflow_id}`: {status} {}",
                    message_of(&body)
                ),
            ));
        }
        let wf: Value = serde_json::from_str(&body).map_err(|e| {
            err(
                ErrorKind::Unexpected,
                format!("n8n answered with invalid JSON: {e}"),
            )
        })?;
        if wf.get("active").and_then(Value::as_bool) != Some(true) {
            return Err(err(
                ErrorKind::Rejected,
                format!(
                    "n8n workflow `{workflow_id}` is not active: activate it so its production webhook exists"
                ),
            ));
        }
        let node = wf
            .get("nodes")
            .and_then(Value::as_array)
            .and_then(|nodes| {
                nodes.iter().find(|n| {
                    n.get("type").and_then(Value::as_str) == Some("n8n-nodes-base.webhook")
                })
            })
            .ok_or_else(|| {
                err(
                    ErrorKind::Rejected,
                    format!(
                        "n8n workflow `{workflow_id}` has no Webhook trigger node to deliver to"
                    ),
                )
            })?;
        let path = node
            .pointer("/parameters/path")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if path.is_empty() {
            return Err(err(
                ErrorKind::Rejected,
                format!("the Webhook node of n8n workflow `{workflow_id}` has no path"),
            ));
        }
        let method = node
            .pointer("/parameters/httpMethod")
            .and_then(Value::as_str)
            .unwrap_or("GET")
            .parse::<Method>()
            .unwrap_or(Method::GET);
        Ok(Target {
            url: format!(
                "{}/webhook/{}",
                self.inner.config.base(),
                path.trim_start_matches('/')
            ),
            method,
            workflow_id: Some(workflow_id.to_string()),
        })
    }

    pub(crate) async fn owner_cookie(&self, refresh: bool) -> Result<String> {
        let mut guard = self.inner.owner_cookie.lock().await;
        if let (Some(c), false) = (guard.as_ref(), refresh) {
            return Ok(c.clone());
        }
        let cfg = &self.inner.config;
        let (Some(email), Some(password)) = (&cfg.owner_email, &cfg.owner_password) else {
            return Err(Error::Unsupported {
                backend: NAME.into(),
                operation: "stopping executions on this n8n version (it has no public stop endpoint; set this backend's `owner_email` and `owner_password` to use the internal one)".into(),
            });
        };
        let resp = self
            .inner
            .http
            .post(self.endpoint(&["rest", "login"], None)?)
            .json(&serde_json::json!({"emailOrLdapLoginId": email, "password": password.expose()}))
            .send()
            .await
            .map_err(|e| transport(e, "n8n login"))?;
        if !resp.status().is_success() {
            return Err(err(
                ErrorKind::Unauthorized,
                format!("n8n refused the owner login ({})", resp.status()),
            ));
        }
        let cookie = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| {
                c.split(';')
                    .next()
                    .filter(|kv| kv.starts_with("n8n-auth="))
                    .map(str::to_string)
            })
            .ok_or_else(|| {
                err(
                    ErrorKind::Unexpected,
                    "n8n login answered without an n8n-auth cookie",
                )
            })?;
        *guard = Some(cookie.clone());
        Ok(cookie)
    }

    /// Stop through the public API (n8n ≥ 2.10), falling back to the internal one.
    pub(crate) async fn stop(&self, id: &TaskId, exec: &str) -> Result<CancelOutcome> {
        let (status, body) = self
            .api(Method::POST, &["executions", exec, "stop"], None)
            .await?;
        match status {
            s if s.is_success() => return Ok(CancelOutcome::Cancelled),
            StatusCode::CONFLICT => return Ok(CancelOutcome::NotCancellableFinished),
            StatusCode::NOT_FOUND if message_of(&body) == "Failed to find execution to stop" => {
                return Ok(CancelOutcome::NotFound);
            }
            StatusCode::NOT_FOUND => {} // no public stop endpoint (n8n < 2.10)
            s => {
                return Err(err(
                    ErrorKind::Unexpected,
                    format!("stopping {id}: n8n answered {s} {}", message_of(&body)),
                ));
            }
        }
        for refresh in [false, true] {
            let cookie = self.owner_cookie(refresh).await?;
            let resp = self
                .inner
                .http
                .post(self.endpoint(&["rest", "executions", exec, "stop"], None)?)
                .header("Cookie", cookie)
                .send()
                .await
                .map_err(|e| transport(e, "n8n internal stop"))?;
            let status = resp.status();
            let cap = self.inner.config.max_response_bytes;
            let text = capped_text(resp, cap, "n8n's stop endpoint").await?;
            if status.is_success() {
                return Ok(CancelOutcome::Cancelled);
            }
            if status == StatusCode::UNAUTHORIZED {
                continue; // session expired: log in again once
            }
            let msg = message_of(&text);
            if msg.contains("Only running or waiting") {
                return Ok(CancelOutcome::NotCancellableFinished);
            }
            if msg.contains("Failed to find") {
                return Ok(CancelOutcome::NotFound);
            }
            return Err(err(
                ErrorKind::Unexpected,
                format!("stopping {id}: n8n answered {status} {msg}"),
            ));
        }
        Err(err(
            ErrorKind::Unauthorized,
            "n8n kept refusing the owner session",
        ))
    }

    pub(crate) async fn execution(&self, id: &TaskId, exec: &str) -> Result<Value> {
        let (status, body) = self
            .api(Method::GET, &["executions", exec], Some("includeData=true"))
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Err(Error::not_found(id));
        }
        if !status.is_success() {
            return Err(err(
                ErrorKind::Unexpected,
                format!("reading execution {exec}: {status} {}", message_of(&body)),
            ));
        }
        serde_json::from_str(&body).map_err(|e| {
            err(
                ErrorKind::Unexpected,
                format!("n8n answered with invalid JSON: {e}"),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::{N8nBackend, N8nConfig};

    #[tokio::test]
    async fn the_webhook_cache_stays_bounded() {
        // Nothing listens on port 1: every lookup fails at once.
        let b =
            N8nBackend::new(N8nConfig::new("http://127.0.0.1:1").api_key("k")).expect("backend");
        for i in 0..(super::MAX_CACHED_TARGETS * 2 + 10) {
            let e = b.resolve(&format!("wf{i}")).await.expect_err("refused");
            assert_eq!(e.kind(), orchestrator_core::ErrorKind::Unavailable, "{e}");
        }
        let cached = super::lock(&b.inner.targets).len();
        assert!(cached <= super::MAX_CACHED_TARGETS, "{cached} cached");
    }

    #[test]
    fn ids_are_one_percent_encoded_path_segment() {
        let b = N8nBackend::new(N8nConfig::new("http://127.0.0.1:5678/")).expect("backend");
        for (id, path) in [
            ("AbC_1-2", "/api/v1/workflows/AbC_1-2"),
            (
                "../../rest/login",
                "/api/v1/workflows/..%2F..%2Frest%2Flogin",
            ),
            ("x?y=1#z", "/api/v1/workflows/x%3Fy=1%23z"),
        ] {
            let url = b
                .endpoint(&["api", "v1", "workflows", id], None)
                .expect("url");
            assert_eq!(url.path(), path, "{id}");
            assert_eq!(url.query(), None, "{id}");
        }
        for bad in ["..", ".", ""] {
            let e = b
                .endpoint(&["api", "v1", "workflows", bad], None)
                .expect_err(bad);
            assert_eq!(
                e.kind(),
                orchestrator_core::ErrorKind::InvalidInput,
                "{bad}"
            );
        }
        let url = b
            .endpoint(&["api", "v1", "executions", "7"], Some("includeData=true"))
            .expect("url");
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:5678/api/v1/executions/7?includeData=true"
        );
    }
}
