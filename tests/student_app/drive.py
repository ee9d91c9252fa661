"""Drives tests/student_app/chat.py with python-socketio: every call the app makes happens once.

    python drive.py URL [--transports websocket|polling]

Prints one JSON line per check; exits non-zero on the first that fails.
"""
import argparse
import json
import sys
import threading
import time
import urllib.request

import socketio


def out(**f):
    print(json.dumps(f), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--transports", default="websocket")
    args = ap.parse_args()
    transports = args.transports.split(",")
    got = {"a": [], "b": []}
    events = {"a": threading.Event(), "b": threading.Event()}

    def client(name, nick):
        c = socketio.Client()

        @c.on("*")
        def any_event(event, *data):
            got[name].append((event, data))
            events[name].set()

        @c.on("*", namespace="/chat")
        def any_chat(event, *data):
            got[name].append(("/chat " + event, data))
            events[name].set()

        c.connect(args.url, auth={"token": "letmein", "nick": nick}, transports=transports,
                  namespaces=["/", "/chat"], wait_timeout=10)
        return c

    def wait_for(name, event, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for e, d in got[name]:
                if e == event:
                    return d
            events[name].wait(0.1)
            events[name].clear()
        raise SystemExit(f"drive: {name} never got {event!r}: {got[name]!r}")

    # A refused connection: the connect handler raises ConnectionRefusedError.
    bad = socketio.Client()
    try:
        bad.connect(args.url, auth={"token": "wrong"}, transports=transports, wait_timeout=5)
        raise SystemExit("drive: a bad token was accepted")
    except socketio.exceptions.ConnectionError as e:
        out(check="refused", error=str(e))

    a = client("a", "ana")
    b = client("b", "bob")
    wait_for("a", "welcome")
    wait_for("a", "/chat lobby")
    out(check="connected")
    ack = a.call("join", "room1", timeout=5)
    assert ack == {"ok": True, "room": "room1"}, ack
    b.call("join", "room1", timeout=5)
    wait_for("a", "joined")
    out(check="join", ack=ack)
    assert a.call("say", {"room": "room1", "text": "hi"}, timeout=5) == "delivered"
    wait_for("b", "said")
    out(check="say")
    a.emit("shout", "hello")
    wait_for("b", "message")
    out(check="send")
    assert a.call("ping", 41, namespace="/chat", timeout=5) == (42, "pong")
    out(check="namespace")
    assert a.call("leave", "room1", timeout=5) == 5
    a.emit("close", "room1")
    out(check="rooms")
    with urllib.request.urlopen(args.url + "/announce/news", timeout=5) as r:
        assert r.read() == b"sent\n"
    wait_for("a", "announcement")
    out(check="route")
    assert a.call("average", [4, 6], timeout=5) == 5
    try:
        a.call("average", [], timeout=1)
        raise SystemExit("drive: average of [] was acknowledged")
    except socketio.exceptions.TimeoutError:
        pass
    out(check="handler-raised")
    a.emit("later", 0.2)
    wait_for("b", "tick")
    out(check="background")
    a.emit("countdown", 2)
    wait_for("b", "left")
    out(check="task")
    b.emit("bye")
    deadline = time.time() + 5
    while b.connected and time.time() < deadline:
        time.sleep(0.05)
    out(check="disconnect", connected=b.connected)
    a.disconnect()
    b.disconnect()
    out(check="done")


if __name__ == "__main__":
    main()
