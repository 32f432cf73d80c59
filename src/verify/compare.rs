//! The comparison itself, without I/O: joined keys in, counts and examples out.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::s3::Object;
use crate::merge::Joined;

/// Example keys kept per partition and per date.
pub const EXAMPLES: usize = 10;

/// One project's partition for one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub date: NaiveDate,
    pub project: String,
    /// The S3 key prefix, e.g. `topics/p1/year=2024/month=03/day=09/`.
    pub prefix: String,
    /// The DataSync include pattern that selects it.
    pub pattern: String,
}

/// What one partition holds on each side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionReport {
    pub date: NaiveDate,
    pub project: String,
    pub prefix: String,
    #[serde(flatten)]
    pub counts: Counts,
    /// Up to [`EXAMPLES`] keys missing from the target.
    pub missing_keys: Vec<String>,
    /// Up to [`EXAMPLES`] keys whose sizes differ.
    pub size_mismatched_keys: Vec<String>,
    #[serde(skip)]
    pub pattern: String,
}

impl PartitionReport {
    pub fn complete(&self) -> bool {
        self.counts.complete()
    }
}

/// Object counts of a partition or a date.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Source objects that should be in the target (late ones excluded).
    pub expected: u64,
    /// ...of which the target has one of the same size,
    pub present: u64,
    /// ...none,
    pub missing: u64,
    /// ...or one of another size.
    pub size_mismatched: u64,
    /// In the target only.
    pub extra: u64,
    /// Modified in the source after the execution started: not expected yet.
    pub late: u64,
}

impl Counts {
    pub fn complete(&self) -> bool {
        self.missing == 0 && self.size_mismatched == 0
    }

    pub(crate) fn add(&mut self, o: &Counts) {
        self.expected += o.expected;
        self.present += o.present;
        self.missing += o.missing;
        self.size_mismatched += o.size_mismatched;
        self.extra += o.extra;
        self.late += o.late;
    }
}

/// Accumulates one partition's joined keys.
#[derive(Debug)]
pub struct PartitionCompare {
    late_after: Option<DateTime<Utc>>,
    counts: Counts,
    missing: Vec<String>,
    mismatched: Vec<String>,
}

impl PartitionCompare {
    pub fn new(late_after: Option<DateTime<Utc>>) -> Self {
        PartitionCompare {
            late_after,
            counts: Counts::default(),
            missing: Vec::new(),
            mismatched: Vec::new(),
        }
    }

    /// Takes one key as listed in the source (left) and the target (right).
    pub(crate) fn add(&mut self, j: &Joined<Object, Object>) {
        let c = &mut self.counts;
        let Some(src) = j.left.first() else {
            c.extra += 1;
            return;
        };
        let late = match (self.late_after, src.last_modified) {
            (Some(cutoff), Some(t)) => t > cutoff,
            _ => false,
        };
        match j.right.first() {
            Some(tgt) if tgt.size == src.size => {
                c.expected += 1;
                c.present += 1;
            }
            // A late object may differ or be absent; it is looked at next time.
            _ if late => c.late += 1,
            Some(_) => {
                c.expected += 1;
                c.size_mismatched += 1;
                if self.mismatched.len() < EXAMPLES {
                    self.mismatched.push(j.key.clone());
                }
            }
            None => {
                c.expected += 1;
                c.missing += 1;
                if self.missing.len() < EXAMPLES {
                    self.missing.push(j.key.clone());
                }
            }
        }
    }

    pub fn finish(self, p: &Partition) -> PartitionReport {
        PartitionReport {
            date: p.date,
            project: p.project.clone(),
            prefix: p.prefix.clone(),
            counts: self.counts,
            missing_keys: self.missing,
            size_mismatched_keys: self.mismatched,
            pattern: p.pattern.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn obj(key: &str, size: i64, sec: u32) -> Object {
        Object {
            key: key.into(),
            size,
            last_modified: Some(Utc.with_ymd_and_hms(2024, 3, 9, 1, 0, sec).unwrap()),
        }
    }

    fn joined(key: &str, src: Option<Object>, tgt: Option<Object>) -> Joined<Object, Object> {
        Joined {
            key: key.into(),
            left: src.into_iter().collect(),
            right: tgt.into_iter().collect(),
            left_dropped: 0,
            right_dropped: 0,
        }
    }

    #[test]
    fn counts_every_case_and_keeps_examples() {
        let cutoff = Utc.with_ymd_and_hms(2024, 3, 9, 1, 0, 30).unwrap();
        let mut c = PartitionCompare::new(Some(cutoff));
        c.add(&joined("a", Some(obj("a", 10, 1)), Some(obj("a", 10, 2))));
        c.add(&joined("b", Some(obj("b", 10, 1)), Some(obj("b", 9, 2))));
        c.add(&joined("c", Some(obj("c", 10, 1)), None));
        c.add(&joined("d", None, Some(obj("d", 1, 1))));
        c.add(&joined("e", Some(obj("e", 10, 40)), None));
        c.add(&joined("f", Some(obj("f", 10, 40)), Some(obj("f", 5, 41))));
        c.add(&joined("g", Some(obj("g", 10, 40)), Some(obj("g", 10, 41))));
        let p = Partition {
            date: chrono::NaiveDate::from_ymd_opt(2024, 3, 8).unwrap(),
            project: "p".into(),
            prefix: "topics/p/".into(),
            pattern: "/topics/p/*".into(),
        };
        let r = c.finish(&p);
        assert_eq!(
            r.counts,
            Counts {
                expected: 4,
                present: 2,
                missing: 1,
                size_mismatched: 1,
                extra: 1,
                late: 2,
            }
        );
        assert_eq!(r.missing_keys, vec!["c"]);
        assert_eq!(r.size_mismatched_keys, vec!["b"]);
        assert!(!r.complete());
    }

    #[test]
    fn without_a_cutoff_nothing_is_late() {
        let mut c = PartitionCompare::new(None);
        for i in 0..15 {
            c.add(&joined(&format!("k{i:02}"), Some(obj("k", 1, 59)), None));
        }
        let r = c.finish(&Partition {
            date: chrono::NaiveDate::from_ymd_opt(2024, 3, 8).unwrap(),
            project: "p".into(),
            prefix: "topics/p/".into(),
            pattern: "/topics/p/*".into(),
        });
        assert_eq!(r.counts.missing, 15);
        assert_eq!(r.missing_keys.len(), EXAMPLES, "a few examples, not all");
    }
}
