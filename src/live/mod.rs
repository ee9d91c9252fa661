//! `dispel serve`: the live server.
//!
//! ```text
//! TcpListener::accept -> Tap (every byte -> flow::Session -> trace)
//!   -> http::connection: HTTP/1.1 requests, routing
//!        GET /auctions         the page
//!        /socket.io/ polling   engineio::EioServer::polling
//!        /socket.io/ websocket dispel's 101, then wire::ws_message -> EioServer::websocket
//!   Engine.IO sessions -> socketio::SioServer (namespaces, dispatch, broadcast) -> socketio::App
//! ```
//! Dispatch and broadcast events come from here; every event about bytes comes from the tap.

mod apps;
mod engineio;
mod http;
pub mod mq;
mod observed;
mod reply;
mod socketio;
mod step;
mod tap;
mod timeline;
mod view;
pub mod watch;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::cli::{App, ServeArgs};
use crate::flow::Limits;
use crate::trace::{self, Event, Filter, Stage, Tracer};

pub use crate::replay::record::Recorder;

/// Seconds since the server started: the `t` of every live event.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

/// Everything `serve` was configured with, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub app: App,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub max_payload: usize,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub max_connections: usize,
    pub max_queue: usize,
    pub request_timeout: Duration,
    /// Node-style CORS headers on every answer (the conformance suites).
    pub cors: bool,
    pub record: Option<PathBuf>,
    /// Whose behaviour the server reproduces on the wire.
    pub flavor: engineio::Flavor,
    /// Which pages may open a session (Flask-SocketIO's `cors_allowed_origins`).
    pub origins: engineio::Origins,
    /// The auction's demo extras (late joiners, `bid-with-ack`, `/admin`, `upload`).
    pub extras: bool,
}

impl Config {
    pub fn from_args(args: &ServeArgs) -> Config {
        let conformance = args.app == App::Conformance;
        // python-engineio's defaults; the conformance suites expect 300/200 ms.
        let (interval, timeout) = if conformance {
            (300, 200)
        } else {
            (25_000, 20_000)
        };
        // A paused client cannot answer pings: in teaching mode the timeout is an hour.
        let timeout = if args.step.is_some() {
            3_600_000
        } else {
            timeout
        };
        Config {
            app: args.app,
            ping_interval: Duration::from_millis(args.limits.ping_interval.unwrap_or(interval)),
            ping_timeout: Duration::from_millis(args.limits.ping_timeout.unwrap_or(timeout)),
            max_payload: args.limits.max_payload,
            max_head_bytes: args.limits.max_head_bytes,
            max_headers: args.limits.max_headers,
            max_connections: args.limits.max_connections,
            max_queue: args.limits.max_queue,
            request_timeout: Duration::from_millis(args.limits.request_timeout_ms),
            cors: conformance,
            record: args.record.clone(),
            flavor: if conformance {
                engineio::Flavor::Node
            } else {
                engineio::Flavor::Python
            },
            origins: match args.cors_allowed_origins.as_slice() {
                [] => engineio::Origins::SameOrigin,
                list if list.iter().any(|o| o == "*") => engineio::Origins::Any,
                list if list.iter().all(|o| o.is_empty()) => engineio::Origins::Disabled,
                list => engineio::Origins::List(list.to_vec()),
            },
            extras: args.extras,
        }
    }

    fn limits(&self) -> Limits {
        Limits {
            max_headers: self.max_headers,
            max_head_bytes: self.max_head_bytes,
            max_message: self.max_payload,
        }
    }
}

/// The running server's shared state.
pub struct Server {
    config: Config,
    tracer: Tracer,
    clock: Clock,
    socketio: Arc<engineio::EioServer>,
    engineio: Option<Arc<engineio::EioServer>>,
    recorder: Option<Arc<Recorder>>,
    /// The live view's feed (`/trace`), when tracing is on.
    hub: Option<view::Hub>,
    /// What every connection's tap shares.
    taps: tap::TapConfig,
    next_conn: AtomicU64,
    slots: Arc<Semaphore>,
    /// The Socket.IO server, which the message queue delivers to.
    sio: Arc<socketio::SioServer>,
}

impl Server {
    pub fn new(
        config: Config,
        tracer: Tracer,
        hub: Option<view::Hub>,
        stepper: Option<Arc<step::Stepper>>,
    ) -> std::io::Result<Arc<Server>> {
        let clock = Clock::new();
        let eio_config = engineio::EioConfig {
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            max_payload: config.max_payload,
            max_queue: config.max_queue,
            flavor: config.flavor,
            origins: config.origins.clone(),
        };
        let app: Arc<dyn socketio::App> = match config.app {
            App::Auction => Arc::new(apps::Auction::new(config.extras)),
            App::Conformance => Arc::new(apps::Conformance),
        };
        let sio = Arc::new(socketio::SioServer::new(
            app,
            config.flavor,
            tracer.clone(),
            clock,
        ));
        let socketio =
            engineio::EioServer::new(eio_config.clone(), sio.clone(), tracer.clone(), clock);
        let engineio = (config.app == App::Conformance).then(|| {
            engineio::EioServer::new(eio_config, Arc::new(apps::EioEcho), tracer.clone(), clock)
        });
        let recorder = match &config.record {
            Some(path) => Some(Arc::new(Recorder::create(path)?)),
            None => None,
        };
        let taps = tap::TapConfig {
            memo: crate::flow::Memo::shared(),
            tracer: tracer.clone(),
            start: clock.start,
            limits: config.limits(),
            recorder: recorder.clone(),
            stepper,
        };
        Ok(Arc::new(Server {
            sio,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            config,
            tracer,
            clock,
            socketio,
            engineio,
            taps,
            recorder,
            hub,
            next_conn: AtomicU64::new(1),
        }))
    }

    /// Accepts connections until the future `stop` completes.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let (stream, peer) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: wait a moment, keep serving.
                        self.tracer.emit(Event::new(Stage::Error, self.clock.now(), None, None, format!("accept failed: {e}")).with("rule", "accept(2) failed").with("where", "tcp.accept"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                _ = &mut stop => return,
            };
            // Every ack waits for a delayed ACK without this (40 ms on Linux).
            let _ = stream.set_nodelay(true);
            let local = stream.local_addr().unwrap_or(peer);
            let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
            let srv = self.clone();
            let permit = self.slots.clone().try_acquire_owned();
            // Made here, not in the task: the recording numbers connections in accept order.
            let mut tap = tap::Tap::new(stream, conn, (peer, local), &srv.taps);
            tokio::spawn(async move {
                match permit {
                    Ok(_permit) => http::connection(tap, conn, srv).await,
                    Err(_) => {
                        srv.tracer.emit(
                            Event::new(
                                Stage::Error,
                                srv.clock.now(),
                                Some(conn),
                                None,
                                format!(
                                    "connection limit ({}) reached: 503",
                                    srv.config.max_connections
                                ),
                            )
                            .with("rule", "--max-connections")
                            .with("where", "tcp.accept"),
                        );
                        let _ = http::respond(
                            &mut tap,
                            503,
                            &[("Retry-After", "1".into())],
                            b"server full, try again\n",
                            false,
                        )
                        .await;
                    }
                }
            });
        }
    }

    /// Flushes the capture being recorded, if any.
    pub fn finish(&self) -> Result<(), String> {
        match &self.recorder {
            Some(r) => r.finish(),
            None => Ok(()),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The trace of a live command (serve, watch): the terminal or `--out`, the live view, and the
/// raw trace a `--report` is made from.
pub(crate) struct LiveTrace {
    pub tracer: Tracer,
    pub hub: Option<view::Hub>,
    writer: Option<trace::TraceWriter>,
    /// The raw trace a `--report` is made from, and the report's path.
    report: Option<(PathBuf, PathBuf)>,
    /// Where the links point (its async mode may change once a watched app has started).
    linker: crate::links::Linker,
}

impl LiveTrace {
    pub fn start(
        args: &crate::cli::TraceArgs,
        no_trace: bool,
        report: Option<&PathBuf>,
        what: &str,
        linker: crate::links::Linker,
        processor: Option<Box<dyn trace::Processor>>,
    ) -> Result<LiveTrace, crate::Error> {
        if report.is_some() && no_trace {
            return Err("--report needs the trace: drop --no-trace".into());
        }
        let filter = Filter::new(&args.conn, &args.stage, args.quiet)?;
        // The raw trace a `--report` is made from: every event, whatever the terminal shows.
        let report = report.map(|out| {
            let raw =
                std::env::temp_dir().join(format!("dispel-{what}-{}.jsonl", std::process::id()));
            (raw, out.clone())
        });
        let hub = (!no_trace).then(view::Hub::new);
        let (tracer, writer) = match &hub {
            None => (Tracer::disabled(), None),
            Some(hub) => {
                let mut outputs = vec![
                    trace::Output {
                        sink: trace::sink_for(args, linker.clone())?,
                        filter,
                        watched: None,
                    },
                    // The live view: everything, but only while someone is watching.
                    trace::Output {
                        sink: Box::new(hub.sink(linker.clone())),
                        filter: Filter::default(),
                        watched: Some(hub.viewers()),
                    },
                ];
                if let Some((path, _)) = &report {
                    let file = std::fs::File::create(path)
                        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                    outputs.push(trace::Output {
                        sink: Box::new(trace::Jsonl::new(Box::new(file), linker.clone())),
                        filter: Filter::default(),
                        watched: None,
                    });
                }
                let (t, w) = Tracer::start_processed(outputs, processor);
                (t, Some(w))
            }
        };
        Ok(LiveTrace {
            tracer,
            hub,
            writer,
            report,
            linker,
        })
    }

    /// Where the trace's links point.
    pub fn linker(&self) -> &crate::links::Linker {
        &self.linker
    }

    /// Writes out what is left of the trace, then the report if one was asked for (`app`: the
    /// watched app's folder, whose lines the report quotes, and its interpreter, whose
    /// installed versions the report links).
    pub fn finish(
        self,
        what: &str,
        title: Option<String>,
        app: Option<PathBuf>,
        python: Option<PathBuf>,
        hand_in: bool,
    ) -> Result<(), crate::Error> {
        if let Some(w) = self.writer {
            w.finish()?;
        }
        if let Some((raw, out)) = &self.report {
            let made = crate::report::write(&crate::report::Request {
                input: raw,
                out: Some(out),
                html: crate::report::is_html_path(out),
                versions: self.linker.set(),
                async_mode: (what == "watch").then(|| self.linker.async_mode()),
                async_mode_known: Some("reported by the app when it started"),
                server_port: None,
                conn: None,
                app: app.as_deref(),
                python: python.as_deref(),
                site_packages: None,
                title: title.as_deref(),
                hand_in,
            });
            let _ = std::fs::remove_file(raw);
            made?;
            eprintln!("dispel {what}: report written to {}", out.display());
        }
        Ok(())
    }
}

pub fn run(args: ServeArgs) -> Result<ExitCode, crate::Error> {
    let linker = args.trace.linker()?;
    let live = LiveTrace::start(
        &args.trace,
        args.no_trace,
        args.report.as_ref(),
        "serve",
        linker.clone(),
        Some(Box::new(crate::flow::Diagnoser::new(linker))),
    )?;
    let (tracer, hub) = (live.tracer.clone(), live.hub.clone());
    let config = Config::from_args(&args);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let listener = TcpListener::bind((args.host.as_str(), args.port))
            .await
            .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
        let addr: SocketAddr = listener.local_addr()?;
        if !is_loopback(&args.host) {
            eprintln!("dispel serve: warning: listening on {addr}: anyone who can reach this machine can connect");
        }
        let shown = if addr.ip().is_unspecified() { SocketAddr::from(([127, 0, 0, 1], addr.port())) } else { addr };
        let what = match config.app {
            App::Auction => format!("http://{shown}/auctions"),
            App::Conformance => format!("http://{shown}/ (engine.io and socket.io conformance)"),
        };
        let stepper = args.step.map(|n| step::Stepper::start((n > 0).then_some(n), args.trace.versions, args.step_key.clone()));
        let step_key = stepper.as_ref().map(|s| s.key().to_string());
        if let Some(n) = args.step {
            let which = if n > 0 { format!("connection #{n}") } else { "the first Socket.IO connection".to_string() };
            eprintln!("dispel serve: teaching mode: {which} pauses before each stage; press Enter to go on");
        }
        let has_hub = hub.is_some();
        let server = Server::new(config, tracer.clone(), hub, stepper)?;
        if let Some(url) = &args.queue.message_queue {
            let queue = mq::Queue::start(
                mq::QueueConfig {
                    url: url.clone(),
                    channel: args.queue.channel.clone(),
                    optional: args.queue.message_queue_optional,
                },
                server.sio.clone(),
                tracer,
                server.clock,
            )
            .await?;
            eprintln!(
                "dispel serve: message queue {url}, channel {}, this process is host {}",
                queue.channel, queue.host_id
            );
        }
        eprintln!("dispel serve: listening on {what}   (Ctrl-C to stop)");
        if has_hub {
            eprintln!("dispel serve: live trace for the projector on http://{shown}/trace");
            if let Some(key) = step_key.filter(|k| !k.is_empty()) {
                eprintln!("dispel serve: step from the page at http://{shown}/trace?key={key}   (the key is the instructor's: others can watch, not step)");
            }
        }
        server.clone().serve(listener, shutdown_signal()).await;
        server.finish()?;
        Ok::<(), crate::Error>(())
    });
    // Dropping the runtime ends every connection; their taps write tcp.close before the
    // writer stops.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result?;
    live.finish(
        "serve",
        Some("dispel serve's auction".into()),
        None,
        None,
        false,
    )?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
