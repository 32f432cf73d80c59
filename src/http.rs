//! The operations endpoint: `/metrics`, `/livez`, `/healthz`, `/readyz`, `/status`.
//!
//! None of these handlers calls AWS: liveness must not fail because a dependency is slow, and
//! readiness reflects what the tasks last proved.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::health::Health;
use crate::metrics::Metrics;

#[derive(Clone)]
struct AppState {
    health: Health,
    metrics: Metrics,
}

/// The router, separate from serving so tests can drive it without a socket.
pub(crate) fn router(health: Health, metrics: Metrics) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/livez", get(live))
        .route("/healthz", get(live))
        .route("/readyz", get(ready))
        .route("/status", get(status))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .with_state(AppState { health, metrics })
}

/// Serves until `stop` is cancelled, then drains open requests.
pub(crate) async fn serve(
    listener: TcpListener,
    health: Health,
    metrics: Metrics,
    stop: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(listener, router(health, metrics))
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
}

async fn metrics_handler(State(s): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
    )
        .into_response()
}

async fn live() -> &'static str {
    "ok\n"
}

async fn ready(State(s): State<AppState>) -> Response {
    let not_ready = s.health.not_ready();
    if not_ready.is_empty() {
        (StatusCode::OK, axum::Json(json!({"ready": true}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false, "not_ready": not_ready})),
        )
            .into_response()
    }
}

async fn status(State(s): State<AppState>) -> Response {
    axum::Json(json!({
        "version": crate::build_info::VERSION,
        "build": crate::build_info::BUILD,
        "uptime_seconds": s.health.uptime_seconds(),
        "tasks": s.health.snapshot(),
        "preflight": s.health.checks(),
    }))
    .into_response()
}

/// The address to reach a server bound to `addr` from the same host.
pub(crate) fn loopback_for(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        IpAddr::V6(ip) if ip.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}

/// A minimal blocking `GET path` returning the status code: health checks run where the image
/// has no HTTP client and need no async runtime.
pub fn probe(addr: std::net::SocketAddr, path: &str, timeout: Duration) -> std::io::Result<u16> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut head = [0u8; 64];
    let n = stream.read(&mut head)?;
    let line = String::from_utf8_lossy(&head[..n]);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::Task;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn get(router: Router, path: &str) -> (StatusCode, String) {
        let resp = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn probe_reads_the_status_code() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = tokio::spawn(serve(
            listener,
            Health::default(),
            Metrics::new().unwrap(),
            stop.clone(),
        ));
        let code =
            tokio::task::spawn_blocking(move || probe(addr, "/livez", Duration::from_secs(2)))
                .await
                .unwrap()
                .unwrap();
        assert_eq!(code, 200);
        stop.cancel();
        server.await.unwrap().unwrap();
        let closed = probe(addr, "/livez", Duration::from_millis(500));
        assert!(closed.is_err(), "nothing listens any more");
        assert_eq!(
            loopback_for("0.0.0.0:9090".parse().unwrap()),
            "127.0.0.1:9090".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn readiness_follows_tasks() {
        let health = Health::default();
        let metrics = Metrics::new().unwrap();
        let purge = health.register(Task::Purge, "waiting for first receive");
        let sync = health.register(Task::Sync, "scheduler starting");
        let r = router(health.clone(), metrics);
        assert_eq!(get(r.clone(), "/livez").await.0, StatusCode::OK);
        let (code, body) = get(r.clone(), "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("waiting for first receive"), "{body}");
        purge.set_ready();
        let (code, body) = get(r.clone(), "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("sync") && !body.contains("purge"), "{body}");
        sync.set_ready();
        assert_eq!(get(r.clone(), "/readyz").await.0, StatusCode::OK);
        sync.set_detail("next_run", json!("2026-01-01T00:00:00Z"));
        let (code, body) = get(r, "/status").await;
        assert_eq!(code, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            v["tasks"]["sync"]["details"]["next_run"],
            "2026-01-01T00:00:00Z"
        );
        assert!(v["version"].is_string());
    }
}
