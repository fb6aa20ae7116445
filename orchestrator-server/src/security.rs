//! What guards the API: the token, the `Host` and `Origin` checks, body and wait caps.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use orchestrator_core::{Error, Result, Secret};
use subtle::ConstantTimeEq;

use crate::error::Problem;

/// How the API is guarded. [`ServerConfig::default`] is the loopback setup: no token,
/// `Host` limited to the loopback names, no browser origin allowed.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The bearer token every route but the health ones requires (all of them with
    /// [`ServerConfig::public_health`] off). Required to listen beyond loopback.
    pub token: Option<Secret>,
    /// Host names (without port) the `Host` header may carry. Checked only without a token:
    /// a loopback server with no token is what a DNS-rebinding page would reach. This is
    /// not access control — any client can send `Host: localhost` — so without a token
    /// the router must only be reachable from this machine ([`crate::serve`] refuses
    /// other addresses; a router mounted in your own app is bound where you bind it).
    pub allowed_hosts: Vec<String>,
    /// Origins (`scheme://host[:port]`) whose requests are served; a request with any other
    /// `Origin` is refused (`403`). None by default. No CORS headers are sent (yet): a page
    /// on an allowed origin reaches the API through a same-origin proxy, or from a client
    /// that is not a browser.
    pub allowed_origins: Vec<String>,
    /// Whether `/healthz` and `/readyz` answer without the token.
    pub public_health: bool,
    /// The largest request body; a larger one is `413`, not read further.
    pub max_body_bytes: usize,
    /// The longest `wait` a request may ask for.
    pub max_wait: Duration,
    /// The most `wait` requests held at once; more are `429`.
    pub max_waits: usize,
    /// How long a read (`GET`) may take; then `504` (the engine call is dropped). Writes
    /// are never cut mid-way (their engine calls have their own bounds), nor is `wait`
    /// ([`ServerConfig::max_wait`]).
    pub request_timeout: Duration,
    /// The most `list`/`counts` requests served at once (each may page several engines);
    /// more are `429`.
    pub max_monitor_requests: usize,
    /// Leave tasks' `result` and `progress` out of every answer. Payloads are never in one.
    pub hide_results: bool,
    /// What `GET /metrics` serves (Prometheus text from the recorder the application
    /// installed); `None`: the route answers `404`.
    pub metrics: Option<MetricsText>,
    /// Whether `/metrics` answers without the token (default: false).
    pub public_metrics: bool,
}

/// The text `GET /metrics` serves, rendered on each request (for example
/// `PrometheusHandle::render` of `metrics-exporter-prometheus`).
#[derive(Clone)]
pub struct MetricsText(Arc<dyn Fn() -> String + Send + Sync>);

impl MetricsText {
    /// Serve what `render` returns.
    pub fn new(render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        Self(Arc::new(render))
    }

    /// The text now.
    pub fn render(&self) -> String {
        (self.0)()
    }
}

impl std::fmt::Debug for MetricsText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsText")
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            token: None,
            allowed_hosts: ["localhost", "127.0.0.1", "[::1]"]
                .map(str::to_string)
                .to_vec(),
            allowed_origins: Vec::new(),
            public_health: true,
            max_body_bytes: 17 * 1024 * 1024,
            max_wait: Duration::from_secs(60),
            max_waits: 256,
            request_timeout: Duration::from_secs(30),
            max_monitor_requests: 16,
            hide_results: false,
            metrics: None,
            public_metrics: false,
        }
    }
}

impl ServerConfig {
    /// Require `token` (`Authorization: Bearer <token>`).
    #[must_use]
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(Secret::new(token));
        self
    }

    /// Also serve browser requests from `origin` (`https://app.example`).
    #[must_use]
    pub fn allow_origin(mut self, origin: impl Into<String>) -> Self {
        self.allowed_origins.push(origin.into());
        self
    }

    /// Check the settings for listening on `addr`: beyond loopback a token is required;
    /// the caps must be positive ([`ServerConfig::check`]).
    pub fn check_bind(&self, addr: SocketAddr) -> Result<()> {
        if !addr.ip().is_loopback() && self.token.is_none() {
            return Err(Error::config(format!(
                "listening on {addr} (not a loopback address) needs a token: set one (`orchestrator serve --token-file FILE`, serve.token_file, or ServerConfig::token)"
            )));
        }
        self.check()
    }

    /// Every cap and timeout must be greater than 0.
    pub fn check(&self) -> Result<()> {
        let zero = [
            ("max_body_bytes", self.max_body_bytes == 0),
            ("max_wait", self.max_wait.is_zero()),
            ("max_waits", self.max_waits == 0),
            ("request_timeout", self.request_timeout.is_zero()),
            ("max_monitor_requests", self.max_monitor_requests == 0),
        ];
        match zero.iter().find(|(_, z)| *z) {
            Some((name, _)) => Err(Error::config(format!(
                "serve: {name} must be greater than 0"
            ))),
            None => Ok(()),
        }
    }
}

/// The `Host` header's host name (without port).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The guard in front of every route.
pub(crate) async fn guard(
    State(config): State<Arc<ServerConfig>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin
            .to_str()
            .is_ok_and(|o| config.allowed_origins.iter().any(|a| a == o));
        if !allowed {
            return Problem::http(
                StatusCode::FORBIDDEN,
                "requests from this Origin are not served (allow it in the server's configuration)",
            )
            .into_response();
        }
    }
    if config.token.is_none() {
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(host_name);
        if !host.is_some_and(|h| {
            config
                .allowed_hosts
                .iter()
                .any(|a| a.eq_ignore_ascii_case(h))
        }) {
            return Problem::http(
                StatusCode::FORBIDDEN,
                "this Host is not served (allow it in the server's configuration)",
            )
            .into_response();
        }
    }
    // A body announced over the cap is refused before any of it is read; a chunked one is
    // cut at the cap as it is read (`DefaultBodyLimit`).
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > config.max_body_bytes as u64) {
        return Problem::http(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the body is over this server's limit of {} bytes",
                config.max_body_bytes
            ),
        )
        .into_response();
    }
    let path = request.uri().path();
    let health = path == "/healthz" || path == "/readyz";
    let public = (health && config.public_health) || (path == "/metrics" && config.public_metrics);
    if let Some(token) = &config.token
        && !public
    {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or_default();
        let ok: bool = given.as_bytes().ct_eq(token.expose().as_bytes()).into();
        if !ok {
            let mut r = Problem::http(
                StatusCode::UNAUTHORIZED,
                "a valid `Authorization: Bearer <token>` header is required",
            )
            .into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_lose_their_port_and_binds_beyond_loopback_need_a_token() {
        assert_eq!(host_name("localhost:8080"), "localhost");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("127.0.0.1"), "127.0.0.1");
        let c = ServerConfig::default();
        assert!(c.check_bind("127.0.0.1:0".parse().expect("addr")).is_ok());
        let e = c
            .check_bind("0.0.0.0:8080".parse().expect("addr"))
            .expect_err("no token");
        assert!(e.to_string().contains("needs a token"), "{e}");
        assert!(
            c.token("t")
                .check_bind("0.0.0.0:8080".parse().expect("addr"))
                .is_ok()
        );
        assert!(!format!("{:?}", ServerConfig::default().token("s3cret")).contains("s3cret"));
    }
}
