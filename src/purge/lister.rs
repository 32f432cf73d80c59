//! Listing keys for their decisions: every key asked for is listed on both sides at once, and
//! keys asked for together under one directory share a range listing ([`coalesce`]).
//!
//! Requests are taken in rounds, with no timer: a round lists whatever is waiting when it
//! starts, and at most [`ROUNDS_IN_FLIGHT`] rounds run at once. A lone key is listed at once,
//! exactly as before coalescing; under a burst, keys queue while the running rounds list, and
//! the next round finds them together. A key waits at most for a running round to end.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::coalesce::{self, Group, RangeCollector, Step};
use super::decide::KeyListing;
use super::exact_key::list_key;
use crate::aws::AwsError;
use crate::aws::s3::{Bucket, Marker};
use crate::labels::ListingMethod;
use crate::metrics::Metrics;

/// Keys of one directory asked for together that share a range listing.
const MIN_GROUP: usize = 2;

/// Requests looked at once, at most.
const MAX_DRAIN: usize = 4096;

/// Rounds listing at once. One would leave S3 idle between rounds; two let a round gather
/// keys while the other lists, so a burst's keys arrive in few, large rounds.
const ROUNDS_IN_FLIGHT: usize = 2;

/// A key's listings on both sides, and when they started (the race guard's reference).
#[derive(Debug, Clone)]
pub(crate) struct Listings {
    pub source: KeyListing,
    pub target: KeyListing,
    pub started: DateTime<Utc>,
}

type Reply = oneshot::Sender<Result<Listings, Arc<AwsError>>>;

/// One key asked for: where to answer, and a flag to set when its listings start.
struct Request {
    key: String,
    reply: Reply,
    started: Option<Arc<AtomicBool>>,
}

/// A handle to the listing task; it ends when the last handle is dropped.
#[derive(Clone)]
pub(crate) struct Lister {
    tx: mpsc::UnboundedSender<Request>,
}

#[derive(Clone)]
struct Sides {
    source: Bucket,
    target: Bucket,
    limit: usize,
    metrics: Metrics,
}

impl Lister {
    /// `units`: listings (a key, or a group of keys) in flight at once. `limit`:
    /// `max_versions_per_key`. Must be called within a Tokio runtime.
    pub fn spawn(
        source: Bucket,
        target: Bucket,
        limit: usize,
        units: usize,
        metrics: Metrics,
    ) -> Lister {
        let (tx, rx) = mpsc::unbounded_channel();
        let sides = Sides {
            source,
            target,
            limit,
            metrics,
        };
        tokio::spawn(run(sides, units.max(1), rx));
        Lister { tx }
    }

    /// Both sides' listings of exactly `key`. `started` is set once the round that lists it
    /// has taken it, before any of its requests is sent.
    pub async fn list(
        &self,
        key: &str,
        started: Option<Arc<AtomicBool>>,
    ) -> Result<Listings, Arc<AwsError>> {
        let (reply, answer) = oneshot::channel();
        let stopped = || {
            Arc::new(AwsError::in_response(
                crate::labels::S3Op::ListObjectVersions.into(),
                key,
                crate::labels::ErrorKind::Other,
                None,
                "the listing task stopped",
            ))
        };
        self.tx
            .send(Request {
                key: key.to_string(),
                reply,
                started,
            })
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(sides: Sides, units: usize, mut rx: mpsc::UnboundedReceiver<Request>) {
    let slots = Arc::new(Semaphore::new(units));
    let rounds = Arc::new(Semaphore::new(ROUNDS_IN_FLIGHT));
    loop {
        // Room for a round first: while every round runs, requests wait in the channel.
        let Ok(round) = rounds.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut waiting: HashMap<String, Vec<Reply>> = HashMap::new();
        let mut next = Some(first);
        let mut n = 0;
        while let Some(r) = next.take() {
            if let Some(started) = r.started {
                started.store(true, Ordering::SeqCst);
            }
            waiting.entry(r.key).or_default().push(r.reply);
            n += 1;
            if n < MAX_DRAIN {
                next = rx.try_recv().ok();
            }
        }
        let (groups, singles) = coalesce::groups(waiting.keys().cloned().collect(), MIN_GROUP);
        let units: Vec<Unit> = groups
            .into_iter()
            .map(Unit::Group)
            .chain(singles.into_iter().map(Unit::Key))
            .collect();
        let (sides, slots) = (sides.clone(), slots.clone());
        tokio::spawn(async move {
            let listings = units.into_iter().map(|unit| {
                let replies: Vec<(String, Vec<Reply>)> = unit
                    .keys()
                    .iter()
                    .map(|k| (k.clone(), waiting.remove(k).unwrap_or_default()))
                    .collect();
                let (sides, slots) = (&sides, &slots);
                async move {
                    let Ok(_slot) = slots.acquire().await else {
                        return;
                    };
                    // Each unit answers as soon as it is listed, not at the round's end.
                    answer(replies, unit.list(sides).await);
                }
            });
            futures::future::join_all(listings).await;
            drop(round);
        });
    }
}

fn answer(
    replies: Vec<(String, Vec<Reply>)>,
    result: Result<BTreeMap<String, Listings>, Arc<AwsError>>,
) {
    for (key, senders) in replies {
        let r = match &result {
            Ok(listed) => listed.get(&key).cloned().ok_or_else(|| {
                Arc::new(AwsError::in_response(
                    crate::labels::S3Op::ListObjectVersions.into(),
                    key.clone(),
                    crate::labels::ErrorKind::Other,
                    None,
                    "no listing was made for the key",
                ))
            }),
            Err(e) => Err(e.clone()),
        };
        for s in senders {
            let _ = s.send(r.clone());
        }
    }
}

enum Unit {
    Key(String),
    Group(Group),
}

impl Unit {
    fn keys(&self) -> &[String] {
        match self {
            Unit::Key(k) => std::slice::from_ref(k),
            Unit::Group(g) => &g.keys,
        }
    }

    async fn list(&self, s: &Sides) -> Result<BTreeMap<String, Listings>, Arc<AwsError>> {
        let started = Utc::now();
        let (mut source, mut target) = match self {
            Unit::Key(key) => {
                let (source, target) = tokio::try_join!(
                    list_one(&s.source, key, s.limit, &s.metrics),
                    list_one(&s.target, key, s.limit, &s.metrics)
                )
                .map_err(Arc::new)?;
                (
                    BTreeMap::from([(key.clone(), source)]),
                    BTreeMap::from([(key.clone(), target)]),
                )
            }
            Unit::Group(g) => tokio::try_join!(
                list_group(&s.source, g, s.limit, &s.metrics),
                list_group(&s.target, g, s.limit, &s.metrics)
            )
            .map_err(Arc::new)?,
        };
        Ok(self
            .keys()
            .iter()
            .filter_map(|k| {
                let listings = Listings {
                    source: source.remove(k)?,
                    target: target.remove(k)?,
                    started,
                };
                Some((k.clone(), listings))
            })
            .collect())
    }
}

async fn list_one(
    bucket: &Bucket,
    key: &str,
    limit: usize,
    metrics: &Metrics,
) -> Result<KeyListing, AwsError> {
    metrics.purge.listed(ListingMethod::PerKey);
    list_key(bucket, key, limit).await
}

/// Every key of `g` listed on one side: one range listing, then the keys it gave up on, each
/// on its own (at once). The map has every key of the group.
async fn list_group(
    bucket: &Bucket,
    g: &Group,
    limit: usize,
    metrics: &Metrics,
) -> Result<BTreeMap<String, KeyListing>, AwsError> {
    let mut c = RangeCollector::new(&g.keys, limit);
    let mut start: Option<Marker> = None;
    loop {
        let page = bucket.list_versions(&g.prefix, start.as_ref()).await?;
        match c.feed(page) {
            Step::Next(m) => start = Some(m),
            Step::Done => {
                metrics.purge.listed(ListingMethod::Range);
                break;
            }
            Step::GiveUp => {
                metrics.purge.listed(ListingMethod::RangeGivenUp);
                break;
            }
        }
    }
    let (mut answered, rest) = c.finish();
    let listed =
        futures::future::try_join_all(rest.iter().map(|key| list_one(bucket, key, limit, metrics)))
            .await?;
    answered.extend(rest.into_iter().zip(listed));
    Ok(answered)
}
