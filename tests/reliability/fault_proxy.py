"""A real HTTP proxy in front of ``moto_server`` that injects the faults a network and S3 have.

Each request is read whole, then either forwarded to moto and answered, or hit by one fault:

``503`` / ``500``
    answered with that S3 error (SlowDown / InternalError) without forwarding: nothing landed.
``reset-before``
    the client's TCP connection is reset (RST) before anything is forwarded.
``reset-after``
    the request is forwarded (a PUT lands) and then the connection is reset before the answer:
    the lost response to a write that happened.
``500-after``
    forwarded, then answered 500: a write that landed, reported as failed.
``delay``
    forwarded after a pause (0.05 to 0.5 s).

Faults are drawn at random (``rate``, ``seed``), or scripted one by one (:meth:`script`), or
all at once (:meth:`outage`: every request fails until it ends). ``injected`` counts what was
done, for the reliability figures. Only 127.0.0.1 is ever listened on or connected to.
"""

from __future__ import annotations

import contextlib
import html
import io
import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

KINDS = ("503", "500", "reset-before", "reset-after", "500-after", "delay")
_ERRORS = {"503": (503, "SlowDown"), "500": (500, "InternalError"), "500-after": (500, "InternalError")}
_NOT_FORWARDED = {"connection", "keep-alive", "transfer-encoding", "expect", "date", "server",
                  "content-length"}


class FaultProxy:
    """Listens on 127.0.0.1 at a free port (``url``); forwards to ``upstream`` (moto's URL).

    Args:
        upstream: the moto server, ``http://127.0.0.1:PORT``.
        rate: the chance that a request gets a random fault (0 to 1).
        seed: for the random draws, so a failing run can be repeated.
        kinds: which faults random draws choose from (default: all of :data:`KINDS`).
        only: if set, a predicate ``(method, path, headers) -> bool``: other requests pass untouched.
    """

    def __init__(self, upstream: str, rate: float = 0.0, seed: int = 0, kinds=KINDS, only=None):
        target = urlsplit(upstream)
        assert target.hostname in ("127.0.0.1", "localhost"), "the proxy only forwards to this machine"
        self._upstream = (target.hostname, target.port)
        self.rate = rate
        self.kinds = tuple(kinds)
        self.only = only
        self._random = random.Random(seed)
        self._script: list[str] = []
        self._down = 0
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def serve(self):
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = serve

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="fault-proxy")
        self._thread.start()

    # --- control ------------------------------------------------------------------

    def script(self, *kinds: str) -> None:
        """The next matching requests get these faults, in order (before any random draw)."""
        for kind in kinds:
            assert kind in KINDS, kind
        with self._lock:
            self._script.extend(kinds)

    @contextlib.contextmanager
    def outage(self, kind: str = "503"):
        """Every request fails with ``kind`` while the block runs (a persistent outage)."""
        with self._lock:
            self._down += 1
            self._outage_kind = kind
        try:
            yield
        finally:
            with self._lock:
                self._down -= 1

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # --- serving ------------------------------------------------------------------

    def _choose(self, handler) -> str | None:
        with self._lock:
            self.requests += 1
            if self.only is not None and not self.only(handler.command, handler.path, handler.headers):
                return None
            if self._down:
                kind = self._outage_kind
            elif self._script:
                kind = self._script.pop(0)
            elif self.rate and self._random.random() < self.rate:
                kind = self._random.choice(self.kinds)
            else:
                return None
            self.injected[kind] += 1
            return kind

    def _serve(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        kind = self._choose(handler)
        if kind == "reset-before":
            return _reset(handler)
        if kind in ("503", "500"):
            return _answer_error(handler, kind)
        if kind == "delay":
            time.sleep(self._random.uniform(0.05, 0.5))
        status, headers, payload = self._forward(handler, body)
        if kind == "reset-after":
            return _reset(handler)
        if kind == "500-after":
            return _answer_error(handler, kind)
        handler.send_response(status)
        for name, value in headers:
            if name.lower() not in _NOT_FORWARDED:
                handler.send_header(name, value)
        # A HEAD answer tells the size of what a GET would return, and carries no body.
        size = dict((k.lower(), v) for k, v in headers).get("content-length", "0") \
            if handler.command == "HEAD" else str(len(payload))
        handler.send_header("Content-Length", size)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(payload)

    def _forward(self, handler, body: bytes):
        conn = http.client.HTTPConnection(*self._upstream, timeout=120)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in _NOT_FORWARDED}
            if body or handler.command in ("PUT", "POST"):
                headers["Content-Length"] = str(len(body))
            conn.request(handler.command, handler.path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()


def _answer_error(handler, kind: str) -> None:
    status, code = _ERRORS[kind]
    payload = ('<?xml version="1.0" encoding="UTF-8"?>'
               f"<Error><Code>{code}</Code><Message>{html.escape('injected by the fault proxy')}</Message>"
               "<RequestId>fault-proxy</RequestId></Error>").encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/xml")
    handler.send_header("Content-Length", "0" if handler.command == "HEAD" else str(len(payload)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(payload)


def _reset(handler) -> None:
    """Close the client's connection with a TCP RST (SO_LINGER 0), answering nothing."""
    sock = handler.connection
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    handler.close_connection = True
    for stream in (handler.rfile, handler.wfile):
        try:
            stream.close()
        except OSError:
            pass
    sock.close()  # the last reference: the socket really closes, and the peer sees RST
    handler.wfile = io.BytesIO()  # what the handler still flushes after us goes nowhere
