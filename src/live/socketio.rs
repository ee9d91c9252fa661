//! Socket.IO v5 on top of Engine.IO: namespaces, CONNECT / CONNECT_ERROR, event dispatch to
//! the app's handlers, acknowledgements, binary attachments, and broadcast.
//!
//! With the Python flavor it answers as python-socketio 5.18 does: every handled event that
//! asks for an acknowledgement gets one, with the handler's return value (`[]` for none),
//! after the handler's own emits; a second CONNECT to a namespace is refused; a packet that
//! does not decode is dropped and the connection goes on; packets are encoded through
//! Python's `json.dumps`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::trace::{Event, Stage, Tracer};
use crate::wire::engineio::{Data, PacketType as EioType};
use crate::wire::socketio::{self, Packet, PacketType};

use super::apps::{App, Outcome};
use super::engineio::{
    Closer, EioHandler, EioSession, Flavor, Flight, Landed, OutItem, Queued, WirePacket,
};
use super::Clock;

/// One connected Socket.IO socket: an Engine.IO session joined to one namespace.
#[derive(Clone)]
struct Member {
    sio_sid: String,
    eio: Arc<EioSession>,
}

#[derive(Default)]
struct ClientState {
    /// namespace -> Socket.IO sid
    sockets: HashMap<String, String>,
    /// A binary packet waiting for its attachments.
    pending: Option<(Packet, Vec<Vec<u8>>)>,
}

pub struct SioServer {
    app: Arc<dyn App>,
    flavor: Flavor,
    tracer: Tracer,
    clock: Clock,
    /// namespace -> join order -> member. A BTreeMap keeps broadcasts in join order.
    namespaces: Mutex<HashMap<String, BTreeMap<u64, Member>>>,
    clients: Mutex<HashMap<String, ClientState>>,
    next: AtomicU64,
}

/// What a handler can do in answer to an event: emit to its own client, broadcast, ack.
pub struct Ctx<'a> {
    server: &'a SioServer,
    eio: &'a Arc<EioSession>,
    pub nsp: &'a str,
    pub conn: u64,
    ack_id: Option<u64>,
    /// The broadcast this handler made, which what it sends its own client next waits for
    /// ([`Flight`]).
    landed: RefCell<Option<Landed>>,
}

impl SioServer {
    /// Encodes a Socket.IO packet (and its attachments) into Engine.IO MESSAGE packets, once.
    fn encode(&self, packet: &Packet, attachments: &[Vec<u8>]) -> OutItem {
        let text = match self.flavor {
            Flavor::Python => packet.encode_python(),
            Flavor::Node => packet.encode(),
        };
        let mut out = Vec::with_capacity(1 + attachments.len());
        out.push(WirePacket::Text(
            format!("{}{text}", EioType::Message.as_char()).into(),
        ));
        out.extend(
            attachments
                .iter()
                .map(|a| WirePacket::Binary(a.as_slice().into())),
        );
        Arc::new(out)
    }
}

fn event_packet(
    nsp: &str,
    event: &str,
    args: Vec<Value>,
    attachments: usize,
    id: Option<u64>,
) -> Packet {
    let mut data = vec![Value::String(event.to_string())];
    data.extend(args);
    let ptype = if attachments > 0 {
        PacketType::BinaryEvent
    } else {
        PacketType::Event
    };
    let mut p = Packet::new(ptype, nsp, id, Some(Value::Array(data)));
    p.attachments = attachments;
    p
}

impl Ctx<'_> {
    /// Emit to this client only (Flask-SocketIO `emit(...)` in a handler, no broadcast).
    pub fn emit(&self, event: &str, args: Vec<Value>, attachments: Vec<Vec<u8>>) {
        let packet = event_packet(self.nsp, event, args, attachments.len(), None);
        self.send_own(self.server.encode(&packet, &attachments));
        self.server
            .trace_emit(self.conn, self.nsp, event, &[self.eio.conn()], false);
    }

    /// Emit to every client in the namespace, sender included (`emit(..., broadcast=True)`).
    /// Encoded once; every recipient's queue gets the same shared bytes.
    pub fn broadcast(&self, event: &str, args: Vec<Value>, attachments: Vec<Vec<u8>>) {
        let landed = self
            .server
            .broadcast(self.conn, self.nsp, event, args, attachments);
        *self.landed.borrow_mut() = Some(landed);
    }

    /// The handler has returned: its broadcast, if it made one, counts among the client's
    /// broadcasts in flight (reading from the client waits while there are too many).
    fn finish(self) {
        if let Some(landed) = self.landed.into_inner() {
            self.eio.in_flight(landed);
        }
    }

    /// Queues a packet for this handler's own client, after its broadcast if it made one.
    fn send_own(&self, item: OutItem) {
        let mut q = Queued::from(item);
        q.after = self.landed.borrow().clone();
        let _ = self.eio.send(q);
    }

    /// Answers the event's acknowledgement request, if it made one.
    pub fn ack(&self, args: Vec<Value>, attachments: Vec<Vec<u8>>) {
        let Some(id) = self.ack_id else { return };
        let ptype = if attachments.is_empty() {
            PacketType::Ack
        } else {
            PacketType::BinaryAck
        };
        let mut p = Packet::new(ptype, self.nsp, Some(id), Some(Value::Array(args)));
        p.attachments = attachments.len();
        self.send_own(self.server.encode(&p, &attachments));
    }
}

impl SioServer {
    pub fn new(app: Arc<dyn App>, flavor: Flavor, tracer: Tracer, clock: Clock) -> SioServer {
        SioServer {
            app,
            flavor,
            tracer,
            clock,
            namespaces: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
        }
    }

    fn trace_emit(&self, conn: u64, nsp: &str, event: &str, recipients: &[u64], broadcast: bool) {
        if !self.tracer.wants(Stage::SioBroadcast, Some(conn)) {
            return;
        }
        let summary = if broadcast {
            format!("{event:?} to {} client(s) in {nsp} (broadcast=True, sender included, encoded once)", recipients.len())
        } else {
            format!("{event:?} to this client only (emit without broadcast)")
        };
        self.tracer.emit(
            Event::new(
                Stage::SioBroadcast,
                self.clock.now(),
                Some(conn),
                None,
                summary,
            )
            .with("event", event)
            .with("nsp", nsp)
            .with("broadcast", broadcast)
            .with("recipients", recipients.to_vec())
            .with("count", recipients.len())
            .kind(if broadcast { "broadcast" } else { "emit" }),
        );
    }

    /// Returns what resolves once the broadcast has been taken by the recipients that are
    /// keeping up ([`Flight`]).
    fn broadcast(
        &self,
        conn: u64,
        nsp: &str,
        event: &str,
        args: Vec<Value>,
        attachments: Vec<Vec<u8>>,
    ) -> Landed {
        let packet = event_packet(nsp, event, args, attachments.len(), None);
        let item = self.encode(&packet, &attachments);
        let members: Vec<Member> = self
            .namespaces
            .lock()
            .map(|n| {
                n.get(nsp)
                    .map(|m| m.values().cloned().collect())
                    .unwrap_or_default()
            })
            .unwrap_or_default();
        let flight = Flight::new();
        let mut recipients = Vec::with_capacity(members.len());
        for m in &members {
            if m.eio.send(flight.copy(&m.eio, &item)).is_ok() {
                recipients.push(m.eio.conn());
            }
        }
        self.trace_emit(conn, nsp, event, &recipients, true);
        flight.landed()
    }

    fn dispatch(
        &self,
        eio: &Arc<EioSession>,
        conn: u64,
        packet: Packet,
        attachments: Vec<Vec<u8>>,
    ) {
        let nsp = packet.nsp.clone();
        let joined = self
            .clients
            .lock()
            .ok()
            .and_then(|c| c.get(&eio.sid).map(|st| st.sockets.contains_key(&nsp)))
            .unwrap_or(false);
        match packet.ptype {
            PacketType::Connect => self.connect(eio, conn, &nsp, packet.data.as_ref()),
            PacketType::Disconnect => self.leave(eio, &nsp),
            PacketType::Event | PacketType::BinaryEvent if joined => {
                let Some(event) = packet.event_name().map(str::to_string) else {
                    return;
                };
                let args = packet.args().to_vec();
                let handler = self.app.handler_name(&nsp, &event);
                let extra = handler.is_some() && self.app.is_extra(&nsp, &event);
                let mut shown = Value::Array(args.clone());
                socketio::fill_placeholders(
                    &mut shown,
                    &mut |i| json!({"_binary": attachments.get(i).map(Vec::len)}),
                );
                let cx = Ctx {
                    server: self,
                    eio,
                    nsp: &nsp,
                    conn,
                    ack_id: packet.id,
                    landed: RefCell::new(None),
                };
                let dispatched = Event::new(
                    Stage::SioDispatch,
                    self.clock.now(),
                    Some(conn),
                    None,
                    match handler {
                        Some(h) if extra => {
                            format!("{event:?} on {nsp} -> {h} (a dispel extra: --extras)")
                        }
                        Some(h) => format!("{event:?} on {nsp} -> {h}"),
                        None => format!("{event:?} on {nsp} -> no handler (ignored)"),
                    },
                )
                .with("event", event.as_str())
                .with("nsp", nsp.as_str())
                .with("handler", handler)
                .with("args", shown)
                .with("ack_id", packet.id)
                .kind("event");
                let dispatched = if extra {
                    dispatched.with("extra", true)
                } else {
                    dispatched
                };
                self.tracer.emit(dispatched);
                match self.app.on_event(&cx, &event, &args, &attachments) {
                    // python-socketio acknowledges what a handler returned, after whatever the
                    // handler emitted.
                    Outcome::Returned(r) if self.flavor == Flavor::Python => {
                        cx.ack(r.args, r.attachments)
                    }
                    Outcome::Returned(_) | Outcome::NoHandler => {}
                    Outcome::Raised(why) => self.tracer.emit(
                        Event::new(
                            Stage::Error,
                            self.clock.now(),
                            Some(conn),
                            None,
                            format!("the handler of {event:?} raised {why}: no broadcast, no acknowledgement"),
                        )
                        .with("rule", "a handler that raises sends nothing back")
                        .with("where", "sio.dispatch"),
                    ),
                }
                cx.finish();
            }
            PacketType::Ack | PacketType::BinaryAck => {
                // The apps here never ask clients for acks; nothing waits for one.
            }
            _ => {
                // An event for a namespace the client never joined, or a type a client must
                // not send (CONNECT_ERROR): ignored, as python-socketio does.
            }
        }
    }

    fn connect(&self, eio: &Arc<EioSession>, conn: u64, nsp: &str, auth: Option<&Value>) {
        let refuse = |data: Value| {
            let p = Packet::new(PacketType::ConnectError, nsp, None, Some(data));
            let _ = eio.send(self.encode(&p, &[]));
        };
        if !self.app.accepts_namespace(nsp) {
            refuse(self.app.refusal());
            return;
        }
        let already = self
            .clients
            .lock()
            .ok()
            .and_then(|c| c.get(&eio.sid).map(|st| st.sockets.contains_key(nsp)))
            .unwrap_or(false);
        if already {
            // python-socketio's `pre_connect` finds the client there already and refuses.
            if self.flavor == Flavor::Python {
                refuse(self.app.refusal());
            }
            return;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // Drawn on its own, never derived from the Engine.IO sid (see `generate_id`).
        let Some(sio_sid) = eio.server().map(|s| s.generate_id()) else {
            return;
        };
        if let Ok(mut clients) = self.clients.lock() {
            let st = clients.entry(eio.sid.clone()).or_default();
            st.sockets.insert(nsp.to_string(), sio_sid.clone());
        }
        if let Ok(mut spaces) = self.namespaces.lock() {
            spaces.entry(nsp.to_string()).or_default().insert(
                n,
                Member {
                    sio_sid: sio_sid.clone(),
                    eio: eio.clone(),
                },
            );
        }
        let ack = self.encode(
            &Packet::new(
                PacketType::Connect,
                nsp,
                None,
                Some(json!({"sid": sio_sid})),
            ),
            &[],
        );
        let cx = Ctx {
            server: self,
            eio,
            nsp,
            conn,
            ack_id: None,
            landed: RefCell::new(None),
        };
        // python-socketio runs the connect handler first and answers CONNECT when it returns,
        // so what the handler emits reaches the client before the ack; the Node server
        // answers first. Each app follows the server it mirrors.
        if self.app.ack_connect_first() {
            let _ = eio.send(ack);
            self.app.on_connect(&cx, auth);
        } else {
            self.app.on_connect(&cx, auth);
            let _ = eio.send(ack);
        }
        cx.finish();
    }

    fn leave(&self, eio: &Arc<EioSession>, nsp: &str) {
        let sio_sid = self
            .clients
            .lock()
            .ok()
            .and_then(|mut c| c.get_mut(&eio.sid).and_then(|st| st.sockets.remove(nsp)));
        if let (Some(sid), Ok(mut spaces)) = (sio_sid, self.namespaces.lock()) {
            if let Some(members) = spaces.get_mut(nsp) {
                members.retain(|_, m| m.sio_sid != sid);
            }
        }
    }
}

impl EioHandler for SioServer {
    fn on_open(&self, session: &Arc<EioSession>) {
        if let Ok(mut c) = self.clients.lock() {
            c.insert(session.sid.clone(), ClientState::default());
        }
    }

    fn on_message(&self, session: &Arc<EioSession>, conn: u64, data: Data) {
        match data {
            Data::Text(text) => match Packet::decode(&text) {
                Ok(p) if p.attachments > 0 => {
                    if let Ok(mut c) = self.clients.lock() {
                        if let Some(st) = c.get_mut(&session.sid) {
                            st.pending = Some((p, Vec::new()));
                        }
                    }
                }
                Ok(p) => self.dispatch(session, conn, p, Vec::new()),
                // python-socketio drops a packet that does not decode (the exception is
                // logged) and the connection goes on; Node's closes it. The trace already
                // shows the broken rule (the tap decoded the same bytes).
                Err(_) if self.flavor == Flavor::Python => {}
                Err(_) => {
                    if let Some(server) = session.server() {
                        server.close(session, "bad Socket.IO packet", Closer::Server);
                    }
                }
            },
            Data::Binary(bytes) => {
                // One packet's attachments together may not exceed maxPayload: a client must
                // not make the server hold more than that for it.
                let max = session
                    .server()
                    .map_or(usize::MAX, |s| s.config.max_payload);
                let mut too_big = false;
                let done = self.clients.lock().ok().and_then(|mut c| {
                    let st = c.get_mut(&session.sid)?;
                    let (p, atts) = st.pending.as_mut()?;
                    let held: usize = atts.iter().map(Vec::len).sum();
                    if held + bytes.len() > max {
                        too_big = true;
                        st.pending = None;
                        return None;
                    }
                    atts.push(bytes);
                    if atts.len() >= p.attachments {
                        st.pending.take()
                    } else {
                        None
                    }
                });
                if too_big && self.flavor == Flavor::Node {
                    if let Some(server) = session.server() {
                        server.close(
                            session,
                            "binary attachments over maxPayload",
                            Closer::Server,
                        );
                    }
                    return;
                }
                if let Some((p, atts)) = done {
                    self.dispatch(session, conn, p, atts);
                }
            }
        }
    }

    fn on_close(&self, session: &Arc<EioSession>, _reason: &str) {
        let sockets = self
            .clients
            .lock()
            .ok()
            .and_then(|mut c| c.remove(&session.sid));
        if let (Some(st), Ok(mut spaces)) = (sockets, self.namespaces.lock()) {
            for (nsp, sid) in st.sockets {
                if let Some(members) = spaces.get_mut(&nsp) {
                    members.retain(|_, m| m.sio_sid != sid);
                }
            }
        }
    }
}
