//! The trace's vocabulary: the stages an event can be at, the direction its bytes went, and
//! the kind that narrows which source chain explains it. Producers (flow, live, replay's
//! inference), the trace writers, the links tables, the report and the live view all speak it;
//! the stage-map file is checked against it when it is loaded.

use std::fmt;

/// The stable stage names (documented in docs/trace-format.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    TcpAccept,
    HttpRequest,
    HttpResponse,
    WsHandshake,
    WsFrame,
    WsMessage,
    EioPacket,
    EioUpgrade,
    SioPacket,
    SioDispatch,
    SioBroadcast,
    /// A Socket.IO call the app's code made (emit, send, disconnect) or python-socketio's own
    /// answer (an acknowledgement, a CONNECT), as `dispel watch` observed it in the app.
    SioEmit,
    /// A room joined, left or closed by the app's code (`dispel watch`).
    SioRoom,
    WsClose,
    TcpClose,
    /// Bytes that could not be decoded as what they should have been (gap, non-frame bytes...).
    TcpData,
    /// A message this process published on the message queue's channel (Redis `PUBLISH`), as
    /// python-socketio's `PubSubManager` does for an emit, a room change or a disconnect.
    MqPublish,
    /// A message that arrived on the channel from another process (or this one's own, which
    /// it ignores), and which local clients it reached.
    MqMessage,
    Error,
    /// A failure recognised from the events before it: what went wrong, the evidence, the fix
    /// and the source line that decided it (`flow::diagnose`).
    Diagnosis,
    /// What the watched app runs, as its tracer reported when it started: the Python, the
    /// async mode, the installed versions, its interpreter and its source (`dispel watch`).
    App,
}

impl Kind {
    /// The kind of an emit the app's code made: through Flask-SocketIO's module-level
    /// function or the SocketIO object's method (`method`), `send` or `emit`, to a room or one
    /// client (`room`) or to everyone. Each starts its chain where the call went in.
    pub fn of_emit(method: bool, send: bool, room: bool) -> Kind {
        match (method, send, room) {
            (false, false, true) => Kind::Room,
            (false, false, false) => Kind::Emit,
            (true, false, true) => Kind::MethodRoom,
            (true, false, false) => Kind::Method,
            (false, true, true) => Kind::SendRoom,
            (false, true, false) => Kind::Send,
            (true, true, true) => Kind::MethodSendRoom,
            (true, true, false) => Kind::MethodSend,
        }
    }
}

impl Stage {
    pub const ALL: [Stage; 21] = [
        Stage::TcpAccept,
        Stage::HttpRequest,
        Stage::HttpResponse,
        Stage::WsHandshake,
        Stage::WsFrame,
        Stage::WsMessage,
        Stage::EioPacket,
        Stage::EioUpgrade,
        Stage::SioPacket,
        Stage::SioDispatch,
        Stage::SioBroadcast,
        Stage::SioEmit,
        Stage::SioRoom,
        Stage::WsClose,
        Stage::TcpClose,
        Stage::TcpData,
        Stage::MqPublish,
        Stage::MqMessage,
        Stage::Error,
        Stage::Diagnosis,
        Stage::App,
    ];

    /// The stages of a connection's life, in order (`ALL` without `tcp.data`, the message
    /// queue's, `error` and `diagnosis`).
    pub const LIFECYCLE: &'static [Stage] = Stage::ALL.split_at(15).0;

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::TcpAccept => "tcp.accept",
            Stage::HttpRequest => "http.request",
            Stage::HttpResponse => "http.response",
            Stage::WsHandshake => "ws.handshake",
            Stage::WsFrame => "ws.frame",
            Stage::WsMessage => "ws.message",
            Stage::EioPacket => "eio.packet",
            Stage::EioUpgrade => "eio.upgrade",
            Stage::SioPacket => "sio.packet",
            Stage::SioDispatch => "sio.dispatch",
            Stage::SioBroadcast => "sio.broadcast",
            Stage::SioEmit => "sio.emit",
            Stage::SioRoom => "sio.room",
            Stage::WsClose => "ws.close",
            Stage::TcpClose => "tcp.close",
            Stage::TcpData => "tcp.data",
            Stage::MqPublish => "mq.publish",
            Stage::MqMessage => "mq.message",
            Stage::Error => "error",
            Stage::Diagnosis => "diagnosis",
            Stage::App => "app",
        }
    }

    /// This stage's bit in an interest mask.
    pub fn bit(self) -> u32 {
        1 << (self as u32)
    }

    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.iter().copied().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way the bytes went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client to server.
    C2S,
    /// Server to client.
    S2C,
}

impl Dir {
    pub fn as_str(self) -> &'static str {
        match self {
            Dir::C2S => "c2s",
            Dir::S2C => "s2c",
        }
    }
    pub fn other(self) -> Dir {
        match self {
            Dir::C2S => Dir::S2C,
            Dir::S2C => Dir::C2S,
        }
    }
    pub fn index(self) -> usize {
        match self {
            Dir::C2S => 0,
            Dir::S2C => 1,
        }
    }
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $v:ident = $s:literal,)*) => {
        /// What an event was, as far as the source links tell events apart: the packet type,
        /// the HTTP request's kind, the direction where the code path differs (`event_sent`
        /// is encoded and queued, `event` is read and dispatched), an inferred fan-out.
        /// Written into each JSONL event (`kind`) so that readers never derive it again.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $($(#[$doc])* $v,)*
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$v,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Kind::$v => $s,)*
                }
            }
        }
    };
}

kinds! {
    // HTTP requests and responses.
    /// An Engine.IO long-polling GET of an open session (`transport=polling&sid=`): a poll.
    Polling = "polling",
    /// The long-polling GET that opens an Engine.IO session (no `sid`).
    PollingOpen = "polling_open",
    /// A long-polling POST: the client's packets for the server.
    PollingPost = "polling_post",
    /// An Engine.IO WebSocket upgrade of an existing session (`transport=websocket&sid=`).
    Websocket = "websocket",
    /// A WebSocket that opens its own Engine.IO session (no `sid`).
    WebsocketNew = "websocket_new",
    /// A WebSocket's connection that ended without a Close frame (the reader saw the FIN).
    WebsocketAbrupt = "websocket_abrupt",
    /// Any other page of the app.
    Page = "page",
    // Engine.IO packets and WebSocket opcodes (`close`, `ping`, `pong` are both).
    Open = "open",
    /// An OPEN written by the WebSocket writer (a session opened without long-polling).
    OpenWebsocket = "open_websocket",
    Close = "close",
    Ping = "ping",
    Pong = "pong",
    Message = "message",
    /// A MESSAGE the server sends: queued and written, not read.
    MessageSent = "message_sent",
    /// A MESSAGE the client sent in a long-polling POST.
    MessagePolling = "message_polling",
    /// A PONG the client sent in a long-polling POST.
    PongPolling = "pong_polling",
    Upgrade = "upgrade",
    Noop = "noop",
    Text = "text",
    Binary = "binary",
    Continuation = "continuation",
    Reserved = "reserved",
    /// A data frame or message the server wrote (the encode path).
    Send = "send",
    /// A data frame the server wrote compressed (permessage-deflate, RSV1).
    SendCompressed = "send_compressed",
    /// A data frame or message of the client's that is compressed (permessage-deflate):
    /// its payload is inflated after unmasking.
    Compressed = "compressed",
    // Socket.IO packets; `_sent` ones are the server's.
    Connect = "connect",
    /// A CONNECT read from a WebSocket message rather than a long-polling POST.
    ConnectWebsocket = "connect_websocket",
    ConnectSent = "connect_sent",
    Disconnect = "disconnect",
    Event = "event",
    EventSent = "event_sent",
    Ack = "ack",
    AckSent = "ack_sent",
    ConnectError = "connect_error",
    BinaryEvent = "binary_event",
    BinaryEventSent = "binary_event_sent",
    BinaryAck = "binary_ack",
    BinaryAckSent = "binary_ack_sent",
    /// An Engine.IO or Socket.IO packet type number no version defines.
    Unknown = "unknown",
    // One-to-many sends and the app's calls.
    /// `emit(..., broadcast=True)` or `to=` a room, as the app called it.
    Broadcast = "broadcast",
    /// An emit to one client (and, on the message queue, an emit's message).
    Emit = "emit",
    /// An emit to a room (`to=room`), as the app called it; also a room event of old traces.
    Room = "room",
    /// The app's call through the SocketIO object (`socketio.emit`, a Namespace's
    /// `self.emit`) to everyone: not through Flask-SocketIO's module-level `emit`.
    Method = "method",
    /// The same to a room or one client.
    MethodRoom = "method_room",
    /// Flask-SocketIO's module-level `send` to a room or one client (`send` alone is to
    /// everyone: `Send`).
    SendRoom = "send_room",
    /// The SocketIO object's `send` to everyone.
    MethodSend = "method_send",
    /// The SocketIO object's `send` to a room or one client.
    MethodSendRoom = "method_send_room",
    /// The app's `join_room`, `leave_room`, `close_room`.
    Join = "join",
    Leave = "leave",
    CloseRoom = "close_room",
    /// A handler of a Flask-SocketIO `Namespace` class, reached through the class.
    Namespace = "namespace",
    /// A `Namespace` class's `on_connect`: called inline from the CONNECT, through the class.
    NamespaceConnect = "namespace_connect",
    /// Inferred from a capture: one packet out to several clients, a broadcast or a room emit.
    Fanout = "fanout",
    // The message queue.
    /// This process's own message, which it ignores.
    Own = "own",
    Subscribe = "subscribe",
    /// An acknowledgement returned to the process that asked for it.
    Callback = "callback",
    /// A message tied, by inference, to the Socket.IO packets it caused.
    Delivered = "delivered",
}

impl Kind {
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// An HTTP kind as the transport it belongs to: each long-polling request is "polling".
    pub fn transport(self) -> &'static str {
        match self {
            Kind::PollingOpen | Kind::PollingPost => "polling",
            k => k.as_str(),
        }
    }

    /// Is it one of the long-polling requests (open, poll, post)?
    pub fn is_polling(self) -> bool {
        matches!(self, Kind::Polling | Kind::PollingOpen | Kind::PollingPost)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Stage {
    /// The kinds the source links tell apart at this stage; other kinds (and none) get the
    /// stage's default chain.
    pub fn kinds(self) -> &'static [Kind] {
        use Kind::*;
        match self {
            Stage::EioPacket => &[
                Open,
                Close,
                Ping,
                Pong,
                Message,
                Upgrade,
                Noop,
                MessageSent,
                OpenWebsocket,
                MessagePolling,
                PongPolling,
            ],
            Stage::SioPacket => &[
                Connect,
                Disconnect,
                Event,
                Ack,
                ConnectError,
                BinaryEvent,
                BinaryAck,
                ConnectWebsocket,
                ConnectSent,
                EventSent,
                BinaryEventSent,
                AckSent,
                BinaryAckSent,
            ],
            Stage::WsFrame => &[
                Text,
                Binary,
                Close,
                Ping,
                Pong,
                Continuation,
                Send,
                SendCompressed,
                Compressed,
            ],
            Stage::WsMessage => &[
                Text,
                Binary,
                Close,
                Ping,
                Pong,
                Continuation,
                Send,
                Compressed,
            ],
            Stage::HttpRequest => &[
                Polling,
                PollingOpen,
                PollingPost,
                Websocket,
                WebsocketNew,
                Page,
            ],
            Stage::SioBroadcast => &[Broadcast, Emit, Fanout, Room],
            Stage::SioEmit => &[
                Room,
                Method,
                MethodRoom,
                Send,
                SendRoom,
                MethodSend,
                MethodSendRoom,
                ConnectSent,
                AckSent,
                ConnectError,
                Disconnect,
            ],
            Stage::SioRoom => &[Join, Leave, CloseRoom],
            Stage::SioDispatch => &[Namespace, Connect, NamespaceConnect],
            Stage::HttpResponse => &[Polling, PollingOpen, PollingPost, Websocket, Page],
            Stage::MqMessage => &[Own, Subscribe],
            Stage::TcpClose => &[Websocket, WebsocketAbrupt],
            Stage::WsHandshake => &[Compressed],
            Stage::MqPublish => &[Callback],
            _ => &[],
        }
    }
}
