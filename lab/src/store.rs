//! The lab's S3 state: buckets of keys in byte order, each key's versions newest first. Every
//! operation costs O(log n + what it returns), whatever the bucket's size.
//!
//! For the simulation it also keeps a journal of every write and permanent delete in the
//! buckets it is asked to watch (who did it, when, what), versions that are replicas (S3
//! Replication keeps the source's version id and reports `REPLICA`) or under a legal hold
//! (a delete is refused with AccessDenied), and a clock that can run ahead of real time.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use bytes::Bytes;
use md5::{Digest, Md5};
use serde::Serialize;
use time::OffsetDateTime;

/// One version or delete marker of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    pub id: String,
    pub delete_marker: bool,
    /// Whole seconds, as S3 lists them.
    pub modified: OffsetDateTime,
    pub etag: String,
    pub body: Bytes,
    /// Written by replication: HeadObject reports `x-amz-replication-status: REPLICA`.
    pub replica: bool,
    /// Under a legal hold: deleting this version is refused (AccessDenied).
    pub held: bool,
}

#[derive(Debug, Default)]
pub struct Bucket {
    /// `Enabled`, `Suspended`, or never set.
    pub versioning: Option<String>,
    pub keys: BTreeMap<String, Vec<Version>>,
}

impl Bucket {
    fn versioned(&self) -> bool {
        self.versioning.as_deref() == Some("Enabled")
    }
}

/// Why an operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    NoSuchBucket,
    NoSuchKey,
    BucketExists,
    PreconditionFailed,
    /// The version is under a legal hold.
    AccessDenied,
}

/// Who changed a bucket: a client through the S3 protocol (the daemon) or the lab's admin
/// endpoints (a test or benchmark playing the world).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Actor {
    Client,
    Admin,
    /// The lab's DataSync model, copying for an execution.
    #[serde(rename = "datasync")]
    DataSync,
}

/// What happened to one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A version or delete marker was written.
    Put,
    /// A version or delete marker was removed for good.
    Delete,
    /// A permanent delete was refused (legal hold).
    Refused,
    /// A legal hold was placed or lifted.
    Hold,
    Release,
}

/// One journal line.
#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    pub seq: u64,
    /// The lab's clock, in milliseconds since the epoch.
    pub at_ms: i64,
    /// Real time, in microseconds since the epoch (to order against a client's own log).
    pub real_us: i64,
    pub actor: Actor,
    pub change: Change,
    pub bucket: String,
    pub key: String,
    pub version_id: String,
    pub delete_marker: bool,
    pub replica: bool,
    /// Under a legal hold (when written, or after a hold change).
    pub held: bool,
    /// The entry's LastModified, in milliseconds since the epoch (orders a key's versions).
    pub modified_ms: i64,
}

/// The lab's clock: real time, or a virtual time that started at `origin` and runs `speed`
/// times faster than real time.
#[derive(Debug, Clone, Copy)]
struct Clock {
    real: SystemTime,
    origin: OffsetDateTime,
    speed: f64,
}

impl Default for Clock {
    fn default() -> Self {
        let real = SystemTime::now();
        Clock {
            real,
            origin: OffsetDateTime::from(real),
            speed: 1.0,
        }
    }
}

impl Clock {
    fn now(&self) -> OffsetDateTime {
        let elapsed = SystemTime::now()
            .duration_since(self.real)
            .unwrap_or_default()
            .mul_f64(self.speed);
        self.origin + elapsed
    }
}

#[derive(Debug, Default)]
struct Journal {
    watched: BTreeSet<String>,
    entries: Vec<JournalEntry>,
}

/// A ListObjectVersions answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct VersionListing {
    /// (key, version, is the key's latest), in S3's order.
    pub entries: Vec<(String, Version, bool)>,
    /// Where the next page starts (key, version id) when truncated.
    pub next: Option<(String, String)>,
}

/// A ListObjectsV2 answer.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ObjectListing {
    pub objects: Vec<(String, Version)>,
    pub common_prefixes: Vec<String>,
    /// Continue after this key or common prefix, when truncated.
    pub next: Option<String>,
}

/// What DeleteObjects did to one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    pub key: String,
    pub version_id: Option<String>,
    /// The entry removed, or the one created, is a delete marker.
    pub delete_marker: bool,
    pub delete_marker_version_id: Option<String>,
}

#[derive(Debug, Default)]
pub struct Store {
    buckets: Mutex<HashMap<String, Bucket>>,
    seq: AtomicU64,
    journal: Mutex<Journal>,
    clock: Mutex<Clock>,
    /// Clocks of their own, by bucket (simulations side by side each run their own time).
    clocks: Mutex<HashMap<String, Clock>>,
}

/// Whole seconds, as S3 lists them.
fn whole_seconds(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(0).unwrap_or(t)
}

fn real_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or_default()
}

pub fn etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Md5::digest(body)))
}

/// The smallest string greater than every string that starts with `s`.
pub fn successor(s: &str) -> Option<String> {
    let mut chars: Vec<char> = s.chars().collect();
    while let Some(c) = chars.pop() {
        let mut n = c as u32 + 1;
        if (0xD800..=0xDFFF).contains(&n) {
            n = 0xE000;
        }
        if let Some(next) = char::from_u32(n) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bucket>> {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lab's time now (virtual when the clock was set).
    pub fn now(&self) -> OffsetDateTime {
        self.clock.lock().unwrap_or_else(|p| p.into_inner()).now()
    }

    /// The time in `bucket`: its own clock's, else the lab's.
    pub fn now_in(&self, bucket: &str) -> OffsetDateTime {
        let clocks = self.clocks.lock().unwrap_or_else(|p| p.into_inner());
        match clocks.get(bucket) {
            Some(c) => c.now(),
            None => self.now(),
        }
    }

    /// Sets the clock of `buckets` (all: the lab's own) to read `at` at real time `real` (now
    /// when absent), running `speed` times faster than real time. Two processes that share
    /// `real`, `at` and `speed` read the same time.
    pub fn set_clock(
        &self,
        at: OffsetDateTime,
        speed: f64,
        real: Option<SystemTime>,
        buckets: &[String],
    ) {
        let clock = Clock {
            real: real.unwrap_or_else(SystemTime::now),
            origin: at,
            speed: speed.max(0.0),
        };
        if buckets.is_empty() {
            *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = clock;
            return;
        }
        let mut clocks = self.clocks.lock().unwrap_or_else(|p| p.into_inner());
        for b in buckets {
            clocks.insert(b.clone(), clock);
        }
    }

    /// Starts journaling changes to `buckets` (in addition to those already watched).
    pub fn watch(&self, buckets: &[String]) {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        j.watched.extend(buckets.iter().cloned());
    }

    /// Journal lines from `since` (a sequence number) on.
    pub fn journal(&self, since: u64) -> Vec<JournalEntry> {
        let j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        let from = j.entries.partition_point(|e| e.seq < since);
        j.entries[from..].to_vec()
    }

    /// Records one change; called with the buckets' lock held, so the journal's order is the
    /// order the changes took effect in.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        actor: Actor,
        change: Change,
        bucket: &str,
        key: &str,
        v: &Version,
        at: OffsetDateTime,
    ) {
        let mut j = self.journal.lock().unwrap_or_else(|p| p.into_inner());
        if !j.watched.contains(bucket) {
            return;
        }
        let seq = j.entries.len() as u64 + 1;
        j.entries.push(JournalEntry {
            seq,
            at_ms: (at.unix_timestamp_nanos() / 1_000_000) as i64,
            real_us: real_us(),
            actor,
            change,
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: v.id.clone(),
            delete_marker: v.delete_marker,
            replica: v.replica,
            held: v.held,
            modified_ms: (v.modified.unix_timestamp_nanos() / 1_000_000) as i64,
        });
    }

    fn version_id(&self) -> String {
        // Increasing, fixed width, opaque enough: S3's ids are opaque strings too.
        format!("{:032x}", self.seq.fetch_add(1, Ordering::Relaxed) + 1)
    }

    pub fn create_bucket(&self, name: &str) -> Result<(), StoreError> {
        let mut b = self.lock();
        if b.contains_key(name) {
            return Err(StoreError::BucketExists);
        }
        b.insert(name.to_string(), Bucket::default());
        Ok(())
    }

    pub fn bucket_exists(&self, name: &str) -> bool {
        self.lock().contains_key(name)
    }

    pub fn set_versioning(&self, bucket: &str, status: &str) -> Result<(), StoreError> {
        let mut b = self.lock();
        let b = b.get_mut(bucket).ok_or(StoreError::NoSuchBucket)?;
        b.versioning = Some(status.to_string());
        Ok(())
    }

    pub fn versioning(&self, bucket: &str) -> Result<Option<String>, StoreError> {
        let b = self.lock();
        Ok(b.get(bucket)
            .ok_or(StoreError::NoSuchBucket)?
            .versioning
            .clone())
    }

    /// Writes a new version (versioned bucket) or replaces the null version. `if_none_match`:
    /// refuse when the key has a current object; `if_match`: refuse unless the current
    /// object's ETag is this one.
    pub fn put(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        if_none_match: bool,
        if_match: Option<&str>,
    ) -> Result<Version, StoreError> {
        self.write(
            Actor::Client,
            bucket,
            key,
            Write {
                body,
                if_none_match,
                if_match: if_match.map(str::to_string),
                ..Write::default()
            },
        )
    }

    /// Writes one entry: see [`Write`].
    pub fn write(
        &self,
        actor: Actor,
        bucket: &str,
        key: &str,
        w: Write,
    ) -> Result<Version, StoreError> {
        let id = self.version_id();
        let at = self.now_in(bucket);
        let mut b = self.lock();
        let b = b.get_mut(bucket).ok_or(StoreError::NoSuchBucket)?;
        let versioned = b.versioned();
        let versions = b.keys.entry(key.to_string()).or_default();
        let current = versions.first().filter(|v| !v.delete_marker);
        if w.if_none_match && current.is_some() {
            return Err(StoreError::PreconditionFailed);
        }
        if let Some(want) = &w.if_match {
            match current {
                None => return Err(StoreError::NoSuchKey),
                Some(v) if v.etag.trim_matches('"') != want.trim_matches('"') => {
                    return Err(StoreError::PreconditionFailed);
                }
                Some(_) => {}
            }
        }
        let id = match (&w.version_id, versioned && !w.null) {
            (Some(keep), _) => keep.clone(),
            (None, true) => id,
            (None, false) => "null".into(),
        };
        let v = Version {
            delete_marker: w.delete_marker,
            modified: whole_seconds(at - w.age),
            etag: if w.delete_marker {
                String::new()
            } else {
                etag(&w.body)
            },
            body: w.body,
            replica: w.replica,
            held: w.held,
            id,
        };
        versions.retain(|x| x.id != v.id);
        // Newest first; an entry written with an age goes where its time puts it.
        let at_pos = versions
            .iter()
            .position(|x| x.modified <= v.modified)
            .unwrap_or(versions.len());
        versions.insert(at_pos, v.clone());
        self.record(actor, Change::Put, bucket, key, &v, at);
        Ok(v)
    }

    /// The current object, or the given version.
    pub fn get(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Version, StoreError> {
        let b = self.lock();
        let b = b.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        let versions = b.keys.get(key).ok_or(StoreError::NoSuchKey)?;
        let v = match version_id {
            Some(id) => versions.iter().find(|v| v.id == id),
            None => versions.first(),
        };
        match v {
            Some(v) if !v.delete_marker => Ok(v.clone()),
            _ => Err(StoreError::NoSuchKey),
        }
    }

    /// The keys under `prefix` that `wanted` selects, each with the body of its version
    /// current at `at_ms` (skipping keys that were deleted or not yet written then).
    pub fn current_as_of(
        &self,
        bucket: &str,
        prefix: &str,
        at_ms: i64,
        wanted: impl Fn(&str) -> bool,
    ) -> Vec<(String, Bytes)> {
        let b = self.lock();
        let Some(b) = b.get(bucket) else {
            return Vec::new();
        };
        b.keys
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .filter(|(k, _)| wanted(k))
            .filter_map(|(k, vs)| {
                let v = vs
                    .iter()
                    .find(|v| (v.modified.unix_timestamp_nanos() / 1_000_000) as i64 <= at_ms)?;
                (!v.delete_marker).then(|| (k.clone(), v.body.clone()))
            })
            .collect()
    }

    /// Writes `body` as a new version of `key`, as DataSync's copy would.
    pub fn copy_in(&self, bucket: &str, key: &str, body: Bytes) -> Result<Version, StoreError> {
        self.write(
            Actor::DataSync,
            bucket,
            key,
            Write {
                body,
                ..Write::default()
            },
        )
    }

    /// Every entry of a bucket, key by key, newest first (the admin view: no pages).
    pub fn dump(&self, bucket: &str) -> Result<Vec<(String, Version)>, StoreError> {
        let b = self.lock();
        let b = b.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        Ok(b.keys
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.clone())))
            .collect())
    }

    /// Places or lifts a legal hold on one version.
    pub fn hold(
        &self,
        actor: Actor,
        bucket: &str,
        key: &str,
        version_id: &str,
        on: bool,
    ) -> Result<(), StoreError> {
        let at = self.now_in(bucket);
        let mut b = self.lock();
        let b = b.get_mut(bucket).ok_or(StoreError::NoSuchBucket)?;
        let v = b
            .keys
            .get_mut(key)
            .and_then(|vs| vs.iter_mut().find(|v| v.id == version_id))
            .ok_or(StoreError::NoSuchKey)?;
        v.held = on;
        let v = v.clone();
        let change = if on { Change::Hold } else { Change::Release };
        self.record(actor, change, bucket, key, &v, at);
        Ok(())
    }

    /// Removes one version (permanently), or adds a delete marker (no version id, versioned
    /// bucket), or removes the object (unversioned bucket).
    pub fn delete(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Deleted, StoreError> {
        self.delete_as(Actor::Client, bucket, key, version_id)
    }

    /// [`Store::delete`] on behalf of `actor`.
    pub fn delete_as(
        &self,
        actor: Actor,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Deleted, StoreError> {
        let marker_id = self.version_id();
        let at = self.now_in(bucket);
        let mut b = self.lock();
        let b = b.get_mut(bucket).ok_or(StoreError::NoSuchBucket)?;
        let versioned = b.versioned();
        let suspended = b.versioning.as_deref() == Some("Suspended");
        match version_id {
            Some(id) => {
                let mut was_marker = false;
                if let Some(versions) = b.keys.get_mut(key) {
                    if let Some(i) = versions.iter().position(|v| v.id == id) {
                        if versions[i].held {
                            let v = versions[i].clone();
                            self.record(actor, Change::Refused, bucket, key, &v, at);
                            return Err(StoreError::AccessDenied);
                        }
                        let v = versions.remove(i);
                        was_marker = v.delete_marker;
                        self.record(actor, Change::Delete, bucket, key, &v, at);
                    }
                    if versions.is_empty() {
                        b.keys.remove(key);
                    }
                }
                Ok(Deleted {
                    key: key.to_string(),
                    version_id: Some(id.to_string()),
                    delete_marker: was_marker,
                    delete_marker_version_id: was_marker.then(|| id.to_string()),
                })
            }
            None if versioned || suspended => {
                let id = if versioned { marker_id } else { "null".into() };
                let versions = b.keys.entry(key.to_string()).or_default();
                if suspended {
                    versions.retain(|v| v.id != "null");
                }
                let v = Version {
                    id: id.clone(),
                    delete_marker: true,
                    modified: whole_seconds(at),
                    etag: String::new(),
                    body: Bytes::new(),
                    replica: false,
                    held: false,
                };
                self.record(actor, Change::Put, bucket, key, &v, at);
                versions.insert(0, v);
                Ok(Deleted {
                    key: key.to_string(),
                    version_id: None,
                    delete_marker: true,
                    delete_marker_version_id: Some(id),
                })
            }
            None => {
                if let Some(vs) = b.keys.remove(key) {
                    for v in &vs {
                        self.record(actor, Change::Delete, bucket, key, v, at);
                    }
                }
                Ok(Deleted {
                    key: key.to_string(),
                    version_id: None,
                    delete_marker: false,
                    delete_marker_version_id: None,
                })
            }
        }
    }

    /// ListObjectVersions: keys under `prefix` in byte order, each key's versions newest
    /// first, starting after `key_marker` (or, with `version_marker`, after that version of
    /// it), at most `max` entries.
    pub fn list_versions(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        version_marker: Option<&str>,
        max: usize,
    ) -> Result<VersionListing, StoreError> {
        let b = self.lock();
        let b = b.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        let start: Bound<&str> = match (key_marker, version_marker) {
            (Some(k), _) if k < prefix => Bound::Included(prefix),
            (Some(k), Some(_)) => Bound::Included(k),
            (Some(k), None) => Bound::Excluded(k),
            (None, _) => Bound::Included(prefix),
        };
        let mut out = VersionListing::default();
        let mut first = true;
        for (key, versions) in b.keys.range::<str, _>((start, Bound::Unbounded)) {
            if !key.starts_with(prefix) {
                break;
            }
            // The marker key's versions up to the marker version were on the previous page.
            // A marker version that is gone by now restarts the key: an entry seen twice is
            // harmless, one never seen is not.
            let from = match (first, key_marker, version_marker) {
                (true, Some(k), Some(v)) if k == key => {
                    versions.iter().position(|x| x.id == v).map_or(0, |i| i + 1)
                }
                _ => 0,
            };
            first = false;
            for (i, v) in versions.iter().enumerate().skip(from) {
                if out.entries.len() == max {
                    out.next = out
                        .entries
                        .last()
                        .map(|(k, v, _)| (k.clone(), v.id.clone()));
                    return Ok(out);
                }
                out.entries.push((key.clone(), v.clone(), i == 0));
            }
        }
        Ok(out)
    }

    /// ListObjectsV2: current objects under `prefix` after `start_after`, grouped under
    /// `delimiter` into common prefixes, at most `max` entries (objects and prefixes).
    pub fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<ObjectListing, StoreError> {
        let b = self.lock();
        let b = b.get(bucket).ok_or(StoreError::NoSuchBucket)?;
        let mut out = ObjectListing::default();
        let mut cursor: Bound<String> = match start_after {
            Some(s) if s >= prefix => match delimiter.filter(|d| s.ends_with(*d)) {
                // A common prefix returned earlier: resume after everything under it.
                Some(_) => match successor(s) {
                    Some(next) => Bound::Included(next),
                    None => return Ok(out),
                },
                None => Bound::Excluded(s.to_string()),
            },
            _ => Bound::Included(prefix.to_string()),
        };
        'outer: loop {
            let range = b
                .keys
                .range::<String, _>((cursor.clone(), Bound::Unbounded));
            for (key, versions) in range {
                if !key.starts_with(prefix) {
                    break 'outer;
                }
                let rest = &key[prefix.len()..];
                if let Some(d) = delimiter.filter(|d| !d.is_empty())
                    && let Some(i) = rest.find(d)
                {
                    let cp = format!("{prefix}{}", &rest[..i + d.len()]);
                    if out.objects.len() + out.common_prefixes.len() == max {
                        out.next = last_of(&out);
                        return Ok(out);
                    }
                    out.common_prefixes.push(cp.clone());
                    match successor(&cp) {
                        Some(next) => {
                            cursor = Bound::Included(next);
                            continue 'outer;
                        }
                        None => break 'outer,
                    }
                }
                let Some(current) = versions.first().filter(|v| !v.delete_marker) else {
                    continue;
                };
                if out.objects.len() + out.common_prefixes.len() == max {
                    out.next = last_of(&out);
                    return Ok(out);
                }
                out.objects.push((key.clone(), current.clone()));
            }
            break;
        }
        Ok(out)
    }

    /// Seeds `count` keys `prefix` + zero-padded index + `suffix`, each with `versions`
    /// versions and optionally a delete marker on top, all `age_seconds` old.
    #[allow(clippy::too_many_arguments)]
    pub fn seed(
        &self,
        bucket: &str,
        prefix: &str,
        start: u64,
        count: u64,
        width: usize,
        suffix: &str,
        versions: usize,
        delete_marker: bool,
        age_seconds: i64,
    ) -> usize {
        let modified = whole_seconds(self.now_in(bucket) - time::Duration::seconds(age_seconds));
        let body = Bytes::from_static(b"{}");
        let tag = etag(&body);
        let mut entries = 0;
        let ids: Vec<String> = (0..count as usize * (versions + usize::from(delete_marker)))
            .map(|_| self.version_id())
            .collect();
        let mut ids = ids.into_iter().rev();
        let mut b = self.lock();
        let b = b.entry(bucket.to_string()).or_insert_with(|| Bucket {
            versioning: Some("Enabled".into()),
            ..Bucket::default()
        });
        for i in start..start + count {
            let key = format!("{prefix}{i:0width$}{suffix}");
            let list = b.keys.entry(key).or_default();
            let mut add = |marker: bool, id: Option<String>| {
                list.insert(
                    0,
                    Version {
                        id: id.unwrap_or_default(),
                        delete_marker: marker,
                        modified,
                        etag: if marker { String::new() } else { tag.clone() },
                        body: if marker { Bytes::new() } else { body.clone() },
                        replica: false,
                        held: false,
                    },
                );
            };
            for _ in 0..versions {
                add(false, ids.next());
            }
            if delete_marker {
                add(true, ids.next());
            }
            entries += versions + usize::from(delete_marker);
        }
        entries
    }
}

/// One write through the admin endpoint: a version (or delete marker) as S3, replication or
/// a person would leave it.
#[derive(Debug, Default)]
pub struct Write {
    pub body: Bytes,
    pub delete_marker: bool,
    /// Keep this version id (replication does).
    pub version_id: Option<String>,
    /// Mark it a replica (`x-amz-replication-status: REPLICA`).
    pub replica: bool,
    /// Under a legal hold from the start.
    pub held: bool,
    /// A `null` version, as written before versioning was enabled.
    pub null: bool,
    /// Older than now by this much.
    pub age: time::Duration,
    pub if_none_match: bool,
    pub if_match: Option<String>,
}

fn last_of(out: &ObjectListing) -> Option<String> {
    let obj = out.objects.last().map(|(k, _)| k.clone());
    let cp = out.common_prefixes.last().cloned();
    obj.into_iter().chain(cp).max()
}

#[cfg(test)]
mod tests;
