//! The report's input: a capture decoded through the replay pipeline, or a JSONL trace read
//! back, as [`Ev`]s; the connections it holds and which one the report is about.

use serde_json::{Map, Value};

use crate::trace::{Dir, Kind, Stage};

use super::sections;

/// One trace event as read back from its JSON form.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub seq: u64,
    pub t: f64,
    pub conn: Option<u64>,
    pub dir: Option<Dir>,
    pub stage: Stage,
    /// The packet kind the trace linked the event by (`send` for a data frame the server
    /// wrote), as the trace wrote it: a reader never derives it again.
    pub kind: Option<Kind>,
    pub summary: String,
    pub fields: Map<String, Value>,
}

impl Ev {
    /// Reads one event object; the error says which key is wrong.
    pub fn from_json(v: &Value) -> Result<Ev, String> {
        let obj = v.as_object().ok_or("not a JSON object")?;
        let stage_name = obj
            .get("stage")
            .and_then(Value::as_str)
            .ok_or("no \"stage\"")?;
        let stage =
            Stage::parse(stage_name).ok_or_else(|| format!("unknown stage {stage_name:?}"))?;
        let dir = match obj.get("dir").and_then(Value::as_str) {
            None => None,
            Some("c2s") => Some(Dir::C2S),
            Some("s2c") => Some(Dir::S2C),
            Some(other) => return Err(format!("unknown dir {other:?}")),
        };
        Ok(Ev {
            seq: obj.get("seq").and_then(Value::as_u64).unwrap_or(0),
            t: obj.get("t").and_then(Value::as_f64).unwrap_or(0.0),
            conn: obj.get("conn").and_then(Value::as_u64),
            dir,
            stage,
            kind: match obj.get("kind").and_then(Value::as_str) {
                None => None,
                Some(k) => Some(Kind::parse(k).ok_or_else(|| format!("unknown kind {k:?}"))?),
            },
            summary: obj
                .get("summary")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            fields: obj
                .get("fields")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        })
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    pub fn u64(&self, key: &str) -> Option<u64> {
        self.fields.get(key).and_then(Value::as_u64)
    }

    pub fn flag(&self, key: &str) -> bool {
        self.fields
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// Does this event concern connection `conn` (its own, or as a broadcast recipient)?
    pub fn touches(&self, conn: u64) -> bool {
        touches(self.conn, self.stage, self.fields.get("recipients"), conn)
    }
}

/// One line of a JSONL trace: an event, nothing (a blank line), or what is wrong with it.
fn parse_line(line: &str) -> Result<Option<Ev>, String> {
    if line.trim().is_empty() {
        return Ok(None);
    }
    let v = serde_json::from_str::<Value>(line).map_err(|e| format!("not JSON ({e})"))?;
    Ev::from_json(&v).map(Some)
}

/// What every event has: when, where, which way, which stage.
#[derive(Clone, Copy)]
struct Head {
    t: f64,
    conn: Option<u64>,
    dir: Option<Dir>,
    stage: Stage,
    kind: Option<Kind>,
}

impl Head {
    fn ev(self, seq: u64, summary: String, fields: Map<String, Value>) -> Ev {
        Ev {
            seq,
            t: self.t,
            conn: self.conn,
            dir: self.dir,
            stage: self.stage,
            kind: self.kind,
            summary,
            fields,
        }
    }
}

/// An event as the report's keeping reads it: a trace event decoded from a capture, or one
/// read back from a JSONL trace.
trait Source {
    fn head(&self) -> Head;
    fn summary(&self) -> &str;
    /// A field held as a value (a capture's Socket.IO data is JSON text: see `data`).
    fn field(&self, key: &str) -> Option<&Value>;
    /// The event's `data` as a value.
    fn data(&self) -> Option<std::borrow::Cow<'_, Value>>;
    /// The whole event as the report reads it.
    fn full(&self, seq: u64) -> Ev;

    fn str(&self, key: &str) -> Option<&str> {
        self.field(key).and_then(Value::as_str)
    }

    /// The event with only the fields that identify it (`type`, `event`, `nsp`, `sid`) and, as
    /// a string, the start of its `data`'s JSON: what the report looks up and shows of
    /// connections it does not explain.
    fn slim(&self, seq: u64) -> Ev {
        let mut fields = Map::new();
        for key in ["type", "event", "nsp", "sid"] {
            if let Some(v) = self.field(key) {
                fields.insert(key.to_string(), v.clone());
            }
        }
        if let Some(data) = self.data() {
            let text = data.to_string();
            let mut end = text.len().min(SLIM_DATA);
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            fields.insert("data".into(), Value::String(text[..end].to_string()));
        }
        self.head().ev(seq, String::new(), fields)
    }
}

impl Source for crate::trace::Event {
    fn head(&self) -> Head {
        Head {
            t: self.t,
            conn: self.conn,
            dir: self.dir,
            stage: self.stage,
            kind: self.kind,
        }
    }
    fn summary(&self) -> &str {
        &self.summary
    }
    fn field(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }
    fn data(&self) -> Option<std::borrow::Cow<'_, Value>> {
        self.fields.json("data")
    }
    fn full(&self, seq: u64) -> Ev {
        self.head()
            .ev(seq, self.summary.to_string(), self.fields.to_map())
    }
}

impl Source for Ev {
    fn head(&self) -> Head {
        Head {
            t: self.t,
            conn: self.conn,
            dir: self.dir,
            stage: self.stage,
            kind: self.kind,
        }
    }
    fn summary(&self) -> &str {
        &self.summary
    }
    fn field(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }
    fn data(&self) -> Option<std::borrow::Cow<'_, Value>> {
        self.fields.get("data").map(std::borrow::Cow::Borrowed)
    }
    fn full(&self, _seq: u64) -> Ev {
        self.clone()
    }
}

/// Diagnoses a report shows at most (a broken deployment repeats its failure).
const DIAGNOSES_KEPT: usize = 20;

/// How much of a slim event's data is kept: more than a report's table shows of it.
const SLIM_DATA: usize = 120;

/// Whether an event concerns connection `conn`: its own, or a broadcast that reached it.
fn touches(own: Option<u64>, stage: Stage, recipients: Option<&Value>, conn: u64) -> bool {
    own == Some(conn)
        || (stage == Stage::SioBroadcast
            && recipients
                .and_then(Value::as_array)
                .is_some_and(|r| r.iter().any(|c| c.as_u64() == Some(conn))))
}

/// One connection of the input, for the report's table of connections.
#[derive(Debug, Clone, Default)]
pub struct ConnSummary {
    pub id: u64,
    /// The client's address:port (from tcp.accept).
    pub client: Option<String>,
    /// The server's address:port (from tcp.accept).
    pub server: Option<String>,
    /// The first HTTP request: method and target.
    pub request: Option<(String, String)>,
    pub events: usize,
    /// What choosing the connection to explain looks at: a WebSocket handshake, Socket.IO
    /// EVENTs (and whether the client sent one), Engine.IO packets.
    pub handshake: bool,
    pub sio_event: bool,
    pub sio_event_sent: bool,
    pub eio: bool,
    /// The Engine.IO session it carried (a request's `sid`, or its packets').
    pub sid: Option<String>,
}

/// The connections of an input in the order they appear, summed up event by event.
#[derive(Default)]
struct Conns {
    list: Vec<ConnSummary>,
    index: std::collections::HashMap<u64, usize>,
}

impl Conns {
    fn note(
        &mut self,
        conn: u64,
        stage: Stage,
        dir: Option<Dir>,
        field: &dyn Fn(&str) -> Option<String>,
    ) {
        let i = *self.index.entry(conn).or_insert_with(|| {
            self.list.push(ConnSummary {
                id: conn,
                ..ConnSummary::default()
            });
            self.list.len() - 1
        });
        let c = &mut self.list[i];
        c.events += 1;
        if stage == Stage::TcpAccept && c.client.is_none() {
            c.client = field("client");
            c.server = field("server");
        }
        if stage == Stage::HttpRequest && c.request.is_none() {
            c.request = Some((
                field("method").unwrap_or_else(|| "?".into()),
                field("target").unwrap_or_default(),
            ));
        }
        if c.sid.is_none() && matches!(stage, Stage::HttpRequest | Stage::EioPacket) {
            c.sid = field("sid");
        }
        match stage {
            Stage::WsHandshake => c.handshake = true,
            Stage::EioPacket => c.eio = true,
            Stage::SioPacket if !c.sio_event_sent && field("type").as_deref() == Some("EVENT") => {
                c.sio_event = true;
                c.sio_event_sent = dir == Some(Dir::C2S);
            }
            _ => {}
        }
    }
}

/// What the report was made from.
pub struct Input {
    /// The events the report reads: all of a JSONL trace's; of a capture, those of the chosen
    /// connection in full, and of the others only what the report looks up (see `Keep`).
    pub events: Vec<Ev>,
    /// Every connection of the input, in order.
    pub conns: Vec<ConnSummary>,
    /// The connection to explain.
    pub conn: u64,
    /// The connections of its Engine.IO session (its long-polling requests and its WebSocket),
    /// `conn` among them, in order; only `conn` when the connection was asked for.
    pub session: Vec<u64>,
    /// Lines of a JSONL trace that could not be read, or capture problems.
    pub problems: Vec<String>,
    /// "capture" or "JSONL trace".
    pub what: &'static str,
    /// The app's own handlers and calls, where the trace observed them (`dispel watch`).
    pub sites: sections::yours::Sites,
    /// A client sent the course auction's event (on any connection): the app is the auction.
    pub auction: bool,
    /// The diagnoses of the whole input (not only the chosen connection's), the first ones.
    pub diagnoses: Vec<Ev>,
    /// What the app ran, when the input is a trace of `dispel watch`.
    pub watched: Option<Watched>,
    /// Whether the server's HTTP responses (not a WebSocket's 101, which the WebSocket library
    /// writes) named Werkzeug, on any connection: `Some(true)` when one did, `Some(false)` when
    /// responses came and none had a Server header; `None` without responses, or when one
    /// names another server (gunicorn, a proxy).
    pub werkzeug: Option<bool>,
}

/// Reads INPUT: a capture (recognised by its magic number) or a JSONL trace, streamed. `reopen`
/// gives the input again from its start: it is read twice, first to sum up each connection
/// and choose one (unless `conn` is given), then to keep what the report needs of it, so a
/// large input never has all its events in memory at once.
pub fn load<R: std::io::BufRead>(
    mut reopen: impl FnMut() -> std::io::Result<R>,
    server_port: Option<u16>,
    conn: Option<u64>,
) -> Result<Input, crate::Error> {
    let mut input = reopen()?;
    // The first bytes say which (a file's first fill holds far more than a magic number).
    let capture = crate::replay::is_capture_magic(input.fill_buf()?);
    let read = |r: R, keep: Keep| {
        if capture {
            decode_capture(r, server_port, keep)
        } else {
            read_jsonl(r, keep)
        }
    };
    let survey = match conn {
        Some(_) => None,
        None => Some(read(input, Keep::Survey)?),
    };
    let picked = match &survey {
        Some(s) => pick_conn(&s.conns.list),
        None => conn,
    };
    let Some(conn) = picked else {
        // Say why, if the input itself said something (a truncated capture...).
        let why = survey
            .as_ref()
            .and_then(|s| s.problems.first())
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        return Err(format!("no TCP connection in it{why}").into());
    };
    // One client is one Engine.IO session, whatever connections it took, to one server: a
    // reverse proxy's connections to the app carry the same sid, and are not the client's.
    let session: Vec<u64> = match (&survey, pick_conn_sid(survey.as_ref(), conn)) {
        (Some(s), Some(sid)) => {
            let server = |id: u64| {
                s.conns
                    .index
                    .get(&id)
                    .and_then(|&i| s.conns.list.get(i))
                    .and_then(|c| c.server.clone())
            };
            let own = server(conn);
            s.conns
                .list
                .iter()
                .filter(|c| c.sid.as_deref() == Some(sid.as_str()))
                .filter(|c| own.is_none() || c.server == own)
                .map(|c| c.id)
                .collect()
        }
        _ => vec![conn],
    };
    let focus = read(reopen()?, Keep::Focus(session.clone().into()))?;
    if !focus.conns.index.contains_key(&conn) {
        return Err(format!("connection #{conn} is not in it").into());
    }
    let mut events = focus.events;
    // Deliveries join the kept events when their broadcast comes, after them.
    events.sort_by_key(|e| e.seq);
    let (conns, problems) = match survey {
        Some(s) => (s.conns.list, s.problems),
        None => (focus.conns.list, focus.problems),
    };
    Ok(Input {
        events,
        conns,
        conn,
        session,
        problems,
        what: if capture { "capture" } else { "JSONL trace" },
        sites: focus.sites,
        auction: focus.auction,
        diagnoses: focus.diagnoses,
        watched: focus.watched,
        werkzeug: focus.servers.werkzeug(),
    })
}

/// A JSONL trace, line by line. A bad line is reported with its number and skipped; a trace
/// without a single event is an error.
fn read_jsonl(input: impl std::io::BufRead, keep: Keep) -> Result<Held, crate::Error> {
    let mut held = Held::default();
    let mut read = 0usize;
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|_| "neither a pcap/pcapng capture nor a UTF-8 JSONL trace")?;
        match parse_line(&line) {
            Ok(Some(e)) => {
                read += 1;
                held.take(e.seq, &e, &keep);
            }
            Ok(None) => {}
            Err(why) => held.problems.push(format!("line {}: {why}", i + 1)),
        }
    }
    if read == 0 {
        let first = held
            .problems
            .first()
            .cloned()
            .unwrap_or_else(|| "empty input".into());
        return Err(format!("not a capture, and no trace events in it ({first})").into());
    }
    Ok(held)
}

/// Which events of the input the report keeps.
#[derive(Clone)]
enum Keep {
    /// No event: only each connection's summary, to choose one.
    Survey,
    /// The connections' events: the chosen one's and the other connections' of its session (and the
    /// broadcasts that reach them) in full, the Engine.IO OPEN packets (a session may have
    /// opened elsewhere), and, slim, the Socket.IO EVENTs that delivered its first broadcasts
    /// to the other connections.
    Focus(std::sync::Arc<[u64]>),
}

/// The session of the chosen connection, from the survey.
fn pick_conn_sid(survey: Option<&Held>, conn: u64) -> Option<String> {
    let s = survey?;
    let i = s.conns.index.get(&conn)?;
    s.conns.list.get(*i)?.sid.clone()
}

/// The capture through the same decoding as `dispel replay`, kept instead of printed.
fn decode_capture(
    input: impl std::io::Read,
    server_port: Option<u16>,
    keep: Keep,
) -> Result<Held, crate::Error> {
    let collected = Collected {
        keep,
        held: Default::default(),
    };
    let (tracer, writer) =
        crate::trace::Tracer::start(Box::new(collected.clone()), crate::trace::Filter::default());
    // A diagnosis's deciding line is looked up again for the report's own versions.
    let mut sink = crate::replay::TraceSink::new(
        tracer,
        crate::flow::Limits::default(),
        crate::cli::VersionSet::Current,
    );
    let result = crate::replay::read_capture(input, server_port, &mut sink);
    sink.finish();
    drop(sink);
    writer.finish()?;
    result?;
    let held = match collected.held.lock() {
        Ok(mut h) => std::mem::take(&mut *h),
        Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
    };
    Ok(held)
}

/// The trace sink of a report: each event is kept in the form the report reads as it comes,
/// or only summed up (see `Keep`).
#[derive(Clone)]
struct Collected {
    keep: Keep,
    held: std::sync::Arc<std::sync::Mutex<Held>>,
}

#[derive(Default)]
struct Held {
    events: Vec<Ev>,
    conns: Conns,
    problems: Vec<String>,
    /// The Socket.IO EVENTs the server sent to other connections in the last seconds, slim
    /// (`Keep::Focus`): a broadcast inferred from a capture is written after its deliveries,
    /// once its group is known to be over, and takes them from here.
    recent: std::collections::VecDeque<Ev>,
    /// Broadcasts whose deliveries were kept.
    broadcasts: usize,
    /// Kept broadcasts whose deliveries may still come: (time, event name).
    open: Vec<(f64, Option<String>)>,
    /// The app's own activity, from every connection and none.
    sites: sections::yours::Sites,
    /// See `Input::auction`.
    auction: bool,
    /// See `Input::diagnoses`.
    diagnoses: Vec<Ev>,
    /// See `Input::watched`.
    watched: Option<Watched>,
    /// How the server's HTTP responses named it (`Input::werkzeug`).
    servers: ServerNames,
}

/// What the Server headers of a capture's HTTP responses said, besides a WebSocket's 101.
#[derive(Default)]
struct ServerNames {
    werkzeug: bool,
    other: bool,
    unnamed: bool,
}

impl ServerNames {
    /// See `Input::werkzeug`.
    fn werkzeug(&self) -> Option<bool> {
        match self {
            ServerNames { werkzeug: true, .. } => Some(true),
            ServerNames { other: true, .. } => None,
            ServerNames { unnamed, .. } => unnamed.then_some(false),
        }
    }
}

/// What a watched app ran, as the trace's `app` event recorded it when the app started.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// The app's script or module (`chat.py`).
    pub name: String,
    pub async_mode: Option<crate::links::AsyncMode>,
    /// The interpreter that ran it: its installed versions are the ones to link, when it is
    /// on this machine.
    pub executable: Option<std::path::PathBuf>,
    /// The app's source, as found from its command.
    pub source: Option<std::path::PathBuf>,
    /// The versions the app reported ("Flask-SocketIO 5.7.0"), and its Python.
    pub versions: Vec<String>,
    /// Where the app's own server listened, behind the relay the clients connected to.
    pub listens: Option<String>,
}

impl Watched {
    fn of(e: &impl Source) -> Watched {
        let path = |k: &str| e.str(k).map(std::path::PathBuf::from);
        let mut versions: Vec<String> = e
            .field("versions")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(n, v)| Some(format!("{n} {}", v.as_str()?)))
            .collect();
        if let Some(py) = e.str("python") {
            versions.push(format!("Python {py}"));
        }
        Watched {
            name: e.str("name").unwrap_or("the app").to_string(),
            async_mode: e.str("async_mode").and_then(crate::links::AsyncMode::parse),
            executable: path("executable"),
            source: path("source"),
            versions,
            listens: e.str("listens").map(str::to_string),
        }
    }
}

/// The broadcasts whose deliveries a report of a capture keeps: those the diagram draws (the
/// broadcast section details the first one).
const BROADCASTS_KEPT: usize = sections::DRAWN_BROADCASTS;

/// How long a sent EVENT waits in `Held::recent` for its broadcast: deliveries fall within
/// half a second of it, and its event comes at the latest with the first packet after that.
const RECENT_SECS: f64 = 2.0;

impl Held {
    /// Sums `e` up into its connection's summary and keeps what `keep` asks for.
    fn take(&mut self, seq: u64, e: &impl Source, keep: &Keep) {
        let h = e.head();
        if let Some(c) = h.conn {
            self.conns
                .note(c, h.stage, h.dir, &|k| e.str(k).map(String::from));
        }
        if h.stage == Stage::App && self.watched.is_none() {
            self.watched = Some(Watched::of(e));
        }
        if h.stage == Stage::HttpResponse && e.field("status").and_then(Value::as_u64) != Some(101)
        {
            match crate::trace::header(e.field("headers"), "server") {
                Some(s) if s.contains("Werkzeug") => self.servers.werkzeug = true,
                Some(_) => self.servers.other = true,
                None => self.servers.unnamed = true,
            }
        }
        // Problems with the capture itself (no connection) are reported beside the report.
        if h.stage == Stage::Error && h.conn.is_none() {
            self.problems.push(e.summary().to_string());
        }
        if h.stage == Stage::SioPacket
            && h.dir == Some(Dir::C2S)
            && e.str("event") == Some("replace old value")
        {
            self.auction = true;
        }
        if h.stage == Stage::SioPacket && h.dir == Some(Dir::C2S) {
            let id = e.field("id").and_then(Value::as_u64);
            if let (Some(sid), Some(id), Some(event)) = (e.str("sid"), id, e.str("event")) {
                self.sites
                    .asked(sid, e.str("nsp").unwrap_or("/"), id, event);
            }
        }
        let Keep::Focus(session) = keep else {
            return;
        };
        if h.stage == Stage::Diagnosis
            && e.str("cause") != Some("summary")
            && self.diagnoses.len() < DIAGNOSES_KEPT
        {
            self.diagnoses.push(e.full(seq));
        }
        if e.field("observed").is_some_and(Value::is_array) {
            self.sites.take(&e.full(seq));
        }
        let ty = e.str("type");
        let own = session
            .iter()
            .any(|&c| touches(h.conn, h.stage, e.field("recipients"), c));
        if own && h.stage == Stage::SioBroadcast {
            self.broadcast(h.t, e.str("event"));
        }
        if own || (h.stage == Stage::EioPacket && ty == Some("OPEN")) {
            self.events.push(e.full(seq));
        } else if h.stage == Stage::SioPacket && ty == Some("EVENT") && h.dir == Some(Dir::S2C) {
            self.sent(e.slim(seq));
        }
    }

    /// A broadcast that reached the chosen connection: its deliveries to the others are kept,
    /// those already seen (a capture's broadcast is inferred after them) and those to come (a
    /// live server traces the broadcast before the copies are written).
    fn broadcast(&mut self, t: f64, name: Option<&str>) {
        if self.broadcasts >= BROADCASTS_KEPT {
            return;
        }
        self.broadcasts += 1;
        let b = (t, name.map(String::from));
        let (take, keep): (Vec<Ev>, Vec<Ev>) = self.recent.drain(..).partition(|e| delivers(&b, e));
        self.recent = keep.into();
        self.events.extend(take);
        self.open.push(b);
    }

    /// A Socket.IO EVENT the server sent to another connection: kept if it may deliver an open
    /// broadcast, else remembered for a while for a broadcast written after it.
    fn sent(&mut self, e: Ev) {
        self.open.retain(|(t, _)| e.t <= t + 0.5);
        if self.open.iter().any(|b| delivers(b, &e)) {
            self.events.push(e);
            return;
        }
        while self
            .recent
            .front()
            .is_some_and(|old| old.t < e.t - RECENT_SECS)
        {
            self.recent.pop_front();
        }
        self.recent.push_back(e);
    }
}

/// Whether `e` may be a delivery of the broadcast `(t, event name)`: the same event within half
/// a second (the report then picks, per recipient, the first such packet).
fn delivers(b: &(f64, Option<String>), e: &Ev) -> bool {
    e.t >= b.0 - 1e-6 && e.t <= b.0 + 0.5 && e.str("event") == b.1.as_deref()
}

impl crate::trace::Sink for Collected {
    fn write(&mut self, seq: u64, e: &crate::trace::Event) -> std::io::Result<()> {
        let mut held = match self.held.lock() {
            Ok(v) => v,
            Err(poisoned) => poisoned.into_inner(),
        };
        held.take(seq, e, &self.keep);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The connection to explain: one with a WebSocket handshake and a Socket.IO EVENT (sent by
/// the client if possible), else the first with Engine.IO, else the first one at all.
pub fn pick_conn(conns: &[ConnSummary]) -> Option<u64> {
    let first = |pred: &dyn Fn(&ConnSummary) -> bool| conns.iter().find(|c| pred(c)).map(|c| c.id);
    // Best: the client that sent an event (its frames are masked, it triggered the broadcast).
    first(&|c| c.handshake && c.sio_event_sent)
        .or_else(|| first(&|c| c.handshake && c.sio_event))
        .or_else(|| first(&|c| c.eio))
        .or_else(|| conns.first().map(|c| c.id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_bad_lines_are_reported_with_their_number_and_skipped() {
        let text = concat!(
            "{\"seq\":1,\"t\":0.0,\"conn\":1,\"stage\":\"tcp.accept\",\"summary\":\"a\",\"fields\":{\"client\":\"1.2.3.4:5\"},\"links\":[]}\n",
            "not json at all\n",
            "\n",
            "{\"seq\":2,\"stage\":\"no.such\"}\n",
            "[1,2]\n",
            "{\"seq\":3,\"t\":0.5,\"conn\":1,\"dir\":\"c2s\",\"stage\":\"sio.packet\",\"summary\":\"\",\"fields\":{\"type\":\"EVENT\"},\"links\":[\"https://x.test/a\"]}\n",
            "{\"seq\":4,\"stage\":\"ws.frame\",\"dir\":\"up\"}\n",
        );
        let input = load(|| Ok::<_, std::io::Error>(text.as_bytes()), None, None).unwrap();
        // Connection 1 is chosen; both of its events are kept.
        assert_eq!(input.conn, 1);
        let events = &input.events;
        let problems = &input.problems;
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].dir, Some(Dir::C2S));
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].starts_with("line 2: not JSON"), "{problems:?}");
        assert!(
            problems[1].starts_with("line 4: unknown stage"),
            "{problems:?}"
        );
        assert!(
            problems[2].starts_with("line 5: not a JSON object"),
            "{problems:?}"
        );
        assert!(
            problems[3].starts_with("line 7: unknown dir"),
            "{problems:?}"
        );
        // Nothing usable at all is an error, not an empty report.
        let bytes = |b: &'static [u8]| move || Ok::<_, std::io::Error>(b);
        assert!(load(bytes(b"garbage\n"), None, None).is_err());
        assert!(load(bytes(&[0xff, 0xfe, 0x00]), None, None).is_err());
    }

    /// A live server traces a broadcast before its copies are written; a capture's inferred
    /// broadcast comes after them. Either way the report keeps the deliveries to the other
    /// connections (and nothing else of them).
    #[test]
    fn deliveries_are_kept_before_and_after_their_broadcast() {
        let line = |seq: u64, t: f64, conn: u64, dir: &str, stage: &str, fields: Value| {
            let mut v = serde_json::json!({"seq": seq, "t": t, "conn": conn, "stage": stage,
                "summary": "", "fields": fields});
            if !dir.is_empty() {
                v["dir"] = dir.into();
            }
            v.to_string()
        };
        let event =
            |name: &str| serde_json::json!({"type": "EVENT", "event": name, "data": [name, 1]});
        let broadcast = serde_json::json!({"event": "bid", "recipients": [1, 2, 3]});
        for broadcast_first in [true, false] {
            let mut lines = vec![
                line(1, 0.0, 1, "", "ws.handshake", serde_json::json!({})),
                line(2, 1.0, 1, "c2s", "sio.packet", event("bid")),
                line(3, 1.0, 2, "s2c", "sio.packet", event("other")),
            ];
            let copies = [
                line(5, 1.001, 1, "s2c", "sio.packet", event("bid")),
                line(6, 1.002, 2, "s2c", "sio.packet", event("bid")),
                line(7, 1.003, 3, "s2c", "sio.packet", event("bid")),
            ];
            let b = line(4, 1.0, 1, "", "sio.broadcast", broadcast.clone());
            if broadcast_first {
                lines.push(b);
                lines.extend(copies);
            } else {
                lines.extend(copies);
                lines.push(b);
            }
            lines.push(line(8, 9.0, 3, "s2c", "sio.packet", event("bid")));
            let text = lines.join("\n");
            let input = load(|| Ok::<_, std::io::Error>(text.as_bytes()), None, None).unwrap();
            assert_eq!(input.conn, 1);
            let seqs: Vec<u64> = input.events.iter().map(|e| e.seq).collect();
            assert_eq!(
                seqs,
                [1, 2, 4, 5, 6, 7],
                "broadcast first: {broadcast_first}"
            );
        }
    }

    #[test]
    fn kinds_are_read_as_the_trace_wrote_them() {
        let ev =
            |kind: Value| Ev::from_json(&serde_json::json!({"stage": "sio.packet", "kind": kind}));
        assert_eq!(ev("event_sent".into()).unwrap().kind, Some(Kind::EventSent));
        assert_eq!(ev(Value::Null).unwrap().kind, None);
        let err = ev("weird".into()).unwrap_err();
        assert!(err.contains("unknown kind"), "{err}");
    }
}
