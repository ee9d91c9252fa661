//! One client of the load: connecting up to the Socket.IO CONNECT answer, reading and
//! checking broadcasts, answering PINGs, and what it saw.

use super::*;

pub(super) type Ws = WebSocketStream<TcpStream>;
pub(super) type Sink = SplitSink<Ws, Message>;
pub(super) type Stream = SplitStream<Ws>;

pub(super) const REPLACED: &str = "replaced values";

pub(super) static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on this process's monotonic clock.
pub(super) fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// What one received Engine.IO text message means to a client.
#[derive(Debug, PartialEq)]
pub(super) enum Incoming {
    Open,
    Ping,
    Connected,
    Refused(String),
    Bid { bid: u64, t: u64 },
    Ack(u64),
    Other,
}

/// `["replaced values", {"bid": K, "t": T, ...}]`.
#[derive(serde::Deserialize)]
pub(super) struct Broadcast<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>, BidArgs);

#[derive(serde::Deserialize)]
pub(super) struct BidArgs {
    pub(super) bid: u64,
    pub(super) t: u64,
}

/// Decodes with the project's own Engine.IO and Socket.IO decoders.
pub(super) fn classify(text: &str) -> Incoming {
    let Ok(p) = engineio::Packet::decode_text(text) else {
        return Incoming::Other;
    };
    match p.ptype {
        EioType::Open => Incoming::Open,
        EioType::Ping => Incoming::Ping,
        EioType::Message => {
            let Data::Text(d) = &p.data else {
                return Incoming::Other;
            };
            // The data stays JSON text; a broadcast's is then read straight into the two
            // numbers a client checks (building a `Value` per message was a tenth of the
            // generator's time).
            let Ok(s) = socketio::Packet::decode_raw(d) else {
                return Incoming::Other;
            };
            match (s.ptype, s.data) {
                (SioType::Connect, _) => Incoming::Connected,
                (SioType::ConnectError, data) => {
                    Incoming::Refused(data.map(|d| d.get().to_string()).unwrap_or_default())
                }
                (SioType::Ack, _) => s.id.map_or(Incoming::Other, Incoming::Ack),
                (SioType::Event, Some(data)) => match serde_json::from_str::<Broadcast>(data.get())
                {
                    Ok(Broadcast(name, b)) if name == REPLACED => {
                        Incoming::Bid { bid: b.bid, t: b.t }
                    }
                    _ => Incoming::Other,
                },
                _ => Incoming::Other,
            }
        }
        _ => Incoming::Other,
    }
}

/// What one client saw.
#[derive(Debug, Default)]
pub(super) struct ClientStats {
    /// Bids received in order, each once.
    pub(super) delivered: u64,
    /// Bid numbers skipped over.
    pub(super) gaps: u64,
    /// Bid numbers seen again (or out of order).
    pub(super) dupes: u64,
    /// The next bid number expected.
    pub(super) next: u64,
    /// Latency of every delivered bid, µs.
    pub(super) latency: Histogram,
    /// When the last bid arrived (ns on `now_ns`).
    pub(super) last_ns: u64,
    pub(super) error: Option<String>,
}

impl ClientStats {
    pub(super) fn new() -> ClientStats {
        ClientStats {
            next: 1,
            ..ClientStats::default()
        }
    }

    pub(super) fn bid(&mut self, bid: u64, t: u64, now: u64) {
        if bid < self.next {
            self.dupes += 1;
            return;
        }
        self.gaps += bid - self.next;
        self.next = bid + 1;
        self.delivered += 1;
        self.latency.record(now.saturating_sub(t) / 1000);
        self.last_ns = now;
    }
}

pub(super) struct Target {
    pub(super) addr: SocketAddr,
    pub(super) ws_url: String,
}

pub(super) fn target(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("ws://"))
        .ok_or_else(|| format!("--url {url:?}: expected http://HOST:PORT"))?;
    let hostport = rest.split('/').next().unwrap_or(rest);
    let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
        .map_err(|e| format!("--url {url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("--url {url:?}: no address"))?;
    Ok(Target {
        addr,
        ws_url: format!("ws://{hostport}/socket.io/?EIO=4&transport=websocket"),
    })
}

/// One client up to the Socket.IO CONNECT answer.
pub(super) async fn connect(t: &Target, source: Option<IpAddr>) -> Result<Ws, String> {
    let sock = if t.addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e} (raise the fd limit: ulimit -n 20000)"))?;
    if let Some(ip) = source {
        sock.bind(SocketAddr::new(ip, 0))
            .map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let stream = sock
        .connect(t.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", t.addr))?;
    let _ = stream.set_nodelay(true);
    // An 8 KiB read buffer: tungstenite's default of 128 KiB per client is 640 MiB at 5000.
    let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(t.ws_url.as_str(), stream, Some(config))
            .await
            .map_err(|e| format!("WebSocket handshake: {e}"))?;
    let mut opened = false;
    while let Some(msg) = ws.next().await {
        let msg = msg.map_err(|e| format!("before CONNECT: {e}"))?;
        let Message::Text(text) = msg else { continue };
        match classify(text.as_str()) {
            Incoming::Open if !opened => {
                opened = true;
                ws.send(Message::text("40"))
                    .await
                    .map_err(|e| format!("sending CONNECT: {e}"))?;
            }
            Incoming::Ping => {
                let _ = ws.send(Message::text("3")).await;
            }
            Incoming::Connected if opened => return Ok(ws),
            Incoming::Refused(why) => return Err(format!("CONNECT refused: {why}")),
            // A late joiner's current values (the auction sends them before the answer).
            _ => {}
        }
    }
    Err("connection closed before the Socket.IO CONNECT answer".into())
}

/// Where a client's PONGs go: its own sink, or the bidder's writer task.
pub(super) enum Pong {
    Sink(Sink),
    Writer(mpsc::UnboundedSender<Message>),
}

pub(super) struct Run {
    /// The number of bids sent, once the bidder has stopped.
    pub(super) sent: watch::Receiver<Option<u64>>,
    pub(super) grace: Duration,
}

/// Reads broadcasts until every bid sent has arrived (or the grace period after the last bid
/// ends, or the connection does).
pub(super) async fn receive(
    stream: &mut Stream,
    pong: &mut Pong,
    bidder: Option<&Bidder>,
    mut run: Run,
) -> ClientStats {
    let mut st = ClientStats::new();
    let mut sent: Option<u64> = None;
    let grace = tokio::time::sleep(Duration::from_secs(86_400 * 365));
    tokio::pin!(grace);
    loop {
        if sent.is_some_and(|n| st.next > n) {
            break;
        }
        tokio::select! {
            msg = stream.next() => {
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => {
                        st.error = Some("server closed the connection".into());
                        break;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        st.error = Some(format!("read: {e}"));
                        break;
                    }
                };
                match classify(text.as_str()) {
                    Incoming::Bid { bid, t } => {
                        st.bid(bid, t, now_ns());
                        if let Some(b) = bidder {
                            if b.mode == FanoutMode::Window {
                                b.permits.add_permits(1);
                            }
                        }
                    }
                    Incoming::Ack(_) => {
                        if let Some(b) = bidder {
                            if b.mode == FanoutMode::Ack {
                                b.permits.add_permits(1);
                            }
                        }
                    }
                    Incoming::Ping => {
                        let ok = match pong {
                            Pong::Sink(s) => s.send(Message::text("3")).await.is_ok(),
                            Pong::Writer(w) => w.send(Message::text("3")).is_ok(),
                        };
                        if !ok {
                            st.error = Some("could not answer a PING".into());
                            break;
                        }
                    }
                    _ => {}
                }
            }
            r = run.sent.changed(), if sent.is_none() => {
                if r.is_err() {
                    break;
                }
                sent = *run.sent.borrow();
                if sent.is_some() {
                    grace.as_mut().reset(tokio::time::Instant::now() + run.grace);
                }
            }
            _ = &mut grace => break,
        }
    }
    st
}
