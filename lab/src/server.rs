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
//!
//! For the simulation (no latency, no faults, journaled as the admin's):
//! - `POST /_lab/bucket` `{"name", "versioned"}`;
//! - `POST /_lab/write` `{"bucket", "key", "body", "delete_marker", "version_id", "replica",
//!   "held", "null", "age_seconds"}`: one version or delete marker as S3, replication
//!   (`version_id` kept, `replica`) or a person before versioning (`null`) would leave it;
//! - `POST /_lab/delete` `{"bucket", "key", "version_id"}`: a permanent delete (or a delete
//!   marker without `version_id`);
//! - `POST /_lab/hold` `{"bucket", "key", "version_id", "on"}`: a legal hold;
//! - `POST /_lab/dump` `{"bucket"}`: every entry of a bucket;
//! - `POST /_lab/journal/watch` `{"buckets"}`, `POST /_lab/journal` `{"since"}`: the journal
//!   of changes to watched buckets;
//! - `POST /_lab/faults` (see [`FaultConfig`]);
//! - `POST /_lab/clock` `{"at", "speed", "real_ms", "buckets"}`: time (in `buckets`, or the
//!   whole lab) reads `at` (RFC 3339) at real time `real_ms` (default: now) and runs `speed`
//!   times faster than real time;
//! - `POST /_lab/datasync/task`, `/_lab/datasync/executions`: see [`crate::datasync`].

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

use crate::datasync::DataSync;
use crate::faults::{FaultConfig, Faults};
use crate::s3::LabS3;
use crate::sqs::Sqs;
use crate::stats::Stats;
use crate::store::{Actor, Store, StoreError, Version, Write};

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
    pub datasync: DataSync,
    pub stats: Arc<Stats>,
    pub faults: Arc<Faults>,
    pub latency: Latency,
    s3: S3Service,
}

impl Lab {
    pub fn new(latency: Duration, jitter: Duration, region: &str) -> Arc<Lab> {
        let store = Arc::new(Store::default());
        let stats = Arc::new(Stats::default());
        let faults = Arc::new(Faults::default());
        let mut builder = S3ServiceBuilder::new(LabS3 {
            store: store.clone(),
            stats: stats.clone(),
            faults: faults.clone(),
        });
        // Signatures are checked, as S3 does, with the emulators' usual test credentials.
        builder.set_auth(s3s::auth::SimpleAuth::from_single("testing", "testing"));
        let s3 = builder.build();
        Arc::new(Lab {
            store,
            sqs: Sqs::new(region),
            datasync: DataSync::default(),
            stats,
            faults,
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteInput {
    bucket: String,
    key: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    delete_marker: bool,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    replica: bool,
    #[serde(default)]
    held: bool,
    #[serde(default)]
    null: bool,
    #[serde(default)]
    age_seconds: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryInput {
    bucket: String,
    key: String,
    #[serde(default)]
    version_id: Option<String>,
    #[serde(default)]
    on: bool,
}

fn version_json(key: &str, v: &Version) -> Value {
    json!({
        "key": key,
        "version_id": v.id,
        "delete_marker": v.delete_marker,
        "replica": v.replica,
        "held": v.held,
        "last_modified": v.modified.unix_timestamp(),
    })
}

fn store_result(r: Result<Value, StoreError>) -> Response<Body> {
    match r {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": format!("{e:?}")})),
    }
}

fn parsed<T: for<'de> Deserialize<'de>>(
    input: Value,
    f: impl FnOnce(T) -> Response<Body>,
) -> Response<Body> {
    match serde_json::from_value::<T>(input) {
        Ok(t) => f(t),
        Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e.to_string()})),
    }
}

/// The simulation's endpoints.
fn admin_world(lab: &Lab, path: &str, input: Value) -> Option<Response<Body>> {
    let store = &lab.store;
    Some(match path {
        "/_lab/bucket" => {
            let name = input["name"].as_str().unwrap_or_default().to_string();
            let versioned = input["versioned"].as_bool().unwrap_or(true);
            store_result(store.create_bucket(&name).and_then(|()| {
                if versioned {
                    store.set_versioning(&name, "Enabled")?;
                }
                Ok(json!({}))
            }))
        }
        "/_lab/write" => parsed(input, |w: WriteInput| {
            let write = Write {
                body: Bytes::from(w.body.into_bytes()),
                delete_marker: w.delete_marker,
                version_id: w.version_id,
                replica: w.replica,
                held: w.held,
                null: w.null,
                age: time::Duration::seconds(w.age_seconds),
                ..Write::default()
            };
            store_result(
                store
                    .write(Actor::Admin, &w.bucket, &w.key, write)
                    .map(|v| version_json(&w.key, &v)),
            )
        }),
        "/_lab/delete" => parsed(input, |e: EntryInput| {
            store_result(
                store
                    .delete_as(Actor::Admin, &e.bucket, &e.key, e.version_id.as_deref())
                    .map(|d| json!({"delete_marker_version_id": d.delete_marker_version_id})),
            )
        }),
        "/_lab/hold" => parsed(input, |e: EntryInput| {
            let id = e.version_id.unwrap_or_default();
            store_result(
                store
                    .hold(Actor::Admin, &e.bucket, &e.key, &id, e.on)
                    .map(|()| json!({})),
            )
        }),
        "/_lab/dump" => {
            let bucket = input["bucket"].as_str().unwrap_or_default();
            store_result(
                store
                    .dump(bucket)
                    .map(|all| Value::Array(all.iter().map(|(k, v)| version_json(k, v)).collect())),
            )
        }
        "/_lab/journal/watch" => {
            let buckets: Vec<String> =
                serde_json::from_value(input["buckets"].clone()).unwrap_or_default();
            store.watch(&buckets);
            json_response(StatusCode::OK, &json!({}))
        }
        "/_lab/journal" => {
            let since = input["since"].as_u64().unwrap_or(0);
            json_response(StatusCode::OK, &json!(store.journal(since)))
        }
        p if p.starts_with("/_lab/datasync/") => match lab.datasync.admin(p, input, store) {
            Ok(v) => json_response(StatusCode::OK, &v),
            Err(e) => json_response(StatusCode::BAD_REQUEST, &json!({"error": e})),
        },
        "/_lab/faults" => parsed(input, |f: FaultConfig| {
            lab.faults.set(f);
            json_response(StatusCode::OK, &json!({}))
        }),
        "/_lab/clock" => {
            let at = input["at"].as_str().and_then(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            });
            let real = input["real_ms"]
                .as_u64()
                .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms));
            let buckets: Vec<String> =
                serde_json::from_value(input["buckets"].clone()).unwrap_or_default();
            match at {
                Some(at) => {
                    store.set_clock(at, input["speed"].as_f64().unwrap_or(1.0), real, &buckets);
                    json_response(StatusCode::OK, &json!({}))
                }
                None => json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"error": "`at` must be an RFC 3339 time"}),
                ),
            }
        }
        _ => return None,
    })
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
        ("POST", path) => admin_world(lab, path, input).unwrap_or_else(|| {
            json_response(
                StatusCode::NOT_FOUND,
                &json!({"error": "no such lab endpoint"}),
            )
        }),
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
    // Half the latency on the way in, half on the way out: the request takes effect in the
    // middle of its round trip, as it does at a distant service.
    let latency = lab.latency.next();
    let inbound = latency / 2;
    tokio::time::sleep(inbound).await;
    let response = serve_one(&lab, req).await;
    tokio::time::sleep(latency - inbound).await;
    response
}

/// A DataSync call (`X-Amz-Target: FmrsService.<Op>`).
async fn serve_datasync(lab: &Lab, op: &str, req: Request<Incoming>) -> Response<Body> {
    let input = match read_body(req).await {
        Ok(v) => v,
        Err(e) => return json_response(StatusCode::BAD_REQUEST, &json!({"message": e})),
    };
    let answer = lab.datasync.call(op, input, &lab.store, &lab.stats);
    if let Some(d) = answer.delay {
        tokio::time::sleep(d).await;
    }
    let mut r = match answer.result {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => json_response(
            StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST),
            &e.body(),
        ),
    };
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

async fn serve_one(lab: &Lab, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let datasync = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.strip_prefix("FmrsService."))
        .map(str::to_string);
    if let Some(op) = datasync {
        return Ok(serve_datasync(lab, &op, req).await);
    }
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
