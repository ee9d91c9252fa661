use super::*;
use crate::replay::testutil::{Ev, Recorder};

const C: &str = "10.0.0.1:40000";
const S: &str = "10.0.0.2:5000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Feed {
    r: Reassembler,
    rec: Recorder,
    frame: u64,
}

impl Feed {
    fn new(server_port: Option<u16>) -> Feed {
        Feed {
            r: Reassembler::new(server_port),
            rec: Recorder::default(),
            frame: 0,
        }
    }
    fn seg(&mut self, from: &str, to: &str, seq: u32, flags: &str, payload: &[u8]) {
        self.frame += 1;
        let s = TcpSegment {
            src: addr(from),
            dst: addr(to),
            seq,
            ack: 0,
            syn: flags.contains('S'),
            ack_flag: flags.contains('A'),
            fin: flags.contains('F'),
            rst: flags.contains('R'),
            payload,
            missing: 0,
        };
        self.r
            .segment(&s, self.frame as f64, self.frame, &mut self.rec);
    }
    fn c(&mut self, seq: u32, flags: &str, payload: &[u8]) {
        self.seg(C, S, seq, flags, payload);
    }
    fn s(&mut self, seq: u32, flags: &str, payload: &[u8]) {
        self.seg(S, C, seq, flags, payload);
    }
    fn handshake(&mut self, cisn: u32, sisn: u32) {
        self.c(cisn, "S", b"");
        self.s(sisn, "SA", b"");
        self.c(cisn.wrapping_add(1), "A", b"");
    }
    fn finish(&mut self) {
        let t = self.frame as f64 + 1.0;
        self.r.finish(t, &mut self.rec);
    }
}

#[test]
fn in_order_with_handshake_and_fins() {
    let mut f = Feed::new(None);
    f.handshake(100, 900);
    f.c(101, "PA", b"GET / HTTP/1.1\r\n\r\n");
    f.s(901, "PA", b"HTTP/1.1 200 OK\r\n\r\n");
    f.s(920, "PA", b"hello");
    f.c(119, "FA", b"");
    f.s(925, "FA", b"");
    f.c(120, "A", b""); // final ACK: swallowed
    f.finish();
    assert_eq!(f.rec.opens(), vec![(1, addr(C), addr(S), OpenHow::Syn)]);
    assert_eq!(f.rec.stream(1, Dir::C2S), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(f.rec.stream(1, Dir::S2C), b"HTTP/1.1 200 OK\r\n\r\nhello");
    assert_eq!(
        f.rec.closes(),
        vec![
            (1, Some(Dir::C2S), CloseHow::Fin),
            (1, Some(Dir::S2C), CloseHow::Fin)
        ]
    );
    // Data carries the frame number of its packet.
    assert!(f
        .rec
        .events
        .contains(&Ev::Data(1, Dir::S2C, 6, b"hello".to_vec())));
    assert!(f.rec.problems().is_empty());
}

#[test]
fn out_of_order_is_buffered_until_the_hole_fills() {
    let mut f = Feed::new(None);
    f.handshake(0, 0);
    f.c(1 + 6, "PA", b"world");
    f.c(1 + 11, "PA", b"!");
    assert_eq!(f.rec.stream(1, Dir::C2S), b"");
    f.c(1, "PA", b"hello ");
    assert_eq!(f.rec.stream(1, Dir::C2S), b"hello world!");
    // Delivered pieces keep their own frame numbers.
    let frames: Vec<u64> = f
        .rec
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Data(_, _, fr, _) => Some(*fr),
            _ => None,
        })
        .collect();
    assert_eq!(frames, vec![6, 4, 5]);
}

#[test]
fn retransmissions_and_overlaps_deliver_each_byte_once() {
    let mut f = Feed::new(None);
    f.handshake(1000, 5000);
    f.c(1001, "PA", b"abcdef");
    f.c(1001, "PA", b"abcdef"); // full retransmit
    f.c(1004, "PA", b"defghi"); // overlap at the front
    f.c(1012, "PA", b"lmn"); // out of order
    f.c(1011, "PA", b"klmno"); // overlaps the pending one: "klmn" + "o"
    f.c(1010, "PA", b"jk"); // fills the hole
    f.c(1001, "PA", b"abcdefghijklmnop"); // superset retransmit: only "p" is new
    f.finish();
    assert_eq!(f.rec.stream(1, Dir::C2S), b"abcdefghijklmnop");
}

#[test]
fn sequence_wrap_around() {
    let mut f = Feed::new(None);
    let isn = u32::MAX - 3;
    f.handshake(isn, 7);
    // first data byte at isn+1 = 2^32-2
    f.c(isn.wrapping_add(1), "PA", b"ab");
    f.c(isn.wrapping_add(5), "PA", b"ef"); // after the wrap, out of order
    f.c(isn.wrapping_add(3), "PA", b"cd"); // exactly at 0
    f.c(isn.wrapping_add(1), "PA", b"abcdefgh"); // overlapping retransmit across the wrap
    f.finish();
    assert_eq!(f.rec.stream(1, Dir::C2S), b"abcdefgh");
    assert!(f.rec.problems().is_empty());
}

#[test]
fn missing_segment_becomes_a_gap_at_fin_and_end() {
    let mut f = Feed::new(None);
    f.handshake(0, 0);
    f.c(1, "PA", b"aaaa");
    f.c(9, "PA", b"cccc"); // bytes 5..9 never appear
    f.c(13, "FA", b"");
    f.s(1, "PA", b"xx");
    f.s(5, "PA", b"zz"); // hole of 2, then end of capture
    f.finish();
    assert_eq!(f.rec.stream(1, Dir::C2S), b"aaaa????cccc");
    assert_eq!(f.rec.stream(1, Dir::S2C), b"xx??zz");
    assert!(f.rec.events.contains(&Ev::Gap(1, Dir::C2S, 4)));
    assert_eq!(
        f.rec.closes(),
        vec![
            (1, Some(Dir::C2S), CloseHow::Fin),
            (1, None, CloseHow::EndOfCapture)
        ]
    );
}

#[test]
fn both_fins_flush_holes() {
    let mut f = Feed::new(None);
    f.handshake(0, 0);
    f.c(1, "PA", b"ab");
    f.c(5, "FPA", b"ef");
    f.s(1, "FA", b"");
    assert_eq!(f.rec.stream(1, Dir::C2S), b"ab??ef");
    assert_eq!(
        f.rec.closes(),
        vec![
            (1, Some(Dir::S2C), CloseHow::Fin),
            (1, Some(Dir::C2S), CloseHow::Fin)
        ]
    );
}

#[test]
fn buffer_bound_turns_the_oldest_hole_into_a_gap() {
    let mut f = Feed::new(None);
    f.r = Reassembler::with_max_buffered(None, 10);
    f.handshake(0, 0);
    f.c(1, "PA", b"ab");
    f.c(5, "PA", b"efgh"); // hole at 3..5
    f.c(9, "PA", b"ijkl");
    assert_eq!(f.rec.stream(1, Dir::C2S), b"ab");
    f.c(20, "PA", b"tuv"); // 11 buffered > 10: give up the hole
    assert_eq!(f.rec.stream(1, Dir::C2S), b"ab??efghijkl");
    f.c(13, "PA", b"mnopqrs"); // fills the second hole
    assert_eq!(f.rec.stream(1, Dir::C2S), b"ab??efghijklmnopqrstuv");
}

#[test]
fn mid_stream_start_uses_http_method_to_find_the_client() {
    // High port talks first with a request: it is the client even though its port is lower.
    let mut f = Feed::new(None);
    f.seg("10.0.0.9:80", "10.0.0.1:40000", 77, "A", b""); // bare ACK: ignored
    f.seg("10.0.0.1:40000", "10.0.0.9:80", 5_000_000, "PA", b"xyz"); // not HTTP
    f.finish();
    assert_eq!(
        f.rec.opens()[0].1,
        addr("10.0.0.1:40000"),
        "lower port is the server"
    );

    let mut f = Feed::new(None);
    f.seg(
        "10.0.0.1:80",
        "10.0.0.9:3000",
        123,
        "PA",
        b"POST /x HTTP/1.1\r\n\r\n",
    );
    f.seg(
        "10.0.0.9:3000",
        "10.0.0.1:80",
        999,
        "PA",
        b"HTTP/1.1 200 OK\r\n\r\n",
    );
    f.seg("10.0.0.1:80", "10.0.0.9:3000", 143, "PA", b"more");
    f.finish();
    assert_eq!(
        f.rec.opens(),
        vec![(
            1,
            addr("10.0.0.1:80"),
            addr("10.0.0.9:3000"),
            OpenHow::MidStream
        )]
    );
    assert_eq!(f.rec.stream(1, Dir::C2S), b"POST /x HTTP/1.1\r\n\r\nmore");
    assert_eq!(f.rec.stream(1, Dir::S2C), b"HTTP/1.1 200 OK\r\n\r\n");
    assert_eq!(f.rec.closes(), vec![(1, None, CloseHow::EndOfCapture)]);
}

#[test]
fn server_port_overrides_everything() {
    let mut f = Feed::new(Some(40000));
    f.handshake(0, 0);
    f.finish();
    assert_eq!(f.rec.opens(), vec![(1, addr(S), addr(C), OpenHow::Syn)]);

    let mut f = Feed::new(Some(40000));
    f.c(10, "PA", b"GET / HTTP/1.1\r\n");
    f.finish();
    assert_eq!(f.rec.opens()[0].2, addr(C));
}

#[test]
fn syn_ack_alone_decides_the_server() {
    let mut f = Feed::new(None);
    f.s(50, "SA", b"");
    f.s(51, "PA", b"hi");
    f.finish();
    assert_eq!(f.rec.opens(), vec![(1, addr(C), addr(S), OpenHow::Syn)]);
    assert_eq!(f.rec.stream(1, Dir::S2C), b"hi");
}

#[test]
fn rst_closes_and_late_packets_are_swallowed() {
    let mut f = Feed::new(None);
    f.handshake(0, 0);
    f.c(1, "PA", b"ab");
    f.c(5, "PA", b"ef");
    f.s(1, "R", b"");
    f.c(3, "PA", b"cd"); // late: not a new connection
    f.finish();
    assert_eq!(f.rec.stream(1, Dir::C2S), b"ab??ef");
    assert_eq!(f.rec.closes(), vec![(1, None, CloseHow::Rst)]);
    assert_eq!(f.rec.opens().len(), 1);
}

#[test]
fn reuse_of_the_four_tuple_gets_a_new_id() {
    let mut f = Feed::new(None);
    f.handshake(0, 0);
    f.c(1, "FA", b"");
    f.s(1, "FA", b"");
    f.handshake(1_000_000, 0);
    f.c(1_000_001, "PA", b"second");
    // A new SYN on a connection that never closed.
    f.c(7, "S", b"");
    f.c(7, "S", b""); // retransmitted SYN: same connection
    f.finish();
    let ids: Vec<u64> = f.rec.opens().iter().map(|o| o.0).collect();
    assert_eq!(ids, vec![1, 2, 3]);
    assert_eq!(f.rec.stream(2, Dir::C2S), b"second");
    assert!(f.rec.closes().contains(&(2, None, CloseHow::Reused)));
    assert!(f.rec.closes().contains(&(3, None, CloseHow::EndOfCapture)));
}

#[test]
fn data_after_fin_and_far_segments_are_ignored() {
    let mut f = Feed::new(None);
    f.handshake(0, 0);
    f.c(1, "FPA", b"ab");
    f.c(3, "PA", b"zz");
    f.s(1, "PA", b"x");
    f.s(1 + (1 << 30) + 10, "PA", b"far");
    f.finish();
    assert_eq!(f.rec.stream(1, Dir::C2S), b"ab");
    assert_eq!(f.rec.stream(1, Dir::S2C), b"x");
    assert_eq!(f.rec.problems().len(), 1);
}

#[test]
fn truncated_payload_is_a_gap() {
    let mut f = Feed::new(None);
    f.handshake(0, 0);
    let s = TcpSegment {
        src: addr(C),
        dst: addr(S),
        seq: 1,
        ack: 0,
        syn: false,
        ack_flag: true,
        fin: false,
        rst: false,
        payload: b"abc",
        missing: 4,
    };
    f.r.segment(&s, 10.0, 10, &mut f.rec);
    f.c(8, "PA", b"hij");
    f.finish();
    assert_eq!(f.rec.stream(1, Dir::C2S), b"abc????hij");
}

/// A tiny deterministic generator for the shuffled-segments test.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

#[test]
fn shuffled_duplicated_segments_rebuild_the_stream() {
    let text: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    for round in 0..200u64 {
        let mut rng = Lcg(round);
        let isn = (rng.next(1 << 32) as u32) | 0xffff_0000; // close to the wrap
        let mut segs = Vec::new();
        let mut at = 0;
        while at < text.len() {
            let len = 1 + rng.next(1500) as usize;
            let end = (at + len).min(text.len());
            segs.push((at, end));
            at = end;
        }
        // Duplicates with other boundaries, then a local shuffle (reordering).
        for _ in 0..rng.next(20) {
            let a = rng.next(text.len() as u64) as usize;
            let b = (a + 1 + rng.next(3000) as usize).min(text.len());
            segs.push((a, b));
        }
        for i in 0..segs.len() {
            let j = (i + rng.next(8) as usize).min(segs.len() - 1);
            segs.swap(i, j);
        }
        let drop_some = round % 4 == 0;
        // Odd rounds: a small buffer bound, so holes are given up (gaps) early.
        let small = round % 2 == 1;
        let bound = if small {
            1 + rng.next(16 << 10) as usize
        } else {
            MAX_BUFFERED
        };
        let mut f = Feed::new(None);
        f.r = Reassembler::with_max_buffered(None, bound);
        f.handshake(isn, 1);
        for (i, &(a, b)) in segs.iter().enumerate() {
            if drop_some && i % 13 == 5 {
                continue;
            }
            f.c(isn.wrapping_add(1 + a as u32), "PA", &text[a..b]);
        }
        f.c(isn.wrapping_add(1 + text.len() as u32), "FA", b"");
        f.s(2, "FA", b"");
        let got = f.rec.stream(1, Dir::C2S);
        assert_eq!(got.len(), text.len(), "round {round}");
        for (g, t) in got.iter().zip(&text) {
            assert!(
                *g == *t || ((drop_some || small) && *g == b'?'),
                "round {round}"
            );
        }
        if !drop_some && !small {
            assert!(
                !f.rec.events.iter().any(|e| matches!(e, Ev::Gap(..))),
                "round {round}"
            );
        }
        assert!(f.rec.closes().contains(&(1, Some(Dir::C2S), CloseHow::Fin)));
    }
}

#[test]
fn closed_connections_expire_and_idle_ones_close() {
    let mut r = Reassembler::new(None);
    let mut rec = Recorder::default();
    let mk = |i: u16, flags: &str, seq: u32| TcpSegment {
        src: SocketAddr::new([10, 0, 0, 1].into(), 1024 + i),
        dst: addr(S),
        seq,
        ack: 0,
        syn: flags.contains('S'),
        ack_flag: flags.contains('A'),
        fin: false,
        rst: flags.contains('R'),
        payload: b"",
        missing: 0,
    };
    // Many short connections over a long time: the table stays small.
    let mut t = 0.0;
    for i in 0..20_000u32 {
        let port = (i % 60_000) as u16;
        r.segment(&mk(port, "S", i), t, u64::from(i) * 2 + 1, &mut rec);
        r.segment(&mk(port, "R", i + 1), t, u64::from(i) * 2 + 2, &mut rec);
        t += 0.1;
    }
    let bound = SWEEP_EVERY as usize / 2 + (CLOSED_LINGER * 10.0) as usize + 10;
    assert!(r.tracked() <= bound, "{} connections tracked", r.tracked());
    // One connection left open is closed as idle.
    r.segment(&mk(60_001, "S", 1), t, 1, &mut rec);
    for i in 0..SWEEP_EVERY as u16 {
        t += 1.0;
        r.segment(&mk(i, "S", 5), t, 2, &mut rec);
    }
    assert!(rec.closes().contains(&(20_001, None, CloseHow::Idle)));
}
