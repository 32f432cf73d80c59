//! The lean reader against the SDK's deserializer, on the same generated bodies.

use aws_sdk_s3::Client;
use aws_smithy_mocks::{mock, mock_client};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::http::StatusCode;
use proptest::prelude::*;

use super::*;

/// An entry to render: a delete marker or a version.
#[derive(Debug, Clone)]
struct Gen {
    marker: bool,
    key: String,
    version_id: Option<String>,
    millis: i64,
    whole_seconds: bool,
}

/// Keys a careless reader would get wrong: XML's special characters, characters XML 1.0
/// cannot carry (only sent encoded), `+` and space, composed and decomposed accents, `%`.
fn key() -> impl Strategy<Value = String> {
    proptest::string::string_regex(
        "[a-z0-9/._=+ %&<>\"'\u{1}\u{8}\u{b}\u{1f}\u{e9}\u{301}\u{fffe}\u{10348}-]{1,12}",
    )
    .unwrap()
}

fn entry() -> impl Strategy<Value = Gen> {
    (
        any::<bool>(),
        key(),
        proptest::option::of("[A-Za-z0-9._]{1,32}|null"),
        0i64..4_000_000_000_000,
        any::<bool>(),
    )
        .prop_map(|(marker, key, version_id, millis, whole_seconds)| Gen {
            marker,
            key,
            version_id,
            millis,
            whole_seconds,
        })
}

/// Characters XML 1.0 cannot carry: such a key is only ever sent encoded.
fn xml_safe(s: &str) -> bool {
    s.chars().all(|c| {
        matches!(c, '\t' | '\n' | '\r')
            || ('\u{20}'..='\u{d7ff}').contains(&c)
            || ('\u{e000}'..='\u{fffd}').contains(&c)
            || c >= '\u{10000}'
    })
}

fn escape(s: &str, char_refs: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if char_refs && !c.is_ascii_alphanumeric() => {
                out.push_str(&format!("&#x{:X};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn timestamp(millis: i64, whole_seconds: bool) -> String {
    let at = DateTime::<Utc>::from_timestamp_millis(millis).unwrap_or_default();
    match whole_seconds {
        true => at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        false => at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
    }
}

/// A page as S3 writes it, with the fields the reader skips around the ones it reads.
fn render(entries: &[Gen], url: bool, next: Option<(String, String)>, char_refs: bool) -> String {
    let key = |k: &str| match url {
        true => escape(&form_encode(k), false),
        false => escape(k, char_refs),
    };
    let mut x = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix><KeyMarker></KeyMarker><VersionIdMarker/>"#,
    );
    if let Some((k, v)) = &next {
        x.push_str(&format!(
            "<NextKeyMarker>{}</NextKeyMarker><NextVersionIdMarker>{}</NextVersionIdMarker>",
            key(k),
            escape(v, false)
        ));
    }
    x.push_str(&format!(
        "<MaxKeys>1000</MaxKeys><IsTruncated>{}</IsTruncated>",
        next.is_some()
    ));
    if url {
        x.push_str("<EncodingType>url</EncodingType>");
    }
    for e in entries {
        let tag = if e.marker { "DeleteMarker" } else { "Version" };
        let owner = "<Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID><DisplayName>x</DisplayName></Owner>";
        x.push_str(&format!("<{tag}>"));
        if e.marker {
            x.push_str(owner);
        }
        x.push_str(&format!("<Key>{}</Key>", key(&e.key)));
        if let Some(v) = &e.version_id {
            x.push_str(&format!("<VersionId>{}</VersionId>", escape(v, false)));
        }
        x.push_str(&format!(
            "<IsLatest>false</IsLatest><LastModified>{}</LastModified>",
            timestamp(e.millis, e.whole_seconds)
        ));
        if !e.marker {
            x.push_str(&format!(
                "<ETag>&quot;fba9dede5f27731c9771645a39863328&quot;</ETag><Size>434234</Size><StorageClass>STANDARD</StorageClass>{owner}<ChecksumAlgorithm>CRC32</ChecksumAlgorithm>"
            ));
        }
        x.push_str(&format!("</{tag}>"));
    }
    x.push_str("<CommonPrefixes><Prefix>p/a/</Prefix></CommonPrefixes></ListVersionsResult>");
    x
}

fn http(status: u16, body: String) -> HttpResponse {
    HttpResponse::new(
        StatusCode::try_from(status).unwrap_or_else(|_| StatusCode::try_from(500).unwrap()),
        SdkBody::from(body),
    )
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// The SDK's reading of `body`.
fn sdk(body: &str) -> ListObjectVersionsOutput {
    let body = body.to_string();
    let rule =
        mock!(Client::list_object_versions).then_http_response(move || http(200, body.clone()));
    let client = mock_client!(aws_sdk_s3, [&rule]);
    run(client.list_object_versions().bucket("b").send()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_lean_reader_reads_what_the_sdk_reads(
        entries in proptest::collection::vec(entry(), 0..12),
        url in any::<bool>(),
        char_refs in any::<bool>(),
        next in proptest::option::of((key(), "[A-Za-z0-9._]{1,32}")),
    ) {
        // Unencoded, a key XML cannot carry cannot be sent at all (S3 answers an error).
        let sendable = |k: &str| url || xml_safe(k);
        prop_assume!(entries.iter().all(|e| sendable(&e.key)));
        prop_assume!(next.as_ref().is_none_or(|(k, _)| sendable(k)));
        let body = render(&entries, url, next, char_refs);
        let lean = parse(body.as_bytes()).map_err(|e| TestCaseError::fail(format!("{e}\n{body}")))?;
        let out = sdk(&body);
        prop_assert_eq!(&lean, &RawPage::from_sdk(&out), "{}", body);
        prop_assert_eq!(lean.versions.len() + lean.delete_markers.len(), entries.len());
    }
}

#[test]
fn a_successful_body_is_taken_and_the_sdk_reads_an_empty_page() {
    let body = render(
        &[Gen {
            marker: false,
            key: "a b+c".into(),
            version_id: Some("v1".into()),
            millis: 1_700_000_000_123,
            whole_seconds: false,
        }],
        true,
        None,
        false,
    );
    let served = body.clone();
    let rule =
        mock!(Client::list_object_versions).then_http_response(move || http(200, served.clone()));
    let client = mock_client!(aws_sdk_s3, [&rule]);
    let take = TakeBody::default();
    let out = run(client
        .list_object_versions()
        .bucket("b")
        .customize()
        .interceptor(take.clone())
        .send())
    .unwrap();
    assert!(out.versions().is_empty(), "the SDK read the empty page");
    let taken = take.take().expect("the body was taken");
    let bytes = taken.bytes().expect("an in-memory body").to_vec();
    assert_eq!(bytes, body.into_bytes());
    let page = parse(&bytes).unwrap();
    assert!(page.url_encoded);
    assert_eq!(page.versions[0].key.as_deref(), Some("a+b%2Bc"));
}

#[test]
fn an_error_response_is_left_to_the_sdk() {
    let rule = mock!(Client::list_object_versions).then_http_response(|| {
        http(
            403,
            "<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>".into(),
        )
    });
    let client = mock_client!(aws_sdk_s3, [&rule]);
    let take = TakeBody::default();
    let err = run(client
        .list_object_versions()
        .bucket("b")
        .customize()
        .interceptor(take.clone())
        .send())
    .unwrap_err();
    assert!(format!("{:?}", err).contains("AccessDenied"), "{err:?}");
    assert!(take.take().is_none());
}

#[test]
fn what_is_not_a_listing_is_an_error() {
    for bad in [
        "",
        "OK",
        "   ",
        "{\"error\":\"x\"}",
        "<?xml version=\"1.0\"?>",
        "<Error/>",
        "<Error><Code>X</Code></Error>",
        "<ListVersionsResult/><ListVersionsResult/>",
        "<ListVersionsResult></ListVersionsResult>trailing",
        "<ListVersionsResult><IsTruncated> true</IsTruncated></ListVersionsResult>",
        "<ListVersionsResult><IsTruncated>True</IsTruncated></ListVersionsResult>",
        "<ListVersionsResult><IsTruncated/></ListVersionsResult>",
        "<ListVersionsResult><Version><Key>a</Key>",
        "<ListVersionsResult><Version><Key>a</Key><LastModified>yesterday</LastModified></Version></ListVersionsResult>",
        "<ListVersionsResult><Version><Key>a&bogus;</Key></Version></ListVersionsResult>",
    ] {
        assert!(parse(bad.as_bytes()).is_err(), "{bad}");
    }
    // An empty listing is one.
    let empty = parse(EMPTY_PAGE.as_bytes()).unwrap();
    assert_eq!(empty, RawPage::default());
    assert!(parse(b"<ListVersionsResult/>").is_ok());
}
