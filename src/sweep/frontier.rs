//! Where a prefix's walk may resume (pure): the checkpoint never passes an orphan that is
//! not decided yet, and names per side the last key known to stay there.

use super::lease::Checkpoint;
use crate::aws::s3::Entry;
use crate::merge::Joined;

/// Where the walk may resume: the last key before which everything is settled, and per side
/// the last key there known to stay (a purged target key is gone, so it is no marker).
#[derive(Debug, Default)]
pub(crate) struct Frontier {
    /// Last key scanned, and the last keys seen on each side (candidates excluded on the
    /// target side until they are known not to be purged).
    scanned: Option<String>,
    source: Option<String>,
    target: Option<String>,
    /// Candidates in flight, in walk order: (key, source marker, target marker before it).
    pending: std::collections::VecDeque<(String, Option<String>, Option<String>)>,
    /// The checkpoint as of the last settled candidate.
    settled: Option<Checkpoint>,
}

impl Frontier {
    pub(crate) fn resume(from: Option<Checkpoint>) -> Self {
        let mut f = Frontier::default();
        if let Some(c) = from {
            f.scanned = Some(c.after.clone());
            f.source = c.source_marker.clone();
            f.target = c.target_marker.clone();
            f.settled = Some(c);
        }
        f
    }

    pub(crate) fn plain<T>(&mut self, j: &Joined<Entry, T>) {
        set(&mut self.scanned, &j.key);
        if !j.left.is_empty() {
            set(&mut self.source, &j.key);
        }
        if !j.right.is_empty() {
            set(&mut self.target, &j.key);
        }
    }

    pub(crate) fn candidate<T>(&mut self, j: &Joined<Entry, T>) {
        set(&mut self.scanned, &j.key);
        if !j.left.is_empty() {
            set(&mut self.source, &j.key);
        }
        self.pending
            .push_back((j.key.clone(), self.source.clone(), self.target.clone()));
    }

    /// A candidate was decided (they are decided in walk order).
    pub(crate) fn decided(&mut self, key: &str, purged: bool) {
        if let Some((k, source, target)) = self.pending.pop_front() {
            debug_assert_eq!(k, key);
            self.settled = Some(Checkpoint {
                after: k.clone(),
                source_marker: source,
                target_marker: if purged { target } else { Some(k) },
            });
        }
    }

    /// The checkpoint to write: the scan frontier when nothing is in flight, else the last
    /// settled candidate.
    pub(crate) fn checkpoint(&self, idle: bool) -> Option<Checkpoint> {
        if idle && self.pending.is_empty() {
            return self.scanned.as_ref().map(|after| Checkpoint {
                after: after.clone(),
                source_marker: self.source.clone(),
                target_marker: self.target.clone(),
            });
        }
        self.settled.clone()
    }
}

/// `slot` becomes `key`, in the buffer it has: this runs for every key walked.
fn set(slot: &mut Option<String>, key: &str) {
    match slot {
        Some(s) => {
            s.clear();
            s.push_str(key);
        }
        None => *slot = Some(key.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(key: &str, src: bool, tgt: bool) -> Joined<Entry, Entry> {
        let e = |k: &str| Entry {
            key: k.into(),
            version_id: "v".into(),
            delete_marker: false,
            last_modified: None,
        };
        Joined {
            key: key.into(),
            left: if src { vec![e(key)] } else { vec![] },
            right: if tgt { vec![e(key)] } else { vec![] },
            left_dropped: 0,
            right_dropped: 0,
        }
    }

    #[test]
    fn the_checkpoint_never_passes_an_undecided_orphan() {
        let mut f = Frontier::default();
        f.plain(&j("a", true, true));
        f.candidate(&j("b", false, true));
        f.plain(&j("c", true, true));
        f.candidate(&j("d", false, true));
        f.plain(&j("e", true, false));
        // b and d in flight: nothing settled yet, no checkpoint past them.
        assert_eq!(f.checkpoint(false), None);
        // b purged: resume after b; the target marker is a (b is gone), the source's a.
        f.decided("b", true);
        let c = f.checkpoint(false).unwrap();
        assert_eq!(c.after, "b");
        assert_eq!(
            (c.source_marker.as_deref(), c.target_marker.as_deref()),
            (Some("a"), Some("a"))
        );
        // d kept: it stays in the target and can be the target's marker.
        f.decided("d", false);
        let c = f.checkpoint(false).unwrap();
        assert_eq!(
            (c.after.as_str(), c.target_marker.as_deref()),
            ("d", Some("d"))
        );
        // Nothing in flight: the scan frontier, e.
        let c = f.checkpoint(true).unwrap();
        assert_eq!(c.after, "e");
        assert_eq!(
            (c.source_marker.as_deref(), c.target_marker.as_deref()),
            (Some("e"), Some("c"))
        );
    }
}
