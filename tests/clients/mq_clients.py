"""python-socketio clients on several servers that share one message queue (tests/it/mq.rs).

    mq_clients.py REDIS_URL DISPEL URL [URL...]

One client per URL, each listening for "replaced values" and "notice". Once every server is
subscribed to the channel: client 0 bids three times in a row, then every other client bids
once; `DISPEL emit` publishes a notice to everyone and one to the last client's sid alone.
Prints, as JSON: each client's sid and what it received, and every payload published on the
channel (read by a redis-py subscriber of its own).
"""
import json
import subprocess
import sys
import time

import redis
import socketio

CHANNEL = "flask-socketio"


def wait_for(cond, secs, what):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    redis_url, dispel, urls = sys.argv[1], sys.argv[2], sys.argv[3:]
    r = redis.Redis.from_url(redis_url)
    watcher = r.pubsub()
    watcher.subscribe(CHANNEL)
    clients, got = [], []
    for i, url in enumerate(urls):
        c = socketio.Client()
        seen = []
        c.on("replaced values", lambda data, seen=seen: seen.append(["replaced values", data]))
        c.on("notice", lambda data, seen=seen: seen.append(["notice", data]))
        c.connect(url, transports=["websocket"])
        clients.append(c)
        got.append(seen)
    # python-socketio subscribes when its server first needs the queue: wait for all of them
    # (and this script's own subscriber).
    wait_for(lambda: r.pubsub_numsub(CHANNEL)[0][1] >= len(urls) + 1, 10, "subscriptions")
    bids = []
    for n in range(3):
        bid = {"item": "lamp", "bid": n + 1, "bidder": "c0"}
        bids.append(bid)
        clients[0].emit("replace old value", bid)
    for i, c in enumerate(clients[1:], start=1):
        time.sleep(0.2)
        bid = {"item": "lamp", "bid": 10 + i, "bidder": f"c{i}"}
        bids.append(bid)
        c.emit("replace old value", bid)
    wait_for(lambda: all(len(s) >= len(bids) for s in got), 10, "the bids")
    emit = [dispel, "emit", "--message-queue", redis_url]
    subprocess.run(emit + ["notice", '"everyone"'], check=True, capture_output=True)
    last = clients[-1].get_sid("/")
    subprocess.run(emit + ["notice", '"just you"', "--to", last], check=True, capture_output=True)
    wait_for(lambda: len(got[-1]) >= len(bids) + 2, 10, "the notices")
    time.sleep(0.5)  # anything extra (a duplicate) would arrive by now
    published = []
    while True:
        m = watcher.get_message(timeout=0.2)
        if m is None:
            break
        if m["type"] == "message":
            published.append(m["data"].decode())
    out = {
        "sids": [c.get_sid("/") for c in clients],
        "got": got,
        "bids": bids,
        "published": published,
    }
    for c in clients:
        c.disconnect()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
