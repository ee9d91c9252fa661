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
//!
//! Events that differ only in a few fields (the copies of one broadcast, each decoded for its
//! own recipient) can share them ([`Fields::share`], [`Fields::joined`]): a head (what one
//! connection's events have in common, its session id) and a tail (what one broadcast's
//! copies have in common), each built and rendered as JSON once and held by reference. Reading
//! a shared field is like reading any other; changing one gives the event its own copy first.

use std::borrow::Cow;
use std::ops::Index;
use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

#[derive(Debug, Clone, Default)]
pub struct Fields {
    /// Fields held with other events, in order before `items`.
    head: Option<Arc<Shared>>,
    items: Vec<(&'static str, Item)>,
    /// Fields held with other events, in order after `items`.
    shared: Option<Arc<Shared>>,
}

/// Fields several events hold, with their JSON rendered once.
#[derive(Debug)]
pub struct Shared {
    /// Never itself sharing (`head` and `shared` are `None`).
    fields: Fields,
    /// `"key":value` pairs, comma-separated, without braces.
    json: Box<str>,
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
        self.len() == other.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((ka, a), (kb, b))| ka == kb && a == b)
    }
}

static NULL: Value = Value::Null;

impl Fields {
    pub fn with_capacity(n: usize) -> Fields {
        Fields {
            head: None,
            items: Vec::with_capacity(n),
            shared: None,
        }
    }

    /// These fields, rendered, to be held by several events.
    pub fn share(mut self) -> Arc<Shared> {
        self.unshare();
        let mut json = Vec::with_capacity(256);
        self.write_pairs(&mut json);
        Arc::new(Shared {
            fields: self,
            // Rendered from `&str`s and JSON text: UTF-8.
            json: String::from_utf8(json).unwrap_or_default().into_boxed_str(),
        })
    }

    /// Shared fields only: `head`'s, then `tail`'s.
    pub fn joined(head: Option<Arc<Shared>>, tail: Arc<Shared>) -> Fields {
        Fields {
            head,
            items: Vec::new(),
            shared: Some(tail),
        }
    }

    /// Whether both hold the same shared fields (not merely equal ones).
    #[cfg(test)]
    pub fn shares_with(&self, other: &Fields) -> bool {
        match (&self.shared, &other.shared) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Takes a copy of the shared fields, so that this event's can change.
    fn unshare(&mut self) {
        if let Some(head) = self.head.take() {
            let own = std::mem::take(&mut self.items);
            self.items = head.fields.items.clone();
            self.items.extend(own);
        }
        if let Some(shared) = self.shared.take() {
            self.items.extend(shared.fields.items.iter().cloned());
        }
    }

    /// Sets `key` to `value`: replaces an existing field in place, else appends.
    pub fn insert(&mut self, key: &'static str, value: impl Into<Value>) {
        self.set(key, Item::Value(value.into()));
    }

    /// Appends a field whose key is not there yet (checked in debug builds).
    pub fn push(&mut self, key: &'static str, value: impl Into<Value>) {
        debug_assert!(!self.contains_key(key), "field {key} set twice");
        self.unshare();
        self.items.push((key, Item::Value(value.into())));
    }

    /// Sets `key` to JSON text, written out as it is.
    pub fn insert_raw(&mut self, key: &'static str, json: Box<RawValue>) {
        self.set(key, Item::Raw(json));
    }

    /// Takes a field out; whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        self.unshare();
        let before = self.items.len();
        self.items.retain(|(k, _)| *k != key);
        self.items.len() < before
    }

    fn set(&mut self, key: &'static str, item: Item) {
        self.unshare();
        match self.items.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = item,
            None => self.items.push((key, item)),
        }
    }

    fn item(&self, key: &str) -> Option<&Item> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Every field in order: the head's, the own ones, the tail's.
    fn pairs(&self) -> impl Iterator<Item = &(&'static str, Item)> {
        fn part(s: &Option<Arc<Shared>>) -> &[(&'static str, Item)] {
            s.as_deref().map_or(&[], |s| s.fields.items.as_slice())
        }
        part(&self.head)
            .iter()
            .chain(&self.items)
            .chain(part(&self.shared))
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
        self.pairs().map(|(k, v)| (*k, v.json()))
    }

    pub fn len(&self) -> usize {
        let part = |s: &Option<Arc<Shared>>| s.as_ref().map_or(0, |s| s.fields.items.len());
        part(&self.head) + self.items.len() + part(&self.shared)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The fields as a JSON object, written into `out` (the same bytes as serializing them).
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        let start = out.len();
        let shared = |out: &mut Vec<u8>, part: &Option<Arc<Shared>>| {
            if let Some(s) = part.as_deref().filter(|s| !s.json.is_empty()) {
                if out.len() > start {
                    out.push(b',');
                }
                out.extend_from_slice(s.json.as_bytes());
            }
        };
        shared(out, &self.head);
        if !self.items.is_empty() {
            if out.len() > start {
                out.push(b',');
            }
            self.write_pairs(out);
        }
        shared(out, &self.shared);
        out.push(b'}');
    }

    /// The own fields' `"key":value` pairs.
    fn write_pairs(&self, out: &mut Vec<u8>) {
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
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.pairs() {
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

    #[test]
    fn shared_fields_read_render_and_change_like_own_ones() {
        let mut tail = Fields::default();
        tail.insert("type", "EVENT");
        tail.insert_raw(
            "data",
            RawValue::from_string(r#"["bid",1]"#.into()).unwrap(),
        );
        let shared = tail.share();
        let mut head = Fields::default();
        head.insert("sid", "abc");
        let head = head.share();
        let f = Fields::joined(Some(head.clone()), shared.clone());
        let mut plain = Fields::default();
        plain.insert("sid", "abc");
        plain.insert("type", "EVENT");
        plain.insert_raw(
            "data",
            RawValue::from_string(r#"["bid",1]"#.into()).unwrap(),
        );
        assert_eq!(f, plain);
        assert_eq!(f.len(), 3);
        assert_eq!(f["type"], "EVENT");
        assert_eq!(f.json_text("data").unwrap(), r#"["bid",1]"#);
        let keys: Vec<_> = f.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["sid", "type", "data"]);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        f.write_json(&mut a);
        plain.write_json(&mut b);
        assert_eq!(a, b);
        assert_eq!(a, serde_json::to_vec(&f).unwrap());
        // No head: the tail alone.
        let bare = Fields::joined(None, shared.clone());
        let mut c = Vec::new();
        bare.write_json(&mut c);
        assert_eq!(c, br#"{"type":"EVENT","data":["bid",1]}"#);
        // A change to one event leaves the others as they were, and keeps the order.
        let mut g = f.clone();
        g.insert("type", "ACK");
        g.insert("extra", 1);
        assert_eq!(g["type"], "ACK");
        assert_eq!(f["type"], "EVENT");
        assert_eq!(
            serde_json::to_string(&g).unwrap(),
            r#"{"sid":"abc","type":"ACK","data":["bid",1],"extra":1}"#
        );
        let empty = Fields::default().share();
        let mut d = Vec::new();
        Fields::joined(Some(empty.clone()), empty.clone()).write_json(&mut d);
        assert_eq!(d, b"{}");
        d.clear();
        Fields::joined(Some(head), empty).write_json(&mut d);
        assert_eq!(d, br#"{"sid":"abc"}"#);
    }
}
