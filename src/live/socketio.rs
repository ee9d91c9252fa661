//! Socket.IO v5 on top of Engine.IO: namespaces, CONNECT / CONNECT_ERROR, event dispatch to
//! the app's handlers, acknowledgements, binary attachments, and broadcast.
//!
//! With the Python flavor it answers as python-socketio 5.18 does: every handled event that
//! asks for an acknowledgement gets one, with the handler's return value (`[]` for none),
//! after the handler's own emits; a second CONNECT to a namespace is refused; a packet that
//! does not decode is dropped and the connection goes on; packets are encoded through
//! Python's `json.dumps`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{json, Value};

use crate::stage::Kind;
use crate::trace::{Event, Stage, Tracer};
use crate::wire::engineio::{Data, PacketType as EioType};
use crate::wire::socketio::{self, Assembly, Packet, PacketType, Progress};

use super::engineio::{
    Closer, EioHandler, EioSession, Flavor, Flight, Landed, OutItem, Queued, WirePacket,
};
use super::mq::Queue;
use super::Clock;
use crate::mq::Message;

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
    pending: Option<Assembly>,
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
    /// namespace -> room -> Socket.IO sids: rooms other processes put local clients in
    /// (`enter_room` on the message queue). Every client is also alone in the room of its sid.
    rooms: Mutex<HashMap<String, HashMap<String, HashSet<String>>>>,
    /// The message queue, with `--message-queue`.
    queue: OnceLock<Arc<Queue>>,
    /// Acks another process asked for: (Socket.IO sid, namespace, local ack id) -> where the
    /// answer goes (its host, the room it emitted to, its namespace, its ack id).
    remote_acks: Mutex<HashMap<(String, String, u64), RemoteAck>>,
    next_ack: AtomicU64,
}

struct RemoteAck {
    host_id: String,
    room: String,
    nsp: String,
    id: u64,
}

impl super::mq::Local for SioServer {
    fn set_queue(&self, queue: Arc<Queue>) {
        SioServer::set_queue(self, queue)
    }
    fn deliver_remote(&self, m: &Message) -> Result<Vec<u64>, String> {
        SioServer::deliver_remote(self, m)
    }
    fn disconnect_remote(&self, m: &Message) -> Option<u64> {
        SioServer::disconnect_remote(self, m)
    }
    fn room_remote(&self, m: &Message) -> Option<u64> {
        SioServer::room_remote(self, m)
    }
}

/// What a handler did with an event.
pub enum Outcome {
    /// No handler for it: python-socketio does not acknowledge it.
    NoHandler,
    /// The handler returned: python-socketio acknowledges with its return value (`[]` for
    /// `None`, a tuple as several arguments) when the client asked.
    Returned(Returned),
    /// The handler raised: nothing follows.
    Raised(String),
}

/// A handler's return value, as the ACK carries it.
#[derive(Default)]
pub struct Returned {
    pub args: Vec<Value>,
    pub attachments: Vec<Vec<u8>>,
}

impl Outcome {
    /// A handler that returned `None`.
    pub(super) fn none() -> Outcome {
        Outcome::Returned(Returned::default())
    }
}

/// Socket.IO handlers, the way a Flask-SocketIO app declares them with `@socketio.on`.
pub trait App: Send + Sync {
    fn accepts_namespace(&self, nsp: &str) -> bool;
    /// The handler an event goes to, named as in the Flask-SocketIO app it mirrors.
    fn handler_name(&self, nsp: &str, event: &str) -> Option<&'static str>;
    /// Whether that handler is one of dispel's demo extras, not the course's code.
    fn is_extra(&self, _nsp: &str, _event: &str) -> bool {
        false
    }
    fn on_connect(&self, cx: &Ctx<'_>, auth: Option<&Value>);
    /// Whether the CONNECT answer goes out before the connect handler runs (Node) or after
    /// (python-socketio, the default).
    fn ack_connect_first(&self) -> bool {
        false
    }
    /// The CONNECT_ERROR data for a refused namespace. python-socketio sends a bare string.
    fn refusal(&self) -> Value {
        Value::String("Unable to connect".into())
    }
    fn on_event(
        &self,
        cx: &Ctx<'_>,
        event: &str,
        args: &[Value],
        attachments: &[Vec<u8>],
    ) -> Outcome;
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
            rooms: Mutex::new(HashMap::new()),
            queue: OnceLock::new(),
            remote_acks: Mutex::new(HashMap::new()),
            next_ack: AtomicU64::new(1),
        }
    }

    /// From now on, broadcasts are published on the message queue too.
    pub fn set_queue(&self, queue: Arc<Queue>) {
        let _ = self.queue.set(queue);
    }

    /// The members of `nsp` an emit to `room` (everyone when `None`) reaches, without `skip`.
    fn members_for(&self, nsp: &str, room: Option<&str>, skip: &[String]) -> Vec<Member> {
        let in_room: Option<HashSet<String>> = room.map(|r| {
            self.rooms
                .lock()
                .ok()
                .and_then(|rooms| rooms.get(nsp)?.get(r).cloned())
                .unwrap_or_default()
        });
        self.namespaces
            .lock()
            .map(|n| {
                n.get(nsp)
                    .map(|m| {
                        m.values()
                            .filter(|m| match (room, &in_room) {
                                (Some(r), Some(set)) => m.sio_sid == r || set.contains(&m.sio_sid),
                                _ => true,
                            })
                            .filter(|m| !skip.contains(&m.sio_sid))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    /// Delivers another process's emit to the local clients it is for, as python-socketio's
    /// `_handle_emit` does; returns their connections. With a callback, each recipient is
    /// asked for an ack, which goes back over the queue to the process that asked.
    pub fn deliver_remote(&self, m: &Message) -> Result<Vec<u64>, String> {
        let (args, attachments) = m.emit_args()?;
        let event = m.event().ok_or("an emit without \"event\"")?;
        let nsp = m.namespace();
        let members = self.members_for(nsp, m.room(), &m.skip_sids());
        let callback = m.ack_request();
        let mut reached = Vec::with_capacity(members.len());
        let shared = callback.is_none().then(|| {
            self.encode(
                &event_packet(nsp, event, args.clone(), attachments.len(), None),
                &attachments,
            )
        });
        for member in members {
            let item = match (&shared, &callback) {
                (Some(item), _) => item.clone(),
                (None, Some((room, cb_nsp, id))) => {
                    let local = self.next_ack.fetch_add(1, Ordering::Relaxed);
                    if let Ok(mut acks) = self.remote_acks.lock() {
                        if acks.len() < 100_000 {
                            acks.insert(
                                (member.sio_sid.clone(), nsp.to_string(), local),
                                RemoteAck {
                                    host_id: m.host_id().unwrap_or_default().to_string(),
                                    room: room.clone(),
                                    nsp: cb_nsp.clone(),
                                    id: *id,
                                },
                            );
                        }
                    }
                    self.encode(
                        &event_packet(nsp, event, args.clone(), attachments.len(), Some(local)),
                        &attachments,
                    )
                }
                (None, None) => continue,
            };
            if member.eio.send(item).is_ok() {
                reached.push(member.eio.conn());
            }
        }
        Ok(reached)
    }

    /// A room change another process asked for, if the client is connected here; returns its
    /// connection.
    pub fn room_remote(&self, m: &Message) -> Option<u64> {
        let nsp = m.namespace().to_string();
        let room = m.room()?.to_string();
        match m.method {
            crate::mq::Method::CloseRoom => {
                let mut rooms = self.rooms.lock().ok()?;
                rooms.get_mut(&nsp).map(|r| r.remove(&room));
                None
            }
            crate::mq::Method::EnterRoom | crate::mq::Method::LeaveRoom => {
                let sid = m.sid()?;
                // Found before the rooms are locked: `members_for` reads them too.
                let member = self
                    .members_for(&nsp, Some(sid), &[])
                    .into_iter()
                    .find(|x| x.sio_sid == sid)?;
                let mut rooms = self.rooms.lock().ok()?;
                let set = rooms.entry(nsp).or_default().entry(room).or_default();
                if m.method == crate::mq::Method::EnterRoom {
                    set.insert(sid.to_string());
                } else {
                    set.remove(sid);
                }
                Some(member.eio.conn())
            }
            _ => None,
        }
    }

    /// Disconnects a local client another process asked to disconnect (a DISCONNECT packet,
    /// then it leaves the namespace); returns its connection.
    pub fn disconnect_remote(&self, m: &Message) -> Option<u64> {
        let nsp = m.namespace();
        let sid = m.sid()?;
        let member = self
            .members_for(nsp, Some(sid), &[])
            .into_iter()
            .find(|x| x.sio_sid == sid)?;
        let p = Packet::new(PacketType::Disconnect, nsp, None, None);
        let _ = member.eio.send(self.encode(&p, &[]));
        self.leave(&member.eio, nsp);
        Some(member.eio.conn())
    }

    /// A client's ACK: if it answers an emit another process made, the answer goes back.
    fn acked(&self, eio: &Arc<EioSession>, nsp: &str, packet: &Packet) {
        let (Some(id), Some(queue)) = (packet.id, self.queue.get()) else {
            return;
        };
        let Some(sio_sid) = self
            .clients
            .lock()
            .ok()
            .and_then(|c| c.get(&eio.sid)?.sockets.get(nsp).cloned())
        else {
            return;
        };
        let Some(r) = self
            .remote_acks
            .lock()
            .ok()
            .and_then(|mut a| a.remove(&(sio_sid, nsp.to_string(), id)))
        else {
            return;
        };
        let args = packet.args().to_vec();
        queue.publish(
            Some(eio.conn()),
            Message::callback(&r.host_id, &r.room, &r.nsp, r.id, &args),
        );
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
            .kind(if broadcast {
                Kind::Broadcast
            } else {
                Kind::Emit
            }),
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
        let queued = self.queue.get().map(|q| {
            (
                q,
                Message::emit(event, &args, &attachments, nsp, None, None, &q.host_id),
            )
        });
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
        // As python-socketio's `PubSubManager.emit`: this process's clients first, then the
        // other processes through the queue.
        if let Some((q, message)) = queued {
            q.publish(Some(conn), message);
        }
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
                .kind(Kind::Event);
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
                // The apps here never ask clients for acks; only emits of other processes
                // through the message queue do.
                self.acked(eio, &nsp, &packet);
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
        if let Some(sid) = sio_sid {
            self.forget_socket(nsp, &sid);
        }
    }

    fn forget_socket(&self, nsp: &str, sid: &str) {
        if let Ok(mut spaces) = self.namespaces.lock() {
            if let Some(members) = spaces.get_mut(nsp) {
                members.retain(|_, m| m.sio_sid != sid);
            }
        }
        if let Ok(mut rooms) = self.rooms.lock() {
            if let Some(r) = rooms.get_mut(nsp) {
                r.retain(|_, set| {
                    set.remove(sid);
                    !set.is_empty()
                });
            }
        }
        if let Ok(mut acks) = self.remote_acks.lock() {
            if !acks.is_empty() {
                acks.retain(|(s, n, _), _| !(s == sid && n == nsp));
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
                    // One packet's attachments together may not exceed maxPayload: a client
                    // must not make the server hold more than that for it.
                    let max = session
                        .server()
                        .map_or(usize::MAX, |s| s.config.max_payload);
                    if let Ok(mut c) = self.clients.lock() {
                        if let Some(st) = c.get_mut(&session.sid) {
                            st.pending = Some(Assembly::new(p, max));
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
                let mut too_big = false;
                let done = self.clients.lock().ok().and_then(|mut c| {
                    let st = c.get_mut(&session.sid)?;
                    match st.pending.as_mut()?.push(bytes) {
                        Progress::More => None,
                        Progress::Complete => st.pending.take().map(Assembly::into_parts),
                        Progress::TooLarge => {
                            too_big = true;
                            st.pending = None;
                            None
                        }
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
        if let Some(st) = sockets {
            for (nsp, sid) in st.sockets {
                self.forget_socket(&nsp, &sid);
            }
        }
    }
}
