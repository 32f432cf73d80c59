use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::*;

fn file(contents: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(contents.as_bytes()).unwrap();
    f
}

const MINIMAL: &str = r#"
[source]
bucket = "source-s3-bucket"
region = "ap-northeast-2"
[target]
bucket = "destination-s3-bucket"
region = "ap-northeast-2"
[purge]
enabled = true
queue_url = "https://sqs.ap-northeast-2.amazonaws.com/111111111111/deletes"
"#;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn problems(toml: &str, vars: &[(&str, &str)], purpose: Purpose) -> Vec<String> {
    let f = file(toml);
    match Config::load_with_env(Some(f.path()), env(vars), purpose) {
        Ok(_) => Vec::new(),
        Err(e) => e.problems.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn file_then_env_override() {
    let f = file(MINIMAL);
    let cfg = Config::load_with_env(
        Some(f.path()),
        env(&[
            (
                "S3R__PURGE__QUEUE_URL",
                "https://sqs.ap-northeast-2.amazonaws.com/111111111111/other",
            ),
            ("S3R__PURGE__CONCURRENCY", "4"),
            ("S3R__SHUTDOWN__GRACE", "5s"),
            (
                "S3R__PURGE__EVENTS",
                "ObjectRemoved:Delete,s3:ObjectRemoved:DeleteMarkerCreated",
            ),
            ("S3R_CONFIG", "ignored.toml"),
        ]),
        Purpose::Daemon,
    )
    .unwrap();
    assert_eq!(cfg.source.bucket, "source-s3-bucket");
    assert!(cfg.purge.queue_url.ends_with("/other"));
    assert_eq!(cfg.purge.concurrency.get(), 4);
    assert_eq!(cfg.shutdown.grace, Duration::from_secs(5));
    assert_eq!(
        cfg.purge.events,
        vec![
            RemovalEventName::ObjectRemovedDelete,
            RemovalEventName::ObjectRemovedDeleteMarkerCreated
        ]
    );
    // Defaults survive where neither layer spoke.
    assert_eq!(cfg.http.listen.to_string(), "0.0.0.0:9090");
    assert_eq!(cfg.purge.visibility_timeout, Duration::from_secs(60));
}

/// ECS is configured by environment variables only: a JSON array says what the file can,
/// including the whole-bucket sweep `[""]` that the comma form cannot.
#[test]
fn env_lists_take_a_json_array() {
    let f = file(MINIMAL);
    let load =
        |vars: &[(&str, &str)]| Config::load_with_env(Some(f.path()), env(vars), Purpose::Daemon);
    let cfg = load(&[
        ("S3R__SWEEP__ENABLED", "true"),
        ("S3R__SWEEP__PREFIXES", r#"[""]"#),
        ("S3R__STATE__BUCKET", "state-bucket"),
    ])
    .unwrap();
    assert_eq!(cfg.sweep.prefixes, vec![String::new()]);
    let cfg = load(&[("S3R__SYNC__INCLUDE_PROJECTS", r#"["a", "b,c"]"#)]).unwrap();
    assert_eq!(cfg.sync.include_projects, vec!["a", "b,c"]);
    let e = load(&[("S3R__SWEEP__PREFIXES", r#"["topics/""#)]).unwrap_err();
    assert!(
        e.to_string().contains("sweep.prefixes") && e.to_string().contains("S3R__SWEEP__PREFIXES"),
        "{e}"
    );
}

#[test]
fn every_problem_is_named_at_once() {
    let got = problems(
        r#"
[source]
bucket = "same-bucket"
region = "ap-northeast-2"
bogus = 1
[target]
bucket = "same-bucket"
region = ""
[http]
listen = "not-an-address"
[purge]
enabled = true
queue_url = "nope"
concurency = 3
events = ["ObjectCreated:Put"]
[shutdown]
grace = "0s"
[mystery]
x = 1
"#,
        &[],
        Purpose::Daemon,
    );
    let keys: Vec<&str> = got.iter().map(|p| p.split(':').next().unwrap()).collect();
    for expected in [
        "source.bogus",
        "target.bucket",
        "target.region",
        "http.listen",
        "purge.queue_url",
        "purge.concurency",
        "purge.events",
        "shutdown.grace",
        "mystery",
    ] {
        assert!(keys.contains(&expected), "{expected} missing from {got:#?}");
    }
    assert!(got.contains(&"target.bucket: must differ from source.bucket".to_string()));
}

/// Combined bad files: each row's problems must all be named, each with its key, and nothing
/// else may be reported (no false "no task is enabled" when `enabled` itself is what is bad).
#[test]
fn combined_bad_files_name_every_problem_and_nothing_false() {
    let base = r#"
[source]
bucket = "a-bucket"
region = "ap-northeast-2"
[target]
bucket = "b-bucket"
region = "ap-northeast-2"
"#;
    // (file lines after the buckets, environment, the problems expected, each as a prefix)
    type Row<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let rows: &[Row] = &[
        (
            r#"[purge]
enabled = "yes"
queue_url = "https://sqs.ap-northeast-2.amazonaws.com/111111111111/q"
concurrency = "abc"
wait_time = 5"#,
            &[],
            &[
                "purge.enabled: invalid type: string \"yes\", expected a boolean",
                "purge.concurrency: invalid type: string \"abc\"",
                "purge.wait_time: invalid type: integer `5`",
            ],
        ),
        (
            r#"[sync]
enabled = true
task_arn = "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0"
schedule = "30 1 * *"
poll_interval = "0s"
timeout = "-1m"
[state]
bucket = "state-bucket""#,
            &[],
            &[
                "sync.schedule: `30 1 * *` is not a cron expression: five fields",
                "sync.poll_interval: must be greater than zero",
                "sync.timeout: ",
            ],
        ),
        (
            r#"[purge]
enabled = "off"
queue_url = 7
[sync]
enabled = 1"#,
            &[],
            &[
                "purge.enabled: invalid type: string \"off\"",
                "purge.queue_url: invalid type: integer `7`",
                "sync.enabled: invalid type: integer `1`",
            ],
        ),
        (
            r#"[purge]
enabled = true
queue_url = "https://sqs.ap-northeast-2.amazonaws.com/111111111111/q""#,
            &[
                ("S3R__PURGE__ENABLED", "yes"),
                ("S3R__PURGE__CONCURRENCY", "0"),
                ("S3R__PURGE__WAIT_TIME", "5"),
                ("S3R__PURGE__CONCURENCY", "4"),
            ],
            &[
                "purge.enabled (S3R__PURGE__ENABLED): `yes` is not a boolean",
                "purge.concurrency (S3R__PURGE__CONCURRENCY): ",
                "purge.wait_time (S3R__PURGE__WAIT_TIME): ",
                "purge.concurency (S3R__PURGE__CONCURENCY): unknown key",
            ],
        ),
        (
            r#"[sync]
enabled = true
timezone = "Mars/Olympus"
partition = "year={yyyy}/"
include_projects = "not-a-list"
[state]
bucket = "Bad_Bucket""#,
            &[],
            &[
                "sync.timezone: ",
                "sync.partition: `year={yyyy}/` must contain {MM}",
                "sync.include_projects: invalid type: string \"not-a-list\"",
                "sync.task_arn: required",
                "state.bucket: `Bad_Bucket` may contain only",
            ],
        ),
    ];
    for (extra, vars, expected) in rows {
        let got = problems(&format!("{base}{extra}"), vars, Purpose::Daemon);
        for want in *expected {
            assert!(
                got.iter().any(|g| g.starts_with(want)),
                "`{want}` missing for\n{extra}\ngot: {got:#?}"
            );
        }
        assert_eq!(
            got.len(),
            expected.len(),
            "exactly these problems for\n{extra}\ngot: {got:#?}"
        );
    }
}

#[test]
fn one_shot_commands_need_only_what_they_use() {
    let buckets = r#"
[source]
bucket = "a-bucket"
region = "ap-northeast-2"
[target]
bucket = "b-bucket"
region = "ap-northeast-2"
"#;
    // No task is enabled: the daemon refuses, the manual commands do not care.
    let daemon = problems(buckets, &[], Purpose::Daemon);
    assert_eq!(daemon.len(), 1, "{daemon:?}");
    assert!(daemon[0].starts_with("sync.enabled: no task is enabled"));
    assert!(problems(buckets, &[], Purpose::Purge).is_empty());
    assert!(problems(buckets, &[], Purpose::SyncPlan).is_empty());
    // A real sync needs the task and the claims bucket, enabled or not.
    let sync = problems(buckets, &[], Purpose::Sync);
    assert!(
        sync.iter()
            .any(|p| p.starts_with("sync.task_arn: required")),
        "{sync:?}"
    );
    assert!(
        sync.iter().any(|p| p.starts_with("state.bucket: required")),
        "{sync:?}"
    );
    // The health check needs nothing but the listen address.
    assert!(problems("", &[], Purpose::Healthcheck).is_empty());
}

#[test]
fn timeouts_must_cover_a_long_poll() {
    let got = problems(
        &format!("{MINIMAL}\n[aws]\nread_timeout = \"10s\"\nattempt_timeout = \"10s\"\n"),
        &[],
        Purpose::Daemon,
    );
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("aws.read_timeout: must be at least purge.wait_time + 5s (25s)"));
}

#[test]
fn file_errors_name_the_file() {
    let err = Config::load_with_env(
        Some(Path::new("/nonexistent/x.toml")),
        env(&[]),
        Purpose::Daemon,
    )
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.toml"));
    let f = file("[purge\nenabled = true");
    let err = Config::load_with_env(Some(f.path()), env(&[]), Purpose::Daemon).unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
    let got = problems("purge = 3\n", &[], Purpose::Healthcheck);
    assert_eq!(got, vec!["purge: must be a table, not integer"]);
}

#[test]
fn redaction_hides_external_id() {
    let f = file(&format!(
        "{MINIMAL}\n[control]\nrole_arn = \"arn:aws:iam::111111111111:role/r\"\nexternal_id = \"s3cr3t-ext\"\n"
    ));
    let cfg = Config::load_with_env(Some(f.path()), env(&[]), Purpose::Daemon).unwrap();
    let out = cfg.to_redacted_toml();
    assert!(!out.contains("s3cr3t-ext"), "{out}");
    assert!(out.contains("external_id = \"<redacted>\""), "{out}");
    assert!(out.contains("source-s3-bucket"));
    // The rendering is itself a configuration that loads to the same values.
    let again = file(&out.replace("<redacted>", "s3cr3t-ext"));
    let reloaded = Config::load_with_env(Some(again.path()), env(&[]), Purpose::Daemon).unwrap();
    assert_eq!(reloaded, cfg);
}

#[test]
fn shipped_config_files_are_valid() {
    for name in [
        "config/default.toml",
        "config/local.toml",
        "config/example-production.toml",
        "deploy/kubernetes/config.toml",
    ] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
        let res = Config::load_with_env(Some(&path), env(&[]), Purpose::Daemon);
        if name == "config/default.toml" {
            // The defaults enable no task on purpose: the operator must choose. That and the
            // empty buckets are the only problems.
            let err = res.unwrap_err();
            let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
            assert_eq!(
                keys,
                vec![
                    "source.bucket",
                    "source.region",
                    "target.bucket",
                    "target.region",
                    "sync.enabled"
                ],
                "{err}"
            );
        } else {
            res.unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// config/default.toml is the reference: every key the daemon reads is there, with the value
/// it has when left out.
#[test]
fn default_toml_documents_every_key_with_its_default() {
    fn leaves(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, toml::Value>) {
        match v {
            toml::Value::Table(t) => {
                for (k, v) in t {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    leaves(&key, v, out);
                }
            }
            other => {
                out.insert(prefix.to_string(), other.clone());
            }
        }
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/default.toml");
    let shipped: toml::Value = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let rendered = toml::Value::try_from(Config::default()).unwrap();
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    leaves("", &shipped, &mut a);
    leaves("", &rendered, &mut b);
    let undocumented: Vec<&String> = b.keys().filter(|k| !a.contains_key(*k)).collect();
    assert!(
        undocumented.is_empty(),
        "config/default.toml lacks {undocumented:?}"
    );
    let unknown: Vec<&String> = a.keys().filter(|k| !b.contains_key(*k)).collect();
    assert!(
        unknown.is_empty(),
        "config/default.toml has unknown {unknown:?}"
    );
    // Durations compare by value: "60s" is "1m".
    let duration = |v: &toml::Value| v.as_str().and_then(|s| humantime::parse_duration(s).ok());
    for (k, v) in &a {
        match (duration(v), b.get(k).and_then(duration)) {
            (Some(x), Some(y)) => assert_eq!(x, y, "config/default.toml: {k}"),
            _ => assert_eq!(Some(v), b.get(k), "config/default.toml: {k}"),
        }
    }
}

#[test]
fn mirror_versions_must_say_what_replication_covers_and_keep_datasync_out_of_it() {
    let mirror = [("S3R__PURGE__MODE", "mirror-versions")];
    let p = problems(MINIMAL, &mirror, Purpose::Daemon);
    assert!(
        p.iter().any(
            |x| x.starts_with("purge.prefixes: required with purge.mode = \"mirror-versions\"")
        ),
        "{p:?}"
    );
    let scoped = [
        ("S3R__PURGE__MODE", "mirror-versions"),
        ("S3R__PURGE__PREFIXES", "replicated/"),
    ];
    assert!(problems(MINIMAL, &scoped, Purpose::Daemon).is_empty());
    // DataSync on the same keys: its copies would sit among the replicas.
    let sync = r#"
[sync]
enabled = true
task_arn = "arn:aws:datasync:ap-northeast-2:111111111111:task/task-0123456789abcdef0"
prefix = "replicated/topics/"
[state]
bucket = "state-bucket"
"#;
    let p = problems(&format!("{MINIMAL}{sync}"), &scoped, Purpose::Daemon);
    assert!(
        p.iter().any(|x| x.starts_with("purge.mode:")
            && x.contains(
                "sync.prefix `replicated/topics/` overlaps purge.prefixes `replicated/`"
            )),
        "{p:?}"
    );
    let elsewhere = sync.replace("replicated/topics/", "topics/");
    assert!(problems(&format!("{MINIMAL}{elsewhere}"), &scoped, Purpose::Daemon).is_empty());
    // A sweep outside the replicated scope is refused, here and on the command line.
    let sweep = "[sweep]\nenabled = true\nprefixes = [\"replicated/a/\", \"other/\"]\n[state]\nbucket = \"state-bucket\"\n";
    let p = problems(&format!("{MINIMAL}{sweep}"), &scoped, Purpose::Daemon);
    assert_eq!(
        p,
        vec![
            "sweep.prefixes: `other/` is outside purge.prefixes, which say what replication covers in \"mirror-versions\" mode"
                .to_string()
        ]
    );
    let f = file(MINIMAL);
    let cfg = Config::load_with_env(Some(f.path()), env(&scoped), Purpose::Purge).unwrap();
    assert!(cfg.check_sweep_prefixes(&["replicated/x/".into()]).is_ok());
    let e = cfg.check_sweep_prefixes(&["other/".into()]).unwrap_err();
    assert_eq!(e.problems[0].key, "--prefix");
    // when-source-empty needs none of this.
    assert!(problems(&format!("{MINIMAL}{sweep}"), &[], Purpose::Daemon).is_empty());
}

#[test]
fn overlapping_sweep_prefixes_are_named() {
    assert_eq!(
        overlaps(&["a/".into(), "b/".into(), "a/b/".into()]),
        vec!["`a/` and `a/b/` overlap: each key is swept under one prefix".to_string()]
    );
    assert!(overlaps(&["a/".into(), "ab/".into()]).is_empty());
    assert_eq!(overlaps(&["".into(), "x".into()]).len(), 1);
}
