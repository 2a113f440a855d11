"""Turning botocore errors into storage errors that say where, and never leak credentials.

Every message names the operation, the log, the S3 key and the S3 error code.
Credentials can reach a message by surprising routes (a server that echoes the
request's Authorization header, an endpoint URL with ``user:password@``), so
every message is scrubbed of the credentials this process resolved and of
anything shaped like an access key id.
"""

from __future__ import annotations

import contextlib
import os
import re

from botocore.exceptions import BotoCoreError, ClientError

from ._errors import BucketNotFoundError, StorageError

# Access key ids, and the Credential= part of a SigV4 Authorization header.
_KEY_ID_RE = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b|Credential=[^\s,/\"'<]+")
# The user:password@ of a URL (greedy up to the '@': a secret key may hold '/').
_USERINFO_RE = re.compile(r"(?<=://)[^\s@\"'`<>]*@")
_MIN_SECRET_LEN = 8  # shorter strings would scrub ordinary words (test creds are "testing")
REDACTED = "[REDACTED]"


def error_code(err: ClientError) -> str:
    """The S3 error code of ``err`` (for a HEAD, which has no body, the HTTP status)."""
    return str(err.response.get("Error", {}).get("Code") or "Unknown")


def strip_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` part, fit for messages.

    Splits by hand: ``urlsplit`` ends the netloc at the first '/', and an AWS
    secret key may contain one.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    return f"{scheme}://{rest.rsplit('@', 1)[1]}"


class S3Errors:
    """Error translation for one bucket/prefix.

    Args:
        bucket: the bucket, for messages.
        url: the storage URL (holds no credentials), for messages.
        endpoint_url: the configured endpoint, if any.
        secrets: credential strings known up front (passed as options).
    """

    def __init__(self, bucket: str, url: str, endpoint_url: str | None, secrets=()):
        self.bucket = bucket
        self.url = url
        self._endpoint_url = endpoint_url
        self._secrets: set[str] = set()
        self.add_secrets(*secrets)

    def add_secrets(self, *values) -> None:
        """Scrub these strings (resolved credentials) from every later message."""
        self._secrets.update(v for v in values if isinstance(v, str) and len(v) >= _MIN_SECRET_LEN)

    def redact(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        text = _USERINFO_RE.sub(REDACTED + "@", text)
        return _KEY_ID_RE.sub(REDACTED, text)

    def at_endpoint(self) -> str:
        """`` at <endpoint>`` when not plain AWS, for messages."""
        endpoint = (self._endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3")
                    or os.environ.get("AWS_ENDPOINT_URL"))
        return f" at {strip_userinfo(endpoint)}" if endpoint else ""

    def bucket_missing(self) -> BucketNotFoundError:
        return BucketNotFoundError(self.redact(
            f"S3 bucket {self.bucket!r}{self.at_endpoint()} does not exist (storage URL {self.url!r}): "
            f"create it first (e.g. `aws s3 mb s3://{self.bucket}`) or fix the bucket name in the URL"
        ))

    def access_denied(self) -> StorageError:
        return StorageError(self.redact(
            f"access to S3 bucket {self.bucket!r}{self.at_endpoint()} is denied (HTTP 403): "
            "check the credentials and that they may list, read and write this bucket"
        ))

    def error(self, op: str, log_id: str | None, key: str | None, detail: str, code: str) -> StorageError:
        """A StorageError for ``op`` on ``log_id`` at ``key``; ``code`` is kept as ``.s3_code``."""
        where = f"s3://{self.bucket}/{key}" if key else self.url
        subject = f" for log {log_id!r}" if log_id else ""
        error = StorageError(self.redact(f"S3 {op}{subject} failed at {where}{self.at_endpoint()}: {detail}"))
        error.s3_code = code
        return error

    @contextlib.contextmanager
    def translate(self, op: str, log_id: str | None = None, key: str | None = None, note: str = ""):
        """Raise botocore errors inside the block as StorageError (BucketNotFoundError for NoSuchBucket).

        The botocore exception is not chained: its response dict may hold
        header echoes that the message has been scrubbed of.
        """
        try:
            yield
        except ClientError as err:
            code = error_code(err)
            if code == "NoSuchBucket":
                raise self.bucket_missing() from None
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            message = err.response.get("Error", {}).get("Message")
            detail = f"{code} (HTTP {status})" + (f": {message}" if message else "")
            raise self.error(op, log_id, key, detail + note, code) from None
        except BotoCoreError as err:
            detail = f"{type(err).__name__}: {err}"
            if type(err).__name__ == "NoCredentialsError":
                detail += " (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or use a role)"
            raise self.error(op, log_id, key, detail + note, type(err).__name__) from None
