//! The fields of a trace event: a short list of named values, in the order they were added.
//!
//! An event has about a dozen fields and every key is a name known when dispel is compiled, so
//! a vector of `(&'static str, Value)` pairs does what a JSON map would without allocating a
//! `String` per key or hashing it: building events is on the hot path of both the server and
//! replay (docs/performance.md). Lookups are linear, which at this size is faster than a hash.
//!
//! A field can also hold JSON text as it came off the wire ([`Fields::insert_raw`]): a
//! Socket.IO packet's data is checked to be JSON and written out as it was sent, without
//! building a tree of values only to serialize it again. [`Fields::get`] sees only the other
//! fields; [`Fields::json`] sees both.

use std::borrow::Cow;
use std::ops::Index;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Fields {
    items: Vec<(&'static str, Item)>,
}

#[derive(Debug, Clone)]
enum Item {
    Value(Value),
    /// Valid JSON text, kept as it was.
    Raw(Box<RawValue>),
}

impl Item {
    fn json(&self) -> Cow<'_, Value> {
        match self {
            Item::Value(v) => Cow::Borrowed(v),
            // Checked JSON, read as a Value would be when it was decoded
            // (`socketio::Packet::decode_raw`): this does not fail.
            Item::Raw(r) => Cow::Owned(serde_json::from_str(r.get()).unwrap_or(Value::Null)),
        }
    }
}

/// Fields are equal when their values are, however they are held.
impl PartialEq for Fields {
    fn eq(&self, other: &Fields) -> bool {
        self.items.len() == other.items.len()
            && self
                .items
                .iter()
                .zip(&other.items)
                .all(|((ka, a), (kb, b))| ka == kb && a.json() == b.json())
    }
}

static NULL: Value = Value::Null;

impl Fields {
    pub fn with_capacity(n: usize) -> Fields {
        Fields {
            items: Vec::with_capacity(n),
        }
    }

    /// Sets `key` to `value`: replaces an existing field in place, else appends.
    pub fn insert(&mut self, key: &'static str, value: impl Into<Value>) {
        self.set(key, Item::Value(value.into()));
    }

    /// Appends a field whose key is not there yet (checked in debug builds).
    pub fn push(&mut self, key: &'static str, value: impl Into<Value>) {
        debug_assert!(!self.contains_key(key), "field {key} set twice");
        self.items.push((key, Item::Value(value.into())));
    }

    /// Sets `key` to JSON text, written out as it is.
    pub fn insert_raw(&mut self, key: &'static str, json: Box<RawValue>) {
        self.set(key, Item::Raw(json));
    }

    fn set(&mut self, key: &'static str, item: Item) {
        match self.items.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = item,
            None => self.items.push((key, item)),
        }
    }

    fn item(&self, key: &str) -> Option<&Item> {
        self.items.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// A field held as a value (not one held as JSON text: see [`Fields::json`]).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self.item(key)? {
            Item::Value(v) => Some(v),
            Item::Raw(_) => None,
        }
    }

    /// Any field as a value (JSON text is parsed).
    pub fn json(&self, key: &str) -> Option<Cow<'_, Value>> {
        self.item(key).map(Item::json)
    }

    /// Any field as compact JSON text, for comparing and showing.
    pub fn json_text(&self, key: &str) -> Option<Cow<'_, str>> {
        match self.item(key)? {
            Item::Value(v) => Some(Cow::Owned(v.to_string())),
            Item::Raw(r) => Some(Cow::Borrowed(r.get())),
        }
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.item(key).is_some()
    }

    /// Every field, JSON text parsed.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Cow<'_, Value>)> {
        self.items.iter().map(|(k, v)| (*k, v.json()))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The fields as a JSON object, written into `out` (the same bytes as serializing them).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (k, v)) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            super::json::write_str(out, k);
            out.push(b':');
            match v {
                Item::Value(v) => super::json::write_value(out, v),
                Item::Raw(r) => out.extend_from_slice(r.get().as_bytes()),
            }
        }
        out.push(b'}');
    }

    /// The fields as a JSON object (for consumers that want a `Value`).
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.into_owned()))
            .collect()
    }
}

/// `fields["key"]` is `Value::Null` when the field is absent, as for a JSON object (or held as
/// JSON text: see [`Fields::json`]).
impl Index<&str> for Fields {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

impl Serialize for Fields {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.items.len()))?;
        for (k, v) in &self.items {
            match v {
                Item::Value(v) => map.serialize_entry(k, v)?,
                Item::Raw(r) => map.serialize_entry(k, r)?,
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_replaces_in_place_and_serializes_as_an_object() {
        let mut f = Fields::with_capacity(2);
        f.insert("b", 1);
        f.insert("a", "x");
        f.insert("b", true);
        assert_eq!(f.len(), 2);
        assert_eq!(f["b"], true);
        assert_eq!(f["missing"], Value::Null);
        assert!(f.contains_key("a") && !f.contains_key("c"));
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"b":true,"a":"x"}"#);
        assert_eq!(
            Value::Object(f.to_map()),
            serde_json::json!({"b": true, "a": "x"})
        );
    }

    #[test]
    fn raw_json_is_written_as_it_came_and_parsed_on_request() {
        let text = r#"["bid", {"note":"caf\u00e9", "n":1.50}]"#;
        let mut f = Fields::default();
        f.insert("type", "EVENT");
        f.insert_raw("data", RawValue::from_string(text.to_string()).unwrap());
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            format!(r#"{{"type":"EVENT","data":{text}}}"#)
        );
        assert_eq!(f.get("data"), None);
        assert!(f.contains_key("data"));
        assert_eq!(
            f.json("data").unwrap().into_owned(),
            serde_json::json!(["bid", {"note": "café", "n": 1.5}])
        );
        assert_eq!(f.json_text("data").unwrap(), text);
        let mut written = Vec::new();
        f.write_json(&mut written);
        assert_eq!(written, serde_json::to_vec(&f).unwrap());
        let mut g = Fields::default();
        g.insert("type", "EVENT");
        g.insert(
            "data",
            serde_json::json!(["bid", {"note": "café", "n": 1.5}]),
        );
        assert_eq!(f, g);
    }
}
