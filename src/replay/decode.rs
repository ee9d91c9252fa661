//! The bridge from reassembled TCP streams to the trace: one `flow::Session` per connection
//! (the same decoder `dispel serve` taps), plus what a capture can only show by inference:
//! broadcasts (one event in, the same packet out to several connections).

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::flow::redis::{Deliveries, RedisConn};
use crate::flow::{Diagnoser, Inference, Limits, Session};
use crate::trace::{Dir, Event, Stage, Tracer};

use super::{CloseHow, OpenHow, StreamSink};

pub struct TraceSink {
    tracer: Tracer,
    limits: Limits,
    /// The copies of a broadcast are decoded once, for all the sessions of this replay.
    memo: crate::flow::SharedMemo,
    sessions: HashMap<u64, Session>,
    out: Vec<Event>,
    /// Events on their way to the writer, sent in batches.
    batch: Vec<Event>,
    /// Broadcasts and sessions across connections.
    inference: Inference,
    inferred: Vec<Event>,
    /// Failures recognised, after inference.
    diagnoser: Diagnoser,
    diagnosed: Vec<Event>,
    /// Connections to Redis (the message queue), decoded as RESP, not HTTP.
    redis_port: u16,
    redis: HashMap<u64, (RedisConn, u8)>,
    /// Emits that came through the queue, tied to the frames they caused.
    deliveries: Deliveries,
    delivered: Vec<Event>,
    pub problems: u64,
}

impl TraceSink {
    /// `versions`: where a diagnosis's deciding line points.
    pub fn new(
        tracer: Tracer,
        limits: Limits,
        versions: impl Into<crate::links::Linker>,
    ) -> TraceSink {
        TraceSink {
            tracer,
            limits,
            memo: crate::flow::Memo::shared(),
            sessions: HashMap::new(),
            out: Vec::new(),
            batch: Vec::new(),
            inference: Inference::new(),
            inferred: Vec::new(),
            diagnoser: Diagnoser::new(versions),
            diagnosed: Vec::new(),
            redis_port: 6379,
            redis: HashMap::new(),
            deliveries: Deliveries::default(),
            delivered: Vec::new(),
            problems: 0,
        }
    }

    /// Connections to `port` are Redis's (6379 unless told).
    pub fn with_redis_port(mut self, port: u16) -> TraceSink {
        self.redis_port = port;
        self
    }

    fn flush_events(&mut self) {
        let events = std::mem::take(&mut self.out);
        for e in events {
            self.deliveries.push(&e, &mut self.delivered);
            self.inference.push(e, &mut self.inferred);
            self.inferred.append(&mut self.delivered);
            self.send_inferred();
        }
    }

    fn send_inferred(&mut self) {
        let mut inferred = std::mem::take(&mut self.inferred);
        for e in inferred.drain(..) {
            self.diagnoser.push(e, &mut self.diagnosed);
        }
        self.inferred = inferred;
        self.send_diagnosed();
    }

    fn send_diagnosed(&mut self) {
        let mut diagnosed = std::mem::take(&mut self.diagnosed);
        for e in diagnosed.drain(..) {
            self.send(e);
        }
        self.diagnosed = diagnosed;
    }

    fn send(&mut self, e: Event) {
        const BATCH: usize = 32;
        if self.batch.capacity() == 0 {
            self.batch.reserve_exact(BATCH);
        }
        self.batch.push(e);
        if self.batch.len() >= BATCH {
            self.tracer.emit_batch(&mut self.batch);
        }
    }

    /// End of the capture: close what is open, emit the last inferred broadcast.
    pub fn finish(&mut self) {
        self.deliveries.finish(&mut self.delivered);
        self.inference.finish(&mut self.inferred);
        self.inferred.append(&mut self.delivered);
        self.send_inferred();
        self.diagnoser.finish(&mut self.diagnosed);
        self.send_diagnosed();
        self.tracer.emit_batch(&mut self.batch);
    }
}

/// Whatever is still batched reaches the writer even if `finish` was not called.
impl Drop for TraceSink {
    fn drop(&mut self) {
        self.tracer.emit_batch(&mut self.batch);
    }
}

impl StreamSink for TraceSink {
    fn open(&mut self, conn: u64, client: SocketAddr, server: SocketAddr, t: f64, how: OpenHow) {
        if server.port() == self.redis_port {
            self.redis.insert(conn, (RedisConn::new(conn), 0));
            self.out.push(
                Event::new(
                    Stage::TcpAccept,
                    t,
                    Some(conn),
                    None,
                    format!(
                        "{client} -> {server} (Redis: a connection to the message queue, a server's or a publisher's)"
                    ),
                )
                .with("client", client.to_string())
                .with("server", server.to_string())
                .with("redis", true),
            );
            self.flush_events();
            return;
        }
        let session = match how {
            OpenHow::Syn => Session::new(conn, self.limits),
            OpenHow::MidStream => Session::new_midstream(conn, self.limits),
        }
        .with_memo(self.memo.clone());
        let mut session = session;
        let mut interest = self.tracer.interest(Some(conn));
        // Broadcasts, and deliveries of the queue's messages, are inferred from the Socket.IO
        // packets, shown or not.
        if interest & (Stage::SioBroadcast.bit() | Stage::MqMessage.bit()) != 0 {
            interest |= Stage::SioPacket.bit();
        }
        // A diagnosis rests on events the output may not show (`-q`, `--stage`): the
        // diagnoser sees them all, whatever is printed.
        if interest & Stage::Diagnosis.bit() != 0 {
            interest |= crate::trace::Processor::needs(&self.diagnoser);
        }
        session.set_interest(interest);
        let mut e = session.accept_event(t, client, server);
        if how == OpenHow::MidStream {
            e.summary
                .to_mut()
                .push_str(" (capture starts mid-connection)");
            e.fields.insert("midstream", true);
        }
        self.out.push(e);
        self.sessions.insert(conn, session);
        self.flush_events();
    }

    fn data(&mut self, conn: u64, dir: Dir, t: f64, _frame: u64, bytes: &[u8]) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.data(dir, t, bytes, &mut self.out);
            self.flush_events();
        } else if let Some((r, _)) = self.redis.get_mut(&conn) {
            r.data(dir, t, bytes, &mut self.out);
            self.flush_events();
        }
    }

    fn gap(&mut self, conn: u64, dir: Dir, t: f64, len: u64) {
        if let Some(s) = self.sessions.get_mut(&conn) {
            s.gap(dir, t, len, &mut self.out);
            self.flush_events();
        }
    }

    fn close(&mut self, conn: u64, dir: Option<Dir>, t: f64, how: CloseHow) {
        let how_text = match (how, dir) {
            (CloseHow::Fin, Some(Dir::C2S)) => "FIN from the client",
            (CloseHow::Fin, Some(Dir::S2C)) => "FIN from the server",
            (CloseHow::Fin, None) => "FIN",
            (CloseHow::Rst, _) => "RST",
            (CloseHow::EndOfCapture, _) => "end of capture",
            (CloseHow::Idle, _) => "idle (no packets for a long time)",
            (CloseHow::Reused, _) => "addresses reused by a new connection",
        };
        if let Some((_, fins)) = self.redis.get_mut(&conn) {
            *fins += 1;
            if dir.is_none() || *fins >= 2 {
                self.redis.remove(&conn);
                let how = if dir.is_some() {
                    "FIN from both sides"
                } else {
                    how_text
                };
                self.out.push(
                    Event::new(
                        Stage::TcpClose,
                        t,
                        Some(conn),
                        None,
                        format!("connection closed ({how})"),
                    )
                    .with("how", how),
                );
                self.flush_events();
            }
            return;
        }
        match dir {
            // One side's FIN: the other may go on. The connection ends at the second FIN.
            Some(d) => {
                let both = self
                    .sessions
                    .get_mut(&conn)
                    .is_some_and(|s| s.half_close(d));
                if both {
                    if let Some(mut s) = self.sessions.remove(&conn) {
                        // Who closed first matters: RFC 6455 asks the server to, and
                        // Werkzeug's development server leaves it to the client.
                        let how = match s.first_fin() {
                            Some(Dir::C2S) => "FIN from both sides, the client's first",
                            Some(Dir::S2C) => "FIN from both sides, the server's first",
                            None => "FIN from both sides",
                        };
                        s.close(t, how, &mut self.out);
                    }
                }
            }
            None => {
                if let Some(mut s) = self.sessions.remove(&conn) {
                    s.close(t, how_text, &mut self.out);
                }
            }
        }
        self.flush_events();
    }

    fn problem(&mut self, t: Option<f64>, frame: Option<u64>, message: String) {
        self.problems += 1;
        let mut e = Event::new(
            Stage::Error,
            t.unwrap_or(0.0),
            None,
            None,
            format!("capture: {message}"),
        )
        .with("rule", message.as_str())
        .with("where", "capture");
        if let Some(f) = frame {
            e.fields.insert("frame", f);
        }
        self.send(e);
    }
}
