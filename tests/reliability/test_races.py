"""Races: a hypothesis state machine of the storage interface against a model, with several
writers (separate storage instances, each with its own caches) on both backends; and N driver
processes racing to resume one workflow.

Promises: an append succeeds exactly when the writer's expected seq is the log's real next
seq, and a conflict writes nothing and says the real next seq; reads, listings and blobs
always equal the model, whatever the writers believed; of N racing resumes, one drives the
workflow, the others are told it is running (or get its output once it has finished), the
output is right and the log is one clean chain.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
import ray
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

import engine as workflow
from engine.api._init import context
from engine.store._sync import run_sync
from replay._verify import verify
from storage_backends import AppendConflictError, BlobNotFoundError, open_storage
from tests.engine import tasks
from tests.reliability._figures import FULL, count

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WRITERS = 3
LOGS = ("a", "b", "c")
NAMES = ("x", "y")


class StorageMachine(RuleBasedStateMachine):
    """Three writers on one store; the model is what the store must hold."""

    url: str = ""
    options: dict = {}
    steps = 0

    @initialize()
    def open(self):
        self.loop = asyncio.new_event_loop()
        base = self.url.rstrip("/") + "/" + uuid.uuid4().hex[:10]
        self.writers = [open_storage(base, **self.options) for _ in range(WRITERS)]
        self.logs: dict[str, list[bytes]] = {log: [] for log in LOGS}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.views: dict[tuple[int, str], int] = {}  # what each writer believes a log's next seq is

    def run(self, coro):
        StorageMachine.steps += 1
        return self.loop.run_until_complete(coro)

    @rule(w=st.integers(0, WRITERS - 1), log=st.sampled_from(LOGS),
          records=st.lists(st.binary(max_size=24), min_size=1, max_size=4))
    def append(self, w, log, records):
        expected, actual = self.views.get((w, log), 0), len(self.logs[log])
        try:
            end = self.run(self.writers[w].append(log, records, expected))
        except AppendConflictError as exc:
            assert expected != actual, f"a false conflict: {exc}"
            assert exc.actual_next_seq in (actual, None)
            self.views[(w, log)] = actual  # what a writer learns from a conflict
            return
        assert expected == actual, f"writer {w} appended at {expected}, but the log was at {actual}"
        assert end == actual + len(records)
        self.logs[log].extend(records)
        self.views[(w, log)] = end

    @rule(w=st.integers(0, WRITERS - 1), log=st.sampled_from(LOGS))
    def refresh(self, w, log):
        self.views[(w, log)] = self.run(self.writers[w].next_seq(log))
        assert self.views[(w, log)] == len(self.logs[log])

    @rule(w=st.integers(0, WRITERS - 1), log=st.sampled_from(LOGS), data=st.data())
    def read(self, w, log, data):
        from_seq = data.draw(st.integers(0, len(self.logs[log]) + 1))
        records = self.run(self.writers[w].read_all(log, from_seq))
        assert [r.data for r in records] == self.logs[log][from_seq:]
        assert [r.seq for r in records] == list(range(from_seq, len(self.logs[log])))

    @rule(w=st.integers(0, WRITERS - 1))
    def list_logs(self, w):
        assert self.run(self.writers[w].list_logs()) == sorted(log for log in LOGS if self.logs[log])

    @rule(w=st.integers(0, WRITERS - 1), log=st.sampled_from(LOGS))
    def delete(self, w, log):
        had = bool(self.logs[log]) or any(key[0] == log for key in self.blobs)
        assert self.run(self.writers[w].delete(log)) == had
        self.logs[log] = []
        self.blobs = {key: v for key, v in self.blobs.items() if key[0] != log}

    @rule(w=st.integers(0, WRITERS - 1), log=st.sampled_from(LOGS), name=st.sampled_from(NAMES),
          data=st.binary(max_size=64))
    def put_blob(self, w, log, name, data):
        self.run(self.writers[w].put_blob(log, name, data))
        self.blobs[(log, name)] = data

    @rule(w=st.integers(0, WRITERS - 1), log=st.sampled_from(LOGS), name=st.sampled_from(NAMES))
    def get_blob(self, w, log, name):
        if (log, name) in self.blobs:
            assert self.run(self.writers[w].get_blob(log, name)) == self.blobs[(log, name)]
        else:
            with pytest.raises(BlobNotFoundError):
                self.run(self.writers[w].get_blob(log, name))

    @rule(w=st.integers(0, WRITERS - 1), log=st.sampled_from(LOGS), name=st.sampled_from(NAMES))
    def delete_blob(self, w, log, name):
        assert self.run(self.writers[w].delete_blob(log, name)) == ((log, name) in self.blobs)
        self.blobs.pop((log, name), None)

    def teardown(self):
        if hasattr(self, "loop"):
            for writer in self.writers:
                self.loop.run_until_complete(writer.close())
            self.loop.close()


MACHINE_SETTINGS = settings(max_examples=200 if FULL else 12, stateful_step_count=40, deadline=None,
                            suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_storage_matches_its_model_with_several_writers(backend, tmp_path, request):
    if backend == "local":
        url, options = f"file://{tmp_path}/store", {}
    else:
        url, options = request.getfixturevalue("s3_url"), {"endpoint_url": request.getfixturevalue("moto_server")}

    class Machine(StorageMachine):
        pass

    Machine.url, Machine.options = url, options
    before = StorageMachine.steps
    run_state_machine_as_test(Machine, settings=MACHINE_SETTINGS)
    count(f"races: storage operations checked against the model ({backend})", StorageMachine.steps - before)


@pytest.mark.parametrize("backend", ["local", "s3"])
async def test_a_stale_writer_after_another_deleted_and_began_the_log_again(backend, tmp_path, request):
    """What the machine found on S3: writer A knows the log ends at seq 1; B deletes it and begins
    it again with 3 records; A's append at 1 must conflict, not land inside B's batch."""
    if backend == "local":
        url, options = f"file://{tmp_path}/store", {}
    else:
        url, options = request.getfixturevalue("s3_url"), {"endpoint_url": request.getfixturevalue("moto_server")}
    a, b = open_storage(url, **options), open_storage(url, **options)
    try:
        assert await a.append("log", [b"old"], 0) == 1
        assert await b.delete("log")
        assert await b.append("log", [b"n0", b"n1", b"n2"], 0) == 3
        with pytest.raises(AppendConflictError) as info:
            await a.append("log", [b"stale"], 1)
        assert info.value.actual_next_seq == 3
        assert [r.data for r in await b.read_all("log")] == [b"n0", b"n1", b"n2"]
        assert await a.append("log", [b"n3"], 3) == 4
        assert [r.data for r in await a.read_all("log")] == [b"n0", b"n1", b"n2", b"n3"]
    finally:
        await a.close()
        await b.close()


# --- N drivers race to resume one workflow ----------------------------------------------------------

RACERS = 4


def test_n_processes_race_to_resume_one_workflow(ray_runtime, tmp_path, wid):
    """Four driver processes (on the session's cluster) resume one FAILED workflow at the same
    instant, released by one file. One drives it; each other one is told it is running, or
    returns the output once it has finished. The resumed task runs once."""
    workflow.init(f"file://{tmp_path}/store")
    counter, marker = str(tmp_path / "counter"), str(tmp_path / "marker")
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.fail_then_slow.bind(counter, wid, marker), workflow_id=wid)
    open(marker, "w").close()
    go = str(tmp_path / "go")
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_ADDRESS=ray.get_runtime_context().gcs_address)
    script = ("import os, sys, time, ray\n"
              "import engine as workflow\n"
              "ray.init(address=os.environ['RAY_ADDRESS'], log_to_driver=False)\n"  # the test's cluster
              "workflow.init(sys.argv[1])\n"
              "print('READY', flush=True)\n"
              "while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"
              "try:\n"
              "    print('OK', workflow.resume(sys.argv[2]), flush=True)\n"
              "except workflow.WorkflowRunningError as exc:\n"
              "    print('RUNNING', exc, flush=True)\n")
    racers = [subprocess.Popen([sys.executable, "-c", script, context().storage_url, wid, go], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(RACERS)]
    try:
        for racer in racers:
            assert racer.stdout.readline().startswith("READY"), racer.stderr.read()[-2000:]
        open(go, "w").close()
        answers = []
        for racer in racers:
            out, err = racer.communicate(timeout=300)
            assert racer.returncode == 0, err[-3000:]
            answers.append(out.split()[0])
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
    assert answers.count("OK") >= 1 and set(answers) <= {"OK", "RUNNING"}, answers
    assert open(counter).read().split().count(wid) == 2  # the failure, then exactly one resumed run
    assert workflow.get_output(wid) == wid
    (verdict,) = run_sync(verify(context().storage, [wid]))
    assert verdict.problems == []
    count("races: processes racing one resume", RACERS)
