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
use serde::Serialize;
use serde_json::Value;
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

mod bidder;
mod client;
mod report;

use bidder::*;
use client::*;
use report::*;

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
    let report = runtime.block_on(drive(args.clone(), target))?;
    runtime.shutdown_timeout(Duration::from_millis(200));
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        report.print_table();
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn drive(args: BenchFanoutArgs, target: Target) -> Result<Report, crate::Error> {
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
    Ok(Report {
        url: args.url.clone(),
        clients: n,
        mode: match args.mode {
            FanoutMode::Ack => "ack",
            FanoutMode::Window => "window",
        },
        window: (args.mode == FanoutMode::Window).then_some(args.window),
        connect_s: round(connect_s, 3),
        bids,
        expected,
        delivered: all.delivered,
        lost,
        duplicates: all.dupes,
        errors,
        error_sample,
        bidding_s: round(active, 3),
        wall_s: round(wall, 3),
        msgs_per_s: rate.round() as u64,
        bids_per_s: if active > 0.0 {
            (bids as f64 / active).round() as u64
        } else {
            0
        },
        latency_ms: Latency {
            p50: ms(h.quantile(0.5)),
            p90: ms(h.quantile(0.9)),
            p99: ms(h.quantile(0.99)),
            max: ms(h.max()),
        },
        server: pid.map(|p| ServerUse {
            pid: p.parse::<u64>().unwrap_or(0),
            peak_rss_mib: peak.map(|v| round(v, 1)),
            rss_connected_mib: rss_connected.map(|v| round(v, 1)),
            cpu_s: server_cpu.map(|v| round(v, 2)),
            cpu_pct: server_cpu.map(|v| (100.0 * v / wall.max(1e-9)).round() as u64),
        }),
        load_avg_1m: load,
        generator: Generator {
            threads: args
                .threads
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            cpu_s: round(self_cpu, 2),
            cpu_pct: (100.0 * self_cpu / wall.max(1e-9)).round() as u64,
        },
    })
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
