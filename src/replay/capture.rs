//! Capture files: pcap and pcapng records, read in a streaming way with `pcap-file`'s
//! slice parsers over a bounded buffer, then decoded and reassembled.
//!
//! The slice parsers (rather than `pcap-file`'s readers) let a corrupt pcapng block be
//! skipped: the readers would return the same error again and again without moving on.

use std::io::{self, Cursor, ErrorKind, Read};

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{PcapError, TsResolution};

use super::link::{self, Decoded, LinkType};
use super::reassembly::Reassembler;
use super::{CaptureError, CloseHow, Dir, OpenHow, ReplayStats, StreamSink};

/// Bytes asked of the input per read.
const READ_CHUNK: usize = 64 << 10;
/// The largest record (pcap packet or pcapng block) accepted; larger means corrupt.
const MAX_RECORD: usize = 16 << 20;
/// pcap magic numbers as the file's first four bytes (µs and ns, either byte order).
const PCAP_MAGICS: [[u8; 4]; 4] = [
    [0xd4, 0xc3, 0xb2, 0xa1],
    [0xa1, 0xb2, 0xc3, 0xd4],
    [0x4d, 0x3c, 0xb2, 0xa1],
    [0xa1, 0xb2, 0x3c, 0x4d],
];
/// The pcapng Section Header Block type, the same in both byte orders.
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// Do these first bytes start a pcap or pcapng file? (How `dispel report` tells a capture from
/// a JSONL trace.)
pub fn is_capture_magic(first: &[u8]) -> bool {
    first
        .get(..4)
        .is_some_and(|m| PCAP_MAGICS.iter().any(|p| p == m) || m == PCAPNG_MAGIC)
}
/// pcapng block types that carry a packet (obsolete Packet, Simple Packet, Enhanced Packet).
const PACKET_BLOCK_TYPES: [u32; 3] = [2, 3, 6];
/// pcapng default timestamp resolution (if_tsresol absent): microseconds.
const DEFAULT_TSRESOL: u8 = 6;

/// Reads a pcap or pcapng capture from `input` and pushes its TCP streams into `sink`.
///
/// Streaming: memory stays bounded whatever the file size. Problems in the file are reported
/// to `sink.problem` and reading goes on where it can; a truncated file ends the replay
/// early with the statistics of what was read. `Err` only when nothing could be read (not a
/// capture file, or its header is unreadable).
pub fn read_capture<R: Read>(
    input: R,
    server_port: Option<u16>,
    sink: &mut impl StreamSink,
) -> Result<ReplayStats, CaptureError> {
    let mut input = input;
    let mut magic = [0u8; 4];
    let got = read_full(&mut input, &mut magic).map_err(CaptureError::Io)?;
    if got < magic.len() {
        return Err(CaptureError::TooShort { len: got });
    }
    let is_pcap = PCAP_MAGICS.contains(&magic);
    if !is_pcap && magic != PCAPNG_MAGIC {
        return Err(CaptureError::NotACapture { magic });
    }
    let mut buf = Buffer::new(Cursor::new(magic).chain(input));
    let mut replay = Replay::new(server_port, sink);
    if is_pcap {
        read_pcap(&mut buf, &mut replay)?;
    } else {
        read_pcapng(&mut buf, &mut replay)?;
    }
    Ok(replay.finish())
}

/// Reads until `out` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, out: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < out.len() {
        match input.read(&mut out[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// A bounded read buffer: the parsers see `data()`, and `consume` moves past a record.
struct Buffer<R> {
    input: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes consumed before `buf[0]` (the file offset of `buf[start]` is `offset + start`).
    offset: u64,
}

impl<R: Read> Buffer<R> {
    fn new(input: R) -> Self {
        Buffer {
            input,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
        }
    }

    fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    fn file_offset(&self) -> u64 {
        self.offset + self.start as u64
    }

    /// Reads more input. Ok(false) at the end of input or when a record would exceed
    /// [`MAX_RECORD`] (`too_big` tells which).
    fn fill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.offset += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        if self.end >= MAX_RECORD + READ_CHUNK {
            return Ok(false);
        }
        if self.buf.len() < self.end + READ_CHUNK {
            self.buf.resize(self.end + READ_CHUNK, 0);
        }
        loop {
            match self.input.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn too_big(&self) -> bool {
        !self.eof && self.end - self.start >= MAX_RECORD
    }
}

/// The per-packet work shared by both formats: decode, reassemble, count.
struct Replay<'s, S: StreamSink> {
    sink: Counting<'s, S>,
    tcp: Reassembler,
    stats: ReplayStats,
    /// Timestamp (ns since the epoch) of the first packet.
    first_ns: Option<i128>,
    last_t: f64,
    frame: u64,
}

impl<'s, S: StreamSink> Replay<'s, S> {
    fn new(server_port: Option<u16>, sink: &'s mut S) -> Self {
        Replay {
            sink: Counting {
                inner: sink,
                problems: 0,
            },
            tcp: Reassembler::new(server_port),
            stats: ReplayStats::default(),
            first_ns: None,
            last_t: 0.0,
            frame: 0,
        }
    }

    /// Seconds since the first packet for an absolute timestamp in nanoseconds.
    fn time(&mut self, ns: Option<i128>) -> f64 {
        let Some(ns) = ns else {
            return self.last_t;
        };
        let first = *self.first_ns.get_or_insert(ns);
        let t = (ns - first) as f64 / 1e9;
        self.last_t = t;
        t
    }

    /// Starts a new frame: returns its number.
    fn next_frame(&mut self, captured: usize) -> u64 {
        self.frame += 1;
        self.stats.packets += 1;
        self.stats.bytes += captured as u64;
        self.frame
    }

    fn packet(&mut self, link: Option<LinkType>, data: &[u8], ns: Option<i128>) {
        let frame = self.next_frame(data.len());
        let t = self.time(ns);
        let Some(link) = link else {
            return; // unsupported link type: reported once per interface
        };
        match link::decode(link, data) {
            Decoded::Tcp(seg) => {
                self.stats.tcp_packets += 1;
                self.tcp.segment(&seg, t, frame, &mut self.sink);
            }
            Decoded::NotTcp => {}
            Decoded::Problem(msg) => self.problem(Some(frame), msg),
        }
    }

    fn problem(&mut self, frame: Option<u64>, message: String) {
        let t = if self.first_ns.is_some() {
            Some(self.last_t)
        } else {
            None
        };
        self.sink.problem(t, frame, message);
    }

    fn finish(mut self) -> ReplayStats {
        let t = self.last_t;
        self.tcp.finish(t, &mut self.sink);
        self.stats.connections = self.tcp.connections();
        self.stats.problems = self.sink.problems;
        self.stats
    }

    /// Reports why reading stopped early.
    fn stopped(&mut self, what: &str, offset: u64, err: Option<&PcapError>) {
        let done = self.frame;
        let msg = match err {
            None => format!(
                "capture file truncated: {what} at byte {offset} is incomplete; \
                 the replay stops after {done} packets"
            ),
            Some(e) => format!(
                "corrupt {what} at byte {offset} ({e}); the rest of the file is skipped \
                 after {done} packets"
            ),
        };
        self.problem(None, msg);
    }
}

/// Counts problems on the way to the real sink.
struct Counting<'s, S: StreamSink> {
    inner: &'s mut S,
    problems: u64,
}

impl<S: StreamSink> StreamSink for Counting<'_, S> {
    fn open(
        &mut self,
        conn: u64,
        client: std::net::SocketAddr,
        server: std::net::SocketAddr,
        t: f64,
        how: OpenHow,
    ) {
        self.inner.open(conn, client, server, t, how)
    }
    fn data(&mut self, conn: u64, dir: Dir, t: f64, frame: u64, bytes: &[u8]) {
        self.inner.data(conn, dir, t, frame, bytes)
    }
    fn gap(&mut self, conn: u64, dir: Dir, t: f64, len: u64) {
        self.inner.gap(conn, dir, t, len)
    }
    fn close(&mut self, conn: u64, dir: Option<Dir>, t: f64, how: CloseHow) {
        self.inner.close(conn, dir, t, how)
    }
    fn problem(&mut self, t: Option<f64>, frame: Option<u64>, message: String) {
        self.problems += 1;
        self.inner.problem(t, frame, message)
    }
}

/// What the next record parse needs: more input, or give up.
enum Need {
    More,
    Stop,
}

/// With the buffer empty: reads more input. False means stop (end of file, or a read error,
/// which is reported).
fn refill<R: Read, S: StreamSink>(buf: &mut Buffer<R>, replay: &mut Replay<'_, S>) -> bool {
    match buf.fill() {
        Ok(more) => more,
        Err(e) => {
            let offset = buf.file_offset();
            replay.problem(None, format!("read error at byte {offset}: {e}"));
            false
        }
    }
}

/// After an `IncompleteBuffer`: reads more input, or reports truncation / an oversized
/// record and says to stop.
fn need_more<R: Read, S: StreamSink>(
    buf: &mut Buffer<R>,
    replay: &mut Replay<'_, S>,
    what: &str,
) -> Need {
    match buf.fill() {
        Ok(true) => Need::More,
        Ok(false) => {
            let offset = buf.file_offset();
            if buf.too_big() {
                let msg = format!(
                    "corrupt {what} at byte {offset}: longer than {MAX_RECORD} bytes; \
                     the rest of the file is skipped"
                );
                replay.problem(None, msg);
            } else if !buf.data().is_empty() {
                replay.stopped(what, offset, None);
            }
            Need::Stop
        }
        Err(e) => {
            let offset = buf.file_offset();
            replay.problem(
                None,
                format!("read error at byte {offset}: {e}; the replay stops"),
            );
            Need::Stop
        }
    }
}

/// Fills the buffer until the file header parses.
fn header_error<R: Read>(buf: &mut Buffer<R>, err: PcapError) -> Result<bool, CaptureError> {
    match err {
        PcapError::IncompleteBuffer => match buf.fill() {
            Ok(true) => Ok(true),
            Ok(false) => Err(CaptureError::TooShort {
                len: buf.data().len(),
            }),
            Err(e) => Err(CaptureError::Io(e)),
        },
        other => Err(CaptureError::BadHeader(other.to_string())),
    }
}

fn read_pcap<R: Read, S: StreamSink>(
    buf: &mut Buffer<R>,
    replay: &mut Replay<'_, S>,
) -> Result<(), CaptureError> {
    let parser = loop {
        match PcapParser::new(buf.data()) {
            Ok((rem, parser)) => {
                let used = buf.data().len() - rem.len();
                buf.consume(used);
                break parser;
            }
            Err(e) => {
                header_error(buf, e)?;
            }
        }
    };
    let header = parser.header();
    let linktype = u32::from(header.datalink);
    let link = LinkType::from_linktype(linktype);
    if link.is_none() {
        replay.problem(
            None,
            format!(
                "unsupported {}: all packets skipped",
                link::linktype_name(linktype)
            ),
        );
    }
    let ns_per_unit: i128 = match header.ts_resolution {
        TsResolution::MicroSecond => 1_000,
        TsResolution::NanoSecond => 1,
    };
    loop {
        if buf.data().is_empty() {
            if !refill(buf, replay) {
                return Ok(());
            }
            continue;
        }
        let data = buf.data();
        match parser.next_raw_packet(data) {
            Ok((rem, packet)) => {
                let used = data.len() - rem.len();
                let ns = i128::from(packet.ts_sec) * 1_000_000_000
                    + i128::from(packet.ts_frac) * ns_per_unit;
                replay.packet(link, &packet.data, Some(ns));
                buf.consume(used);
            }
            Err(PcapError::IncompleteBuffer) => {
                if let Need::Stop = need_more(buf, replay, "packet record") {
                    return Ok(());
                }
            }
            Err(e) => {
                let offset = buf.file_offset();
                replay.stopped("packet record", offset, Some(&e));
                return Ok(());
            }
        }
    }
}

/// What dispel needs of a pcapng interface.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: Option<LinkType>,
    snaplen: u32,
    tsresol: u8,
    tsoffset_s: i64,
}

impl Interface {
    fn from_block(idb: &InterfaceDescriptionBlock<'_>) -> Interface {
        let mut tsresol = DEFAULT_TSRESOL;
        let mut tsoffset_s = 0;
        for opt in &idb.options {
            match opt {
                InterfaceDescriptionOption::IfTsResol(r) => tsresol = *r,
                InterfaceDescriptionOption::IfTsOffset(o) => {
                    tsoffset_s = i64::try_from(*o).unwrap_or(0)
                }
                _ => {}
            }
        }
        Interface {
            link: LinkType::from_linktype(u32::from(idb.linktype)),
            snaplen: idb.snaplen,
            tsresol,
            tsoffset_s,
        }
    }

    /// Absolute nanoseconds for a raw timestamp in this interface's units.
    fn nanos(&self, raw: u64) -> i128 {
        let raw = u128::from(raw);
        let exp = u32::from(self.tsresol & 0x7f);
        let ns = if self.tsresol & 0x80 != 0 {
            // 2^-exp seconds per unit
            (raw * 1_000_000_000) >> exp.min(127)
        } else if exp <= 9 {
            raw * 10u128.pow(9 - exp)
        } else if exp <= 38 {
            raw * 1_000_000_000 / 10u128.pow(exp)
        } else {
            0
        };
        i128::try_from(ns).unwrap_or(i128::MAX / 2) + i128::from(self.tsoffset_s) * 1_000_000_000
    }
}

fn read_pcapng<R: Read, S: StreamSink>(
    buf: &mut Buffer<R>,
    replay: &mut Replay<'_, S>,
) -> Result<(), CaptureError> {
    let mut parser = loop {
        match PcapNgParser::new(buf.data()) {
            Ok((rem, parser)) => {
                let used = buf.data().len() - rem.len();
                buf.consume(used);
                break parser;
            }
            Err(e) => {
                header_error(buf, e)?;
            }
        }
    };
    let mut interfaces: Vec<Interface> = Vec::new();
    loop {
        if buf.data().is_empty() {
            if !refill(buf, replay) {
                return Ok(());
            }
            continue;
        }
        let data = buf.data();
        match parser.next_block(data) {
            Ok((rem, block)) => {
                let used = data.len() - rem.len();
                pcapng_block(block, &mut interfaces, replay);
                buf.consume(used);
            }
            Err(PcapError::IncompleteBuffer) => {
                if let Need::Stop = need_more(buf, replay, "pcapng block") {
                    return Ok(());
                }
            }
            Err(block_err) => {
                // The block is framed correctly but its content is not: skip it. If the
                // framing itself is broken there is no way to find the next block.
                let offset = buf.file_offset();
                match parser.next_raw_block(data) {
                    Ok((rem, raw)) => {
                        let used = data.len() - rem.len();
                        let frame = if PACKET_BLOCK_TYPES.contains(&raw.type_) {
                            Some(replay.next_frame(raw.body.len()))
                        } else {
                            None
                        };
                        let msg = format!(
                            "corrupt pcapng block (type {:#x}) at byte {offset} skipped: {block_err}",
                            raw.type_
                        );
                        replay.problem(frame, msg);
                        buf.consume(used);
                    }
                    Err(PcapError::IncompleteBuffer) => {
                        if let Need::Stop = need_more(buf, replay, "pcapng block") {
                            return Ok(());
                        }
                    }
                    Err(_) => {
                        replay.stopped("pcapng block", offset, Some(&block_err));
                        return Ok(());
                    }
                }
            }
        }
    }
}

fn pcapng_block<S: StreamSink>(
    block: Block<'_>,
    interfaces: &mut Vec<Interface>,
    replay: &mut Replay<'_, S>,
) {
    match block {
        Block::SectionHeader(_) => interfaces.clear(),
        Block::InterfaceDescription(idb) => {
            let iface = Interface::from_block(&idb);
            if iface.link.is_none() {
                let linktype = u32::from(idb.linktype);
                replay.problem(
                    None,
                    format!(
                        "interface {} has unsupported {}: its packets are skipped",
                        interfaces.len(),
                        link::linktype_name(linktype)
                    ),
                );
            }
            interfaces.push(iface);
        }
        Block::EnhancedPacket(epb) => {
            // pcap-file hands over the raw 64-bit timestamp as if it were nanoseconds.
            let raw = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
            packet_on(interfaces, epb.interface_id, &epb.data, Some(raw), replay);
        }
        Block::Packet(pb) => {
            packet_on(
                interfaces,
                u32::from(pb.interface_id),
                &pb.data,
                Some(pb.timestamp),
                replay,
            );
        }
        Block::SimplePacket(spb) => {
            // No timestamp; the data includes the block padding: cut to the real length.
            let snaplen = interfaces.first().map_or(u32::MAX, |i| i.snaplen);
            let snaplen = if snaplen == 0 { u32::MAX } else { snaplen };
            let len = spb.original_len.min(snaplen) as usize;
            let data = spb.data.get(..len).unwrap_or(&spb.data);
            packet_on(interfaces, 0, data, None, replay);
        }
        _ => {}
    }
}

fn packet_on<S: StreamSink>(
    interfaces: &[Interface],
    interface_id: u32,
    data: &[u8],
    raw_ts: Option<u64>,
    replay: &mut Replay<'_, S>,
) {
    match interfaces.get(interface_id as usize) {
        Some(iface) => {
            let ns = raw_ts.map(|raw| iface.nanos(raw));
            replay.packet(iface.link, data, ns);
        }
        None => {
            let frame = replay.next_frame(data.len());
            let msg = format!("packet on undeclared interface {interface_id} skipped");
            replay.problem(Some(frame), msg);
        }
    }
}

#[cfg(test)]
mod tests;
