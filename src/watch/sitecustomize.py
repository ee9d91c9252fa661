"""dispel watch's hook, loaded into the watched app's interpreter (through PYTHONPATH, as
`sitecustomize`) before the app's own code runs.

1. The first listening TCP socket the app binds to a port is moved to the private loopback
   port dispel chose (DISPEL_WATCH_APP_PORT), and dispel is told which address the app asked
   for (over DISPEL_WATCH_CONTROL), so that dispel listens there in the app's place and every
   byte between the app and its clients passes through it.
2. Unless DISPEL_WATCH_TRACE is 0, the calls that matter in the Flask-SocketIO stack are
   observed (see `_Tracer`): each handler call, each Socket.IO call the app's code makes (emit,
   send, join/leave/close room, disconnect), each acknowledgement and CONNECT answer, with the
   chain of calls that led there and the library calls it made, at the installed versions'
   real lines. They go to dispel as JSON lines over one connection per process.

What the app does is unchanged: the wrappers call the originals with the same arguments and
return what they return. Written for dispel; not copied from anywhere.
"""
import _socket
import json
import os
import socket
import sys
import threading
import time

_CONTROL = os.environ.get("DISPEL_WATCH_CONTROL", "")
_APP_PORT = os.environ.get("DISPEL_WATCH_APP_PORT", "")
_HERE = os.path.dirname(os.path.abspath(__file__))


def _connect():
    """A connection to dispel's control address (a numeric loopback address), made with the C
    socket module: eventlet and gevent patch `socket`, never `_socket`, so this is a real,
    blocking socket whatever the app's async mode, and no resolver or hub is involved."""
    host, _, port = _CONTROL.rpartition(":")
    family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
    s = _socket.socket(family, _socket.SOCK_STREAM)
    try:
        s.settimeout(5)
        s.connect((host.strip("[]"), int(port)))
    except BaseException:
        s.close()
        raise
    return s


def _tell(message):
    """One JSON line to dispel; never lets a failure reach the app."""
    if not _CONTROL:
        return
    try:
        s = _connect()
        try:
            s.sendall((json.dumps(message) + "\n").encode())
        finally:
            s.close()
    except (OSError, ValueError):
        pass


_moved = []


def _watched(bind):
    """`bind`, moving the app's first listening address to the private port."""

    def watched_bind(self, address):
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
        return bind(self, address)

    return watched_bind


socket.socket.bind = _watched(socket.socket.bind)


def _move_green_binds(name, module):
    """eventlet and gevent bind through socket classes of their own."""
    if name == "eventlet.greenio.base":
        # eventlet's sockets wrap a fresh copy of the socket module's class.
        cls = module._original_socket
        cls.bind = _watched(cls.bind)
    elif name == "gevent._socketcommon":
        module.SocketMixin.bind = _watched(module.SocketMixin.bind)


class _Link:
    """One connection to dispel per process. The app's threads only queue their messages; a
    thread of the link's own encodes and writes them, so a busy app never waits on dispel.
    The thread and the socket are made with the modules as they were before the app could
    monkey-patch them (eventlet, gevent): a real thread, a real socket. Lost, it stays lost."""

    def __init__(self):
        self.queue = None
        self.pid = None
        self.dead = False
        self.lock = threading.Lock()

    def send(self, message):
        if self.dead or not _CONTROL:
            return
        if self.pid != os.getpid():
            # First use, or a forked child (gunicorn workers): a thread of its own.
            with self.lock:
                if self.pid != os.getpid():
                    self.queue = _SimpleQueue()
                    self.pid = os.getpid()
                    _start_thread(self._run, (self.queue,))
        self.queue.put(message)

    def _run(self, q):
        try:
            sock = _connect()
            sock.settimeout(None)
        except (OSError, ValueError):
            self.dead = True
            return
        while True:
            batch = [q.get()]
            while len(batch) < 256:
                try:
                    batch.append(q.get_nowait())
                except Exception:
                    break
            data = "".join(json.dumps(m, default=repr) + "\n" for m in batch).encode()
            try:
                sock.sendall(data)
            except OSError:
                self.dead = True
                return


import _thread  # noqa: E402
import queue as _queue  # noqa: E402

_start_thread = _thread.start_new_thread
_SimpleQueue = _queue.SimpleQueue
_link = _Link()

# The packages whose frames make a chain, as their top-level modules.
_STACK = {
    "flask_socketio", "socketio", "engineio", "simple_websocket", "wsproto", "h11",
    "werkzeug", "flask", "eventlet", "gevent", "geventwebsocket", "gunicorn",
}
# A queue's put: where the way down from a send stops (queue.py of the standard library,
# eventlet or gevent).
_PUTS = {"put", "put_nowait"}
# Standard-library modules that carry a connection to the app (the threading server).
_STDLIB = {"socketserver.py", "threading.py", "queue.py", "http/server.py"}


class _Places:
    """Where a code object lives: the student's file, a package at a version, the stdlib."""

    def __init__(self):
        import sysconfig

        self._app_dir = None
        # Python files outside these are the app's own, wherever they are.
        self.not_app = tuple(
            os.path.realpath(p) + os.sep
            for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, _HERE}
        )
        self.stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
        self.roots = sorted(
            {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p) and "-packages" in p},
            key=len, reverse=True,
        )
        self.cache = {}
        self.dists = None
        self.python = ".".join(str(v) for v in sys.version_info[:3])

    @property
    def app_dir(self):
        """The app's files are named from the directory of its script (`python app.py`), or
        from the working directory when a launcher's script starts it (gunicorn, flask run),
        as it is once the app runs (gunicorn --chdir)."""
        if self._app_dir is None:
            script = sys.argv[0] if sys.argv else ""
            if script.endswith(".py"):
                self._app_dir = os.path.dirname(os.path.realpath(script))
            else:
                self._app_dir = os.path.realpath(os.getcwd())
        return self._app_dir

    def _dist(self, top):
        if self.dists is None:
            try:
                from importlib import metadata

                self.dists = metadata.packages_distributions()
                self.metadata = metadata
            except Exception:
                self.dists = {}
        names = self.dists.get(top) or []
        if not names:
            return None, None
        name = names[0]
        try:
            return name, self.metadata.version(name)
        except Exception:
            return name, None

    def of(self, filename):
        """(package, version, path) or None when the frame is not part of a chain."""
        if filename in self.cache:
            return self.cache[filename]
        place = None
        real = os.path.realpath(filename)
        for root in self.roots:
            if real.startswith(root + os.sep):
                rel = real[len(root) + 1:].replace(os.sep, "/")
                top = rel.split("/", 1)[0]
                if top.endswith(".py"):
                    top = top[:-3]
                if top in _STACK:
                    name, version = self._dist(top)
                    place = (name or top, version, rel)
                break
        else:
            if real.startswith(self.stdlib + os.sep):
                rel = real[len(self.stdlib) + 1:].replace(os.sep, "/")
                if rel in _STDLIB:
                    place = ("cpython", self.python, "Lib/" + rel)
            elif real.endswith(".py") and not real.startswith(self.not_app):
                if real.startswith(self.app_dir + os.sep):
                    rel = real[len(self.app_dir) + 1:]
                else:
                    rel = real
                place = (None, None, rel.replace(os.sep, "/"))
        self.cache[filename] = place
        return place

    def def_line(self, code):
        """The line of a function's `def` (its code starts at its first decorator)."""
        key = ("def", code)
        if key in self.cache:
            return self.cache[key]
        import linecache

        line = code.co_firstlineno
        for n in range(code.co_firstlineno, code.co_firstlineno + 20):
            text = linecache.getline(code.co_filename, n).lstrip()
            if text.startswith(("def ", "async def ", "class ")):
                line = n
                break
        self.cache[key] = line
        return line



class _Tracer:
    """Wraps the few functions that say what the app did, once their modules are imported."""

    def __init__(self):
        self.places = _Places()
        self.local = threading.local()
        self.hello_sent = False
        self.chains = {}
        self.chain_lock = threading.Lock()
        self.frames = {}
        self.below = {}

    # -- chains ----------------------------------------------------------------------------
    # A chain goes to dispel once, as {"event": "chain", "id": N, "frames": [...]}; the events
    # that follow name it by its number. A busy app repeats the same few chains: this keeps
    # both the app's cost and what it sends small.
    def intern(self, frames):
        key = tuple(frames)
        with self.chain_lock:
            n = self.chains.get(key)
            if n is not None:
                return n
            n = len(self.chains) + 1
            self.chains[key] = n
        _link.send({"event": "chain", "id": n, "frames": [
            {"package": p, "version": v, "path": path, "line": line, "function": fn}
            for (p, v, path, line, fn) in frames]})
        return n

    def frame(self, code, line):
        """A frame as a tuple (package, version, path, line, function), or None."""
        key = (code, line)
        fr = self.frames.get(key, False)
        if fr is False:
            place = self.places.of(code.co_filename)
            fr = None if place is None else place + (line, getattr(code, "co_qualname", code.co_name))
            self.frames[key] = fr
        return fr

    def callers(self, skip):
        """The chain that led here, outermost first: the frames of the stack and the app."""
        frames = []
        f = sys._getframe(skip)
        while f is not None:
            fr = self.frame(f.f_code, f.f_lineno)
            if fr is not None:
                frames.append(fr)
            f = f.f_back
        frames.reverse()
        return frames

    def callees(self, where, fn, *args, **kwargs):
        """Calls fn, noting the library functions it called (each once, in call order). The
        way down from one place in the code is the same each time: it is followed the first
        few times only, then remembered."""
        known = self.below.get(where)
        if known is not None and known[0] >= 3:
            return fn(*args, **kwargs), known[1]
        seen = []
        codes = set()
        tracer = self
        calls = [0]

        previous = sys.getprofile()
        if previous is not None and not callable(previous):
            # A profiler written in C (cProfile) is running: it is left alone.
            return fn(*args, **kwargs), (known[1] if known is not None else self.intern([]))

        # The way down ends at the queue a packet is put on: what takes it off is another
        # thread's (or green thread's) work, and a green switch inside put() would otherwise
        # show the hub and whatever else it runs meanwhile as this call's.
        queued = [None]

        def profile(frame, event, arg):
            # An app's own profiler (sys.setprofile) still sees every call.
            if previous is not None:
                previous(frame, event, arg)
            if queued[0] is not None:
                if event == "return" and frame is queued[0]:
                    queued[0] = None
                return
            if event != "call":
                return
            calls[0] += 1
            # The way down is the same for every recipient of a broadcast: after the first
            # few hundred calls the rest of it runs without the profiler.
            if calls[0] > 300 or len(seen) >= 60:
                sys.setprofile(previous)
                return
            code = frame.f_code
            if code not in codes and not code.co_name.startswith("<"):
                codes.add(code)
                fr = tracer.frame(code, tracer.places.def_line(code))
                if fr is not None and fr[0] is not None:
                    seen.append(fr)
            if code.co_name in _PUTS and code.co_filename.endswith("queue.py"):
                queued[0] = frame

        sys.setprofile(profile)
        try:
            result = fn(*args, **kwargs)
        finally:
            sys.setprofile(previous)
        n = self.intern(seen)
        self.below[where] = ((known[0] + 1) if known is not None else 1, n)
        return result, n

    # -- what is sent ------------------------------------------------------------------------
    def hello(self, server):
        if self.hello_sent:
            return
        self.hello_sent = True
        versions = {}
        urls = {}
        try:
            from importlib import metadata

            for name in ("Flask-SocketIO", "python-socketio", "python-engineio", "simple-websocket",
                         "wsproto", "h11", "Werkzeug", "Flask", "eventlet", "gevent", "gevent-websocket",
                         "gunicorn"):
                try:
                    versions[name] = metadata.version(name)
                    meta = metadata.metadata(name)
                    urls[name] = [u for u in (meta.get_all("Project-URL") or [])] + (
                        ["Home-page, " + meta["Home-page"]] if meta.get("Home-page") else [])
                except Exception:
                    pass
        except Exception:
            pass
        _link.send({"event": "hello", "pid": os.getpid(), "python": self.places.python,
                    "async_mode": getattr(server, "async_mode", None), "versions": versions,
                    "urls": urls, "app_dir": self.places.app_dir,
                    "executable": sys.executable, "t": time.time()})

    def send(self, message, t=None):
        """`t`: when it happened, if not now (a call is reported once it returns, with the
        time it began: its bytes were written in between)."""
        message["t"] = time.time() if t is None else t
        message["pid"] = os.getpid()
        message["thread"] = threading.current_thread().name
        _link.send(message)

    # -- the wrappers ------------------------------------------------------------------------
    def busy(self):
        return getattr(self.local, "busy", False)

    def wrap_handle_event(self, original):
        tracer = self

        def _handle_event(self, handler, message, namespace, sid, *args):
            chain = tracer.callers(2)
            code = getattr(handler, "__code__", None)
            if code is not None:
                fr = tracer.frame(code, tracer.places.def_line(code))
                if fr is not None:
                    chain.append(fr)
            chain = tracer.intern(chain)
            eio_sid = None
            try:
                eio_sid = self.server.manager.eio_sid_from_sid(sid, namespace or "/")
            except Exception:
                pass
            note = {"event": "handler", "message": message, "namespace": namespace or "/",
                    "sid": sid, "eio_sid": eio_sid,
                    "handler": getattr(handler, "__qualname__", repr(handler)), "chain": chain}
            # Sent before the handler runs, so what it does comes after it in the trace.
            tracer.send(note)
            try:
                return original(self, handler, message, namespace, sid, *args)
            except BaseException as e:
                # The app's line that raised: the deepest frame of the traceback in the
                # handler's own file.
                at = None
                tb = e.__traceback__
                while tb is not None:
                    if code is not None and tb.tb_frame.f_code.co_filename == code.co_filename:
                        at = tb.tb_lineno
                    tb = tb.tb_next
                tracer.send({"event": "raised", "message": message,
                             "namespace": namespace or "/", "sid": sid, "eio_sid": eio_sid,
                             "handler": note["handler"], "raised": type(e).__name__,
                             "args": [_brief(a) for a in e.args], "chain": chain, "at": at})
                raise

        return _handle_event

    def wrap_call(self, original, kind):
        """A Socket.IO call of the app's code (emit, send, join_room...)."""
        tracer = self

        def call(*args, **kwargs):
            if tracer.busy():
                return original(*args, **kwargs)
            tracer.local.busy = True
            tracer.local.recipients = []
            began = time.time()
            try:
                caller = sys._getframe(1)
                where = (kind, caller.f_code, caller.f_lineno)
                chain = tracer.intern(tracer.callers(2))
                # Who is asking, before the call (a disconnect forgets the client).
                context = {}
                try:
                    from flask import current_app, request

                    sid = getattr(request, "sid", None)
                    namespace = getattr(request, "namespace", None) or "/"
                    context["sid"] = sid
                    context["namespace"] = namespace
                    server = current_app.extensions["socketio"].server
                    context["eio_sid"] = server.manager.eio_sid_from_sid(sid, namespace)
                except Exception:
                    pass
                result, below = tracer.callees(where, original, *args, **kwargs)
                note = {"event": "call", "call": kind, "args": [_brief(a) for a in args],
                        "kwargs": {k: _brief(v) for k, v in kwargs.items()},
                        "chain": chain, "below": below,
                        # A binary event is several Engine.IO packets to each recipient.
                        "recipients": list(dict.fromkeys(tracer.local.recipients))}
                note.update(context)
                tracer.send(note, began)
                return result
            finally:
                tracer.local.busy = False

        return call

    def wrap_send_packet(self, original):
        """The Engine.IO send of each packet: who received what a call emitted."""
        tracer = self

        def send_packet(self, sid, pkt):
            if tracer.busy():
                tracer.local.recipients.append(sid)
            return original(self, sid, pkt)

        return send_packet

    def wrap_sio_send_packet(self, original):
        """python-socketio's own answers: acknowledgements and CONNECT / CONNECT_ERROR."""
        tracer = self

        def _send_packet(self, eio_sid, pkt):
            kind = {0: "connect", 3: "ack", 4: "connect_error", 6: "ack"}.get(
                getattr(pkt, "packet_type", None))
            if kind is None or tracer.busy():
                return original(self, eio_sid, pkt)
            began = time.time()
            caller = sys._getframe(1)
            chain = tracer.intern(tracer.callers(2))
            where = (kind, caller.f_code, caller.f_lineno)
            result, below = tracer.callees(where, original, self, eio_sid, pkt)
            tracer.send({"event": "answer", "answer": kind, "eio_sid": eio_sid,
                         "namespace": getattr(pkt, "namespace", None) or "/",
                         "id": getattr(pkt, "id", None), "data": _brief(getattr(pkt, "data", None)),
                         "chain": chain, "below": below}, began)
            return result

        return _send_packet

    def wrap_publish(self, original):
        """A message-queue manager's publish (RedisManager._publish and the like)."""
        tracer = self

        def _publish(self, data, *args, **kwargs):
            try:
                chain = tracer.intern(tracer.callers(2))
                tracer.send({"event": "mq", "dir": "publish",
                             "channel": getattr(self, "channel", None),
                             "host_id": getattr(self, "host_id", None),
                             "message": _brief(data), "chain": chain})
            except Exception:
                pass
            return original(self, data, *args, **kwargs)

        return _publish

    def wrap_mq_handle(self, original):
        """What the listener does with another process's message: who it reached here."""
        tracer = self

        def handle(self, message, *args, **kwargs):
            own = isinstance(message, dict) and message.get("host_id") == getattr(
                self, "host_id", None)
            if tracer.busy() or own:
                # This process's own emit, delivered before it is published: the app's call
                # already reports it.
                return original(self, message, *args, **kwargs)
            tracer.local.busy = True
            tracer.local.recipients = []
            began = time.time()
            try:
                return original(self, message, *args, **kwargs)
            finally:
                tracer.local.busy = False
                try:
                    tracer.send({"event": "mq", "dir": "message",
                                 "channel": getattr(self, "channel", None),
                                 "host_id": getattr(self, "host_id", None),
                                 "message": _brief(message),
                                 "recipients": list(dict.fromkeys(tracer.local.recipients))},
                                began)
                except Exception:
                    pass

        return handle

    def wrap_init_app(self, original):
        tracer = self

        def init_app(self, app, **kwargs):
            result = original(self, app, **kwargs)
            try:
                tracer.hello(self.server)
            except Exception:
                pass
            return result

        return init_app

    # -- installing --------------------------------------------------------------------------
    def patch(self, name, module):
        try:
            if name == "flask_socketio":
                cls = module.SocketIO
                cls._handle_event = self.wrap_handle_event(cls._handle_event)
                cls.init_app = self.wrap_init_app(cls.init_app)
                cls.emit = self.wrap_call(cls.emit, "SocketIO.emit")
                cls.send = self.wrap_call(cls.send, "SocketIO.send")
                for fn in ("emit", "send", "join_room", "leave_room", "close_room", "disconnect"):
                    if hasattr(module, fn):
                        setattr(module, fn, self.wrap_call(getattr(module, fn), fn))
            elif name == "socketio.server":
                module.Server._send_packet = self.wrap_sio_send_packet(module.Server._send_packet)
            elif name == "engineio.server":
                module.Server.send_packet = self.wrap_send_packet(module.Server.send_packet)
            elif name == "socketio.pubsub_manager":
                cls = module.PubSubManager
                for fn in ("_handle_emit", "_handle_disconnect", "_handle_enter_room",
                           "_handle_leave_room", "_handle_close_room"):
                    if hasattr(cls, fn):
                        setattr(cls, fn, self.wrap_mq_handle(getattr(cls, fn)))
            elif name in _MQ_MANAGERS:
                cls = getattr(module, _MQ_MANAGERS[name], None)
                if cls is not None and "_publish" in cls.__dict__:
                    cls._publish = self.wrap_publish(cls._publish)
        except Exception as e:
            _link.send({"event": "tracer_error", "module": name, "error": repr(e)})


# The message-queue managers of python-socketio, by module: each publishes its own way.
_MQ_MANAGERS = {"socketio.redis_manager": "RedisManager", "socketio.kombu_manager": "KombuManager",
                "socketio.zmq_manager": "ZmqManager", "socketio.kafka_manager": "KafkaManager"}


def _brief(value):
    """A value as JSON can carry it, cut short."""
    if isinstance(value, (bytes, bytearray)):
        return {"_bytes": len(value)}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value if not isinstance(value, str) or len(value) < 500 else value[:500] + "..."
    if isinstance(value, (list, tuple)):
        return [_brief(v) for v in value[:20]]
    if isinstance(value, dict):
        return {str(k): _brief(v) for k, v in list(value.items())[:20]}
    if callable(value):
        return {"_callable": getattr(value, "__qualname__", repr(value))}
    return repr(value)[:200]


class _Finder:
    """Patches the watched modules as soon as they are imported."""

    def __init__(self, tracer):
        self.tracer = tracer
        self.busy = set()
        self.targets = {"eventlet.greenio.base", "gevent._socketcommon"}
        if tracer is not None:
            self.targets |= {"flask_socketio", "socketio.server", "engineio.server",
                             "socketio.pubsub_manager"} | set(_MQ_MANAGERS)

    def find_spec(self, name, path=None, target=None):
        if name not in self.targets or name in self.busy:
            return None
        import importlib.util

        self.busy.add(name)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy.discard(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader, tracer = spec.loader, self.tracer

        class Loader:
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                loader.exec_module(module)
                try:
                    _move_green_binds(name, module)
                except Exception:
                    pass
                if tracer is not None:
                    tracer.patch(name, module)

        spec.loader = Loader()
        return spec


if _CONTROL:
    try:
        _tracing = os.environ.get("DISPEL_WATCH_TRACE", "1") != "0"
        sys.meta_path.insert(0, _Finder(_Tracer() if _tracing else None))
    except Exception as e:  # never stop the app
        sys.stderr.write(f"dispel watch: the tracer cannot attach ({e!r}); narrating the wire only\n")


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
