"""A client on dispel, calls from a Flask-SocketIO worker about it, through the queue
(tests/it/mq.rs).

    mq_rooms.py REDIS_URL DISPEL DISPEL_URL FLASK_URL

The worker (tests/flask_app/app.py --message-queue, its /mq/ routes) puts the dispel client in
a room, emits to the room, takes it out, emits skipping it, asks it a question with a callback
and disconnects it; `DISPEL emit --to ROOM` emits to the room from outside. Prints, as JSON,
what each client received, the answers the worker's callback got, and whether the dispel client
was disconnected.
"""
import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import redis
import socketio


def wait_for(cond, secs, what):
    deadline = time.time() + secs
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    redis_url, dispel, dispel_url, flask_url = sys.argv[1:5]
    r = redis.Redis.from_url(redis_url)
    seen = {"d": [], "f": []}
    gone = []
    d, f = socketio.Client(), socketio.Client()
    for name, c in (("d", d), ("f", f)):
        c.on("notice", lambda data, name=name: seen[name].append(data))
    d.on("question", lambda data: "forty-two")
    d.on("disconnect", lambda *a: gone.append(True))
    d.connect(dispel_url, transports=["websocket"])
    f.connect(flask_url, transports=["websocket"])
    wait_for(lambda: r.pubsub_numsub("flask-socketio")[0][1] >= 2, 10, "subscriptions")
    sid = d.get_sid("/")

    def worker(path, **q):
        urllib.request.urlopen(f"{flask_url}/mq/{path}?{urllib.parse.urlencode(q)}").read()

    def emit(text, to):
        subprocess.run([dispel, "emit", "--message-queue", redis_url, "notice", json.dumps(text),
                        "--to", to], check=True, capture_output=True)

    worker("join", sid=sid, room="vip")
    emit("vip only", "vip")
    wait_for(lambda: "vip only" in seen["d"], 5, "the room emit")
    worker("leave", sid=sid, room="vip")
    emit("vip after leave", "vip")
    worker("emit", text="skipping you", skip=sid)
    wait_for(lambda: "skipping you" in seen["f"], 5, "the skip_sid emit")
    worker("join", sid=sid, room="temp")
    worker("close", room="temp")
    emit("temp after close", "temp")
    worker("ask", sid=sid)
    answers = []
    deadline = time.time() + 5
    while time.time() < deadline and not answers:
        answers = json.loads(urllib.request.urlopen(f"{flask_url}/mq/answers").read())
        time.sleep(0.05)
    worker("disconnect", sid=sid)
    wait_for(lambda: gone, 5, "the disconnect")
    time.sleep(0.3)  # anything that should not arrive would be here by now
    f.disconnect()
    print(json.dumps({"seen": seen, "answers": answers, "disconnected": bool(gone)}))


if __name__ == "__main__":
    main()
