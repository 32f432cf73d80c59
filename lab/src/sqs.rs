//! The SQS side, in the JSON protocol the SDK speaks (`X-Amz-Target: AmazonSQS.<Op>`): queues
//! with visibility timeouts, long polling, receive counts and redrive to a dead-letter queue.
//! Messages wait in a set ordered by (visible at, sequence), so a receive costs
//! O(log n + messages returned).

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::stats::Stats;

const ACCOUNT: &str = "123456789012";

#[derive(Debug)]
struct Message {
    id: String,
    body: String,
    md5: String,
    sent_ms: u128,
    first_receive_ms: Option<u128>,
    receive_count: u32,
    /// Bumped on every receive; part of the receipt handle.
    generation: u64,
    visible_at: Instant,
}

#[derive(Debug)]
struct Queue {
    name: String,
    url: String,
    attributes: HashMap<String, String>,
    messages: HashMap<u64, Message>,
    /// (visible at, sequence) of every message.
    order: BTreeSet<(Instant, u64)>,
}

impl Queue {
    fn visibility(&self) -> Duration {
        Duration::from_secs(
            self.attributes
                .get("VisibilityTimeout")
                .and_then(|v| v.parse().ok())
                .unwrap_or(30),
        )
    }

    /// (dead-letter queue name, maxReceiveCount) from the RedrivePolicy.
    fn redrive(&self) -> Option<(String, u32)> {
        let p: Value = serde_json::from_str(self.attributes.get("RedrivePolicy")?).ok()?;
        let arn = p["deadLetterTargetArn"].as_str()?;
        let max = match &p["maxReceiveCount"] {
            Value::String(s) => s.parse().ok()?,
            v => v.as_u64()? as u32,
        };
        Some((arn.rsplit(':').next()?.to_string(), max))
    }

    fn set_visible_at(&mut self, seq: u64, at: Instant) {
        if let Some(m) = self.messages.get_mut(&seq) {
            self.order.remove(&(m.visible_at, seq));
            m.visible_at = at;
            self.order.insert((at, seq));
        }
    }
}

/// A failed call, as SQS's JSON protocol reports it.
#[derive(Debug)]
pub struct SqsError {
    pub status: u16,
    pub code: &'static str,
    pub query_code: &'static str,
    pub message: String,
}

impl SqsError {
    fn no_queue(url: &str) -> Self {
        SqsError {
            status: 400,
            code: "QueueDoesNotExist",
            query_code: "AWS.SimpleQueueService.NonExistentQueue",
            message: format!("The specified queue does not exist: {url}"),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        SqsError {
            status: 400,
            code: "InvalidParameterValue",
            query_code: "InvalidParameterValue",
            message: message.into(),
        }
    }

    pub fn body(&self) -> Value {
        json!({"__type": format!("com.amazonaws.sqs#{}", self.code), "message": self.message})
    }
}

#[derive(Debug)]
pub struct Sqs {
    queues: Mutex<HashMap<String, Queue>>,
    seq: Mutex<u64>,
    notify: Notify,
    region: String,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default()
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

fn queue_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

fn str_field<'a>(v: &'a Value, name: &str) -> Result<&'a str, SqsError> {
    v[name]
        .as_str()
        .ok_or_else(|| SqsError::invalid(format!("{name} is required")))
}

impl Sqs {
    pub fn new(region: &str) -> Self {
        Sqs {
            queues: Mutex::new(HashMap::new()),
            seq: Mutex::new(0),
            notify: Notify::new(),
            region: region.to_string(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Queue>> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn next_seq(&self) -> u64 {
        let mut s = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        *s += 1;
        *s
    }

    fn arn(&self, name: &str) -> String {
        format!("arn:aws:sqs:{}:{ACCOUNT}:{name}", self.region)
    }

    /// Handles `AmazonSQS.<op>` with its JSON input; `base` is the endpoint queue URLs start with.
    pub async fn call(
        &self,
        op: &str,
        input: Value,
        base: &str,
        stats: &Stats,
    ) -> Result<Value, SqsError> {
        stats.count(&format!("sqs:{op}"));
        match op {
            "CreateQueue" => self.create_queue(&input, base),
            "GetQueueUrl" => {
                let name = str_field(&input, "QueueName")?;
                let q = self.lock();
                let q = q.get(name).ok_or_else(|| SqsError::no_queue(name))?;
                Ok(json!({"QueueUrl": q.url}))
            }
            "GetQueueAttributes" => self.get_attributes(&input),
            "SetQueueAttributes" => {
                let url = str_field(&input, "QueueUrl")?;
                let mut q = self.lock();
                let q = q
                    .get_mut(queue_name(url))
                    .ok_or_else(|| SqsError::no_queue(url))?;
                if let Some(a) = input["Attributes"].as_object() {
                    for (k, v) in a {
                        q.attributes
                            .insert(k.clone(), v.as_str().unwrap_or_default().to_string());
                    }
                }
                Ok(json!({}))
            }
            "SendMessage" => {
                let url = str_field(&input, "QueueUrl")?;
                let body = str_field(&input, "MessageBody")?;
                let (id, md5) = self.send(url, body)?;
                Ok(json!({"MessageId": id, "MD5OfMessageBody": md5}))
            }
            "SendMessageBatch" => {
                let url = str_field(&input, "QueueUrl")?;
                let mut ok = Vec::new();
                for e in input["Entries"].as_array().cloned().unwrap_or_default() {
                    let body = str_field(&e, "MessageBody")?;
                    let (id, md5) = self.send(url, body)?;
                    ok.push(json!({"Id": e["Id"], "MessageId": id, "MD5OfMessageBody": md5}));
                }
                Ok(json!({"Successful": ok, "Failed": []}))
            }
            "ReceiveMessage" => self.receive(&input).await,
            "DeleteMessage" => {
                let url = str_field(&input, "QueueUrl")?;
                self.delete(url, str_field(&input, "ReceiptHandle")?)?;
                Ok(json!({}))
            }
            "DeleteMessageBatch" => {
                let url = str_field(&input, "QueueUrl")?;
                let mut ok = Vec::new();
                for e in input["Entries"].as_array().cloned().unwrap_or_default() {
                    self.delete(url, str_field(&e, "ReceiptHandle")?)?;
                    ok.push(json!({"Id": e["Id"]}));
                }
                Ok(json!({"Successful": ok, "Failed": []}))
            }
            "ChangeMessageVisibility" => {
                let url = str_field(&input, "QueueUrl")?;
                let secs = input["VisibilityTimeout"].as_u64().unwrap_or(0);
                self.change_visibility(url, str_field(&input, "ReceiptHandle")?, secs)?;
                Ok(json!({}))
            }
            "ChangeMessageVisibilityBatch" => {
                let url = str_field(&input, "QueueUrl")?;
                let mut ok = Vec::new();
                for e in input["Entries"].as_array().cloned().unwrap_or_default() {
                    let secs = e["VisibilityTimeout"].as_u64().unwrap_or(0);
                    self.change_visibility(url, str_field(&e, "ReceiptHandle")?, secs)?;
                    ok.push(json!({"Id": e["Id"]}));
                }
                Ok(json!({"Successful": ok, "Failed": []}))
            }
            "PurgeQueue" => {
                let url = str_field(&input, "QueueUrl")?;
                let mut q = self.lock();
                let q = q
                    .get_mut(queue_name(url))
                    .ok_or_else(|| SqsError::no_queue(url))?;
                q.messages.clear();
                q.order.clear();
                Ok(json!({}))
            }
            other => Err(SqsError {
                status: 400,
                code: "UnsupportedOperation",
                query_code: "AWS.SimpleQueueService.UnsupportedOperation",
                message: format!("the lab does not implement {other}"),
            }),
        }
    }

    fn create_queue(&self, input: &Value, base: &str) -> Result<Value, SqsError> {
        let name = str_field(input, "QueueName")?.to_string();
        let mut queues = self.lock();
        let url = format!("{base}/{ACCOUNT}/{name}");
        let q = queues.entry(name.clone()).or_insert_with(|| Queue {
            name: name.clone(),
            url: url.clone(),
            attributes: HashMap::from([("VisibilityTimeout".into(), "30".into())]),
            messages: HashMap::new(),
            order: BTreeSet::new(),
        });
        if let Some(a) = input["Attributes"].as_object() {
            for (k, v) in a {
                q.attributes
                    .insert(k.clone(), v.as_str().unwrap_or_default().to_string());
            }
        }
        Ok(json!({"QueueUrl": q.url}))
    }

    fn get_attributes(&self, input: &Value) -> Result<Value, SqsError> {
        let url = str_field(input, "QueueUrl")?;
        let q = self.lock();
        let q = q
            .get(queue_name(url))
            .ok_or_else(|| SqsError::no_queue(url))?;
        let now = Instant::now();
        let visible = q.order.range(..(now, u64::MAX)).count();
        let mut all: HashMap<String, String> = q.attributes.clone();
        all.insert("QueueArn".into(), self.arn(&q.name));
        all.insert("ApproximateNumberOfMessages".into(), visible.to_string());
        all.insert(
            "ApproximateNumberOfMessagesNotVisible".into(),
            (q.messages.len() - visible).to_string(),
        );
        let wanted: Vec<String> = input["AttributeNames"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let out: HashMap<&String, &String> = all
            .iter()
            .filter(|(k, _)| wanted.iter().any(|w| w == "All" || w == *k))
            .collect();
        Ok(json!({ "Attributes": out }))
    }

    fn send(&self, url: &str, body: &str) -> Result<(String, String), SqsError> {
        let seq = self.next_seq();
        let id = format!("{:08x}-0000-4000-8000-{seq:012x}", seq >> 48);
        let md5 = md5_hex(body);
        let mut queues = self.lock();
        let q = queues
            .get_mut(queue_name(url))
            .ok_or_else(|| SqsError::no_queue(url))?;
        let at = Instant::now();
        q.messages.insert(
            seq,
            Message {
                id: id.clone(),
                body: body.to_string(),
                md5: md5.clone(),
                sent_ms: now_ms(),
                first_receive_ms: None,
                receive_count: 0,
                generation: 0,
                visible_at: at,
            },
        );
        q.order.insert((at, seq));
        drop(queues);
        self.notify.notify_waiters();
        Ok((id, md5))
    }

    /// Takes up to `max` visible messages, moving those past maxReceiveCount to the DLQ.
    fn take(
        &self,
        name: &str,
        max: usize,
        visibility: Option<u64>,
    ) -> Result<Vec<Value>, SqsError> {
        let mut queues = self.lock();
        let q = queues
            .get_mut(name)
            .ok_or_else(|| SqsError::no_queue(name))?;
        let now = Instant::now();
        let hidden_until = now + visibility.map_or_else(|| q.visibility(), Duration::from_secs);
        let redrive = q.redrive();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        while out.len() < max {
            let Some(&(at, seq)) = q.order.first() else {
                break;
            };
            if at > now {
                break;
            }
            if let Some((_, max_receives)) = &redrive
                && q.messages
                    .get(&seq)
                    .is_some_and(|m| m.receive_count >= *max_receives)
            {
                q.order.remove(&(at, seq));
                if let Some(m) = q.messages.remove(&seq) {
                    dead.push((seq, m));
                }
                continue;
            }
            q.set_visible_at(seq, hidden_until);
            let Some(m) = q.messages.get_mut(&seq) else {
                continue;
            };
            m.receive_count += 1;
            m.generation += 1;
            let first = *m.first_receive_ms.get_or_insert_with(now_ms);
            out.push(json!({
                "MessageId": m.id,
                "ReceiptHandle": format!("{}#{seq}#{}", q.name, m.generation),
                "MD5OfBody": m.md5,
                "Body": m.body,
                "Attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": m.sent_ms.to_string(),
                    "ApproximateFirstReceiveTimestamp": first.to_string(),
                },
            }));
        }
        if let (Some((dlq, _)), false) = (redrive, dead.is_empty())
            && let Some(d) = queues.get_mut(&dlq)
        {
            for (seq, mut m) in dead {
                m.visible_at = now;
                d.order.insert((now, seq));
                d.messages.insert(seq, m);
            }
        }
        Ok(out)
    }

    async fn receive(&self, input: &Value) -> Result<Value, SqsError> {
        let url = str_field(input, "QueueUrl")?;
        let name = queue_name(url).to_string();
        let max = input["MaxNumberOfMessages"]
            .as_u64()
            .unwrap_or(1)
            .clamp(1, 10) as usize;
        let wait = Duration::from_secs(input["WaitTimeSeconds"].as_u64().unwrap_or(0).min(20));
        let visibility = input["VisibilityTimeout"].as_u64();
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so a send between the look and the wait wakes us.
            let notified = self.notify.notified();
            let got = self.take(&name, max, visibility)?;
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(json!({ "Messages": got }));
            }
            let next_visible = {
                let q = self.lock();
                q.get(&name)
                    .and_then(|q| q.order.first().map(|(at, _)| *at))
            };
            let until = next_visible.map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(until) => {}
            }
        }
    }

    /// (queue name, sequence) of a receipt handle.
    fn handle(handle: &str) -> Option<(&str, u64)> {
        let mut parts = handle.split('#');
        let name = parts.next()?;
        let seq = parts.next()?.parse().ok()?;
        Some((name, seq))
    }

    fn delete(&self, url: &str, handle: &str) -> Result<(), SqsError> {
        let (_, seq) = Self::handle(handle)
            .ok_or_else(|| SqsError::invalid(format!("bad receipt handle {handle}")))?;
        let mut q = self.lock();
        let q = q
            .get_mut(queue_name(url))
            .ok_or_else(|| SqsError::no_queue(url))?;
        if let Some(m) = q.messages.remove(&seq) {
            q.order.remove(&(m.visible_at, seq));
        }
        Ok(())
    }

    fn change_visibility(&self, url: &str, handle: &str, secs: u64) -> Result<(), SqsError> {
        let (_, seq) = Self::handle(handle)
            .ok_or_else(|| SqsError::invalid(format!("bad receipt handle {handle}")))?;
        let mut queues = self.lock();
        let q = queues
            .get_mut(queue_name(url))
            .ok_or_else(|| SqsError::no_queue(url))?;
        q.set_visible_at(seq, Instant::now() + Duration::from_secs(secs));
        drop(queues);
        if secs == 0 {
            self.notify.notify_waiters();
        }
        Ok(())
    }
}
