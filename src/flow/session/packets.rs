//! Engine.IO and Socket.IO packets, from a polling body or a WebSocket message, with the
//! link kind of each (the server's packets go down the send path).

use super::*;

impl Session {
    pub(super) fn eio_packet(
        &mut self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        p: engineio::Packet,
        out: &mut Vec<Event>,
    ) {
        // The OPEN packet names the session: remembered whether or not it is shown.
        let open = match (p.ptype, &p.data) {
            (engineio::PacketType::Open, engineio::Data::Text(text)) => match OpenInfo::parse(text)
            {
                Ok(info) => {
                    self.name_session(info.sid.clone());
                    Some(info)
                }
                Err(e) => {
                    self.error(t, dir, &e.to_string(), Stage::EioPacket, out);
                    None
                }
            },
            _ => None,
        };
        if self.wants(Stage::EioPacket) {
            out.push(self.eio_event(dir, t, transport, &p, open));
        }
        if p.ptype == engineio::PacketType::Upgrade
            && dir == Dir::C2S
            && self.wants(Stage::EioUpgrade)
        {
            out.push(
                self.ev(
                    Stage::EioUpgrade,
                    t,
                    Some(dir),
                    "transport upgraded: polling -> websocket".into(),
                )
                .with("from", "polling")
                .with("to", "websocket"),
            );
        }
        if p.ptype == engineio::PacketType::Message {
            match p.data {
                engineio::Data::Text(text) => self.sio_text(dir, t, transport, &text, out),
                engineio::Data::Binary(b) => self.sio_attachment(dir, t, transport, b, out),
            }
        }
    }

    pub(super) fn eio_event(
        &self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        p: &engineio::Packet,
        open: Option<OpenInfo>,
    ) -> Event {
        let mut ev = self
            .ev(Stage::EioPacket, t, Some(dir), String::new())
            .with("transport", transport)
            .with("type", p.ptype.upper_name())
            .kind(eio_kind(dir, p.ptype, transport));
        match &p.data {
            engineio::Data::Text(text) => {
                ev.summary = format!("{} {}", p.ptype, short(text)).into();
                insert_text(&mut ev.fields, "data", text);
            }
            engineio::Data::Binary(b) => {
                ev.summary = format!("{} (binary, {} bytes)", p.ptype, b.len()).into();
                ev = ev
                    .with("data", Value::Null)
                    .with("binary_len", b.len())
                    .with("binary_hex", hex(clip_bytes(b)));
            }
        }
        if let Some(info) = open {
            ev.fields.insert("sid", info.sid);
            ev = ev
                .with("upgrades", info.upgrades)
                .with("pingInterval", info.ping_interval)
                .with("pingTimeout", info.ping_timeout)
                .with("maxPayload", info.max_payload);
        }
        ev
    }

    pub(super) fn sio_text(
        &mut self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        text: &str,
        out: &mut Vec<Event>,
    ) {
        if self.sides[dir.index()].sio_binary.is_some() {
            self.error(t, dir, "text packet while binary attachments were still expected (Socket.IO v5 §Packet encoding)", Stage::SioPacket, out);
            self.sides[dir.index()].sio_binary = None;
        }
        match socketio::Packet::decode_raw(text) {
            Ok(p) if p.attachments > 0 => {
                self.sides[dir.index()].sio_binary =
                    Some(socketio::Assembly::new(p, self.limits.max_message));
            }
            Ok(p) => self.sio_event(dir, t, transport, p, &[], out),
            Err(e) => self.error(t, dir, &e.to_string(), Stage::SioPacket, out),
        }
    }

    pub(super) fn sio_attachment(
        &mut self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        bytes: Vec<u8>,
        out: &mut Vec<Event>,
    ) {
        let side = &mut self.sides[dir.index()];
        let Some(pending) = side.sio_binary.as_mut() else {
            // A plain Engine.IO binary message (no Socket.IO on top): nothing more to decode.
            return;
        };
        match pending.push(bytes) {
            socketio::Progress::More => {}
            socketio::Progress::Complete => {
                if let Some(done) = side.sio_binary.take() {
                    let (packet, attachments) = done.into_parts();
                    self.sio_event(dir, t, transport, packet, &attachments, out);
                }
            }
            socketio::Progress::TooLarge => {
                side.sio_binary = None;
                let max = self.limits.max_message;
                self.error(
                    t,
                    dir,
                    &format!(
                        "binary attachments of one packet exceed the {max}-byte limit; packet dropped"
                    ),
                    Stage::SioPacket,
                    out,
                );
            }
        }
    }

    /// The Socket.IO packet event. Its data is shown as the JSON text that was sent, checked
    /// but not parsed into values, unless binary attachments must be put in their places.
    pub(super) fn sio_event(
        &mut self,
        dir: Dir,
        t: f64,
        transport: &'static str,
        p: socketio::Packet<Box<RawValue>>,
        attachments: &[Vec<u8>],
        out: &mut Vec<Event>,
    ) {
        if !self.wants(Stage::SioPacket) {
            return;
        }
        let socketio::Packet {
            ptype,
            attachments: count,
            nsp,
            id,
            data,
        } = p;
        // A binary packet's data is parsed to put the attachments in their places; other data
        // stays the JSON text it was sent as.
        let filled: Option<Value> = match &data {
            Some(raw) if ptype.is_binary() || count > 0 => {
                let mut value: Value = serde_json::from_str(raw.get()).unwrap_or(Value::Null);
                socketio::fill_placeholders(&mut value, &mut |i| match attachments.get(i) {
                    Some(b) => json!({"_binary": b.len(), "hex": hex(clip_bytes(b))}),
                    None => json!({"_binary": null, "missing_attachment": i}),
                });
                Some(value)
            }
            _ => None,
        };
        let (event, shown) = match (&filled, &data) {
            (Some(value), _) => sio_value_outline(ptype, value),
            (None, Some(raw)) => sio_raw_outline(ptype, raw),
            (None, None) => (None, String::new()),
        };
        let summary = match &event {
            Some(name) => format!("{ptype} {nsp} {name:?} {}", short(&shown)),
            None => format!(
                "{ptype} {nsp}{} {}",
                id.map(|i| format!(" id={i}")).unwrap_or_default(),
                short(&shown)
            ),
        };
        let mut ev = self
            .ev(Stage::SioPacket, t, Some(dir), summary)
            .with("type", ptype.spec_name())
            .with("nsp", nsp)
            .with("id", id)
            .with("event", event)
            .with("attachments", count);
        match (filled, data) {
            (Some(value), _) => ev.fields.insert("data", value),
            (None, Some(raw)) => ev.fields.insert_raw("data", raw),
            (None, None) => ev.fields.insert("data", Value::Null),
        }
        out.push(ev.kind(sio_kind(dir, ptype, transport)));
    }
}

/// Which source chain explains a frame or message: the server's data frames are written by the
/// encode path (`send`), everything else by the decode path of its opcode.
/// An Engine.IO packet's link kind: a MESSAGE the server sends goes down the send path
/// (queued, written by the writer), not the reader's decode.
pub(super) fn eio_kind(dir: Dir, ptype: engineio::PacketType, transport: &str) -> Kind {
    use engineio::PacketType as P;
    match (dir, ptype) {
        // An OPEN sent over a WebSocket (a session opened without long-polling) is queued
        // and written by the WebSocket writer, not returned as a polling response.
        (Dir::S2C, P::Open) if transport == "websocket" => Kind::OpenWebsocket,
        (Dir::S2C, P::Message) => Kind::MessageSent,
        // The client's packets in a long-polling POST: decoded from its payload, not read
        // by a WebSocket reader.
        (Dir::C2S, P::Message) if transport == "polling" => Kind::MessagePolling,
        (Dir::C2S, P::Pong) if transport == "polling" => Kind::PongPolling,
        (_, P::Open) => Kind::Open,
        (_, P::Close) => Kind::Close,
        (_, P::Ping) => Kind::Ping,
        (_, P::Pong) => Kind::Pong,
        (_, P::Message) => Kind::Message,
        (_, P::Upgrade) => Kind::Upgrade,
        (_, P::Noop) => Kind::Noop,
        (_, P::Unknown(_)) => Kind::Unknown,
    }
}

/// A Socket.IO packet's link kind: what the server sends (an emit, an ack of a return value)
/// is encoded and queued, not decoded and dispatched.
pub(super) fn sio_kind(dir: Dir, ptype: PacketType, transport: &str) -> Kind {
    use PacketType as P;
    match (dir, ptype) {
        // A CONNECT read from a WebSocket message, not from a long-polling POST.
        (Dir::C2S, P::Connect) if transport == "websocket" => Kind::ConnectWebsocket,
        (Dir::S2C, P::Connect) => Kind::ConnectSent,
        (Dir::S2C, P::Event) => Kind::EventSent,
        (Dir::S2C, P::BinaryEvent) => Kind::BinaryEventSent,
        (Dir::S2C, P::Ack) => Kind::AckSent,
        (Dir::S2C, P::BinaryAck) => Kind::BinaryAckSent,
        (_, P::Connect) => Kind::Connect,
        (_, P::Disconnect) => Kind::Disconnect,
        (_, P::Event) => Kind::Event,
        (_, P::Ack) => Kind::Ack,
        (_, P::ConnectError) => Kind::ConnectError,
        (_, P::BinaryEvent) => Kind::BinaryEvent,
        (_, P::BinaryAck) => Kind::BinaryAck,
        (_, P::Unknown(_)) => Kind::Unknown,
    }
}
