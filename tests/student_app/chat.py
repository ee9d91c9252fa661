"""A student's chat app, not the auction: what `dispel watch` must explain in a student's own
terms. Rooms, acknowledgements with return values, a connect handler that checks a token, a
Namespace class, send(), emits to one client and to a room without the sender, an emit from
an HTTP route and from background tasks (one nested in a handler, one of its own), leaving
and closing rooms, a server-side disconnect, and a handler with a bug (it raises on an empty
list). Its page (/) joins room1 and says what is typed, with socket.io-client.

    python chat.py --port P [--async-mode threading|eventlet|gevent]
"""
import argparse
import os
import sys


def _async_mode():
    for i, a in enumerate(sys.argv):
        if a == "--async-mode" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    return "threading"


ASYNC_MODE = _async_mode()
if ASYNC_MODE == "eventlet":
    import eventlet
    eventlet.monkey_patch()
elif ASYNC_MODE == "gevent":
    from gevent import monkey
    monkey.patch_all()

from flask import Flask, abort, request, send_file  # noqa: E402
from flask_socketio import (  # noqa: E402
    ConnectionRefusedError, Namespace, SocketIO, close_room, disconnect, emit, join_room,
    leave_room, send,
)

app = Flask(__name__)
socketio = SocketIO(app, async_mode=ASYNC_MODE)
nicknames = {}


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Chat</title></head>
<body>
<p id="status">connecting</p>
<input id="room" value="room1"> <input id="text" placeholder="say something">
<button id="send">Say</button>
<ul id="log"></ul>
<script src="/static/socket.io.min.js"></script>
<script>
  var nick = "tab" + Math.floor(Math.random() * 1000);
  var socket = io({auth: {token: "letmein", nick: nick}});
  function log(s) {
    var li = document.createElement("li");
    li.textContent = s;
    document.getElementById("log").appendChild(li);
  }
  socket.on("connect", function () {
    socket.emit("join", document.getElementById("room").value, function (r) {
      document.getElementById("status").textContent = "in " + r.room;
    });
  });
  socket.on("said", function (m) { log(m.who + ": " + m.text); });
  socket.on("joined", function (m) { log(m.who + " joined"); });
  document.getElementById("send").addEventListener("click", function () {
    socket.emit("say", {room: document.getElementById("room").value,
                        text: document.getElementById("text").value},
                function (ack) { log("(" + ack + ")"); });
  });
</script>
</body></html>
"""
CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "node_modules",
                      "socket.io-client", "dist", "socket.io.min.js")


@app.route("/")
def page():
    return PAGE


@app.route("/static/socket.io.min.js")
def client_bundle():
    if not os.path.exists(CLIENT):
        abort(404)
    return send_file(os.path.abspath(CLIENT), mimetype="application/javascript")


@app.route("/announce/<text>")
def announce(text):
    socketio.emit("announcement", {"text": text})
    return "sent\n"


@socketio.on("connect")
def on_connect(auth):
    if not auth or auth.get("token") != "letmein":
        raise ConnectionRefusedError("bad token")
    nicknames[request.sid] = auth.get("nick", "anon")
    emit("welcome", {"you": nicknames[request.sid]}, to=request.sid)


@socketio.on("join")
def on_join(room):
    join_room(room)
    emit("joined", {"who": nicknames.get(request.sid), "room": room}, to=room,
         include_self=False)
    return {"ok": True, "room": room}


@socketio.on("say")
def on_say(data):
    emit("said", {"who": nicknames.get(request.sid), "text": data["text"]}, to=data["room"])
    return "delivered"


@socketio.on("shout")
def on_shout(text):
    send(text.upper(), broadcast=True)


@socketio.on("leave")
def on_leave(room):
    leave_room(room)
    return len(room)


@socketio.on("close")
def on_close(room):
    close_room(room)


@socketio.on("later")
def on_later(seconds):
    def tick():
        socketio.sleep(seconds)
        socketio.emit("tick", {"after": seconds})
    socketio.start_background_task(tick)


@socketio.on("average")
def on_average(scores):
    # A student's bug: an empty list divides by zero, the handler raises, no ack is sent.
    return sum(scores) / len(scores)


@socketio.on("bye")
def on_bye():
    disconnect()


class Lobby(Namespace):
    def on_connect(self, auth=None):
        emit("lobby", {"hello": request.sid})

    def on_ping(self, n):
        return n + 1, "pong"


socketio.on_namespace(Lobby("/chat"))


def countdown(n):
    # A background task of the app's own: no client's request, so no sender.
    for left in range(n, 0, -1):
        socketio.sleep(0.05)
        socketio.emit("left", {"n": left})


@socketio.on("countdown")
def on_countdown(n):
    socketio.start_background_task(countdown, n)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--async-mode", default="threading")
    args = parser.parse_args()
    socketio.run(app, port=args.port, allow_unsafe_werkzeug=True)
