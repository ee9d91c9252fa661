//! WebSocket on a connection: frames, their payloads (unmasked, reassembled, inflated),
//! and the messages they make.

use super::*;

impl Session {
    pub(super) fn frame(
        &mut self,
        dir: Dir,
        t: f64,
        at: usize,
        out: &mut Vec<Event>,
    ) -> Option<usize> {
        if self.http_on_upgraded(dir, at) {
            return Some(0);
        }
        let buf = &self.sides[dir.index()].buf[at..];
        let h = match FrameHeader::parse(buf) {
            Ok(Some(h)) => h,
            Ok(None) => return None,
            Err(e) => {
                self.error(t, dir, &e.to_string(), Stage::WsFrame, out);
                self.sides[dir.index()].mode = Mode::Opaque {
                    why: "after an undecodable frame header",
                };
                return Some(0);
            }
        };
        if h.payload_len > self.limits.max_message as u64 {
            if self.wants(Stage::WsFrame) {
                out.push(self.frame_event(dir, t, &h, &hex(&buf[..h.header_len]), None));
            }
            self.error(
                t,
                dir,
                &format!(
                    "frame payload of {} bytes exceeds the {}-byte limit (RFC 6455 §10.4; close 1009)",
                    h.payload_len, self.limits.max_message
                ),
                Stage::WsFrame,
                out,
            );
            self.sides[dir.index()].mode = Mode::SkipPayload {
                remaining: h.payload_len,
            };
            return Some(h.header_len);
        }
        let total = h.header_len + h.payload_len as usize;
        if buf.len() < total {
            return None;
        }
        let memo_key = self.memo_key(dir, &h, &buf[..total]);
        if let (Some(key), Some(memo)) = (&memo_key, &self.memo) {
            if memo::recall(
                memo,
                key,
                &buf[..total],
                self.conn,
                t,
                self.sid_field.as_ref(),
                out,
            ) {
                return Some(total);
            }
        }
        let first = out.len();
        let mut payload = buf[h.header_len..total].to_vec();
        if let Some(key) = h.mask {
            ws_frame::apply_mask(&mut payload, key, 0);
        }
        if self.wants(Stage::WsFrame) {
            out.push(self.frame_event(dir, t, &h, &hex(&buf[..h.header_len]), Some(&payload)));
        }
        if let Some(v) = h.violation(dir == Dir::C2S, self.deflate.is_some()) {
            self.error(
                t,
                dir,
                &format!("{v}; close {}", v.close_code()),
                Stage::WsFrame,
                out,
            );
        }
        self.frame_payload(dir, t, &h, payload, out);
        if let (Some(key), Some(memo)) = (memo_key, &self.memo) {
            let side = &self.sides[dir.index()];
            let clean = side.sio_binary.is_none()
                && matches!(side.mode, Mode::WebSocket)
                && out[first..].iter().all(|e| e.stage != Stage::Error);
            if clean {
                let frame = &side.buf[at..at + total];
                memo::remember(
                    memo,
                    key,
                    frame,
                    self.conn,
                    self.sid_field.as_ref(),
                    &mut out[first..],
                );
            }
        }
        Some(total)
    }

    /// The memo key of a whole frame whose events depend only on its bytes (see `memo`), if
    /// it is one.
    pub(super) fn memo_key(&self, dir: Dir, h: &FrameHeader, frame: &[u8]) -> Option<memo::Key> {
        let side = &self.sides[dir.index()];
        let whole_data = h.fin
            && matches!(h.opcode, OpCode::Text | OpCode::Binary)
            && !(h.rsv1 || h.rsv2 || h.rsv3)
            && h.mask.is_none();
        // An Engine.IO OPEN names the session: decoding it changes the session.
        let open = h.opcode == OpCode::Text && frame.get(h.header_len) == Some(&b'0');
        (whole_data
            && !open
            && frame.len() <= memo::MAX_FRAME
            && side.assembly.is_none()
            && side.sio_binary.is_none())
        .then_some(memo::Key {
            dir,
            interest: self.interest,
            max_message: self.limits.max_message,
        })
    }

    /// A frame's kind: by direction and opcode, and for a data frame whether its message is
    /// compressed (the first frame's RSV1 under permessage-deflate; its continuations too).
    fn frame_kind(&self, dir: Dir, h: &FrameHeader) -> Kind {
        let compressed = match h.opcode {
            OpCode::Text | OpCode::Binary => h.rsv1 && self.deflate.is_some(),
            OpCode::Continuation => self.sides[dir.index()]
                .assembly
                .as_ref()
                .is_some_and(|a| a.compressed),
            _ => false,
        };
        match (dir, compressed) {
            (Dir::C2S, true) => Kind::Compressed,
            (Dir::S2C, true) => Kind::SendCompressed,
            _ => link_kind(dir, h.opcode),
        }
    }

    pub(super) fn frame_event(
        &self,
        dir: Dir,
        t: f64,
        h: &FrameHeader,
        header_hex: &str,
        payload: Option<&[u8]>,
    ) -> Event {
        let mut e = self
            .ev(
                Stage::WsFrame,
                t,
                Some(dir),
                format!(
                    "{}{}{} {} bytes ({}){}",
                    if h.fin { "FIN " } else { "" },
                    h.opcode,
                    if h.rsv1 { " RSV1" } else { "" },
                    h.payload_len,
                    h.length_form.name(),
                    if h.mask.is_some() { " masked" } else { "" }
                ),
            )
            .with("fin", h.fin)
            .with("rsv1", h.rsv1)
            .with("rsv2", h.rsv2)
            .with("rsv3", h.rsv3)
            .with("opcode", h.opcode.as_u8())
            .with("opcode_name", opcode_name(h.opcode))
            .with("masked", h.mask.is_some())
            .with("mask_key", h.mask.map(|k| hex(&k)))
            .with("payload_len", h.payload_len)
            .with("length_form", h.length_form.name())
            .with("header_hex", header_hex)
            .kind(self.frame_kind(dir, h));
        if let Some(p) = payload {
            e.fields.insert("payload_hex", hex(clip_bytes(p)));
        }
        e
    }

    pub(super) fn frame_payload(
        &mut self,
        dir: Dir,
        t: f64,
        h: &FrameHeader,
        payload: Vec<u8>,
        out: &mut Vec<Event>,
    ) {
        let max = self.limits.max_message;
        match h.opcode {
            OpCode::Close => {
                self.close_frame = true;
                let (code, reason) = ws_frame::close_payload(&payload);
                let summary = match code {
                    Some(c) => format!(
                        "{c} {}{}",
                        ws_frame::close_code_meaning(c),
                        if reason.is_empty() {
                            String::new()
                        } else {
                            format!(": {reason}")
                        }
                    ),
                    None => "no status code".to_string(),
                };
                out.push(
                    self.ev(Stage::WsClose, t, Some(dir), summary)
                        .with("code", code)
                        .with("meaning", code.map(ws_frame::close_code_meaning))
                        .with("reason", reason),
                );
                let side = &mut self.sides[dir.index()];
                side.mode = Mode::AfterClose;
            }
            OpCode::Ping | OpCode::Pong | OpCode::Reserved(_) => {}
            OpCode::Text | OpCode::Binary => {
                if self.sides[dir.index()].assembly.is_some() {
                    self.error(
                        t,
                        dir,
                        "new data frame while a fragmented message is unfinished (RFC 6455 §5.4)",
                        Stage::WsFrame,
                        out,
                    );
                }
                let oversized = payload.len() > max;
                self.sides[dir.index()].assembly = Some(Assembly {
                    opcode: h.opcode,
                    compressed: h.rsv1 && self.deflate.is_some(),
                    fragments: 1,
                    data: payload,
                    oversized,
                });
                if h.fin {
                    self.message_done(dir, t, out);
                }
            }
            OpCode::Continuation => {
                let Some(asm) = self.sides[dir.index()].assembly.as_mut() else {
                    self.error(
                        t,
                        dir,
                        "continuation frame without a message to continue (RFC 6455 §5.4)",
                        Stage::WsFrame,
                        out,
                    );
                    return;
                };
                asm.fragments += 1;
                if asm.data.len() + payload.len() > max {
                    asm.oversized = true;
                    asm.data.clear();
                } else if !asm.oversized {
                    asm.data.extend_from_slice(&payload);
                }
                if h.fin {
                    self.message_done(dir, t, out);
                }
            }
        }
    }

    pub(super) fn message_done(&mut self, dir: Dir, t: f64, out: &mut Vec<Event>) {
        let Some(mut asm) = self.sides[dir.index()].assembly.take() else {
            return;
        };
        let max = self.limits.max_message;
        if asm.oversized {
            self.error(
                t,
                dir,
                &format!("message larger than the {max}-byte limit (RFC 6455 §10.4; close 1009)"),
                Stage::WsMessage,
                out,
            );
            return;
        }
        let compressed_len = asm.data.len();
        let wire = std::mem::take(&mut asm.data);
        let data = if asm.compressed {
            let inflated = match self.sides[dir.index()].inflater.as_mut() {
                Some(inf) => inf.inflate(&wire, max),
                None => Ok(wire),
            };
            match inflated {
                Ok(d) => d,
                Err(e) => {
                    self.error(t, dir, &e.to_string(), Stage::WsMessage, out);
                    return;
                }
            }
        } else {
            wire
        };
        if self.wants(Stage::WsMessage) {
            out.push(self.message_event(dir, t, &asm, compressed_len, &data));
        }
        if asm.opcode == OpCode::Text {
            match String::from_utf8(data) {
                Ok(text) => match engineio::Packet::decode_text(&text) {
                    Ok(p) => self.eio_packet(dir, t, "websocket", p, out),
                    Err(e) => self.error(t, dir, &e.to_string(), Stage::EioPacket, out),
                },
                Err(_) => self.error(
                    t,
                    dir,
                    "text message is not valid UTF-8 (RFC 6455 §8.1; close 1007)",
                    Stage::WsMessage,
                    out,
                ),
            }
        } else {
            self.eio_packet(
                dir,
                t,
                "websocket",
                engineio::Packet::from_binary(data),
                out,
            );
        }
    }

    pub(super) fn message_event(
        &self,
        dir: Dir,
        t: f64,
        asm: &Assembly,
        compressed_len: usize,
        data: &[u8],
    ) -> Event {
        let mut ev = self
            .ev(Stage::WsMessage, t, Some(dir), String::new())
            .with("opcode", asm.opcode.as_u8())
            .with("opcode_name", opcode_name(asm.opcode))
            .with("fragments", asm.fragments)
            .with("compressed", asm.compressed)
            .with("len", data.len())
            .kind(if asm.compressed && dir == Dir::C2S {
                Kind::Compressed
            } else {
                link_kind(dir, asm.opcode)
            });
        if asm.compressed {
            ev.fields.insert("compressed_len", compressed_len);
        }
        let mut summary = String::with_capacity(128);
        let _ = write!(summary, "{} {} bytes", asm.opcode, data.len());
        if asm.fragments > 1 {
            let _ = write!(summary, " in {} frames", asm.fragments);
        }
        if asm.compressed {
            let _ = write!(summary, ", inflated from {compressed_len}");
        }
        match (asm.opcode, std::str::from_utf8(data)) {
            (OpCode::Text, Ok(text)) => {
                let _ = write!(summary, ": {}", short(text));
                insert_text(&mut ev.fields, "text", text);
            }
            _ => {
                ev.fields.insert("hex", hex(clip_bytes(data)));
            }
        }
        ev.summary = summary.into();
        ev
    }
}

pub(super) fn link_kind(dir: Dir, opcode: OpCode) -> Kind {
    match (dir, opcode) {
        (Dir::S2C, OpCode::Text | OpCode::Binary | OpCode::Continuation) => Kind::Send,
        (_, OpCode::Text) => Kind::Text,
        (_, OpCode::Binary) => Kind::Binary,
        (_, OpCode::Continuation) => Kind::Continuation,
        (_, OpCode::Close) => Kind::Close,
        (_, OpCode::Ping) => Kind::Ping,
        (_, OpCode::Pong) => Kind::Pong,
        (_, OpCode::Reserved(_)) => Kind::Reserved,
    }
}
