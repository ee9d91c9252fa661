use std::borrow::Cow;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};
use pcap_file::pcapng::blocks::simple_packet::SimplePacketBlock;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness, TsResolution};

use super::*;
use crate::replay::testutil::{ipv4_tcp, ipv6_tcp, sha256_hex, Ev, Recorder, TcpSpec};

const REQUEST: &[u8] = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n0{}";

/// A whole short connection as IP packets: handshake, request, response, FINs, last ACK.
fn conversation(v6: bool) -> Vec<Vec<u8>> {
    let specs = [
        (true, 100, "S", &b""[..]),
        (false, 900, "SA", b""),
        (true, 101, "A", b""),
        (true, 101, "PA", REQUEST),
        (false, 901, "PA", RESPONSE),
        (true, 101 + REQUEST.len() as u32, "FA", b""),
        (false, 901 + RESPONSE.len() as u32, "FA", b""),
        (true, 102 + REQUEST.len() as u32, "A", b""),
    ];
    specs
        .iter()
        .map(|&(c2s, seq, flags, payload)| {
            let (src_port, dst_port) = if c2s { (40000, 5000) } else { (5000, 40000) };
            let spec = TcpSpec {
                src_port,
                dst_port,
                seq,
                ack: 1,
                flags,
                payload,
            };
            match (v6, c2s) {
                (false, true) => ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], &spec),
                (false, false) => ipv4_tcp([10, 0, 0, 2], [10, 0, 0, 1], &spec),
                (true, true) => ipv6_tcp("2001:db8::1", "2001:db8::2", &spec),
                (true, false) => ipv6_tcp("2001:db8::2", "2001:db8::1", &spec),
            }
        })
        .collect()
}

fn ethernet(ip: &[u8], vlans: &[u16]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    for v in vlans {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&v.to_be_bytes());
    }
    let et: [u8; 2] = if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    f.extend_from_slice(&et);
    f.extend_from_slice(ip);
    f
}

fn sll2(ip: &[u8]) -> Vec<u8> {
    let et: [u8; 2] = if ip[0] >> 4 == 6 {
        [0x86, 0xdd]
    } else {
        [0x08, 0x00]
    };
    let mut f = vec![
        et[0], et[1], 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
    ];
    f.extend_from_slice(ip);
    f
}

fn null(ip: &[u8], big_endian: bool) -> Vec<u8> {
    let family: u32 = if ip[0] >> 4 == 6 { 30 } else { 2 };
    let mut f = if big_endian {
        family.to_be_bytes().to_vec()
    } else {
        family.to_le_bytes().to_vec()
    };
    f.extend_from_slice(ip);
    f
}

fn pcap(header: PcapHeader, frames: &[Vec<u8>], step: Duration) -> Vec<u8> {
    let mut w = PcapWriter::with_header(Vec::new(), header).unwrap();
    let mut ts = Duration::new(1_700_000_000, 0);
    for f in frames {
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
        ts += step;
    }
    w.into_writer()
}

fn header(datalink: DataLink, endianness: Endianness, ts: TsResolution) -> PcapHeader {
    PcapHeader {
        datalink,
        endianness,
        ts_resolution: ts,
        snaplen: 262144,
        ..PcapHeader::default()
    }
}

fn replay(bytes: &[u8], server_port: Option<u16>) -> (Result<ReplayStats, CaptureError>, Recorder) {
    let mut rec = Recorder::default();
    let res = read_capture(bytes, server_port, &mut rec);
    (res, rec)
}

/// The synthetic conversation came out whole.
fn assert_conversation(bytes: &[u8]) -> Recorder {
    let (res, rec) = replay(bytes, None);
    let stats = res.unwrap();
    assert_eq!(rec.problems(), Vec::<String>::new());
    assert_eq!(stats.packets, 8);
    assert_eq!(stats.tcp_packets, 8);
    assert_eq!(stats.connections, 1);
    assert_eq!(rec.opens().len(), 1);
    assert_eq!(rec.opens()[0].3, OpenHow::Syn);
    assert_eq!(rec.opens()[0].2.port(), 5000);
    assert_eq!(rec.stream(1, Dir::C2S), REQUEST);
    assert_eq!(rec.stream(1, Dir::S2C), RESPONSE);
    assert!(rec
        .events
        .contains(&Ev::Data(1, Dir::C2S, 4, REQUEST.to_vec())));
    assert_eq!(
        rec.closes(),
        vec![
            (1, Some(Dir::C2S), CloseHow::Fin),
            (1, Some(Dir::S2C), CloseHow::Fin)
        ]
    );
    rec
}

fn data_times(rec: &Recorder) -> Vec<f64> {
    rec.events
        .iter()
        .zip(&rec.times)
        .filter(|(e, _)| matches!(e, Ev::Data(..)))
        .map(|(_, t)| *t)
        .collect()
}

#[test]
fn pcap_little_and_big_endian_microseconds() {
    let frames: Vec<Vec<u8>> = conversation(false)
        .iter()
        .map(|ip| ethernet(ip, &[]))
        .collect();
    for endianness in [Endianness::Little, Endianness::Big] {
        let h = header(DataLink::ETHERNET, endianness, TsResolution::MicroSecond);
        let file = pcap(h, &frames, Duration::from_micros(1500));
        let expected_magic = match endianness {
            Endianness::Big => [0xa1, 0xb2, 0xc3, 0xd4],
            Endianness::Little => [0xd4, 0xc3, 0xb2, 0xa1],
        };
        assert_eq!(file[..4], expected_magic);
        let rec = assert_conversation(&file);
        let times = data_times(&rec);
        assert!((times[0] - 0.0045).abs() < 1e-9, "{times:?}");
    }
}

#[test]
fn pcap_nanoseconds() {
    let frames: Vec<Vec<u8>> = conversation(false)
        .iter()
        .map(|ip| ethernet(ip, &[]))
        .collect();
    for endianness in [Endianness::Little, Endianness::Big] {
        let h = header(DataLink::ETHERNET, endianness, TsResolution::NanoSecond);
        let file = pcap(h, &frames, Duration::from_nanos(1_000_000_007));
        let rec = assert_conversation(&file);
        let times = data_times(&rec);
        assert!((times[0] - 3.000_000_021).abs() < 1e-9, "{times:?}");
    }
}

#[test]
fn ethernet_vlan_and_qinq() {
    for vlans in [&[7u16][..], &[100, 200][..]] {
        let frames: Vec<Vec<u8>> = conversation(true)
            .iter()
            .map(|ip| ethernet(ip, vlans))
            .collect();
        let h = header(
            DataLink::ETHERNET,
            Endianness::Little,
            TsResolution::MicroSecond,
        );
        assert_conversation(&pcap(h, &frames, Duration::from_millis(1)));
    }
}

#[test]
fn null_loopback_both_byte_orders_and_loop() {
    for v6 in [false, true] {
        for big in [false, true] {
            let frames: Vec<Vec<u8>> = conversation(v6).iter().map(|ip| null(ip, big)).collect();
            for dl in [DataLink::NULL, DataLink::LOOP] {
                let h = header(dl, Endianness::Little, TsResolution::MicroSecond);
                assert_conversation(&pcap(h, &frames, Duration::from_millis(1)));
            }
        }
    }
}

#[test]
fn raw_ip_v4_and_v6() {
    for (dl, v6) in [
        (DataLink::RAW, true),
        (DataLink::RAW, false),
        (DataLink::IPV6, true),
        (DataLink::IPV4, false),
        (DataLink::from(12), false),
        (DataLink::from(14), true),
    ] {
        let h = header(dl, Endianness::Big, TsResolution::MicroSecond);
        assert_conversation(&pcap(h, &conversation(v6), Duration::from_millis(1)));
    }
}

#[test]
fn linux_sll() {
    let frames: Vec<Vec<u8>> = conversation(false)
        .iter()
        .map(|ip| {
            let mut f = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
            f.extend_from_slice(ip);
            f
        })
        .collect();
    let h = header(
        DataLink::LINUX_SLL,
        Endianness::Little,
        TsResolution::MicroSecond,
    );
    assert_conversation(&pcap(h, &frames, Duration::from_millis(1)));
}

/// pcapng: interface 0 is Ethernet in microseconds, interface 1 is SLL2 in nanoseconds with
/// a time offset; packets alternate between them; one is a Simple Packet Block.
fn two_interface_pcapng(endianness: Endianness) -> Vec<u8> {
    let mut w = PcapNgWriter::with_endianness(Vec::new(), endianness).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::ETHERNET, 0))
        .unwrap();
    let mut sll = InterfaceDescriptionBlock::new(DataLink::LINUX_SLL2, 65535);
    sll.options = vec![
        InterfaceDescriptionOption::IfTsResol(9),
        InterfaceDescriptionOption::IfTsOffset(1_700_000_000),
    ];
    w.write_pcapng_block(sll).unwrap();
    let base_us: u64 = 1_700_000_000 * 1_000_000;
    for (i, ip) in conversation(false).iter().enumerate() {
        let i = i as u64;
        if i == 2 {
            // The bare ACK as a Simple Packet Block (interface 0, no timestamp).
            let data = ethernet(ip, &[]);
            let spb = SimplePacketBlock {
                original_len: data.len() as u32,
                data: Cow::Owned(data),
            };
            w.write_pcapng_block(spb).unwrap();
            continue;
        }
        let (iface, data, raw_ts) = if i.is_multiple_of(2) {
            (0, ethernet(ip, &[]), base_us + i * 1000)
        } else {
            // the same clock, in ns relative to the 1_700_000_000 s offset
            (1, sll2(ip), i * 1_000_000)
        };
        let epb = EnhancedPacketBlock {
            interface_id: iface,
            timestamp: Duration::from_nanos(raw_ts),
            original_len: data.len() as u32,
            data: Cow::Owned(data),
            options: vec![],
        };
        w.write_pcapng_block(epb).unwrap();
    }
    w.into_inner()
}

#[test]
fn pcapng_two_interfaces_both_byte_orders() {
    for endianness in [Endianness::Little, Endianness::Big] {
        let file = two_interface_pcapng(endianness);
        let rec = assert_conversation(&file);
        // Request in frame 4 (interface 1: ns), response in frame 5 (interface 0: µs).
        let times = data_times(&rec);
        assert!((times[0] - 0.003).abs() < 1e-9, "{times:?}");
        assert!((times[1] - 0.004).abs() < 1e-9, "{times:?}");
    }
}

#[test]
fn pcapng_sections_of_both_byte_orders_in_one_file() {
    // Two sections (a new Section Header Block resets the interfaces), the second big-endian.
    let mut file = two_interface_pcapng(Endianness::Little);
    file.extend(two_interface_pcapng(Endianness::Big));
    let (res, rec) = replay(&file, None);
    let stats = res.unwrap();
    assert_eq!(rec.problems(), Vec::<String>::new());
    assert_eq!(stats.packets, 16);
    assert_eq!(
        stats.connections, 2,
        "the same 4-tuple after a close is a new connection"
    );
    for conn in [1, 2] {
        assert_eq!(rec.stream(conn, Dir::C2S), REQUEST);
        assert_eq!(rec.stream(conn, Dir::S2C), RESPONSE);
    }
}

#[test]
fn pcapng_corrupt_block_is_skipped() {
    let file = two_interface_pcapng(Endianness::Little);
    // Find the EPB carrying frame 5 (the response) and break its captured length so the
    // block framing stays intact but its content does not parse.
    let mut blocks = Vec::new();
    let mut off = 0;
    while off + 8 <= file.len() {
        let ty = u32::from_le_bytes(file[off..off + 4].try_into().unwrap());
        let len = u32::from_le_bytes(file[off + 4..off + 8].try_into().unwrap()) as usize;
        blocks.push((off, ty, len));
        off += len;
    }
    let packet_blocks: Vec<_> = blocks.iter().filter(|b| b.1 == 6 || b.1 == 3).collect();
    let (epb_off, _, _) = *packet_blocks[4];
    let mut bad = file.clone();
    bad[epb_off + 20..epb_off + 24].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    let (res, rec) = replay(&bad, None);
    let stats = res.unwrap();
    assert_eq!(stats.packets, 8);
    assert_eq!(stats.problems, 1);
    let problems: Vec<&Ev> = rec
        .events
        .iter()
        .filter(|e| matches!(e, Ev::Problem(..)))
        .collect();
    assert!(matches!(problems[0], Ev::Problem(Some(5), m) if m.contains("corrupt pcapng block")));
    // The request still made it; the response became a gap at the FIN.
    assert_eq!(rec.stream(1, Dir::C2S), REQUEST);
    assert_eq!(rec.stream(1, Dir::S2C), vec![b'?'; RESPONSE.len()]);
}

#[test]
fn unknown_link_type_is_reported_once() {
    let frames: Vec<Vec<u8>> = conversation(false)
        .iter()
        .map(|ip| ethernet(ip, &[]))
        .collect();
    let h = header(
        DataLink::IEEE802_11,
        Endianness::Little,
        TsResolution::MicroSecond,
    );
    let (res, rec) = replay(&pcap(h, &frames, Duration::from_millis(1)), None);
    let stats = res.unwrap();
    assert_eq!(stats.packets, 8);
    assert_eq!(stats.tcp_packets, 0);
    assert_eq!(rec.problems().len(), 1, "{:?}", rec.problems());
    assert!(rec.problems()[0].contains("105"));

    // pcapng: one bad interface among good ones.
    let mut w = PcapNgWriter::new(Vec::new()).unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::IEEE802_11, 0))
        .unwrap();
    w.write_pcapng_block(InterfaceDescriptionBlock::new(DataLink::RAW, 0))
        .unwrap();
    for (i, ip) in conversation(false).iter().enumerate() {
        for iface in [0, 1] {
            let epb = EnhancedPacketBlock {
                interface_id: iface,
                timestamp: Duration::from_nanos(i as u64),
                original_len: ip.len() as u32,
                data: Cow::Borrowed(ip),
                options: vec![],
            };
            w.write_pcapng_block(epb).unwrap();
        }
    }
    let (res, rec) = replay(&w.into_inner(), None);
    assert_eq!(res.unwrap().packets, 16);
    assert_eq!(rec.problems().len(), 1);
    assert_eq!(rec.stream(1, Dir::C2S), REQUEST);
}

#[test]
fn not_a_capture() {
    let (res, rec) = replay(b"\x7fELF and then some random bytes", None);
    match res {
        Err(e @ CaptureError::NotACapture { magic }) => {
            assert_eq!(magic, *b"\x7fELF");
            assert!(e.to_string().contains("7f 45 4c 46"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    assert!(rec.events.is_empty());
    assert!(matches!(
        replay(b"", None).0,
        Err(CaptureError::TooShort { len: 0 })
    ));
    assert!(matches!(
        replay(b"\xd4\xc3", None).0,
        Err(CaptureError::TooShort { len: 2 })
    ));
}

#[test]
fn truncated_files_never_panic_and_report() {
    let frames: Vec<Vec<u8>> = conversation(false)
        .iter()
        .map(|ip| ethernet(ip, &[]))
        .collect();
    let h = header(
        DataLink::ETHERNET,
        Endianness::Big,
        TsResolution::NanoSecond,
    );
    let files = [
        pcap(h, &frames, Duration::from_millis(1)),
        two_interface_pcapng(Endianness::Little),
        two_interface_pcapng(Endianness::Big),
    ];
    for file in &files {
        let mut ok = 0;
        for n in 0..file.len() {
            let (res, rec) = replay(&file[..n], None);
            match res {
                Ok(stats) => {
                    ok += 1;
                    // A cut inside a record is reported; the stats count what was read.
                    assert!(stats.packets <= 8);
                    assert_eq!(stats.problems as usize, rec.problems().len());
                }
                Err(CaptureError::TooShort { .. }) => assert!(n < 64, "prefix {n}"),
                Err(e) => panic!("prefix {n}: {e}"),
            }
        }
        assert!(ok > 0);
    }
    // A cut in the middle of the response packet.
    let file = &files[0];
    let cut = file.len() - 70 * 3 - 20;
    let (res, rec) = replay(&file[..cut], None);
    let stats = res.unwrap();
    assert_eq!(stats.packets, 4);
    assert!(
        rec.problems()[0].contains("truncated"),
        "{:?}",
        rec.problems()
    );
    assert_eq!(rec.stream(1, Dir::C2S), REQUEST);
    assert_eq!(rec.closes(), vec![(1, None, CloseHow::EndOfCapture)]);
}

#[test]
fn mutated_bytes_never_panic() {
    let frames: Vec<Vec<u8>> = conversation(true)
        .iter()
        .map(|ip| ethernet(ip, &[3]))
        .collect();
    let h = header(
        DataLink::ETHERNET,
        Endianness::Little,
        TsResolution::MicroSecond,
    );
    for file in [
        pcap(h, &frames, Duration::from_millis(1)),
        two_interface_pcapng(Endianness::Big),
    ] {
        for i in 0..file.len() {
            for v in [0x00, 0xff, file[i] ^ 0x80] {
                let mut m = file.clone();
                m[i] = v;
                let _ = replay(&m, None);
            }
        }
    }
}

/// The reference captures: every TCP stream tshark found, byte for byte (by SHA-256).
fn check_reference(name: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/traces/reference/");
    let pcap = std::fs::read(format!("{dir}{name}.pcap")).unwrap();
    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{dir}{name}.truth.json")).unwrap()).unwrap();
    let (res, rec) = replay(&pcap, None);
    let stats = res.unwrap();
    assert_eq!(rec.problems(), Vec::<String>::new());
    assert_eq!(
        stats.packets,
        truth["capinfos"]["packets"].as_u64().unwrap()
    );
    let streams = truth["tcp_streams"].as_array().unwrap();
    assert_eq!(stats.connections, streams.len() as u64);
    let opens = rec.opens();
    for s in streams {
        let client: std::net::SocketAddr = s["client"].as_str().unwrap().parse().unwrap();
        let server: std::net::SocketAddr = s["server"].as_str().unwrap().parse().unwrap();
        let open = opens.iter().find(|o| o.1 == client && o.2 == server);
        let &(conn, _, _, how) = open.unwrap_or_else(|| panic!("no connection {client}"));
        assert_eq!(how, OpenHow::Syn);
        let by_dir = &s["derived"]["bytes_by_direction"];
        for (dir, key, total) in [
            (Dir::C2S, "client->server", "bytes_client_to_server"),
            (Dir::S2C, "server->client", "bytes_server_to_client"),
        ] {
            let bytes = rec.stream(conn, dir);
            assert_eq!(
                bytes.len() as u64,
                s[total].as_u64().unwrap(),
                "{client} {key}"
            );
            assert_eq!(
                sha256_hex(&bytes),
                by_dir[key]["sha256"].as_str().unwrap(),
                "{client}"
            );
        }
        // The HTTP request starts in the frame tshark reports it in (single-segment heads).
        let first_c2s = rec.events.iter().find_map(|e| match e {
            Ev::Data(c, Dir::C2S, frame, _) if *c == conn => Some(*frame),
            _ => None,
        });
        assert_eq!(first_c2s, s["http"][0]["frame"].as_u64(), "{client}");
        // FIN and RST as tshark saw them.
        let closes: Vec<_> = rec.closes().into_iter().filter(|c| c.0 == conn).collect();
        let fins = s["fin_from"].as_array().unwrap().len();
        let rsts = s["rst_from"].as_array().unwrap().len();
        assert_eq!(
            closes.iter().filter(|c| c.2 == CloseHow::Fin).count(),
            fins,
            "{client}"
        );
        assert_eq!(
            closes.iter().any(|c| c.2 == CloseHow::Rst),
            rsts > 0,
            "{client}"
        );
    }
    assert!(!rec.events.iter().any(|e| matches!(e, Ev::Gap(..))));
}

#[test]
fn reference_python_client_websocket() {
    check_reference("python_client_websocket");
}

#[test]
fn reference_node_client_polling_upgrade() {
    check_reference("node_client_polling_upgrade");
}

#[test]
fn reference_with_server_port_and_mid_stream_start() {
    // Drop the first 3 packets (the first handshake): connection 1 starts mid-stream and the
    // server is still found (from --server-port, and without it from the HTTP request).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/traces/reference/");
    let pcap = std::fs::read(format!("{dir}python_client_websocket.pcap")).unwrap();
    let mut cut = pcap[..24].to_vec();
    let mut off = 24;
    let mut n = 0;
    while off + 16 <= pcap.len() {
        let len = u32::from_le_bytes(pcap[off + 8..off + 12].try_into().unwrap()) as usize;
        if n >= 3 {
            cut.extend_from_slice(&pcap[off..off + 16 + len]);
        }
        off += 16 + len;
        n += 1;
    }
    for port in [Some(5000), None] {
        let (res, rec) = replay(&cut, port);
        assert_eq!(res.unwrap().packets, 58);
        let opens = rec.opens();
        assert_eq!(opens[0].2.port(), 5000);
        assert_eq!(opens[0].3, OpenHow::MidStream);
        assert_eq!(rec.stream(opens[0].0, Dir::C2S).len(), 540);
        assert_eq!(rec.stream(opens[0].0, Dir::S2C).len(), 890);
    }
}

/// A sink that only counts (for the throughput check).
#[derive(Default)]
struct CountingSink {
    bytes: u64,
    problems: u64,
}

impl StreamSink for CountingSink {
    fn open(
        &mut self,
        _: u64,
        _: std::net::SocketAddr,
        _: std::net::SocketAddr,
        _: f64,
        _: OpenHow,
    ) {
    }
    fn data(&mut self, _: u64, _: Dir, _: f64, _: u64, bytes: &[u8]) {
        self.bytes += bytes.len() as u64;
    }
    fn gap(&mut self, _: u64, _: Dir, _: f64, _: u64) {}
    fn close(&mut self, _: u64, _: Option<Dir>, _: f64, _: CloseHow) {}
    fn problem(&mut self, _: Option<f64>, _: Option<u64>, _: String) {
        self.problems += 1;
    }
}

/// Throughput on a ~200 MB in-memory capture of 64 interleaved connections with
/// 1448-byte segments. Meaningful only in release:
/// `cargo test --release --lib replay::capture::tests::throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn throughput() {
    let payload = vec![b'x'; 1448];
    let conns = 64u16;
    let mut frames = Vec::new();
    for c in 0..conns {
        let spec = TcpSpec {
            src_port: 10000 + c,
            dst_port: 5000,
            seq: 0,
            ack: 0,
            flags: "S",
            payload: b"",
        };
        frames.push(ethernet(
            &ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], &spec),
            &[],
        ));
    }
    let h = header(
        DataLink::ETHERNET,
        Endianness::Little,
        TsResolution::MicroSecond,
    );
    let mut w = PcapWriter::with_header(Vec::new(), h).unwrap();
    let mut ts = Duration::new(1_700_000_000, 0);
    for f in &frames {
        w.write_packet(&PcapPacket::new(ts, f.len() as u32, f))
            .unwrap();
    }
    let per_conn = 200_000_000 / (1514 * u32::from(conns));
    for i in 0..per_conn {
        for c in 0..conns {
            let spec = TcpSpec {
                src_port: 10000 + c,
                dst_port: 5000,
                seq: 1 + i * 1448,
                ack: 1,
                flags: "PA",
                payload: &payload,
            };
            let f = ethernet(&ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], &spec), &[]);
            ts += Duration::from_micros(10);
            w.write_packet(&PcapPacket::new(ts, f.len() as u32, &f))
                .unwrap();
        }
    }
    let file = w.into_writer();
    let mut sink = CountingSink::default();
    let start = std::time::Instant::now();
    let stats = read_capture(&file[..], None, &mut sink).unwrap();
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(sink.problems, 0);
    assert_eq!(sink.bytes, u64::from(per_conn) * u64::from(conns) * 1448);
    println!(
        "{} MB, {} packets in {secs:.3} s: {:.0} MB/s",
        file.len() / 1_000_000,
        stats.packets,
        file.len() as f64 / 1e6 / secs
    );
}
