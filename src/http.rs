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
pub fn router(health: Health, metrics: Metrics) -> Router {
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
pub async fn serve(
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
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": s.health.uptime_seconds(),
        "tasks": s.health.snapshot(),
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[tokio::test]
    async fn readiness_follows_tasks() {
        let health = Health::new();
        let metrics = Metrics::new().unwrap();
        let purge = health.register("purge", "waiting for first receive");
        let sync = health.register("sync", "scheduler starting");
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
