//! A synthetic but protocol-faithful capture: every connection does the real WebSocket
//! handshake (some agree on permessage-deflate), gets an Engine.IO OPEN and a Socket.IO
//! CONNECT, then bidders' events are broadcast to every connection. Payload sizes are mixed so
//! that 7-, 16- and 64-bit length forms all occur. Written through the same recorder as
//! `serve --record`, so the TCP framing is what replay sees from a live session.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use flate2::{Compress, Compression, FlushCompress};

use crate::cli::BenchCaptureArgs;
use crate::replay::record::Recorder;
use crate::trace::Dir;
use crate::wire::handshake::compute_accept;
use crate::wire::ws_frame::{self, OpCode};

/// A small deterministic generator (xorshift64*), so the same seed gives the same file.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

struct Conn {
    id: u64,
    deflate: Option<Compress>,
}

fn frame(opcode: OpCode, payload: &[u8], mask: Option<[u8; 4]>, rsv1: bool) -> Vec<u8> {
    ws_frame::encode_frame(opcode, true, rsv1, mask, payload)
}

/// permessage-deflate with context takeover: sync flush, tail removed (RFC 7692 §7.2.1).
fn deflate(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    let mut pos = 0;
    loop {
        out.reserve(data.len() / 2 + 64);
        let before = c.total_in();
        if c.compress_vec(&data[pos..], &mut out, FlushCompress::Sync)
            .is_err()
        {
            break;
        }
        pos += (c.total_in() - before) as usize;
        if pos >= data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if out.ends_with(&[0, 0, 0xff, 0xff]) {
        out.truncate(out.len() - 4);
    }
    out
}

pub fn run(args: BenchCaptureArgs) -> Result<ExitCode, crate::Error> {
    let rec = Recorder::create(&args.out)
        .map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let mut rng = Rng(args.seed | 1);
    let server = SocketAddr::from((Ipv4Addr::LOCALHOST, 5000));
    let mut clock = Duration::ZERO;
    let mut tick = |rng: &mut Rng| {
        clock += Duration::from_micros(20 + rng.below(200));
        clock
    };
    let mut conns = Vec::new();
    for i in 0..args.conns {
        let client = SocketAddr::from((Ipv4Addr::LOCALHOST, 40000 + i as u16));
        let id = rec.open(client, server, tick(&mut rng));
        let with_deflate = i % 4 == 3;
        let key = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(rng.next().to_be_bytes().repeat(2))
        };
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:5000\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{}\r\n",
            if with_deflate { "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" } else { "" }
        );
        rec.data(id, Dir::C2S, req.as_bytes(), tick(&mut rng));
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n{}\r\n",
            compute_accept(&key).accept,
            if with_deflate { "Sec-WebSocket-Extensions: permessage-deflate\r\n" } else { "" }
        );
        rec.data(id, Dir::S2C, resp.as_bytes(), tick(&mut rng));
        let mut conn = Conn {
            id,
            deflate: with_deflate.then(|| Compress::new(Compression::fast(), false)),
        };
        let open = format!(
            r#"0{{"sid":"bench{i:06}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
        );
        send_server(&rec, &mut conn, open.as_bytes(), tick(&mut rng));
        let mask = rng.next().to_be_bytes();
        rec.data(
            id,
            Dir::C2S,
            &frame(
                OpCode::Text,
                b"40",
                Some([mask[0], mask[1], mask[2], mask[3]]),
                false,
            ),
            tick(&mut rng),
        );
        send_server(
            &rec,
            &mut conn,
            format!(r#"40{{"sid":"s{i:06}"}}"#).as_bytes(),
            tick(&mut rng),
        );
        conns.push(conn);
    }
    let target = args.size_mb * 1024 * 1024;
    let mut written: u64 = 0;
    let mut round = 0u64;
    while written < target {
        round += 1;
        let bidder = rng.below(conns.len() as u64) as usize;
        // Mostly small bids (7-bit lengths), some long notes (16-bit), a few huge (64-bit).
        let note_len = match rng.below(1000) {
            0..=899 => rng.below(40),
            900..=989 => 200 + rng.below(4_000),
            _ => 70_000 + rng.below(30_000),
        } as usize;
        let note: String = (0..note_len)
            .map(|k| (b'a' + ((k as u64 * 7 + round) % 26) as u8) as char)
            .collect();
        let bid = format!(
            r#"{{"item":"lot {}","bid":{round},"bidder":"c{bidder}","note":"{note}"}}"#,
            round % 50
        );
        let mask = rng.next().to_be_bytes();
        let event = format!(r#"42["replace old value",{bid}]"#);
        rec.data(
            conns[bidder].id,
            Dir::C2S,
            &frame(
                OpCode::Text,
                event.as_bytes(),
                Some([mask[0], mask[1], mask[2], mask[3]]),
                false,
            ),
            tick(&mut rng),
        );
        written += event.len() as u64;
        let out = format!(r#"42["replaced values",{bid}]"#);
        for conn in conns.iter_mut() {
            written += send_server(&rec, conn, out.as_bytes(), tick(&mut rng)) as u64;
        }
    }
    for conn in &conns {
        rec.close(conn.id, tick(&mut rng));
    }
    rec.finish()?;
    eprintln!(
        "dispel bench capture: wrote {} ({} connections, {round} broadcasts, about {} MB of WebSocket payload)",
        args.out.display(),
        conns.len(),
        written / (1024 * 1024)
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes one server text frame (compressed on deflate connections). Returns bytes written.
fn send_server(rec: &Recorder, conn: &mut Conn, text: &[u8], t: Duration) -> usize {
    let bytes = match conn.deflate.as_mut() {
        Some(c) => frame(OpCode::Text, &deflate(c, text), None, true),
        None => frame(OpCode::Text, text, None, false),
    };
    rec.data(conn.id, Dir::S2C, &bytes, t);
    bytes.len()
}
