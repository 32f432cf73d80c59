//! Helpers shared by the benchmarks: queueing events, scraping the daemon, lag quantiles from
//! its audit log, peak RSS and CPU, and a child process that does not outlive a panicking
//! benchmark.
#![allow(dead_code)]

use std::collections::HashMap;
use std::process::Command;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use chrono::{DateTime, Utc};
use futures::StreamExt;

use super::common::s3_event;

/// Queues one `event_name` event of `bucket` per key, 10 per SendMessageBatch, 32 calls at
/// once; returns each key's `eventTime`, read back from the body sent.
pub async fn enqueue(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    bucket: &str,
    event_name: &str,
    keys: &[String],
) -> HashMap<String, DateTime<Utc>> {
    let mut times = HashMap::new();
    let mut batches = Vec::new();
    for chunk in keys.chunks(10) {
        let mut entries = Vec::with_capacity(chunk.len());
        for (i, key) in chunk.iter().enumerate() {
            let body = s3_event(bucket, key, event_name, "v");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let t = v["Records"][0]["eventTime"].as_str().unwrap();
            times.insert(key.clone(), t.parse().unwrap());
            entries.push(
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(body)
                    .build()
                    .unwrap(),
            );
        }
        batches.push(entries);
    }
    futures::stream::iter(batches)
        .map(|entries| async move {
            sqs.send_message_batch()
                .queue_url(queue)
                .set_entries(Some(entries))
                .send()
                .await
                .unwrap();
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    times
}

pub async fn scrape(port: u16) -> Option<prometheus_parse::Scrape> {
    let url = format!("http://127.0.0.1:{port}/metrics");
    let out = Command::new("curl").args(["-s", &url]).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).ok()
}

pub fn value(s: &prometheus_parse::Scrape, name: &str, label: Option<(&str, &str)>) -> f64 {
    s.samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| label.is_none_or(|(k, v)| x.labels.get(k) == Some(v)))
        .map(|x| match &x.value {
            prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => *v,
            _ => 0.0,
        })
        .sum()
}

/// Lag per key: from its eventTime to the last audit `delete` line the daemon logged for it.
/// Returns (p50, p99) by nearest rank over every key, in seconds.
pub fn lag_quantiles(log: &str, event_times: &HashMap<String, DateTime<Utc>>) -> (f64, f64) {
    let mut done: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["target"] != "s3_reconciler::audit" || v["action"] != "delete" {
            continue;
        }
        let (Some(key), Some(ts)) = (v["key"].as_str(), v["timestamp"].as_str()) else {
            continue;
        };
        let Some((key, _)) = event_times.get_key_value(key) else {
            continue;
        };
        let ts: DateTime<Utc> = ts.parse().unwrap();
        let slot = done.entry(key.as_str()).or_insert(ts);
        *slot = (*slot).max(ts);
    }
    assert_eq!(
        done.len(),
        event_times.len(),
        "audit log names {} of {} keys",
        done.len(),
        event_times.len()
    );
    let mut lags: Vec<f64> = done
        .iter()
        .map(|(k, t)| (*t - event_times[*k]).as_seconds_f64())
        .collect();
    lags.sort_by(f64::total_cmp);
    let rank = |q: f64| lags[((q * lags.len() as f64).ceil() as usize).clamp(1, lags.len()) - 1];
    (rank(0.5), rank(0.99))
}

pub fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// CPU seconds (user + system) a process has used so far; 0 once it is gone.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // utime and stime are the 14th and 15th fields of the line, in clock ticks (100 a second).
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

/// The daemon under test; killed if the benchmark panics so it does not outlive the run.
pub struct Spawned(pub std::process::Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
