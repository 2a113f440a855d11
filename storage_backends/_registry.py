"""Opening a backend from a storage URL, and registering new URL schemes."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from ._base import Storage
from ._errors import StorageURLError, UnknownSchemeError

DEFAULT_STORAGE = "/tmp/ray/workflow_data"  # what ray.workflow used
STORAGE_ENV_VAR = "RAY_DURABLE_STORAGE"

_SCHEMES: dict[str, type[Storage]] = {}


def register_scheme(scheme: str, backend: type[Storage]) -> None:
    """Make ``open_storage("<scheme>://...")`` open ``backend``.

    Raises:
        TypeError: ``backend`` does not subclass :class:`Storage`.
    """
    if not (isinstance(backend, type) and issubclass(backend, Storage)):
        raise TypeError(f"{backend!r} must be a subclass of storage_backends.Storage")
    _SCHEMES[scheme.lower()] = backend


def registered_schemes() -> list[str]:
    """The URL schemes that can be opened, sorted."""
    return sorted(_SCHEMES)


def default_storage_url() -> str:
    """``$RAY_DURABLE_STORAGE`` if set, else ray.workflow's old default path."""
    return os.environ.get(STORAGE_ENV_VAR) or DEFAULT_STORAGE


def open_storage(url: str | None = None, **options) -> Storage:
    """Open the backend for ``url``: a plain path, ``file://...`` or ``s3://bucket/prefix``.

    Args:
        url: where the logs live; None means :func:`default_storage_url`.
        **options: backend options, e.g. ``endpoint_url`` and ``region_name`` for S3.

    Raises:
        UnknownSchemeError: no backend is registered for the URL's scheme.
        StorageURLError: the URL is blank or padded with whitespace.
    """
    if url is None:
        url = default_storage_url()
    if not isinstance(url, str):
        raise UnknownSchemeError(f"storage URL must be a string, got {url!r}")
    if not url.strip():  # never the default in disguise, nor a directory named by spaces
        raise StorageURLError(
            f"storage URL {url!r} is blank: pass a path, file://PATH or s3://BUCKET/PREFIX, "
            "or leave it unset (None) for the default")
    scheme = urlsplit(url).scheme.lower() if "://" in url else "file"
    backend = _SCHEMES.get(scheme)
    if backend is None:
        raise UnknownSchemeError(
            f"unknown storage URL scheme {scheme!r} in {url!r}: use a path, file://PATH "
            f"or s3://BUCKET/PREFIX (registered schemes: {', '.join(registered_schemes())}); "
            "a third-party backend must call storage_backends.register_scheme() first"
        )
    return backend.from_url(url, **options)
