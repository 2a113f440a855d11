"""The HTTP event provider: a Ray Serve deployment behind Serve's HTTP proxy.

``POST /event/send_event/{workflow_id}`` with ``{"event_key": ..., "event_payload": ...}``
(ray.workflow 2.47's endpoint and body) puts the event in the workflow's mailbox through the
same code as ``workflow.send_event``, then nudges the driving actor if it is on this cluster.
The answer says what happened to the event, never more than that:

* 200 ``{"workflow_id", "event_key", "mailbox_seq"}``: the event is durable and will be
  delivered (at once if the workflow waits for it, else when it does);
* 400: the body is not JSON, not an object, lacks a field, or the key is not a string;
* 404: no workflow with that id in this storage;
* 409: an event with that key was already delivered, or the workflow has ended;
* 500: storage failed; nothing was accepted, so the event may be sent again.

Errors have 2.47's shape: ``{"error": {"code": ..., "message": ...}}``. The replica asks
for no CPU: it waits on storage, it does not compute.
"""

# No ``from __future__ import annotations`` here: FastAPI reads the route's annotations
# (``request: Request``) at runtime, and Serve's ingress re-binds the methods where string
# annotations no longer resolve.
import json
import logging
from typing import Any, Optional

import ray
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from ray import serve

from storage_backends import InvalidIdError, validate_log_id

from .._names import HTTP_EVENT_PROVIDER_NAME, HTTP_EVENT_ROUTE_PREFIX, NAMESPACE, manager_name
from ..exceptions import DuplicateEventError, WorkflowEventError, WorkflowNotFoundError
from ..store._mailbox import post_event
from ..store._spec import StorageSpec

logger = logging.getLogger(__name__)

app = FastAPI()


def _error(code: int, message: str) -> JSONResponse:
    return JSONResponse(status_code=code, content={"error": {"code": code, "message": message}})


@serve.deployment(num_replicas=1, ray_actor_options={"num_cpus": 0})
@serve.ingress(app)
class HTTPEventProvider:
    """Receives events over HTTP for the workflows of one storage (see the module)."""

    def __init__(self, spec: StorageSpec):
        self.spec = spec
        self.storage_url = spec.url
        self._storage = None  # opened on the replica's event loop, at the first request
        self._manager = None

    @app.post("/send_event/{workflow_id}")
    async def send_event(self, workflow_id: str, request: Request) -> JSONResponse:
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _error(400, f"the body is not JSON ({exc}); send "
                               '{"event_key": "...", "event_payload": ...}')
        if not isinstance(body, dict):
            return _error(400, f"the body must be a JSON object, not {type(body).__name__}")
        missing = [name for name in ("event_key", "event_payload") if name not in body]
        if missing:
            return _error(400, f"the body lacks {' and '.join(map(repr, missing))}; send "
                               '{"event_key": "...", "event_payload": ...}')
        key = body["event_key"]
        if not isinstance(key, str):
            return _error(400, f"event_key must be a string, got {type(key).__name__}")
        try:
            validate_log_id(workflow_id)
        except InvalidIdError as exc:
            return _error(404, str(exc))
        client = request.client.host if request.client is not None else "?"
        try:
            seq = await post_event(self._open(), workflow_id, key, body["event_payload"], sender=f"http {client}")
        except WorkflowNotFoundError as exc:
            return _error(404, str(exc))
        except (DuplicateEventError, WorkflowEventError) as exc:
            return _error(409, str(exc))
        except Exception as exc:  # storage failed: nothing was accepted
            logger.exception("event %r for workflow %s was not recorded", key, workflow_id)
            return _error(500, f"the event was not recorded ({type(exc).__name__}: {exc}); send it again")
        self._nudge(workflow_id)
        return JSONResponse(status_code=200, content={"workflow_id": workflow_id, "event_key": key,
                                                      "mailbox_seq": seq})

    def storage(self) -> str:
        """The storage whose workflows this provider takes events for (called by :func:`deploy`)."""
        return self.storage_url

    def _open(self):
        if self._storage is None:
            self._storage = self.spec.open()
        return self._storage

    def _nudge(self, workflow_id: str) -> None:
        """Tell the storage's manager on this cluster, if there is one (it polls otherwise)."""
        try:
            if self._manager is None:
                self._manager = ray.get_actor(manager_name(self.spec.key), namespace=NAMESPACE)
            self._manager.notify_event.remote(workflow_id)
        except Exception:  # no manager (yet), or it died: look it up again next time
            self._manager = None


def deploy(spec: StorageSpec, http_options: Optional[dict[str, Any]], replace: bool = False) -> None:
    """Deploy the provider for the storage of ``spec`` and return once it answers.

    One provider per cluster (its route is 2.47's ``/event``). If one runs for another storage,
    it is kept, unless ``replace``: then this storage's takes its place.
    """
    if http_options:
        serve.start(http_options=http_options)
    try:
        running = HTTP_EVENT_PROVIDER_NAME in serve.status().applications
    except Exception:  # Serve is not running yet: serve.run starts it
        running = False
    if running:
        current = serve.get_app_handle(HTTP_EVENT_PROVIDER_NAME).storage.remote().result()
        storage_url = spec.url
        if current == storage_url:
            return
        if not replace:
            logger.warning("the HTTP event provider serves storage %s; events for workflows of %s "
                           "can be sent with workflow.send_event or ray-durable send-event",
                           current, storage_url)
            return
    serve.run(HTTPEventProvider.bind(spec), name=HTTP_EVENT_PROVIDER_NAME,
              route_prefix=HTTP_EVENT_ROUTE_PREFIX)
