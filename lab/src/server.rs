//! The HTTP front: every request first waits the injected latency, then goes to SQS (an
//! `X-Amz-Target: AmazonSQS.*` header), to the admin endpoints (`/_lab/...`, no latency), or
//! to S3 through `s3s`.
//!
//! Admin endpoints:
//! - `GET /_lab/stats`: requests per operation; `POST /_lab/stats/reset`;
//! - `POST /_lab/latency` `{"latency_ms": 20, "jitter_ms": 5}`: change the injected latency;
//! - `POST /_lab/seed` `{"bucket", "prefix", "start", "count", "width", "suffix", "versions",
//!   "delete_marker", "age_seconds"}`: keys `prefix` + zero-padded index + `suffix` with
//!   versions and a delete marker, without going through the protocol.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use s3s::Body;
use s3s::service::{S3Service, S3ServiceBuilder};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::s3::LabS3;
use crate::sqs::Sqs;
use crate::stats::Stats;
use crate::store::Store;

/// The injected latency: uniform in `latency ± jitter`.
#[derive(Debug, Default)]
pub struct Latency {
    micros: AtomicU64,
    jitter_micros: AtomicU64,
    rng: AtomicU64,
}

impl Latency {
    pub fn new(latency: Duration, jitter: Duration) -> Self {
        let l = Latency::default();
        l.set(latency, jitter);
        l.rng.store(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        l
    }

    pub fn set(&self, latency: Duration, jitter: Duration) {
        self.micros
            .store(latency.as_micros() as u64, Ordering::Relaxed);
        self.jitter_micros
            .store(jitter.min(latency).as_micros() as u64, Ordering::Relaxed);
    }

    /// The next delay (xorshift: cheap, and reproducible enough for a benchmark).
    pub fn next(&self) -> Duration {
        let base = self.micros.load(Ordering::Relaxed);
        let jitter = self.jitter_micros.load(Ordering::Relaxed);
        if jitter == 0 {
            return Duration::from_micros(base);
        }
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        let offset = x % (2 * jitter + 1);
        Duration::from_micros(base - jitter + offset)
    }
}

pub struct Lab {
    pub store: Arc<Store>,
    pub sqs: Sqs,
    pub stats: Arc<Stats>,
    pub latency: Latency,
    s3: S3Service,
}

impl Lab {
    pub fn new(latency: Duration, jitter: Duration, region: &str) -> Arc<Lab> {
        let store = Arc::new(Store::default());
        let stats = Arc::new(Stats::default());
        let mut builder = S3ServiceBuilder::new(LabS3 {
            store: store.clone(),
            stats: stats.clone(),
        });
        // Signatures are checked, as S3 does, with the emulators' usual test credentials.
        builder.set_auth(s3s::auth::SimpleAuth::from_single("testing", "testing"));
        let s3 = builder.build();
        Arc::new(Lab {
            store,
            sqs: Sqs::new(region),
            stats,
            latency: Latency::new(latency, jitter),
            s3,
        })
    }
}

fn json_response(status: StatusCode, v: &Value) -> Response<Body> {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}

async fn read_body(req: Request<Incoming>) -> Result<Value, String> {
    let mut body = Body::from(req.into_body());
    let bytes: Bytes = body
        .store_all_limited(16 << 20)
        .await
        .map_err(|e| e.to_string())?;
    if bytes.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&bytes).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct Seed {
    bucket: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    start: u64,
    count: u64,
    #[serde(default = "default_width")]
    width: usize,
    #[serde(default)]
    suffix: String,
    #[serde(default = "one")]
    versions: usize,
    #[serde(default)]
    delete_marker: bool,
    #[serde(default)]
    age_seconds: i64,
}

fn default_width() -> usize {
    6
}

fn one() -> usize {
    1
}

async fn admin(lab: &Lab, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let input = match read_body(req).await {
        Ok(v) => v,
        Err(e) => return json_response(StatusCode::BAD_REQUEST, &json!({"error": e})),
    };
    match (method.as_str(), path.as_str()) {
        ("GET", "/_lab/stats") => json_response(StatusCode::OK, &json!(lab.stats.snapshot())),
        ("POST", "/_lab/stats/reset") => {
            lab.stats.reset();
            json_response(StatusCode::OK, &json!({}))
        }
        ("POST", "/_lab/latency") => {
            let ms = |k: &str| Duration::from_millis(input[k].as_u64().unwrap_or(0));
            lab.latency.set(ms("latency_ms"), ms("jitter_ms"));
            json_response(StatusCode::OK, &json!({}))
        }
        ("POST", "/_lab/seed") => match serde_json::from_value::<Seed>(input) {
            Ok(s) => {
                let entries = lab.store.seed(
                    &s.bucket,
                    &s.prefix,
                    s.start,
                    s.count,
                    s.width,
                    &s.suffix,
                    s.versions,
                    s.delete_marker,
                    s.age_seconds,
                );
                json_response(StatusCode::OK, &json!({"entries": entries}))
            }
            Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()})),
        },
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": "no such lab endpoint"}),
        ),
    }
}

async fn handle(lab: Arc<Lab>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    if req.uri().path().starts_with("/_lab/") {
        return Ok(admin(&lab, req).await);
    }
    tokio::time::sleep(lab.latency.next()).await;
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("AmazonSQS."))
        .map(str::to_string);
    if let Some(op) = target {
        let base = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("http://{h}"))
            .unwrap_or_default();
        let input = match read_body(req).await {
            Ok(v) => v,
            Err(e) => {
                return Ok(json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"message": e}),
                ));
            }
        };
        return Ok(match lab.sqs.call(&op, input, &base, &lab.stats).await {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => {
                let mut r = json_response(
                    StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
                    &e.body(),
                );
                if let Ok(v) = http::HeaderValue::from_str(&format!("{};Sender", e.query_code)) {
                    r.headers_mut().insert("x-amzn-query-error", v);
                }
                r
            }
        });
    }
    let req = req.map(Body::from);
    Ok(match lab.s3.call(req).await {
        Ok(r) => r,
        Err(e) => {
            let mut r = Response::new(Body::from(format!("{e:?}")));
            *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    })
}

/// Serves `lab` on `listener` until the process ends.
pub async fn serve(lab: Arc<Lab>, listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _peer): (_, SocketAddr) = listener.accept().await?;
        let lab = lab.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| handle(lab.clone(), req));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
