"""Engine fixtures: one storage per backend (Ray: ``ray_runtime`` in tests/conftest.py).
 Each backend gets one storage for the whole session (so one
manager actor each); tests keep apart by using fresh workflow ids.
"""

import time
import uuid

import pytest
import ray

import engine as workflow
from engine.api._init import context
from engine._names import NAMESPACE


@pytest.fixture(scope="session")
def local_storage_url(tmp_path_factory):
    return f"file://{tmp_path_factory.mktemp('engine-store')}"


@pytest.fixture(scope="session")
def session_s3_url(s3_admin):
    bucket = f"engine-{uuid.uuid4().hex[:12]}"
    s3_admin.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/workflows"


@pytest.fixture(params=["local", "s3"])
def backend(request, ray_runtime, local_storage_url, moto_server):
    """Initialise the engine on local storage, then (second param) on S3 via moto."""
    if request.param == "local":
        workflow.init(local_storage_url)
        return {"url": local_storage_url, "options": {}}
    url = request.getfixturevalue("session_s3_url")
    options = {"endpoint_url": moto_server}
    workflow.init(url, storage_options=options)
    return {"url": url, "options": options}


@pytest.fixture
def local(ray_runtime, local_storage_url):
    """Local storage only (for tests that poke at files or need no S3)."""
    workflow.init(local_storage_url)
    return {"url": local_storage_url, "options": {}}


@pytest.fixture
def wid():
    return "t-" + uuid.uuid4().hex[:12]


def own_storage_of(request, tmp_path, moto_server, prefix: str = "fresh") -> tuple[str, dict]:
    """(url, options) of a new, empty storage for ``request.param`` ("local" or "s3")."""
    if request.param == "local":
        return f"file://{tmp_path}/store", {}
    bucket = f"{prefix}-{uuid.uuid4().hex[:12]}"
    request.getfixturevalue("s3_admin").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/wf", {"endpoint_url": moto_server}


@pytest.fixture(params=["local", "s3"])
def fresh_backend(request, ray_runtime, tmp_path, moto_server):
    """A storage of its own (and so a manager of its own), for tests that count every workflow."""
    url, options = own_storage_of(request, tmp_path, moto_server)
    workflow.init(url, storage_options=options)
    return {"url": url, "options": options}


@pytest.fixture(params=["local", "s3"])
def own_storage(request, ray_runtime, tmp_path, moto_server):
    """A storage nobody has initialised yet: the next init makes its manager, with its options."""
    if request.param == "local":
        return f"file://{tmp_path}/store", {}
    bucket = f"own-{uuid.uuid4().hex[:12]}"
    request.getfixturevalue("s3_admin").create_bucket(Bucket=bucket)
    return f"s3://{bucket}/wf", {"endpoint_url": moto_server}


@pytest.fixture
def kill_manager():
    """``kill_manager(backend)``: kill the manager actor as a crash would (its runs die with
    it), and start a fresh one for the same storage."""
    def kill(backend):
        ray.kill(context().manager, no_restart=True)
        deadline = time.monotonic() + 30
        while True:  # its name is released once it is dead
            try:
                ray.get_actor(context().manager_name, namespace=NAMESPACE)
            except ValueError:
                break
            assert time.monotonic() < deadline, "the killed manager's name was never released"
            time.sleep(0.1)
        workflow.init(backend["url"], storage_options=backend["options"])
    return kill


@pytest.fixture(scope="session")
def serve_url(ray_runtime):
    """Ray Serve's HTTP proxy on this session's cluster, on a free port (never Serve's default
    8000, which another cluster on the machine may hold): ``http://127.0.0.1:PORT``. Tests
    whose workflows wait on an HTTPListener ask for it, so the provider those waits deploy
    lands on this proxy."""
    import socket

    from ray import serve

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()
