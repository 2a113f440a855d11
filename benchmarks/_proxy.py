"""A TCP proxy for benchmarks: adds latency to every request and counts the requests it forwards.

Put in front of ``moto_server`` it makes S3 figures reflect a real region's round trip: each
chunk either side sends reaches the other side ``delay_s`` after it arrived (a one-way delay),
so one HTTP request and its answer cost ``2 * delay_s`` more, and a new connection's set-up
adds nothing (the proxy accepts at once, as a load balancer near the client would). Requests are counted by method from the
request lines it sees (HTTP/1.1 on kept-alive connections).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import threading

_REQUEST_LINE = re.compile(rb"^(GET|PUT|POST|HEAD|DELETE) /", re.M)


class LatencyProxy:
    """``with LatencyProxy(target_port, delay_s) as proxy: ... proxy.url ... proxy.requests``."""

    def __init__(self, target_port: int, delay_s: float = 0.0, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        self.delay_s = delay_s
        self.requests: collections.Counter[str] = collections.Counter()
        self._loop = asyncio.new_event_loop()
        self._server = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="latency-proxy", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result()
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc) -> None:
        async def stop():
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:  # open connections' pipes: end them quietly
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def reset(self) -> None:
        self.requests.clear()

    async def _handle(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        with contextlib.suppress(asyncio.CancelledError):  # (cancelled when the proxy stops)
            await asyncio.gather(self._pipe(client_reader, server_writer, count=True),
                                 self._pipe(server_reader, client_writer, count=False))

    async def _pipe(self, reader, writer, count: bool) -> None:
        # Each chunk is forwarded delay_s after it arrived, not after the previous one was sent:
        # a one-way delay (a long wire), not a slow link, so pipelined chunks are not delayed twice.
        chunks: asyncio.Queue = asyncio.Queue()
        forwarder = asyncio.ensure_future(self._forward(chunks, writer))
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            while data := await reader.read(1 << 16):
                if count:
                    for method in _REQUEST_LINE.findall(data):
                        self.requests[method.decode()] += 1
                chunks.put_nowait((self._loop.time() + self.delay_s, data))
        chunks.put_nowait((self._loop.time() + self.delay_s, b""))
        try:
            await forwarder
        except (ConnectionError, asyncio.CancelledError):
            forwarder.cancel()

    async def _forward(self, chunks: asyncio.Queue, writer) -> None:
        try:
            while True:
                due, data = await chunks.get()
                if (wait := due - self._loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()
