"""Bad input at the registry level, and a third-party backend plugged in with register_scheme."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from urllib.parse import urlsplit

import pytest

import storage_backends
from storage_backends import (
    DEFAULT_STORAGE,
    STORAGE_ENV_VAR,
    InvalidIdError,
    LocalStorage,
    Record,
    Storage,
    StorageError,
    UnknownSchemeError,
    default_storage_url,
    is_system_id,
    open_storage,
    register_scheme,
    registered_schemes,
    validate_blob_name,
    validate_log_id,
)
from storage_backends import _registry


@pytest.fixture
def clean_registry(monkeypatch):
    """Registrations made by a test are undone after it."""
    monkeypatch.setattr(_registry, "_SCHEMES", dict(_registry._SCHEMES))


# --- ids -------------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", [
    "", ".", "..", "a..b", "...", "../x", "x/..", "a/b", "a\\b", "/abs", "C:\\x", "c:x", "a:b",
    ".hidden", "-flag", "+plus", "~home", "$HOME", "a*b", "a?b", "a|b", "a;b", "a'b", 'a"b', "a\tb",
    "a b", " lead", "trail ", "new\nline", "nul\x00", "\x7f", "caf\u00e9", "\u0430dmin",  # Cyrillic a
    "\uff41", "x" * 129, "_ x", "_" + "x" * 128, "%2e%2e", "a%2fb", "system:", "system:_x",
    None, 7, 1.5, b"bytes", ["list"], object(),
])
def test_invalid_workflow_ids(bad):
    with pytest.raises(InvalidIdError) as info:
        validate_log_id(bad)
    assert "workflow id" in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, StorageError)


@pytest.mark.parametrize("good", ["a", "A", "0", "wf-1", "wf_1", "wf.1", "a.b.c", "x" * 128, "_index",
                                  "_x" + "y" * 126, "a-", "a_", "2024-01-01T00.00.00Z", "_", "__", "_-x",
                                  "_.x", "__x", "system:index"])
def test_valid_workflow_ids(good):
    assert validate_log_id(good) == good


def test_system_ids():
    assert is_system_id("system:index") and not is_system_id("index") and not is_system_id("_index")


@pytest.mark.parametrize("bad", ["", ".", "..", "_x", "a/b", "../b", ".tmp", "x" * 201, "a b", None, 3])
def test_invalid_blob_names(bad):
    with pytest.raises(InvalidIdError) as info:
        validate_blob_name(bad)
    assert "blob name" in str(info.value)


def test_blob_name_length_limit():
    assert validate_blob_name("x" * 200) == "x" * 200


@pytest.mark.parametrize("bad", ["../escape", "a/b", "", ".x", "system:_"])
async def test_every_local_method_refuses_bad_ids_before_touching_the_disk(tmp_path, bad):
    root = tmp_path / "store"
    storage = LocalStorage(str(root))
    calls = [
        storage.append(bad, [b"x"], 0), storage.read_all(bad), storage.next_seq(bad), storage.exists(bad),
        storage.delete(bad), storage.put_blob(bad, "b", b"x"), storage.get_blob(bad, "b"),
        storage.blob_exists(bad, "b"), storage.delete_blob(bad, "b"),
    ]
    for call in calls:
        with pytest.raises(InvalidIdError):
            await call
    with pytest.raises(InvalidIdError):
        async for _ in storage.read(bad):
            pass
    for method in (storage.get_blob, storage.blob_exists, storage.delete_blob):
        with pytest.raises(InvalidIdError):
            await method("ok", "../../etc/passwd")
    assert not root.exists()  # nothing was created anywhere
    await storage.close()


# --- URLs and schemes -------------------------------------------------------------------------

def test_an_unknown_scheme_names_itself_and_the_registered_ones():
    with pytest.raises(UnknownSchemeError) as info:
        open_storage("gs://bucket/prefix")
    message = str(info.value)
    assert "'gs'" in message and "gs://bucket/prefix" in message
    for scheme in registered_schemes():
        assert scheme in message
    assert {"file", "s3"} <= set(registered_schemes())
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("url", [42, b"file:///tmp"])
def test_a_url_that_is_not_a_string(url):
    with pytest.raises(UnknownSchemeError):
        open_storage(url)


def test_file_urls_and_plain_paths(tmp_path, monkeypatch):
    assert open_storage(str(tmp_path)).root == str(tmp_path)
    assert open_storage(f"file://{tmp_path}").root == str(tmp_path)
    assert open_storage(f"FILE://{tmp_path}").root == str(tmp_path)  # schemes are case-insensitive
    assert open_storage(f"file://{tmp_path}/with%20space").root == f"{tmp_path}/with space"
    monkeypatch.chdir(tmp_path)
    assert open_storage("relative/dir").root == str(tmp_path / "relative" / "dir")
    with pytest.raises(StorageError):
        open_storage("file://")
    with pytest.raises(TypeError):
        open_storage(f"file://{tmp_path}", endpoint_url="http://x")  # an S3 option on a path


def test_the_default_storage(monkeypatch, tmp_path):
    monkeypatch.delenv(STORAGE_ENV_VAR, raising=False)
    assert default_storage_url() == DEFAULT_STORAGE == "/tmp/ray/workflow_data"
    monkeypatch.setenv(STORAGE_ENV_VAR, str(tmp_path / "env"))
    assert open_storage().root == str(tmp_path / "env")


@pytest.mark.parametrize("not_a_backend", [object, dict, "file", None, 42,
                                           lambda url: None, Record])
def test_register_scheme_wants_a_storage_subclass(not_a_backend, clean_registry):
    with pytest.raises(TypeError):
        register_scheme("bad", not_a_backend)
    assert "bad" not in registered_schemes()


def test_register_scheme_refuses_an_instance(tmp_path, clean_registry):
    with pytest.raises(TypeError):
        register_scheme("inst", LocalStorage(str(tmp_path)))


# --- a third-party backend -----------------------------------------------------------------------

class MemTestStorage(Storage):
    """A tiny third-party backend: counts its calls and delegates to LocalStorage (memtest://PATH)."""

    scheme = "memtest"

    def __init__(self, root: str, label: str = ""):
        self._inner = LocalStorage(root)
        self.url = f"memtest://{root}"
        self.label = label
        self.calls: list[str] = []

    @classmethod
    def from_url(cls, url: str, **options) -> MemTestStorage:
        parts = urlsplit(url)
        return cls(parts.netloc + parts.path, **options)

    async def append(self, log_id: str, records: Sequence[bytes], expected_next_seq: int) -> int:
        self.calls.append("append")
        return await self._inner.append(log_id, records, expected_next_seq)

    async def read(self, log_id: str, from_seq: int = 0) -> AsyncIterator[Record]:
        self.calls.append("read")
        async for record in self._inner.read(log_id, from_seq):
            yield record

    async def next_seq(self, log_id: str) -> int:
        return await self._inner.next_seq(log_id)

    async def list_logs(self) -> list[str]:
        return await self._inner.list_logs()

    async def delete(self, log_id: str) -> bool:
        return await self._inner.delete(log_id)

    async def put_blob(self, log_id: str, name: str, data: bytes) -> None:
        await self._inner.put_blob(log_id, name, data)

    async def get_blob(self, log_id: str, name: str) -> bytes:
        return await self._inner.get_blob(log_id, name)

    async def blob_exists(self, log_id: str, name: str) -> bool:
        return await self._inner.blob_exists(log_id, name)

    async def delete_blob(self, log_id: str, name: str) -> bool:
        return await self._inner.delete_blob(log_id, name)

    async def close(self) -> None:
        await self._inner.close()


async def test_a_third_party_backend_is_opened_by_open_storage(tmp_path, clean_registry):
    with pytest.raises(UnknownSchemeError):
        open_storage(f"memtest://{tmp_path}")
    register_scheme("MemTest", MemTestStorage)  # registered case-insensitively
    assert "memtest" in registered_schemes()
    storage = open_storage(f"memtest://{tmp_path}", label="mine")
    assert type(storage) is MemTestStorage and storage.label == "mine"
    assert repr(storage) == f"MemTestStorage('memtest://{tmp_path}')"
    async with storage:
        assert await storage.append("wf", [b"a", b"b"], 0) == 2
        assert [r.data for r in await storage.read_all("wf")] == [b"a", b"b"]  # the base class's read_all
        assert await storage.exists("wf")
        assert storage.calls == ["append", "read"]
    # it is the same data a LocalStorage on that directory sees
    assert [r.data for r in await LocalStorage(str(tmp_path)).read_all("wf")] == [b"a", b"b"]
    with pytest.raises(UnknownSchemeError) as info:
        open_storage("nope://x")
    assert "memtest" in str(info.value)


def test_the_package_registers_file_and_s3():
    assert storage_backends.open_storage is open_storage
    assert _registry._SCHEMES["file"] is LocalStorage
    assert _registry._SCHEMES["s3"] is storage_backends.S3Storage
