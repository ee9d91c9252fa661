//! `dispel watch -- COMMAND`: narrates a real app's traffic as it happens, with no root and
//! no capture.
//!
//! ```text
//! browser --> dispel (the port the app asked for) --tap--> the app (a private loopback port)
//! ```
//!
//! dispel starts the command with a small hook on its `PYTHONPATH` (`sitecustomize.py`,
//! shipped in this binary): the first listening socket the app binds is moved to a private
//! loopback port dispel chose, and dispel is told the address the app asked for, where it then
//! listens in the app's place. Every connection is passed through byte for byte, both ways,
//! with the same [`Tap`] `dispel serve` reads its own sockets with, so the trace is the same
//! decoding: TCP, HTTP, the handshake, frames, Engine.IO, Socket.IO. For an app started another
//! way (gunicorn with a config file, a container), `--port` and `--app-port` say where.
//!
//! The app's output passes through; when it exits, dispel exits with its status; Ctrl-C
//! reaches both (they share the terminal's process group), and dispel waits for the app. If
//! dispel itself is killed, the app gets SIGTERM (on Linux, a parent-death signal).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::cli::WatchArgs;
use crate::flow::Limits;
use crate::trace::{Event, Stage, Tracer};
use crate::wire::http;

use super::observed::{self, AppInfo, Joiner};
use super::tap::{Tap, TapConfig};
use super::timeline::{InOrder, Timeline};
use super::{step, view, LiveTrace, Recorder};

const HOOK: &str = include_str!("../watch/sitecustomize.py");

/// How long a connection that arrives before the app listens waits for it.
const APP_READY: Duration = Duration::from_secs(10);

/// Where the app listens and where dispel does.
#[derive(Debug, Clone)]
struct Ports {
    public: SocketAddr,
    app: SocketAddr,
}

/// What every relayed connection shares.
struct Relay {
    taps: TapConfig,
    app: SocketAddr,
    hub: Option<view::Hub>,
    tracer: Tracer,
    start: Instant,
    next_conn: AtomicU64,
}

pub fn run(args: WatchArgs) -> Result<ExitCode, crate::Error> {
    let Some(program) = args.command.first() else {
        return Err(
            "watch needs the command that starts the app: dispel watch -- python app.py".into(),
        );
    };
    let info = Arc::new(Mutex::new(AppInfo::default()));
    // The links point at what the app has installed: its interpreter's, unless told.
    let asked = args.trace.python.is_some() || args.trace.site_packages.is_some();
    let is_python = Path::new(program)
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("python"));
    let linker = if !asked && is_python {
        crate::links::Linker::from_options(
            args.trace.versions,
            Some(Path::new(program)),
            None,
            args.trace.async_mode,
        )
        .unwrap_or_else(|_| args.trace.versions.into())
    } else {
        args.trace.linker()?
    };
    let joiner = Joiner::new(args.no_tracer, linker.clone());
    let timeline = Timeline::start();
    // The tracer's reports come after the bytes they caused: held a moment, put in order.
    let processor: Box<dyn crate::trace::Processor> = if args.no_tracer {
        Box::new(joiner)
    } else {
        Box::new(InOrder::new(joiner, timeline))
    };
    let live = LiveTrace::start(
        &args.trace,
        false,
        args.report.as_ref(),
        "watch",
        linker,
        Some(processor),
    )?;
    let recorder = match &args.record {
        Some(path) => Some(Arc::new(Recorder::create(path)?)),
        None => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let status = runtime.block_on(watch(
        &args,
        program,
        &live,
        recorder.clone(),
        info.clone(),
        timeline,
    ));
    runtime.shutdown_timeout(Duration::from_secs(1));
    let traced = info.lock().map(|i| i.python.is_some()).unwrap_or(true);
    if !args.no_tracer && !traced && status.is_ok() {
        eprintln!(
            "dispel watch: {program} never started Flask-SocketIO (no SocketIO(app) or init_app ran in a Python dispel could reach): the trace has the wire only, without the app's calls"
        );
    }
    if let Some(r) = &recorder {
        r.finish()?;
    }
    let status = status?;
    let (app_dir, python) = info
        .lock()
        .map(|i| {
            (
                i.app_dir.clone().map(PathBuf::from),
                i.executable.clone().map(PathBuf::from),
            )
        })
        .unwrap_or_default();
    let script = app_name(&args.command);
    let source = app_source(&args.command, app_dir);
    live.finish(
        "watch",
        Some(format!("the app {script}, watched")),
        source,
        python,
        args.hand_in,
    )?;
    Ok(status)
}

async fn watch(
    args: &WatchArgs,
    program: &str,
    live: &LiveTrace,
    recorder: Option<Arc<Recorder>>,
    info: Arc<Mutex<AppInfo>>,
    timeline: Timeline,
) -> Result<ExitCode, crate::Error> {
    let start = timeline.instant();
    // Where the hook reports the app's bind, and the tracer what the app does.
    let control = TcpListener::bind(("127.0.0.1", 0)).await?;
    let control_addr = control.local_addr()?;
    let (binds_tx, mut binds) = tokio::sync::mpsc::channel(4);
    let app_port = match args.app_port {
        Some(p) => p,
        None => free_port()?,
    };
    tokio::spawn(control_loop(
        control,
        binds_tx,
        live.tracer.clone(),
        info,
        live.linker().clone(),
        timeline,
        Arc::new(Started {
            command: args.command.clone(),
            listens: SocketAddr::from(([127, 0, 0, 1], app_port)),
        }),
    ));
    let hook_dir = std::env::temp_dir().join(format!("dispel-watch-{}", std::process::id()));
    std::fs::create_dir_all(&hook_dir)
        .and_then(|_| std::fs::write(hook_dir.join("sitecustomize.py"), HOOK))
        .map_err(|e| format!("cannot write the hook to {}: {e}", hook_dir.display()))?;
    let _cleanup = RemoveOnDrop(hook_dir.clone());
    let mut python_path = hook_dir.clone().into_os_string();
    if let Some(existing) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        python_path.push(if cfg!(windows) { ";" } else { ":" });
        python_path.push(existing);
    }
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(&args.command[1..])
        .env("PYTHONPATH", &python_path)
        .env("DISPEL_WATCH_CONTROL", control_addr.to_string())
        .env("DISPEL_WATCH_TRACE", if args.no_tracer { "0" } else { "1" })
        // With both ports given the app is already started on the private one: the hook
        // leaves its sockets alone.
        .env(
            "DISPEL_WATCH_APP_PORT",
            if args.app_port.is_some() && args.port.is_some() {
                String::new()
            } else {
                app_port.to_string()
            },
        );
    die_with_dispel(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{program}: command not found"),
        _ => format!("cannot start {program}: {e}"),
    })?;

    // Where to listen: given, or what the app asks for (reported by the hook).
    let ports = match args.port {
        Some(p) => Ports {
            public: SocketAddr::new(parse_host(args.host.as_deref().unwrap_or("127.0.0.1"))?, p),
            app: SocketAddr::from(([127, 0, 0, 1], app_port)),
        },
        None => {
            let mut hinted = false;
            let (host, port) = loop {
                tokio::select! {
                    bind = binds.recv() => match bind {
                        Some(b) => break b,
                        None => return Err("the control connection closed".into()),
                    },
                    status = child.wait() => {
                        let status = status?;
                        eprintln!(
                            "dispel watch: {program} exited ({}) before it listened on a port",
                            describe(&status)
                        );
                        return Ok(exit_code(&status));
                    }
                    _ = shutdown_signal() => {
                        let status = stop(&mut child).await?;
                        return Ok(exit_code(&status));
                    }
                    _ = tokio::time::sleep(Duration::from_secs(15)), if !hinted => {
                        hinted = true;
                        eprintln!(
                            "dispel watch: {program} has not listened on a port yet (15 s). If it is not a Python app, or binds in an unusual way, start it on a port of its own and give dispel --port and --app-port; still waiting"
                        );
                    }
                }
            };
            let host = args.host.clone().unwrap_or(host);
            Ports {
                public: SocketAddr::new(parse_host(&host)?, port),
                app: SocketAddr::from(([127, 0, 0, 1], app_port)),
            }
        }
    };
    let listener = match TcpListener::bind(ports.public).await {
        Ok(l) => l,
        Err(e) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(format!(
                "cannot listen on {} in the app's place: {e} (is another server running there? --port picks another)",
                ports.public
            )
            .into());
        }
    };
    let public = listener.local_addr()?;
    if !public.ip().is_loopback() {
        eprintln!("dispel watch: warning: listening on {public}: anyone who can reach this machine can connect");
    }
    let shown = if public.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], public.port()))
    } else {
        public
    };
    eprintln!(
        "dispel watch: open http://{shown}/ as usual: dispel listens there and passes everything to the app, which now listens on {} (its own log shows that port)",
        ports.app
    );
    if live.hub.is_some() {
        eprintln!("dispel watch: live trace for the projector on http://{shown}/trace");
    }
    let stepper = args.step.map(|n| {
        step::Stepper::start(
            (n > 0).then_some(n),
            args.trace.versions,
            args.step_key.clone(),
        )
    });
    let relay = Arc::new(Relay {
        taps: TapConfig {
            memo: crate::flow::Memo::shared(),
            tracer: live.tracer.clone(),
            start,
            limits: Limits {
                max_headers: 64,
                max_head_bytes: 16 * 1024,
                max_message: 100 * 1024 * 1024,
            },
            recorder,
            stepper,
        },
        app: ports.app,
        hub: live.hub.clone(),
        tracer: live.tracer.clone(),
        start,
        next_conn: AtomicU64::new(1),
    });
    // Later binds (a reloader's child) are reported too; only the first one moves a port.
    tokio::spawn(async move { while binds.recv().await.is_some() {} });
    let status = tokio::select! {
        status = child.wait() => status?,
        _ = accept_loop(listener, relay.clone()) => child.wait().await?,
        _ = shutdown_signal() => stop(&mut child).await?,
    };
    eprintln!("dispel watch: {program} exited ({})", describe(&status));
    Ok(exit_code(&status))
}

/// Reads what the hook and the tracer send, one JSON line at a time, on as many connections as
/// the app opens (one per process): the address the app asked for goes to `binds`, what the
/// app did becomes trace events.
async fn control_loop(
    control: TcpListener,
    binds: tokio::sync::mpsc::Sender<(String, u16)>,
    tracer: Tracer,
    info: Arc<Mutex<AppInfo>>,
    linker: crate::links::Linker,
    timeline: Timeline,
    started: Arc<Started>,
) {
    loop {
        let Ok((stream, _)) = control.accept().await else {
            continue;
        };
        let (binds, tracer, info, linker, started) = (
            binds.clone(),
            tracer.clone(),
            info.clone(),
            linker.clone(),
            started.clone(),
        );
        tokio::spawn(async move {
            // One connection per process of the app: its chains, by number.
            let mut chains = observed::Chains::new();
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                match msg["event"].as_str() {
                    Some("bind") => {
                        let host = msg["host"].as_str().unwrap_or("");
                        let host = if host.is_empty() { "0.0.0.0" } else { host };
                        if let Some(port) = msg["port"].as_u64().and_then(|p| u16::try_from(p).ok())
                        {
                            let _ = binds.send((host.to_string(), port)).await;
                        }
                    }
                    Some("hello") => {
                        let hello = AppInfo::from_hello(&msg);
                        eprintln!("dispel watch: {}", hello.describe());
                        // The links follow the server of the mode the app runs on.
                        if let Some(mode) = hello
                            .async_mode
                            .as_deref()
                            .and_then(crate::links::AsyncMode::parse)
                        {
                            linker.set_async_mode(mode);
                        }
                        // In the trace too, so that a report made from it later knows what
                        // the app ran and where its source is.
                        let source =
                            app_source(&started.command, hello.app_dir.as_ref().map(PathBuf::from));
                        tracer.emit(hello.event(
                            timeline.place(msg["t"].as_f64()),
                            &app_name(&started.command),
                            source.as_deref(),
                            started.listens,
                        ));
                        if let Ok(mut i) = info.lock() {
                            *i = hello;
                        }
                    }
                    Some("tracer_error") => {
                        eprintln!(
                            "dispel watch: the tracer could not attach to {} ({}); the wire is still narrated",
                            msg["module"], msg["error"]
                        );
                    }
                    Some("chain") => {
                        let snapshot = info.lock().map(|i| i.clone()).unwrap_or_default();
                        if let Some(n) = msg["id"].as_u64() {
                            chains.insert(n, observed::chain(&msg["frames"], &snapshot));
                        }
                    }
                    _ => {
                        if let Some(e) =
                            observed::event(&msg, timeline.place(msg["t"].as_f64()), &chains)
                        {
                            tracer.emit(e);
                        }
                    }
                }
            }
        });
    }
}

async fn accept_loop(listener: TcpListener, relay: Arc<Relay>) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().unwrap_or(peer);
        let conn = relay.next_conn.fetch_add(1, Ordering::Relaxed);
        // Made here, not in the task: the recording numbers connections in accept order.
        let tap = Tap::new(stream, conn, (peer, local), &relay.taps);
        let relay = relay.clone();
        tokio::spawn(async move {
            connection(tap, conn, &relay).await;
        });
    }
}

/// One client connection: the live view's, or the app's, passed through unchanged.
async fn connection(mut tap: Tap, conn: u64, relay: &Relay) {
    // The first request decides: the live view's paths are dispel's, all else is the app's.
    let mut head = Vec::with_capacity(2048);
    if relay.hub.is_some() {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        let mut chunk = [0u8; 4096];
        loop {
            match http::parse_request(&head, 64, 16 * 1024) {
                Ok(Some(req)) => {
                    let step = matches!(req.method.as_str(), "GET" | "POST")
                        && req.path() == "/trace/step";
                    if step
                        || req.method == "GET"
                            && matches!(req.path(), "/trace" | "/trace/" | "/trace/events")
                    {
                        if let Some(hub) = &relay.hub {
                            if step {
                                tap.detach("live view: this connection's own bytes are not traced");
                                let (status, _, body) =
                                    view::step_answer(relay.taps.stepper.as_deref(), &req);
                                let _ = super::http::respond(
                                    &mut tap,
                                    status,
                                    &[("Content-Type", "text/plain; charset=utf-8".into())],
                                    body.as_bytes(),
                                    false,
                                )
                                .await;
                            } else if req.path() == "/trace/events" {
                                super::http::event_stream(tap, hub, &req).await;
                            } else {
                                tap.detach("live view: this connection's own bytes are not traced");
                                let _ = super::http::respond(
                                    &mut tap,
                                    200,
                                    &[("Content-Type", "text/html; charset=utf-8".into())],
                                    view::PAGE.as_bytes(),
                                    false,
                                )
                                .await;
                            }
                        }
                        return;
                    }
                    break;
                }
                Ok(None) => {}
                Err(_) => break,
            }
            match tokio::time::timeout_at(deadline, tap.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => head.extend_from_slice(&chunk[..n]),
                Ok(_) if head.is_empty() => return,
                _ => break,
            }
        }
    }
    let Some(mut upstream) = connect_app(relay, conn).await else {
        return;
    };
    if !head.is_empty() && upstream.write_all(&head).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut tap, &mut upstream).await;
}

/// Connects to the app, waiting a little for one that is still starting.
async fn connect_app(relay: &Relay, conn: u64) -> Option<TcpStream> {
    let deadline = tokio::time::Instant::now() + APP_READY;
    let mut said = false;
    loop {
        match TcpStream::connect(relay.app).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                return Some(s);
            }
            Err(e) if tokio::time::Instant::now() >= deadline => {
                relay.tracer.emit(
                    Event::new(
                        Stage::Error,
                        relay.start.elapsed().as_secs_f64(),
                        Some(conn),
                        None,
                        format!("the app does not accept connections on {}: {e}; the client's connection is closed", relay.app),
                    )
                    .with("rule", "the watched app must listen")
                    .with("where", "tcp.accept"),
                );
                return None;
            }
            Err(_) => {
                if !said {
                    said = true;
                    eprintln!(
                        "dispel watch: a client connected before the app listens on {}; waiting up to {} s",
                        relay.app,
                        APP_READY.as_secs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// The app is told to stop (SIGTERM) if dispel dies without stopping it, killed with SIGKILL
/// say: it would otherwise go on holding its port, with nobody to relay to it.
#[cfg(target_os = "linux")]
fn die_with_dispel(cmd: &mut tokio::process::Command) {
    let parent = i32::try_from(std::process::id()).unwrap_or(0);
    // SAFETY: between fork and exec the closure calls only async-signal-safe functions
    // (prctl, getppid, raise) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dispel died before the prctl: nobody will send the signal.
            if libc::getppid() != parent {
                libc::raise(libc::SIGTERM);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_dispel(_cmd: &mut tokio::process::Command) {}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

fn parse_host(host: &str) -> Result<std::net::IpAddr, crate::Error> {
    if host == "localhost" {
        return Ok(std::net::IpAddr::from([127, 0, 0, 1]));
    }
    host.parse()
        .map_err(|_| format!("{host:?} is not an IP address to listen on").into())
}

fn describe(status: &std::process::ExitStatus) -> String {
    match status.code() {
        Some(c) => format!("status {c}"),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(sig) = status.signal() {
                    return format!("signal {sig}");
                }
            }
            "no status".into()
        }
    }
}

/// The app's exit status as dispel's own: its code, or 128 + the signal that ended it.
fn exit_code(status: &std::process::ExitStatus) -> ExitCode {
    if let Some(c) = status.code() {
        return ExitCode::from(u8::try_from(c).unwrap_or(1));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return ExitCode::from(u8::try_from(128 + sig).unwrap_or(1));
        }
    }
    ExitCode::from(1)
}

/// Stops the app once dispel was asked to stop. Ctrl-C in the terminal reached the app too
/// (they share the process group), so it is given a few seconds to finish on its own; then
/// SIGTERM, then SIGKILL.
async fn stop(child: &mut tokio::process::Child) -> std::io::Result<std::process::ExitStatus> {
    // Ctrl-C at a terminal reaches the app too (one process group): give it a moment.
    if let Ok(status) = tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
        return status;
    }
    #[cfg(unix)]
    if let Some(pid) = child.id().and_then(|p| i32::try_from(p).ok()) {
        // Stopped some other way (kill -INT, a supervisor): the app gets the same Ctrl-C,
        // so its KeyboardInterrupt clean-up runs; then SIGTERM.
        for (signal, wait) in [(libc::SIGINT, 3), (libc::SIGTERM, 5)] {
            // SAFETY: kill(2) with a pid and a signal number touches no memory of ours.
            unsafe {
                libc::kill(pid, signal);
            }
            if let Ok(status) = tokio::time::timeout(Duration::from_secs(wait), child.wait()).await
            {
                return status;
            }
        }
    }
    let _ = child.start_kill();
    child.wait().await
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// How the app was started: its command, and where its own server listens, behind dispel.
struct Started {
    command: Vec<String>,
    listens: SocketAddr,
}

/// Whether a command-line word is a WSGI server's `module:app` (`chat:app`, `pkg.web:create`),
/// not an address (`127.0.0.1:5000`).
fn is_wsgi_target(a: &str) -> bool {
    a.split_once(':').is_some_and(|(m, v)| {
        !m.is_empty()
            && !v.is_empty()
            && m.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
            && v.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !m.chars().all(|c| c.is_ascii_digit() || c == '.')
    })
}

/// What the report calls the app: its script (`python chat.py`), its WSGI module (`gunicorn
/// chat:app`), else its command.
fn app_name(command: &[String]) -> String {
    command
        .iter()
        .find(|a| a.ends_with(".py"))
        .or_else(|| command.iter().find(|a| is_wsgi_target(a)))
        .or(command.first())
        .map(|a| {
            Path::new(a)
                .file_name()
                .map_or(a.clone(), |n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

/// The app's source, whose lines the report quotes: its script when the command names one
/// that is there, or the module of a WSGI server's `module:app`, else the folder its files
/// are named from (`app_dir`, from the tracer). Absolute, so that a report made later from
/// another folder finds it.
fn app_source(command: &[String], app_dir: Option<PathBuf>) -> Option<PathBuf> {
    let module = command.iter().find(|a| is_wsgi_target(a)).and_then(|a| {
        let (m, _) = a.split_once(':')?;
        let dir = app_dir.as_ref()?;
        Some(dir.join(format!("{}.py", m.replace('.', "/"))))
    });
    command
        .iter()
        .find(|a| a.ends_with(".py"))
        .map(PathBuf::from)
        .or(module)
        .filter(|p| p.is_file())
        .or(app_dir)
        .map(|p| std::path::absolute(&p).unwrap_or(p))
}
