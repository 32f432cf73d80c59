use super::*;

fn store() -> Store {
    let s = Store::default();
    s.create_bucket("b").unwrap();
    s.set_versioning("b", "Enabled").unwrap();
    s
}

fn put(s: &Store, key: &str) -> String {
    s.put("b", key, Bytes::from_static(b"x"), false, None)
        .unwrap()
        .id
}

/// Every entry under `prefix`, page by page of `max`, following the markers as the SDK does.
fn all(s: &Store, prefix: &str, max: usize) -> (Vec<(String, String)>, usize) {
    let mut out = Vec::new();
    let mut marker: Option<(String, String)> = None;
    let mut pages = 0;
    loop {
        let page = s
            .list_versions(
                "b",
                prefix,
                marker.as_ref().map(|m| m.0.as_str()),
                marker.as_ref().map(|m| m.1.as_str()),
                max,
            )
            .unwrap();
        pages += 1;
        out.extend(page.entries.into_iter().map(|(k, v, _)| (k, v.id)));
        match page.next {
            Some(n) => marker = Some(n),
            None => return (out, pages),
        }
    }
}

#[test]
fn version_pages_follow_markers_without_loss_or_repeat() {
    let s = store();
    let mut want = Vec::new();
    for key in ["a", "a.txt", "a.txt.bak", "b/1", "b/2"] {
        let mut ids: Vec<String> = (0..3).map(|_| put(&s, key)).collect();
        ids.reverse(); // newest first
        want.extend(ids.into_iter().map(|id| (key.to_string(), id)));
    }
    for max in 1..=16 {
        let (got, pages) = all(&s, "", max);
        assert_eq!(got, want, "max {max}");
        assert_eq!(pages, want.len().div_ceil(max), "max {max}");
    }
    let (got, _) = all(&s, "a.txt", 2);
    assert_eq!(got.len(), 6, "prefix a.txt: the key and its look-alike");
    assert!(got.iter().all(|(k, _)| k.starts_with("a.txt")));
    // A key marker alone starts after the key, as S3 does.
    let page = s.list_versions("b", "", Some("a.txt"), None, 100).unwrap();
    assert_eq!(page.entries[0].0, "a.txt.bak");
    assert!(page.entries[0].2, "the newest version is the latest");
}

#[test]
fn deletes_markers_and_permanent_deletes() {
    let s = store();
    let v1 = put(&s, "k");
    let d = s.delete("b", "k", None).unwrap();
    assert!(d.delete_marker);
    assert_eq!(s.get("b", "k", None), Err(StoreError::NoSuchKey));
    assert!(s.get("b", "k", Some(&v1)).is_ok());
    let marker = d.delete_marker_version_id.unwrap();
    let d = s.delete("b", "k", Some(&marker)).unwrap();
    assert!(d.delete_marker);
    assert!(
        s.get("b", "k", None).is_ok(),
        "the marker gone, v1 is current again"
    );
    s.delete("b", "k", Some(&v1)).unwrap();
    assert!(all(&s, "", 10).0.is_empty(), "nothing left of the key");
    // Deleting a version that does not exist is not an error (S3 is idempotent).
    assert!(s.delete("b", "k", Some("nope")).is_ok());
}

#[test]
fn conditional_writes() {
    let s = Store::default();
    s.create_bucket("st").unwrap();
    let v = s
        .put("st", "c", Bytes::from_static(b"1"), true, None)
        .unwrap();
    assert_eq!(v.id, "null", "unversioned bucket");
    assert_eq!(
        s.put("st", "c", Bytes::from_static(b"2"), true, None),
        Err(StoreError::PreconditionFailed)
    );
    assert_eq!(
        s.put("st", "c", Bytes::from_static(b"2"), false, Some("\"nope\"")),
        Err(StoreError::PreconditionFailed)
    );
    assert!(
        s.put("st", "c", Bytes::from_static(b"2"), false, Some(&v.etag))
            .is_ok()
    );
    assert_eq!(
        s.put("st", "missing", Bytes::new(), false, Some(&v.etag)),
        Err(StoreError::NoSuchKey)
    );
    assert_eq!(
        s.get("st", "c", None).unwrap().body,
        Bytes::from_static(b"2")
    );
}

#[test]
fn object_listing_groups_common_prefixes_and_continues() {
    let s = store();
    for k in ["t/p1/a", "t/p1/b", "t/p2/a", "t/p3.json", "t/p4/x", "u/z"] {
        put(&s, k);
    }
    s.delete("b", "t/p3.json", None).unwrap();
    let l = s.list_objects("b", "t/", Some("/"), None, 1000).unwrap();
    assert_eq!(l.common_prefixes, vec!["t/p1/", "t/p2/", "t/p4/"]);
    assert!(l.objects.is_empty(), "t/p3.json is deleted");
    // Page by page, one entry each.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let l = s
            .list_objects("b", "t/", Some("/"), after.as_deref(), 1)
            .unwrap();
        seen.extend(l.common_prefixes.clone());
        match l.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, vec!["t/p1/", "t/p2/", "t/p4/"]);
    let l = s.list_objects("b", "t/p1/", None, None, 1000).unwrap();
    let keys: Vec<&str> = l.objects.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, vec!["t/p1/a", "t/p1/b"]);
}

#[test]
fn seeding_makes_versions_and_markers_in_order() {
    let s = Store::default();
    let n = s.seed("big", "p/part-", 0, 3, 4, ".json", 2, true, 60);
    assert_eq!(n, 9);
    let page = s.list_versions("big", "p/", None, None, 1000).unwrap();
    let keys: Vec<&str> = page.entries.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(keys[0], "p/part-0000.json");
    assert_eq!(keys.len(), 9);
    assert!(page.entries[0].1.delete_marker, "the marker is the newest");
    assert!(page.entries[0].2);
    assert!(!page.entries[1].1.delete_marker);
}

#[test]
fn successor_bounds_a_prefix() {
    assert_eq!(successor("a/").as_deref(), Some("a0"));
    assert_eq!(successor("").as_deref(), None);
    assert!(successor("t/p1/").unwrap().as_str() > "t/p1/\u{10FFFF}zz");
}
