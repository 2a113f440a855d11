"""ray.workflow's ids and storage configuration, on a real Ray (issue 10, item 8).

* Workflow ids with a leading '_' (ray.workflow's own tests used ``__function_chain_test``)
  run, list, resume and delete like any other, on local storage and on S3 (moto).
* ``workflow.init("s3://bucket/path?region=...&endpoint_override=...")``: the query parameters
  ray.workflow's ``ray.init(storage=...)`` took (pyarrow's) reach the manager and the workers.
* ``workflow.init(storage=MyStorage(...))``: the management docs' "subclassing the Storage class
  and passing a storage instance". The instance is cloudpickled in the driver; the manager and
  every worker open their own copy. A URL scheme registered with ``register_scheme`` in the
  driver only works the same way.
"""

from __future__ import annotations

import os
import threading
import uuid
from urllib.parse import urlsplit

import pytest
import ray

import engine as workflow
from engine.api._init import context
from storage_backends import LocalStorage, S3Storage, StorageURLError, open_storage, register_scheme
from storage_backends import _registry
from tests.engine import tasks


@ray.remote
def big_with_pid(n):
    """An output too big to inline, so the worker writes it as a blob itself."""
    return b"x" * n, os.getpid()


# --- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["__function_chain_test-", "_", "_status_index-"])
def test_leading_underscore_ids(backend, prefix):
    wid = prefix + uuid.uuid4().hex[:8]
    assert workflow.run(tasks.add.bind(tasks.add.bind(1, 2), 3), workflow_id=wid) == 6
    assert workflow.get_status(wid) == workflow.SUCCESSFUL
    assert workflow.get_output(wid) == 6
    assert (wid, workflow.SUCCESSFUL) in workflow.list_all()
    assert workflow.get_metadata(wid)["status"] == "SUCCESSFUL"
    assert workflow.run(tasks.add.bind(0, 0), workflow_id=wid) == 6  # an existing id resumes
    workflow.delete(wid)
    assert wid not in dict(workflow.list_all())


def test_a_failed_underscore_workflow_resumes(backend, tmp_path):
    wid = "__resume_" + uuid.uuid4().hex[:8]
    marker = str(tmp_path / "marker")
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.fails_until.bind(marker, 7), workflow_id=wid)
    assert dict(workflow.list_all(workflow.FAILED))[wid] == workflow.FAILED
    open(marker, "w").close()
    assert workflow.resume(wid) == 7


@pytest.mark.parametrize("bad", [".hidden", "-flag", "a/b", "../up", "a b", "system:status_index", "a:b", ""])
def test_ids_unsafe_as_file_or_key_names_are_still_refused(backend, bad):
    with pytest.raises(ValueError) as info:
        workflow.run(tasks.add.bind(1, 1), workflow_id=bad)
    assert "workflow id" in str(info.value)


# --- URL query parameters ----------------------------------------------------------------------


def test_s3_url_with_ray_workflow_query_parameters(ray_runtime, moto_server, s3_url):
    host = urlsplit(moto_server).netloc
    url = f"{s3_url}?region=us-east-1&endpoint_override={host}&scheme=http"
    workflow.init(url)  # no storage_options: the endpoint comes from the URL alone
    assert context().storage_url == s3_url
    wid = "q-" + uuid.uuid4().hex[:8]
    data, _pid = workflow.run(big_with_pid.bind(100_000), workflow_id=wid)  # a worker writes a blob
    assert data == b"x" * 100_000
    assert workflow.list_all() == [(wid, workflow.SUCCESSFUL)]
    assert run_list(open_storage(s3_url, endpoint_url=moto_server)) == [wid]


def test_init_again_without_storage_keeps_it(ray_runtime, tmp_path, monkeypatch):
    """ray.workflow's init took only limits, the storage being the cluster's: an init() for new
    limits must not move this process to another storage (not $RAY_DURABLE_STORAGE either)."""
    monkeypatch.setenv("RAY_DURABLE_STORAGE", str(tmp_path / "elsewhere"))
    url = f"file://{tmp_path}/store"
    workflow.init(url, max_running_workflows=3)
    workflow.init()
    assert context().storage_url == url
    workflow.init(max_running_workflows=3)  # (the same limit: no conflict with the first init)
    assert context().storage_url == url


def test_bad_query_parameters_fail_before_anything_runs(ray_runtime, s3_url):
    with pytest.raises(StorageURLError) as info:
        workflow.init(f"{s3_url}?endpoint_url=http://x")
    assert "'endpoint_url'" in str(info.value) and "endpoint_override" in str(info.value)


def run_list(storage):
    from engine.store._sync import run_sync
    return run_sync(storage.list_logs())


# --- storage instances -------------------------------------------------------------------------


class AuditedStorage(LocalStorage):
    """A third-party-style backend: its own constructor (no URL), and behaviour a plain
    LocalStorage lacks (every process that appends or writes a blob leaves its pid behind),
    so a test can tell where the instance itself was used."""

    def __init__(self, root: str, audit_dir: str):
        super().__init__(root)
        self.audit_dir = audit_dir
        self.url = f"audited://{self.root}"

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "audit_dir": self.audit_dir}

    def _audit(self, op: str) -> None:
        os.makedirs(self.audit_dir, exist_ok=True)
        open(os.path.join(self.audit_dir, f"{op}-{os.getpid()}"), "a").close()

    async def append(self, log_id, records, expected_next_seq):
        self._audit("append")
        return await super().append(log_id, records, expected_next_seq)

    async def put_blob(self, log_id, name, data):
        self._audit("put_blob")
        return await super().put_blob(log_id, name, data)


def _audited(audit_dir) -> dict[str, set[int]]:
    seen: dict[str, set[int]] = {}
    for name in os.listdir(audit_dir):
        op, pid = name.rsplit("-", 1)
        seen.setdefault(op, set()).add(int(pid))
    return seen


def test_a_storage_instance_reaches_the_manager_and_the_workers(ray_runtime, tmp_path):
    audit = str(tmp_path / "audit")
    workflow.init(storage=AuditedStorage(str(tmp_path / "store"), audit))
    wid = "inst-" + uuid.uuid4().hex[:8]
    data, worker_pid = workflow.run(big_with_pid.bind(100_000), workflow_id=wid)
    assert data == b"x" * 100_000
    seen = _audited(audit)
    manager_pids = seen["append"] - {os.getpid()}
    assert manager_pids, "the manager appended through a copy of the instance"
    assert worker_pid in seen["put_blob"], "the worker wrote its output through a copy of the instance"
    assert worker_pid not in manager_pids and os.getpid() not in manager_pids
    # The data is where the instance put it, readable by a plain LocalStorage too.
    assert run_list(LocalStorage(str(tmp_path / "store"))) == [wid]
    assert workflow.list_all() == [(wid, workflow.SUCCESSFUL)]
    assert context().storage_url == f"audited://{tmp_path}/store"


def test_an_s3_storage_instance(ray_runtime, s3_url, moto_server):
    bucket, prefix = urlsplit(s3_url).netloc, urlsplit(s3_url).path
    workflow.init(storage=S3Storage(bucket, prefix, endpoint_url=moto_server))
    wid = "s3inst-" + uuid.uuid4().hex[:8]
    data, _pid = workflow.run(big_with_pid.bind(100_000), workflow_id=wid)
    assert data == b"x" * 100_000
    assert run_list(open_storage(s3_url, endpoint_url=moto_server)) == [wid]


class Unpicklable(LocalStorage):
    def __init__(self, root):
        super().__init__(root)
        self.connection = threading.Lock()  # what an eagerly opened client would hold

    def __getstate__(self):
        return self.__dict__


class NoUrl(LocalStorage):
    def __init__(self, root):
        super().__init__(root)
        self.url = ""


@pytest.mark.parametrize("make, words", [
    (Unpicklable, ["Unpicklable", "cannot be pickled", "__getstate__"]),
    (NoUrl, ["NoUrl", "has no url"]),
    (lambda _root: 42, ["URL (str) or a storage_backends.Storage instance", "int"]),
])
def test_bad_storage_instances_are_refused(ray_runtime, tmp_path, make, words):
    with pytest.raises(TypeError) as info:
        workflow.init(storage=make(str(tmp_path)))
    for word in words:
        assert word in str(info.value)


def test_storage_options_do_not_go_with_an_instance(ray_runtime, tmp_path):
    with pytest.raises(ValueError, match="storage_options go with a storage URL"):
        workflow.init(storage=LocalStorage(str(tmp_path)), storage_options={"endpoint_url": "x"})


class ShardedStorage(LocalStorage):
    """A backend registered under its own scheme: ``sharded://<root>``."""

    @classmethod
    def from_url(cls, url, **options):
        storage = cls(urlsplit(url).path)
        storage.url = f"sharded://{storage.root}"
        return storage


@pytest.fixture
def sharded_scheme():
    register_scheme("sharded", ShardedStorage)
    yield
    _registry._SCHEMES.pop("sharded", None)


def test_a_registered_scheme_works_on_ray(ray_runtime, tmp_path, sharded_scheme):
    """register_scheme runs in the driver only; the manager and workers get the opened instance."""
    workflow.init(f"sharded://{tmp_path}/store")
    wid = "sh-" + uuid.uuid4().hex[:8]
    data, _pid = workflow.run(big_with_pid.bind(100_000), workflow_id=wid)
    assert data == b"x" * 100_000
    assert workflow.list_all() == [(wid, workflow.SUCCESSFUL)]
    assert isinstance(context().storage, ShardedStorage)
