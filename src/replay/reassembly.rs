//! TCP reassembly: segments in capture order -> in-order byte streams per connection and
//! direction, pushed into a [`StreamSink`].
//!
//! Each direction keeps a 64-bit stream offset (bytes delivered + bytes skipped as gaps) and
//! the sequence number at offset 0; a segment's offset is found by a wrapping 32-bit distance
//! to the next expected sequence number, so wrap-around at 2^32 needs no special case.
//! A segment that is exactly the next expected one is delivered straight from the packet
//! buffer; only out-of-order segments are copied (bounded per direction).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

use super::link::TcpSegment;
use super::{CloseHow, Dir, OpenHow, StreamSink};

/// Out-of-order bytes buffered per direction before the oldest hole is given up as a gap.
pub const MAX_BUFFERED: usize = 4 << 20;
/// A connection with no packet for this long (capture time, seconds) is closed as idle.
pub const IDLE_TIMEOUT: f64 = 600.0;
/// How long a closed connection's 4-tuple is remembered, so late retransmissions and final
/// ACKs do not open a new connection.
pub const CLOSED_LINGER: f64 = 60.0;
/// A segment further ahead than this (bytes) is not plausible (the largest TCP window is
/// 2^30) and is ignored with a problem.
const MAX_AHEAD: i64 = 1 << 30;
/// The connection table is swept for idle and closed connections every this many packets.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    lo: SocketAddr,
    hi: SocketAddr,
}

impl Key {
    fn new(a: SocketAddr, b: SocketAddr) -> Key {
        if a <= b {
            Key { lo: a, hi: b }
        } else {
            Key { lo: b, hi: a }
        }
    }
}

/// An out-of-order segment waiting for the hole before it.
#[derive(Debug)]
struct Pending {
    data: Vec<u8>,
    t: f64,
    frame: u64,
}

/// One direction of a connection.
#[derive(Debug, Default)]
struct Half {
    /// Sequence number of stream offset 0 (known after the SYN or the first data segment).
    base: Option<u32>,
    /// Stream offset of the next byte to deliver.
    next: u64,
    /// Out-of-order segments by stream offset.
    pending: BTreeMap<u64, Pending>,
    pending_bytes: usize,
    /// Stream offset of the FIN, once seen.
    fin: Option<u64>,
    /// The FIN was reached and reported.
    closed: bool,
    /// Initial sequence number from this side's SYN.
    isn: Option<u32>,
}

/// Where a half sends its output.
struct Out<'s, S: StreamSink> {
    sink: &'s mut S,
    conn: u64,
    dir: Dir,
}

impl<S: StreamSink> Out<'_, S> {
    fn data(&mut self, t: f64, frame: u64, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.sink.data(self.conn, self.dir, t, frame, bytes);
        }
    }
    fn gap(&mut self, t: f64, len: u64) {
        if len > 0 {
            self.sink.gap(self.conn, self.dir, t, len);
        }
    }
}

/// One segment's data as its direction receives it: the sequence number of its first byte,
/// the bytes the capture kept, how many more the snap length cut off, and when and in which
/// frame it was seen.
#[derive(Clone, Copy)]
struct Piece<'a> {
    seq: u32,
    payload: &'a [u8],
    missing: u32,
    t: f64,
    frame: u64,
}

impl Half {
    /// The stream offset of `seq`, or None when the base is not known yet.
    fn offset(&self, seq: u32) -> Option<i64> {
        let base = self.base?;
        let expected = base.wrapping_add(self.next as u32);
        Some(self.next as i64 + i64::from(seq.wrapping_sub(expected) as i32))
    }

    /// Sets the base from a SYN: the first data byte is `isn + 1`.
    fn syn(&mut self, isn: u32) {
        self.isn = Some(isn);
        if self.base.is_none() {
            self.base = Some(isn.wrapping_add(1));
        }
    }

    /// A segment's payload, delivered in order or kept until the hole before it fills.
    fn segment<S: StreamSink>(
        &mut self,
        piece: Piece<'_>,
        max_buffered: usize,
        out: &mut Out<'_, S>,
    ) {
        let Piece {
            seq,
            payload,
            missing,
            t,
            frame,
        } = piece;
        if self.closed {
            return;
        }
        if self.base.is_none() {
            // Mid-stream: this direction starts at its first data segment.
            self.base = Some(seq);
        }
        let Some(start) = self.offset(seq) else {
            return;
        };
        let next = self.next as i64;
        let mut end = start + payload.len() as i64;
        let mut full_end = end + i64::from(missing);
        if let Some(fin) = self.fin {
            // Nothing after the FIN exists.
            let fin = fin as i64;
            end = end.min(fin);
            full_end = full_end.min(fin);
        }
        if full_end <= next {
            return; // a retransmission of bytes already delivered
        }
        if start > next + MAX_AHEAD {
            out.sink.problem(
                Some(t),
                Some(frame),
                format!(
                    "TCP segment {} bytes beyond the expected sequence number ignored (connection {}, {})",
                    start - next,
                    out.conn,
                    out.dir.as_str()
                ),
            );
            return;
        }
        if start <= next {
            // In order (possibly overlapping what was delivered): straight from the packet.
            if end > next {
                let from = (next - start) as usize;
                let to = (end - start) as usize;
                if let Some(bytes) = payload.get(from..to) {
                    out.data(t, frame, bytes);
                }
            }
            let delivered_to = end.max(next);
            out.gap(t, (full_end - delivered_to) as u64);
            self.next = full_end as u64;
            self.drain(out);
        } else {
            // Out of order: keep a copy until the hole before it fills.
            let len = usize::try_from(end - start).unwrap_or(0);
            if len > 0 {
                let offset = start as u64;
                let keep = self.pending.get(&offset).is_none_or(|p| p.data.len() < len);
                if keep {
                    let data = payload.get(..len).unwrap_or(payload).to_vec();
                    if let Some(old) = self.pending.insert(offset, Pending { data, t, frame }) {
                        self.pending_bytes -= old.data.len();
                    }
                    self.pending_bytes += len;
                }
            }
            while self.pending_bytes > max_buffered {
                if !self.skip_hole(t, out) {
                    break;
                }
            }
        }
    }

    /// Delivers the pending segments that the stream has reached.
    fn drain<S: StreamSink>(&mut self, out: &mut Out<'_, S>) {
        while let Some(entry) = self.pending.first_entry() {
            let offset = *entry.key();
            if offset > self.next {
                break;
            }
            let p = entry.remove();
            self.pending_bytes -= p.data.len();
            let end = offset + p.data.len() as u64;
            if end <= self.next {
                continue;
            }
            let from = (self.next - offset) as usize;
            if let Some(bytes) = p.data.get(from..) {
                out.data(p.t, p.frame, bytes);
            }
            self.next = end;
        }
    }

    /// Gives up the first hole: reports it as a gap and delivers what follows it.
    /// Returns false when there is no pending data.
    fn skip_hole<S: StreamSink>(&mut self, t: f64, out: &mut Out<'_, S>) -> bool {
        let Some((&offset, _)) = self.pending.first_key_value() else {
            return false;
        };
        if offset > self.next {
            out.gap(t, offset - self.next);
            self.next = offset;
        }
        self.drain(out);
        true
    }

    /// Gives up every hole (the connection is ending): delivers all pending data, and a gap
    /// for bytes missing before the FIN.
    fn flush<S: StreamSink>(&mut self, t: f64, out: &mut Out<'_, S>) {
        while self.skip_hole(t, out) {}
        if let Some(fin) = self.fin {
            if fin > self.next {
                out.gap(t, fin - self.next);
                self.next = fin;
            }
        }
    }

    /// Reports the FIN once all bytes before it are delivered.
    fn check_fin<S: StreamSink>(&mut self, t: f64, out: &mut Out<'_, S>) {
        if !self.closed && self.fin.is_some_and(|f| f <= self.next) {
            self.closed = true;
            self.pending.clear();
            self.pending_bytes = 0;
            out.sink.close(out.conn, Some(out.dir), t, CloseHow::Fin);
        }
    }
}

#[derive(Debug)]
struct Conn {
    id: u64,
    client: SocketAddr,
    server: SocketAddr,
    half: [Half; 2],
    last_t: f64,
    /// Closed (both FINs, or RST): kept only to swallow late packets, until this time.
    closed_at: Option<f64>,
}

impl Conn {
    fn out<'s, S: StreamSink>(&self, sink: &'s mut S, dir: Dir) -> Out<'s, S> {
        Out {
            sink,
            conn: self.id,
            dir,
        }
    }

    /// Ends the connection as a whole: every hole becomes a gap, then one `close(None)`.
    fn end<S: StreamSink>(&mut self, t: f64, how: CloseHow, sink: &mut S) {
        for dir in [Dir::C2S, Dir::S2C] {
            let mut out = self.out(sink, dir);
            let half = &mut self.half[dir.index()];
            if !half.closed {
                half.flush(t, &mut out);
                half.check_fin(t, &mut out);
            }
            half.pending.clear();
            half.pending_bytes = 0;
        }
        sink.close(self.id, None, t, how);
        self.closed_at = Some(t);
    }
}

/// The connection table.
#[derive(Debug)]
pub struct Reassembler {
    conns: HashMap<Key, Conn>,
    next_id: u64,
    server_port: Option<u16>,
    max_buffered: usize,
    since_sweep: u64,
    last_t: f64,
}

impl Reassembler {
    /// `server_port`, when given, decides which side is the server over everything else.
    pub fn new(server_port: Option<u16>) -> Reassembler {
        Reassembler::with_max_buffered(server_port, MAX_BUFFERED)
    }

    /// Like [`Reassembler::new`] with another bound on out-of-order bytes per direction.
    pub fn with_max_buffered(server_port: Option<u16>, max_buffered: usize) -> Reassembler {
        Reassembler {
            conns: HashMap::new(),
            next_id: 1,
            server_port,
            max_buffered,
            since_sweep: 0,
            last_t: 0.0,
        }
    }

    /// Connections opened so far.
    pub fn connections(&self) -> u64 {
        self.next_id - 1
    }

    /// Connections currently in the table (open or lingering after close).
    pub fn tracked(&self) -> usize {
        self.conns.len()
    }

    /// Which side is the server when no SYN says so.
    fn guess_roles(&self, seg: &TcpSegment<'_>) -> (SocketAddr, SocketAddr) {
        let (src, dst) = (seg.src, seg.dst);
        if let Some(roles) = self.port_roles(src, dst) {
            return roles;
        }
        let p = seg.payload;
        if crate::wire::http::starts_request(p) {
            return (src, dst);
        }
        if crate::wire::http::starts_response(p) {
            return (dst, src);
        }
        if src.port() < dst.port() {
            (dst, src)
        } else {
            (src, dst)
        }
    }

    /// Roles from `--server-port`, when exactly one side uses it.
    fn port_roles(&self, src: SocketAddr, dst: SocketAddr) -> Option<(SocketAddr, SocketAddr)> {
        let port = self.server_port?;
        match (src.port() == port, dst.port() == port) {
            (false, true) => Some((src, dst)),
            (true, false) => Some((dst, src)),
            _ => None,
        }
    }

    fn open<S: StreamSink>(
        &mut self,
        key: Key,
        client: SocketAddr,
        server: SocketAddr,
        t: f64,
        how: OpenHow,
        sink: &mut S,
    ) {
        let id = self.next_id;
        self.next_id += 1;
        sink.open(id, client, server, t, how);
        let conn = Conn {
            id,
            client,
            server,
            half: [Half::default(), Half::default()],
            last_t: t,
            closed_at: None,
        };
        self.conns.insert(key, conn);
    }

    /// One TCP segment, in capture order.
    pub fn segment<S: StreamSink>(
        &mut self,
        seg: &TcpSegment<'_>,
        t: f64,
        frame: u64,
        sink: &mut S,
    ) {
        self.last_t = t;
        self.since_sweep += 1;
        if self.since_sweep >= SWEEP_EVERY {
            self.since_sweep = 0;
            self.sweep(t, sink);
        }
        let key = Key::new(seg.src, seg.dst);
        let new_syn = seg.syn && !seg.ack_flag && !seg.rst;

        // Is this packet for the connection in the table, or does it start a new one?
        let mut start_new = false;
        match self.conns.get_mut(&key) {
            Some(conn) if conn.closed_at.is_some() => {
                if !new_syn {
                    return; // a late packet of a closed connection
                }
                start_new = true;
            }
            Some(conn) => {
                if new_syn {
                    let client_isn = conn.half[Dir::C2S.index()].isn;
                    if seg.src == conn.client && client_isn == Some(seg.seq) {
                        conn.last_t = t;
                        return; // a retransmitted SYN
                    }
                    conn.end(t, CloseHow::Reused, sink);
                    start_new = true;
                }
            }
            None => {
                if !seg.syn && seg.payload.is_empty() && seg.missing == 0 {
                    return; // a bare ACK/FIN/RST of a connection we never saw carry anything
                }
                if seg.rst {
                    return;
                }
                start_new = true;
            }
        }
        if start_new {
            let (client, server, how) = if seg.syn {
                let syn_roles = if seg.ack_flag {
                    (seg.dst, seg.src)
                } else {
                    (seg.src, seg.dst)
                };
                let (c, s) = self.port_roles(seg.src, seg.dst).unwrap_or(syn_roles);
                (c, s, OpenHow::Syn)
            } else {
                let (c, s) = self.guess_roles(seg);
                (c, s, OpenHow::MidStream)
            };
            self.open(key, client, server, t, how, sink);
        }
        let max_buffered = self.max_buffered;
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        conn.last_t = t;
        let dir = if seg.src == conn.client && seg.dst == conn.server {
            Dir::C2S
        } else {
            Dir::S2C
        };

        if seg.rst {
            conn.end(t, CloseHow::Rst, sink);
            return;
        }
        let mut data_seq = seg.seq;
        if seg.syn {
            conn.half[dir.index()].syn(seg.seq);
            data_seq = seg.seq.wrapping_add(1);
        }
        {
            let mut out = conn.out(sink, dir);
            let half = &mut conn.half[dir.index()];
            if !seg.payload.is_empty() || seg.missing > 0 {
                let piece = Piece {
                    seq: data_seq,
                    payload: seg.payload,
                    missing: seg.missing,
                    t,
                    frame,
                };
                half.segment(piece, max_buffered, &mut out);
            }
            if seg.fin && half.fin.is_none() {
                if half.base.is_none() {
                    half.base = Some(data_seq);
                }
                let fin_seq = data_seq
                    .wrapping_add(seg.payload.len() as u32)
                    .wrapping_add(seg.missing);
                if let Some(off) = half.offset(fin_seq) {
                    half.fin = Some(off.max(half.next as i64) as u64);
                }
            }
            half.check_fin(t, &mut out);
        }
        let both_fin = conn.half.iter().all(|h| h.fin.is_some());
        if both_fin {
            // Both sides are done sending: a hole now can no longer be filled.
            for d in [Dir::C2S, Dir::S2C] {
                let mut out = conn.out(sink, d);
                let half = &mut conn.half[d.index()];
                if !half.closed {
                    half.flush(t, &mut out);
                    half.check_fin(t, &mut out);
                }
            }
        }
        if conn.half.iter().all(|h| h.closed) {
            conn.closed_at = Some(t);
        }
    }

    /// Drops connections closed long ago and closes idle ones, oldest id first.
    fn sweep<S: StreamSink>(&mut self, t: f64, sink: &mut S) {
        self.conns
            .retain(|_, c| c.closed_at.is_none_or(|at| t - at <= CLOSED_LINGER));
        let mut idle: Vec<(u64, Key)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.closed_at.is_none() && t - c.last_t > IDLE_TIMEOUT)
            .map(|(k, c)| (c.id, *k))
            .collect();
        idle.sort_unstable_by_key(|(id, _)| *id);
        for (_, key) in idle {
            if let Some(mut conn) = self.conns.remove(&key) {
                conn.end(t, CloseHow::Idle, sink);
            }
        }
    }

    /// The capture ended at time `t`: every open connection is flushed and closed.
    pub fn finish<S: StreamSink>(&mut self, t: f64, sink: &mut S) {
        let mut open: Vec<Conn> = self
            .conns
            .drain()
            .map(|(_, c)| c)
            .filter(|c| c.closed_at.is_none())
            .collect();
        open.sort_unstable_by_key(|c| c.id);
        for mut conn in open {
            conn.end(t, CloseHow::EndOfCapture, sink);
        }
    }

    /// Time of the last segment seen.
    pub fn last_t(&self) -> f64 {
        self.last_t
    }
}

#[cfg(test)]
mod tests;
