"""Each page of the compatibility suite runs on a local storage of its own (one manager each)."""

import time
import uuid

import pytest

import engine as workflow


@pytest.fixture(scope="module")
def page_url(tmp_path_factory, request):
    name = request.module.__name__.rsplit(".", 1)[-1]
    return f"file://{tmp_path_factory.mktemp(name)}/store"


@pytest.fixture
def page(ray_runtime, page_url):
    """The page's storage, initialised for this test (other tests may have switched it)."""
    workflow.init(page_url)
    return page_url


@pytest.fixture
def fresh_storage(ray_runtime, tmp_path):
    """A storage (and manager) of its own, for tests that change its queueing limits."""
    url = f"file://{tmp_path}/own-{uuid.uuid4().hex[:6]}"
    return url


@pytest.fixture
def wait_for():
    """``wait_for(condition, what)``: poll until ``condition()`` is true, failing after a generous bound."""
    def wait(condition, what: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)
    return wait
