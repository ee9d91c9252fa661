"""dispel watch's hook, loaded into the watched app's interpreter (through PYTHONPATH, as
`sitecustomize`) before the app's own code runs.

It does one thing: the first listening TCP socket the app binds to a port is moved to the
private loopback port dispel chose (DISPEL_WATCH_APP_PORT), and dispel is told which address
the app asked for (over DISPEL_WATCH_CONTROL), so that dispel listens there in the app's place
and every byte between the app and its clients passes through it. Nothing else in the app
changes. Written for dispel; not copied from anywhere.
"""
import json
import os
import socket
import sys

_CONTROL = os.environ.get("DISPEL_WATCH_CONTROL", "")
_APP_PORT = os.environ.get("DISPEL_WATCH_APP_PORT", "")
_HERE = os.path.dirname(os.path.abspath(__file__))


def _tell(message):
    """One JSON line to dispel; never lets a failure reach the app."""
    if not _CONTROL:
        return
    host, _, port = _CONTROL.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall((json.dumps(message) + "\n").encode())
    except (OSError, ValueError):
        pass


_bind = socket.socket.bind
_moved = []


def _watched_bind(self, address):
    if (
        _APP_PORT
        and not _moved
        and self.family in (socket.AF_INET, socket.AF_INET6)
        and self.type == socket.SOCK_STREAM
        and isinstance(address, tuple)
        and len(address) >= 2
        and address[1]
    ):
        _moved.append(address)
        private = "127.0.0.1" if self.family == socket.AF_INET else "::1"
        _tell({"event": "bind", "host": address[0], "port": address[1], "pid": os.getpid(),
               "python": sys.version.split()[0], "argv": sys.argv})
        address = (private, int(_APP_PORT)) + tuple(address[2:])
    return _bind(self, address)


socket.socket.bind = _watched_bind


def _chain():
    """Runs the sitecustomize this one stands in front of, if the interpreter has one."""
    import importlib.machinery
    import importlib.util

    path = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", path)
    if spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # the app's own sitecustomize failing is not dispel's to hide
        sys.stderr.write(f"dispel watch: the interpreter's own sitecustomize failed: {e!r}\n")


_chain()
