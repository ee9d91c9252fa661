//! The applications `dispel serve` can run on top of Socket.IO.

use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::wire::engineio::{Data, PacketType};
use crate::wire::socketio::{self as placeholders, placeholder};

use super::engineio::{EioHandler, EioSession, WirePacket};
use super::socketio::{App, Ctx, Outcome, Returned};

/// The course's auction, exactly the seed app's one handler:
///
/// ```python
/// @socketio.on('replace old value')
/// def handle_new_value(message):
///     emit('replaced values', message, broadcast=True)
/// ```
///
/// With `--extras`, also what a demo needs and the seed does not have: the latest value per
/// item is kept and sent to a client that joins later; `bid-with-ack` is acknowledged with the
/// bid; `/admin` is a second namespace; `upload` shows a binary event. The trace marks them.
pub struct Auction {
    extras: bool,
    /// Item -> its latest value, in the order items were first seen (a Python dict's order).
    latest: Mutex<serde_json::Map<String, Value>>,
}

pub const NEW_VALUE: &str = "replace old value";
pub const REPLACED: &str = "replaced values";

fn item_key(v: &Value) -> String {
    match v.get("item") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

impl Auction {
    pub fn new(extras: bool) -> Auction {
        Auction {
            extras,
            latest: Mutex::new(serde_json::Map::new()),
        }
    }

    fn remember(&self, payload: &Value) {
        if self.extras && payload.get("item").is_some() {
            if let Ok(mut m) = self.latest.lock() {
                m.insert(item_key(payload), payload.clone());
            }
        }
    }
}

/// The handler's one argument, as Python would call `handle_new_value(message)`: anything
/// else raises `TypeError`.
fn one_argument(handler: &str, args: &[Value]) -> Result<Value, Outcome> {
    match args {
        [one] => Ok(one.clone()),
        _ => Err(Outcome::Raised(format!(
            "TypeError: {handler}() takes 1 positional argument but {} were given",
            args.len()
        ))),
    }
}

impl App for Auction {
    fn accepts_namespace(&self, nsp: &str) -> bool {
        nsp == "/" || (self.extras && nsp == "/admin")
    }

    fn handler_name(&self, nsp: &str, event: &str) -> Option<&'static str> {
        match (nsp, event) {
            ("/", NEW_VALUE) => Some("handle_new_value (@socketio.on('replace old value'))"),
            _ if !self.extras => None,
            ("/", "bid-with-ack") => Some("handle_bid_with_ack (@socketio.on('bid-with-ack'))"),
            ("/", "upload") => Some("handle_upload (@socketio.on('upload'))"),
            ("/admin", "ping-me") => {
                Some("handle_ping_me (@socketio.on('ping-me', namespace='/admin'))")
            }
            _ => None,
        }
    }

    fn is_extra(&self, nsp: &str, event: &str) -> bool {
        !(nsp == "/" && event == NEW_VALUE)
    }

    fn on_connect(&self, cx: &Ctx<'_>, _auth: Option<&Value>) {
        if !self.extras {
            return;
        }
        match cx.nsp {
            "/" => {
                // A late joiner gets the current values, one emit per item, to it alone.
                let values: Vec<Value> = self
                    .latest
                    .lock()
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default();
                for v in values {
                    cx.emit(REPLACED, vec![v], vec![]);
                }
            }
            "/admin" => cx.emit("welcome", vec![json!({"nsp": "/admin"})], vec![]),
            _ => {}
        }
    }

    fn on_event(
        &self,
        cx: &Ctx<'_>,
        event: &str,
        args: &[Value],
        attachments: &[Vec<u8>],
    ) -> Outcome {
        if self.handler_name(cx.nsp, event).is_none() {
            return Outcome::NoHandler;
        }
        match (cx.nsp, event) {
            ("/", NEW_VALUE | "bid-with-ack") => {
                let name = if event == NEW_VALUE {
                    "handle_new_value"
                } else {
                    "handle_bid_with_ack"
                };
                let payload = match one_argument(name, args) {
                    Ok(p) => p,
                    Err(raised) => return raised,
                };
                // The message goes out as python-socketio re-encodes it: its attachments
                // renumbered in the order they appear. A plain EVENT's placeholders are data.
                let (payload, atts) = if attachments.is_empty() {
                    (payload, Vec::new())
                } else {
                    match placeholders::reattach(&payload, attachments) {
                        Some(x) => x,
                        None => {
                            return Outcome::Raised(
                                "IndexError: a placeholder names no attachment".into(),
                            )
                        }
                    }
                };
                self.remember(&payload);
                cx.broadcast(REPLACED, vec![payload.clone()], atts);
                if event == "bid-with-ack" {
                    Outcome::Returned(Returned {
                        args: vec![json!({"ok": true, "bid": payload})],
                        attachments: Vec::new(),
                    })
                } else {
                    Outcome::none()
                }
            }
            ("/", "upload") => {
                let bytes = attachments.first().cloned().unwrap_or_default();
                cx.emit(
                    "uploaded",
                    vec![json!({"size": bytes.len()}), placeholder(0)],
                    vec![bytes],
                );
                Outcome::none()
            }
            // `return args`: a tuple, so every argument comes back.
            ("/admin", "ping-me") => Outcome::Returned(Returned {
                args: args.to_vec(),
                attachments: attachments.to_vec(),
            }),
            _ => Outcome::NoHandler,
        }
    }
}

/// What the official socket.io-protocol test suite expects of a server.
pub struct Conformance;

impl App for Conformance {
    fn accepts_namespace(&self, nsp: &str) -> bool {
        nsp == "/" || nsp == "/custom"
    }

    fn handler_name(&self, _nsp: &str, event: &str) -> Option<&'static str> {
        match event {
            "message" => Some("on_message (emits message-back)"),
            "message-with-ack" => Some("on_message_with_ack (acks the arguments)"),
            _ => None,
        }
    }

    fn ack_connect_first(&self) -> bool {
        true
    }

    fn refusal(&self) -> Value {
        json!({"message": "Invalid namespace"})
    }

    fn on_connect(&self, cx: &Ctx<'_>, auth: Option<&Value>) {
        cx.emit(
            "auth",
            vec![auth.cloned().unwrap_or_else(|| json!({}))],
            vec![],
        );
    }

    fn on_event(
        &self,
        cx: &Ctx<'_>,
        event: &str,
        args: &[Value],
        attachments: &[Vec<u8>],
    ) -> Outcome {
        match event {
            "message" => cx.emit("message-back", args.to_vec(), attachments.to_vec()),
            "message-with-ack" => cx.ack(args.to_vec(), attachments.to_vec()),
            _ => return Outcome::NoHandler,
        }
        Outcome::none()
    }
}

/// The engine.io-protocol test suite's server: every MESSAGE is echoed back.
pub struct EioEcho;

impl EioHandler for EioEcho {
    fn on_open(&self, _session: &Arc<EioSession>) {}

    fn on_message(&self, session: &Arc<EioSession>, _conn: u64, data: Data) {
        let packet = match data {
            Data::Text(t) => {
                WirePacket::Text(format!("{}{t}", PacketType::Message.as_char()).into())
            }
            Data::Binary(b) => WirePacket::Binary(b.into()),
        };
        let _ = session.send(Arc::new(vec![packet]));
    }

    fn on_close(&self, _session: &Arc<EioSession>, _reason: &str) {}
}
