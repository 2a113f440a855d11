"""How every process of a workflow (driver, manager actor, workers) opens the same storage.

A :class:`StorageSpec` is the storage *instance itself*, cloudpickled once, in the driver,
before it has opened any connection or file handle: whether the driver gave a URL
(``workflow.init("s3://...")``, opened by the scheme's registered backend) or an instance
(``workflow.init(storage=MyStorage(...))``, as ray.workflow's docs describe). Every other
process unpickles its own copy. So a third-party backend reaches the manager and the
workers whether it was registered with ``register_scheme`` in the driver only, or not
registered at all, and whatever its constructor takes.

What a Storage must do to travel this way: be picklable (by reference, from a module the
workers can import, or by value, e.g. defined in ``__main__``), keep connections out of its
pickled state (open them lazily, or drop them in ``__getstate__`` as the built-in backends
do), and set ``url`` to a string that names where its data lives and holds no secret.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import cloudpickle

from storage_backends import Storage, open_storage


@dataclass(frozen=True)
class StorageSpec:
    """A storage as plain, hashable data (plain ``pickle`` carries it cheaply in run contexts).

    Attributes:
        url: the storage's own URL (``Storage.url``: no query, no credentials), for messages.
        key: what makes two specs the same storage: the backend class and its URL. It names
            the storage's manager actor on a cluster.
        data: the cloudpickled Storage instance.
    """

    url: str
    key: str
    data: bytes

    @classmethod
    def of(cls, storage: Storage) -> StorageSpec:
        """The spec of ``storage``, which must not have been used yet (see the module docstring).

        Raises:
            TypeError: not a Storage, no ``url``, or it cannot be pickled and unpickled.
        """
        if not isinstance(storage, Storage):
            raise TypeError(f"storage must be a URL (str) or a storage_backends.Storage instance, "
                            f"got {type(storage).__name__}: {storage!r}")
        kind = f"{type(storage).__module__}.{type(storage).__qualname__}"
        url = getattr(storage, "url", "")
        if not isinstance(url, str) or not url:
            raise TypeError(f"storage instance {kind} has no url: set self.url to a string naming where "
                            "its data lives (no secrets); it names the storage's manager on the cluster")
        try:
            data = cloudpickle.dumps(storage)
            pickle.loads(data)
        except Exception as exc:
            raise TypeError(
                f"storage instance {kind} ({url}) cannot be pickled and unpickled ({type(exc).__name__}: "
                f"{exc}); the manager actor and the workers open their own copy, so it must be picklable "
                "and keep open connections out of its pickled state (open them lazily, or drop them "
                "in __getstate__)"
            ) from exc
        return cls(url, f"{kind} {url}", data)

    @classmethod
    def from_url(cls, url: str | None, options: dict[str, Any] | None = None) -> StorageSpec:
        """The spec of ``open_storage(url, **options)`` (None: the default storage).

        Raises:
            UnknownSchemeError, StorageURLError, StorageError: as :func:`storage_backends.open_storage`.
        """
        return cls.of(open_storage(url, **(options or {})))

    def open(self) -> Storage:
        """A fresh copy of the storage, for this process."""
        return pickle.loads(self.data)
