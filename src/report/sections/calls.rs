//! The app's Socket.IO calls as its source writes them, sorted by what they do, and the
//! library chain each kind goes down, at the report's versions: what a student's report
//! shows once per kind of call, however many lines make it.

use super::*;
use crate::report::pysource::Call;
use crate::stage::Kind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum CallKind {
    /// `emit`/`send` to a room or one client (`to=`, or the sender by default).
    EmitTo,
    /// `emit`/`send` to every client of the namespace.
    EmitAll,
    Join,
    Leave,
    CloseRoom,
    Disconnect,
    /// A handler's `return`: the acknowledgement.
    Ack,
    /// `raise ConnectionRefusedError`: a refused connection.
    Refuse,
    Task,
    /// `socketio.sleep`: a wait that lets the server go on.
    Sleep,
}

impl CallKind {
    /// What a call of the source does; `None` for what is no Socket.IO call.
    pub(super) fn of(call: &Call) -> Option<CallKind> {
        let n = call.name.as_str();
        Some(if n == "return" {
            CallKind::Ack
        } else if n.starts_with("raise") {
            return call
                .text
                .contains("ConnectionRefusedError")
                .then_some(CallKind::Refuse);
        } else if n.ends_with("join_room") {
            CallKind::Join
        } else if n.ends_with("leave_room") {
            CallKind::Leave
        } else if n.ends_with("close_room") {
            CallKind::CloseRoom
        } else if n.ends_with("start_background_task") {
            CallKind::Task
        } else if n.ends_with(".sleep") {
            CallKind::Sleep
        } else if n.ends_with("disconnect") {
            CallKind::Disconnect
        } else {
            match call.reach()? {
                r if r.starts_with("every client") => CallKind::EmitAll,
                _ => CallKind::EmitTo,
            }
        })
    }

    /// What a call does in the function it is in: a connect handler's `return False` refuses
    /// the connection, and its other returns are no acknowledgement; only a handler's return
    /// is one.
    pub(super) fn in_function(
        call: &Call,
        f: &crate::report::pysource::Function,
    ) -> Option<CallKind> {
        let kind = CallKind::of(call)?;
        if kind != CallKind::Ack {
            return Some(kind);
        }
        if f.kind != crate::report::pysource::Kind::Handler {
            return None;
        }
        if matches!(f.event.as_str(), "connect" | "disconnect") {
            return (f.event == "connect" && call.text.trim() == "return False")
                .then_some(CallKind::Refuse);
        }
        Some(kind)
    }

    /// The title of an emit kind as the app wrote the call.
    pub(super) fn title_for(self, form: Form) -> &'static str {
        if form.own_namespace && matches!(self, CallKind::EmitTo | CallKind::EmitAll) {
            return match (self, form.send) {
                (CallKind::EmitTo, false) => {
                    "A Namespace class's self.emit to one room or one client (room=)"
                }
                (CallKind::EmitTo, true) => {
                    "A Namespace class's self.send to one room or one client (room=)"
                }
                (_, false) => "A Namespace class's self.emit to every client of its namespace",
                (_, true) => "A Namespace class's self.send to every client of its namespace",
            };
        }
        match (self, form.method, form.send) {
            (CallKind::EmitAll, true, false) => {
                "socketio.emit (the SocketIO object's emit) to every client of the namespace"
            }
            (CallKind::EmitAll, false, true) => "A send() to every client of the namespace",
            (CallKind::EmitAll, true, true) => "socketio.send to every client of the namespace",
            (CallKind::EmitTo, true, false) => {
                "The SocketIO object's emit (socketio.emit, a Namespace's self.emit) to one room or one client"
            }
            (CallKind::EmitTo, false, true) => "A send() to one room or one client",
            (CallKind::EmitTo, true, true) => {
                "The SocketIO object's send to one room or one client"
            }
            _ => self.title(),
        }
    }

    pub(super) fn title(self) -> &'static str {
        match self {
            CallKind::EmitTo => "An emit to one room or one client",
            CallKind::EmitAll => "An emit to every client of the namespace",
            CallKind::Join => "join_room",
            CallKind::Leave => "leave_room",
            CallKind::CloseRoom => "close_room",
            CallKind::Disconnect => "disconnect()",
            CallKind::Ack => "A handler's return value, sent back as the acknowledgement",
            CallKind::Refuse => {
                "A refused connection (raise ConnectionRefusedError, or return False)"
            }
            CallKind::Task => "start_background_task: a function on a thread of its own",
            CallKind::Sleep => "socketio.sleep: a wait in the async mode's own way",
        }
    }

    /// What it does, in a sentence.
    pub(super) fn what(self) -> &'static str {
        match self {
            CallKind::EmitTo => "Flask-SocketIO's emit (and send, which emits \"message\") goes to the room named by to=, which may be one client's sid; without to= inside a handler it goes back to the client being handled. python-socketio's manager looks up the room's members and queues the packet, encoded once, on each one's session.",
            CallKind::EmitAll => "With broadcast=True, or through the SocketIO object (socketio.emit, socketio.send) without to=, wherever it is called, the packet goes to every client connected to the namespace: encoded once, queued on each client's session.",
            CallKind::Join => "Joining a room changes python-socketio's table of rooms (its manager); nothing is sent to anyone.",
            CallKind::Leave => "Leaving a room changes python-socketio's table of rooms; nothing is sent.",
            CallKind::CloseRoom => "Closing a room makes every member leave it; nothing is sent.",
            CallKind::Disconnect => "The server sends the client a Socket.IO DISCONNECT for the namespace and forgets it there; the client does not reconnect to it by itself. Only that namespace: the client's other namespaces and its Engine.IO session (its WebSocket) stay open.",
            CallKind::Ack => "When the client asked for an acknowledgement, python-socketio sends the handler's return value back in an ACK packet with the same id, as soon as the handler returns.",
            CallKind::Refuse => "A connect handler that returns False refuses the connection with python-socketio's default message, \"Connection rejected by server\". Raised in a connect handler, Flask-SocketIO's ConnectionRefusedError (from flask_socketio) makes python-socketio answer the CONNECT with CONNECT_ERROR carrying the exception's argument; the client's connect_error handler gets that message (socket.io-client's connect_error event carries it; python-socketio's client calls its connect_error handler with it, and its connect() raises a ConnectionError of its own, \"One or more namespaces failed to connect\"). Python's built-in exception of the same name refuses the connection too, but with python-socketio's generic message, \"Connection refused by server\".",
            CallKind::Task => "The function runs on a thread (or green thread) of its own, outside any client's request: its emits have no sender, so socketio.emit reaches every client of the namespace unless to= names a room.",
            CallKind::Sleep => "The wait goes down to the async mode's sleep: under threading the thread waits and the others go on; under eventlet or gevent the green thread yields, which time.sleep would not do unless the standard library is monkey-patched.",
        }
    }

    /// The library chain of this kind of call, at the report's versions, for the form the
    /// app's call has (see [`Form`]).
    pub(super) fn links(self, ctx: &Ctx, form: Form) -> Vec<StepLink> {
        // A module-level emit to everyone is the stage's own chain (its kind `emit` has none).
        let emit = |room: bool| match Kind::of_emit(form.method, form.send, room) {
            Kind::Emit => ctx.links(Stage::SioEmit, None),
            kind => ctx.links(Stage::SioEmit, Some(kind)),
        };
        // A Namespace class's self.emit or self.send goes through its own method first.
        let own = |room: bool| {
            let first = match form.send {
                true => "broadcast_emit_encode.50",
                false => "broadcast_emit_encode.49",
            };
            let mut links: Vec<StepLink> = ctx.step(first).into_iter().collect();
            links.extend(emit(room));
            links
        };
        match self {
            CallKind::EmitTo if form.own_namespace => own(true),
            CallKind::EmitAll if form.own_namespace => own(false),
            CallKind::EmitTo => emit(true),
            CallKind::EmitAll => emit(false),
            CallKind::Join => ctx.links(Stage::SioRoom, Some(Kind::Join)),
            CallKind::Leave => ctx.links(Stage::SioRoom, Some(Kind::Leave)),
            CallKind::CloseRoom => ctx.links(Stage::SioRoom, Some(Kind::CloseRoom)),
            CallKind::Disconnect => ctx.links(Stage::SioEmit, Some(Kind::Disconnect)),
            CallKind::Ack => ctx.links(Stage::SioEmit, Some(Kind::AckSent)),
            CallKind::Refuse => ctx.links(Stage::SioEmit, Some(Kind::ConnectError)),
            CallKind::Task => ctx.entry("entry:task").map(|s| s.links).unwrap_or_default(),
            CallKind::Sleep => ctx
                .entry("entry:sleep")
                .map(|s| s.links)
                .unwrap_or_default(),
        }
    }
}

/// How the app's code wrote a call: through the SocketIO object (`socketio.emit`, a
/// Namespace's `self.emit`) or Flask-SocketIO's module-level function, and `send` or `emit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Form {
    pub method: bool,
    pub send: bool,
    /// `self.emit` in a method of a Namespace class.
    pub own_namespace: bool,
}

impl Form {
    /// A call that is neither (a background task's start).
    pub(super) const PLAIN: Form = Form {
        method: false,
        send: false,
        own_namespace: false,
    };

    pub(super) fn of(call: &Call) -> Form {
        Form {
            method: call.name.contains('.'),
            send: call.name.rsplit('.').next() == Some("send"),
            own_namespace: call.name.starts_with("self."),
        }
    }
}

/// The chain of the app's `SocketIO(...)` statement: without python-engineio's search for an
/// async mode when the statement names one (`async_mode=`), which then settles it.
pub(super) fn socketio_links(ctx: &Ctx, statement: &str) -> Option<links::Section> {
    let mut sec = ctx.entry("entry:socketio")?;
    if statement.contains("async_mode") {
        sec.links
            .retain(|l| !matches!(l.step.step_id.as_str(), "startup.4" | "startup.5"));
    }
    Some(sec)
}

/// What `socketio.run(app)` starts, in the app's async mode.
pub(super) fn run_text(mode: links::AsyncMode) -> String {
    let server = match mode {
        links::AsyncMode::Threading => {
            "Werkzeug's development server, through Flask's app.run, with a thread per connection"
        }
        links::AsyncMode::Eventlet => {
            "eventlet's WSGI server, on a green socket, with a green thread per connection"
        }
        links::AsyncMode::Gevent => "gevent's pywsgi server, with a greenlet per connection",
    };
    format!("It starts the server of the app's async mode, {mode}: {server}.")
}
