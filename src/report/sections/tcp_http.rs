//! TCP and HTTP: the accept, the request and response heads, and the close.

use super::*;

pub(super) fn tcp_accept<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(e) = ctx.on_main(Stage::TcpAccept) else {
        return (Vec::new(), None);
    };
    let mut rows = vec![
        vec![
            vec![t("client (address:port)")],
            vec![c(e.str("client").unwrap_or("?"))],
        ],
        vec![
            vec![t("server (address:port)")],
            vec![c(e.str("server").unwrap_or("?"))],
        ],
        vec![vec![t("time")], vec![t(fmt_t(e.t))]],
    ];
    if e.flag("midstream") {
        rows.push(vec![
            vec![t("note")],
            vec![t(
                "the capture began after the SYN: the handshake itself is not in it",
            )],
        ]);
    }
    let mut blocks = vec![
        text_para("The client's ephemeral port and the server's listening port name this connection for the rest of its life."),
        table(&["", "value"], rows),
    ];
    if let Some(sentence) = connections_sentence(ctx) {
        blocks.push(text_para(sentence));
        let rows = ctx
            .connections()
            .iter()
            .map(|x| {
                let carried = if x.websocket {
                    "the WebSocket".to_string()
                } else if x.polls > 0 {
                    format!("{} long-polling request(s)", x.polls)
                } else {
                    format!("{} other request(s)", x.requests)
                };
                vec![
                    vec![t(format!("#{}", x.conn))],
                    vec![c(x.accept.str("client").unwrap_or("?"))],
                    vec![t(fmt_t(x.accept.t))],
                    vec![t(carried)],
                    vec![t(x
                        .close
                        .map(|x| format!("{}: {}", fmt_t(x.t), x.str("how").unwrap_or("closed")))
                        .unwrap_or_else(|| "not in the capture".into()))],
                ]
            })
            .collect();
        blocks.push(table(
            &["connection", "client", "opened", "carried", "closed"],
            rows,
        ));
    }
    (blocks, Some(e))
}

pub(super) fn request_head(e: &Ev) -> String {
    let mut s = format!(
        "{} {} {}\r\n",
        e.str("method").unwrap_or("?"),
        e.str("target").unwrap_or("?"),
        e.str("version").unwrap_or("HTTP/1.1")
    );
    push_headers(&mut s, e);
    s
}

pub(super) fn push_headers(s: &mut String, e: &Ev) {
    if let Some(hs) = e.fields.get("headers").and_then(Value::as_array) {
        for h in hs {
            let name = h.get(0).and_then(Value::as_str).unwrap_or("");
            let value = h.get(1).and_then(Value::as_str).unwrap_or("");
            s.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    s.push_str("\r\n");
}

/// CRLF shown as the text `\r\n` at the end of each line, so students see the line ends.
pub(super) fn show_crlf(head: &str) -> String {
    head.replace("\r\n", "\\r\\n\n")
}

pub(super) fn query_params(target: &str) -> Vec<(String, String)> {
    let Some((_, q)) = target.split_once('?') else {
        return Vec::new();
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (p.to_string(), String::new()),
        })
        .collect()
}

pub(super) fn param_meaning(k: &str, v: &str) -> String {
    match k {
        "EIO" => format!("Engine.IO protocol version {v} (v4 is Socket.IO v3/v4's)"),
        "transport" if v == "websocket" => "open a WebSocket for this session".into(),
        "transport" => format!("use the {v} transport"),
        "sid" => "the Engine.IO session this request belongs to (from the OPEN packet)".into(),
        "t" => {
            "a cache buster: a new value per request so no proxy or browser answers from its cache"
                .into()
        }
        _ => "application-defined".into(),
    }
}

pub(super) fn http_request<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let reqs: Vec<&Ev> = ctx.of(Stage::HttpRequest).collect();
    let Some(e) = reqs.first().copied() else {
        return (Vec::new(), None);
    };
    let mut blocks = vec![
        text_para(format!(
            "The request head exactly as the client sent it at {} (each line ends with CR LF, and an empty line ends the head):",
            fmt_t(e.t)
        )),
        code("http", show_crlf(&request_head(e))),
    ];
    let params = query_params(e.str("target").unwrap_or(""));
    if !params.is_empty() {
        blocks.push(text_para(
            "The query string carries the Engine.IO parameters:",
        ));
        blocks.push(table(
            &["parameter", "value", "meaning"],
            params
                .iter()
                .map(|(k, v)| {
                    vec![
                        vec![c(k.clone())],
                        vec![c(v.clone())],
                        vec![t(param_meaning(k, v))],
                    ]
                })
                .collect(),
        ));
    }
    let here = reqs.iter().filter(|r| r.conn == e.conn).count();
    let elsewhere = reqs.len() - here;
    if here > 1 {
        blocks.push(text_para(format!(
            "{} more requests followed on this connection: the server kept it open.",
            here - 1
        )));
    }
    if elsewhere > 0 {
        blocks.push(text_para(format!(
            "The client sent {elsewhere} more request(s) on its other connections (listed under the TCP connection)."
        )));
    }
    (blocks, Some(e))
}

pub(super) fn http_response<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(e) = ctx.of(Stage::HttpResponse).next() else {
        return (Vec::new(), None);
    };
    let mut head = format!(
        "{} {} {}\r\n",
        e.str("version").unwrap_or("HTTP/1.1"),
        e.u64("status").unwrap_or(0),
        e.str("reason").unwrap_or("")
    );
    push_headers(&mut head, e);
    let mut blocks = vec![
        text_para(format!("The response head, at {}:", fmt_t(e.t))),
        code("http", show_crlf(&head)),
    ];
    if e.u64("status") == Some(101) {
        blocks.push(text_para("101 Switching Protocols: after the empty line that ends this head, both directions of the TCP connection carry WebSocket frames instead of HTTP. Flask never saw a route for this; python-engineio answered it from its WSGI middleware."));
    } else {
        let body: Vec<&Ev> = ctx
            .evs
            .iter()
            .copied()
            .filter(|p| p.stage == Stage::EioPacket && p.dir == Some(Dir::S2C) && p.seq > e.seq)
            .take(3)
            .collect();
        if !body.is_empty() {
            blocks.push(text_para("Its body is an Engine.IO polling payload; the packets in it are in the Engine.IO section."));
        }
    }
    (blocks, Some(e))
}

pub(super) fn tcp_close<'a>(ctx: &Ctx<'a>) -> Shown<'a> {
    let Some(e) = ctx.on_main(Stage::TcpClose) else {
        return (Vec::new(), None);
    };
    let mut blocks = vec![para(vec![
        t(format!("At {}: ", fmt_t(e.t))),
        b(e.str("how").unwrap_or("?").to_string()),
        t("."),
    ])];
    let leftover: Vec<&Ev> = ctx.of(Stage::TcpData).collect();
    if let Some(d) = leftover.first() {
        blocks.push(text_para(format!(
            "Before that, {} bytes were not decoded: {}.",
            d.u64("len").unwrap_or(0),
            d.str("reason").unwrap_or("unknown reason")
        )));
    }
    (blocks, Some(e))
}
