"""Joining or starting Ray on purpose, for ``workflow.init`` and the CLI.

A bare ``ray.init()`` joins the cluster recorded in Ray's temp directory
(``<temp dir>/ray_current_cluster``, written by ``ray start``) even when that
cluster died long ago, and then retries the dead GCS for minutes. Here the
engine decides first:

* an address the user asked for (``address=``, ``--address``, ``$RAY_ADDRESS``)
  is joined if something answers there, else it is a :class:`RayClusterUnreachableError`
  within seconds that names the address and where it came from;
* ``address="auto"`` means the recorded cluster, with the same check;
* otherwise the recorded cluster is joined only if it is really alive; a stale
  record is ignored (logged) and a local Ray is started, as ``ray.init`` does
  when nothing was ever recorded.

"Alive" is a TCP connection to the GCS port within :data:`CONNECT_TIMEOUT_S`.
``ray://`` (Ray Client) addresses are passed to Ray unchanged.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

import ray
from ray._common.utils import get_ray_address_file

from ..exceptions import WorkflowError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3.0


class RayClusterUnreachableError(WorkflowError, ConnectionError):
    """The Ray cluster the engine was told to join does not answer.

    Attributes:
        address: the GCS address tried (``host:port``).
        source: where the address came from (``address=``, ``$RAY_ADDRESS``, a file path).
    """

    def __init__(self, address: str, source: str, hint: str):
        self.address = address
        self.source = source
        self.hint = hint
        super().__init__(f"no Ray cluster answers at {address} (from {source}) within "
                         f"{CONNECT_TIMEOUT_S:.0f}s: {hint}")

    def __reduce__(self):
        return (type(self), (self.address, self.source, self.hint))


def start_or_join(ray_init_kwargs: dict[str, Any]) -> None:
    """``ray.init`` with an address chosen as the module docstring says (no-op if Ray is up).

    Args:
        ray_init_kwargs: keyword arguments for ``ray.init``; ``address`` and ``_temp_dir``
            are read here. The dashboard is off unless asked for.

    Raises:
        RayClusterUnreachableError: an address that was asked for does not answer.
    """
    if ray.is_initialized():
        return
    kwargs = dict(ray_init_kwargs)
    kwargs.setdefault("include_dashboard", False)
    kwargs["address"] = choose_address(kwargs.get("address"), kwargs.get("_temp_dir"))
    ray.init(**kwargs)


def choose_address(address: str | None, temp_dir: str | None = None) -> str:
    """The address to give ``ray.init``: a live ``host:port``, a ``ray://`` URL, or ``"local"``."""
    source = "address="
    if not address:
        address, source = os.environ.get("RAY_ADDRESS") or None, "$RAY_ADDRESS"
    if address == "local" or (address and address.startswith("ray://")):
        return address
    record = get_ray_address_file(temp_dir)
    if address in (None, "auto"):
        recorded = _read(record)
        if recorded is None:
            if address == "auto":
                raise RayClusterUnreachableError(
                    "auto", record, "no cluster was recorded there; start one with 'ray start --head', "
                    "or leave the address unset to start a local Ray")
            return "local"
        if _answers(recorded):
            return recorded
        if address is None:
            logger.info("ignoring %s: the Ray cluster it records (%s) does not answer; starting a "
                        "local Ray (run 'ray stop' or delete the file to drop the record)", record, recorded)
            return "local"
        raise RayClusterUnreachableError(recorded, record, _stale_hint(record))
    if _answers(address):
        return address
    hint = ("check the address, or unset RAY_ADDRESS to start a local Ray" if source == "$RAY_ADDRESS"
            else "check the address, or leave it unset to start a local Ray")
    if address == _read(record):
        hint += "; " + _stale_hint(record)
    raise RayClusterUnreachableError(address, source, hint)


def _stale_hint(record: str) -> str:
    return (f"{record} records a cluster that is gone (a crashed 'ray start'?); run 'ray stop' "
            f"or delete that file, or pass address='local' to start a new local Ray")


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except OSError:
        return None


def _answers(address: str) -> bool:
    """True if something accepts a TCP connection at ``host:port`` within the timeout."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return False
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False

