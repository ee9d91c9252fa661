//! The differential harness's client side: raw HTTP requests and a raw WebSocket client that
//! write down everything the server answers, so the same script run against the real
//! Flask-SocketIO app and against `dispel serve` gives two transcripts to compare.
//!
//! Nothing here trusts the server: bytes are read with timeouts, bodies by their framing
//! (Content-Length, chunked, or until close), frames by RFC 6455's header, compressed messages
//! inflated with flate2 (never with dispel's own decoder, which is under test).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};

use crate::util::repo;

/// How long an answer may take before the transcript says nothing came.
const WAIT: Duration = Duration::from_secs(3);

/// The real Flask-SocketIO reference app (tests/flask_app/app.py), started on a free port.
pub struct Flask {
    child: Child,
    pub addr: String,
}

impl Flask {
    /// Starts the app with `args`; `None` when tests/.venv is missing (see `flask_available`).
    pub fn start(args: &[&str]) -> Option<Flask> {
        let python = repo().join("tests/.venv/bin/python");
        if !python.exists() {
            crate::util::skip("tests/.venv (the Flask-SocketIO reference app)");
            return None;
        }
        let port = free_port();
        let child = Command::new(python)
            .arg(repo().join("tests/flask_app/app.py"))
            .args(["--port", &port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the Flask-SocketIO reference app");
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "the Flask-SocketIO app did not listen on {addr} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Flask { child, addr })
    }
}

impl Drop for Flask {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the reference app can run here; says why not when it cannot.
pub fn flask_available() -> bool {
    let ok = repo().join("tests/.venv/bin/python").exists();
    if !ok {
        eprintln!("SKIP: tests/.venv is missing: tests/setup.sh installs Flask-SocketIO (the README's test command runs it)");
    }
    ok
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// What one run of a script wrote down, line by line.
#[derive(Clone, Default)]
pub struct Transcript(Arc<Mutex<Vec<String>>>);

impl Transcript {
    pub fn say(&self, line: impl Into<String>) {
        self.0.lock().unwrap().push(line.into());
    }

    pub fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

/// One script's run against one server.
pub struct Run {
    pub addr: String,
    pub t: Transcript,
}

/// An HTTP response as read off the socket.
#[derive(Debug, Clone, Default)]
pub struct Resp {
    pub status: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The server closed the connection after the response.
    pub closed: bool,
}

impl Resp {
    /// The body as text, inflated first when it came gzip- or deflate-encoded.
    pub fn text(&self) -> String {
        let mut body = self.body.clone();
        let mut out = Vec::new();
        match self.header("content-encoding") {
            Some("gzip")
                if flate2::read::GzDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .is_ok() =>
            {
                body = out
            }
            Some("deflate")
                if flate2::read::ZlibDecoder::new(&self.body[..])
                    .read_to_end(&mut out)
                    .is_ok() =>
            {
                body = out
            }
            _ => {}
        }
        String::from_utf8_lossy(&body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `"sid"` of an OPEN packet in the body.
    pub fn sid(&self) -> String {
        sid_in(&self.text())
    }

    fn describe(&self, t: &Transcript) {
        t.say(format!("  {}", self.status));
        for (n, v) in &self.headers {
            t.say(format!("  {n}: {v}"));
        }
        t.say(format!("  body {:?}", self.text()));
        t.say(if self.closed {
            "  (server closed the connection)"
        } else {
            "  (connection kept open)"
        });
    }
}

/// The `"sid"` in a packet's JSON text.
pub fn sid_in(text: &str) -> String {
    text.split("\"sid\":\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_string()
}

impl Run {
    pub fn new(addr: &str) -> Run {
        Run {
            addr: addr.to_string(),
            t: Transcript::default(),
        }
    }

    pub fn say(&self, line: impl Into<String>) {
        self.t.say(line);
    }

    /// Sends `raw` (with `{host}` replaced) on a new connection and writes down the answer.
    pub fn raw(&self, label: &str, raw: &[u8]) -> Resp {
        self.say(format!("> {label}"));
        let resp = exchange(&self.addr, raw);
        resp.describe(&self.t);
        resp
    }

    /// A request with the usual headers (Host, and `extra` lines).
    pub fn request(&self, method: &str, target: &str, extra: &[&str], body: &[u8]) -> Resp {
        let raw = request_bytes(&self.addr, method, target, extra, body);
        let shown = if body.len() > 200 {
            format!("{} bytes", body.len())
        } else {
            format!("{:?}", String::from_utf8_lossy(body))
        };
        self.raw(&format!("{method} {target} {extra:?} {shown}"), &raw)
    }

    pub fn get(&self, target: &str) -> Resp {
        self.request("GET", target, &[], b"")
    }

    pub fn post(&self, target: &str, body: &str) -> Resp {
        self.request(
            "POST",
            target,
            &["Content-Type: text/plain;charset=UTF-8"],
            body.as_bytes(),
        )
    }

    /// A polling handshake: the OPEN packet's sid.
    pub fn open_polling(&self) -> String {
        self.get("/socket.io/?EIO=4&transport=polling").sid()
    }

    /// Polls (GET after GET) until `n` packets have come, and writes them down one per line,
    /// whatever batches they came in (python-socketio's handler threads make the batching a
    /// matter of timing). The first response's head is written down too.
    pub fn poll(&self, sid: &str, n: usize) {
        let target = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        self.say(format!("> poll {target} for {n} packet(s)"));
        let mut got = 0;
        let mut first = true;
        let deadline = Instant::now() + Duration::from_secs(10);
        while got < n && Instant::now() < deadline {
            let raw = request_bytes(&self.addr, "GET", &target, &[], b"");
            let resp = exchange(&self.addr, &raw);
            if first {
                self.say(format!("  {}", resp.status));
                for (k, v) in &resp.headers {
                    self.say(format!("  {k}: {v}"));
                }
                first = false;
            }
            if !resp.status.contains(" 200 ") {
                self.say(format!("  body {:?}", resp.text()));
                return;
            }
            for p in resp.text().split('\u{1e}') {
                self.say(format!("  packet {p:?}"));
                got += 1;
            }
        }
        if got < n {
            self.say(format!("  (only {got} packet(s) in 10 s)"));
        }
    }

    /// A GET sent now and answered later (a long poll); its answer is written down at `join`.
    pub fn spawn_get(&self, target: &str) -> Pending {
        let raw = request_bytes(&self.addr, "GET", target, &[], b"");
        let addr = self.addr.clone();
        let label = format!("> (parked) GET {target}");
        let handle = std::thread::spawn(move || exchange(&addr, &raw));
        // Give it time to reach the server and park before the script goes on.
        std::thread::sleep(Duration::from_millis(300));
        Pending { label, handle }
    }

    pub fn join(&self, p: Pending) -> Resp {
        self.say(p.label);
        let resp = p.handle.join().unwrap_or_default();
        resp.describe(&self.t);
        resp
    }

    /// Opens a WebSocket at `query` (`/socket.io/?...`) offering `extensions`; the handshake's
    /// answer is written down. `origin` is sent when given.
    pub fn ws(
        &self,
        name: &str,
        query: &str,
        extensions: Option<&str>,
        origin: Option<&str>,
    ) -> Ws {
        let mut extra = vec![
            "Upgrade: websocket".to_string(),
            "Connection: Upgrade".to_string(),
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==".to_string(),
            "Sec-WebSocket-Version: 13".to_string(),
        ];
        if let Some(e) = extensions {
            extra.push(format!("Sec-WebSocket-Extensions: {e}"));
        }
        if let Some(o) = origin {
            extra.push(format!("Origin: {o}"));
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let raw = request_bytes(&self.addr, "GET", query, &extra, b"");
        self.say(format!(
            "> {name}: GET {query} (WebSocket, extensions {extensions:?})"
        ));
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream.set_nodelay(true).ok();
        let _ = stream.write_all(&raw);
        let mut ws = Ws {
            name: name.to_string(),
            stream,
            buf: Vec::new(),
            t: self.t.clone(),
            deflate: None,
            out: None,
        };
        let Some(resp) = ws.read_head() else {
            self.say("  (no answer to the handshake)");
            return ws;
        };
        self.say(format!("  {}", resp.status));
        for (n, v) in &resp.headers {
            self.say(format!("  {n}: {v}"));
        }
        if resp.status.contains(" 101 ") {
            if let Some(ext) = resp.header("sec-websocket-extensions") {
                if ext.contains("permessage-deflate") {
                    let server_reset = ext.contains("server_no_context_takeover");
                    let client_reset = ext.contains("client_no_context_takeover");
                    ws.deflate = Some(Inflate {
                        d: Decompress::new(false),
                        reset: server_reset,
                    });
                    ws.out = Some(DeflateOut {
                        c: Compress::new(Compression::default(), false),
                        reset: client_reset,
                    });
                }
            }
        } else {
            // An HTTP error answer: its body, then whether the server closed.
            let body = ws.read_body(&resp);
            self.say(format!("  body {:?}", String::from_utf8_lossy(&body)));
            let closed = ws.closed_within(Duration::from_millis(500));
            self.say(if closed {
                "  (server closed the connection)"
            } else {
                "  (connection kept open)"
            });
        }
        ws
    }
}

pub struct Pending {
    label: String,
    handle: std::thread::JoinHandle<Resp>,
}

fn request_bytes(addr: &str, method: &str, target: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    for e in extra {
        head.push_str(e);
        head.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// One request on a new connection: the response, and whether the server then closed.
fn exchange(addr: &str, raw: &[u8]) -> Resp {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return Resp {
            status: "(connection refused)".into(),
            ..Resp::default()
        };
    };
    let _ = s.write_all(raw);
    let mut reader = Ws {
        name: String::new(),
        stream: s,
        buf: Vec::new(),
        t: Transcript::default(),
        deflate: None,
        out: None,
    };
    let Some(mut resp) = reader.read_head() else {
        return Resp {
            status: "(no answer)".into(),
            closed: true,
            ..Resp::default()
        };
    };
    resp.body = reader.read_body(&resp);
    resp.closed = reader.closed_within(Duration::from_millis(500));
    resp
}

struct Inflate {
    d: Decompress,
    reset: bool,
}

struct DeflateOut {
    c: Compress,
    reset: bool,
}

/// A raw WebSocket client connection (client side: frames masked).
pub struct Ws {
    pub name: String,
    stream: TcpStream,
    buf: Vec<u8>,
    t: Transcript,
    deflate: Option<Inflate>,
    out: Option<DeflateOut>,
}

/// A frame as read: the header's bits and the (unmasked) payload.
#[derive(Debug)]
pub struct Frame {
    pub fin: bool,
    pub rsv1: bool,
    pub opcode: u8,
    pub masked: bool,
    pub payload: Vec<u8>,
}

impl Ws {
    fn fill(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let _ = self.stream.set_read_timeout(Some(deadline - now));
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    fn read_head(&mut self) -> Option<Resp> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                self.buf.drain(..end + 4);
                let mut lines = head.split("\r\n");
                let status = lines.next().unwrap_or_default().to_string();
                let headers = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                    .collect();
                return Some(Resp {
                    status,
                    headers,
                    ..Resp::default()
                });
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    fn read_body(&mut self, resp: &Resp) -> Vec<u8> {
        let deadline = Instant::now() + WAIT;
        if let Some(n) = resp
            .header("content-length")
            .and_then(|v| v.parse::<usize>().ok())
        {
            while self.buf.len() < n && self.fill(deadline) {}
            let n = n.min(self.buf.len());
            return self.buf.drain(..n).collect();
        }
        if resp
            .header("transfer-encoding")
            .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
        {
            let mut body = Vec::new();
            loop {
                let Some(eol) = self.find_line(deadline) else {
                    return body;
                };
                let size_line = String::from_utf8_lossy(&self.buf[..eol]).into_owned();
                self.buf.drain(..eol + 2);
                let size =
                    usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
                        .unwrap_or(0);
                while self.buf.len() < size + 2 && self.fill(deadline) {}
                if size == 0 {
                    let n = self.buf.len().min(2);
                    self.buf.drain(..n);
                    return body;
                }
                let n = size.min(self.buf.len());
                body.extend(self.buf.drain(..n));
                let n = self.buf.len().min(2);
                self.buf.drain(..n);
            }
        }
        // Until close.
        while self.fill(deadline) {}
        std::mem::take(&mut self.buf)
    }

    fn find_line(&mut self, deadline: Instant) -> Option<usize> {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                return Some(i);
            }
            if !self.fill(deadline) {
                return None;
            }
        }
    }

    /// Whether the server closes the connection within `d` (nothing more is read: anything
    /// that arrives meanwhile is kept for the next read).
    fn closed_within(&mut self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
                Err(_) => return false,
            }
        }
    }

    /// An HTTP response where a frame should be (Werkzeug writing onto the upgraded socket):
    /// its status line, and everything up to the close is consumed.
    fn http_instead_of_frame(&mut self) -> Option<String> {
        if !self.buf.starts_with(b"HTTP/") {
            return None;
        }
        let _ = self
            .stream
            .set_read_timeout(Some(Duration::from_millis(500)));
        let mut rest = Vec::new();
        let _ = self.stream.read_to_end(&mut rest);
        let text = String::from_utf8_lossy(&self.buf).into_owned();
        let status = text.lines().next().unwrap_or_default().to_string();
        self.buf.clear();
        Some(format!("(not a frame: an HTTP response {status:?})"))
    }

    /// Reads one frame, waiting up to `wait`.
    fn frame(&mut self, wait: Duration) -> Result<Frame, &'static str> {
        let deadline = Instant::now() + wait;
        loop {
            if self.buf.starts_with(b"HTTP/") {
                return Err("http");
            }
            if let Some((f, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Ok(f);
            }
            if !self.fill(deadline) {
                return Err(if Instant::now() >= deadline {
                    "nothing"
                } else {
                    "closed"
                });
            }
        }
    }

    /// What a frame says, as a transcript line (compressed messages inflated).
    fn describe(&mut self, f: &Frame) -> String {
        self.decode(f).0
    }

    /// A frame's transcript line and its payload as text (inflated).
    fn decode(&mut self, f: &Frame) -> (String, String) {
        let mut flags = String::new();
        if !f.fin {
            flags.push_str(" !fin");
        }
        if f.masked {
            flags.push_str(" masked");
        }
        let mut payload = f.payload.clone();
        if f.rsv1 {
            flags.push_str(" deflated");
            if let Some(inf) = self.deflate.as_mut() {
                payload = inflate(inf, &f.payload);
            }
        }
        let text = String::from_utf8_lossy(&payload).into_owned();
        let line = match f.opcode {
            0x1 => format!("TEXT{flags} {:?}", String::from_utf8_lossy(&payload)),
            0x2 => format!("BINARY{flags} {payload:?}"),
            0x0 => format!("CONT{flags} {:?}", String::from_utf8_lossy(&payload)),
            0x8 => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                let reason = payload
                    .get(2..)
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                format!("CLOSE{flags} {code:?} {reason:?}")
            }
            0x9 => format!("PING{flags} {:?}", String::from_utf8_lossy(&payload)),
            0xA => format!("PONG{flags} {:?}", String::from_utf8_lossy(&payload)),
            op => format!("OPCODE {op:#x}{flags} {payload:?}"),
        };
        (line, text)
    }

    /// Reads `n` frames and writes them down.
    pub fn recv(&mut self, n: usize) {
        for _ in 0..n {
            match self.frame(WAIT) {
                Ok(f) => {
                    let line = self.describe(&f);
                    self.t.say(format!("  {} < {line}", self.name));
                }
                Err("http") => {
                    let line = self.http_instead_of_frame().unwrap_or_default();
                    self.t.say(format!("  {} < {line}", self.name));
                    return;
                }
                Err(why) => {
                    self.t.say(format!("  {} < ({why})", self.name));
                    return;
                }
            }
        }
    }

    /// Writes down what arrives within `ms` (nothing, usually).
    pub fn quiet(&mut self, ms: u64) {
        let deadline = Instant::now() + Duration::from_millis(ms);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.t
                    .say(format!("  {} < (nothing for {ms} ms)", self.name));
                return;
            }
            match self.frame(left) {
                Ok(f) => {
                    let line = self.describe(&f);
                    self.t.say(format!("  {} < {line}", self.name));
                }
                Err("nothing") => {
                    self.t
                        .say(format!("  {} < (nothing for {ms} ms)", self.name));
                    return;
                }
                Err(why) => {
                    self.t.say(format!("  {} < ({why})", self.name));
                    return;
                }
            }
        }
    }

    /// Reads until the server closes the TCP connection (or `secs` pass), writing down every
    /// frame and what ends it. Bytes that are not a frame are written down as text.
    pub fn until_end(&mut self, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(line) = self.http_instead_of_frame() {
                self.t.say(format!("  {} < {line}", self.name));
                continue;
            }
            if let Some((f, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                let line = self.describe(&f);
                self.t.say(format!("  {} < {line}", self.name));
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                self.t
                    .say(format!("  {} < (still open after {secs} s)", self.name));
                return;
            }
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    self.t.say(format!("  {} < (server closed TCP)", self.name));
                    return;
                }
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    self.t.say(format!("  {} < (TCP reset)", self.name));
                    return;
                }
                Err(_) => {}
            }
        }
    }

    /// Sends a frame as a client does (masked), writing it down.
    pub fn send_frame(&mut self, opcode: u8, fin: bool, payload: &[u8], compress: bool) {
        let mut body = payload.to_vec();
        let mut rsv1 = false;
        if compress {
            if let Some(out) = self.out.as_mut() {
                body = deflate(out, payload);
                rsv1 = true;
            }
        }
        let shown = match opcode {
            0x1 | 0x0 => format!("{:?}", String::from_utf8_lossy(payload)),
            _ => format!("{payload:?}"),
        };
        self.t.say(format!(
            "  {} > opcode {opcode:#x}{}{} {shown}",
            self.name,
            if fin { "" } else { " !fin" },
            if rsv1 { " deflated" } else { "" }
        ));
        let bytes = encode_client_frame(opcode, fin, rsv1, &body);
        let _ = self.stream.write_all(&bytes);
    }

    pub fn text(&mut self, s: &str) {
        self.send_frame(0x1, true, s.as_bytes(), false);
    }

    pub fn text_deflated(&mut self, s: &str) {
        self.send_frame(0x1, true, s.as_bytes(), true);
    }

    pub fn binary(&mut self, b: &[u8]) {
        self.send_frame(0x2, true, b, false);
    }

    /// Raw bytes, written down by `label`.
    pub fn raw(&mut self, label: &str, bytes: &[u8]) {
        self.t.say(format!("  {} > {label}", self.name));
        let _ = self.stream.write_all(bytes);
    }

    pub fn close(&mut self, code: u16, reason: &str) {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason.as_bytes());
        self.send_frame(0x8, true, &p, false);
    }

    /// Closes the TCP connection without a Close frame.
    pub fn drop_tcp(self) {
        self.t.say(format!("  {} > (TCP closed)", self.name));
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

fn inflate(inf: &mut Inflate, payload: &[u8]) -> Vec<u8> {
    if inf.reset {
        inf.d.reset(false);
    }
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(input.len() * 4 + 64);
    loop {
        let start = inf.d.total_in();
        let res = inf
            .d
            .decompress_vec(&input, &mut out, FlushDecompress::Sync);
        let used = (inf.d.total_in() - start) as usize;
        input.drain(..used);
        if res.is_err() {
            return b"(inflate failed)".to_vec();
        }
        if input.is_empty() && out.len() < out.capacity() {
            return out;
        }
        out.reserve(out.capacity().max(1024));
    }
}

fn deflate(out: &mut DeflateOut, payload: &[u8]) -> Vec<u8> {
    if out.reset {
        out.c.reset();
    }
    let mut buf = Vec::with_capacity(payload.len() + 64);
    let mut input = payload;
    loop {
        let start = out.c.total_in();
        let _ = out.c.compress_vec(input, &mut buf, FlushCompress::Sync);
        let used = (out.c.total_in() - start) as usize;
        input = &input[used..];
        if input.is_empty() && buf.len() < buf.capacity() {
            break;
        }
        buf.reserve(buf.capacity().max(64));
    }
    if buf.ends_with(&[0, 0, 0xff, 0xff]) {
        buf.truncate(buf.len() - 4);
    }
    buf
}

/// Parses one whole frame off the front of `buf` (unmasking it).
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let (b0, b1) = (buf[0], buf[1]);
    let masked = b1 & 0x80 != 0;
    let mut at = 2;
    let len = match b1 & 0x7f {
        126 => {
            let b = buf.get(2..4)?;
            at = 4;
            u16::from_be_bytes([b[0], b[1]]) as usize
        }
        127 => {
            let b = buf.get(2..10)?;
            at = 10;
            u64::from_be_bytes(b.try_into().ok()?) as usize
        }
        n => n as usize,
    };
    let key = if masked {
        let k = buf.get(at..at + 4)?;
        at += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    let mut payload = buf.get(at..at + len)?.to_vec();
    if let Some(k) = key {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= k[i % 4];
        }
    }
    Some((
        Frame {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            opcode: b0 & 0x0f,
            masked,
            payload,
        },
        at + len,
    ))
}

/// A client frame, masked with a fixed key (the answers do not depend on it).
pub fn encode_client_frame(opcode: u8, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= 0xffff {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    let key = [0x37, 0xfa, 0x21, 0x3d];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

/// Makes two transcripts comparable: sids (in order of first appearance), dates and server
/// names become placeholders.
pub fn normalize(lines: &[String], addr: &str) -> Vec<String> {
    let mut sids: Vec<String> = Vec::new();
    for l in lines {
        let mut rest = l.as_str();
        while let Some(i) = rest
            .find("sid\\\":\\\"")
            .map(|i| (i, 8))
            .or_else(|| rest.find("sid\":\"").map(|i| (i, 6)))
        {
            let (i, skip) = i;
            let after = &rest[i + skip..];
            let sid: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            if !sid.is_empty() && !sids.contains(&sid) {
                sids.push(sid);
            }
            rest = after;
        }
    }
    // Longest first, so that no sid is replaced inside another.
    let mut order: Vec<(usize, &String)> = sids.iter().enumerate().collect();
    order.sort_by_key(|(_, s)| std::cmp::Reverse(s.len()));
    lines
        .iter()
        .map(|l| {
            let mut l = l.clone();
            for (i, s) in &order {
                l = l.replace(s.as_str(), &format!("<sid{}>", i + 1));
            }
            l = l.replace(addr, "<host>");
            if l.starts_with("  Date: ") {
                l = "  Date: <date>".into();
            }
            if l.starts_with("  Server: ") {
                l = "  Server: <server>".into();
            }
            l
        })
        .collect()
}

/// A readable side-by-side of two transcripts from the first line that differs.
pub fn diff(a_name: &str, a: &[String], b_name: &str, b: &[String]) -> Option<String> {
    if a == b {
        return None;
    }
    let first = a
        .iter()
        .zip(b.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    let mut out = String::new();
    let from = first.saturating_sub(3);
    out.push_str(&format!("first difference at line {}\n", first + 1));
    out.push_str(&format!("--- {a_name}\n"));
    for l in a.iter().skip(from).take(first - from + 12) {
        out.push_str(&format!("  {l}\n"));
    }
    out.push_str(&format!("--- {b_name}\n"));
    for l in b.iter().skip(from).take(first - from + 12) {
        out.push_str(&format!("  {l}\n"));
    }
    Some(out)
}

/// Where the differential harness writes both transcripts of every scenario, for reading.
pub fn out_dir() -> PathBuf {
    let d = repo().join("target/differential");
    let _ = std::fs::create_dir_all(&d);
    d
}

/// A recording relay: clients connect to it, it connects to the server, passes every byte both
/// ways unchanged and writes the connections into a pcap (dispel's own recorder), so a session
/// of real clients with any server can be replayed.
pub struct Relay {
    pub addr: String,
    recorder: Arc<dispel::replay::record::Recorder>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    pub fn start(server: &str, pcap: &std::path::Path) -> Relay {
        use std::net::TcpListener;
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("relay address");
        let recorder =
            Arc::new(dispel::replay::record::Recorder::create(pcap).expect("create the pcap"));
        let stop = Arc::new(AtomicBool::new(false));
        let (rec, stopped, server) = (recorder.clone(), stop.clone(), server.to_string());
        let start = Instant::now();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let Ok(upstream) = TcpStream::connect(&server) else {
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = upstream.set_nodelay(true);
                let (Ok(peer), Ok(local)) = (client.peer_addr(), upstream.peer_addr()) else {
                    continue;
                };
                let id = rec.open(peer, local, start.elapsed());
                let pipe = |mut from: TcpStream,
                            mut to: TcpStream,
                            dir: dispel::trace::Dir,
                            rec: Arc<dispel::replay::record::Recorder>| {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        loop {
                            match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    rec.data(id, dir, &buf[..n], start.elapsed());
                                    if to.write_all(&buf[..n]).is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    })
                };
                let (c2, u2) = (client.try_clone(), upstream.try_clone());
                let (Ok(c2), Ok(u2)) = (c2, u2) else { continue };
                let a = pipe(client, upstream, dispel::trace::Dir::C2S, rec.clone());
                let b = pipe(u2, c2, dispel::trace::Dir::S2C, rec.clone());
                let rec = rec.clone();
                std::thread::spawn(move || {
                    let _ = a.join();
                    let _ = b.join();
                    rec.close(id, start.elapsed());
                });
            }
        });
        Relay {
            addr: addr.to_string(),
            recorder,
            stop,
        }
    }

    /// Writes the capture out (every connection should have ended).
    pub fn finish(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
        let _ = self.recorder.finish();
    }
}
