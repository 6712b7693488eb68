"""A small local HTTP server for download tests: 127.0.0.1, an ephemeral port, one thread, bounded in time.

Each path serves a :class:`Route` that can misbehave the ways real servers do: honour or ignore ``Range``, cut the
connection after N bytes (once, or every time), answer 404 or 5xx, send an HTML page, trickle the body slowly.
Every request is logged (path and ``Range`` header) so tests can assert what the client asked for.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes
    status: int = 200
    content_type: str = "application/octet-stream"
    honour_range: bool = True
    cut_after: int | None = None    # send the full Content-Length header, then drop the connection after this
    cut_times: int = 1              # many body bytes, this many times; later requests are served normally
    fail_times: int = 0             # answer `fail_status` this many times before serving
    fail_status: int = 503
    trickle_bytes: int = 0          # send the body this many bytes at a time, sleeping trickle_s in between
    trickle_s: float = 0.0
    served: int = field(default=0)  # requests answered so far


@dataclass
class LoggedRequest:
    path: str
    range: str | None
    status: int


class FixtureServer:
    """``with FixtureServer() as server: server.routes["/a.zip"] = Route(data); url = server.url("/a.zip")``.

    Stops itself after ``hard_timeout`` seconds whatever happens, so a hung test cannot keep a thread alive.
    """

    def __init__(self, hard_timeout: float = 60.0, socket_timeout: float = 5.0):
        self.routes: dict[str, Route] = {}
        self.requests: list[LoggedRequest] = []
        self._lock = threading.Lock()
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            timeout = socket_timeout  # a client that stalls cannot hold a handler thread for long

            def log_message(self, *_args):  # keep pytest output clean
                pass

            def do_GET(self):  # noqa: N802 (http.server naming)
                fixture._serve(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._watchdog = threading.Timer(hard_timeout, self.stop)
        self._watchdog.daemon = True
        self._stopped = False

    # -- lifecycle
    def start(self) -> "FixtureServer":
        self._thread.start()
        self._watchdog.start()
        return self

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._watchdog.cancel()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "FixtureServer":
        return self.start()

    def __exit__(self, *_exc) -> None:
        self.stop()

    def url(self, path: str) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def requests_for(self, path: str) -> list[LoggedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- serving
    def _log(self, handler: BaseHTTPRequestHandler, status: int) -> None:
        with self._lock:
            self.requests.append(LoggedRequest(handler.path, handler.headers.get("Range"), status))

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        route = self.routes.get(handler.path)
        if route is None:
            return self._send(handler, 404, b"not found", "text/plain")
        with self._lock:
            route.served += 1
            attempt = route.served
        if attempt <= route.fail_times:
            return self._send(handler, route.fail_status, b"try again later", "text/plain")
        if route.status != 200:
            return self._send(handler, route.status, route.body, route.content_type)

        body, start = route.body, 0
        requested = handler.headers.get("Range")
        if requested and route.honour_range:
            start = self._range_start(requested)
            if start is None or start >= len(body):
                return self._send(handler, 416, b"", "text/plain",
                                  extra={"Content-Range": f"bytes */{len(body)}"})
        payload = body[start:]
        status = 206 if start else 200
        extra = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"} if status == 206 else {}
        cut = route.cut_after is not None and attempt - route.fail_times <= route.cut_times
        self._send(handler, status, payload, route.content_type, extra=extra,
                   cut_after=route.cut_after if cut else None, trickle=(route.trickle_bytes, route.trickle_s))

    @staticmethod
    def _range_start(value: str) -> int | None:
        unit, _, spec = value.partition("=")
        first = spec.split(",")[0].split("-")[0].strip()
        return int(first) if unit.strip() == "bytes" and first.isdigit() else None

    def _send(self, handler, status: int, payload: bytes, content_type: str, *, extra: dict | None = None,
              cut_after: int | None = None, trickle: tuple[int, float] = (0, 0.0)) -> None:
        self._log(handler, status)
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(payload)))
        handler.send_header("Accept-Ranges", "bytes")
        for name, value in (extra or {}).items():
            handler.send_header(name, value)
        handler.send_header("Connection", "close")
        handler.end_headers()
        if cut_after is not None:
            handler.wfile.write(payload[:cut_after])
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)  # the client sees the transfer end early
            return
        step, pause = trickle
        if not step:
            handler.wfile.write(payload)
            return
        try:
            for at in range(0, len(payload), step):
                handler.wfile.write(payload[at:at + step])
                handler.wfile.flush()
                time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a time limit): expected
            handler.close_connection = True
