"""Shared fixtures. Ray is started only by tests/engine (see its conftest).

S3 fixtures (any test suite may use them; they start nothing until asked for):

``moto_server`` (session)
    Starts a real ``moto_server`` process on 127.0.0.1 at a free port, waits
    until it answers, and yields its endpoint URL (``http://127.0.0.1:PORT``);
    it is killed at the end of the session. While it runs, the environment
    holds fake credentials (``AWS_ACCESS_KEY_ID=testing`` ...),
    ``AWS_DEFAULT_REGION=us-east-1``, and no ``AWS_ENDPOINT_URL*`` or AWS
    config files from the host, so child processes inherit a sane setup.
``s3_url`` (function)
    A fresh, empty bucket on that server, as ``s3://<bucket>/some/prefix``.
``s3_options`` (function)
    The ``open_storage`` keyword arguments that reach the server:
    ``{"endpoint_url": moto_server}``. Use as
    ``open_storage(s3_url, **s3_options)``.
``s3_admin`` (session)
    A plain (sync) boto3 S3 client on the same server, for setting up or
    inspecting raw objects behind the backend's back.
``ray_runtime`` (session)
    One Ray cluster of the session's own (``address="local"``: never one that
    ``ray start`` left running on the machine), started after the moto server
    so its workers inherit the fake AWS credentials. Only tests/engine and
    tests/reliability ask for it.
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

_FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_HOST_AWS_VARS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                  "AWS_REGION", "AWS_RETRY_MODE", "AWS_MAX_ATTEMPTS", "AWS_CA_BUNDLE")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto_server did not answer at {url} within {timeout:.0f}s")


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory):
    """Endpoint URL of a real moto_server process (see the module docstring)."""
    with pytest.MonkeyPatch.context() as env:
        for name in _HOST_AWS_VARS:
            env.delenv(name, raising=False)
        for name, value in _FAKE_AWS_ENV.items():
            env.setenv(name, value)
        missing = str(tmp_path_factory.mktemp("aws") / "absent")
        env.setenv("AWS_CONFIG_FILE", missing)
        env.setenv("AWS_SHARED_CREDENTIALS_FILE", missing)

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        try:
            _wait_until_up(url, process)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="session")
def ray_runtime(moto_server):
    import ray

    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False,
             runtime_env={"env_vars": {"RAY_DURABLE_TEST": "1"}})
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_admin(moto_server):
    """A plain boto3 client on the moto server, for test setup (buckets, raw objects)."""
    import boto3

    return boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")


@pytest.fixture
def s3_url(s3_admin):
    """A fresh, empty bucket on the moto server, as ``s3://<bucket>/some/prefix``."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    s3_admin.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/some/prefix"


@pytest.fixture
def s3_options(moto_server):
    """``open_storage`` keyword arguments that point the S3 backend at the moto server."""
    return {"endpoint_url": moto_server}


# --- what `make test` leaves to `make test-slow` -------------------------------------------------
# `make test` runs one test of each kind; a test marked `slow` is a second one of a kind it
# already has (README "Tests"). Besides the tests marked by hand, the S3 variants of these
# files go there: the same engine paths over the storage API, which the S3 conformance suite
# and the engine tests that stay in `make test` (api, migration, fork, upgrade, outcomes,
# compaction, the crash matrix's S3 seed) already run on S3.
S3_VARIANTS_IN_SLOW_SET = frozenset({
    "tests/engine/test_gc.py", "tests/engine/test_gc_crash.py", "tests/engine/test_status_index.py",
    "tests/engine/test_shards.py", "tests/engine/test_events.py", "tests/engine/test_events_http.py",
    "tests/engine/test_ray_workflow_compat_events.py", "tests/engine/test_management.py",
    "tests/reliability/test_security.py",
})


def _is_s3_variant(item) -> bool:
    callspec = getattr(item, "callspec", None)
    return callspec is not None and "s3" in re.split(r"[-\[\]]", callspec.id)


def pytest_collection_modifyitems(config, items):
    root = config.rootpath
    for item in items:
        if item.path.relative_to(root).as_posix() in S3_VARIANTS_IN_SLOW_SET and _is_s3_variant(item):
            item.add_marker(pytest.mark.slow)

