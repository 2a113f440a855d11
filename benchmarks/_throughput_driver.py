"""One of several drivers for benchmarks/throughput.py: joins $RAY_ADDRESS, says READY, waits for
GO on stdin, submits N one-task workflows (or N plain tasks) at once, waits for all, says DONE.

    python benchmarks/_throughput_driver.py durable|plain N STORAGE OPTIONS_JSON
"""

from __future__ import annotations

import json
import os
import sys
import uuid

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import engine as workflow  # noqa: E402
from _shapes import inc  # noqa: E402


def main() -> None:
    kind, n, storage, options = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    workflow.init(storage, storage_options=options)
    tag = uuid.uuid4().hex[:8]
    workflow.run(inc.bind(0), workflow_id=f"drv-warm-{tag}")
    ray.get([inc.remote(i) for i in range(200)])  # this job's own workers up (plain tasks need them)
    print("READY", flush=True)
    sys.stdin.readline()
    if kind == "plain":
        ray.get([inc.remote(i) for i in range(n)])
    else:
        ray.get([workflow.run_async(inc.bind(i), workflow_id=f"drv-{tag}-{i}") for i in range(n)])
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
