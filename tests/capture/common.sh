# Shared by the capture scripts (record.sh, proxy.sh, two_workers.sh); sourced, not run.
# Needs $PY (tests/.venv's Python).

# A TCP port free on loopback right now.
free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# check_capture WHO PCAP: fails (status 1) when tshark sees segments missing from the
# capture (tcpdump dropped some); a capture is committed only whole. Without tshark, passes.
check_capture() {
  command -v tshark >/dev/null || return 0
  local lost
  lost=$(tshark -r "$2" -Y 'tcp.analysis.lost_segment || tcp.analysis.ack_lost_segment' 2>/dev/null | wc -l)
  if [ "$lost" -ne 0 ]; then
    echo "$1: $lost frames show segments missing from the capture; record it again" >&2
    return 1
  fi
}
