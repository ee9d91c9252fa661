//! The capture reader (pcap, pcapng, link layers, IP, TCP reassembly) on arbitrary bytes.
//!
//! An input that starts with a capture magic number is read as it is. Otherwise its first
//! byte chooses: 0 read the rest as it is; 1 a pcap file header, then the rest as records;
//! 2 a pcapng Section Header and Interface Description, then the rest as blocks. For 1 and 2
//! the second byte picks the link type, so the fuzzer starts past the file header.
#![no_main]

use std::net::SocketAddr;

use dispel::replay::{self, CloseHow, Dir, OpenHow, StreamSink};
use libfuzzer_sys::fuzz_target;

/// A sink that throws everything away.
struct Discard;

impl StreamSink for Discard {
    fn open(&mut self, _: u64, _: SocketAddr, _: SocketAddr, _: f64, _: OpenHow) {}
    fn data(&mut self, _: u64, _: Dir, _: f64, _: u64, _: &[u8]) {}
    fn gap(&mut self, _: u64, _: Dir, _: f64, _: u64) {}
    fn close(&mut self, _: u64, _: Option<Dir>, _: f64, _: CloseHow) {}
    fn problem(&mut self, _: Option<f64>, _: Option<u64>, _: String) {}
}

const LINKTYPES: [u32; 8] = [1, 0, 108, 101, 113, 276, 228, 229];

fn pcap_header(linktype: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(24);
    h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    h.extend_from_slice(&2u16.to_le_bytes());
    h.extend_from_slice(&4u16.to_le_bytes());
    h.extend_from_slice(&0i32.to_le_bytes());
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&linktype.to_le_bytes());
    h
}

fn pcapng_header(linktype: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(48);
    // Section Header Block.
    h.extend_from_slice(&0x0a0d_0d0au32.to_le_bytes());
    h.extend_from_slice(&28u32.to_le_bytes());
    h.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    h.extend_from_slice(&1u16.to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&(-1i64).to_le_bytes());
    h.extend_from_slice(&28u32.to_le_bytes());
    // Interface Description Block.
    h.extend_from_slice(&1u32.to_le_bytes());
    h.extend_from_slice(&20u32.to_le_bytes());
    h.extend_from_slice(&(linktype as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&65535u32.to_le_bytes());
    h.extend_from_slice(&20u32.to_le_bytes());
    h
}

fuzz_target!(|data: &[u8]| {
    let input: Vec<u8> = if replay::is_capture_magic(data) {
        data.to_vec()
    } else {
        match data {
            [1, link, rest @ ..] => {
                let mut v = pcap_header(LINKTYPES[usize::from(*link) % LINKTYPES.len()]);
                v.extend_from_slice(rest);
                v
            }
            [2, link, rest @ ..] => {
                let mut v = pcapng_header(LINKTYPES[usize::from(*link) % LINKTYPES.len()]);
                v.extend_from_slice(rest);
                v
            }
            [_, rest @ ..] => rest.to_vec(),
            [] => Vec::new(),
        }
    };
    let _ = replay::read_capture(&input[..], None, &mut Discard);
});
