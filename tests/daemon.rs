//! The real binary: configuration errors and exit codes, redaction, readiness, metrics,
//! graceful SIGTERM, crash (SIGKILL) recovery, and the manual `purge` subcommand.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_s3-reconciler");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon process that is killed if the test fails before stopping it.
struct Proc(Child);

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(config: &std::path::Path, log: &std::path::Path) -> Proc {
    Proc(
        Command::new(BIN)
            .arg("--config")
            .arg(config)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap(),
    )
}

fn signal(child: &Child, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(child.id().to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} failed");
}

#[test]
fn check_config_names_every_problem_and_exits_64() {
    let f = config_file(
        r#"
[source]
bucket = "Bad_Bucket"
region = "ap-northeast-2"
surprise = true
[target]
bucket = "Bad_Bucket"
[http]
listen = "nowhere"
[purge]
enabled = true
queue_url = "not a url"
concurrency = 0
[sync]
enabled = true
task_arn = "arn:aws:datasync:x"
schedule = "every day"
timezone = "Mars/Olympus"
partition = "year={yyyy}/"
"#,
    );
    let out = Command::new(BIN)
        .arg("--config")
        .arg(f.path())
        .arg("check-config")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "source.surprise: unknown key",
        "source.bucket:",
        "target.bucket: must differ from source.bucket",
        "target.region: required",
        "http.listen:",
        "purge.queue_url:",
        "purge.concurrency:",
        "sync.task_arn:",
        "sync.schedule:",
        "sync.timezone:",
        "sync.partition:",
        "state.bucket: required",
    ] {
        assert!(err.contains(key), "missing `{key}` in:\n{err}");
    }
    // `run` refuses the same file with the same code.
    let out = Command::new(BIN)
        .args(["--config"])
        .arg(f.path())
        .arg("run")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn check_config_prints_effective_config_with_secrets_redacted() {
    let f = config_file(&daemon_toml(
        "src-bucket",
        "tgt-bucket",
        "https://sqs.ap-northeast-2.amazonaws.com/111111111111/q",
        9090,
        "",
    ));
    let out = Command::new(BIN)
        .arg("--config")
        .arg(f.path())
        .arg("check-config")
        .env(
            "S3R__TARGET__ROLE_ARN",
            "arn:aws:iam::222222222222:role/purger",
        )
        .env("S3R__TARGET__EXTERNAL_ID", "very-secret-external-id")
        .env("S3R__PURGE__CONCURRENCY", "7")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("very-secret-external-id"), "{text}");
    assert!(text.contains("external_id = \"<redacted>\""), "{text}");
    assert!(text.contains("role_arn = \"arn:aws:iam::222222222222:role/purger\""));
    assert!(
        text.contains("concurrency = 7"),
        "env overrides the file:\n{text}"
    );
    // The output is itself a valid configuration file (secrets aside).
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    assert_eq!(parsed["purge"]["concurrency"].as_integer(), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_metrics_and_graceful_sigterm() {
    let s3 = s3().await;
    let sqs = sqs().await;
    let (src, tgt) = (unique("src"), unique("tgt"));
    create_bucket(&s3, &src, true).await;
    create_bucket(&s3, &tgt, true).await;
    // The queue does not exist yet: the consumer cannot receive, so the process is not ready.
    let queue_name = unique("late");
    let queue_url = format!("{}/123456789012/{queue_name}", endpoint());
    let port = free_port();
    let cfg = config_file(&daemon_toml(&src, &tgt, &queue_url, port, ""));
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = spawn(cfg.path(), log.path());

    // 503 at once ("waiting for the first successful receive"), then, once a receive has
    // failed, a reason naming the queue.
    eventually(
        Duration::from_secs(30),
        "/readyz 503 naming the queue",
        || async {
            matches!(http_get(port, "/readyz").await,
                 Some((503, body)) if body.contains("purge") && body.contains(&queue_name))
        },
    )
    .await;
    assert_eq!(http_get(port, "/livez").await.unwrap().0, 200);
    assert_eq!(http_get(port, "/healthz").await.unwrap().0, 200);

    sqs.create_queue()
        .queue_name(&queue_name)
        .send()
        .await
        .unwrap();
    eventually(Duration::from_secs(30), "/readyz answers 200", || async {
        matches!(http_get(port, "/readyz").await, Some((200, _)))
    })
    .await;

    let (code, metrics) = http_get(port, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    let lines = metrics.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("valid Prometheus text");
    let names: Vec<&str> = scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    assert!(names.contains(&"s3_reconciler_build_info"), "{names:?}");
    // The standard process families keep their standard, unprefixed names; everything else
    // is the daemon's own.
    for standard in [
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_cpu_seconds_total",
    ] {
        assert!(names.contains(&standard), "{standard}: {names:?}");
    }
    assert!(
        names
            .iter()
            .all(|n| n.starts_with("s3_reconciler_") || n.starts_with("process_")),
        "{names:?}"
    );
    let build = scrape
        .samples
        .iter()
        .find(|s| s.metric == "s3_reconciler_build_info")
        .unwrap();
    assert_eq!(
        build.labels.get("revision"),
        Some(s3_reconciler::build_info::REVISION)
    );
    assert_eq!(
        build.labels.get("version"),
        Some(s3_reconciler::build_info::VERSION)
    );
    let (code, status) = http_get(port, "/status").await.unwrap();
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["tasks"]["purge"]["ready"], true);
    assert_eq!(
        status["build"]["revision"],
        s3_reconciler::build_info::REVISION
    );
    assert_eq!(
        status["build"]["build_date"],
        s3_reconciler::build_info::BUILD_DATE
    );

    let healthcheck = || {
        Command::new(BIN)
            .arg("--config")
            .arg(cfg.path())
            .args(["healthcheck", "--timeout", "2s"])
            .output()
            .unwrap()
    };
    assert_eq!(
        healthcheck().status.code(),
        Some(0),
        "healthcheck while running"
    );

    let started = Instant::now();
    signal(&child, "TERM");
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(6),
            "not stopped within the 5s grace"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0), "graceful stop exits 0");
    let down = healthcheck();
    assert_eq!(
        down.status.code(),
        Some(1),
        "healthcheck with nothing listening"
    );
    assert!(String::from_utf8_lossy(&down.stderr).contains("/livez"));
    let logs = std::fs::read_to_string(log.path()).unwrap();
    assert!(logs.contains("shutdown requested"), "{logs}");
    assert!(logs.contains("\"stopped\""), "{logs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_batch_then_restart_converges() {
    let s3 = s3().await;
    let sqs = sqs().await;
    let (src, tgt) = (unique("src"), unique("tgt"));
    create_bucket(&s3, &src, true).await;
    create_bucket(&s3, &tgt, true).await;
    let (queue, _dlq) = queue_with_dlq(&sqs, 5).await;
    let gone: Vec<String> = (0..120).map(|i| format!("data/k{i:03}.json")).collect();
    let present: Vec<String> = (0..10).map(|i| format!("data/live{i}.json")).collect();
    for k in &gone {
        put(&s3, &tgt, k, "v1").await;
        put(&s3, &tgt, k, "v2").await;
        delete_marker(&s3, &tgt, k).await;
        put(&s3, &tgt, &format!("{k}.bak"), "look-alike").await;
    }
    for k in &present {
        put(&s3, &tgt, k, "copy").await;
        put(&s3, &src, k, "still in source").await;
    }
    past_race_guard(&s3, &tgt).await;
    for k in gone.iter().chain(&present) {
        send(
            &sqs,
            &queue,
            &s3_event(&src, k, "ObjectRemoved:Delete", "v"),
        )
        .await;
    }
    let port = free_port();
    let cfg = config_file(&daemon_toml(&src, &tgt, &queue, port, "concurrency = 4"));
    let log1 = tempfile::NamedTempFile::new().unwrap();
    let mut child = spawn(cfg.path(), log1.path());
    eventually(Duration::from_secs(30), "some purges logged", || async {
        std::fs::read_to_string(log1.path())
            .unwrap_or_default()
            .matches("deleted target entry")
            .count()
            >= 10
    })
    .await;
    signal(&child, "KILL");
    child.wait().unwrap();
    let done_before = std::fs::read_to_string(log1.path())
        .unwrap()
        .matches("deleted target entry")
        .count();
    assert!(
        done_before < gone.len() * 3,
        "killed mid-way, not after the end"
    );

    let log2 = tempfile::NamedTempFile::new().unwrap();
    let mut child = spawn(cfg.path(), log2.path());
    eventually(
        Duration::from_secs(90),
        "queue drained after restart",
        || async { queue_depth(&sqs, &queue).await == 0 },
    )
    .await;
    signal(&child, "TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    for k in &gone {
        assert!(entries(&s3, &tgt, k).await.is_empty(), "{k} not purged");
        assert_eq!(
            entries(&s3, &tgt, &format!("{k}.bak")).await.len(),
            1,
            "{k}.bak lost"
        );
    }
    for k in &present {
        assert_eq!(entries(&s3, &tgt, k).await.len(), 1, "{k} wrongly deleted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manual_purge_prints_one_json_line_per_key() {
    let s3 = s3().await;
    let (src, tgt) = (unique("src"), unique("tgt"));
    create_bucket(&s3, &src, true).await;
    create_bucket(&s3, &tgt, true).await;
    let v1 = put(&s3, &tgt, "gone.txt", "1").await;
    put(&s3, &tgt, "gone.txt.bak", "keep").await;
    put(&s3, &tgt, "live.txt", "1").await;
    put(&s3, &src, "live.txt", "1").await;
    past_race_guard(&s3, &tgt).await;
    let cfg = config_file(&daemon_toml(
        &src,
        &tgt,
        "https://sqs.ap-northeast-2.amazonaws.com/111111111111/q",
        9090,
        "",
    ));
    let run = |dry: bool| {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(cfg.path())
            .args(["purge", "gone.txt", "live.txt"]);
        if dry {
            c.arg("--dry-run");
        }
        c.output().unwrap()
    };
    let out = run(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["key"], "gone.txt");
    assert_eq!(lines[0]["outcome"], "purged");
    assert_eq!(lines[0]["dry_run"], true);
    assert_eq!(lines[0]["deleted"][0]["version_id"], v1.as_str());
    assert_eq!(lines[1]["outcome"], "source_present");
    assert_eq!(
        entries(&s3, &tgt, "gone.txt").await.len(),
        1,
        "dry run deletes nothing"
    );

    let out = run(false);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"dry_run\":false"), "{stdout}");
    assert!(entries(&s3, &tgt, "gone.txt").await.is_empty());
    assert_eq!(entries(&s3, &tgt, "gone.txt.bak").await.len(), 1);
    assert_eq!(entries(&s3, &tgt, "live.txt").await.len(), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"action\":\"delete\""),
        "audit line: {stderr}"
    );
}

/// A TCP endpoint that accepts connections and never answers: a hung AWS endpoint.
fn black_hole() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_endpoint_times_out_and_the_watchdog_names_the_stuck_key() {
    let s3 = s3().await;
    let sqs = sqs().await;
    let src = unique("src");
    create_bucket(&s3, &src, true).await;
    let (queue, _dlq) = queue_with_dlq(&sqs, 5).await;
    send(
        &sqs,
        &queue,
        &s3_event(&src, "stuck/key.json", "ObjectRemoved:Delete", "v"),
    )
    .await;
    let port = free_port();
    let hung = format!("http://127.0.0.1:{}", black_hole());
    let toml = daemon_toml(&src, "tgt-bucket", &queue, port, "").replacen(
        &format!(
            "bucket = \"tgt-bucket\"\nregion = \"{REGION}\"\nendpoint_url = \"{}\"",
            endpoint()
        ),
        &format!("bucket = \"tgt-bucket\"\nregion = \"{REGION}\"\nendpoint_url = \"{hung}\""),
        1,
    ) + "[aws]\nmax_attempts = 1\nconnect_timeout = \"1s\"\nread_timeout = \"6s\"\n\
           attempt_timeout = \"6s\"\noperation_timeout = \"7s\"\n\
           [readiness]\nstall_after = \"2s\"\nmax_consecutive_failures = 1\n";
    assert!(toml.contains(&hung), "{toml}");
    let cfg = config_file(&toml);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = spawn(cfg.path(), log.path());
    // First the watchdog: the key's purge makes no progress.
    eventually(
        Duration::from_secs(15),
        "/readyz names the stalled key",
        || async {
            matches!(http_get(port, "/readyz").await, Some((503, body))
            if body.contains("stalled: purge_key s3://tgt-bucket/stuck/key.json made no progress"))
        },
    )
    .await;
    let watchdog_line = || {
        std::fs::read_to_string(log.path())
            .unwrap()
            .lines()
            .find(|l| l.contains("work in flight is making no progress"))
            .map(str::to_string)
    };
    eventually(Duration::from_secs(5), "the watchdog's WARN", || async {
        watchdog_line().is_some()
    })
    .await;
    let warn = watchdog_line().unwrap();
    assert!(
        warn.contains("\"level\":\"WARN\"")
            && warn.contains("purge_key")
            && warn.contains("stuck/key.json"),
        "{warn}"
    );
    // Then the bounded call gives up: a timeout, counted, and the message kept.
    eventually(
        Duration::from_secs(20),
        "/readyz reports the timeout",
        || async {
            matches!(http_get(port, "/readyz").await, Some((503, body))
            if body.contains("ListObjectVersions s3://tgt-bucket/stuck/key.json: timeout"))
        },
    )
    .await;
    let (_, metrics) = http_get(port, "/metrics").await.unwrap();
    assert!(
        ["1", "2"].iter().any(|n| metrics.contains(&format!(
            "s3_reconciler_aws_request_errors_total{{kind=\"timeout\",operation=\"ListObjectVersions\",service=\"s3\"}} {n}"
        ))),
        "{metrics}"
    );
    assert_eq!(queue_depth(&sqs, &queue).await, 1, "the message is kept");
    assert_eq!(
        http_get(port, "/livez").await.unwrap().0,
        200,
        "liveness does not depend on AWS"
    );
    signal(&child, "TERM");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

/// A TCP proxy to the emulator that forwards both ways until a client sends a request whose
/// bytes contain `needle`. It then stops forwarding that connection upstream, reads the rest
/// of the request (by its Content-Length), hands the whole request to the test and forwards
/// it only when released. The test can thus kill the daemon at the moment a request has left
/// it and before S3 has acted on it.
struct HoldingProxy {
    port: u16,
    held: std::sync::mpsc::Receiver<Vec<u8>>,
    release: std::sync::mpsc::Sender<()>,
}

impl HoldingProxy {
    fn start(needle: &str) -> HoldingProxy {
        use std::sync::atomic::AtomicBool;
        use std::sync::{Arc, Mutex, mpsc};
        let upstream = endpoint()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (held_tx, held) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let triggered = Arc::new(AtomicBool::new(false));
        let needle = needle.as_bytes().to_vec();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let server = std::net::TcpStream::connect(&upstream).unwrap();
                let (mut down_from, mut down_to) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut down_from, &mut down_to));
                let (held_tx, release_rx, triggered, needle) = (
                    held_tx.clone(),
                    release_rx.clone(),
                    triggered.clone(),
                    needle.clone(),
                );
                std::thread::spawn(move || {
                    forward_holding(client, server, &needle, &triggered, &held_tx, &release_rx)
                });
            }
        });
        HoldingProxy {
            port,
            held,
            release,
        }
    }
}

fn forward_holding(
    mut client: std::net::TcpStream,
    mut server: std::net::TcpStream,
    needle: &[u8],
    triggered: &std::sync::atomic::AtomicBool,
    held_tx: &std::sync::mpsc::Sender<Vec<u8>>,
    release_rx: &std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
) {
    use std::io::{Read, Write};
    use std::sync::atomic::Ordering;
    let find = |hay: &[u8], pat: &[u8]| hay.windows(pat.len()).position(|w| w == pat);
    let mut stream = Vec::new();
    let mut forwarded = 0;
    let mut chunk = [0u8; 65536];
    loop {
        let n = match client.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        stream.extend_from_slice(&chunk[..n]);
        let Some(at) = find(&stream, needle).filter(|_| !triggered.load(Ordering::SeqCst)) else {
            if server.write_all(&stream[forwarded..]).is_err() {
                return;
            }
            forwarded = stream.len();
            continue;
        };
        triggered.store(true, Ordering::SeqCst);
        let start = stream[..at]
            .windows(5)
            .rposition(|w| w == b"POST ")
            .expect("the held request is a POST");
        let body = start + find(&stream[start..], b"\r\n\r\n").expect("headers end") + 4;
        let headers = String::from_utf8_lossy(&stream[start..body]).to_ascii_lowercase();
        let length: usize = headers
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .expect("the held request has a Content-Length")
            .trim()
            .parse()
            .unwrap();
        while stream.len() < body + length {
            let n = client.read(&mut chunk).unwrap();
            assert!(n > 0, "the client closed mid-request");
            stream.extend_from_slice(&chunk[..n]);
        }
        held_tx.send(stream[start..body + length].to_vec()).unwrap();
        release_rx.lock().unwrap().recv().unwrap();
        server.write_all(&stream[forwarded..]).unwrap();
        // Keep the connection open until S3 has answered (the copy thread then ends it).
        let _ = server.shutdown(std::net::Shutdown::Write);
        return;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delete_leaves_an_intent_line_for_every_deleted_version() {
    let s3 = s3().await;
    let sqs = sqs().await;
    let (src, tgt) = (unique("src"), unique("tgt"));
    create_bucket(&s3, &src, true).await;
    create_bucket(&s3, &tgt, true).await;
    let (queue, _dlq) = queue_with_dlq(&sqs, 5).await;
    let key = "big/many-versions.bin";
    // Sequential: the emulator loses versions when one key is written concurrently.
    for i in 0..300 {
        put(&s3, &tgt, key, &format!("{i}")).await;
    }
    let before: std::collections::BTreeSet<String> = entries(&s3, &tgt, key)
        .await
        .into_iter()
        .map(|(v, _)| v)
        .collect();
    assert_eq!(before.len(), 300);
    past_race_guard(&s3, &tgt).await;
    send(
        &sqs,
        &queue,
        &s3_event(&src, key, "ObjectRemoved:Delete", "v"),
    )
    .await;
    // The target is reached through a proxy that holds the DeleteObjects naming the key.
    let proxy = HoldingProxy::start(&format!("<Key>{key}</Key>"));
    let ep = endpoint();
    let toml = daemon_toml(&src, &tgt, &queue, free_port(), "").replacen(
        &format!("bucket = \"{tgt}\"\nregion = \"{REGION}\"\nendpoint_url = \"{ep}\""),
        &format!(
            "bucket = \"{tgt}\"\nregion = \"{REGION}\"\nendpoint_url = \"http://127.0.0.1:{}\"",
            proxy.port
        ),
        1,
    );
    assert!(
        toml.contains(&format!("127.0.0.1:{}", proxy.port)),
        "{toml}"
    );
    let cfg = config_file(&toml);
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = spawn(cfg.path(), log.path());
    let request = proxy
        .held
        .recv_timeout(Duration::from_secs(60))
        .expect("the daemon sent a DeleteObjects naming the key");
    // The request has left the daemon and S3 has not acted on it: kill now.
    signal(&child, "KILL");
    child.wait().unwrap();
    let request = String::from_utf8_lossy(&request).to_string();
    let sent: std::collections::BTreeSet<String> = request
        .split("<VersionId>")
        .skip(1)
        .filter_map(|s| s.split("</VersionId>").next())
        .map(str::to_string)
        .collect();
    assert!(!sent.is_empty(), "the request names versions: {request}");
    assert!(sent.is_subset(&before), "{sent:?}");
    let text = std::fs::read_to_string(log.path()).unwrap();
    let intents: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "s3_reconciler::audit" && v["action"] == "deleting")
        .collect();
    assert!(
        intents
            .iter()
            .all(|v| v["batch_id"].as_str().is_some_and(|b| !b.is_empty())),
        "every intent line names its request"
    );
    let intended: std::collections::BTreeSet<String> = intents
        .iter()
        .filter(|v| v["key"] == key)
        .map(|v| v["version_id"].as_str().unwrap().to_string())
        .collect();
    let unaudited: Vec<&String> = sent.difference(&intended).collect();
    assert!(
        unaudited.is_empty(),
        "{} versions sent for deletion with no intent line written before the request, such as {:?}",
        unaudited.len(),
        &unaudited[..unaudited.len().min(3)]
    );
    // S3 now acts on the request the daemon never saw answered: exactly what was sent is gone,
    // and none of it was confirmed.
    proxy.release.send(()).unwrap();
    eventually(
        Duration::from_secs(30),
        "the held DeleteObjects took effect",
        || async {
            let left: std::collections::BTreeSet<String> = entries(&s3, &tgt, key)
                .await
                .into_iter()
                .map(|(v, _)| v)
                .collect();
            left == before.difference(&sent).cloned().collect()
        },
    )
    .await;
    assert_eq!(text.matches("deleted target entry").count(), 0, "{text}");
}
