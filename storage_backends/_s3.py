"""S3 backend (aiobotocore): one object per appended batch, chained by seq.

URL ``s3://bucket/prefix`` (prefix optional), optionally with ray.workflow's
(pyarrow's) query parameters, ``?region=...&endpoint_override=...`` (see
:mod:`._s3_url`). Credentials come from the standard AWS chain (env, profile,
instance role...); the endpoint from the ``endpoint_url`` option, else
``$AWS_ENDPOINT_URL_S3`` / ``$AWS_ENDPOINT_URL`` (botocore reads those itself),
else AWS.

One writer per log is enforced by S3, not by this process: a batch starting at
seq N is written with a conditional ``PutObject`` (``If-None-Match: *``) on key
N, so exactly one writer can own each key. Because a batch covers several
seqs, a stale writer could name a seq *inside* an existing batch and slip a
second object in; so a put only ever targets the end of the chain (see
:mod:`._s3_chain`), checked against a per-log cache of the chain's tail and
re-listed whenever the caller's seq is not the cached tail (from the log's
last batch as last seen, so one request however long the log, see
``_find_tail``). A boundary stays a boundary while the log lives (objects are
only removed with the whole log); but another writer may delete the log and
begin it again, so an append at a cached boundary also asks, alongside its
put, whether the batch that ended there is still the one seen (its ETag), and
takes its put back as a conflict if not.

Throttling and 5xx answers are retried by botocore (standard mode, backoff
with jitter). A put whose answer was lost may have landed: re-sent (by
botocore, or by the HTTP client on its own) it comes back 412, and if every
try failed, the error does not say either way. Each put carries a random
write id in its metadata, so after any 412 and any failed put the backend
looks at the key: the batch found there under its own write id is its own
write, returned as a success, never reported as a conflict or an error.

Logs and blobs live under separate top-level prefixes, ``<prefix>/logs/<log_id>/``
and ``<prefix>/blobs/<log_id>/`` (see :mod:`._s3_chain`), so ``list_logs`` is
one delimited listing of ``<prefix>/logs/`` (a request per 1000 logs) and
never a request per log.

A read lists the log's keys (one request per 1000 batches; from ``from_seq``
on, it lists from a little before ``from_seq`` only, see :meth:`S3Storage.read`),
skips the objects wholly before ``from_seq``, fetches the rest a few at a time
and yields them strictly in chain order, checking every frame and every link
of the chain from the batch holding ``from_seq`` on.

Helpers: :mod:`._s3_chain` (key layout, chain and frame checks),
:mod:`._s3_client` (a client per event loop), :mod:`._s3_errors` (messages
that name the key and never the credentials).
"""

from __future__ import annotations

import asyncio
import collections
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from urllib.parse import unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from ._base import Storage
from ._errors import AppendConflictError, BlobNotFoundError, StorageError, StorageURLError
from ._framing import Batch, Record, encode_batch
from ._ids import is_listable_log_id, system_name, validate_blob_name, validate_log_id
from ._s3_chain import (
    BLOBS_ROOT,
    LOGS_ROOT,
    SYSTEM_ROOT,
    BatchListing,
    decode_batch,
    gap_error,
    seq_name,
    stray_error,
)
from ._s3_client import LoopBoundClient
from ._s3_errors import S3Errors, error_code, strip_userinfo
from ._s3_url import url_options

OPTIONS = frozenset({
    "endpoint_url",          # S3-compatible store; else $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL / AWS
    "region_name",           # else the AWS chain ($AWS_DEFAULT_REGION, profile)
    "profile_name",          # a named profile of ~/.aws/config
    "addressing_style",      # "path" or "virtual" (botocore picks by default)
    "max_pool_connections",  # HTTP connections per client (default 32)
    "read_concurrency",      # objects fetched at once by read() (default 16)
    "max_attempts",          # tries per request including the first (default 6, or $AWS_MAX_ATTEMPTS)
    "retry_mode",            # botocore retry mode: "standard" (default) or "adaptive"
    "connect_timeout",       # seconds (default 10)
    "read_timeout",          # seconds (default 60)
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token",  # only if the chain can't
    "use_ssl",               # False: plain http to the default endpoint (default True)
    "verify",                # TLS certificate checks: True (default), False, or a CA bundle file
    "allow_bucket_creation", # True: create the bucket if it does not exist (default False)
})
_DEFAULT_READ_CONCURRENCY = 16
_LIST_PAGE_SIZE = 1000  # S3's maximum, and DeleteObjects' limit per call
# read(from_seq) lists batch keys from this many seqs before from_seq (at most this
# many extra keys, well inside one page), falling back to the whole log when the
# batch holding from_seq starts further back than that.
_READ_LOOKBACK = 500
_WRITE_ID = "write-id"  # object metadata naming the append call that wrote a batch
_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_CREDENTIAL_OPTIONS = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token")


class S3Storage(Storage):
    """Logs and blobs in an S3 bucket (or any S3-compatible store with conditional writes).

    Args:
        bucket: the bucket, which must already exist.
        prefix: key prefix under which every log lives ("" for the bucket root).
        **options: see :data:`OPTIONS`.
    """

    scheme = "s3"

    def __init__(self, bucket: str, prefix: str = "", **options):
        unknown = set(options) - OPTIONS
        if unknown:
            raise TypeError(f"unknown S3 storage options {sorted(unknown)}; known: {sorted(OPTIONS)}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._base = f"{self.prefix}/" if self.prefix else ""
        self._options = {k: v for k, v in options.items() if v is not None}
        for name in ("max_attempts", "max_pool_connections", "read_concurrency"):
            value = self._options.get(name, 1)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f"S3 storage option {name} must be an int >= 1, got {value!r}")
        self._read_concurrency = self._options.pop("read_concurrency", _DEFAULT_READ_CONCURRENCY)
        self._reset_runtime_state()

    def _reset_runtime_state(self) -> None:
        self._errors = S3Errors(self.bucket, self.url, self._options.get("endpoint_url"),
                                [self._options.get(k) for k in _CREDENTIAL_OPTIONS])
        self._client = LoopBoundClient(self.bucket, self._options, self._errors)
        # log_id -> (first seq of the log's last batch or None, the seq that batch ends at, that
        # batch's ETag or None), as last seen: the end is a boundary of the chain as long as that
        # very batch is still there (another writer may have deleted the log and begun it again).
        self._tails: dict[str, tuple[int | None, int, str | None]] = {}
        # Logs whose caller holds them (see Storage.hold): nobody else deletes them meanwhile, so
        # a boundary as last seen needs no HEAD beside the next put to prove it is still one.
        self._held: set[str] = set()

    def __getstate__(self) -> dict:
        # Picklable for child processes / Ray tasks: the configuration travels,
        # not the connection, the cache or the credentials learned from the chain.
        state = self.__dict__.copy()
        for name in ("_errors", "_client", "_tails", "_held"):
            del state[name]
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_runtime_state()

    @classmethod
    def from_url(cls, url: str, **options) -> S3Storage:
        if "@" in url:  # never echo such a URL: it holds credentials (and a secret may hold '/')
            raise StorageURLError(
                "the S3 storage URL must not hold credentials: use the AWS credential chain "
                "(env vars, profile, instance role) or the aws_* options"
            )
        parts = urlsplit(url)
        if parts.scheme.lower() != "s3":
            raise StorageURLError(f"not an s3:// URL: {url!r}")
        if parts.fragment:
            raise StorageURLError(f"S3 storage URL {url!r} has a fragment ('#...'): remove it")
        if not _BUCKET_RE.fullmatch(parts.netloc):
            raise StorageURLError(f"S3 storage URL {url!r} names no valid bucket: use s3://BUCKET/PREFIX")
        from_query = url_options(parts.query, url)  # ray.workflow's ?region=...&endpoint_override=...
        clashes = sorted(k for k, v in from_query.items() if k in options and options[k] != v)
        if clashes:
            raise StorageURLError(
                f"S3 storage URL {url!r} and the storage options disagree on {', '.join(clashes)}: "
                "give each setting once"
            )
        return cls(parts.netloc, unquote(parts.path), **{**options, **from_query})

    def __repr__(self) -> str:
        endpoint = self._options.get("endpoint_url")
        extra = f", endpoint_url={strip_userinfo(endpoint)!r}" if endpoint else ""
        return f"{type(self).__name__}({self.url!r}{extra})"

    async def _s3(self):
        return await self._client.get()

    async def close(self) -> None:
        await self._client.close()

    # --- keys -----------------------------------------------------------------

    def _log_prefix(self, log_id: str) -> str:
        """``<prefix>/logs/<log_id>/``: the log's batch objects, and nothing else.

        A system log ``system:<name>`` lives at ``<prefix>/system/logs/<name>/``, outside
        the listing of ``<prefix>/logs/`` and apart from every user log.
        """
        return f"{self._root_of(log_id, LOGS_ROOT)}/"

    def _blob_prefix(self, log_id: str) -> str:
        """``<prefix>/blobs/<log_id>/``: the log's blobs (a system log's: ``<prefix>/system/blobs/<name>/``)."""
        return f"{self._root_of(log_id, BLOBS_ROOT)}/"

    def _root_of(self, log_id: str, kind: str) -> str:
        name = system_name(validate_log_id(log_id))
        if name is not None:
            return f"{self._base}{SYSTEM_ROOT}{kind}{name}"
        return f"{self._base}{kind}{log_id}"

    def _batch_key(self, log_id: str, seq: int) -> str:
        return f"{self._log_prefix(log_id)}{seq_name(seq)}"

    def _blob_key(self, log_id: str, name: str) -> str:
        return f"{self._blob_prefix(log_id)}{validate_blob_name(name)}"

    # --- logs -----------------------------------------------------------------

    async def append(self, log_id: str, records: Sequence[bytes], expected_next_seq: int) -> int:
        validate_log_id(log_id)
        if not records:
            raise ValueError("append needs at least one record")
        if not isinstance(expected_next_seq, int) or expected_next_seq < 0:
            raise ValueError(f"expected_next_seq must be a non-negative int, got {expected_next_seq!r}")
        s3 = await self._s3()
        expected = expected_next_seq
        cached = self._tails.get(log_id)
        recheck = None
        if expected != 0 and (cached is None or cached[1] != expected or cached[2] is None):
            # Not a boundary we know of: writing there could fork the log, so look first.
            tail = await self._find_tail(s3, log_id)
            if tail != expected:
                raise AppendConflictError(log_id, expected, tail)
        elif expected != 0 and log_id not in self._held:
            # A boundary as last seen; still one only if the batch ending there is the one we saw
            # (the log may have been deleted, and begun again, by another writer). Asked alongside
            # the put, so it costs a request but no time; a put it proves wrong is taken back.
            recheck = asyncio.ensure_future(self._unchanged(s3, log_id, cached[0], cached[2]))
        try:
            end = await self._put_batch(s3, log_id, records, expected)
        except BaseException:
            if recheck is not None:
                recheck.cancel()
            raise
        if recheck is not None and not await recheck:
            await self._take_back(s3, log_id, expected)
            self._tails.pop(log_id, None)
            raise AppendConflictError(log_id, expected, await self._tail_after_conflict(s3, log_id, 0))
        return end

    def tail_token(self, log_id: str) -> bytes | None:
        cached = self._tails.get(log_id)
        if cached is None or cached[2] is None:
            return None
        return f"{-1 if cached[0] is None else cached[0]} {cached[1]} {cached[2]}".encode()

    def learn_tail(self, log_id: str, token: bytes | None) -> None:
        if token is None:
            return
        try:
            start, end, etag = token.decode().split(" ", 2)
            self._tails[log_id] = (None if int(start) < 0 else int(start), int(end), etag)
        except (UnicodeDecodeError, ValueError):
            pass  # not a token of ours: the next append looks the tail up

    def hold(self, log_id: str) -> None:
        self._held.add(log_id)

    def release(self, log_id: str) -> None:
        self._held.discard(log_id)
        self._tails.pop(log_id, None)

    async def _unchanged(self, s3, log_id: str, start: int | None, etag: str) -> bool:
        """Whether the batch at ``start`` still has ``etag`` (a failed question counts as yes)."""
        key = self._batch_key(log_id, start or 0)
        try:
            await s3.head_object(Bucket=self.bucket, Key=key, IfMatch=etag)
            return True
        except ClientError as err:
            return error_code(err) not in _NOT_FOUND_CODES | {"412", "PreconditionFailed"}
        except BotoCoreError:
            return True

    async def _take_back(self, s3, log_id: str, seq: int) -> None:
        """Remove the batch this call just put at ``seq`` of a log that turned out to be gone."""
        key = self._batch_key(log_id, seq)
        with self._errors.translate("append (taking back a batch put on a deleted log)", log_id, key):
            await s3.delete_object(Bucket=self.bucket, Key=key)

    async def _put_batch(self, s3, log_id: str, records: Sequence[bytes], expected: int) -> int:
        """The conditional put of one batch at ``expected``, and whose batch is there if that is unclear."""
        key = self._batch_key(log_id, expected)
        frame = encode_batch(expected, records)
        write_id = uuid.uuid4().hex
        conflict = False
        etag = None
        unsure = "; the batch may or may not have been written: read the log before appending again"
        try:
            with self._errors.translate("append", log_id, key, note=unsure):
                try:
                    response = await s3.put_object(
                        Bucket=self.bucket, Key=key, Body=frame, IfNoneMatch="*",
                        Metadata={_WRITE_ID: write_id}, ContentType="application/octet-stream",
                    )
                    etag = response.get("ETag")
                except ClientError as err:
                    if error_code(err) not in _CONFLICT_CODES:
                        raise
                    conflict = True
        except StorageError:
            # Failed after botocore's retries, without saying whether the batch landed: a
            # response lost after the PUT reached S3 looks just like a PUT that never did.
            found = await self._whose_batch(s3, log_id, key, write_id, frame, quiet=True)
            if found == "theirs":
                conflict = True
            elif found != "ours":
                raise
        if conflict and await self._whose_batch(s3, log_id, key, write_id, frame) != "ours":
            # (Never judged by botocore's retry count: the HTTP client can re-send a request on
            # its own, so a 412 on what botocore calls the first attempt may still be our write.)
            actual = await self._tail_after_conflict(s3, log_id, expected)
            raise AppendConflictError(log_id, expected, actual)
        end = expected + len(records)
        self._tails[log_id] = (expected, end, etag)  # (no ETag when the answer was lost: look next time)
        return end

    async def _whose_batch(self, s3, log_id: str, key: str, write_id: str, frame: bytes,
                           quiet: bool = False) -> str | None:
        """Whose batch is at ``key``: "ours" (this append call's write id or, from a store that
        drops object metadata, its very bytes), "theirs", "none"; or None if ``quiet`` and S3
        could not be asked (the caller then keeps its own error).
        """
        try:
            with self._errors.translate("append (checking whose batch is there)", log_id, key):
                try:
                    head = await s3.head_object(Bucket=self.bucket, Key=key)
                except ClientError as err:
                    if error_code(err) in _NOT_FOUND_CODES:
                        return "none"
                    raise
                stored_id = head.get("Metadata", {}).get(_WRITE_ID)
                if stored_id is None:
                    response = await s3.get_object(Bucket=self.bucket, Key=key)
                    async with response["Body"] as stream:
                        same = await stream.read() == frame
                else:
                    same = stored_id == write_id
                return "ours" if same else "theirs"
        except StorageError:
            if quiet:
                return None
            raise

    async def _tail_after_conflict(self, s3, log_id: str, expected: int) -> int | None:
        """The log's next seq for a conflict message: lists only keys >= the contested one."""
        try:
            return await self._find_tail(s3, log_id, from_seq=expected)
        except StorageError:
            return None  # a message detail is not worth a second error

    async def _list_batches(self, s3, log_id: str, from_seq: int = 0) -> BatchListing:
        """Every key under the log's prefix (from batch key ``from_seq`` on), in order."""
        prefix = self._log_prefix(log_id)
        listing = BatchListing()
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": _LIST_PAGE_SIZE}
        if from_seq > 0:
            kwargs["StartAfter"] = prefix + seq_name(from_seq - 1)
        with self._errors.translate("list", log_id, prefix):
            while True:
                page = await s3.list_objects_v2(**kwargs)
                for item in page.get("Contents", ()):
                    listing.add(item["Key"], item["Key"][len(prefix):], item.get("ETag"))
                if not page.get("IsTruncated"):
                    return listing
                kwargs["ContinuationToken"] = page["NextContinuationToken"]

    async def _get(self, s3, op: str, log_id: str, key: str) -> bytes:
        with self._errors.translate(op, log_id, key):
            try:
                response = await s3.get_object(Bucket=self.bucket, Key=key)
            except ClientError as err:
                if error_code(err) not in _NOT_FOUND_CODES:
                    raise
                raise StorageError(
                    f"object s3://{self.bucket}/{key} of log {log_id!r} was listed but is gone: "
                    "was the log deleted while it was being read?"
                ) from None
            async with response["Body"] as stream:
                return await stream.read()

    async def _find_tail(self, s3, log_id: str, from_seq: int = 0) -> int | None:
        """The end of the chain: the last batch's first seq plus its record count.

        Trusts the listing for everything but the last batch (which it fetches
        and checks); :meth:`read` is what verifies a whole chain.

        Only the last key matters, and any non-empty suffix of the listing ends
        with the same key as the whole of it; so when the log's last batch has
        been seen, the listing starts there (one request however long the log),
        and lists the whole log only if nothing is left from there on (the log
        was deleted, perhaps started again). A stale hint costs a request, never
        a wrong answer. (Stray keys sorting before the hint are left for a read
        from 0 to report.)
        """
        listing = None
        hint = self._tails.get(log_id, (None, 0, None))[0] if from_seq == 0 else None
        if hint:
            listing = await self._list_batches(s3, log_id, hint)
        if listing is None or not listing.keys:
            listing = await self._list_batches(s3, log_id, from_seq)
        if listing.strays and from_seq == 0:
            raise stray_error(log_id, listing.strays)
        if not listing.keys:
            return 0 if from_seq == 0 else None
        seq, key = listing.seqs[-1], listing.keys[-1]
        _batch, tail = decode_batch(log_id, key, await self._get(s3, "read", log_id, key), seq, 1 << 62)
        self._tails[log_id] = (seq, tail, listing.etags[-1])
        return tail

    async def read(self, log_id: str, from_seq: int = 0) -> AsyncIterator[Record]:
        async for batch in self.read_batches(log_id, from_seq):
            for record in batch.records():
                yield record

    async def read_batches(self, log_id: str, from_seq: int = 0) -> AsyncIterator[Batch]:
        validate_log_id(log_id)
        s3 = await self._s3()
        listing, partial = await self._list_for_read(s3, log_id, from_seq)
        start = listing.first_needed(from_seq)
        # A whole listing must start at key 0; a partial one starts at the batch holding from_seq.
        expected = listing.seqs[start] if start > 0 or partial else 0
        # Fetch ahead with bounded concurrency, yield strictly in chain order.
        window: collections.deque[asyncio.Task] = collections.deque()
        upcoming = iter(range(start, len(listing.keys)))
        try:
            for _ in range(self._read_concurrency):
                self._fetch_next(s3, log_id, listing, upcoming, window)
            for i in range(start, len(listing.keys)):
                seq, key = listing.seqs[i], listing.keys[i]
                if seq != expected:
                    raise gap_error(log_id, expected, key, seq)
                body = await window.popleft()
                self._fetch_next(s3, log_id, listing, upcoming, window)
                batch, expected = decode_batch(log_id, key, body, expected, from_seq)
                if batch is not None:
                    yield batch
        finally:
            for task in window:
                task.cancel()
            if window:
                await asyncio.gather(*window, return_exceptions=True)
        if listing.strays:
            raise stray_error(log_id, listing.strays)
        self._tails[log_id] = ((listing.seqs[-1], expected, listing.etags[-1]) if listing.seqs
                               else (None, 0, None))

    async def _list_for_read(self, s3, log_id: str, from_seq: int) -> tuple[BatchListing, bool]:
        """The batch keys a read from ``from_seq`` needs, and whether the listing is partial.

        A read checks the chain from the batch holding ``from_seq`` on (the
        batches before it are skipped unread either way), so the listing need
        only reach back to that batch. It starts at most ``_READ_LOOKBACK`` seqs
        before ``from_seq``; if a key at or below ``from_seq`` is in it, the
        last such key is the very batch a whole listing would pick (every key
        of the whole listing at or after it is in the partial one too), so the
        read is the same. If none is (the holding batch starts further back,
        or the log is shorter), the whole log is listed instead. One request
        for a read near the tail of a long log, instead of one per 1000 batches.
        Stray keys sorting before the listing's start go unseen, like any
        damage before the batch holding ``from_seq``; a read from 0 sees all.
        """
        if from_seq > _READ_LOOKBACK:
            listing = await self._list_batches(s3, log_id, from_seq - _READ_LOOKBACK)
            if listing.seqs and listing.seqs[0] <= from_seq:
                return listing, True
        return await self._list_batches(s3, log_id), False

    def _fetch_next(self, s3, log_id, listing: BatchListing, upcoming, window: collections.deque) -> None:
        i = next(upcoming, None)
        if i is not None:
            window.append(asyncio.ensure_future(self._get(s3, "read", log_id, listing.keys[i])))

    async def next_seq(self, log_id: str) -> int:
        validate_log_id(log_id)
        return await self._find_tail(await self._s3(), log_id)

    async def exists(self, log_id: str) -> bool:
        validate_log_id(log_id)
        return await self._has_batches(await self._s3(), log_id)

    async def _has_batches(self, s3, log_id: str) -> bool:
        # HEAD of key 0 is the cheapest S3 request and is enough for any intact
        # log; only if it is missing, list (so a damaged log still shows up).
        key = self._batch_key(log_id, 0)
        with self._errors.translate("exists", log_id, key):
            try:
                await s3.head_object(Bucket=self.bucket, Key=key)
                return True
            except ClientError as err:
                if error_code(err) not in _NOT_FOUND_CODES:
                    raise
            prefix = self._log_prefix(log_id)
            page = await s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix, MaxKeys=1)
            return bool(page.get("Contents"))

    async def list_logs(self) -> list[str]:
        # One delimited listing of <prefix>/logs/: a log id is a common prefix there
        # exactly when the log has at least one batch object (blobs live elsewhere).
        s3 = await self._s3()
        root = self._base + LOGS_ROOT
        ids = []
        kwargs = {"Bucket": self.bucket, "Prefix": root, "Delimiter": "/", "MaxKeys": _LIST_PAGE_SIZE}
        with self._errors.translate("list_logs", key=root):
            while True:
                page = await s3.list_objects_v2(**kwargs)
                for common in page.get("CommonPrefixes", ()):
                    name = common["Prefix"][len(root):-1]
                    if is_listable_log_id(name):
                        ids.append(name)
                if not page.get("IsTruncated"):
                    break
                kwargs["ContinuationToken"] = page["NextContinuationToken"]
        return sorted(ids)

    async def delete(self, log_id: str) -> bool:
        # The batches first, so an interrupted delete leaves no half log, at
        # worst orphaned blobs, which the next delete of the id removes.
        prefixes = (self._log_prefix(log_id), self._blob_prefix(log_id))
        s3 = await self._s3()
        self._tails.pop(log_id, None)
        found = False
        for prefix in prefixes:
            found = await self._delete_prefix(s3, log_id, prefix) or found
        self._tails.pop(log_id, None)
        return found

    async def _delete_prefix(self, s3, log_id: str, prefix: str) -> bool:
        """Remove every object under ``prefix``; True if there was any."""
        found = False
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": _LIST_PAGE_SIZE}
        with self._errors.translate("delete", log_id, prefix):
            while True:  # a page is never larger than what one DeleteObjects call takes
                page = await s3.list_objects_v2(**kwargs)
                keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
                if keys:
                    found = True
                    result = await s3.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
                    if errors := result.get("Errors"):
                        code, key = str(errors[0].get("Code")), errors[0].get("Key")
                        detail = f"{code}: {errors[0].get('Message')} ({len(errors)} keys not deleted)"
                        raise self._errors.error("delete", log_id, key, detail, code)
                if not page.get("IsTruncated"):
                    return found
                kwargs["ContinuationToken"] = page["NextContinuationToken"]

    # --- blobs ----------------------------------------------------------------

    async def put_blob(self, log_id: str, name: str, data: bytes) -> None:
        # One PUT (S3 takes up to 5 GB that way): atomic replace, one request,
        # and botocore retries it whole. Multipart would only pay off far above
        # the payload sizes a log's blobs have.
        key = self._blob_key(log_id, name)
        s3 = await self._s3()
        with self._errors.translate("put_blob", log_id, key):
            await s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(data),
                                ContentType="application/octet-stream")

    async def get_blob(self, log_id: str, name: str) -> bytes:
        key = self._blob_key(log_id, name)
        s3 = await self._s3()
        with self._errors.translate("get_blob", log_id, key):
            try:
                response = await s3.get_object(Bucket=self.bucket, Key=key)
            except ClientError as err:
                if error_code(err) in _NOT_FOUND_CODES:
                    raise BlobNotFoundError(log_id, name) from None
                raise
            async with response["Body"] as stream:
                return await stream.read()

    async def blob_exists(self, log_id: str, name: str) -> bool:
        key = self._blob_key(log_id, name)
        s3 = await self._s3()
        with self._errors.translate("blob_exists", log_id, key):
            try:
                await s3.head_object(Bucket=self.bucket, Key=key)
                return True
            except ClientError as err:
                if error_code(err) in _NOT_FOUND_CODES:
                    return False
                raise

    async def list_blobs(self, log_id: str) -> dict[str, int]:
        prefix = self._blob_prefix(log_id)
        s3 = await self._s3()
        out: dict[str, int] = {}
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, "MaxKeys": _LIST_PAGE_SIZE}
        with self._errors.translate("list_blobs", log_id, prefix):
            while True:
                page = await s3.list_objects_v2(**kwargs)
                for item in page.get("Contents", ()):
                    name = item["Key"][len(prefix):]
                    if name and "/" not in name:
                        out[name] = int(item.get("Size", 0))
                if not page.get("IsTruncated"):
                    return dict(sorted(out.items()))
                kwargs["ContinuationToken"] = page["NextContinuationToken"]

    async def delete_blob(self, log_id: str, name: str) -> bool:
        key = self._blob_key(log_id, name)
        if not await self.blob_exists(log_id, name):  # S3's DELETE does not say whether it found anything
            return False
        s3 = await self._s3()
        with self._errors.translate("delete_blob", log_id, key):
            await s3.delete_object(Bucket=self.bucket, Key=key)
        return True

