//! The exchange at a glance: the sequence diagram of the chosen connection.

use super::*;

/// The broadcasts whose copies to the other recipients the diagram draws: the diagram shows
/// only its first `diagram::MAX_ARROWS` arrows anyway, and a busy capture has thousands of
/// broadcasts. A capture's report keeps the deliveries of these only (`super::Keep`).
pub(crate) const DRAWN_BROADCASTS: usize = 64;

pub(super) fn glance(ctx: &Ctx) -> Vec<Block> {
    let me = format!("C{}", ctx.conn);
    let name = if ctx.session.len() > 1 {
        let list: Vec<String> = ctx.session.iter().map(u64::to_string).collect();
        format!("Client (conns {})", list.join(", "))
    } else {
        format!("Client (conn {})", ctx.conn)
    };
    let mut participants = vec![(me.clone(), name)];
    participants.push(("S".to_string(), "Server".to_string()));
    let mut drawn: HashSet<u64> = HashSet::new();
    // Deliveries of broadcasts to the other recipients.
    let mut items: Vec<&Ev> = ctx.evs.clone();
    let mut added: HashSet<*const Ev> = items.iter().map(|e| *e as *const Ev).collect();
    for b in ctx.of(Stage::SioBroadcast).take(DRAWN_BROADCASTS) {
        for d in deliveries(ctx, b) {
            if !ctx.mine(d.conn) {
                if let Some(c) = d.conn {
                    if drawn.insert(c) {
                        participants.push((format!("C{c}"), format!("Client (conn {c})")));
                    }
                }
                if added.insert(d as *const Ev) {
                    items.push(d);
                }
            }
        }
    }
    items.sort_by(|a, b| a.t.total_cmp(&b.t).then(a.seq.cmp(&b.seq)));
    let mut steps = Vec::new();
    let mut heartbeats = 0usize;
    let both = format!("{me},S");
    for e in items {
        // The client's own connections share its lane.
        let client = e
            .conn
            .filter(|_| !ctx.mine(e.conn))
            .map(|c| format!("C{c}"))
            .unwrap_or_else(|| me.clone());
        let (from, to) = match e.dir {
            Some(Dir::S2C) => ("S".to_string(), client.clone()),
            _ => (client.clone(), "S".to_string()),
        };
        let arrow = |label: String| Step::Arrow {
            from: from.clone(),
            to: to.clone(),
            label,
        };
        let is_heartbeat = e.stage == Stage::EioPacket
            && matches!(e.str("type"), Some("PING") | Some("PONG"))
            && e.str("data").unwrap_or("") != "probe";
        if is_heartbeat {
            heartbeats += 1;
            // The first PING and PONG are drawn, the rest are counted.
            if heartbeats > 2 {
                continue;
            }
        } else if heartbeats > 2 {
            steps.push(Step::Note {
                over: both.clone(),
                text: format!("heartbeat: {} more PING/PONG packets", heartbeats - 2),
            });
            heartbeats = 0;
        } else {
            heartbeats = 0;
        }
        match e.stage {
            Stage::TcpAccept => steps.push(Step::Note {
                over: both.clone(),
                text: "TCP connection opened (SYN, SYN-ACK, ACK)".into(),
            }),
            Stage::HttpRequest => steps.push(arrow(format!(
                "HTTP {} {}",
                e.str("method").unwrap_or("?"),
                shorten(e.str("target").unwrap_or(""), 50)
            ))),
            Stage::HttpResponse => steps.push(arrow(format!(
                "HTTP {} {}",
                e.u64("status").unwrap_or(0),
                e.str("reason").unwrap_or("")
            ))),
            Stage::EioPacket => {
                let ty = e.str("type").unwrap_or("?");
                if ty == "MESSAGE" {
                    continue; // drawn as the Socket.IO packet it carries
                }
                let extra = match ty {
                    "OPEN" => format!(" sid={}", e.str("sid").unwrap_or("?")),
                    _ => e
                        .str("data")
                        .filter(|d| !d.is_empty())
                        .map(|d| format!(" {}", shorten(d, 20)))
                        .unwrap_or_default(),
                };
                steps.push(arrow(format!(
                    "Engine.IO {ty}{extra} ({})",
                    e.str("transport").unwrap_or("?")
                )));
            }
            Stage::SioPacket => {
                let ty = e.str("type").unwrap_or("?");
                let what = match e.str("event") {
                    Some(ev) => format!(" {ev}"),
                    None => format!(" {}", e.str("nsp").unwrap_or("/")),
                };
                let to_other = !ctx.mine(e.conn);
                steps.push(arrow(format!(
                    "Socket.IO {ty}{what}{}",
                    if to_other { " (broadcast copy)" } else { "" }
                )));
            }
            Stage::SioBroadcast => steps.push(Step::Note {
                over: "S".into(),
                text: format!(
                    "broadcast {} to connections {}",
                    e.str("event").unwrap_or("?"),
                    recipients(e)
                        .iter()
                        .map(u64::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
            Stage::SioDispatch => steps.push(Step::Note {
                over: "S".into(),
                text: format!("handler {} called", e.str("handler").unwrap_or("(none)")),
            }),
            Stage::WsClose => steps.push(arrow(format!(
                "WebSocket Close {}",
                e.u64("code")
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "(no code)".into())
            ))),
            Stage::TcpClose => steps.push(Step::Note {
                over: both.clone(),
                // The client's other connections close too: say which one this is.
                text: if e.conn == Some(ctx.main_conn()) {
                    format!("TCP closed: {}", e.str("how").unwrap_or("?"))
                } else {
                    format!(
                        "TCP connection #{} closed (long-polling): {}",
                        e.conn.unwrap_or(0),
                        e.str("how").unwrap_or("?")
                    )
                },
            }),
            _ => {}
        }
    }
    if heartbeats > 2 {
        steps.push(Step::Note {
            over: both,
            text: format!("heartbeat: {} more PING/PONG packets", heartbeats - 2),
        });
    }
    vec![
        text_para("The connection's exchange, one arrow per HTTP message, Engine.IO packet or Socket.IO packet (WebSocket frames are in their own section). Repeated heartbeats are collapsed."),
        Block::Sequence { participants, steps },
    ]
}

pub(super) fn recipients(e: &Ev) -> Vec<u64> {
    e.fields
        .get("recipients")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

/// The Socket.IO EVENT packets that carried a broadcast to its recipients: on each recipient,
/// the first one with the broadcast's event name within half a second of it.
pub(super) fn deliveries<'a>(ctx: &Ctx<'a>, b: &Ev) -> Vec<&'a Ev> {
    let to: HashSet<u64> = recipients(b).into_iter().collect();
    let Some(sent) = b.str("event").and_then(|name| ctx.sent.get(name)) else {
        return Vec::new();
    };
    let from = sent.partition_point(|e| e.t < b.t - 1e-6);
    let mut found: Vec<&Ev> = sent[from..]
        .iter()
        .take_while(|e| e.t <= b.t + 0.5)
        .copied()
        .filter(|e| e.conn.is_some_and(|c| to.contains(&c)))
        .collect();
    found.sort_by_key(|e| e.seq);
    let mut seen = HashSet::new();
    found.retain(|e| seen.insert(e.conn));
    found
}
