//! Listing exactly one key's versions and delete markers.
//!
//! S3 has no exact-key listing: `Prefix = key` also returns longer keys (`a.txt.bak`,
//! `a.txt/x`). [`ExactKey`] keeps only the key itself, follows every page, and stops at the
//! first longer key: keys come back in byte order and a key sorts before every key it is a
//! prefix of, so the first foreign key means all of ours have been seen.

use crate::aws::AwsError;
use crate::aws::s3::{Bucket, Marker, VersionPage};

use super::decide::KeyListing;

/// Collects one key's entries from the pages of a `Prefix = key` listing, up to `limit`.
#[derive(Debug)]
pub(crate) struct ExactKey<'a> {
    key: &'a str,
    limit: usize,
    listing: KeyListing,
}

impl<'a> ExactKey<'a> {
    pub fn new(key: &'a str, limit: usize) -> Self {
        ExactKey {
            key,
            limit,
            listing: KeyListing::complete(Vec::new()),
        }
    }

    /// Takes one page; returns where to continue, or `None` when the key is fully seen (or
    /// has more entries than `limit`, which leaves the listing incomplete).
    pub(crate) fn feed(&mut self, page: VersionPage) -> Option<Marker> {
        let mut past_key = false;
        for e in page.entries {
            if e.key != self.key {
                past_key = true;
                continue;
            }
            if self.listing.entries.len() == self.limit {
                self.listing.complete = false;
                return None;
            }
            self.listing.entries.push(e);
        }
        if past_key { None } else { page.next }
    }

    pub fn finish(self) -> KeyListing {
        self.listing
    }
}

/// Every version and delete marker of exactly `key` in `bucket`, at most `limit` of them.
pub(crate) async fn list_key(
    bucket: &Bucket,
    key: &str,
    limit: usize,
) -> Result<KeyListing, AwsError> {
    let mut collector = ExactKey::new(key, limit);
    let mut start: Option<Marker> = None;
    loop {
        let page = bucket.list_versions(key, start.as_ref()).await?;
        match collector.feed(page) {
            Some(next) => start = Some(next),
            None => return Ok(collector.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::s3::Entry;

    fn e(key: &str, v: &str) -> Entry {
        Entry {
            key: key.into(),
            version_id: v.into(),
            delete_marker: false,
            last_modified: None,
        }
    }

    fn page(entries: Vec<Entry>, next: Option<&str>) -> VersionPage {
        VersionPage {
            entries,
            next: next.map(|k| Marker {
                key: k.into(),
                version_id: Some("v".into()),
            }),
        }
    }

    #[test]
    fn follows_pages_until_a_longer_key_appears() {
        let mut c = ExactKey::new("a.txt", 100);
        let next = c.feed(page(vec![e("a.txt", "1"), e("a.txt", "2")], Some("a.txt")));
        assert!(next.is_some(), "the key may continue on the next page");
        let next = c.feed(page(
            vec![e("a.txt", "3"), e("a.txt.bak", "9")],
            Some("a.txt.bak"),
        ));
        assert!(next.is_none(), "a longer key means ours are all seen");
        let l = c.finish();
        assert!(l.complete);
        let ids: Vec<&str> = l.entries.iter().map(|e| e.version_id.as_str()).collect();
        assert_eq!(ids, vec!["1", "2", "3"]);
    }

    #[test]
    fn stops_at_the_limit_and_says_so() {
        let mut c = ExactKey::new("k", 2);
        assert!(
            c.feed(page(vec![e("k", "1"), e("k", "2")], Some("k")))
                .is_some()
        );
        assert!(c.feed(page(vec![e("k", "3")], Some("k"))).is_none());
        let l = c.finish();
        assert!(!l.complete);
        assert_eq!(l.entries.len(), 2);
        // Exactly `limit` entries is complete.
        let mut c = ExactKey::new("k", 2);
        assert!(c.feed(page(vec![e("k", "1"), e("k", "2")], None)).is_none());
        assert!(c.finish().complete);
    }
}
