//! The copies of one frame are decoded once.
//!
//! A broadcast reaches each recipient as the same bytes: one frame, which each recipient's
//! [`Session`](super::Session) would decode into the same events, differing only in the
//! connection, the time and the Engine.IO session id. With a thousand recipients that is a
//! thousand identical decodings of hex, summaries and JSON, and a thousand renderings of them
//! in the trace writer. Instead, the first copy is decoded as usual and its events are kept
//! here, their fields shared and rendered once ([`Fields::share`]); the next copies, byte for
//! byte the same frame, get those events with their own connection, time and sid.
//!
//! Only a frame whose events depend on nothing but its bytes is remembered: a whole
//! (unfragmented, uncompressed, unmasked) data frame, decoded while nothing was pending on its
//! side (no fragmented message, no binary attachments awaited), that changed nothing in the
//! session (not an Engine.IO OPEN, not a packet announcing attachments) and broke no rule. The
//! key holds the rest of what decoding depends on: the direction, the stages wanted and the
//! size limit.
//!
//! The memo belongs to whoever makes the sessions (the replay, the live server) and is passed
//! to each ([`Session::with_memo`](super::Session::with_memo)); a session without one decodes
//! every frame. The lock is taken once per whole data frame and is uncontended in a replay.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use crate::stage::Kind;
use crate::trace::{Dir, Event, Fields, Shared, Stage, Summary};

/// Frames remembered: the broadcast being written, and the pings and acks written in between.
const ENTRIES: usize = 8;

/// Larger frames are decoded each time (and are rare): the memo stays small.
pub(super) const MAX_FRAME: usize = 16 * 1024;

/// What decoding depends on besides the frame's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    pub dir: Dir,
    /// The session's interest mask: which events are built.
    pub interest: u32,
    pub max_message: usize,
}

/// One event of a remembered frame.
struct Decoded {
    stage: Stage,
    summary: Summary,
    kind: Option<Kind>,
    /// The stage carries the Engine.IO session id (when known), first among its fields.
    sid: bool,
    shared: Arc<Shared>,
}

impl Decoded {
    /// This event for one connection. `sid`: its session id field, if known.
    fn event(&self, key: &Key, conn: u64, t: f64, sid: Option<&Arc<Shared>>) -> Event {
        let head = sid.filter(|_| self.sid).cloned();
        Event {
            t,
            conn: Some(conn),
            dir: Some(key.dir),
            stage: self.stage,
            summary: self.summary.clone(),
            fields: Fields::joined(head, self.shared.clone()),
            kind: self.kind,
        }
    }
}

struct Entry {
    key: Key,
    frame: Box<[u8]>,
    events: Vec<Decoded>,
}

/// The frames decoded last, with their events. Shared by the sessions of one replay or one
/// server.
#[derive(Default)]
pub struct Memo {
    /// Most recently used first.
    entries: VecDeque<Entry>,
}

/// A memo as sessions hold it.
pub type SharedMemo = Arc<Mutex<Memo>>;

impl Memo {
    pub fn shared() -> SharedMemo {
        SharedMemo::default()
    }
}

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Memo({} frames)", self.entries.len())
    }
}

/// Whether an event of this stage carries the session id (`Session::ev` adds it).
pub(super) fn carries_sid(stage: Stage) -> bool {
    matches!(
        stage,
        Stage::EioPacket | Stage::EioUpgrade | Stage::SioPacket
    )
}

/// The events of a frame seen before, for this connection: appended to `out`, `true`; or
/// `false` if the frame is not remembered.
pub(super) fn recall(
    memo: &Mutex<Memo>,
    key: &Key,
    frame: &[u8],
    conn: u64,
    t: f64,
    sid: Option<&Arc<Shared>>,
    out: &mut Vec<Event>,
) -> bool {
    let Ok(mut m) = memo.lock() else {
        return false;
    };
    {
        let Some(i) = m
            .entries
            .iter()
            .position(|e| e.key == *key && *e.frame == *frame)
        else {
            return false;
        };
        if i > 0 {
            if let Some(e) = m.entries.remove(i) {
                m.entries.push_front(e);
            }
        }
        if let Some(e) = m.entries.front() {
            out.extend(e.events.iter().map(|d| d.event(key, conn, t, sid)));
        }
        true
    }
}

/// Remembers the events just decoded from `frame`, and turns them into shared ones (so this
/// copy's are rendered once too). `sid`: the session's id field, which `events` carry where
/// [`carries_sid`] says and which is not remembered.
pub(super) fn remember(
    memo: &Mutex<Memo>,
    key: Key,
    frame: &[u8],
    conn: u64,
    sid: Option<&Arc<Shared>>,
    events: &mut [Event],
) {
    let decoded: Vec<Decoded> = events
        .iter_mut()
        .map(|e| {
            let mut fields = std::mem::take(&mut e.fields);
            let carries = carries_sid(e.stage);
            if carries && sid.is_some() {
                fields.remove("sid");
            }
            Decoded {
                stage: e.stage,
                summary: std::mem::take(&mut e.summary).share(),
                kind: e.kind,
                sid: carries,
                shared: fields.share(),
            }
        })
        .collect();
    for (e, d) in events.iter_mut().zip(&decoded) {
        *e = d.event(&key, conn, e.t, sid);
    }
    if let Ok(mut m) = memo.lock() {
        if m.entries.len() >= ENTRIES {
            m.entries.pop_back();
        }
        m.entries.push_front(Entry {
            key,
            frame: frame.into(),
            events: decoded,
        });
    }
}
