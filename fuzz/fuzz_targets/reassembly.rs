//! TCP reassembly fed arbitrary segments, checking the `StreamSink` contract.
//!
//! Input: one config byte (bit 0: use `--server-port 5000`; bit 1: a 64-byte bound on
//! out-of-order data instead of the default), then records of 9 bytes and a payload:
//! `[flags, seq (4, big-endian), missing, time step, len (2, big-endian), payload...]`.
//! `flags` bit 0: sent by the first address of the pair (else the second); bits 1-4: SYN, ACK,
//! FIN, RST; bits 5-6: which of four connections (client ports). The capture ends after the
//! last record.
#![no_main]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use dispel::replay::link::TcpSegment;
use dispel::replay::reassembly::Reassembler;
use dispel::replay::{CloseHow, Dir, OpenHow, StreamSink};
use libfuzzer_sys::fuzz_target;

/// What the sink has seen of one connection.
#[derive(Default)]
struct ConnState {
    fin: HashSet<u8>,
    ended: bool,
}

/// Checks the call order promised by `StreamSink`'s documentation.
#[derive(Default)]
struct Contract {
    next_id: u64,
    conns: HashMap<u64, ConnState>,
}

fn d(dir: Dir) -> u8 {
    match dir {
        Dir::C2S => 0,
        Dir::S2C => 1,
    }
}

impl Contract {
    fn live(&mut self, conn: u64, dir: Option<Dir>) -> &mut ConnState {
        let c = self
            .conns
            .get_mut(&conn)
            .expect("call for a connection never opened");
        assert!(!c.ended, "call for connection {conn} after its final close");
        if let Some(dir) = dir {
            assert!(
                !c.fin.contains(&d(dir)),
                "{dir:?} of {conn} used after its FIN"
            );
        }
        c
    }
}

impl StreamSink for Contract {
    fn open(&mut self, conn: u64, client: SocketAddr, server: SocketAddr, _: f64, _: OpenHow) {
        self.next_id += 1;
        assert_eq!(conn, self.next_id, "ids are 1, 2, 3... in order");
        assert_ne!(client, server);
        self.conns.insert(conn, ConnState::default());
    }
    fn data(&mut self, conn: u64, dir: Dir, _: f64, _: u64, bytes: &[u8]) {
        assert!(!bytes.is_empty());
        self.live(conn, Some(dir));
    }
    fn gap(&mut self, conn: u64, dir: Dir, _: f64, len: u64) {
        assert!(len > 0);
        self.live(conn, Some(dir));
    }
    fn close(&mut self, conn: u64, dir: Option<Dir>, _: f64, how: CloseHow) {
        let c = self.live(conn, dir);
        match dir {
            Some(dir) => {
                assert_eq!(how, CloseHow::Fin);
                c.fin.insert(d(dir));
            }
            None => {
                assert_ne!(how, CloseHow::Fin);
                assert!(c.fin.len() < 2, "a final close after both FINs");
                c.ended = true;
            }
        }
    }
    fn problem(&mut self, _: Option<f64>, _: Option<u64>, message: String) {
        assert!(!message.is_empty());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, mut rest)) = data.split_first() else {
        return;
    };
    let server_port = (cfg & 1 != 0).then_some(5000);
    let mut r = if cfg & 2 != 0 {
        Reassembler::with_max_buffered(server_port, 64)
    } else {
        Reassembler::new(server_port)
    };
    let mut sink = Contract::default();
    let server: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    let mut t = 0.0;
    let mut frame = 0;
    while let [flags, s0, s1, s2, s3, missing, step, l0, l1, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*l0, *l1])).min(tail.len());
        let (payload, after) = tail.split_at(len);
        rest = after;
        let client = SocketAddr::from(([10, 0, 0, 1], 40000 + u16::from((flags >> 5) & 3)));
        let (src, dst) = if flags & 1 != 0 {
            (client, server)
        } else {
            (server, client)
        };
        let seg = TcpSegment {
            src,
            dst,
            seq: u32::from_be_bytes([*s0, *s1, *s2, *s3]),
            ack: 0,
            syn: flags & 2 != 0,
            ack_flag: flags & 4 != 0,
            fin: flags & 8 != 0,
            rst: flags & 16 != 0,
            payload,
            missing: u32::from(*missing),
        };
        frame += 1;
        t += f64::from(*step) * 0.01;
        r.segment(&seg, t, frame, &mut sink);
    }
    r.finish(t + 1.0, &mut sink);
    for (id, c) in &sink.conns {
        assert!(
            c.ended || c.fin.len() == 2,
            "connection {id} neither closed nor finished with both FINs"
        );
    }
});
