//! Socket.IO: the packets taken apart, the dispatch to a handler, and one-to-many sends.

use super::*;

/// The raw text of an Engine.IO MESSAGE that carried a Socket.IO packet: `4` + the packet.
pub(super) fn sio_raw(ctx: &Ctx, p: &Ev) -> Option<String> {
    let eio = ctx.evs.iter().rev().find(|e| {
        e.stage == Stage::EioPacket
            && e.seq < p.seq
            && e.dir == p.dir
            && e.str("type") == Some("MESSAGE")
    })?;
    eio.str("data").map(String::from)
}

pub(super) fn sio_type_meaning(ty: &str) -> &'static str {
    match ty {
        "CONNECT" => "0 CONNECT: join a namespace",
        "DISCONNECT" => "1 DISCONNECT: leave a namespace",
        "EVENT" => "2 EVENT: an event name and its arguments",
        "ACK" => "3 ACK: the answer to an event that asked for one",
        "CONNECT_ERROR" => "4 CONNECT_ERROR: the namespace refused the client",
        "BINARY_EVENT" => "5 BINARY_EVENT: an event with binary attachments",
        "BINARY_ACK" => "6 BINARY_ACK: an ack with binary attachments",
        _ => "unknown",
    }
}

pub(super) fn sio_packets<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let packets: Vec<&Ev> = ctx.of(Stage::SioPacket).collect();
    let mut blocks = Vec::new();
    let event = packets
        .iter()
        .copied()
        .find(|p| p.str("type") == Some("EVENT") && p.dir == Some(Dir::C2S))
        .or_else(|| {
            packets
                .iter()
                .copied()
                .find(|p| p.str("type") == Some("EVENT"))
        });
    if let Some(p) = event {
        if let Some(raw) = sio_raw(ctx, p) {
            blocks.extend(take_apart(p, &raw));
        }
    }
    let rows: Vec<Vec<Vec<Inline>>> = packets
        .iter()
        .take(MAX_ROWS)
        .map(|p| {
            vec![
                vec![t(format!("#{}", p.seq))],
                vec![t(dir_text(p.dir))],
                vec![t(sio_type_meaning(p.str("type").unwrap_or("")))],
                vec![c(p.str("nsp").unwrap_or("/"))],
                vec![t(p
                    .u64("id")
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "-".into()))],
                vec![c(json_short(p.fields.get("data"), 60))],
            ]
        })
        .collect();
    blocks.push(text_para("All Socket.IO packets of this connection:"));
    blocks.push(table(
        &["event", "direction", "type", "namespace", "ack id", "data"],
        rows,
    ));
    if packets.len() > MAX_ROWS {
        blocks.push(text_para(format!(
            "... and {} more packets.",
            packets.len() - MAX_ROWS
        )));
    }
    (blocks, event.or_else(|| packets.first().copied()))
}

/// An event packet taken apart character by character: `4` `2` [nsp,] [id] JSON.
pub fn take_apart(p: &Ev, eio_data: &str) -> Vec<Block> {
    let Ok(pkt) = socketio::Packet::decode(eio_data) else {
        return Vec::new();
    };
    let type_char = pkt.ptype.as_char().to_string();
    let att = if pkt.ptype.is_binary() {
        format!("{}-", pkt.attachments)
    } else {
        String::new()
    };
    let nsp = if pkt.nsp == "/" {
        String::new()
    } else {
        format!("{},", pkt.nsp)
    };
    let id = pkt.id.map(|i| i.to_string()).unwrap_or_default();
    let prefix = format!("{type_char}{att}{nsp}{id}");
    let Some(json) = eio_data.strip_prefix(&prefix) else {
        return Vec::new();
    };
    let mut rows = vec![
        vec![
            vec![c("4")],
            vec![t(
                "Engine.IO packet type 4 = MESSAGE: the rest is for the layer above",
            )],
        ],
        vec![
            vec![c(type_char)],
            vec![t(format!(
                "Socket.IO packet type {}",
                sio_type_meaning(pkt.ptype.spec_name())
            ))],
        ],
    ];
    if !att.is_empty() {
        rows.push(vec![
            vec![c(att.clone())],
            vec![t(format!(
                "{} binary attachments follow as separate binary messages",
                pkt.attachments
            ))],
        ]);
    }
    rows.push(vec![
        vec![if nsp.is_empty() {
            t("(nothing)")
        } else {
            c(nsp.clone())
        }],
        vec![t(if nsp.is_empty() {
            "namespace: none written, so the default namespace /".to_string()
        } else {
            format!("namespace {}", pkt.nsp)
        })],
    ]);
    rows.push(vec![
        vec![if id.is_empty() {
            t("(nothing)")
        } else {
            c(id.clone())
        }],
        vec![t(if id.is_empty() {
            "ack id: none, the sender does not wait for an answer".to_string()
        } else {
            format!("ack id {id}: the receiver answers with an ACK packet carrying the same id")
        })],
    ]);
    let name = pkt.event_name().unwrap_or("?").to_string();
    rows.push(vec![
        vec![c(shorten(json, 80))],
        vec![t(format!(
            "JSON array: the event name {name:?} then {} argument(s), what the handler receives",
            pkt.args().len()
        ))],
    ]);
    vec![
        para(vec![
            t(format!("Event #{} ({}) taken apart. On the wire (inside a WebSocket TEXT frame, or a polling body) it is ", p.seq, dir_text(p.dir))),
            c(format!("4{}", shorten(eio_data, 100))),
            t(":"),
        ]),
        table(&["characters", "meaning"], rows),
    ]
}

pub(super) fn sio_dispatch<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let d: Vec<&Ev> = ctx.of(Stage::SioDispatch).collect();
    // A watched app's dispatches carry no arguments (its handler has them): no empty column.
    let with_args = d.iter().any(|e| e.fields.contains_key("args"));
    let rows = d
        .iter()
        .take(MAX_ROWS)
        .map(|e| {
            let mut row = vec![
                vec![t(fmt_t(e.t))],
                vec![c(e.str("event").unwrap_or("?"))],
                vec![c(e.str("handler").unwrap_or("(no handler: ignored)"))],
            ];
            if with_args {
                row.push(vec![c(json_short(e.fields.get("args"), 60))]);
            }
            row
        })
        .collect();
    let head: &[&str] = if with_args {
        &["time", "event", "handler", "arguments"]
    } else {
        &["time", "event", "handler"]
    };
    (vec![table(head, rows)], d.first().copied())
}

/// The Socket.IO calls a watched app made (`sio.emit`) or its room changes (`sio.room`):
/// when, which call, at which line of the app, and what it did.
pub(super) fn sio_calls<'a>(ctx: &Ctx<'a>, stage: Stage) -> Shown<'a> {
    let calls: Vec<&Ev> = ctx.of(stage).collect();
    let rows = calls
        .iter()
        .take(MAX_ROWS)
        .map(|e| {
            vec![
                vec![t(fmt_t(e.t))],
                vec![c(e.str("call").unwrap_or("?"))],
                vec![c(e.str("line").unwrap_or("(python-socketio)"))],
                vec![t(shorten(&e.summary, 100))],
            ]
        })
        .collect();
    let mut blocks = vec![table(&["time", "call", "line", "what it did"], rows)];
    if calls.len() > MAX_ROWS {
        blocks.push(text_para(format!(
            "... and {} more calls.",
            calls.len() - MAX_ROWS
        )));
    }
    (blocks, calls.first().copied())
}

pub(super) fn sio_broadcast<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let all: Vec<&Ev> = ctx.of(Stage::SioBroadcast).collect();
    let mut blocks = Vec::new();
    // The example: the first that reached someone (an emit to an empty room shows nothing).
    let Some(first) = all
        .iter()
        .copied()
        .find(|b| b.u64("count").is_none_or(|n| n > 0))
        .or_else(|| all.first().copied())
    else {
        return (blocks, None);
    };
    blocks.push(text_para(if first.flag("inferred") {
        format!(
            "{} event(s) sent to several clients at once reached this connection (inferred from the capture: the same packet to several connections within half a second; whether the app broadcast it or emitted it to a room, the bytes cannot say). The first one:",
            all.len()
        )
    } else {
        format!(
            "{} broadcast(s) were sent by this client's events or reached it. The first that reached anyone:",
            all.len()
        )
    }));
    let rows = deliveries(ctx, first)
        .iter()
        .map(|d| {
            let sender = first.conn.is_some() && d.conn == first.conn;
            vec![
                vec![t(format!("#{}", d.conn.unwrap_or(0)))],
                vec![t(fmt_t(d.t))],
                vec![t(if sender {
                    "yes: the sender gets its own broadcast"
                } else {
                    "no"
                })],
                vec![c(json_short(d.fields.get("data"), 60))],
            ]
        })
        .collect();
    blocks.push(para(vec![
        t("Event "),
        c(first.str("event").unwrap_or("?")),
        t(format!(
            ", namespace {}, after {} from connection #{}; recipients:",
            first.str("nsp").unwrap_or("/"),
            first
                .str("after_event")
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| "an event".into()),
            first.conn.unwrap_or(0)
        )),
    ]));
    blocks.push(table(
        &["connection", "delivered at", "is the sender", "data"],
        rows,
    ));
    (blocks, Some(first))
}
