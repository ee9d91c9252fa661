#!/usr/bin/env bash
# Replay benchmark (docs/performance.md): the median time and the peak memory of 3 runs of each
# command on one capture, dispel's outputs beside cat and tshark.
#
#   tests/bench/replay.sh FILE.pcap     # make one: dispel bench capture --out FILE.pcap
#
# Env: DISPEL (default target/release/dispel), TMPDIR.
F=${1:?usage: tests/bench/replay.sh FILE.pcap}; D=${DISPEL:-target/release/dispel}
med() { sort -n | sed -n 2p; }
run3() { local name=$1; shift; local ts=() ms=(); for i in 1 2 3; do
  /usr/bin/time -f "%e %M" -o "${TMPDIR:-/tmp}/dispel-bench-time.txt" "$@" >/dev/null 2>/dev/null; read t m < "${TMPDIR:-/tmp}/dispel-bench-time.txt"; ts+=($t); ms+=($m); done
  echo "$name: $(printf '%s\n' "${ts[@]}" | med) s, peak $(printf '%s\n' "${ms[@]}" | sort -n | tail -1) KB"; }
run3 "cat" cat $F
run3 "dispel jsonl to file" $D replay $F --format jsonl --out "${TMPDIR:-/tmp}/dispel-bench.jsonl"
run3 "dispel jsonl to /dev/null" $D replay $F --format jsonl --out /dev/null
run3 "dispel pretty -q" $D replay $F -q --color never
run3 "dispel decode only (--stage error)" $D replay $F --stage error
run3 "tshark fields" tshark -r $F -d tcp.port==5000,http -Y websocket -T fields -e frame.number -e tcp.stream -e websocket.fin -e websocket.opcode -e websocket.mask -e websocket.payload_length
