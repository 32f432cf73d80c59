//! The layered reader behind [`super::Config::load`].
//!
//! Every key is read on its own, from the file's TOML value or from its `S3R__SECTION__KEY`
//! variable (the later layer wins), into the field's own type. A bad value is one problem with
//! its key path and leaves the field at its default; the key is remembered as failed so that
//! checks spanning several keys skip it instead of adding a false problem. Keys nobody read are
//! unknown keys. TOML values keep their TOML type (`wait_time = 5` is an integer, not the
//! string `"5"`); environment values are strings parsed strictly into the field's type
//! (booleans are `true`/`false`, numbers are digits, lists are comma-separated or a JSON array,
//! which can also say what commas cannot: `[""]`, an item with a comma, an empty list).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

/// One configuration problem, with the key path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Problems found so far, and the keys whose values could not be read.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub(crate) list: Vec<Problem>,
    failed: BTreeSet<String>,
}

impl Problems {
    pub(crate) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    fn push_failed(&mut self, key: &str, shown_as: String, message: String) {
        self.failed.insert(key.to_string());
        self.push(shown_as, message);
    }

    /// True when none of `keys` failed to parse, so a rule spanning them may be checked.
    pub(crate) fn ok(&self, keys: &[&str]) -> bool {
        keys.iter().all(|k| !self.failed.contains(*k))
    }
}

/// One section's raw inputs: the file's table and the section's environment variables.
pub(crate) struct SectionInput {
    name: &'static str,
    file: toml::Table,
    /// Field name (lowercase) → (variable name, raw value).
    env: BTreeMap<String, (String, String)>,
}

impl SectionInput {
    pub(crate) fn new(
        name: &'static str,
        file: toml::Table,
        env: BTreeMap<String, (String, String)>,
    ) -> Self {
        SectionInput { name, file, env }
    }

    fn path(&self, key: &str) -> String {
        format!("{}.{key}", self.name)
    }

    /// Reads `key` into `slot` (left untouched when the key is absent or bad).
    pub(crate) fn read<T: DeserializeOwned>(&mut self, key: &str, slot: &mut T, p: &mut Problems) {
        let path = self.path(key);
        if let Some(value) = self.file.remove(key) {
            match T::deserialize(value) {
                Ok(v) => *slot = v,
                Err(e) => p.push_failed(&path, path.clone(), e.message().trim().to_string()),
            }
        }
        if let Some((var, raw)) = self.env.remove(key) {
            match T::deserialize(EnvValue(&raw)) {
                Ok(v) => *slot = v,
                Err(e) => p.push_failed(&path, format!("{path} ({var})"), e.0),
            }
        }
    }

    /// Reads a human-readable duration (`30s`, `6h`).
    pub(crate) fn duration(&mut self, key: &str, slot: &mut Duration, p: &mut Problems) {
        let mut d = HumanDuration(*slot);
        self.read(key, &mut d, p);
        *slot = d.0;
    }

    /// Reports every key nobody read as unknown.
    pub(crate) fn finish(self, p: &mut Problems) {
        for key in self.file.keys() {
            p.push(format!("{}.{key}", self.name), "unknown key");
        }
        for (key, (var, _)) in &self.env {
            p.push(format!("{}.{key} ({var})", self.name), "unknown key");
        }
    }
}

/// A duration as written in configuration, through humantime.
struct HumanDuration(Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        humantime_serde::deserialize(d).map(HumanDuration)
    }
}

/// Reads one field per call, in order, from `$input` into `$target`: `read_fields!(input, p,
/// target; enabled, task_arn; durations: timeout, poll_interval)`.
macro_rules! read_fields {
    ($input:expr, $p:expr, $target:expr; $($field:ident),* $(,)? $(; durations: $($dur:ident),* $(,)?)?) => {{
        $( $input.read(stringify!($field), &mut $target.$field, $p); )*
        $( $( $input.duration(stringify!($dur), &mut $target.$dur, $p); )* )?
    }};
}
pub(crate) use read_fields;

/// An environment variable's value, parsed strictly into whatever type asks for it.
struct EnvValue<'a>(&'a str);

/// Why an environment value does not fit its field.
#[derive(Debug)]
struct EnvError(String);

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EnvError {}

impl de::Error for EnvError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        EnvError(msg.to_string())
    }
}

impl<'a> EnvValue<'a> {
    fn parse<T: std::str::FromStr>(&self, what: &str) -> Result<T, EnvError> {
        self.0
            .trim()
            .parse()
            .map_err(|_| EnvError(format!("`{}` is not {what}", self.0)))
    }
}

macro_rules! env_number {
    ($($method:ident => $visit:ident: $t:ty),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, v: V) -> Result<V::Value, EnvError> {
            v.$visit(self.parse::<$t>(concat!("a number (", stringify!($t), ")"))?)
        }
    )*};
}

impl<'de, 'a> de::Deserializer<'de> for EnvValue<'a> {
    type Error = EnvError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, EnvError> {
        v.visit_str(self.0)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, EnvError> {
        match self.0.trim() {
            "true" => v.visit_bool(true),
            "false" => v.visit_bool(false),
            _ => Err(EnvError(format!(
                "`{}` is not a boolean (use true or false)",
                self.0
            ))),
        }
    }

    env_number! {
        deserialize_i8 => visit_i8: i8, deserialize_i16 => visit_i16: i16,
        deserialize_i32 => visit_i32: i32, deserialize_i64 => visit_i64: i64,
        deserialize_u8 => visit_u8: u8, deserialize_u16 => visit_u16: u16,
        deserialize_u32 => visit_u32: u32, deserialize_u64 => visit_u64: u64,
        deserialize_f32 => visit_f32: f32, deserialize_f64 => visit_f64: f64,
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, EnvError> {
        v.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, EnvError> {
        v.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, EnvError> {
        if self.0.trim_start().starts_with('[') {
            let items = json_items(self.0)?;
            return v.visit_seq(de::value::SeqDeserializer::new(
                items.iter().map(|s| EnvValue(s)),
            ));
        }
        let items: Vec<EnvValue<'a>> = self
            .0
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(EnvValue)
            .collect();
        v.visit_seq(de::value::SeqDeserializer::new(items.into_iter()))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, EnvError> {
        let d: de::value::StrDeserializer<'_, EnvError> = self.0.into_deserializer();
        d.deserialize_enum(name, variants, v)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// A list given as a JSON array: each item as the text a comma-separated item would have been
/// (a string as itself, a number or boolean as written), so it is then parsed into the field's
/// type like any environment value.
fn json_items(raw: &str) -> Result<Vec<String>, EnvError> {
    let bad = |why: String| EnvError(format!("`{raw}` is not a JSON array of values: {why}"));
    let items: Vec<serde_json::Value> =
        serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => Ok(s),
            serde_json::Value::Number(n) => Ok(n.to_string()),
            serde_json::Value::Bool(b) => Ok(b.to_string()),
            other => Err(bad(format!(
                "item {other} is not a string, number or boolean"
            ))),
        })
        .collect()
}

impl<'de, 'a> IntoDeserializer<'de, EnvError> for EnvValue<'a> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

/// Splits `S3R__SECTION__KEY` variables by section. Variables of a wrong shape are problems.
pub(crate) fn env_sections(
    prefix: &str,
    vars: impl IntoIterator<Item = (String, String)>,
    p: &mut Problems,
) -> BTreeMap<String, BTreeMap<String, (String, String)>> {
    let lead = format!("{prefix}__");
    let mut out: BTreeMap<String, BTreeMap<String, (String, String)>> = BTreeMap::new();
    for (var, value) in vars {
        let Some(rest) = var.strip_prefix(&lead) else {
            continue;
        };
        match rest.split_once("__") {
            Some((section, key))
                if !section.is_empty() && !key.is_empty() && !key.contains("__") =>
            {
                out.entry(section.to_ascii_lowercase())
                    .or_default()
                    .insert(key.to_ascii_lowercase(), (var.clone(), value));
            }
            _ => p.push(
                var.clone(),
                format!("not of the form {prefix}__SECTION__KEY"),
            ),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroUsize;

    fn env(v: &str) -> EnvValue<'_> {
        EnvValue(v)
    }

    #[test]
    fn env_values_are_parsed_strictly() {
        assert!(bool::deserialize(env("true")).unwrap());
        assert!(!bool::deserialize(env("false")).unwrap());
        for bad in ["yes", "off", "1", "TRUE "] {
            let err = bool::deserialize(env(bad)).unwrap_err().to_string();
            assert!(err.contains("not a boolean"), "{bad}: {err}");
        }
        assert_eq!(u32::deserialize(env("42")).unwrap(), 42);
        assert!(u32::deserialize(env("abc")).is_err());
        assert!(u32::deserialize(env("-1")).is_err());
        assert!(NonZeroUsize::deserialize(env("0")).is_err());
        assert_eq!(
            Vec::<String>::deserialize(env("a, b,,c")).unwrap(),
            vec!["a", "b", "c"]
        );
        // What commas cannot say: the whole bucket, an item with a comma, an empty list.
        assert_eq!(
            Vec::<String>::deserialize(env(r#"[""]"#)).unwrap(),
            vec![""]
        );
        assert_eq!(
            Vec::<String>::deserialize(env(r#" ["a,b", " c "]"#)).unwrap(),
            vec!["a,b", " c "]
        );
        assert!(Vec::<String>::deserialize(env("[]")).unwrap().is_empty());
        assert_eq!(Vec::<u32>::deserialize(env("[1, 2]")).unwrap(), vec![1, 2]);
        for bad in [r#"["a""#, r#"[["a"]]"#, r#"[{"a":1}]"#, "[null]"] {
            let err = Vec::<String>::deserialize(env(bad))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("is not a JSON array of values"),
                "{bad}: {err}"
            );
        }
        assert!(Vec::<u32>::deserialize(env(r#"["x"]"#)).is_err());
        assert_eq!(
            Option::<String>::deserialize(env("x")).unwrap(),
            Some("x".into())
        );
        let d = HumanDuration::deserialize(env("90s")).unwrap();
        assert_eq!(d.0, Duration::from_secs(90));
        assert!(HumanDuration::deserialize(env("-1m")).is_err());
    }

    #[test]
    fn toml_types_are_reported_as_what_they_are() {
        let mut p = Problems::default();
        let mut table = toml::Table::new();
        table.insert("wait_time".into(), toml::Value::Integer(5));
        table.insert("enabled".into(), toml::Value::String("yes".into()));
        table.insert("extra".into(), toml::Value::Integer(1));
        let mut input = SectionInput::new("purge", table, BTreeMap::new());
        let mut wait = Duration::from_secs(20);
        let mut enabled = false;
        input.duration("wait_time", &mut wait, &mut p);
        input.read("enabled", &mut enabled, &mut p);
        input.finish(&mut p);
        let text: Vec<String> = p.list.iter().map(|x| x.to_string()).collect();
        assert!(
            text[0].starts_with("purge.wait_time: invalid type: integer `5`"),
            "{text:?}"
        );
        assert!(
            text[1].starts_with("purge.enabled: invalid type: string \"yes\""),
            "{text:?}"
        );
        assert_eq!(text[2], "purge.extra: unknown key");
        assert_eq!(
            wait,
            Duration::from_secs(20),
            "a bad value keeps the default"
        );
        assert!(!p.ok(&["purge.wait_time"]) && p.ok(&["purge.concurrency"]));
    }

    #[test]
    fn env_variables_are_split_by_section() {
        let mut p = Problems::default();
        let vars = [
            ("S3R__PURGE__QUEUE_URL", "q"),
            ("S3R__SYNC", "x"),
            ("S3R__A__B__C", "x"),
            ("OTHER", "x"),
            ("S3R_CONFIG", "f.toml"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let s = env_sections("S3R", vars, &mut p);
        assert_eq!(s["purge"]["queue_url"].1, "q");
        let keys: Vec<&str> = p.list.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys, vec!["S3R__SYNC", "S3R__A__B__C"]);
    }
}
