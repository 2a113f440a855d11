"""One aiobotocore S3 client per event loop, opened lazily and checked once.

An aiobotocore client owns aiohttp connections, which belong to the event loop
that opened them. A storage object may be built outside any loop and then used
from several (``asyncio.run`` in a child process, a test per loop), so the
client is opened on first use inside the running loop and reopened when the
loop changes. aiobotocore is imported only then, so importing the package
stays fast for tools that never touch S3.
"""

from __future__ import annotations

import asyncio
import contextlib
import os

from ._errors import BucketNotFoundError, StorageError
from ._s3_errors import S3Errors

DEFAULT_MAX_ATTEMPTS = 6  # 1 try + 5 retries: rides out a few seconds of throttling
DEFAULT_POOL = 32


class LoopBoundClient:
    """The S3 client for the running loop.

    Args:
        bucket: checked to exist when a client is opened.
        options: the storage options (endpoint_url, region_name, retries, credentials...).
        errors: translation of botocore errors; learns the resolved credentials.
    """

    def __init__(self, bucket: str, options: dict, errors: S3Errors):
        self._bucket = bucket
        self._options = options
        self._errors = errors
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    async def get(self):
        """The client for the running loop, opened (and the bucket checked) on first use.

        Raises:
            BucketNotFoundError: the bucket does not exist (checked again on the next call).
            StorageError: closed, or the client could not be opened.
        """
        if self.closed:
            raise StorageError("this S3 storage has been closed")
        loop = asyncio.get_running_loop()
        task = self._task
        if task is None or self._loop is not loop:
            if task is not None:
                _abandon(task, self._loop)
            task = self._task = loop.create_task(self._open())
            self._loop = loop
        try:
            return await asyncio.shield(task)  # a cancelled caller must not cancel others' open
        except BaseException:
            if self._task is task and task.done() and (task.cancelled() or task.exception()):
                self._task = None  # try again next time (e.g. the bucket has been created since)
            raise

    async def close(self) -> None:
        """Close the client if it belongs to the running loop; drop it otherwise."""
        self.closed = True
        task, self._task = self._task, None
        if task is None:
            return
        if self._loop is not asyncio.get_running_loop():
            _abandon(task, self._loop)
            return
        with contextlib.suppress(Exception):
            client = await task
            await client.close()

    async def _open(self):
        from aiobotocore.config import AioConfig
        from botocore.handlers import add_expect_header
        from aiobotocore.session import AioSession

        opts = self._options
        config_args = {
            "retries": {
                # Standard mode: exponential backoff with jitter on throttling, 5xx and
                # connection errors. Our max_attempts counts the first try, like $AWS_MAX_ATTEMPTS.
                "mode": opts.get("retry_mode") or os.environ.get("AWS_RETRY_MODE") or "standard",
                "total_max_attempts": int(opts.get("max_attempts") or os.environ.get("AWS_MAX_ATTEMPTS")
                                          or DEFAULT_MAX_ATTEMPTS),
            },
            "max_pool_connections": int(opts.get("max_pool_connections", DEFAULT_POOL)),
            "connect_timeout": opts.get("connect_timeout", 10),
            "read_timeout": opts.get("read_timeout", 60),
            "user_agent_extra": "ray-durable",
        }
        if "addressing_style" in opts:
            config_args["s3"] = {"addressing_style": opts["addressing_style"]}
        session = AioSession(profile=opts.get("profile_name"))
        with self._errors.translate("connect"):
            try:
                # endpoint_url=None lets botocore apply $AWS_ENDPOINT_URL_S3 / $AWS_ENDPOINT_URL.
                client = await session.create_client(
                    "s3",
                    region_name=opts.get("region_name"),
                    endpoint_url=opts.get("endpoint_url"),
                    use_ssl=opts.get("use_ssl", True),
                    verify=opts.get("verify"),
                    aws_access_key_id=opts.get("aws_access_key_id"),
                    aws_secret_access_key=opts.get("aws_secret_access_key"),
                    aws_session_token=opts.get("aws_session_token"),
                    config=AioConfig(**config_args),
                ).__aenter__()
            except ValueError as err:  # e.g. botocore's "Invalid endpoint: ..."
                raise self._errors.error("connect", None, None, f"{err}", type(err).__name__) from None
        # No "Expect: 100-continue" on PUTs: botocore asks for it on every PutObject, and a
        # client that waits for the server's 100 before sending the body pays one more round
        # trip per append or blob (measured behind benchmarks/_proxy.py: two round trips per PUT
        # instead of one). Our bodies are small, and S3 answers an error to a whole PUT just as well.
        client.meta.events.unregister("before-call.s3", add_expect_header)
        try:
            await self._learn_credentials(session)
            await self._check_bucket(client)
        except BaseException:
            await client.close()
            raise
        return client

    async def _learn_credentials(self, session) -> None:
        """Tell the error translation which strings to scrub: the credentials actually resolved."""
        with contextlib.suppress(Exception):
            creds = await session.get_credentials()
            if creds is not None:
                frozen = await creds.get_frozen_credentials()
                self._errors.add_secrets(frozen.access_key, frozen.secret_key, frozen.token)

    async def _check_bucket(self, client) -> None:
        """Fail fast and clearly on a missing or forbidden bucket, whatever the first operation is.

        Needed because a HEAD (exists checks) on a missing bucket answers a bare
        404, indistinguishable from a missing key.
        """
        try:
            with self._errors.translate("check bucket"):
                await client.head_bucket(Bucket=self._bucket)
        except StorageError as err:
            code = getattr(err, "s3_code", None)
            if code in ("404", "NoSuchBucket") or isinstance(err, BucketNotFoundError):
                if self._options.get("allow_bucket_creation"):
                    await self._create_bucket(client)
                    return
                raise self._errors.bucket_missing() from None
            if code == "403":
                raise self._errors.access_denied() from None
            raise


    async def _create_bucket(self, client) -> None:
        """Create the missing bucket (``allow_bucket_creation``, as ray.workflow's storage did)."""
        region = client.meta.region_name
        kwargs = {"Bucket": self._bucket}
        if region and region != "us-east-1":  # us-east-1 is S3's default and refuses the constraint
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            with self._errors.translate("create bucket"):
                await client.create_bucket(**kwargs)
        except StorageError as err:
            if getattr(err, "s3_code", None) != "BucketAlreadyOwnedByYou":  # a racing opener made it
                raise


def _abandon(task: asyncio.Task, loop: asyncio.AbstractEventLoop | None) -> None:
    """Drop a client of another loop, closing it there if that loop is still running."""
    if loop is None or loop.is_closed() or not loop.is_running():
        return  # nothing can run its close any more; its sockets go with it
    if task.done() and not task.cancelled() and task.exception() is None:
        asyncio.run_coroutine_threadsafe(task.result().close(), loop)
