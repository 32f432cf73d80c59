//! A lean reader of ListObjectVersions' XML, for the sweep's hot path: only the fields a
//! listing page needs (each entry's key, version id and time; whether the page is truncated and
//! where the next starts; the encoding), without the SDK's model of every field. Profiled, the
//! SDK's deserializer was most of the CPU a sweep spends per page. The SDK still sends the
//! request (signing, retries, errors); [`TakeBody`] only takes a successful response's body
//! before the SDK would read it, and leaves it an empty page to read instead.
//!
//! A test parses generated pages both ways and compares ([`RawPage::from_sdk`]).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use aws_sdk_s3::operation::list_object_versions::ListObjectVersionsOutput;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeDeserializationInterceptorContextMut;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::ConfigBag;
use chrono::{DateTime, Utc};
use quick_xml::events::Event;
use quick_xml::name::QName;
use quick_xml::reader::Reader;

use super::to_chrono;

/// What the SDK reads instead of a taken body: a valid, empty page.
const EMPTY_PAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?><ListVersionsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"></ListVersionsResult>"#;

/// Takes the body of a successful response for [`parse`]; error responses stay the SDK's.
#[derive(Debug, Clone, Default)]
pub(crate) struct TakeBody(Arc<Mutex<Option<SdkBody>>>);

impl TakeBody {
    /// The body taken from the last successful attempt, if one was.
    pub(crate) fn take(&self) -> Option<SdkBody> {
        self.0.lock().ok().and_then(|mut b| b.take())
    }
}

impl Intercept for TakeBody {
    fn name(&self) -> &'static str {
        "TakeListingBody"
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let response = context.response_mut();
        // Swapped only with the slot in hand: a body the SDK does not read must reach the
        // caller, or the empty page would be read as the listing.
        if response.status().is_success()
            && let Ok(mut slot) = self.0.lock()
        {
            *slot = Some(std::mem::replace(
                response.body_mut(),
                SdkBody::from(EMPTY_PAGE),
            ));
        }
        Ok(())
    }
}

/// One version or delete marker as listed (its key still encoded if the page says so).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawEntry<'a> {
    pub key: Option<Cow<'a, str>>,
    pub version_id: Option<Cow<'a, str>>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// A ListObjectVersions page as listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawPage<'a> {
    /// `EncodingType` is `url`: keys and key markers are form-encoded.
    pub url_encoded: bool,
    pub truncated: bool,
    pub next_key_marker: Option<Cow<'a, str>>,
    pub next_version_id_marker: Option<Cow<'a, str>>,
    pub versions: Vec<RawEntry<'a>>,
    pub delete_markers: Vec<RawEntry<'a>>,
}

impl<'a> RawPage<'a> {
    /// The page as the SDK read it (a stubbed client in tests has no body to take).
    pub(crate) fn from_sdk(out: &'a ListObjectVersionsOutput) -> RawPage<'a> {
        let raw = |k: Option<&'a str>,
                   v: Option<&'a str>,
                   t: Option<&aws_smithy_types::DateTime>| RawEntry {
            key: k.map(Cow::Borrowed),
            version_id: v.map(Cow::Borrowed),
            last_modified: t.and_then(to_chrono),
        };
        RawPage {
            url_encoded: out.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url),
            truncated: out.is_truncated() == Some(true),
            next_key_marker: out.next_key_marker().map(Cow::Borrowed),
            next_version_id_marker: out.next_version_id_marker().map(Cow::Borrowed),
            versions: out
                .versions()
                .iter()
                .map(|v| raw(v.key(), v.version_id(), v.last_modified()))
                .collect(),
            delete_markers: out
                .delete_markers()
                .iter()
                .map(|m| raw(m.key(), m.version_id(), m.last_modified()))
                .collect(),
        }
    }
}

/// Where the reader is in the document.
#[derive(Clone, Copy, PartialEq, Eq)]
enum In {
    Result,
    Version,
    DeleteMarker,
}

/// The fields read; every other element is skipped whole.
#[derive(Clone, Copy)]
enum Field {
    EncodingType,
    IsTruncated,
    NextKeyMarker,
    NextVersionIdMarker,
    Key,
    VersionId,
    LastModified,
}

fn field(parent: In, name: &[u8]) -> Option<Field> {
    Some(match (parent, name) {
        (In::Result, b"EncodingType") => Field::EncodingType,
        (In::Result, b"IsTruncated") => Field::IsTruncated,
        (In::Result, b"NextKeyMarker") => Field::NextKeyMarker,
        (In::Result, b"NextVersionIdMarker") => Field::NextVersionIdMarker,
        (In::Version | In::DeleteMarker, b"Key") => Field::Key,
        (In::Version | In::DeleteMarker, b"VersionId") => Field::VersionId,
        (In::Version | In::DeleteMarker, b"LastModified") => Field::LastModified,
        _ => return None,
    })
}

/// Reads a ListObjectVersions response body. Anything but one `ListVersionsResult` element
/// (an empty body, text, another root) is an error: read as an empty page, it would say the
/// listed keys are gone.
pub(crate) fn parse(body: &[u8]) -> Result<RawPage<'_>, String> {
    let mut reader = Reader::from_reader(body);
    let mut page = RawPage::default();
    let mut path: Vec<In> = Vec::with_capacity(2);
    let mut entry = RawEntry::default();
    let mut rooted = false;
    loop {
        match reader.read_event().map_err(|e| at(&reader, e))? {
            Event::Start(e) => {
                let name = e.name();
                let Some(&parent) = path.last() else {
                    root(&e, rooted)?;
                    rooted = true;
                    path.push(In::Result);
                    continue;
                };
                match (parent, name.local_name().as_ref()) {
                    (In::Result, b"Version") => path.push(In::Version),
                    (In::Result, b"DeleteMarker") => path.push(In::DeleteMarker),
                    (_, n) => match field(parent, n) {
                        Some(f) => {
                            let value = text(&mut reader, name)?;
                            set(f, value, &mut page, &mut entry)?;
                        }
                        None => {
                            reader.read_to_end(name).map_err(|e| at(&reader, e))?;
                        }
                    },
                }
            }
            Event::Empty(e) => match path.last() {
                None => {
                    root(&e, rooted)?;
                    rooted = true;
                }
                Some(p) => {
                    if let Some(f) = field(*p, e.name().local_name().as_ref()) {
                        set(f, Cow::Borrowed(""), &mut page, &mut entry)?;
                    }
                }
            },
            Event::End(_) => match path.pop() {
                Some(In::Version) => page.versions.push(std::mem::take(&mut entry)),
                Some(In::DeleteMarker) => page.delete_markers.push(std::mem::take(&mut entry)),
                _ => {}
            },
            Event::Text(t) if path.is_empty() && !t.iter().all(u8::is_ascii_whitespace) => {
                return Err(at(&reader, "text outside the root element"));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    match (rooted, path.is_empty()) {
        (true, true) => Ok(page),
        (false, _) => Err("no <ListVersionsResult> element: not a version listing".into()),
        (true, false) => Err("the document ends inside an element".into()),
    }
}

/// The root element: one, and a `ListVersionsResult`.
fn root(e: &quick_xml::events::BytesStart<'_>, rooted: bool) -> Result<(), String> {
    let name = e.name();
    if rooted {
        return Err("a second root element".into());
    }
    if name.local_name().as_ref() != b"ListVersionsResult" {
        return Err(format!(
            "the root element is <{}>, not <ListVersionsResult>",
            String::from_utf8_lossy(name.as_ref())
        ));
    }
    Ok(())
}

fn set<'a>(
    f: Field,
    value: Cow<'a, str>,
    page: &mut RawPage<'a>,
    entry: &mut RawEntry<'a>,
) -> Result<(), String> {
    match f {
        Field::EncodingType => page.url_encoded = value == "url",
        // Strictly: a page read as the last one by mistake ends the listing early.
        Field::IsTruncated => {
            page.truncated = match &*value {
                "true" => true,
                "false" => false,
                other => return Err(format!("IsTruncated is `{other}`, not true or false")),
            }
        }
        Field::NextKeyMarker => page.next_key_marker = Some(value),
        Field::NextVersionIdMarker => page.next_version_id_marker = Some(value),
        Field::Key => entry.key = Some(value),
        Field::VersionId => entry.version_id = Some(value),
        Field::LastModified => {
            let at = DateTime::parse_from_rfc3339(&value)
                .map_err(|e| format!("LastModified `{value}` is not a timestamp: {e}"))?;
            entry.last_modified = Some(at.with_timezone(&Utc));
        }
    }
    Ok(())
}

/// The text of the element just started, entities resolved; borrowed from the body unless
/// an entity had to be.
fn text<'a>(reader: &mut Reader<&'a [u8]>, name: QName<'_>) -> Result<Cow<'a, str>, String> {
    let raw = reader.read_text(name).map_err(|e| at(reader, e))?;
    let raw = raw.decode().map_err(|e| at(reader, e))?;
    let bad = |e: quick_xml::escape::EscapeError| {
        format!("<{}>: {e}", String::from_utf8_lossy(name.as_ref()))
    };
    match raw {
        Cow::Borrowed(b) => quick_xml::escape::unescape(b).map_err(bad),
        Cow::Owned(o) => Ok(Cow::Owned(
            quick_xml::escape::unescape(&o).map_err(bad)?.into_owned(),
        )),
    }
}

fn at(reader: &Reader<&[u8]>, e: impl std::fmt::Display) -> String {
    format!(
        "not a valid listing at byte {}: {e}",
        reader.buffer_position()
    )
}

#[cfg(test)]
mod tests;
