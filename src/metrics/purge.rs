//! Permanent-delete propagation: event records, messages, listings and deletions.

use prometheus::{Histogram, IntGauge};

use super::family::{Counters, GaugeGuard, Registrar};
use crate::labels::{EntryKind, ListingMethod, MessageResult, PurgeOutcome};

#[derive(Clone)]
pub struct PurgeMetrics {
    events: Counters<PurgeOutcome>,
    deleted: Counters<EntryKind>,
    listings: Counters<ListingMethod>,
    lag: Histogram,
    messages: Counters<MessageResult>,
    in_flight: IntGauge,
    dlq_configured: IntGauge,
    dlq_messages: IntGauge,
    dlq_read_at: IntGauge,
}

impl PurgeMetrics {
    pub(crate) fn register(r: &mut Registrar) -> Result<Self, prometheus::Error> {
        Ok(PurgeMetrics {
            events: r.counters(
                "purge_events_total",
                "Event records handled by the purge consumer, by what became of each (result).",
                "result",
            )?,
            deleted: r.counters(
                "purge_target_entries_deleted_total",
                "Target entries deleted, by entry (version or delete_marker).",
                "entry",
            )?,
            listings: r.counters(
                "purge_listings_total",
                "Listings made to decide purges, one per side: per_key, range (keys asked for together), range_given_up (a sparse range, its keys then listed per key).",
                "method",
            )?,
            lag: r.histogram(
                "purge_lag_seconds",
                "Time from the event's eventTime to the purge being done.",
                &[
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
                    900.0, 3600.0,
                ],
            )?,
            messages: r.counters(
                "purge_messages_total",
                "SQS messages by result (deleted or failed).",
                "result",
            )?,
            in_flight: r.gauge(
                "purge_messages_in_flight",
                "SQS messages being processed now.",
            )?,
            dlq_configured: r.gauge(
                "purge_dlq_configured",
                "1 when the purge queue has a redrive policy (a dead-letter queue), else 0.",
            )?,
            dlq_messages: r.gauge(
                "purge_dlq_messages",
                "Messages in the purge queue's dead-letter queue (ApproximateNumberOfMessages, read every minute): each one a key nobody purged. 0 until read; see purge_dlq_last_read_timestamp_seconds.",
            )?,
            dlq_read_at: r.gauge(
                "purge_dlq_last_read_timestamp_seconds",
                "When the dead-letter queue's depth was last read (Unix time); 0 until it is. Stale while it cannot be read.",
            )?,
        })
    }

    pub(crate) fn record_handled(&self, outcome: PurgeOutcome) {
        self.events.inc(outcome);
    }

    /// A record was purged `seconds` after its eventTime.
    pub(crate) fn purged_after(&self, seconds: f64) {
        self.lag.observe(seconds.max(0.0));
    }

    pub(crate) fn listed(&self, method: ListingMethod) {
        self.listings.inc(method);
    }

    pub(crate) fn entry_deleted(&self, kind: EntryKind) {
        self.deleted.inc(kind);
    }

    pub(crate) fn messages_ended(&self, result: MessageResult, n: usize) {
        self.messages.inc_by(result, n as u64);
    }

    pub(crate) fn dlq_found(&self, configured: bool) {
        self.dlq_configured.set(i64::from(configured));
    }

    pub(crate) fn dlq_depth_read(&self, messages: u64, at: i64) {
        self.dlq_messages
            .set(i64::try_from(messages).unwrap_or(i64::MAX));
        self.dlq_read_at.set(at);
    }

    pub fn dlq_last_read(&self) -> i64 {
        self.dlq_read_at.get()
    }

    pub fn dlq_messages(&self) -> i64 {
        self.dlq_messages.get()
    }

    /// Counts `n` messages in flight until the guard is dropped.
    pub(crate) fn messages_in_flight(&self, n: usize) -> GaugeGuard {
        GaugeGuard::new(&self.in_flight, n as i64)
    }

    pub fn records(&self, outcome: PurgeOutcome) -> u64 {
        self.events.get(outcome)
    }

    pub fn deleted(&self, kind: EntryKind) -> u64 {
        self.deleted.get(kind)
    }

    pub fn listings(&self, method: ListingMethod) -> u64 {
        self.listings.get(method)
    }

    pub fn messages(&self, result: MessageResult) -> u64 {
        self.messages.get(result)
    }

    pub fn dlq_configured(&self) -> i64 {
        self.dlq_configured.get()
    }

    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }
}
