//! The pcap writer, beside the reader: `serve`/`watch --record FILE.pcap` (and `bench
//! capture`) write a live session as a capture that Wireshark, tshark and
//! `dispel replay` open. The bytes are the ones the tap saw; the Ethernet, IP and TCP headers
//! around them are synthesized (with consistent sequence numbers and a handshake and teardown
//! per connection), since the kernel's real segmentation is not visible to a user-space server.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::DataLink;

use crate::trace::Dir;

/// Largest TCP payload per synthesized segment (a typical loopback MSS would be larger; this
/// keeps every packet within one IPv4 datagram).
const SEGMENT: usize = 16 * 1024;

struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    /// Next sequence number of each direction.
    seq: [u32; 2],
}

struct State {
    /// Taken (and flushed) by `finish`.
    writer: Option<PcapWriter<BufWriter<File>>>,
    conns: HashMap<u64, Conn>,
    next_id: u64,
    error: Option<String>,
}

pub struct Recorder {
    state: Mutex<State>,
    epoch: SystemTime,
}

const FLAG_SYN: u8 = 1;
const FLAG_ACK: u8 = 2;
const FLAG_FIN: u8 = 4;
const FLAG_PSH: u8 = 8;

impl Recorder {
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        let file = BufWriter::new(File::create(path)?);
        let header = PcapHeader {
            datalink: DataLink::ETHERNET,
            ..PcapHeader::default()
        };
        let writer = PcapWriter::with_header(file, header).map_err(std::io::Error::other)?;
        Ok(Recorder {
            state: Mutex::new(State {
                writer: Some(writer),
                conns: HashMap::new(),
                next_id: 1,
                error: None,
            }),
            epoch: SystemTime::now(),
        })
    }

    fn write(
        st: &mut State,
        ts: Duration,
        conn: &Conn,
        dir: Dir,
        flags: u8,
        (seq, ack): (u32, u32),
        payload: &[u8],
    ) {
        let (src, dst) = match dir {
            Dir::C2S => (conn.client, conn.server),
            Dir::S2C => (conn.server, conn.client),
        };
        let mac = |a: &SocketAddr| -> [u8; 6] {
            // Locally administered addresses, one per side.
            if *a == conn.client {
                [0x02, 0, 0, 0, 0, 1]
            } else {
                [0x02, 0, 0, 0, 0, 2]
            }
        };
        let eth = PacketBuilder::ethernet2(mac(&src), mac(&dst));
        let ip = match (src.ip(), dst.ip()) {
            (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
            (s, d) => {
                let v6 = |ip: IpAddr| match ip {
                    IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
                    IpAddr::V6(v6) => v6.octets(),
                };
                eth.ipv6(v6(s), v6(d), 64)
            }
        };
        let mut tcp = ip.tcp(src.port(), dst.port(), seq, 65535);
        if flags & FLAG_SYN != 0 {
            tcp = tcp.syn();
        }
        if flags & FLAG_ACK != 0 {
            tcp = tcp.ack(ack);
        }
        if flags & FLAG_FIN != 0 {
            tcp = tcp.fin();
        }
        if flags & FLAG_PSH != 0 {
            tcp = tcp.psh();
        }
        let mut bytes = Vec::with_capacity(tcp.size(payload.len()));
        if let Err(e) = tcp.write(&mut bytes, payload) {
            st.error.get_or_insert(e.to_string());
            return;
        }
        let packet = PcapPacket::new(ts, bytes.len() as u32, &bytes);
        let Some(writer) = st.writer.as_mut() else {
            return;
        };
        if let Err(e) = writer.write_packet(&packet) {
            st.error.get_or_insert(e.to_string());
        }
    }

    fn stamp(&self, since_start: Duration) -> Duration {
        self.epoch
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            + since_start
    }

    /// A new connection: writes SYN, SYN-ACK, ACK. Returns its id.
    pub fn open(&self, client: SocketAddr, server: SocketAddr, since_start: Duration) -> u64 {
        let ts = self.stamp(since_start);
        let Ok(mut st) = self.state.lock() else {
            return 0;
        };
        let id = st.next_id;
        st.next_id += 1;
        let isn = (id as u32).wrapping_mul(0x9E37_79B9);
        let conn = Conn {
            client,
            server,
            seq: [isn.wrapping_add(1), isn.wrapping_add(0x1000_0001)],
        };
        Self::write(&mut st, ts, &conn, Dir::C2S, FLAG_SYN, (isn, 0), &[]);
        Self::write(
            &mut st,
            ts,
            &conn,
            Dir::S2C,
            FLAG_SYN | FLAG_ACK,
            (conn.seq[1].wrapping_sub(1), conn.seq[0]),
            &[],
        );
        Self::write(
            &mut st,
            ts,
            &conn,
            Dir::C2S,
            FLAG_ACK,
            (conn.seq[0], conn.seq[1]),
            &[],
        );
        st.conns.insert(id, conn);
        id
    }

    pub fn data(&self, id: u64, dir: Dir, bytes: &[u8], since_start: Duration) {
        let ts = self.stamp(since_start);
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let Some(mut conn) = st.conns.remove(&id) else {
            return;
        };
        for chunk in bytes.chunks(SEGMENT) {
            let (seq, ack) = (conn.seq[dir.index()], conn.seq[dir.other().index()]);
            Self::write(
                &mut st,
                ts,
                &conn,
                dir,
                FLAG_ACK | FLAG_PSH,
                (seq, ack),
                chunk,
            );
            conn.seq[dir.index()] = seq.wrapping_add(chunk.len() as u32);
        }
        st.conns.insert(id, conn);
    }

    /// The connection ended: FIN from the server, FIN from the client, last ACK.
    pub fn close(&self, id: u64, since_start: Duration) {
        let ts = self.stamp(since_start);
        let Ok(mut st) = self.state.lock() else {
            return;
        };
        let Some(conn) = st.conns.remove(&id) else {
            return;
        };
        let (s, c) = (conn.seq[Dir::S2C.index()], conn.seq[Dir::C2S.index()]);
        Self::write(
            &mut st,
            ts,
            &conn,
            Dir::S2C,
            FLAG_FIN | FLAG_ACK,
            (s, c),
            &[],
        );
        Self::write(
            &mut st,
            ts,
            &conn,
            Dir::C2S,
            FLAG_FIN | FLAG_ACK,
            (c, s.wrapping_add(1)),
            &[],
        );
        Self::write(
            &mut st,
            ts,
            &conn,
            Dir::S2C,
            FLAG_ACK,
            (s.wrapping_add(1), c.wrapping_add(1)),
            &[],
        );
    }

    /// Flushes the file; reports the first write error, if any.
    pub fn finish(&self) -> Result<(), String> {
        let Ok(st) = self.state.lock() else {
            return Err("recorder lock poisoned".into());
        };
        let ids: Vec<u64> = st.conns.keys().copied().collect();
        drop(st);
        for id in ids {
            self.close(id, self.epoch.elapsed().unwrap_or_default());
        }
        let Ok(mut st) = self.state.lock() else {
            return Err("recorder lock poisoned".into());
        };
        use std::io::Write;
        if let Some(writer) = st.writer.take() {
            if let Err(e) = writer.into_writer().flush() {
                st.error.get_or_insert(e.to_string());
            }
        }
        match st.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}
