//! The trace event: one observed step of one connection.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

use serde_json::Value;

use super::Fields;
pub use crate::stage::{Dir, Kind, Stage};

/// The value of an HTTP header in an event's `headers` field (`[[name, value], ...]`, in wire
/// order): the first of that name, compared without case.
pub fn header<'a>(headers: Option<&'a Value>, name: &str) -> Option<&'a str> {
    headers?
        .as_array()?
        .iter()
        .filter_map(Value::as_array)
        .find(|h| {
            h.first()
                .and_then(Value::as_str)
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
        .and_then(|h| h.get(1)?.as_str())
}

/// One trace event. `seq` is assigned by the writer, in output order.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub t: f64,
    pub conn: Option<u64>,
    pub dir: Option<Dir>,
    pub stage: Stage,
    pub summary: Summary,
    pub fields: Fields,
    /// Which source-chain variant applies (e.g. the Engine.IO packet type), for the links.
    pub kind: Option<Kind>,
}

impl Event {
    pub fn new(
        stage: Stage,
        t: f64,
        conn: Option<u64>,
        dir: Option<Dir>,
        summary: String,
    ) -> Event {
        Event {
            t,
            conn,
            dir,
            stage,
            summary: Summary::from(summary),
            // Room for a typical event's fields, so the list does not grow as it fills.
            fields: Fields::with_capacity(12),
            kind: None,
        }
    }

    /// Adds a field (builder style). The key must be new: builders name each field once, and
    /// skipping the look-up matters on the hot path (`fields.insert` replaces).
    pub fn with(mut self, key: &'static str, value: impl Into<Value>) -> Event {
        self.fields.push(key, value);
        self
    }

    pub fn kind(mut self, kind: Kind) -> Event {
        self.kind = Some(kind);
        self
    }

    /// A text field; `None` when absent or not text.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// A whole-number field.
    pub fn number(&self, key: &str) -> Option<u64> {
        self.fields.get(key).and_then(Value::as_u64)
    }

    /// A true/false field.
    pub fn flag(&self, key: &str) -> Option<bool> {
        self.fields.get(key).and_then(Value::as_bool)
    }

    /// An Engine.IO or Socket.IO packet's type as the trace names it (`EVENT`, `PING`...).
    pub fn packet_type(&self) -> Option<&str> {
        self.text("type")
    }

    /// A Socket.IO event's name.
    pub fn event_name(&self) -> Option<&str> {
        self.text("event")
    }

    /// The Socket.IO namespace, `/` when the event names none.
    pub fn nsp(&self) -> &str {
        self.text("nsp").unwrap_or("/")
    }

    /// The Engine.IO session id, once known.
    pub fn sid(&self) -> Option<&str> {
        self.text("sid")
    }
}

/// An event's one-line summary, read as a `str`. The copies of one broadcast share theirs
/// ([`Summary::share`]), with its JSON form rendered once for all of them.
#[derive(Clone, Default)]
pub struct Summary {
    /// The text, when not shared.
    own: String,
    shared: Option<Arc<SharedSummary>>,
}

struct SharedSummary {
    text: String,
    /// `text` as a JSON string, quotes included.
    json: Box<str>,
}

impl Summary {
    /// This summary, to be held by several events.
    pub fn share(self) -> Summary {
        if self.shared.is_some() {
            return self;
        }
        let mut json = Vec::with_capacity(self.own.len() + 8);
        super::json::write_str(&mut json, &self.own);
        Summary {
            own: String::new(),
            shared: Some(Arc::new(SharedSummary {
                text: self.own,
                // Written from a `&str`: UTF-8.
                json: String::from_utf8(json).unwrap_or_default().into_boxed_str(),
            })),
        }
    }

    /// The text, to change (a shared summary is copied first).
    pub fn to_mut(&mut self) -> &mut String {
        if let Some(s) = self.shared.take() {
            self.own = s.text.clone();
        }
        &mut self.own
    }

    /// Writes the summary as a JSON string.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        match &self.shared {
            Some(s) => out.extend_from_slice(s.json.as_bytes()),
            None => super::json::write_str(out, &self.own),
        }
    }
}

impl Deref for Summary {
    type Target = str;
    fn deref(&self) -> &str {
        match &self.shared {
            Some(s) => &s.text,
            None => &self.own,
        }
    }
}

impl From<String> for Summary {
    fn from(own: String) -> Summary {
        Summary { own, shared: None }
    }
}

impl From<&str> for Summary {
    fn from(text: &str) -> Summary {
        Summary::from(text.to_string())
    }
}

impl PartialEq for Summary {
    fn eq(&self, other: &Summary) -> bool {
        **self == **other
    }
}

impl PartialEq<str> for Summary {
    fn eq(&self, other: &str) -> bool {
        **self == *other
    }
}

impl PartialEq<&str> for Summary {
    fn eq(&self, other: &&str) -> bool {
        **self == **other
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_summary_reads_renders_and_changes_like_an_own_one() {
        let text = "EVENT / \"replaced values\" [{\"bid\":3}] café";
        let own = Summary::from(text);
        let shared = Summary::from(text).share();
        let copy = shared.clone();
        assert_eq!(&*shared, text);
        assert_eq!(shared, own);
        assert_eq!(format!("{shared}"), text);
        assert_eq!(format!("{shared:?}"), format!("{text:?}"));
        let (mut a, mut b) = (Vec::new(), Vec::new());
        shared.write_json(&mut a);
        own.write_json(&mut b);
        assert_eq!(a, b);
        assert_eq!(a, serde_json::to_vec(text).unwrap());
        // Changing one copy leaves the others as they were.
        let mut changed = shared.share();
        changed
            .to_mut()
            .push_str(" (capture starts mid-connection)");
        assert!(changed.ends_with("mid-connection)"));
        assert_eq!(&*copy, text);
        let mut c = Vec::new();
        changed.write_json(&mut c);
        assert_eq!(c, serde_json::to_vec(&*changed).unwrap());
    }
}
