//! The deployment artifacts against the live daemon: its scrape passes `promtool check metrics`,
//! every metric the alert rules and the dashboard name exists in a scrape (renaming a metric
//! breaks the build, not the on-call), and a real Prometheus scrapes the daemon and evaluates
//! the rules without error. promtool and prometheus come from Debian (`scripts/tools.sh`).

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn tool(name: &str) -> Command {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "`{name}` not found: run the tests with `make test` (scripts/tools.sh installs Debian's prometheus)"
    );
    Command::new(name)
}

/// A daemon with every task enabled on a correctly wired world, so every metric family
/// (the preflight checks' too) is exported.
async fn daemon() -> Daemon {
    let w = Wired::new().await;
    let mut cfg = w.config();
    cfg.sweep.enabled = true;
    cfg.sweep.prefixes = vec!["topics/".into()];
    let d = Daemon::start(cfg).await;
    eventually(Duration::from_secs(30), "daemon ready", || async {
        matches!(http_get(d.port, "/readyz").await, Some((200, _)))
    })
    .await;
    eventually(Duration::from_secs(30), "preflight ran", || async {
        d.metrics.preflight.last_run() > 0
    })
    .await;
    d
}

/// Metric names referenced in a text (rule expressions, dashboard queries): the daemon's own
/// (`s3_reconciler_*`) and the standard, unprefixed process families (`process_*`: the alerts'
/// gates join on `process_start_time_seconds`).
fn referenced(text: &str) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = BTreeSet::new();
    for prefix in ["s3_reconciler_", "process_"] {
        let mut at = 0;
        while let Some(i) = text[at..].find(prefix) {
            let start = at + i;
            let tail = &text[start..];
            let end = tail.find(|c: char| !word(c)).unwrap_or(tail.len());
            // A name, not the end of another one (s3_reconciler_process_...).
            if !text[..start].ends_with(word) {
                out.insert(tail[..end].to_string());
            }
            at = start + end;
        }
    }
    out
}

/// The `spec:` block of the PrometheusRule manifest (the rules' one source), as a plain
/// Prometheus rules file.
fn rules_file() -> String {
    let text = std::fs::read_to_string(
        root().join("deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml"),
    )
    .unwrap();
    let spec = text.split_once("\nspec:\n").expect("a spec block").1;
    spec.lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_and_dashboard_use_only_metrics_the_daemon_exports() {
    let d = daemon().await;
    let (code, scrape) = http_get(d.port, "/metrics").await.unwrap();
    assert_eq!(code, 200);

    let mut promtool = tool("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let exported: BTreeSet<String> = scrape
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect();
    let rules = referenced(&rules_file());
    let dashboard = referenced(
        &std::fs::read_to_string(root().join("deploy/grafana/s3-reconciler.json")).unwrap(),
    );
    assert!(
        rules.len() >= 5 && dashboard.len() >= 10,
        "{rules:?} {dashboard:?}"
    );
    for name in rules.iter().chain(&dashboard) {
        assert!(
            exported.contains(name),
            "`{name}` is used by deploy/ but the daemon does not export it; exported: {exported:?}"
        );
    }
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_the_daemon_and_evaluates_the_rules() {
    let d = daemon().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), rules_file()).unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yaml]\n\
             scrape_configs:\n  - job_name: s3-reconciler\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            d.port
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut prom = tool("prometheus")
        .current_dir(dir.path())
        .arg("--config.file=prometheus.yml")
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prometheus.log")).unwrap())
        .spawn()
        .unwrap();

    let mut result = String::new();
    for _ in 0..120 {
        let answer = http_get(port, "/api/v1/query?query=s3_reconciler_build_info").await;
        if let Some((200, body)) = answer
            && body.contains("\"version\"")
        {
            result = body;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rules = http_get(port, "/api/v1/rules").await;
    let _ = prom.kill();
    let _ = prom.wait();
    assert!(
        result.contains(env!("CARGO_PKG_VERSION")),
        "Prometheus never returned our series: {result}\n{}",
        std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default()
    );
    let (_, rules) = rules.expect("rules API answered");
    let v: serde_json::Value = serde_json::from_str(&rules).unwrap();
    let loaded: Vec<&serde_json::Value> = v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    let declared = rules_file().matches("- alert:").count();
    assert!(declared >= 9, "{declared}");
    assert_eq!(loaded.len(), declared, "{rules}");
    for r in loaded {
        assert_ne!(
            r["health"], "err",
            "rule {} failed to evaluate: {}",
            r["name"], r["lastError"]
        );
    }
    d.stop().await;
}

/// The Kubernetes configuration goes through a generated ConfigMap whose name carries a hash of
/// config.toml: a change to the file changes the name the Deployment mounts, so applying it
/// rolls the pods.
#[test]
fn a_config_change_rolls_the_kubernetes_pods() {
    fn built(dir: &Path) -> (String, String) {
        let out = tool("kubectl")
            .args(["kustomize"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl kustomize: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let docs: Vec<&str> = text.split("\n---\n").collect();
        let name_of = |kind: &str| {
            docs.iter()
                .find(|d| d.contains(&format!("kind: {kind}\n")))
                .unwrap_or_else(|| panic!("no {kind} in {text}"))
                .to_string()
        };
        let cm = name_of("ConfigMap");
        let cm_name = cm
            .lines()
            .find_map(|l| l.trim().strip_prefix("name: "))
            .unwrap()
            .to_string();
        assert!(cm_name.starts_with("s3-reconciler-"), "{cm_name}");
        assert!(cm.contains("config.toml: |"), "{cm}");
        (cm_name, name_of("Deployment"))
    }
    let src = root().join("deploy/kubernetes");
    let (name, deployment) = built(&src);
    assert!(
        deployment.contains(&format!("name: {name}")),
        "the Deployment mounts the generated ConfigMap: {deployment}"
    );
    // The base's files (its components/ are not part of it).
    let copy = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            std::fs::copy(&f, copy.path().join(f.file_name().unwrap())).unwrap();
        }
    }
    let cfg = copy.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, text.replace("concurrency = 16", "concurrency = 32")).unwrap();
    let (changed, deployment) = built(copy.path());
    assert_ne!(
        changed, name,
        "a config change must change the ConfigMap's name"
    );
    assert!(deployment.contains(&format!("name: {changed}")));
}
