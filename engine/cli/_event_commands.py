"""``ray-durable send-event``: an event into a workflow's mailbox, from a shell.

Storage alone makes the event durable (the same code as ``workflow.send_event`` and the HTTP
endpoint). Then, if a Ray cluster is up (``--address``, ``$RAY_ADDRESS``, or the one ``ray
start`` recorded on this machine), the storage's manager there is told, so a waiting workflow
takes the event at once; no cluster is ever started for it. Otherwise the wait finds the
event at its next mailbox read, or when the workflow is resumed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys

from ._common import UsageError, out, ray_output_to_stderr, storage_args, with_storage


def cmd_send_event(args: argparse.Namespace) -> int:
    from ..store._mailbox import post_event

    text = sys.stdin.read() if args.payload == "-" else args.payload
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--json: the payload is not JSON ({exc}); e.g. --json '{{\"ok\": true}}'") from None
    sender = f"cli {os.getpid()}@{socket.gethostname()}"
    seq = with_storage(args, lambda storage: post_event(storage, args.workflow_id, args.event_key, payload,
                                                         sender=sender))
    told = _tell_manager(args.address, storage_key(args), args.workflow_id)
    out(f"sent event {args.event_key!r} to workflow {args.workflow_id!r} (mailbox seq {seq}); "
                     + ("its driver was told\n" if told else
                        "no cluster driving it was reached: its wait finds the event at its next mailbox "
                        "read (within seconds), or when it is resumed\n"))
    return 0


def storage_key(args) -> str:
    """The key (``StorageSpec.key``) that names the command line's storage's manager on a cluster."""
    from ..store._spec import StorageSpec

    url, options = storage_args(args)
    return StorageSpec.from_url(url, options).key


def _tell_manager(address: str | None, storage_key: str, workflow_id: str) -> bool:
    """Nudge the storage's manager on a running cluster (shard 0, which tells the workflow's
    shard); True if it was told (never starts Ray)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from ..api._ray_cluster import choose_address

    try:
        chosen = choose_address(address)
    except Exception:  # noqa: BLE001 - an address that does not answer: the event is durable anyway
        return False
    if chosen == "local":  # no cluster is up
        return False
    import ray

    from .._names import NAMESPACE, manager_name

    ray_output_to_stderr()
    try:
        ray.init(address=chosen, log_to_driver=False, logging_level=logging.WARNING)
        manager = ray.get_actor(manager_name(storage_key), namespace=NAMESPACE)
        ray.get(manager.notify_event.remote(workflow_id), timeout=30)
        return True
    except Exception:  # noqa: BLE001 - no manager for this storage there
        return False
