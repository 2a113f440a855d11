"""What only the S3 backend has: the batch chain, S3 errors, retries, credentials, endpoints.

All of it runs over HTTP against a real moto_server (see tests/conftest.py);
retries go through :class:`FaultProxy`, a small HTTP proxy that answers with
scripted failures before (or after) forwarding to moto.
"""

from __future__ import annotations

import asyncio
import html
import http.client
import pickle
import threading
import traceback
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlsplit

import pytest

from storage_backends import (
    AppendConflictError,
    BucketNotFoundError,
    LogCorruptedError,
    S3Storage,
    StorageError,
    UnknownSchemeError,
    open_storage,
)
from storage_backends import _s3
from storage_backends._framing import encode_batch


def new_id() -> str:
    return "log-" + uuid.uuid4().hex[:12]


def bucket_and_prefix(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.netloc, parts.path.strip("/")


def batch_key(url: str, log_id: str, seq: int) -> str:
    return f"{bucket_and_prefix(url)[1]}/logs/{log_id}/{seq:020d}"


def blob_key(url: str, log_id: str, name: str) -> str:
    return f"{bucket_and_prefix(url)[1]}/blobs/{log_id}/{name}"


def all_keys(admin, bucket: str, prefix: str = "") -> list[str]:
    pages = admin.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", ())]


def raw_keys(admin, url: str, log_id: str) -> list[str]:
    """Every object of the log: its batches, then its blobs."""
    bucket, prefix = bucket_and_prefix(url)
    return [key for root in ("logs", "blobs") for key in all_keys(admin, bucket, f"{prefix}/{root}/{log_id}/")]


async def read_until_error(storage, log_id: str, from_seq: int = 0):
    """The records a read yields before it raises, and what it raised (None if it did not)."""
    got = []
    try:
        async for record in storage.read(log_id, from_seq):
            got.append(record)
    except Exception as err:  # noqa: BLE001 - the test inspects it
        return got, err
    return got, None


@pytest.fixture
async def storage(s3_url, s3_options):
    storage = open_storage(s3_url, **s3_options)
    try:
        yield storage
    finally:
        await storage.close()


# --- the fault proxy -----------------------------------------------------------


@dataclass
class Fault:
    """One scripted failure: answer ``status``/``code`` instead of (or after) forwarding.

    Attributes:
        status, code: the HTTP status and S3 error code answered.
        method: only requests with this method match (None: any).
        conditional: only conditional writes (``If-None-Match``) match.
        forward: forward the request to moto first, then still answer the failure
            (the client sees an error although the write landed).
        before: called (in the proxy thread) before answering, e.g. to race a write.
        message: the error message in the answered body, or a function of the request headers.
    """

    status: int = 503
    code: str = "ServiceUnavailable"
    method: str | None = None
    conditional: bool = False
    forward: bool = False
    before: Callable[[], None] | None = None
    message: str | Callable[[dict], str] = "injected by the test proxy"

    def matches(self, method: str, headers) -> bool:
        if self.method is not None and method != self.method:
            return False
        return not self.conditional or headers.get("If-None-Match") is not None


class FaultProxy:
    """An HTTP proxy on 127.0.0.1 (free port) in front of moto that injects :class:`Fault` s in order."""

    _HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "date", "server"}

    def __init__(self, upstream: str):
        self._upstream = urlsplit(upstream)
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.seen: list[tuple[str, str, str]] = []  # (method, path, what the proxy did)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def handle_one(self):
                proxy._serve(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._faults)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take(self, method: str, headers) -> Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.matches(method, headers):
                    return self._faults.pop(i)
        return None

    def _forward(self, handler, body: bytes):
        conn = http.client.HTTPConnection(self._upstream.hostname, self._upstream.port, timeout=60)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in self._HOP_BY_HOP}
            conn.request(handler.command, handler.path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            conn.close()

    def _serve(self, handler) -> None:
        assert "chunked" not in handler.headers.get("Transfer-Encoding", ""), "proxy expects sized bodies"
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        fault = self._take(handler.command, handler.headers)
        if fault is None or fault.forward:
            status, headers, payload = self._forward(handler, body)
            did = "forwarded"
        if fault is not None:
            if fault.before is not None:
                fault.before()
            message = fault.message(dict(handler.headers)) if callable(fault.message) else fault.message
            status, payload = fault.status, (
                '<?xml version="1.0" encoding="UTF-8"?>'
                f"<Error><Code>{fault.code}</Code><Message>{html.escape(message)}</Message>"
                "<RequestId>proxy</RequestId></Error>"
            ).encode()
            headers = [("Content-Type", "application/xml")]
            did = f"{'forwarded, then ' if fault.forward else ''}{fault.status} {fault.code}"
        with self._lock:
            self.seen.append((handler.command, handler.path, did))
        handler.send_response(status)
        sized = False
        for name, value in headers:
            if name.lower() in self._HOP_BY_HOP:
                continue
            if name.lower() == "content-length":
                if handler.command != "HEAD" or fault is not None:
                    continue
                sized = True
            handler.send_header(name, value)
        if handler.command == "HEAD":
            if not sized:
                handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)


@pytest.fixture
def fault_proxy(moto_server):
    proxy = FaultProxy(moto_server)
    try:
        yield proxy
    finally:
        proxy.close()


# --- moto itself ----------------------------------------------------------------


def test_moto_server_honours_if_none_match(s3_admin, s3_url):
    """The whole design rests on conditional PUTs; make sure the test server really has them."""
    bucket, _ = bucket_and_prefix(s3_url)
    s3_admin.put_object(Bucket=bucket, Key="k", Body=b"1", IfNoneMatch="*")
    with pytest.raises(s3_admin.exceptions.ClientError) as info:
        s3_admin.put_object(Bucket=bucket, Key="k", Body=b"2", IfNoneMatch="*")
    assert info.value.response["Error"]["Code"] == "PreconditionFailed"
    assert s3_admin.get_object(Bucket=bucket, Key="k")["Body"].read() == b"1"


# --- URLs, options, registry ------------------------------------------------------


def test_url_forms():
    plain = open_storage("s3://my-bucket")
    assert isinstance(plain, S3Storage)
    assert (plain.bucket, plain.prefix, plain.url) == ("my-bucket", "", "s3://my-bucket")
    nested = open_storage("s3://my-bucket/a/b/", region_name="eu-west-1")
    assert (nested.prefix, nested.url) == ("a/b", "s3://my-bucket/a/b")
    assert repr(nested) == "S3Storage('s3://my-bucket/a/b')"


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://bad bucket/p", "s3://b/p?endpoint_url=x"])
def test_bad_urls_are_refused(url):
    with pytest.raises(StorageError):
        open_storage(url)


def test_unknown_or_bad_options_are_refused():
    with pytest.raises(TypeError) as info:
        open_storage("s3://b/p", endpoint="http://x")
    assert "endpoint_url" in str(info.value)
    with pytest.raises(ValueError, match="max_attempts"):
        open_storage("s3://b/p", max_attempts=0)


def test_unknown_scheme_still_errors_clearly():
    with pytest.raises(UnknownSchemeError) as info:
        open_storage("gs://bucket/prefix")
    message = str(info.value)
    assert "'gs'" in message and "s3" in message and "file" in message


# --- credentials never leak ---------------------------------------------------------

FAKE_KEY_ID = "AKIAFAKEFAKE12345678"
FAKE_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYFAKESECRET"
FAKE_TOKEN = "FwoGZXIvYXdzEFakeSessionToken+with/odd=chars"


@pytest.fixture
def fake_creds(monkeypatch, moto_server):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)
    monkeypatch.delenv("AWS_SECURITY_TOKEN", raising=False)  # botocore would prefer it


def assert_no_creds(*texts: str) -> None:
    for text in texts:
        for secret in (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN):
            assert secret not in text, f"credential leaked into: {text}"


def everything_about(err: BaseException) -> list[str]:
    return [str(err), repr(err), "".join(traceback.format_exception(err))]


def test_credentials_in_the_url_are_refused_without_echoing_them():
    with pytest.raises(StorageError) as info:
        open_storage(f"s3://{FAKE_KEY_ID}:{FAKE_SECRET}@bucket/prefix")
    assert_no_creds(*everything_about(info.value))


async def test_no_credentials_in_errors_or_repr(fake_creds, s3_url, moto_server, fault_proxy):
    bucket, _ = bucket_and_prefix(s3_url)
    explicit = open_storage(
        s3_url, endpoint_url=f"http://{FAKE_KEY_ID}:{FAKE_SECRET}@127.0.0.1:1",
        aws_access_key_id=FAKE_KEY_ID, aws_secret_access_key=FAKE_SECRET, aws_session_token=FAKE_TOKEN,
    )
    assert_no_creds(repr(explicit), str(explicit), explicit.url)

    # A missing bucket.
    missing = open_storage(f"s3://no-bucket-{uuid.uuid4().hex[:8]}/p", endpoint_url=moto_server)
    with pytest.raises(BucketNotFoundError) as info:
        await missing.next_seq("x")
    assert_no_creds(*everything_about(info.value), repr(missing))
    await missing.close()

    # A server that echoes the request's credentials back in its error message
    # (and, to exercise the scrubbing, the secret key, which never travels).
    storage = open_storage(s3_url, endpoint_url=fault_proxy.url, max_attempts=1)
    await storage.next_seq("warm-up")  # the client and its bucket check, without faults

    def echo(headers: dict) -> str:
        assert FAKE_KEY_ID in headers["Authorization"] and headers["X-Amz-Security-Token"] == FAKE_TOKEN
        return (f"denied: {headers['Authorization']} token {headers['X-Amz-Security-Token']} "
                f"secret {FAKE_SECRET} id {FAKE_KEY_ID}")

    fault_proxy.add(Fault(status=403, code="AccessDenied", method="PUT", message=echo))
    with pytest.raises(StorageError) as info:
        await storage.put_blob("log-1", "b", b"data")
    texts = everything_about(info.value)
    assert_no_creds(*texts, repr(storage))
    assert "AccessDenied" in texts[0] and "put_blob" in texts[0] and "log-1" in texts[0]
    await storage.close()

    # Nothing listening at the endpoint.
    with pytest.raises(StorageError) as info:
        await explicit.list_logs()
    assert_no_creds(*everything_about(info.value))
    await explicit.close()

    # Credentials in the endpoint URL that this process never resolved as credentials.
    odd = open_storage(s3_url, endpoint_url="http://someone:Pass/Word+Secret@127.0.0.1:1", max_attempts=1)
    with pytest.raises(StorageError) as info:
        await odd.list_logs()
    assert all("Pass/Word+Secret" not in text for text in everything_about(info.value) + [repr(odd)])
    await odd.close()


# --- missing bucket --------------------------------------------------------------------


@pytest.mark.parametrize("first_call", ["next_seq", "read_all", "append", "list_logs", "exists",
                                        "put_blob", "get_blob", "blob_exists", "delete"])
async def test_missing_bucket_is_a_clear_error_from_the_first_call(s3_admin, s3_options, first_call):
    bucket = f"absent-{uuid.uuid4().hex[:12]}"
    storage = open_storage(f"s3://{bucket}/p", **s3_options)
    calls = {
        "next_seq": lambda: storage.next_seq("x"),
        "read_all": lambda: storage.read_all("x"),
        "append": lambda: storage.append("x", [b"r"], 0),
        "list_logs": lambda: storage.list_logs(),
        "exists": lambda: storage.exists("x"),
        "put_blob": lambda: storage.put_blob("x", "b", b"d"),
        "get_blob": lambda: storage.get_blob("x", "b"),
        "blob_exists": lambda: storage.blob_exists("x", "b"),
        "delete": lambda: storage.delete("x"),
    }
    with pytest.raises(BucketNotFoundError) as info:
        await calls[first_call]()
    message = str(info.value)
    assert bucket in message and "create it" in message and "fix the bucket name" in message
    assert isinstance(info.value, StorageError)
    # Once the bucket exists, the same instance works: the failure is not cached.
    s3_admin.create_bucket(Bucket=bucket)
    assert await storage.next_seq("x") == 0
    await storage.close()


# --- layout ---------------------------------------------------------------------------


async def test_one_object_per_batch_framed(storage, s3_admin, s3_url):
    log = new_id()
    await storage.append(log, [b"a", b"b", b"c"], 0)
    await storage.append(log, [b"d"], 3)
    await storage.put_blob(log, "out", b"payload")
    bucket, prefix = bucket_and_prefix(s3_url)
    assert all_keys(s3_admin, bucket) == [
        f"{prefix}/blobs/{log}/out", f"{prefix}/logs/{log}/{0:020d}", f"{prefix}/logs/{log}/{3:020d}"]
    assert raw_keys(s3_admin, s3_url, log) == [
        batch_key(s3_url, log, 0), batch_key(s3_url, log, 3), blob_key(s3_url, log, "out")]
    body = s3_admin.get_object(Bucket=bucket, Key=batch_key(s3_url, log, 0))["Body"].read()
    assert body == encode_batch(0, [b"a", b"b", b"c"])


async def test_bucket_root_without_prefix(s3_url, s3_options, s3_admin):
    bucket, _ = bucket_and_prefix(s3_url)
    storage = open_storage(f"s3://{bucket}", **s3_options)
    log = new_id()
    await storage.append(log, [b"x"], 0)
    await storage.put_blob("blobs-only", "b", b"y")
    assert all_keys(s3_admin, bucket) == ["blobs/blobs-only/b", f"logs/{log}/{0:020d}"]
    assert await storage.list_logs() == [log]
    assert [r.data for r in await storage.read_all(log)] == [b"x"]
    await storage.close()


async def test_list_logs_skips_foreign_directories(storage, s3_admin, s3_url):
    bucket, prefix = bucket_and_prefix(s3_url)
    for foreign in (f"{prefix}/logs/.hidden/{0:020d}", f"{prefix}/logs/a:b/{0:020d}",
                    f"{prefix}/logs/caf\u00e9/{0:020d}", f"{prefix}/logs/loose-object",
                    f"{prefix}/loose-object", f"{prefix}/other-dir/log/{0:020d}"):
        s3_admin.put_object(Bucket=bucket, Key=foreign, Body=b"?")
    log = new_id()
    await storage.append(log, [b"x"], 0)
    assert await storage.list_logs() == [log]


async def test_list_logs_is_one_request_per_thousand_logs(fault_proxy, s3_url, monkeypatch):
    """No request per log (no HEAD, no per-log listing), whatever the log has beside its batches."""
    monkeypatch.setattr(_s3, "_LIST_PAGE_SIZE", 4)  # as if S3 pages were tiny: 10 logs = 3 pages
    storage = open_storage(s3_url, endpoint_url=fault_proxy.url)
    logs = sorted(new_id() for _ in range(10))
    try:
        for i, log in enumerate(logs):
            await storage.append(log, [b"x"], 0)
            if i % 2:
                await storage.append(log, [b"y", b"z"], 1)
            await storage.put_blob(log, "out", b"o")
        await storage.put_blob("blob-only", "dag", b"d")
        await storage.append("system:index", [b"s"], 0)
        fault_proxy.seen.clear()
        assert await storage.list_logs() == logs
        requests = [(method, path) for method, path, _ in fault_proxy.seen]
        assert len(requests) == 3, requests
        assert all(method == "GET" and "list-type=2" in path and "delimiter=%2F" in path
                   for method, path in requests), requests
    finally:
        await storage.close()


async def test_delete_removes_batches_before_blobs(storage, s3_admin, s3_url, monkeypatch):
    log = new_id()
    await storage.append(log, [b"x"], 0)
    await storage.put_blob(log, "out", b"o")
    real = storage._delete_prefix
    order = []

    async def cut_short(s3, log_id, prefix):
        order.append(prefix)
        if "/blobs/" in prefix:
            raise StorageError("cut short")
        return await real(s3, log_id, prefix)

    monkeypatch.setattr(storage, "_delete_prefix", cut_short)
    with pytest.raises(StorageError, match="cut short"):
        await storage.delete(log)
    assert [p.split("/")[-3] for p in order] == ["logs", "blobs"]
    # Interrupted between the two: the log is gone, only its blobs are left...
    assert await storage.list_logs() == []
    assert await storage.read_all(log) == [] and not await storage.exists(log)
    assert raw_keys(s3_admin, s3_url, log) == [blob_key(s3_url, log, "out")]
    # ...and deleting the id again removes them.
    monkeypatch.setattr(storage, "_delete_prefix", real)
    assert await storage.delete(log) is True
    assert raw_keys(s3_admin, s3_url, log) == []
    assert await storage.delete(log) is False


async def test_delete_pages_through_many_objects(storage, s3_admin, s3_url, monkeypatch):
    monkeypatch.setattr(_s3, "_LIST_PAGE_SIZE", 4)  # as if S3 pages were tiny: 11 objects = 3 pages
    log, other = new_id(), new_id()
    for seq in range(6):
        await storage.append(log, [b"r"], seq)
    await asyncio.gather(*(storage.put_blob(log, f"b{i}", b"x") for i in range(5)))
    await storage.append(other, [b"keep"], 0)
    assert len(raw_keys(s3_admin, s3_url, log)) == 11
    assert [r.seq for r in await storage.read_all(log)] == list(range(6))
    assert await storage.list_logs() == sorted([log, other])
    assert await storage.delete(log) is True
    assert raw_keys(s3_admin, s3_url, log) == []
    assert await storage.list_logs() == [other]


# --- the chain ---------------------------------------------------------------------------


async def test_stale_seq_inside_a_batch_is_a_conflict_and_writes_nothing(storage, s3_url, s3_options,
                                                                          s3_admin):
    log = new_id()
    assert await storage.append(log, [b"a", b"b", b"c"], 0) == 3  # one object covering 0..2
    fresh = open_storage(s3_url, **s3_options)  # no cached tail: must look before writing
    try:
        for who in (storage, fresh):
            for stale in (1, 2):
                with pytest.raises(AppendConflictError) as info:
                    await who.append(log, [b"fork"], stale)
                assert info.value.actual_next_seq == 3
        assert raw_keys(s3_admin, s3_url, log) == [batch_key(s3_url, log, 0)]

        # Another writer extends the log: the first one's cached tail (3) is now stale.
        assert await fresh.append(log, [b"d", b"e"], 3) == 5
        with pytest.raises(AppendConflictError) as info:
            await storage.append(log, [b"fork"], 4)  # inside the other writer's batch
        assert info.value.actual_next_seq == 5
        with pytest.raises(AppendConflictError):
            await storage.append(log, [b"late"], 3)  # the boundary is taken: 412
        assert await storage.append(log, [b"f"], 5) == 6
        assert sorted(raw_keys(s3_admin, s3_url, log)) == [batch_key(s3_url, log, s) for s in (0, 3, 5)]
        assert [r.data for r in await fresh.read_all(log)] == [b"a", b"b", b"c", b"d", b"e", b"f"]
    finally:
        await fresh.close()


async def test_read_from_seq_skips_earlier_objects(storage, monkeypatch):
    log = new_id()
    for seq in range(0, 20, 2):
        await storage.append(log, [b"x", b"y"], seq)
    fetched = []
    real_get = storage._get

    async def counting_get(s3, op, log_id, key):
        fetched.append(key)
        return await real_get(s3, op, log_id, key)

    monkeypatch.setattr(storage, "_get", counting_get)
    records = await storage.read_all(log, from_seq=15)
    assert [r.seq for r in records] == list(range(15, 20))
    assert sorted(int(k.rsplit("/", 1)[1]) for k in fetched) == [14, 16, 18]


def count_listings(storage, monkeypatch) -> list[int]:
    """Record the ``from_seq`` of every batch listing ``storage`` makes."""
    calls = []
    real = storage._list_batches

    async def counting(s3, log_id, from_seq=0):
        calls.append(from_seq)
        return await real(s3, log_id, from_seq)

    monkeypatch.setattr(storage, "_list_batches", counting)
    return calls


async def test_read_from_seq_lists_only_near_from_seq(storage, s3_admin, s3_url, monkeypatch):
    monkeypatch.setattr(_s3, "_READ_LOOKBACK", 4)
    log = new_id()
    for seq in range(0, 20, 2):  # batches at 0, 2, ..., 18; two records each
        await storage.append(log, [b"x", b"y"], seq)
    await storage.append(log, [b"big"] * 10, 20)  # one batch holding 20..29
    await storage.append(log, [b"z"], 30)
    listings = count_listings(storage, monkeypatch)

    # The batch holding from_seq (14) starts within the look-back: one listing, from key 11 on.
    assert [r.seq for r in await storage.read_all(log, from_seq=15)] == list(range(15, 31))
    assert listings == [11]
    # At a boundary, too.
    listings.clear()
    assert [r.seq for r in await storage.read_all(log, from_seq=30)] == [30]
    assert listings == [26]
    # The batch holding 27 starts at 20, before the look-back: the whole log is listed.
    listings.clear()
    assert [r.seq for r in await storage.read_all(log, from_seq=27)] == list(range(27, 31))
    assert listings == [23, 0]
    # Past the end: nothing, however it is found out.
    listings.clear()
    assert await storage.read_all(log, from_seq=100) == []
    assert await storage.read_all(log, from_seq=31) == []
    # Below the look-back: the whole log, as always.
    listings.clear()
    assert [r.seq for r in await storage.read_all(log, from_seq=3)] == list(range(3, 31))
    assert listings == [0]


async def test_read_from_seq_still_checks_the_chain_after_it(storage, s3_admin, s3_url, monkeypatch):
    monkeypatch.setattr(_s3, "_READ_LOOKBACK", 4)
    log = new_id()
    for seq in range(0, 20, 2):
        await storage.append(log, [b"x", b"y"], seq)
    bucket, _ = bucket_and_prefix(s3_url)
    forked = batch_key(s3_url, log, 17)  # inside the batch at 16
    s3_admin.put_object(Bucket=bucket, Key=forked, Body=encode_batch(17, [b"fork"]))
    got, err = await read_until_error(storage, log, from_seq=15)
    assert [r.seq for r in got] == [15, 16, 17]
    assert isinstance(err, LogCorruptedError) and err.location == forked and "sequence gap" in str(err)
    s3_admin.delete_object(Bucket=bucket, Key=forked)
    s3_admin.delete_object(Bucket=bucket, Key=batch_key(s3_url, log, 16))  # a gap after from_seq
    got, err = await read_until_error(storage, log, from_seq=15)
    assert [r.seq for r in got] == [15]
    assert isinstance(err, LogCorruptedError) and "expected seq 16" in str(err)


async def test_next_seq_lists_from_the_last_batch_seen(storage, s3_url, s3_options, monkeypatch):
    log = new_id()
    for seq in range(0, 12, 3):  # batches at 0, 3, 6, 9
        await storage.append(log, [b"a", b"b", b"c"], seq)
    listings = count_listings(storage, monkeypatch)
    assert await storage.next_seq(log) == 12
    assert listings == [9]  # from the last batch this instance wrote, not the whole log
    other = open_storage(s3_url, **s3_options)
    try:
        other_listings = count_listings(other, monkeypatch)
        assert await other.next_seq(log) == 12 and other_listings == [0]  # nothing seen: all of it
        assert await other.append(log, [b"d"], 12) == 13
        listings.clear()
        assert await storage.next_seq(log) == 13 and listings == [9]  # stale hint, right answer
        assert await storage.append(log, [b"e"], 13) == 14
        # Deleted and started again, shorter: nothing from the hint on, so the whole log is listed.
        assert await other.delete(log) is True
        assert await other.append(log, [b"new"], 0) == 1
        listings.clear()
        assert await storage.next_seq(log) == 1 and listings == [13, 0]
        assert await storage.append(log, [b"new2"], 1) == 2
        # ...and started again, longer than before: the hint's suffix still ends at the true tail.
        assert await other.delete(log) is True
        for seq in range(0, 20, 4):
            await other.append(log, [b"x"] * 4, seq)
        listings.clear()
        assert await storage.next_seq(log) == 20 and listings == [1]
        with pytest.raises(AppendConflictError) as info:
            await storage.append(log, [b"stale"], 2)  # inside a batch of the new log
        assert info.value.actual_next_seq == 20
        assert [r.seq for r in await storage.read_all(log)] == list(range(20))
    finally:
        await other.close()


async def test_object_off_the_chain_is_corruption(storage, s3_admin, s3_url):
    log = new_id()
    await storage.append(log, [b"a", b"b", b"c"], 0)
    await storage.append(log, [b"d"], 3)
    bucket, _ = bucket_and_prefix(s3_url)
    forked = batch_key(s3_url, log, 1)  # a well-formed batch, but inside the one at 0
    s3_admin.put_object(Bucket=bucket, Key=forked, Body=encode_batch(1, [b"fork"]))
    got, err = await read_until_error(storage, log)
    assert [r.data for r in got] == [b"a", b"b", b"c"]
    assert isinstance(err, LogCorruptedError)
    assert err.log_id == log and err.location == forked and forked in str(err) and log in str(err)
    assert "sequence gap" in str(err)


async def test_missing_object_is_a_gap(storage, s3_admin, s3_url):
    log = new_id()
    for seq, batch in ((0, [b"a", b"b"]), (2, [b"c"]), (3, [b"d"])):
        await storage.append(log, batch, seq)
    bucket, _ = bucket_and_prefix(s3_url)
    s3_admin.delete_object(Bucket=bucket, Key=batch_key(s3_url, log, 2))
    got, err = await read_until_error(storage, log)
    assert [r.seq for r in got] == [0, 1]
    assert isinstance(err, LogCorruptedError) and err.location == batch_key(s3_url, log, 3)
    assert "expected seq 2" in str(err)


async def test_damaged_object_names_log_key_and_offset(storage, s3_admin, s3_url):
    log = new_id()
    await storage.append(log, [b"a", b"b"], 0)
    await storage.append(log, [b"c" * 100], 2)
    await storage.append(log, [b"d"], 3)
    bucket, _ = bucket_and_prefix(s3_url)
    key = batch_key(s3_url, log, 2)
    body = bytearray(s3_admin.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[50] ^= 0xFF
    s3_admin.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    got, err = await read_until_error(storage, log)
    assert [r.seq for r in got] == [0, 1]
    assert isinstance(err, LogCorruptedError)
    assert (err.log_id, err.location, err.offset) == (log, key, 0)
    assert "checksum" in str(err) and key in str(err) and "byte offset 0" in str(err)
    # A truncated object is damage too (S3 has no torn tails).
    s3_admin.put_object(Bucket=bucket, Key=key, Body=bytes(body[:30]))
    got, err = await read_until_error(storage, log)
    assert [r.seq for r in got] == [0, 1] and isinstance(err, LogCorruptedError) and err.location == key


async def test_stray_object_under_the_log_is_corruption(storage, s3_admin, s3_url):
    log = new_id()
    await storage.append(log, [b"a"], 0)
    bucket, prefix = bucket_and_prefix(s3_url)
    stray = f"{prefix}/logs/{log}/notes.txt"
    s3_admin.put_object(Bucket=bucket, Key=stray, Body=b"hello")
    got, err = await read_until_error(storage, log)
    assert [r.data for r in got] == [b"a"]
    assert isinstance(err, LogCorruptedError) and err.location == stray
    with pytest.raises(LogCorruptedError):
        await storage.next_seq(log)


# --- retries ----------------------------------------------------------------------------


async def test_retries_through_a_failing_proxy(fault_proxy, s3_url, s3_options, s3_admin):
    fault_proxy.add(
        Fault(503),  # the very first request (the bucket check, a HEAD)
        Fault(503, method="PUT"),  # the first append's put
        Fault(429, "SlowDown", method="GET", message="Please reduce your request rate."),
        Fault(500, "InternalError", method="POST"),  # DeleteObjects
    )
    storage = open_storage(s3_url, endpoint_url=fault_proxy.url)
    log = new_id()
    try:
        assert await storage.append(log, [b"r0"], 0) == 1
        # The put lands in moto, but the client is told 503 and retries: the
        # retry's 412 must be recognised as our own write, not a conflict.
        fault_proxy.add(Fault(503, conditional=True, forward=True))
        assert await storage.append(log, [b"r1", b"r2"], 1) == 3
        assert await storage.append(log, [b"r3"], 3) == 4
        assert [r.data for r in await storage.read_all(log)] == [b"r0", b"r1", b"r2", b"r3"]
        await storage.put_blob(log, "out", b"payload")
        assert await storage.get_blob(log, "out") == b"payload"
        assert await storage.delete(log) is True
        assert fault_proxy.pending == 0
    finally:
        await storage.close()
    outcomes = [did for _, _, did in fault_proxy.seen]
    assert outcomes.count("503 ServiceUnavailable") == 2
    assert "429 SlowDown" in outcomes and "500 InternalError" in outcomes
    assert "forwarded, then 503 ServiceUnavailable" in outcomes
    assert raw_keys(s3_admin, s3_url, log) == []


async def test_retried_put_beaten_by_another_writer_is_a_conflict(fault_proxy, s3_url, s3_admin):
    storage = open_storage(s3_url, endpoint_url=fault_proxy.url)
    log = new_id()
    bucket, _ = bucket_and_prefix(s3_url)
    key = batch_key(s3_url, log, 0)
    theirs = encode_batch(0, [b"theirs", b"too"])
    # Our first attempt is lost (503, not forwarded); before we retry, another writer takes the key.
    fault_proxy.add(Fault(503, conditional=True,
                          before=lambda: s3_admin.put_object(Bucket=bucket, Key=key, Body=theirs)))
    try:
        with pytest.raises(AppendConflictError) as info:
            await storage.append(log, [b"ours"], 0)
        assert info.value.actual_next_seq == 2
        assert [r.data for r in await storage.read_all(log)] == [b"theirs", b"too"]
    finally:
        await storage.close()


async def test_conditional_request_conflict_409_is_a_conflict(fault_proxy, s3_url):
    storage = open_storage(s3_url, endpoint_url=fault_proxy.url)
    fault_proxy.add(Fault(409, "ConditionalRequestConflict", conditional=True))
    log = new_id()
    try:
        with pytest.raises(AppendConflictError):
            await storage.append(log, [b"r"], 0)
        assert await storage.read_all(log) == []
        assert await storage.append(log, [b"r"], 0) == 1
    finally:
        await storage.close()


async def test_errors_name_operation_log_and_code(fault_proxy, s3_url):
    storage = open_storage(s3_url, endpoint_url=fault_proxy.url, max_attempts=2)
    await storage.next_seq("warm-up")
    fault_proxy.add(Fault(503, conditional=True), Fault(503, conditional=True))
    try:
        with pytest.raises(StorageError) as info:
            await storage.append("log-x", [b"r"], 0)
        message = str(info.value)
        assert "append" in message and "'log-x'" in message and "ServiceUnavailable" in message
        assert "may or may not have been written" in message
        assert not isinstance(info.value, AppendConflictError)
    finally:
        await storage.close()


# --- endpoints and event loops -------------------------------------------------------------


async def test_aws_endpoint_url_env_var_is_honoured(monkeypatch, moto_server, s3_url):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    storage = open_storage(s3_url)  # no endpoint option: botocore takes it from the env
    log = new_id()
    try:
        await storage.append(log, [b"via env"], 0)
        assert [r.data for r in await storage.read_all(log)] == [b"via env"]
    finally:
        await storage.close()


async def test_endpoint_option_beats_the_env_var(monkeypatch, s3_url, s3_options):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1")
    storage = open_storage(s3_url, **s3_options)
    try:
        assert await storage.list_logs() == []
    finally:
        await storage.close()


# A client left open in a loop that has ended cannot be closed from another one;
# aiohttp then warns when it is collected. That is the point of this test.
@pytest.mark.filterwarnings("ignore:Unclosed client session:ResourceWarning")
def test_one_instance_across_event_loops(s3_url, s3_options):
    """Each ``asyncio.run`` gets its own client; the instance and its pickle keep working."""
    storage = open_storage(s3_url, **s3_options)
    log = new_id()

    async def first():
        await storage.append(log, [b"one"], 0)  # client of loop 1, left open on purpose

    async def second(which):
        return await which.append(log, [b"two"], 1)

    asyncio.run(first())
    assert asyncio.run(second(storage)) == 2  # loop 1 is gone: a new client for loop 2
    copy = pickle.loads(pickle.dumps(storage))
    assert copy.url == storage.url

    async def third():
        try:
            assert [r.data for r in await copy.read_all(log)] == [b"one", b"two"]
        finally:
            await copy.close()
            await storage.close()

    asyncio.run(third())


async def test_closed_instance_refuses_use(s3_url, s3_options):
    storage = open_storage(s3_url, **s3_options)
    await storage.next_seq("x")
    await storage.close()
    await storage.close()  # idempotent
    with pytest.raises(StorageError, match="closed"):
        await storage.next_seq("x")
