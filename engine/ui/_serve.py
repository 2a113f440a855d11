"""The UI's web server over a storage (standard library ``http.server``).

It reads storage only, never Ray: the list comes from :func:`engine.store._status.list_workflows`
and a workflow's page from the replay tool's tolerant reader (a damaged log shows what is
readable) and the one status rule. Storage calls run on the process's storage loop
(:func:`engine.store._sync.run_sync`), so the server's threads share one connection pool.

Routes: ``/`` (``?status=S&q=TEXT``), ``/workflows/ID`` (``?payloads=1`` with ``--load-payloads``),
``/fragment/list``, ``/fragment/workflows/ID`` (the parts a page refreshes), ``/api/workflows`` and
``/api/workflows/ID`` (JSON).
"""

from __future__ import annotations

import difflib
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from replay import WorkflowStatus
from replay._export import state_dict
from replay._inspect import ToolError, fold_log, load_payload_repr, read_log
from replay._render_text import payload_targets
from replay._spans import build_timeline
from storage_backends import InvalidIdError, Storage

from ..store import _index
from ..store._status import lease_of, list_workflows, storage_status
from ..store._sync import run_sync, storage_for
from . import _pages

logger = logging.getLogger(__name__)


class UiServer(ThreadingHTTPServer):
    """The HTTP server, holding what every request needs."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], storage_url: str, storage_options: dict[str, Any],
                 load_payloads: bool = False):
        super().__init__(address, _Handler)
        self.storage_url = storage_url
        self.storage: Storage = storage_for(storage_url, storage_options)
        self.load_payloads = load_payloads

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


def serve(storage_url: str, storage_options: dict[str, Any], host: str = "127.0.0.1", port: int = 8365,
          load_payloads: bool = False) -> UiServer:
    """Start serving in a background thread; ``server.shutdown()`` stops it."""
    server = UiServer((host, port), storage_url, storage_options, load_payloads)
    threading.Thread(target=server.serve_forever, name="ray-durable-ui", daemon=True).start()
    return server


class _Handler(BaseHTTPRequestHandler):
    server: UiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # through logging, not stderr
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        path = unquote(parts.path)
        try:
            if path == "/":
                self._list(query, fragment=False)
            elif path == "/fragment/list":
                self._list(query, fragment=True)
            elif path.startswith("/workflows/"):
                self._workflow(path.removeprefix("/workflows/"), query, fragment=False)
            elif path.startswith("/fragment/workflows/"):
                self._workflow(path.removeprefix("/fragment/workflows/"), query, fragment=True)
            elif path == "/api/workflows":
                self._api_list(query)
            elif path.startswith("/api/workflows/"):
                self._api_workflow(path.removeprefix("/api/workflows/"))
            else:
                self._send(404, "text/plain", f"not found: {path}\n")
        except (InvalidIdError, ToolError) as exc:
            self._send(404, "text/plain", f"{exc}\n")
        except BrokenPipeError:
            pass
        except Exception as exc:  # noqa: BLE001 - a page says what went wrong; the server goes on
            logger.exception("ray-durable ui: %s failed", self.path)
            self._send(500, "text/plain", f"error: {type(exc).__name__}: {exc}\n")

    # --- pages ---------------------------------------------------------------------------

    def _rows(self, query: dict[str, list[str]]):
        statuses = [s.upper() for s in query.get("status", []) if s.upper() in WorkflowStatus.__members__]
        text = (query.get("q") or [""])[0].strip()
        wanted = {WorkflowStatus(s) for s in statuses} or None
        rows = run_sync(list_workflows(self.server.storage, wanted))
        if text:
            rows = [r for r in rows if text.lower() in r.workflow_id.lower()]
        rows.sort(key=lambda r: (-(r.start_time or 0.0), r.workflow_id))  # newest first
        return rows, statuses, text

    def _list(self, query: dict[str, list[str]], fragment: bool) -> None:
        rows, statuses, text = self._rows(query)
        render = _pages.list_fragment if fragment else _pages.list_page
        self._send(200, "text/html", render(rows, self.server.storage_url, statuses, text))

    def _workflow(self, workflow_id: str, query: dict[str, list[str]], fragment: bool) -> None:
        storage = self.server.storage
        log = run_sync(read_log(storage, workflow_id))
        if not log.entries and log.damage is None:
            known = run_sync(_index.list_workflow_ids(storage))
            close = difflib.get_close_matches(workflow_id, known, n=5, cutoff=0.5)
            self._send(404, "text/html", _pages.not_found_page(workflow_id, self.server.storage_url, close))
            return
        folded = fold_log(log)
        events = [entry.event for entry in log.entries[:folded.applied]]
        timeline = build_timeline(folded.state, events)
        status, lease = storage_status(folded.state.status, run_sync(lease_of(storage, folded.state)))
        damage = str(log.damage) if log.damage is not None else (
            str(folded.problem) if folded.problem is not None else None)
        outputs = None
        if self.server.load_payloads and query.get("payloads") == ["1"]:
            outputs = {key: run_sync(load_payload_repr(storage, workflow_id, ref, 2000 if key == "" else 300))
                       for key, ref in payload_targets(folded.state).items()}
        render = _pages.workflow_fragment if fragment else _pages.workflow_page
        self._send(200, "text/html", render(timeline, status, lease, log.entries, damage, outputs,
                                            self.server.load_payloads))

    def _api_list(self, query: dict[str, list[str]]) -> None:
        rows, _statuses, _text = self._rows(query)
        self._send(200, "application/json", json.dumps([r.to_dict() for r in rows]))

    def _api_workflow(self, workflow_id: str) -> None:
        log = run_sync(read_log(self.server.storage, workflow_id))
        if not log.entries and log.damage is None:
            self._send(404, "application/json", json.dumps({"error": f"no workflow {workflow_id!r}"}))
            return
        folded = fold_log(log)
        status, lease = storage_status(folded.state.status,
                                       run_sync(lease_of(self.server.storage, folded.state)))
        doc = state_dict(folded.state)
        doc.update(status=str(status), logged_status=str(folded.state.status),
                   lease=None if lease is None else lease.to_dict())
        self._send(200, "application/json", json.dumps(doc, default=repr))

    def _send(self, code: int, content_type: str, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)
