//! The message queue: Redis pub/sub between server processes, as python-socketio's
//! `RedisManager` uses it under Flask-SocketIO's `message_queue="redis://..."`.
//!
//! Two tasks, each with its own Redis connection (the `redis` crate): the publisher takes the
//! messages this process sends (`PUBLISH channel payload`) from a bounded queue, and the
//! listener (`SUBSCRIBE channel`) hands every message of another process to the Socket.IO
//! server. Both trace what they do (`mq.publish`, `mq.message`), with the RESP bytes.
//!
//! Faults: Redis down at start is an error unless `--message-queue-optional` (then the server
//! serves its own clients and says so); Redis lost later leaves local clients working, is an
//! `error` event, and both connections come back with exponential backoff. A message that
//! cannot be published meanwhile is said in an `error` event, never dropped silently (as
//! python-socketio, which tries again once and gives up). Redis pub/sub keeps no history, so
//! nothing is delivered twice when it returns.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::flow::redis::resp_text;
use crate::mq::{self, Message, Method};
use crate::stage::Kind;
use crate::trace::{Event, Stage, Tracer};
use crate::wire::resp;

use super::Clock;

/// Messages waiting for the publisher; past this, new ones are refused (with an error event).
const BACKLOG: usize = 10_000;
/// The longest wait between two attempts to reach Redis again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long connecting may take before it counts as a failure.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// This process's end of the queue.
pub struct Queue {
    pub url: String,
    pub channel: String,
    /// This process's id on the channel (a uuid4 in hex, as python-socketio draws it).
    pub host_id: String,
    out: mpsc::Sender<(Option<u64>, Message)>,
    tracer: Tracer,
    clock: Clock,
}

/// What `serve` asks for.
pub struct QueueConfig {
    pub url: String,
    pub channel: String,
    /// Serve locally when Redis cannot be reached at start, instead of refusing to start.
    pub optional: bool,
}

/// A client for `url`, which must be Redis's.
fn open(url: &str) -> Result<redis::Client, String> {
    if !["redis://", "rediss://", "unix://"]
        .iter()
        .any(|p| url.starts_with(p))
    {
        return Err(format!(
            "--message-queue {url}: dispel speaks to Redis only (redis://HOST:PORT[/DB] or rediss://); Flask-SocketIO's other queues (Kombu/RabbitMQ, Kafka, ZeroMQ) are not supported"
        ));
    }
    redis::Client::open(url).map_err(|e| format!("--message-queue {url}: {e}"))
}

/// Opens a client for `url` and checks that Redis answers.
pub async fn reach(
    url: &str,
) -> Result<(redis::Client, redis::aio::MultiplexedConnection), String> {
    let client = open(url)?;
    match tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection()).await {
        Ok(Ok(c)) => Ok((client, c)),
        Ok(Err(e)) => Err(format!("cannot reach Redis at {url}: {e}")),
        Err(_) => Err(format!(
            "cannot reach Redis at {url}: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

/// Publishes one message and returns how many subscribers Redis says received it, with the
/// command's bytes.
pub async fn publish_once(
    con: &mut redis::aio::MultiplexedConnection,
    channel: &str,
    message: &Message,
) -> (Vec<u8>, redis::RedisResult<i64>) {
    let payload = message.encode();
    let mut cmd = redis::cmd("PUBLISH");
    cmd.arg(channel).arg(payload.as_bytes());
    let bytes = cmd.get_packed_command();
    let result = cmd.query_async::<i64>(con).await;
    (bytes, result)
}

/// The `mq.publish` event of a message Redis took.
pub fn publish_event(
    t: f64,
    conn: Option<u64>,
    channel: &str,
    message: &Message,
    bytes: &[u8],
    receivers: i64,
) -> Event {
    crate::flow::redis::message_event(
        Stage::MqPublish,
        t,
        conn,
        None,
        channel,
        message,
        bytes,
        format!(
            "PUBLISH {channel}: {} -> {receivers} subscriber(s)",
            message.summary()
        ),
    )
    .with("receivers", receivers)
    .with("reply", format!(":{receivers}\\r\\n"))
}

/// The local Socket.IO server the queue serves: it is handed the queue to publish on, and
/// the messages of other processes are applied to its clients.
pub trait Local: Send + Sync + 'static {
    fn set_queue(&self, queue: Arc<Queue>);
    /// An emit: the local connections it was delivered to.
    fn deliver_remote(&self, m: &Message) -> Result<Vec<u64>, String>;
    /// A disconnect: the local connection it closed, if the client is here.
    fn disconnect_remote(&self, m: &Message) -> Option<u64>;
    /// A room change: the local connection it concerned, if any.
    fn room_remote(&self, m: &Message) -> Option<u64>;
}

impl Queue {
    /// Connects, starts the publisher and the listener, and attaches the queue to `sio`.
    pub async fn start(
        config: QueueConfig,
        sio: Arc<dyn Local>,
        tracer: Tracer,
        clock: Clock,
    ) -> Result<Arc<Queue>, String> {
        // A URL that is no Redis's is an error whatever else is asked.
        open(&config.url)?;
        let first = reach(&config.url).await;
        let (client, con) = match first {
            Ok((client, con)) => (client, Some(con)),
            Err(e) if config.optional => {
                eprintln!("dispel serve: {e}; serving this process's clients only, and trying again in the background (--message-queue-optional)");
                let client = open(&config.url)?;
                (client, None)
            }
            Err(e) => {
                return Err(format!(
                    "{e}\n  start redis-server, correct the URL, or add --message-queue-optional to serve this process's clients alone"
                ))
            }
        };
        let (tx, rx) = mpsc::channel(BACKLOG);
        let queue = Arc::new(Queue {
            url: config.url,
            channel: config.channel,
            host_id: mq::new_host_id(),
            out: tx,
            tracer,
            clock,
        });
        let reachable = con.is_some();
        let subscribed = Arc::new(tokio::sync::Notify::new());
        tokio::spawn(queue.clone().publisher(client.clone(), con, rx));
        tokio::spawn(
            queue
                .clone()
                .listener(client, sio.clone(), subscribed.clone()),
        );
        sio.set_queue(queue.clone());
        // Redis keeps no history: what is published before the subscription is never seen
        // here, so the server waits for it before it takes clients.
        if reachable
            && tokio::time::timeout(CONNECT_TIMEOUT, subscribed.notified())
                .await
                .is_err()
        {
            eprintln!("dispel serve: warning: not subscribed to {} yet; messages published meanwhile will not reach this process's clients", queue.channel);
        }
        Ok(queue)
    }

    /// Queues a message for the other processes. `conn` is the connection whose event caused
    /// it, for the trace.
    pub fn publish(&self, conn: Option<u64>, message: Message) {
        if let Err(e) = self.out.try_send((conn, message)) {
            let (why, m) = match e {
                mpsc::error::TrySendError::Full((_, m)) => {
                    (format!("{BACKLOG} messages already wait for Redis"), m)
                }
                mpsc::error::TrySendError::Closed((_, m)) => {
                    ("the publisher has stopped".into(), m)
                }
            };
            self.error(conn, format!("not published ({why}): {}", m.summary()));
        }
    }

    fn error(&self, conn: Option<u64>, text: String) {
        self.error_at(conn, Stage::MqPublish, text);
    }

    /// An `error` event of the queue, about the stage `at`.
    fn error_at(&self, conn: Option<u64>, at: Stage, text: String) {
        self.tracer.emit(
            Event::new(Stage::Error, self.clock.now(), conn, None, text)
                .with("rule", "the message queue")
                .with("where", at.as_str()),
        );
    }

    async fn publisher(
        self: Arc<Self>,
        client: redis::Client,
        mut con: Option<redis::aio::MultiplexedConnection>,
        mut rx: mpsc::Receiver<(Option<u64>, Message)>,
    ) {
        let mut backoff = Duration::from_millis(100);
        let mut next_try = tokio::time::Instant::now();
        while let Some((conn, message)) = rx.recv().await {
            // As python-socketio: one more try after a failure, then the message is given up.
            let mut sent = false;
            for attempt in 0..2 {
                if con.is_none() && tokio::time::Instant::now() >= next_try {
                    match tokio::time::timeout(
                        CONNECT_TIMEOUT,
                        client.get_multiplexed_async_connection(),
                    )
                    .await
                    {
                        Ok(Ok(c)) => {
                            con = Some(c);
                            backoff = Duration::from_millis(100);
                        }
                        _ => {
                            next_try = tokio::time::Instant::now() + backoff;
                            backoff = (backoff * 2).min(MAX_BACKOFF);
                        }
                    }
                }
                let Some(c) = con.as_mut() else { break };
                let (bytes, result) = publish_once(c, &self.channel, &message).await;
                match result {
                    Ok(n) => {
                        self.tracer.emit(publish_event(
                            self.clock.now(),
                            conn,
                            &self.channel,
                            &message,
                            &bytes,
                            n,
                        ));
                        sent = true;
                        break;
                    }
                    Err(e) => {
                        con = None;
                        if attempt == 0 {
                            self.error(
                                conn,
                                format!("lost Redis while publishing ({e}); trying once more"),
                            );
                        }
                    }
                }
            }
            if !sent {
                self.error(
                    conn,
                    format!(
                        "not published, Redis at {} is unreachable: {} (this process's clients got it; the other processes' did not)",
                        self.url,
                        message.summary()
                    ),
                );
            }
        }
    }

    async fn listener(
        self: Arc<Self>,
        client: redis::Client,
        sio: Arc<dyn Local>,
        ready: Arc<tokio::sync::Notify>,
    ) {
        let mut backoff = Duration::from_millis(100);
        let mut said_down = false;
        loop {
            let subscribed = async {
                let mut ps = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
                    .await
                    .map_err(|_| "no answer".to_string())?
                    .map_err(|e| e.to_string())?;
                ps.subscribe(&self.channel)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>(ps)
            }
            .await;
            match subscribed {
                Ok(mut ps) => {
                    ready.notify_one();
                    backoff = Duration::from_millis(100);
                    said_down = false;
                    let cmd = resp::encode_command(&["SUBSCRIBE", &self.channel]);
                    self.tracer.emit(
                        Event::new(
                            Stage::MqMessage,
                            self.clock.now(),
                            None,
                            None,
                            format!(
                                "SUBSCRIBE {}: listening for the other processes as host {}",
                                self.channel,
                                &self.host_id[..8]
                            ),
                        )
                        .with("channel", self.channel.as_str())
                        .with("method", "subscribe")
                        .with("host_id", self.host_id.as_str())
                        .with("resp", resp_text(&cmd))
                        .kind(Kind::Subscribe),
                    );
                    let mut stream = ps.on_message();
                    while let Some(msg) = stream.next().await {
                        self.arrived(
                            sio.as_ref(),
                            msg.get_channel_name(),
                            msg.get_payload_bytes(),
                        );
                    }
                    self.error_at(
                        None,
                        Stage::MqMessage,
                        format!("lost the connection to Redis at {}: this process's clients go on; reconnecting", self.url),
                    );
                }
                Err(e) => {
                    if !said_down {
                        said_down = true;
                        self.error_at(
                            None,
                            Stage::MqMessage,
                            format!("cannot subscribe to {} on Redis at {} ({e}): trying again, up to every {} s", self.channel, self.url, MAX_BACKOFF.as_secs()),
                        );
                    }
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One message from the channel.
    fn arrived(&self, sio: &dyn Local, channel: &str, payload: &[u8]) {
        let bytes = resp::encode_command(&[b"message".as_slice(), channel.as_bytes(), payload]);
        let now = self.clock.now();
        let m = match mq::parse(payload) {
            Ok(m) => m,
            Err(e) => {
                self.tracer.emit(crate::flow::redis::foreign_payload(
                    Stage::MqMessage,
                    now,
                    None,
                    None,
                    channel,
                    payload,
                    &e,
                ));
                return;
            }
        };
        let own = m.host_id() == Some(self.host_id.as_str());
        let (outcome, reached): (String, Vec<u64>) = match &m.method {
            // Every host hears its own messages; python-socketio ignores them (it delivered
            // them before publishing), except an ack's answer, which is for the host it names.
            Method::Callback if own => (
                "an ack's answer for this process: no emit here asks for acks, ignored".into(),
                Vec::new(),
            ),
            Method::Callback => (
                "an ack's answer for another process, ignored".into(),
                Vec::new(),
            ),
            _ if own => (
                "this process's own message, delivered before it was published: ignored".into(),
                Vec::new(),
            ),
            Method::Emit => match sio.deliver_remote(&m) {
                Ok(conns) => {
                    let list: Vec<String> = conns.iter().map(|c| format!("#{c}")).collect();
                    (
                        format!(
                            "delivered to {} local client(s) {}",
                            conns.len(),
                            list.join(" ")
                        ),
                        conns,
                    )
                }
                Err(e) => {
                    self.error_at(
                        None,
                        Stage::MqMessage,
                        format!("an emit on {channel} could not be delivered: {e}"),
                    );
                    return;
                }
            },
            Method::Disconnect => match sio.disconnect_remote(&m) {
                Some(c) => (format!("disconnected local client #{c}"), vec![c]),
                None => ("the client is not connected here".into(), Vec::new()),
            },
            Method::EnterRoom | Method::LeaveRoom | Method::CloseRoom => {
                match sio.room_remote(&m) {
                    Some(c) => (format!("room changed for local client #{c}"), vec![c]),
                    None => ("no local client concerned".into(), Vec::new()),
                }
            }
            Method::Other(_) => (
                "a method python-socketio does not know: ignored".into(),
                Vec::new(),
            ),
        };
        let kind = match m.method {
            _ if own => Some(Kind::Own),
            Method::Emit => Some(Kind::Emit),
            _ => None,
        };
        let mut e = crate::flow::redis::message_event(
            Stage::MqMessage,
            now,
            None,
            None,
            channel,
            &m,
            &bytes,
            format!("{}: {outcome}", m.summary()),
        )
        .with("own", own)
        .with("reached", reached);
        e.kind = kind;
        self.tracer.emit(e);
    }
}

/// `dispel emit`: one emit published on the queue by a process that serves no one (a
/// write-only manager, as a Celery worker's `SocketIO(message_queue=URL)`), then exit.
pub fn emit_command(args: crate::cli::EmitArgs) -> Result<std::process::ExitCode, crate::Error> {
    let data: Value = serde_json::from_str(&args.data).map_err(|e| {
        format!(
            "the data {:?} is not JSON ({e}); a string needs its quotes: '\"text\"'",
            args.data
        )
    })?;
    let host_id = mq::new_host_id();
    let message = Message::emit(
        &args.event,
        &[data],
        &[],
        &args.namespace,
        args.to.as_deref(),
        None,
        &host_id,
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let event = runtime.block_on(async {
        let (_, mut con) = reach(&args.message_queue).await?;
        let (bytes, result) = publish_once(&mut con, &args.channel, &message).await;
        let n = result.map_err(|e| format!("PUBLISH on {} failed: {e}", args.message_queue))?;
        Ok::<Event, crate::Error>(publish_event(0.0, None, &args.channel, &message, &bytes, n))
    })?;
    if args.json {
        let json = crate::trace::to_json(1, &event, crate::cli::VersionSet::Current);
        println!("{json}");
    } else {
        println!("{}", event.summary);
        for k in ["message", "resp", "reply"] {
            if let Some(v) = event.fields.get(k) {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => crate::wire::pyjson::dumps_spaced(other),
                };
                println!("  {k:<8} {text}");
            }
        }
        let receivers = event
            .fields
            .get("receivers")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        if receivers == 0 {
            eprintln!("dispel emit: no server is subscribed to {} on {}: nobody received it (Redis keeps no history)", args.channel, args.message_queue);
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
