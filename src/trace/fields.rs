//! The fields of a trace event: a short list of named values, in the order they were added.
//!
//! An event has about a dozen fields and every key is a name known when dispel is compiled, so
//! a vector of `(&'static str, Value)` pairs does what a JSON map would without allocating a
//! `String` per key or hashing it: building events is on the hot path of both the server and
//! replay (docs/performance.md). Lookups are linear, which at this size is faster than a hash.

use std::ops::Index;

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields {
    items: Vec<(&'static str, Value)>,
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
        let value = value.into();
        match self.items.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => *v = value,
            None => self.items.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.items.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.items.iter().map(|(k, v)| (*k, v))
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The fields as a JSON object (for consumers that want a `Value`).
    pub fn to_map(&self) -> serde_json::Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }
}

/// `fields["key"]` is `Value::Null` when the field is absent, as for a JSON object.
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
            map.serialize_entry(k, v)?;
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
}
