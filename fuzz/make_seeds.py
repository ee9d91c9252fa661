#!/usr/bin/env python3
"""Regenerates the curated seed inputs in fuzz/seeds/<target>/ from traces/.

Standard library only. Run from anywhere: `python3 fuzz/make_seeds.py`. The output is small
(a few dozen files per target) and committed; `fuzz/seed.sh` copies it into fuzz/corpus/.

- http_head, ws_frame, engineio, socketio: units rebuilt from the JSON Lines traces
  (traces/reference/*.trace.jsonl, traces/flask/*.trace.jsonl).
- session, reassembly: the TCP segments of the .pcap files, in the targets' record formats
  (see the comments at the top of fuzz_targets/session.rs and fuzz_targets/reassembly.rs).
- capture: the .pcap files themselves, and pcap/pcapng bodies for the target's
  "header supplied" modes.
- resp: the Redis commands and pushes of traces/mq/*.trace.jsonl (their `resp` fields), and
  a few RESP3 values.
"""

import glob
import hashlib
import json
import os
import shutil
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")
TRACES = sorted(glob.glob(os.path.join(ROOT, "traces", "reference", "*.trace.jsonl"))) + sorted(
    glob.glob(os.path.join(ROOT, "traces", "flask", "*.trace.jsonl"))
)
PCAPS = sorted(glob.glob(os.path.join(ROOT, "traces", "*", "*.pcap")))
EIO_TYPES = {"OPEN": "0", "CLOSE": "1", "PING": "2", "PONG": "3", "MESSAGE": "4", "UPGRADE": "5", "NOOP": "6"}
PER_TARGET = 40
#: Inputs of ws_frame kept for the inflater (pairs of compressed messages).
DEFLATE_SEEDS = 8


class Seeds:
    """Distinct inputs of one target, capped, named by content hash."""

    def __init__(self, target):
        self.target = target
        self.items = {}
        self.kinds = {}

    def add(self, data, name=None, kind=None, per_kind=4):
        """Adds `data` unless the target is full or has `per_kind` inputs of its `kind`."""
        if isinstance(data, str):
            data = data.encode()
        if len(self.items) >= PER_TARGET or data in self.items.values():
            return
        if kind is not None:
            if self.kinds.get(kind, 0) >= per_kind:
                return
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
        key = name or hashlib.sha1(data).hexdigest()[:16]
        self.items[key] = data

    def write(self):
        d = os.path.join(SEEDS, self.target)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        for name, data in sorted(self.items.items()):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        print(f"{self.target}: {len(self.items)} seeds, {sum(map(len, self.items.values()))} bytes")


def events():
    for path in TRACES:
        with open(path) as f:
            for line in f:
                yield json.loads(line)


def mask(payload, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def http_head(ev):
    f = ev["fields"]
    if ev["stage"] == "http.request":
        first = f"{f['method']} {f['target']} {f['version']}"
    else:
        first = f"{f['version']} {f['status']} {f['reason']}"
    lines = [first] + [f"{n}: {v}" for n, v in f["headers"]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def from_traces():
    http = Seeds("http_head")
    ws = Seeds("ws_frame")
    eio = Seeds("engineio")
    sio = Seeds("socketio")
    deflate_msgs = []
    # Hand-written units that the traces do not have (chunked bodies, queries).
    http.add(b"4\r\nWiki\r\n5;ext=1\r\npedia\r\n0\r\nTrailer: x\r\n\r\n")
    http.add(b"a\r\n0123456789\r\n0\r\n\r\n")
    http.add(b"POST /socket.io/?EIO=4&transport=polling&sid=a%2Bb+c HTTP/1.1\r\n"
             b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    http.add(b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n")
    eio.add("4hello\x1e2\x1ebAQID\x1e6")
    sio.add('52-["up",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]')
    sio.add('61-/admin,12[{"_placeholder":true,"num":0}]')
    sio.add('4/admin,{"message":"Not authorized"}')
    sio.add("1/admin")
    evs = list(events())
    # Compressed data messages, in order, for the inflater seeds (added first, see below).
    for ev in evs:
        f = ev["fields"]
        if ev["stage"] == "ws.frame" and f["rsv1"] and f["opcode"] in (1, 2):
            payload = bytes.fromhex(f.get("payload_hex") or "")
            if len(payload) == f["payload_len"]:
                deflate_msgs.append(payload)
    # Inflate seeds for ws_frame: [ctl][message 1][message 2], ctl bit 0 = context takeover,
    # ctl >> 1 = length of message 1 (consecutive messages of one sender share the window).
    pairs = [(a, b) for a, b in zip(deflate_msgs, deflate_msgs[1:]) if len(a) < 128]
    for a, b in pairs[:DEFLATE_SEEDS]:
        ws.add(bytes([(len(a) << 1) | 1]) + a + b)
    for ev in evs:
        st, f = ev["stage"], ev["fields"]
        if st in ("http.request", "http.response"):
            kind = (st, f.get("method"), f.get("status"))
            http.add(http_head(ev), kind=kind, per_kind=3)
        elif st == "ws.frame":
            header = bytes.fromhex(f["header_hex"])
            payload = bytes.fromhex(f.get("payload_hex") or "")
            if len(payload) != f["payload_len"]:
                continue  # clipped in the trace
            if f["masked"]:
                payload = mask(payload, bytes.fromhex(f["mask_key"]))
            kind = (f["opcode"], f["masked"], f["rsv1"], f["fin"], f["length_form"])
            ws.add(header + payload, kind=kind, per_kind=3)
        elif st == "eio.packet":
            if f.get("data") is not None:
                eio.add(EIO_TYPES[f["type"]] + f["data"], kind=f["type"], per_kind=6)
                if f["type"] == "MESSAGE":
                    sio.add(f["data"], kind=f["data"][:2], per_kind=5)
    for s in (http, ws, eio, sio):
        s.write()


def pcap_packets(path):
    """(ts_sec, ts_usec, frame bytes) of a little-endian microsecond pcap."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\xd4\xc3\xb2\xa1", path
    (linktype,) = struct.unpack_from("<I", data, 20)
    assert linktype == 1, path
    pos = 24
    while pos + 16 <= len(data):
        sec, usec, incl, _orig = struct.unpack_from("<IIII", data, pos)
        yield sec, usec, data[pos + 16 : pos + 16 + incl]
        pos += 16 + incl


def tcp_segments(path):
    """(src, dst, seq, flags, payload) of the IPv4/IPv6 TCP packets in an Ethernet pcap."""
    for _, _, frame in pcap_packets(path):
        (ethertype,) = struct.unpack_from(">H", frame, 12)
        ip = frame[14:]
        if ethertype == 0x0800 and ip[9] == 6:
            ihl = (ip[0] & 15) * 4
            (total,) = struct.unpack_from(">H", ip, 2)
            src_ip, dst_ip, tcp = ip[12:16], ip[16:20], ip[ihl:total]
        elif ethertype == 0x86DD and ip[6] == 6:
            (plen,) = struct.unpack_from(">H", ip, 4)
            src_ip, dst_ip, tcp = ip[8:24], ip[24:40], ip[40 : 40 + plen]
        else:
            continue
        sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
        off = (tcp[12] >> 4) * 4
        flags = tcp[13]
        yield (src_ip, sport), (dst_ip, dport), seq, flags, tcp[off:]


def from_pcaps():
    session = Seeds("session")
    reasm = Seeds("reassembly")
    capture = Seeds("capture")
    for path in PCAPS:
        name = os.path.basename(path)[: -len(".pcap")]
        with open(path, "rb") as f:
            capture.add(f.read(), name)
        segs = list(tcp_segments(path))
        # Connections by 4-tuple, client = the SYN's sender.
        conns = {}
        for src, dst, seq, flags, payload in segs:
            key = frozenset((src, dst))
            if key not in conns and flags & 0x02 and not flags & 0x10:
                conns[key] = (src, len(conns))
        # session: one seed per connection, its data chunks in capture order.
        for key, (client, idx) in conns.items():
            out = bytearray([0])
            for src, dst, seq, flags, payload in segs:
                if frozenset((src, dst)) != key or not payload:
                    continue
                out += bytes([0 if src == client else 1]) + struct.pack("<H", len(payload)) + payload
            if len(out) > 1:
                session.add(bytes(out), f"{name}.{idx}")
        # reassembly: the first segments of the capture, up to 8 KiB.
        out = bytearray([0])
        for src, dst, seq, flags, payload in segs:
            key = frozenset((src, dst))
            if key not in conns:
                continue
            client, idx = conns[key]
            bits = (1 if src == client else 0) | (idx & 3) << 5
            bits |= (2 if flags & 0x02 else 0) | (4 if flags & 0x10 else 0)
            bits |= (8 if flags & 0x01 else 0) | (16 if flags & 0x04 else 0)
            rec = bytes([bits]) + struct.pack(">I", seq) + bytes([0, 1]) + struct.pack(">H", len(payload)) + payload
            if len(out) + len(rec) > 8192:
                break
            out += rec
        reasm.add(bytes(out), name)
    # capture, header supplied: pcap records ([1, link]) and pcapng Enhanced Packet Blocks
    # ([2, link]) of the smallest capture's first packets (link 0 = Ethernet).
    smallest = min(PCAPS, key=os.path.getsize)
    pkts = list(pcap_packets(smallest))[:12]
    rec = bytearray([1, 0])
    epb = bytearray([2, 0])
    for sec, usec, frame in pkts:
        rec += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
        pad = (-len(frame)) % 4
        ts = sec * 1_000_000 + usec
        total = 32 + len(frame) + pad
        epb += struct.pack("<IIIIIII", 6, total, 0, ts >> 32, ts & 0xFFFFFFFF, len(frame), len(frame))
        epb += frame + b"\0" * pad + struct.pack("<I", total)
    capture.add(bytes(rec), "pcap_records")
    capture.add(bytes(epb), "pcapng_blocks")
    for s in (session, reasm, capture):
        s.write()


def from_mq():
    resp = Seeds("resp")
    for path in sorted(glob.glob(os.path.join(ROOT, "traces", "mq", "*.trace.jsonl"))):
        with open(path) as f:
            for line in f:
                ev = json.loads(line)
                text = ev.get("fields", {}).get("resp")
                if isinstance(text, str):
                    raw = text.replace("\\r", "\r").replace("\\n", "\n")
                    resp.add(raw, kind=ev["fields"].get("method"), per_kind=6)
    for value in ["+OK\r\n", ":3\r\n", "-ERR unknown\r\n", "$-1\r\n", "*-1\r\n",
                  "%1\r\n+server\r\n$5\r\nredis\r\n", ">3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nhi\r\n",
                  "~2\r\n#t\r\n,1.5\r\n", "=8\r\ntxt:abcd\r\n", "(12345678901234567890\r\n", "!3\r\nbad\r\n", "_\r\n"]:
        resp.add(value)
    resp.write()


if __name__ == "__main__":
    from_traces()
    from_pcaps()
    from_mq()
