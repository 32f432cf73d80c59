//! A lean reader of ListObjectVersions' XML, for the sweep's hot path: only the fields a
//! listing page needs (each entry's key, version id and time; whether the page is truncated and
//! where the next starts; the encoding), without the SDK's model of every field. Profiled, the
//! SDK's deserializer was most of the CPU a sweep spends per page. The SDK still sends the
//! request (signing, retries, errors); [`TakeBody`] only takes a successful response's body
//! before the SDK would read it, and leaves it an empty page to read instead.
//!
//! A test parses generated pages both ways and compares ([`RawPage::from_sdk`]).

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
        if response.status().is_success() {
            let body = std::mem::replace(response.body_mut(), SdkBody::from(EMPTY_PAGE));
            if let Ok(mut slot) = self.0.lock() {
                *slot = Some(body);
            }
        }
        Ok(())
    }
}

/// One version or delete marker as listed (its key still encoded if the page says so).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawEntry {
    pub key: Option<String>,
    pub version_id: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// A ListObjectVersions page as listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RawPage {
    /// `EncodingType` is `url`: keys and key markers are form-encoded.
    pub url_encoded: bool,
    pub truncated: bool,
    pub next_key_marker: Option<String>,
    pub next_version_id_marker: Option<String>,
    pub versions: Vec<RawEntry>,
    pub delete_markers: Vec<RawEntry>,
}

impl RawPage {
    /// The page as the SDK read it (a stubbed client in tests has no body to take).
    pub(crate) fn from_sdk(out: &ListObjectVersionsOutput) -> RawPage {
        let raw =
            |k: Option<&str>, v: Option<&str>, t: Option<&aws_smithy_types::DateTime>| RawEntry {
                key: k.map(str::to_string),
                version_id: v.map(str::to_string),
                last_modified: t.and_then(to_chrono),
            };
        RawPage {
            url_encoded: out.encoding_type() == Some(&aws_sdk_s3::types::EncodingType::Url),
            truncated: out.is_truncated() == Some(true),
            next_key_marker: out.next_key_marker().map(str::to_string),
            next_version_id_marker: out.next_version_id_marker().map(str::to_string),
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

/// Reads a ListObjectVersions response body.
pub(crate) fn parse(body: &[u8]) -> Result<RawPage, String> {
    let mut reader = Reader::from_reader(body);
    let mut page = RawPage::default();
    let mut path: Vec<In> = Vec::with_capacity(2);
    let mut entry = RawEntry::default();
    loop {
        match reader.read_event().map_err(|e| at(&reader, e))? {
            Event::Start(e) => {
                let name = e.name();
                let Some(&parent) = path.last() else {
                    if name.as_ref() != b"ListVersionsResult" {
                        return Err(format!(
                            "the root element is <{}>, not <ListVersionsResult>",
                            String::from_utf8_lossy(name.as_ref())
                        ));
                    }
                    path.push(In::Result);
                    continue;
                };
                match (parent, name.as_ref()) {
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
            Event::Empty(e) => {
                if let Some(f) = path.last().and_then(|p| field(*p, e.name().as_ref())) {
                    set(f, String::new(), &mut page, &mut entry)?;
                }
            }
            Event::End(_) => match path.pop() {
                Some(In::Version) => page.versions.push(std::mem::take(&mut entry)),
                Some(In::DeleteMarker) => page.delete_markers.push(std::mem::take(&mut entry)),
                _ => {}
            },
            Event::Eof => break,
            _ => {}
        }
    }
    match path.is_empty() {
        true => Ok(page),
        false => Err("the document ends inside an element".into()),
    }
}

fn set(f: Field, value: String, page: &mut RawPage, entry: &mut RawEntry) -> Result<(), String> {
    match f {
        Field::EncodingType => page.url_encoded = value == "url",
        Field::IsTruncated => page.truncated = value == "true",
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

/// The text of the element just started, entities resolved.
fn text(reader: &mut Reader<&[u8]>, name: QName<'_>) -> Result<String, String> {
    let raw = reader.read_text(name).map_err(|e| at(reader, e))?;
    let raw = raw.decode().map_err(|e| at(reader, e))?;
    quick_xml::escape::unescape(&raw)
        .map(|s| s.into_owned())
        .map_err(|e| format!("<{}>: {e}", String::from_utf8_lossy(name.as_ref())))
}

fn at(reader: &Reader<&[u8]>, e: impl std::fmt::Display) -> String {
    format!(
        "not a valid listing at byte {}: {e}",
        reader.buffer_position()
    )
}

#[cfg(test)]
mod tests;
