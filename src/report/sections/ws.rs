//! WebSocket: the handshake (with its accept key worked through), frames cut into their
//! fields, messages, and the closing handshake.

use super::*;

pub(super) fn ws_handshake<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(e) = ctx.of(Stage::WsHandshake).next() else {
        return (Vec::new(), None);
    };
    let key = e.str("key").unwrap_or("");
    (
        accept_blocks(key, e.str("accept").unwrap_or(""), e),
        Some(e),
    )
}

/// The accept computation worked through with the real key.
pub fn accept_blocks(key: &str, sent: &str, e: &Ev) -> Vec<Block> {
    let comp = handshake::compute_accept(key);
    let verdict = if comp.accept == sent {
        "matches: the client accepts the upgrade"
    } else {
        "DOES NOT match: a conforming client must fail the connection"
    };
    let text = format!(
        "key (Sec-WebSocket-Key)     {key}\n\
         + GUID                      {}\n\
         = key + GUID                {key}{}\n\
         SHA-1 of that (hex)         {}\n\
         base64 of the 20 bytes      {}\n\
         Sec-WebSocket-Accept sent   {sent}   ({verdict})\n",
        handshake::GUID,
        handshake::GUID,
        comp.sha1_hex,
        comp.accept,
    );
    let mut blocks = vec![
        text_para("The server proves it read the client's key: it appends the fixed GUID, hashes with SHA-1 and sends the base64 of the digest. Recomputed here from the real key:"),
        code("text", text),
    ];
    let ext = e.str("extension_note").unwrap_or("");
    if !ext.is_empty() {
        let agreed = json_short(e.fields.get("extensions"), 200);
        blocks.push(para(vec![
            t("Extensions: "),
            t(ext.to_string()),
            t(if agreed.is_empty() || agreed == "[]" {
                "."
            } else {
                "; agreed: "
            }),
            if agreed.is_empty() || agreed == "[]" {
                t("")
            } else {
                c(agreed)
            },
        ]));
    }
    blocks
}

/// Hex pairs with spaces, the first `max` bytes (then how many more).
pub(super) fn hex_spaced(bytes: &[u8], max: usize) -> String {
    let mut out: Vec<String> = bytes.iter().take(max).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > max {
        out.push(format!("… (+{} bytes)", bytes.len() - max));
    }
    out.join(" ")
}

/// The bytes of a frame as they crossed the wire, field by field.
pub(super) fn frame_strip(f: &Ev, h: &ws_frame::FrameHeader, header: &[u8]) -> Block {
    let mut fields = Vec::new();
    let b0 = header.first().copied().unwrap_or(0);
    let b1 = header.get(1).copied().unwrap_or(0);
    fields.push(ByteField {
        label: "FIN · RSV1-3 · opcode".into(),
        bytes: format!("{b0:02x}"),
        meaning: format!(
            "{b0:08b}: FIN {} · RSV1 {} RSV2 {} RSV3 {} · opcode {:#x} ({}){}",
            u8::from(h.fin),
            u8::from(h.rsv1),
            u8::from(h.rsv2),
            u8::from(h.rsv3),
            h.opcode.as_u8(),
            h.opcode.name(),
            if h.rsv1 {
                "; RSV1: compressed (RFC 7692)"
            } else {
                ""
            }
        ),
    });
    fields.push(ByteField {
        label: "MASK · length".into(),
        bytes: format!("{b1:02x}"),
        meaning: format!(
            "{b1:08b}: MASK {} · 7-bit length {}{}",
            b1 >> 7,
            b1 & 0x7f,
            match b1 & 0x7f {
                126 => ": the real length is in the next 2 bytes",
                127 => ": the real length is in the next 8 bytes",
                _ => "",
            }
        ),
    });
    let ext = match h.length_form {
        ws_frame::LengthForm::Bits16 => 2,
        ws_frame::LengthForm::Bits64 => 8,
        ws_frame::LengthForm::Bits7 => 0,
    };
    if ext > 0 {
        fields.push(ByteField {
            label: format!("{}-bit length", ext * 8),
            bytes: hex_spaced(header.get(2..2 + ext).unwrap_or(&[]), 8),
            meaning: format!("{} bytes of payload, big-endian", h.payload_len),
        });
    }
    let plain = hex_bytes(f.str("payload_hex").unwrap_or(""));
    let mut wire = plain.clone();
    if let Some(key) = h.mask {
        fields.push(ByteField {
            label: "masking key".into(),
            bytes: hex_spaced(&key, 4),
            meaning: "4 random bytes the client chose for this frame; the payload is XORed with them (RFC 6455 §5.3)".into(),
        });
        ws_frame::apply_mask(&mut wire, key, 0);
    }
    let shown_of = if (plain.len() as u64) < h.payload_len {
        format!(
            " (the trace keeps the first {} of {})",
            plain.len(),
            h.payload_len
        )
    } else {
        String::new()
    };
    fields.push(ByteField {
        label: if h.mask.is_some() {
            "payload, masked".into()
        } else if h.rsv1 {
            "payload, compressed".into()
        } else {
            "payload".into()
        },
        bytes: hex_spaced(&wire, 24),
        meaning: if h.mask.is_some() {
            format!("as on the wire: unreadable until unmasked{shown_of}")
        } else if h.rsv1 {
            format!(
                "raw DEFLATE data (RFC 7692 §7.2.1: the final 00 00 ff ff is left off){shown_of}"
            )
        } else {
            format!("the message itself{shown_of}")
        },
    });
    if h.mask.is_some() {
        fields.push(ByteField {
            label: "payload, unmasked".into(),
            bytes: hex_spaced(&plain, 24),
            meaning: match std::str::from_utf8(&plain) {
                _ if h.rsv1 => {
                    "XORed with the key, byte i with key[i mod 4]: still DEFLATE data (RSV1)".into()
                }
                Ok(text) => format!(
                    "XORed with the key, byte i with key[i mod 4]: {}",
                    shorten(text, 120)
                ),
                Err(_) => "XORed with the key, byte i with key[i mod 4]".into(),
            },
        });
    }
    Block::Bytes {
        caption: format!(
            "The whole frame as it crossed the wire, {} header bytes then the payload",
            h.header_len
        ),
        fields,
    }
}

/// An Engine.IO message carrying a Socket.IO packet, character by character:
/// `42/chat,7["event",…]`.
pub(super) fn packet_strip(text: &str) -> Option<Block> {
    let mut chars = text.char_indices();
    let (_, eio) = chars.next()?;
    let eio_name = match eio {
        '0' => "OPEN",
        '1' => "CLOSE",
        '2' => "PING",
        '3' => "PONG",
        '4' => "MESSAGE",
        '5' => "UPGRADE",
        '6' => "NOOP",
        _ => return None,
    };
    let mut fields = vec![ByteField {
        label: "Engine.IO type".into(),
        bytes: eio.to_string(),
        meaning: format!("{eio}: {eio_name}"),
    }];
    let rest = &text[eio.len_utf8()..];
    if eio != '4' || rest.is_empty() {
        if !rest.is_empty() {
            fields.push(ByteField {
                label: "data".into(),
                bytes: shorten(rest, 80),
                meaning: "the packet's data".into(),
            });
        }
    } else {
        let p = socketio::Packet::decode(rest).ok()?;
        let sio = rest.chars().next()?;
        fields.push(ByteField {
            label: "Socket.IO type".into(),
            bytes: sio.to_string(),
            meaning: format!("{sio}: {}", p.ptype),
        });
        let mut at = sio.len_utf8();
        if p.attachments > 0 {
            let end = rest[at..].find('-').map_or(at, |i| at + i + 1);
            fields.push(ByteField {
                label: "attachments".into(),
                bytes: rest[at..end].to_string(),
                meaning: format!(
                    "{} binary attachments follow as their own messages",
                    p.attachments
                ),
            });
            at = end;
        }
        if rest[at..].starts_with('/') {
            let end = rest[at..].find(',').map_or(rest.len(), |i| at + i + 1);
            fields.push(ByteField {
                label: "namespace".into(),
                bytes: rest[at..end].to_string(),
                meaning: format!("namespace {} (left out for /)", p.nsp),
            });
            at = end;
        }
        let digits = rest[at..].chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            fields.push(ByteField {
                label: "ack id".into(),
                bytes: rest[at..at + digits].to_string(),
                meaning: "the sender wants an ACK with this id".into(),
            });
            at += digits;
        }
        if at < rest.len() {
            fields.push(ByteField {
                label: "JSON".into(),
                bytes: shorten(&rest[at..], 100),
                meaning: match p.ptype {
                    socketio::PacketType::Event | socketio::PacketType::BinaryEvent => {
                        "the event's name, then its arguments".into()
                    }
                    socketio::PacketType::Ack | socketio::PacketType::BinaryAck => {
                        "the acknowledgement's arguments".into()
                    }
                    _ => "the packet's data".into(),
                },
            });
        }
    }
    Some(Block::Bytes {
        caption: "The message's text, character by character".into(),
        fields,
    })
}

pub(super) fn hex_bytes(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks_exact(2)
        .filter_map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

pub(super) fn printable(b: u8) -> String {
    if b.is_ascii_graphic() {
        (b as char).to_string()
    } else if b == b' ' {
        "space".into()
    } else {
        "·".into()
    }
}

pub(super) fn ws_frames<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let frames: Vec<&Ev> = ctx.of(Stage::WsFrame).collect();
    let mut counts: BTreeMap<(String, String), usize> = BTreeMap::new();
    for f in &frames {
        *counts
            .entry((
                dir_text(f.dir).to_string(),
                f.str("opcode_name").unwrap_or("?").to_string(),
            ))
            .or_default() += 1;
    }
    let mut blocks = vec![
        text_para(format!("{} frames on this connection:", frames.len())),
        table(
            &["direction", "opcode", "frames"],
            counts
                .iter()
                .map(|((d, o), n)| {
                    vec![
                        vec![t(d.clone())],
                        vec![c(o.clone())],
                        vec![t(n.to_string())],
                    ]
                })
                .collect(),
        ),
    ];
    // A client frame (masked), preferably one carrying a Socket.IO event.
    let masked: Vec<&Ev> = frames
        .iter()
        .copied()
        .filter(|f| f.flag("masked") && f.u64("payload_len").unwrap_or(0) > 0)
        .collect();
    // A compressed frame's payload says nothing: the message it carries does.
    let carries_event = |f: &Ev| {
        f.str("payload_hex").is_some_and(|h| h.starts_with("3432"))
            || (f.flag("rsv1")
                && ctx
                    .of(Stage::WsMessage)
                    .find(|m| m.seq > f.seq && m.dir == f.dir)
                    .and_then(|m| m.str("text"))
                    .is_some_and(|t| t.starts_with("42")))
    };
    let pick = masked
        .iter()
        .copied()
        .find(|f| carries_event(f))
        .or_else(|| masked.first().copied())
        .or_else(|| frames.first().copied());
    let Some(f) = pick else {
        return (blocks, None);
    };
    blocks.extend(frame_worked(f));
    if f.flag("rsv1") {
        // Compressed: the message it carries, inflated, is the next ws.message that way.
        let inflated = ctx
            .of(Stage::WsMessage)
            .find(|m| m.seq > f.seq && m.dir == f.dir)
            .and_then(|m| m.str("text"));
        if let Some(text) = inflated {
            blocks.push(para(vec![
                t("Still compressed after unmasking (RSV1). Inflated (RFC 7692 §7.2.2: append 00 00 ff ff, then DEFLATE) it is the message "),
                c(shorten(text, 200)),
            ]));
            blocks.extend(packet_strip(text));
        }
    }
    if let Some(s) = frames
        .iter()
        .find(|f| f.dir == Some(Dir::S2C) && !f.flag("masked"))
    {
        blocks.push(para(vec![
            t(format!(
                "Frames from the server are never masked. Event #{}: header ",
                s.seq
            )),
            c(s.str("header_hex").unwrap_or("")),
            t(format!(
                " = FIN {}, RSV1 {}, opcode {}, MASK 0, payload length {}{}.",
                u8::from(s.flag("fin")),
                u8::from(s.flag("rsv1")),
                s.str("opcode_name").unwrap_or("?"),
                s.u64("payload_len").unwrap_or(0),
                if s.flag("rsv1") {
                    " (RSV1 set: the payload is compressed, see the messages section)"
                } else {
                    ""
                }
            )),
        ]));
    }
    (blocks, Some(f))
}

/// One frame's header drawn and its unmasking worked through.
pub fn frame_worked(f: &Ev) -> Vec<Block> {
    let header = hex_bytes(f.str("header_hex").unwrap_or(""));
    let Some(h) = ws_frame::FrameHeader::parse(&header).ok().flatten() else {
        return vec![text_para(
            "(this frame's header could not be decoded again)",
        )];
    };
    let mut blocks = vec![para(vec![
        t(format!(
            "Event #{} ({}, {}): the header bytes ",
            f.seq,
            dir_text(f.dir),
            fmt_t(f.t)
        )),
        c(f.str("header_hex").unwrap_or("").to_string()),
        t(" drawn as RFC 6455 §5.2's diagram, with the bits that were on the wire:"),
    ])];
    if let Some(d) = crate::report::diagram::frame_bit_diagram(&header) {
        blocks.push(code("text", d));
    }
    blocks.push(frame_strip(f, &h, &header));
    let opcode = h.opcode;
    let mut rows = vec![
        vec![
            vec![t("FIN")],
            vec![c(u8::from(h.fin).to_string())],
            vec![t(if h.fin {
                "last (here: only) frame of the message"
            } else {
                "more frames of this message follow"
            })],
        ],
        vec![
            vec![t("RSV1")],
            vec![c(u8::from(h.rsv1).to_string())],
            vec![t(if h.rsv1 {
                "permessage-deflate: the message is compressed (RFC 7692 §6)"
            } else {
                "not compressed"
            })],
        ],
        vec![
            vec![t("RSV2, RSV3")],
            vec![c(format!("{} {}", u8::from(h.rsv2), u8::from(h.rsv3)))],
            vec![t("reserved for extensions, 0")],
        ],
        vec![
            vec![t("opcode")],
            vec![c(format!("{:#x}", opcode.as_u8()))],
            vec![t(format!("{opcode} frame"))],
        ],
        vec![
            vec![t("MASK")],
            vec![c(u8::from(h.mask.is_some()).to_string())],
            vec![t(if h.mask.is_some() {
                "masked: every client-to-server frame must be (§5.1)"
            } else {
                "not masked: server-to-client frames never are"
            })],
        ],
        vec![
            vec![t("payload length")],
            vec![c(h.payload_len.to_string())],
            vec![t(format!("{} form", h.length_form.name()))],
        ],
    ];
    if let Some(k) = h.mask {
        rows.push(vec![
            vec![t("masking key")],
            vec![c(crate::wire::hex(&k))],
            vec![t("chosen at random by the client for this frame")],
        ]);
    }
    blocks.push(table(&["field", "value", "meaning"], rows));
    if let Some(key) = h.mask {
        let plain = hex_bytes(f.str("payload_hex").unwrap_or(""));
        let mut wire = plain.clone();
        ws_frame::apply_mask(&mut wire, key, 0);
        let n = plain.len().min(UNMASK_BYTES);
        blocks.push(text_para("Unmasking (§5.3): byte i of the payload is XORed with byte i mod 4 of the key. The first bytes:"));
        let rows = (0..n)
            .map(|i| {
                vec![
                    vec![t(i.to_string())],
                    vec![c(format!("{:02x}", wire[i]))],
                    vec![c(format!("{:02x}", key[i % 4]))],
                    vec![c(format!("{:02x}", plain[i]))],
                    vec![c(printable(plain[i]))],
                ]
            })
            .collect();
        blocks.push(table(
            &["i", "on the wire", "key[i mod 4]", "XOR = unmasked", "char"],
            rows,
        ));
        if h.rsv1 {
            blocks.push(text_para("These unmasked bytes are not the message yet: RSV1 says they are compressed (permessage-deflate), and the message is what inflating them gives (with the messages below)."));
        } else if let Ok(text) = std::str::from_utf8(&plain) {
            blocks.push(para(vec![
                t("The whole payload unmasked: "),
                c(shorten(text, 200)),
            ]));
            blocks.extend(packet_strip(text));
        }
    }
    blocks
}

pub(super) fn ws_messages<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let msgs: Vec<&Ev> = ctx.of(Stage::WsMessage).collect();
    let mut rows = Vec::new();
    for m in msgs.iter().take(MAX_ROWS) {
        let size = match (m.flag("compressed"), m.u64("compressed_len")) {
            (true, Some(cl)) => format!("{} (inflated from {cl})", m.u64("len").unwrap_or(0)),
            _ => m.u64("len").unwrap_or(0).to_string(),
        };
        rows.push(vec![
            vec![t(format!("#{}", m.seq))],
            vec![t(dir_text(m.dir))],
            vec![c(m.str("opcode_name").unwrap_or("?"))],
            vec![t(m.u64("fragments").unwrap_or(1).to_string())],
            vec![t(size)],
            vec![c(shorten(m.str("text").or(m.str("hex")).unwrap_or(""), 60))],
        ]);
    }
    let mut blocks = vec![table(
        &["event", "direction", "opcode", "frames", "bytes", "content"],
        rows,
    )];
    if msgs.len() > MAX_ROWS {
        blocks.push(text_para(format!(
            "... and {} more messages.",
            msgs.len() - MAX_ROWS
        )));
    }
    let compressed = msgs.iter().copied().find(|m| m.flag("compressed"));
    if let Some(m) = compressed {
        blocks.push(para(vec![
            t(format!(
                "permessage-deflate was agreed: message #{} travelled as {} compressed bytes and was inflated to {} bytes, ",
                m.seq,
                m.u64("compressed_len").unwrap_or(0),
                m.u64("len").unwrap_or(0)
            )),
            c(shorten(m.str("text").unwrap_or(""), 60)),
            t(". Compression pays off on long, repetitive messages and costs bytes on tiny ones."),
        ]));
    }
    (
        blocks,
        compressed.or_else(|| {
            msgs.iter()
                .copied()
                .find(|m| m.str("opcode_name") == Some("TEXT"))
        }),
    )
}

pub(super) fn ws_close<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let closes: Vec<&Ev> = ctx.of(Stage::WsClose).collect();
    let rows = closes
        .iter()
        .map(|e| {
            vec![
                vec![t(fmt_t(e.t))],
                vec![t(dir_text(e.dir))],
                vec![c(e
                    .u64("code")
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "(none)".into()))],
                vec![t(e.str("meaning").unwrap_or(""))],
                vec![c(e.str("reason").unwrap_or(""))],
            ]
        })
        .collect();
    let mut blocks = Vec::new();
    if let Some(first) = closes.first() {
        let who = |d: Option<Dir>| {
            if d == Some(Dir::C2S) {
                "client"
            } else {
                "server"
            }
        };
        let answered = closes.iter().any(|c| c.dir != first.dir);
        blocks.push(text_para(format!(
            "The {} sent the first Close frame; {}",
            who(first.dir),
            if answered {
                "the other side answered with its own."
            } else {
                "no answer to it is in this trace."
            }
        )));
        // What each layer said before it, on this connection, as the trace shows it.
        let before: Vec<String> = ctx
            .evs
            .iter()
            .filter(|e| e.conn == first.conn && e.seq < first.seq && first.t - e.t <= 1.0)
            .filter_map(|e| match (e.stage, e.str("type")) {
                (Stage::SioPacket, Some("DISCONNECT")) => {
                    Some(format!("a Socket.IO DISCONNECT from the {}", who(e.dir)))
                }
                (Stage::EioPacket, Some("CLOSE")) => {
                    Some(format!("an Engine.IO CLOSE from the {}", who(e.dir)))
                }
                _ => None,
            })
            .collect();
        let after: Vec<String> = ctx
            .evs
            .iter()
            .filter(|e| e.conn == first.conn && e.seq > first.seq && e.t - first.t <= 0.05)
            .filter(|e| e.dir == first.dir)
            .filter_map(|e| match (e.stage, e.str("type")) {
                (Stage::SioPacket, Some("DISCONNECT")) => {
                    Some("a Socket.IO DISCONNECT".to_string())
                }
                (Stage::EioPacket, Some("CLOSE")) => Some("an Engine.IO CLOSE".to_string()),
                _ => None,
            })
            .collect();
        blocks.push(text_para(if before.is_empty() {
            if after.is_empty() {
                "Nothing of Socket.IO or Engine.IO said goodbye before it on this connection: the WebSocket closed under them.".to_string()
            } else {
                "No Socket.IO DISCONNECT or Engine.IO CLOSE came before it on this connection.".to_string()
            }
        } else {
            let eio = before.iter().any(|b| b.contains("Engine.IO"));
            format!(
                "Before it: {}.{}",
                before.join(", then "),
                if eio {
                    ""
                } else {
                    " No Engine.IO CLOSE came first: socket.io-client's WebSocket transport sends none, it closes the WebSocket (python-socketio's client sends one)."
                }
            )
        }));
        if !after.is_empty() {
            blocks.push(text_para(format!(
                "Right after the Close frame, from the same side: {}. python-socketio's client queues them and closes the WebSocket from the thread that called disconnect(), so they can cross its Close frame on the wire; sent after a Close, they are not read (the trace marks them as a broken rule).",
                after.join(", then ")
            )));
        }
        if let Some(end) = ctx.of(Stage::TcpClose).find(|e| e.conn == first.conn) {
            if let Some(how) = end.str("how") {
                let note = if how.ends_with("the client's first") {
                    " RFC 6455 §7.1.1 asks the server to close the TCP connection first; this one left it to the client, as Werkzeug's development server (threading mode) does."
                } else if how.ends_with("the server's first") {
                    " The server closed first, as RFC 6455 §7.1.1 asks."
                } else {
                    ""
                };
                blocks.push(text_para(format!("Then TCP: {how}.{note}")));
            }
        }
    }
    blocks.push(table(
        &["time", "direction", "code", "meaning", "reason"],
        rows,
    ));
    (blocks, closes.first().copied())
}
