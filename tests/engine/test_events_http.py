"""HTTP events through a real Ray Serve HTTP proxy, with real HTTP requests (issue 12, item 4).

The proxy listens on a free port (the ``serve_url`` fixture), not Serve's 8000. The provider
is deployed once per storage (local, then S3 on moto) and answers 2.47's endpoint,
``POST /event/send_event/{workflow_id}`` with ``{"event_key", "event_payload"}``. 2.47 answered
200 only after the workflow checkpointed the event, 404 when the wait had not registered yet,
404 for a body without a field, and 500 for an event sent twice (tried on 2.47.1; its test
suite asked for four CPUs because each wait held a worker).
"""

import socket

import pytest
import ray
import requests

import engine as workflow
from engine.store._spec import StorageSpec
from engine.api._init import context
from engine.http_event_provider import HTTPListener, start_http_event_provider
from engine.runtime._http_deploy import deploy_task
from engine.store._sync import run_sync
from replay import EventAwaited, read_mailbox
from tests.engine import event_tasks as et


@pytest.fixture(scope="module", params=["local", "s3"])
def http_storage(request, serve_url, local_storage_url, moto_server):
    if request.param == "local":
        url, options = local_storage_url, {}
    else:
        url, options = request.getfixturevalue("session_s3_url"), {"endpoint_url": moto_server}
    workflow.init(url, storage_options=options)
    start_http_event_provider()  # this storage's provider takes the place of the other's
    return {"url": url, "options": options, "base": serve_url}


@pytest.fixture
def http(http_storage, wid):
    workflow.init(http_storage["url"], storage_options=http_storage["options"])
    return http_storage


def _post(http, workflow_id, body=None, data=None):
    url = f"{http['base']}/event/send_event/{workflow_id}"
    if data is not None:
        return requests.post(url, data=data, timeout=60, headers={"content-type": "application/json"})
    return requests.post(url, json=body, timeout=60)


_wait_for = et.wait_for


def _awaited(workflow_id):
    return et.log_of(workflow_id, EventAwaited)


def _sent(workflow_id):
    return run_sync(read_mailbox(context().storage, workflow_id)).events


def test_an_http_event_resumes_the_waiting_task(http, wid):
    ref = workflow.run_async(et.stamp.bind(workflow.wait_for_event(HTTPListener, event_key="approval")),
                             workflow_id=wid)
    _wait_for(lambda: _awaited(wid), "the wait")
    response = _post(http, wid, {"event_key": "approval", "event_payload": {"by": "ops", "n": [1, 2]}})
    assert response.status_code == 200, response.text
    assert response.json() == {"workflow_id": wid, "event_key": "approval", "mailbox_seq": 0}
    _seq, sent = _sent(wid)["approval"]  # 200 only once durable: it is in storage now
    assert sent.sender.startswith("http ")
    assert ray.get(ref)["value"] == ("approval", {"by": "ops", "n": [1, 2]})


def test_an_http_event_before_the_wait_starts_is_accepted(http, wid, tmp_path):
    marker = str(tmp_path / "go")
    key = et.key_when_marked.bind("early", marker)
    ref = workflow.run_async(workflow.wait_for_event(HTTPListener, event_key=key), workflow_id=wid)
    response = _post(http, wid, {"event_key": "early", "event_payload": "first"})
    assert response.status_code == 200, response.text  # 2.47: 404, "registered before resending"
    assert not _awaited(wid)
    open(marker, "w").close()
    assert ray.get(ref) == ("early", "first")


def test_http_errors_say_what_is_wrong_and_record_nothing(http, wid):
    ref = workflow.run_async(workflow.wait_for_event(HTTPListener, event_key="k"), workflow_id=wid)
    _wait_for(lambda: _awaited(wid), "the wait")
    cases = [
        (dict(data=b"{not json"), 400, "not JSON"),
        (dict(body=["event_key", "event_payload"]), 400, "must be a JSON object"),
        (dict(body={"event_key": "k"}), 400, "lacks 'event_payload'"),
        (dict(body={"event_payload": 1}), 400, "lacks 'event_key'"),
        (dict(body={"event_key": 5, "event_payload": 1}), 400, "event_key must be a string"),
    ]
    for kwargs, status, text in cases:
        response = _post(http, wid, **kwargs)
        assert response.status_code == status and text in response.json()["error"]["message"], response.text
        assert response.json()["error"]["code"] == status
    unknown = _post(http, f"{wid}-nobody", {"event_key": "k", "event_payload": 1})
    assert unknown.status_code == 404 and "does not exist" in unknown.text
    invalid = _post(http, "bad%20id", {"event_key": "k", "event_payload": 1})
    assert invalid.status_code == 404, invalid.text
    assert _sent(wid) == {}  # none of that was recorded
    assert _post(http, wid, {"event_key": "k", "event_payload": "one"}).status_code == 200
    twice = _post(http, wid, {"event_key": "k", "event_payload": "two"})
    assert twice.status_code == 409 and "already sent" in twice.text
    assert ray.get(ref) == ("k", "one")
    ended = _post(http, wid, {"event_key": "other", "event_payload": 1})
    assert ended.status_code == 409 and "SUCCESSFUL" in ended.text


def test_a_storage_failure_is_a_500_and_records_nothing(http, wid, local_storage_url):
    """The provider's storage unreachable (an S3 endpoint nobody listens on): 500, "send it again"."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    nowhere = StorageSpec.from_url("s3://nowhere/events", {"endpoint_url": dead, "max_attempts": 1,
                                                           "connect_timeout": 1})
    ray.get(deploy_task.remote(nowhere, None, True))
    try:
        response = _post(http, wid, {"event_key": "k", "event_payload": 1})
        assert response.status_code == 500 and "send it again" in response.text, response.text
    finally:
        start_http_event_provider()


def test_deploying_the_provider_leaves_this_process_as_it_was(http, wid):
    """Importing the provider runs Serve's ``serve.ingress``, which makes thread locks picklable in
    the process that does it; the deployment runs in a worker of its own, so in the driver an
    unpicklable argument is still refused."""
    import sys
    import threading

    from tests.engine import tasks

    workflow.run_async(workflow.wait_for_event(HTTPListener, event_key="k"), workflow_id=wid)
    assert "engine.runtime._http_provider" not in sys.modules
    with pytest.raises(TypeError, match="cannot pickle"):
        tasks.add.bind(threading.Lock(), 1)
    workflow.cancel(wid)
