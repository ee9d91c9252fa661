"""An eventlet app with a handler that blocks: a long computation that never yields to the
hub stops every greenlet, the server's PING task among them, and its clients give up on it.

    python blocking.py --port P     (pingInterval 1 s, pingTimeout 1 s)
"""
import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import time  # noqa: E402

from flask import Flask  # noqa: E402
from flask_socketio import SocketIO  # noqa: E402

app = Flask(__name__)
socketio = SocketIO(app, async_mode="eventlet", ping_interval=1, ping_timeout=1)


@socketio.on("crunch")
def crunch(seconds):
    # Busy for `seconds` without a single socketio.sleep(): nothing else runs meanwhile.
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    socketio.run(app, port=args.port)
