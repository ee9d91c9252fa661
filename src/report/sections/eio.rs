//! Engine.IO: the packets, their type characters, and the upgrade from long-polling.

use super::*;
use crate::stage::Kind;

pub(super) fn eio_field_meaning(k: &str) -> &'static str {
    match k {
        "sid" => "the session id: every later request of this client names it",
        "upgrades" => "transports the client may upgrade to from this one",
        "pingInterval" => "ms between the server's PINGs",
        "pingTimeout" => "ms the server waits for the PONG before dropping the client",
        "maxPayload" => "the largest payload (bytes) the server accepts",
        _ => "",
    }
}

pub(super) fn eio_packets<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let packets: Vec<&Ev> = ctx.of(Stage::EioPacket).collect();
    let mut blocks = Vec::new();
    // The OPEN of this session: on this connection, or on the polling request that began it.
    let sid = ctx.of(Stage::HttpRequest).find_map(|r| {
        query_params(r.str("target").unwrap_or(""))
            .into_iter()
            .find(|(k, _)| k == "sid")
            .map(|(_, v)| v)
    });
    let open = packets
        .iter()
        .copied()
        .find(|p| p.str("type") == Some("OPEN"))
        .or_else(|| {
            let sid = sid.as_deref()?;
            ctx.all.iter().find(|p| {
                p.stage == Stage::EioPacket
                    && p.str("type") == Some("OPEN")
                    && p.str("sid") == Some(sid)
            })
        });
    if let Some(o) = open {
        if o.conn != Some(ctx.conn) {
            blocks.push(text_para(format!(
                "This connection continues a session opened by HTTP long-polling on connection #{}: its OPEN packet came there, at {}.",
                o.conn.unwrap_or(0),
                fmt_t(o.t)
            )));
        }
        blocks.push(para(vec![
            t("The OPEN packet: type "),
            c("0"),
            t(" then a JSON object, "),
            c(format!("0{}", shorten(o.str("data").unwrap_or(""), 200))),
            t(":"),
        ]));
        let rows = [
            "sid",
            "upgrades",
            "pingInterval",
            "pingTimeout",
            "maxPayload",
        ]
        .iter()
        .filter_map(|k| {
            let v = o.fields.get(*k)?;
            Some(vec![
                vec![c(k.to_string())],
                vec![c(json_short(Some(v), 60))],
                vec![t(eio_field_meaning(k))],
            ])
        })
        .collect();
        blocks.push(table(&["field", "value", "meaning"], rows));
    }
    let mut rows = Vec::new();
    for p in packets.iter().take(MAX_ROWS) {
        let ty = p.str("type").unwrap_or("?");
        rows.push(vec![
            vec![t(format!("#{}", p.seq))],
            vec![t(fmt_t(p.t))],
            vec![t(dir_text(p.dir))],
            vec![t(p.str("transport").unwrap_or("?"))],
            vec![c(format!("{} {ty}", eio_type_char(ty)))],
            match p.str("data").filter(|d| !d.is_empty()) {
                Some(d) => vec![c(shorten(d, 50))],
                None => vec![t("(none)")],
            },
        ]);
    }
    if !rows.is_empty() {
        blocks.push(text_para(
            "The Engine.IO packets of this connection (the first character of each is its type):",
        ));
        blocks.push(table(
            &["event", "time", "direction", "transport", "type", "data"],
            rows,
        ));
        if packets.len() > MAX_ROWS {
            blocks.push(text_para(format!(
                "... and {} more packets.",
                packets.len() - MAX_ROWS
            )));
        }
    }
    let pings: Vec<&Ev> = packets
        .iter()
        .copied()
        .filter(|p| p.str("type") == Some("PING") && p.str("data") != Some("probe"))
        .collect();
    if let Some(p) = pings.first() {
        let pong = packets.iter().find(|q| {
            q.str("type") == Some("PONG") && q.seq > p.seq && q.str("data") != Some("probe")
        });
        blocks.push(text_para(format!(
            "Heartbeat: {} PING packets from the server; the first at {}{}. These are Engine.IO packets inside WebSocket TEXT frames, not WebSocket ping frames.",
            pings.len(),
            fmt_t(p.t),
            pong.map(|q| format!(", answered by the client's PONG {:.1} ms later", (q.t - p.t) * 1000.0)).unwrap_or_default()
        )));
    }
    let noops: Vec<&Ev> = packets
        .iter()
        .copied()
        .filter(|p| p.str("type") == Some("NOOP"))
        .collect();
    if !noops.is_empty() {
        let said: Vec<String> = noops
            .iter()
            .take(4)
            .map(|n| noop_sentence(ctx, n))
            .collect();
        blocks.push(text_para(format!(
            "NOOP (6) packets carry nothing; python-engineio uses them while a session moves from long-polling to its WebSocket. {}",
            said.join(" ")
        )));
    }
    let rep = open
        .filter(|o| o.conn == Some(ctx.conn))
        .or_else(|| {
            packets
                .iter()
                .copied()
                .find(|p| p.str("type") == Some("MESSAGE"))
        })
        .or_else(|| packets.first().copied());
    (blocks, rep)
}

pub(super) fn eio_type_char(ty: &str) -> &'static str {
    match ty {
        "OPEN" => "0",
        "CLOSE" => "1",
        "PING" => "2",
        "PONG" => "3",
        "MESSAGE" => "4",
        "UPGRADE" => "5",
        "NOOP" => "6",
        _ => "?",
    }
}

pub(super) fn eio_upgrade<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(u) = ctx.of(Stage::EioUpgrade).next() else {
        return (Vec::new(), None);
    };
    let steps: Vec<Vec<Vec<Inline>>> = ctx
        .of(Stage::EioPacket)
        .filter(|p| {
            p.seq <= u.seq && (p.str("data") == Some("probe") || p.str("type") == Some("UPGRADE"))
        })
        .map(|p| {
            vec![
                vec![t(format!("#{}", p.seq))],
                vec![t(fmt_t(p.t))],
                vec![t(dir_text(p.dir))],
                vec![c(format!(
                    "{}{}",
                    eio_type_char(p.str("type").unwrap_or("")),
                    p.str("data").unwrap_or("")
                ))],
            ]
        })
        .collect();
    let mut blocks = vec![text_para(format!(
        "Session {} moved from {} to {} at {}. The probe exchange on the new WebSocket:",
        u.str("sid").unwrap_or("?"),
        u.str("from").unwrap_or("?"),
        u.str("to").unwrap_or("?"),
        fmt_t(u.t)
    ))];
    blocks.push(table(&["event", "time", "direction", "packet"], steps));
    (blocks, Some(u))
}

/// What one NOOP did, from when things happened: a poll answered at once during an upgrade,
/// a held poll ended by the NOOP queued after the probe, or that NOOP sent on the WebSocket
/// because no poll was left to take it.
fn noop_sentence(ctx: &Ctx, noop: &Ev) -> String {
    let at = fmt_t(noop.t);
    let sid = noop.str("sid");
    let on_websocket = ctx
        .all
        .iter()
        .any(|h| h.stage == Stage::WsHandshake && h.conn == noop.conn && h.seq < noop.seq);
    let probe = ctx.all.iter().find(|p| {
        p.stage == Stage::EioPacket
            && p.str("type") == Some("PONG")
            && p.str("data") == Some("probe")
            && (sid.is_none() || p.str("sid") == sid)
    });
    let upgrade = ctx.all.iter().find(|p| {
        p.stage == Stage::EioPacket
            && p.str("type") == Some("UPGRADE")
            && p.conn == noop.conn
            && p.seq < noop.seq
    });
    if on_websocket {
        return format!(
            "At {at} a NOOP went out on the WebSocket itself: python-engineio queues one when the WebSocket answers the probe{}, to end a poll the server may be holding; polls that come during the upgrade get a NOOP of their own and leave the queue alone, so this one was sent by the WebSocket's writer once the upgrade was complete{}.",
            probe.map(|p| format!(" (PONG \"probe\" at {})", fmt_t(p.t))).unwrap_or_default(),
            upgrade.map(|u| format!(" (UPGRADE at {})", fmt_t(u.t))).unwrap_or_default()
        );
    }
    // The poll this NOOP answered, and when the session's WebSocket was asked for.
    let poll = ctx
        .all
        .iter()
        .rev()
        .find(|r| r.stage == Stage::HttpRequest && r.conn == noop.conn && r.seq < noop.seq);
    let websocket = sid.and_then(|sid| {
        ctx.all.iter().find(|r| {
            r.stage == Stage::HttpRequest
                && matches!(r.kind, Some(Kind::Websocket))
                && r.str("target")
                    .is_some_and(|t| t.contains(&format!("sid={sid}")))
        })
    });
    match (poll, websocket) {
        (Some(poll), Some(ws)) if ws.t <= poll.t => format!(
            "At {at} a long-polling GET (sent at {}) was answered with a NOOP at once: its session's WebSocket had been opened at {}, and from then python-engineio answers every poll with NOOP (it sends no more packets through long-polling).",
            fmt_t(poll.t),
            fmt_t(ws.t)
        ),
        (Some(poll), _) if probe.is_some_and(|p| p.t >= poll.t && p.t <= noop.t) => format!(
            "At {at} a NOOP ended the long-polling GET the server had been holding since {}: python-engineio queued it once the WebSocket answered the probe (PONG \"probe\" at {}), so that the client can stop polling.",
            fmt_t(poll.t),
            probe.map(|p| fmt_t(p.t)).unwrap_or_default()
        ),
        _ => format!("At {at} a long-polling GET was answered with a NOOP."),
    }
}
