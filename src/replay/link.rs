//! Link layers -> one TCP segment.
//!
//! Ethernet (with 802.1Q / QinQ tags), IP and TCP headers are parsed by `etherparse` (its
//! "lax" slicer, so a packet cut by the snap length still yields the bytes it has). The tiny
//! SLL2 and NULL/LOOP headers are read here.

use std::net::{IpAddr, SocketAddr};

use etherparse::{
    EtherType, LaxNetSlice, LaxSlicedPacket, LinuxSllHeaderSlice, LinuxSllProtocolType,
    TransportSlice,
};

/// The link layers dispel understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkType {
    /// LINKTYPE_ETHERNET (1).
    Ethernet,
    /// LINKTYPE_NULL (0) and LINKTYPE_LOOP (108): a 4-byte address family, either byte order.
    Null,
    /// LINKTYPE_RAW (101), DLT_RAW as 12 or 14, LINKTYPE_IPV4 (228), LINKTYPE_IPV6 (229).
    RawIp,
    /// LINKTYPE_LINUX_SLL (113): `tcpdump -i any`, 16-byte header.
    LinuxSll,
    /// LINKTYPE_LINUX_SLL2 (276): `tcpdump -i any` since libpcap 1.10, 20-byte header.
    LinuxSll2,
}

impl LinkType {
    /// The link type for a pcap/pcapng LINKTYPE value, if supported.
    pub fn from_linktype(value: u32) -> Option<LinkType> {
        // The upper bits of the pcap header's link type field may carry FCS information.
        match value & 0x0fff_ffff {
            1 => Some(LinkType::Ethernet),
            0 | 108 => Some(LinkType::Null),
            101 | 12 | 14 | 228 | 229 => Some(LinkType::RawIp),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }
}

/// A human name for a LINKTYPE value (for messages).
pub fn linktype_name(value: u32) -> String {
    let name = match value {
        0 => "NULL",
        1 => "ETHERNET",
        101 => "RAW",
        105 => "IEEE802_11",
        108 => "LOOP",
        113 => "LINUX_SLL",
        127 => "IEEE802_11_RADIOTAP",
        228 => "IPV4",
        229 => "IPV6",
        276 => "LINUX_SLL2",
        _ => return format!("link type {value}"),
    };
    format!("link type {value} ({name})")
}

/// One TCP segment, borrowed from the packet buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub syn: bool,
    pub ack_flag: bool,
    pub fin: bool,
    pub rst: bool,
    /// The payload bytes present in the capture.
    pub payload: &'a [u8],
    /// Payload bytes the IP header announces but the capture cut off (snap length).
    pub missing: u32,
}

/// What a packet turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<'a> {
    Tcp(TcpSegment<'a>),
    /// Not TCP over IP (ARP, UDP, ICMP, ...): ignored silently.
    NotTcp,
    /// Unusable: the reason.
    Problem(String),
}

/// SLL (v1) header length.
const SLL_LEN: usize = 16;
/// SLL2 header length.
const SLL2_LEN: usize = 20;
/// SLL2: offset of the 2-byte big-endian protocol type (an EtherType).
const SLL2_PROTOCOL_OFFSET: usize = 0;
/// NULL/LOOP header length (the address family, host or network byte order).
const NULL_LEN: usize = 4;
/// Address family values for IPv4 and IPv6 across the BSDs, macOS and Linux.
const AF_INET: u32 = 2;
const AF_INET6: [u32; 4] = [10, 24, 28, 30];

/// Decodes one captured frame of the given link type.
pub fn decode(link: LinkType, data: &[u8]) -> Decoded<'_> {
    let sliced = match link {
        LinkType::Ethernet => match LaxSlicedPacket::from_ethernet(data) {
            Ok(p) => p,
            Err(e) => return Decoded::Problem(format!("Ethernet header: {e}")),
        },
        LinkType::RawIp => {
            // An empty or non-IP first nibble is not an error worth a message per packet,
            // but a broken IP header is.
            match data.first().map(|b| b >> 4) {
                Some(4) | Some(6) => {}
                _ => return Decoded::Problem("raw IP packet without an IPv4/IPv6 header".into()),
            }
            match LaxSlicedPacket::from_ip(data) {
                Ok(p) => p,
                Err(e) => return Decoded::Problem(format!("IP header: {e}")),
            }
        }
        LinkType::LinuxSll => {
            let header = match LinuxSllHeaderSlice::from_slice(data) {
                Ok(h) => h,
                Err(e) => return Decoded::Problem(format!("Linux cooked (SLL) header: {e}")),
            };
            let ether_type = match header.protocol_type() {
                LinuxSllProtocolType::EtherType(et) => et,
                _ => return Decoded::NotTcp,
            };
            match data.get(SLL_LEN..) {
                Some(rest) => LaxSlicedPacket::from_ether_type(ether_type, rest),
                None => return Decoded::Problem("Linux cooked (SLL) header truncated".into()),
            }
        }
        LinkType::LinuxSll2 => {
            let (Some(proto), Some(rest)) = (
                data.get(SLL2_PROTOCOL_OFFSET..SLL2_PROTOCOL_OFFSET + 2),
                data.get(SLL2_LEN..),
            ) else {
                return Decoded::Problem(format!(
                    "Linux cooked (SLL2) header truncated: {} of {SLL2_LEN} bytes",
                    data.len()
                ));
            };
            let ether_type = EtherType(u16::from_be_bytes([proto[0], proto[1]]));
            LaxSlicedPacket::from_ether_type(ether_type, rest)
        }
        LinkType::Null => {
            let (Some(family), Some(rest)) = (data.get(..NULL_LEN), data.get(NULL_LEN..)) else {
                return Decoded::Problem(format!(
                    "NULL/loopback header truncated: {} of {NULL_LEN} bytes",
                    data.len()
                ));
            };
            let family = [family[0], family[1], family[2], family[3]];
            let ether_type = match null_family(family) {
                Some(et) => et,
                None => return Decoded::NotTcp,
            };
            LaxSlicedPacket::from_ether_type(ether_type, rest)
        }
    };
    from_sliced(&sliced)
}

/// The EtherType for a NULL/LOOP address family, read in whichever byte order gives a small
/// value (the field is in the capturing host's byte order for NULL, network order for LOOP).
fn null_family(family: [u8; 4]) -> Option<EtherType> {
    let le = u32::from_le_bytes(family);
    let value = if le > 0xffff {
        u32::from_be_bytes(family)
    } else {
        le
    };
    if value == AF_INET {
        Some(EtherType::IPV4)
    } else if AF_INET6.contains(&value) {
        Some(EtherType::IPV6)
    } else {
        None
    }
}

fn from_sliced<'a>(p: &LaxSlicedPacket<'a>) -> Decoded<'a> {
    let (src_ip, dst_ip, ip_payload, claimed_payload): (IpAddr, IpAddr, _, Option<usize>) = match &p
        .net
    {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let auth_len = v4.extensions().auth.map_or(0, |a| a.slice().len());
            let claimed = (h.total_len() as usize).checked_sub(h.slice().len() + auth_len);
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload(),
                claimed,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let claimed = (h.payload_length() as usize).checked_sub(v6.extensions().slice().len());
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload(),
                claimed,
            )
        }
        Some(LaxNetSlice::Arp(_)) => return Decoded::NotTcp,
        None => {
            return match &p.stop_err {
                Some((e, _)) => Decoded::Problem(format!("IP header: {e}")),
                None => Decoded::NotTcp,
            };
        }
    };
    if ip_payload.ip_number != etherparse::IpNumber::TCP {
        return Decoded::NotTcp;
    }
    if ip_payload.fragmented {
        return Decoded::Problem(format!(
            "IP fragment {src_ip} -> {dst_ip} skipped (fragment reassembly is not supported)"
        ));
    }
    let tcp = match &p.transport {
        Some(TransportSlice::Tcp(tcp)) => tcp,
        _ => {
            return match &p.stop_err {
                Some((e, _)) => Decoded::Problem(format!("TCP header {src_ip} -> {dst_ip}: {e}")),
                None => Decoded::Problem(format!("TCP header {src_ip} -> {dst_ip} missing")),
            };
        }
    };
    let payload = tcp.payload();
    let missing = if ip_payload.incomplete {
        claimed_payload
            .and_then(|c| c.checked_sub(tcp.header_slice().len() + payload.len()))
            .and_then(|m| u32::try_from(m).ok())
            .unwrap_or(0)
    } else {
        0
    };
    Decoded::Tcp(TcpSegment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        ack: tcp.acknowledgment_number(),
        syn: tcp.syn(),
        ack_flag: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replay::testutil::{ipv4_tcp, ipv6_tcp, TcpSpec};

    fn spec() -> TcpSpec<'static> {
        TcpSpec {
            src_port: 46180,
            dst_port: 5000,
            seq: 1000,
            ack: 7,
            flags: "PA",
            payload: b"GET / HTTP/1.1\r\n\r\n",
        }
    }

    fn tcp(d: Decoded<'_>) -> TcpSegment<'_> {
        match d {
            Decoded::Tcp(t) => t,
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    fn eth(ether_type: [u8; 2], vlans: &[u16]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        for v in vlans {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&v.to_be_bytes());
        }
        f.extend_from_slice(&ether_type);
        f
    }

    #[test]
    fn linktype_values() {
        assert_eq!(LinkType::from_linktype(1), Some(LinkType::Ethernet));
        assert_eq!(LinkType::from_linktype(0), Some(LinkType::Null));
        assert_eq!(LinkType::from_linktype(108), Some(LinkType::Null));
        for raw in [12, 14, 101, 228, 229] {
            assert_eq!(LinkType::from_linktype(raw), Some(LinkType::RawIp));
        }
        assert_eq!(LinkType::from_linktype(113), Some(LinkType::LinuxSll));
        assert_eq!(LinkType::from_linktype(276), Some(LinkType::LinuxSll2));
        assert_eq!(LinkType::from_linktype(105), None);
        assert_eq!(linktype_name(105), "link type 105 (IEEE802_11)");
    }

    #[test]
    fn ethernet_ipv4() {
        let mut f = eth([0x08, 0x00], &[]);
        f.extend(ipv4_tcp([10, 0, 0, 1], [10, 0, 0, 2], &spec()));
        // Ethernet trailer padding must not become payload.
        f.extend_from_slice(&[0; 6]);
        let s = tcp(decode(LinkType::Ethernet, &f));
        assert_eq!(s.src, "10.0.0.1:46180".parse().unwrap());
        assert_eq!(s.dst, "10.0.0.2:5000".parse().unwrap());
        assert_eq!(s.seq, 1000);
        assert_eq!(s.ack, 7);
        assert!(s.ack_flag && !s.syn && !s.fin && !s.rst);
        assert_eq!(s.payload, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(s.missing, 0);
    }

    #[test]
    fn ethernet_vlan_and_qinq() {
        for vlans in [&[5u16][..], &[100, 200][..]] {
            let mut f = eth([0x86, 0xdd], vlans);
            f.extend(ipv6_tcp("fe80::1", "fe80::2", &spec()));
            let s = tcp(decode(LinkType::Ethernet, &f));
            assert_eq!(s.dst, "[fe80::2]:5000".parse().unwrap());
            assert_eq!(s.payload, spec().payload);
        }
    }

    #[test]
    fn sll_and_sll2() {
        let mut sll = vec![0, 0, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend(ipv4_tcp([127, 0, 0, 1], [127, 0, 0, 1], &spec()));
        assert_eq!(
            tcp(decode(LinkType::LinuxSll, &sll)).payload,
            spec().payload
        );

        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend(ipv6_tcp("::1", "::1", &spec()));
        assert_eq!(
            tcp(decode(LinkType::LinuxSll2, &sll2)).payload,
            spec().payload
        );

        assert!(matches!(
            decode(LinkType::LinuxSll2, &sll2[..10]),
            Decoded::Problem(_)
        ));
        assert!(matches!(
            decode(LinkType::LinuxSll, &sll[..10]),
            Decoded::Problem(_)
        ));
    }

    #[test]
    fn null_both_byte_orders() {
        let ip4 = ipv4_tcp([127, 0, 0, 1], [127, 0, 0, 1], &spec());
        let ip6 = ipv6_tcp("::1", "::1", &spec());
        for (family, ip) in [
            ([2, 0, 0, 0], &ip4),
            ([0, 0, 0, 2], &ip4),
            ([30, 0, 0, 0], &ip6),
            ([0, 0, 0, 24], &ip6),
            ([28, 0, 0, 0], &ip6),
        ] {
            let mut f = family.to_vec();
            f.extend_from_slice(ip);
            assert_eq!(tcp(decode(LinkType::Null, &f)).payload, spec().payload);
        }
        let mut other = vec![7, 0, 0, 0];
        other.extend_from_slice(&ip4);
        assert_eq!(decode(LinkType::Null, &other), Decoded::NotTcp);
        assert!(matches!(
            decode(LinkType::Null, &[2, 0]),
            Decoded::Problem(_)
        ));
    }

    #[test]
    fn raw_ip() {
        let ip4 = ipv4_tcp([1, 2, 3, 4], [5, 6, 7, 8], &spec());
        assert_eq!(
            tcp(decode(LinkType::RawIp, &ip4)).src,
            "1.2.3.4:46180".parse().unwrap()
        );
        let ip6 = ipv6_tcp("2001:db8::1", "2001:db8::2", &spec());
        assert_eq!(
            tcp(decode(LinkType::RawIp, &ip6)).src,
            "[2001:db8::1]:46180".parse().unwrap()
        );
        assert!(matches!(decode(LinkType::RawIp, &[]), Decoded::Problem(_)));
        assert!(matches!(
            decode(LinkType::RawIp, &[0x45, 0]),
            Decoded::Problem(_)
        ));
    }

    #[test]
    fn snaplen_cut_reports_missing_bytes() {
        let ip4 = ipv4_tcp([1, 2, 3, 4], [5, 6, 7, 8], &spec());
        let cut = &ip4[..ip4.len() - 5];
        let s = tcp(decode(LinkType::RawIp, cut));
        assert_eq!(s.payload, &spec().payload[..spec().payload.len() - 5]);
        assert_eq!(s.missing, 5);
    }

    #[test]
    fn non_tcp_is_silent_and_fragments_are_problems() {
        // UDP
        let mut udp = ipv4_tcp([1, 2, 3, 4], [5, 6, 7, 8], &spec());
        udp[9] = 17;
        assert_eq!(decode(LinkType::RawIp, &udp), Decoded::NotTcp);
        // ARP over Ethernet
        let mut arp = eth([0x08, 0x06], &[]);
        arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1]);
        arp.extend_from_slice(&[0; 20]);
        assert_eq!(decode(LinkType::Ethernet, &arp), Decoded::NotTcp);
        // IPv4 fragment: more-fragments flag set.
        let mut frag = ipv4_tcp([1, 2, 3, 4], [5, 6, 7, 8], &spec());
        frag[6] = 0x20;
        match decode(LinkType::RawIp, &frag) {
            Decoded::Problem(m) => assert!(m.contains("fragment"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_prefix_never_panics() {
        let mut f = eth([0x81, 0x00], &[]);
        f.truncate(12);
        f.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
        f.extend(ipv4_tcp([1, 2, 3, 4], [5, 6, 7, 8], &spec()));
        for link in [
            LinkType::Ethernet,
            LinkType::Null,
            LinkType::RawIp,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
        ] {
            for n in 0..=f.len() {
                let _ = decode(link, &f[..n]);
            }
        }
    }
}
