//! The applications `dispel serve` can run on top of Socket.IO.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::wire::engineio::{Data, PacketType};
use crate::wire::socketio::placeholder;

use super::engineio::{EioHandler, EioSession, WirePacket};
use super::socketio::Ctx;

/// Socket.IO handlers, the way a Flask-SocketIO app declares them with `@socketio.on`.
pub trait App: Send + Sync {
    fn accepts_namespace(&self, nsp: &str) -> bool;
    /// The handler an event goes to, named as in the Flask-SocketIO app it mirrors.
    fn handler_name(&self, nsp: &str, event: &str) -> Option<&'static str>;
    fn on_connect(&self, cx: &Ctx<'_>, auth: Option<&Value>);
    /// Whether the CONNECT answer goes out before the connect handler runs (Node) or after
    /// (python-socketio, the default).
    fn ack_connect_first(&self) -> bool {
        false
    }
    /// The CONNECT_ERROR data for a refused namespace. python-socketio sends a bare string.
    fn refusal(&self) -> Value {
        Value::String("Unable to connect".into())
    }
    fn on_event(&self, cx: &Ctx<'_>, event: &str, args: &[Value], attachments: &[Vec<u8>]);
}

/// The course's auction:
///
/// ```python
/// @socketio.on('replace old value')
/// def handle_new_value(message):
///     emit('replaced values', message, broadcast=True)
/// ```
///
/// plus what a demo needs: the latest value per item is kept and sent to a client that joins
/// later; `bid-with-ack` is acknowledged; `/admin` is a second namespace; `upload` shows a
/// binary event.
#[derive(Default)]
pub struct Auction {
    latest: Mutex<BTreeMap<String, Value>>,
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

impl App for Auction {
    fn accepts_namespace(&self, nsp: &str) -> bool {
        nsp == "/" || nsp == "/admin"
    }

    fn handler_name(&self, nsp: &str, event: &str) -> Option<&'static str> {
        match (nsp, event) {
            ("/", NEW_VALUE) => Some("handle_new_value (@socketio.on('replace old value'))"),
            ("/", "bid-with-ack") => Some("handle_bid_with_ack (@socketio.on('bid-with-ack'))"),
            ("/", "upload") => Some("handle_upload (@socketio.on('upload'))"),
            ("/admin", "ping-me") => {
                Some("handle_ping_me (@socketio.on('ping-me', namespace='/admin'))")
            }
            _ => None,
        }
    }

    fn on_connect(&self, cx: &Ctx<'_>, _auth: Option<&Value>) {
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

    fn on_event(&self, cx: &Ctx<'_>, event: &str, args: &[Value], attachments: &[Vec<u8>]) {
        match (cx.nsp, event) {
            ("/", NEW_VALUE | "bid-with-ack") => {
                let payload = args.first().cloned().unwrap_or(Value::Null);
                if let Ok(mut m) = self.latest.lock() {
                    m.insert(item_key(&payload), payload.clone());
                }
                cx.broadcast(REPLACED, vec![payload.clone()]);
                // Flask-SocketIO sends a handler's return value as the ack after the handler
                // returns, so the broadcast goes out first.
                if event == "bid-with-ack" {
                    cx.ack(vec![json!({"ok": true, "bid": payload})], vec![]);
                }
            }
            ("/", "upload") => {
                let bytes = attachments.first().cloned().unwrap_or_default();
                cx.emit(
                    "uploaded",
                    vec![json!({"size": bytes.len()}), placeholder(0)],
                    vec![bytes],
                );
            }
            ("/admin", "ping-me") => cx.ack(args.to_vec(), attachments.to_vec()),
            _ => {}
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

    fn on_event(&self, cx: &Ctx<'_>, event: &str, args: &[Value], attachments: &[Vec<u8>]) {
        match event {
            "message" => cx.emit("message-back", args.to_vec(), attachments.to_vec()),
            "message-with-ack" => cx.ack(args.to_vec(), attachments.to_vec()),
            _ => {}
        }
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
            Data::Binary(b) => WirePacket::Binary(b),
        };
        let _ = session.send(Arc::new(vec![packet]));
    }

    fn on_close(&self, _session: &Arc<EioSession>, _reason: &str) {}
}
