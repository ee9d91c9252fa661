//! Test helpers: packet builders and a sink that records every call.

use std::net::SocketAddr;

use etherparse::{PacketBuilder, TcpHeader};

use super::{CloseHow, Dir, OpenHow, StreamSink};

/// A TCP segment to build. `flags`: any of S (SYN), A (ACK), P (PSH), F (FIN), R (RST).
#[derive(Debug, Clone, Copy)]
pub struct TcpSpec<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: &'a str,
    pub payload: &'a [u8],
}

fn tcp_header(spec: &TcpSpec<'_>) -> TcpHeader {
    let mut h = TcpHeader::new(spec.src_port, spec.dst_port, spec.seq, 65535);
    h.acknowledgment_number = spec.ack;
    h.syn = spec.flags.contains('S');
    h.ack = spec.flags.contains('A');
    h.psh = spec.flags.contains('P');
    h.fin = spec.flags.contains('F');
    h.rst = spec.flags.contains('R');
    h
}

/// An IPv4 packet carrying the segment.
pub fn ipv4_tcp(src: [u8; 4], dst: [u8; 4], spec: &TcpSpec<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .tcp_header(tcp_header(spec))
        .write(&mut out, spec.payload)
        .expect("build test packet");
    out
}

/// An IPv6 packet carrying the segment.
pub fn ipv6_tcp(src: &str, dst: &str, spec: &TcpSpec<'_>) -> Vec<u8> {
    let src: std::net::Ipv6Addr = src.parse().expect("test address");
    let dst: std::net::Ipv6Addr = dst.parse().expect("test address");
    let mut out = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .tcp_header(tcp_header(spec))
        .write(&mut out, spec.payload)
        .expect("build test packet");
    out
}

/// One recorded sink call.
#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    Open(u64, SocketAddr, SocketAddr, OpenHow),
    Data(u64, Dir, u64, Vec<u8>),
    Gap(u64, Dir, u64),
    Close(u64, Option<Dir>, CloseHow),
    Problem(Option<u64>, String),
}

/// Records every call (times are kept apart, in `times`, so events compare easily).
#[derive(Debug, Default)]
pub struct Recorder {
    pub events: Vec<Ev>,
    pub times: Vec<f64>,
}

impl Recorder {
    /// The bytes of one direction of one connection, with `?` for each gap byte.
    pub fn stream(&self, conn: u64, dir: Dir) -> Vec<u8> {
        let mut out = Vec::new();
        for e in &self.events {
            match e {
                Ev::Data(c, d, _, b) if *c == conn && *d == dir => out.extend_from_slice(b),
                Ev::Gap(c, d, n) if *c == conn && *d == dir => {
                    out.extend(std::iter::repeat_n(b'?', *n as usize))
                }
                _ => {}
            }
        }
        out
    }

    pub fn problems(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Problem(_, m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }

    pub fn opens(&self) -> Vec<(u64, SocketAddr, SocketAddr, OpenHow)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Open(c, a, b, h) => Some((*c, *a, *b, *h)),
                _ => None,
            })
            .collect()
    }

    pub fn closes(&self) -> Vec<(u64, Option<Dir>, CloseHow)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Close(c, d, h) => Some((*c, *d, *h)),
                _ => None,
            })
            .collect()
    }
}

impl StreamSink for Recorder {
    fn open(&mut self, conn: u64, client: SocketAddr, server: SocketAddr, t: f64, how: OpenHow) {
        self.events.push(Ev::Open(conn, client, server, how));
        self.times.push(t);
    }
    fn data(&mut self, conn: u64, dir: Dir, t: f64, frame: u64, bytes: &[u8]) {
        assert!(!bytes.is_empty(), "empty data call");
        self.events.push(Ev::Data(conn, dir, frame, bytes.to_vec()));
        self.times.push(t);
    }
    fn gap(&mut self, conn: u64, dir: Dir, t: f64, len: u64) {
        assert!(len > 0, "empty gap call");
        self.events.push(Ev::Gap(conn, dir, len));
        self.times.push(t);
    }
    fn close(&mut self, conn: u64, dir: Option<Dir>, t: f64, how: CloseHow) {
        self.events.push(Ev::Close(conn, dir, how));
        self.times.push(t);
    }
    fn problem(&mut self, t: Option<f64>, frame: Option<u64>, message: String) {
        self.events.push(Ev::Problem(frame, message));
        self.times.push(t.unwrap_or(f64::NAN));
    }
}

/// SHA-256 of `data` as lowercase hex (to compare streams with the reference truth files,
/// which give digests).
pub fn sha256_hex(data: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

#[test]
fn sha256_known_values() {
    assert_eq!(
        sha256_hex(b""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
