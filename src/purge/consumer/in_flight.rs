//! Keys being decided for messages in flight: a second message for the same key shares the
//! running decision while its listings have not started.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

use crate::health::TaskHandle;
use crate::purge::delete::Hold;
use crate::purge::event::RemovalEvent;
use crate::purge::outcome::{KeyOutcome, PurgeError};
use crate::purge::purger::{KeyRequest, Purger};

pub(super) type KeyResult = Result<KeyOutcome, PurgeError>;

/// A decision in flight.
pub(super) struct Running {
    id: u64,
    decision: Shared<BoxFuture<'static, KeyResult>>,
    /// Set once its listings started: from then on it may predate a message's delete.
    started: Arc<AtomicBool>,
}

/// Decisions in flight, by key and (in `mirror-versions`) the version the event says the
/// source lost: a message shares one only while its listings have not started.
#[derive(Default)]
pub(super) struct InFlightKeys {
    running: Mutex<HashMap<(String, Option<String>), Running>>,
    ids: AtomicU64,
}

impl InFlightKeys {
    pub(super) fn purge(
        self: &Arc<Self>,
        purger: &Arc<Purger>,
        health: &TaskHandle,
        event: &RemovalEvent,
        lost_version: Option<String>,
        message_id: &str,
        hold: Hold,
    ) -> Shared<BoxFuture<'static, KeyResult>> {
        let slot = (event.key.clone(), lost_version);
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let before = match running.get(&slot) {
            // Waiting for another message's decision takes no slot.
            Some(r) if !r.started.load(Ordering::SeqCst) => return r.decision.clone(),
            Some(r) => Some(r.decision.clone()),
            None => None,
        };
        let id = self.ids.fetch_add(1, Ordering::Relaxed);
        let started = Arc::new(AtomicBool::new(false));
        let (this, purger, slot2, started2) =
            (self.clone(), purger.clone(), slot.clone(), started.clone());
        let (reason, origin) = (event.event_name.as_str(), message_id.to_string());
        let tracked = health.track("purge_key", purger.target.uri(&event.key));
        let decision = async move {
            // The running decision may have read the source before this message's delete:
            // this one starts after it.
            if let Some(b) = before {
                let _ = b.await;
            }
            let (key, lost) = &slot2;
            let mut req = KeyRequest::new(key, reason, &origin);
            req.lost_version = lost.as_deref();
            req.hold = Some(hold);
            req.listing_started = Some(started2);
            let r = purger.decide(req).await;
            drop(tracked);
            let mut running = this.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.get(&slot2).is_some_and(|r| r.id == id) {
                running.remove(&slot2);
            }
            r
        }
        .boxed()
        .shared();
        running.insert(
            slot,
            Running {
                id,
                decision: decision.clone(),
                started,
            },
        );
        decision
    }
}
