"""A driver with a Ray cluster of its own, for the two-cluster race: reads "resume WID" lines and
prints one result line each (``OK WID VALUE``, ``RUNNING WID ...`` or ``ERROR WID ...``).

``python -m tests.engine.cluster_race_driver STORAGE``
"""

import sys

import ray

import engine as workflow
from tests.engine.race_driver import serve_resumes


def main() -> None:
    storage = sys.argv[1]
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    workflow.init(storage, recover=False)  # only the explicit resumes race
    serve_resumes()


if __name__ == "__main__":
    main()
