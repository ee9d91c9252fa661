//! Integration tests: start the `dispel` binary and drive it with real clients.
//!
//! The real clients (python-socketio, npm socket.io-client) are installed by `tests/setup.sh`
//! into `tests/.venv` and `tests/node_modules`; the README's test command runs it first.

/// The differential harness's raw HTTP and WebSocket client, and its transcripts.
mod oracle;
/// Raw sockets for the tests that play a broken or hostile client.
mod raw;
/// Starting the server, running clients, reading the trace.
mod util;

/// `dispel bench fanout` against `dispel serve`: every broadcast delivered, none lost.
mod bench_fanout;
/// The page and the live view in a real browser; serve --report.
mod browser;
/// Command-line behaviour: help, colour, errors.
mod cli;
/// Diagnoses of a real app's failures, live and replayed; no false alarms.
mod diagnoses;
/// The same bytes to the real Flask-SocketIO app and to `dispel serve`, the answers compared.
mod differential;
/// `dispel serve` against hostile and broken input, with raw sockets.
mod live_bad_input;
/// `dispel serve` with the real python-socketio and socket.io-client clients.
mod live_clients;
/// A classroom trying to break the server: slowloris, floods, abandoned sessions.
mod live_hostile;
/// Several processes through a real Redis: dispel and Flask-SocketIO workers as one.
mod mq;
/// `dispel replay` on real and recorded captures.
mod replay;
/// `dispel report`: golden reports of the reference captures, self-contained HTML.
mod report;
/// `dispel watch` running the real Flask-SocketIO app.
mod watch;
