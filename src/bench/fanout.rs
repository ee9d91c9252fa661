//! `dispel bench fanout`: N WebSocket clients on one Socket.IO server, one of them bidding;
//! every client checks and times every broadcast.
//!
//! Each client speaks raw Engine.IO v4 over WebSocket (`/socket.io/?EIO=4&transport=websocket`):
//! OPEN `0{...}`, Socket.IO CONNECT `40`, CONNECT answer `40{...}`, a PONG `3` for every PING
//! `2`. The bidder (client 0) sends `42["replace old value",{"item":"lot","bid":K,"t":NS}]`
//! (window mode) or the same event with ack id K, `42K["replace old value",{...}]`, and waits
//! for its acknowledgement `43K[]` (ack mode; python-socketio acknowledges every handled event
//! that asks). `t` is the
//! send time on this process's monotonic clock, so every receiver computes the bid's latency
//! directly. Bids are numbered from 1 and broadcasts of one sender arrive in order over TCP:
//! a client that sees K+2 after K lost one, a K again is a duplicate.
//!
//! Nothing is shared on the hot path: every client task keeps its own counters and latency
//! histogram and hands them back when it ends.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::histogram::Histogram;
use crate::cli::{BenchFanoutArgs, FanoutMode};
use crate::wire::engineio::{self, Data, PacketType as EioType};
use crate::wire::socketio::{self, PacketType as SioType};

type Ws = WebSocketStream<TcpStream>;
type Sink = SplitSink<Ws, Message>;
type Stream = SplitStream<Ws>;

const REPLACED: &str = "replaced values";

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on this process's monotonic clock.
fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// What one received Engine.IO text message means to a client.
#[derive(Debug, PartialEq)]
enum Incoming {
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
struct Broadcast<'a>(#[serde(borrow)] std::borrow::Cow<'a, str>, BidArgs);

#[derive(serde::Deserialize)]
struct BidArgs {
    bid: u64,
    t: u64,
}

/// Decodes with the project's own Engine.IO and Socket.IO decoders.
fn classify(text: &str) -> Incoming {
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
struct ClientStats {
    /// Bids received in order, each once.
    delivered: u64,
    /// Bid numbers skipped over.
    gaps: u64,
    /// Bid numbers seen again (or out of order).
    dupes: u64,
    /// The next bid number expected.
    next: u64,
    /// Latency of every delivered bid, µs.
    latency: Histogram,
    /// When the last bid arrived (ns on `now_ns`).
    last_ns: u64,
    error: Option<String>,
}

impl ClientStats {
    fn new() -> ClientStats {
        ClientStats {
            next: 1,
            ..ClientStats::default()
        }
    }

    fn bid(&mut self, bid: u64, t: u64, now: u64) {
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

struct Target {
    addr: SocketAddr,
    ws_url: String,
}

fn target(url: &str) -> Result<Target, String> {
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
async fn connect(t: &Target, source: Option<IpAddr>) -> Result<Ws, String> {
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
enum Pong {
    Sink(Sink),
    Writer(mpsc::UnboundedSender<Message>),
}

/// What the bidder's reader tells the writer.
struct Bidder {
    mode: FanoutMode,
    permits: Arc<Semaphore>,
}

struct Run {
    /// The number of bids sent, once the bidder has stopped.
    sent: watch::Receiver<Option<u64>>,
    grace: Duration,
}

/// Reads broadcasts until every bid sent has arrived (or the grace period after the last bid
/// ends, or the connection does).
async fn receive(
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

struct Plan {
    mode: FanoutMode,
    bids: Option<u64>,
    duration: Option<Duration>,
}

/// The bidder's sending half: bids as the window allows, and the reader's PONGs.
async fn bid_writer(
    mut sink: Sink,
    mut pongs: mpsc::UnboundedReceiver<Message>,
    permits: Arc<Semaphore>,
    plan: Plan,
    sent_tx: watch::Sender<Option<u64>>,
    first_send: Arc<OnceLock<u64>>,
) -> Sink {
    let deadline = plan
        .duration
        .map(|d| tokio::time::Instant::now() + d)
        .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
    let stop = tokio::time::sleep_until(deadline);
    tokio::pin!(stop);
    let mut k = 0u64;
    let mut text = String::with_capacity(128);
    loop {
        if plan.bids.is_some_and(|m| k >= m) {
            break;
        }
        tokio::select! {
            biased;
            m = pongs.recv() => match m {
                Some(m) => if sink.send(m).await.is_err() { break },
                None => break,
            },
            _ = &mut stop => break,
            p = permits.acquire() => {
                let Ok(p) = p else { break };
                p.forget();
                k += 1;
                let t = now_ns();
                first_send.get_or_init(|| t);
                text.clear();
                use std::fmt::Write as _;
                let _ = match plan.mode {
                    FanoutMode::Ack => write!(text, "42{k}[\"replace old value\",{{\"item\":\"lot\",\"bid\":{k},\"t\":{t}}}]"),
                    FanoutMode::Window => write!(text, "42[\"replace old value\",{{\"item\":\"lot\",\"bid\":{k},\"t\":{t}}}]"),
                };
                if sink.send(Message::text(text.as_str())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = sent_tx.send(Some(k));
    // Keep answering PINGs until the reader is done.
    while let Some(m) = pongs.recv().await {
        let _ = sink.send(m).await;
    }
    sink
}

/// utime + stime of a process in seconds, from /proc/PID/stat.
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces), starting at field 3.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some(ticks as f64 / 100.0)
}

/// A `VmHWM`/`VmRSS`-style line of /proc/PID/status, in MiB.
fn status_mib(pid: &str, key: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: f64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The soft limit on open files, to explain a failure before it happens.
fn fd_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

pub fn run(args: BenchFanoutArgs) -> Result<ExitCode, crate::Error> {
    if args.clients == 0 {
        return Err("--clients must be at least 1".into());
    }
    if args.mode == FanoutMode::Window && args.window == 0 {
        return Err("--window must be at least 1".into());
    }
    if let Some(limit) = fd_limit() {
        if (limit as usize) < args.clients + 64 {
            return Err(format!(
                "{} clients need more than {limit} open files: run `ulimit -n {}` first (the server needs as many)",
                args.clients,
                (args.clients + 1024).max(4096)
            )
            .into());
        }
    }
    let target = target(&args.url)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    let result = runtime.block_on(drive(args.clone(), target))?;
    runtime.shutdown_timeout(Duration::from_millis(200));
    let ok = result["lost"] == 0 && result["duplicates"] == 0 && result["errors"] == 0;
    if args.json {
        println!("{result}");
    } else {
        print_table(&result);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn drive(args: BenchFanoutArgs, target: Target) -> Result<Value, crate::Error> {
    now_ns();
    let target = Arc::new(target);
    let n = args.clients;
    let plan = Plan {
        mode: args.mode,
        bids: args.bids,
        duration: match (args.duration, args.bids) {
            (Some(s), _) => Some(Duration::from_secs_f64(s.max(0.0))),
            (None, Some(_)) => None,
            (None, None) => Some(Duration::from_secs(10)),
        },
    };
    let initial = match args.mode {
        FanoutMode::Ack => 1,
        FanoutMode::Window => args.window,
    };
    let permits = Arc::new(Semaphore::new(0));
    let (sent_tx, sent_rx) = watch::channel(None::<u64>);
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), String>>(n.min(4096));
    let (go_tx, go_rx) = watch::channel(false);
    let connecting = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let first_send = Arc::new(OnceLock::new());
    let grace = Duration::from_secs_f64(args.grace.max(0.0));
    let sources = args.source_ips.max(1);
    let is_loopback_v4 = matches!(target.addr.ip(), IpAddr::V4(ip) if ip.is_loopback());

    let connect_start = Instant::now();
    let mut tasks = JoinSet::new();
    let mut bidder_parts = Some((plan, sent_tx));
    for i in 0..n {
        let target = target.clone();
        let ready = ready_tx.clone();
        let connecting = connecting.clone();
        let run = Run {
            sent: sent_rx.clone(),
            grace,
        };
        let source = (sources > 1 && is_loopback_v4)
            .then(|| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i % sources as usize) as u8)));
        let bidder = if i == 0 {
            bidder_parts.take().map(|(plan, sent_tx)| {
                (
                    plan,
                    sent_tx,
                    go_rx.clone(),
                    permits.clone(),
                    first_send.clone(),
                )
            })
        } else {
            None
        };
        tasks.spawn(async move {
            let ws = {
                let _permit = connecting.acquire().await;
                connect(&target, source).await
            };
            let ws = match ws {
                Ok(ws) => {
                    let _ = ready.send(Ok(())).await;
                    ws
                }
                Err(e) => {
                    let _ = ready.send(Err(e.clone())).await;
                    let mut st = ClientStats::new();
                    st.error = Some(e);
                    return (st, None);
                }
            };
            drop(ready);
            let (sink, mut stream) = ws.split();
            match bidder {
                None => {
                    let mut pong = Pong::Sink(sink);
                    let st = receive(&mut stream, &mut pong, None, run).await;
                    (st, Some((stream, pong)))
                }
                Some((plan, sent_tx, mut go, permits, first)) => {
                    let mode = plan.mode;
                    let (pong_tx, pong_rx) = mpsc::unbounded_channel::<Message>();
                    let writer_permits = permits.clone();
                    let w = tokio::spawn(async move {
                        let _ = go.wait_for(|g| *g).await;
                        bid_writer(sink, pong_rx, writer_permits, plan, sent_tx, first).await
                    });
                    let b = Bidder { mode, permits };
                    let mut pong = Pong::Writer(pong_tx);
                    let st = receive(&mut stream, &mut pong, Some(&b), run).await;
                    drop(pong);
                    match w.await {
                        Ok(sink) => (st, Some((stream, Pong::Sink(sink)))),
                        Err(_) => (st, None),
                    }
                }
            }
        });
    }
    drop(ready_tx);
    let mut connected = 0usize;
    let mut first_error = None;
    while let Some(r) = ready_rx.recv().await {
        match r {
            Ok(()) => connected += 1,
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let connect_s = connect_start.elapsed().as_secs_f64();
    if let Some(e) = first_error {
        tasks.abort_all();
        return Err(format!("{connected} of {n} clients connected; first error: {e}").into());
    }

    let pid = args.server_pid.map(|p| p.to_string());
    let server_cpu0 = pid.as_deref().and_then(cpu_seconds);
    let self_cpu0 = cpu_seconds("self");
    let rss_connected = pid.as_deref().and_then(|p| status_mib(p, "VmRSS:"));
    // The machine may be shared: say how busy it was when bidding started.
    let load: Option<f64> = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok());
    let start = Instant::now();
    let start_ns = now_ns();
    permits.add_permits(initial);
    let _ = go_tx.send(true);

    let mut all = ClientStats::new();
    let mut errors = 0u64;
    let mut error_sample = None;
    let mut last_ns = 0;
    let mut keep = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        let (st, parts) = r.map_err(|e| format!("client task failed: {e}"))?;
        all.delivered += st.delivered;
        all.gaps += st.gaps;
        all.dupes += st.dupes;
        all.latency.merge(&st.latency);
        last_ns = last_ns.max(st.last_ns);
        if let Some(e) = st.error {
            errors += 1;
            error_sample.get_or_insert(e);
        }
        // Connections stay open until every client is done, so early finishers do not make
        // the server handle disconnects while others still receive.
        keep.push(parts);
    }
    let wall = start.elapsed().as_secs_f64();
    let server_cpu = server_cpu0
        .zip(pid.as_deref().and_then(cpu_seconds))
        .map(|(a, b)| b - a);
    let self_cpu = self_cpu0
        .zip(cpu_seconds("self"))
        .map(|(a, b)| b - a)
        .unwrap_or(0.0);
    let peak = pid.as_deref().and_then(|p| status_mib(p, "VmHWM:"));
    drop(keep);

    let bids = sent_rx.borrow().unwrap_or(0);
    let expected = bids * n as u64;
    let lost = expected.saturating_sub(all.delivered);
    let first = first_send.get().copied().unwrap_or(start_ns);
    let active = (last_ns.saturating_sub(first)) as f64 / 1e9;
    let rate = if active > 0.0 {
        all.delivered as f64 / active
    } else {
        0.0
    };
    let h = &all.latency;
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(json!({
        "url": args.url,
        "clients": n,
        "mode": match args.mode { FanoutMode::Ack => "ack", FanoutMode::Window => "window" },
        "window": if args.mode == FanoutMode::Window { Some(args.window) } else { None },
        "connect_s": round(connect_s, 3),
        "bids": bids,
        "expected": expected,
        "delivered": all.delivered,
        "lost": lost,
        "duplicates": all.dupes,
        "errors": errors,
        "error_sample": error_sample,
        "bidding_s": round(active, 3),
        "wall_s": round(wall, 3),
        "msgs_per_s": rate.round() as u64,
        "bids_per_s": if active > 0.0 { (bids as f64 / active).round() as u64 } else { 0 },
        "latency_ms": {
            "p50": ms(h.quantile(0.5)),
            "p90": ms(h.quantile(0.9)),
            "p99": ms(h.quantile(0.99)),
            "max": ms(h.max()),
        },
        "server": pid.map(|p| json!({
            "pid": p.parse::<u64>().unwrap_or(0),
            "peak_rss_mib": peak.map(|v| round(v, 1)),
            "rss_connected_mib": rss_connected.map(|v| round(v, 1)),
            "cpu_s": server_cpu.map(|v| round(v, 2)),
            "cpu_pct": server_cpu.map(|v| (100.0 * v / wall.max(1e-9)).round() as u64),
        })),
        "load_avg_1m": load,
        "generator": {
            "threads": args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            "cpu_s": round(self_cpu, 2),
            "cpu_pct": (100.0 * self_cpu / wall.max(1e-9)).round() as u64,
        },
    }))
}

fn round(v: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (v * p).round() / p
}

fn print_table(r: &Value) {
    let num = |v: &Value| match v {
        Value::Null => "-".to_string(),
        v => v.to_string(),
    };
    let mut rows: Vec<(&str, String)> = vec![
        ("server", num(&r["url"]).trim_matches('"').to_string()),
        (
            "clients / mode",
            format!(
                "{} / {}{}",
                r["clients"],
                r["mode"].as_str().unwrap_or(""),
                r["window"]
                    .as_u64()
                    .map(|w| format!(" (window {w})"))
                    .unwrap_or_default()
            ),
        ),
        ("connect (all clients)", format!("{} s", r["connect_s"])),
        (
            "bids / bidding time",
            format!("{} in {} s", r["bids"], r["bidding_s"]),
        ),
        (
            "delivered / expected",
            format!("{} / {}", r["delivered"], r["expected"]),
        ),
        (
            "lost / duplicates / errors",
            format!("{} / {} / {}", r["lost"], r["duplicates"], r["errors"]),
        ),
        ("delivered messages/s", num(&r["msgs_per_s"])),
        (
            "latency p50 / p90 / p99 / max",
            format!(
                "{} / {} / {} / {} ms",
                r["latency_ms"]["p50"],
                r["latency_ms"]["p90"],
                r["latency_ms"]["p99"],
                r["latency_ms"]["max"]
            ),
        ),
    ];
    if let Some(s) = r["server"].as_object() {
        rows.push((
            "server peak RSS (VmHWM)",
            format!("{} MiB", num(&s["peak_rss_mib"])),
        ));
        rows.push((
            "server CPU during the run",
            format!("{} s ({} %)", num(&s["cpu_s"]), num(&s["cpu_pct"])),
        ));
    }
    rows.push((
        "generator CPU",
        format!(
            "{} s ({} %, {} threads)",
            r["generator"]["cpu_s"], r["generator"]["cpu_pct"], r["generator"]["threads"]
        ),
    ));
    rows.push(("load average (1 min) at start", num(&r["load_avg_1m"])));
    if let Some(e) = r["error_sample"].as_str() {
        rows.push(("first client error", e.to_string()));
    }
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        println!("{k:<w$}  {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_a_client_receives() {
        assert_eq!(
            classify(r#"0{"sid":"x","upgrades":[],"pingInterval":25000,"pingTimeout":20000}"#),
            Incoming::Open
        );
        assert_eq!(classify("2"), Incoming::Ping);
        assert_eq!(classify(r#"40{"sid":"a"}"#), Incoming::Connected);
        assert_eq!(
            classify(r#"42["replaced values",{"item":"lot","bid":7,"t":123}]"#),
            Incoming::Bid { bid: 7, t: 123 }
        );
        assert_eq!(classify(r#"437[{"ok":true}]"#), Incoming::Ack(7));
        assert_eq!(classify(r#"42["other",{"bid":7,"t":1}]"#), Incoming::Other);
        // An escaped name is the same name; a bid without its numbers is not a bid.
        assert_eq!(
            classify(r#"42["replaced\u0020values",{"t":5,"bid":8}]"#),
            Incoming::Bid { bid: 8, t: 5 }
        );
        assert_eq!(
            classify(r#"42["replaced values",{"bid":"7","t":1}]"#),
            Incoming::Other
        );
        assert_eq!(
            classify(r#"42["replaced values",{"t":1}]"#),
            Incoming::Other
        );
        assert_eq!(
            classify(r#"42["replaced values",{"bid":7,"t":1"#),
            Incoming::Other
        );
        assert!(matches!(
            classify(r#"44{"message":"no"}"#),
            Incoming::Refused(_)
        ));
    }

    #[test]
    fn counts_gaps_and_duplicates() {
        let mut st = ClientStats::new();
        for b in [1, 2, 4, 4, 3, 5] {
            st.bid(b, 0, 2_000_000);
        }
        assert_eq!((st.delivered, st.gaps, st.dupes, st.next), (4, 1, 2, 6));
        assert_eq!(st.latency.quantile(0.5), 2000);
    }
}
