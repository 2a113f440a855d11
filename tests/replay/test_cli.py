"""The replay tool, run as a subprocess (``python -m replay`` and ``ray-durable replay``) on real logs.

Logs are written through the real backends: local disk, and S3 on a real
moto_server (the ``s3_url`` / ``s3_options`` fixtures of tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from html.parser import HTMLParser

import pytest

from replay import encode_event
from storage_backends import open_storage
from storage_backends._framing import HEADER_SIZE, encode_batch
from tests.replay.logs import (
    LogBuilder,
    failed,
    payload,
    resumed_after_failure,
    retry_and_continuation,
    running,
    write_log,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(os.path.dirname(sys.executable), "ray-durable")


@dataclass
class Backend:
    name: str
    url: str
    options: dict = field(default_factory=dict)

    def args(self) -> list[str]:
        extra = ["--endpoint-url", self.options["endpoint_url"]] if "endpoint_url" in self.options else []
        return ["--storage", self.url, *extra]

    async def write(self, workflow_id, events, batches=None):
        await write_log(self.url, self.options, workflow_id, events, batches)


@pytest.fixture(params=["local", "s3"])
def backend(request, tmp_path) -> Backend:
    if request.param == "local":
        return Backend("local", str(tmp_path / "store"))
    try:
        url, options = request.getfixturevalue("s3_url"), request.getfixturevalue("s3_options")
    except pytest.FixtureLookupError:
        pytest.skip("the S3 fixtures (tests/conftest.py: s3_url, s3_options) are not there yet")
    return Backend("s3", url, options)


@pytest.fixture
def local(tmp_path) -> Backend:
    return Backend("local", str(tmp_path / "store"))


def tool(*args: str, entry: str = "module", env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "replay"] if entry == "module" else [SCRIPT, "replay"]
    environment = {k: v for k, v in os.environ.items() if k != "RAY_DURABLE_STORAGE"}
    environment.update(env or {})
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=REPO, env=environment,
                          timeout=120)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def clean_error(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    assert proc.returncode == code, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    return proc.stderr


# --- every subcommand, on both backends -----------------------------------------------------------

@pytest.mark.parametrize("entry", ["module", "script"])
async def test_show(backend, entry):
    await backend.write("wf-retry", retry_and_continuation("wf-retry").events)
    out = ok(tool("show", "wf-retry", *backend.args(), entry=entry))
    assert "workflow   wf-retry" in out and "status     SUCCESSFUL" in out
    assert "output     builtins.list, 36 B, inline" in out
    assert 'metadata   {"owner": "tests", "ticket": 42}' in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and line.split()}
    assert lines["b"].split()[2:5] == ["SUCCESSFUL", "2", "500ms"]
    assert "after 1 failed attempt (last: ValueError: flaky network)" in lines["b"]
    assert "continued -> top@1" in lines["merge"]
    assert "top@1" in lines and "builtins.list" in lines["top@1"]
    # Storage options may also come before the subcommand.
    assert ok(tool(*backend.args(), "show", "wf-retry", entry=entry)) == out


async def test_show_failed_and_running(backend):
    await backend.write("wf-failed", failed("wf-failed").events)
    await backend.write("wf-running", running("wf-running").events)
    out = ok(tool("show", "wf-failed", *backend.args()))
    assert "FAILED  (task flaky: RuntimeError: attempt 3 failed)" in out
    assert "attempt 3 failed: RuntimeError: attempt 3 failed" in out
    out = ok(tool("show", "wf-running", *backend.args()))
    assert "RUNNING" in out and "RESUMABLE if no driver is alive" in out


async def test_events(backend):
    events = retry_and_continuation("wf-ev").events
    await backend.write("wf-ev", events, batches=[1, 5, 2, 100])
    out = ok(tool("events", "wf-ev", *backend.args()))
    lines = out.splitlines()
    assert len(lines) == len(events)
    assert lines[0].split()[0] == "0" and "workflow.submitted" in lines[0] and "+0.000s" in lines[0]
    failed_at = next(i for i, e in enumerate(events) if type(e).__name__ == "TaskFailed")
    assert "task.failed" in lines[failed_at] and 'message="flaky network"' in lines[failed_at]
    assert "attempt=" not in lines[failed_at]  # defaults are not shown
    assert "task.retried" in lines[failed_at + 1] and "attempt=2" in lines[failed_at + 1]
    assert "delay_s" not in lines[failed_at + 1]
    assert "workflow.succeeded" in lines[-1] and "<builtins.list, 36 B, inline>" in lines[-1]

    part = ok(tool("events", "wf-ev", "--from", "3", "--to", "5", *backend.args())).splitlines()
    assert [line.split()[0] for line in part] == ["3", "4", "5"]

    records = [json.loads(line) for line in ok(tool("events", "wf-ev", "--json", *backend.args())).splitlines()]
    assert [r["seq"] for r in records] == list(range(len(events)))
    assert records[failed_at]["type"] == "task.failed"
    assert records[failed_at]["traceback"].startswith("Traceback")
    assert records[-1]["output"]["type_name"] == "builtins.list"
    assert all(isinstance(r["offset"], int) for r in records)


async def test_at_travels_in_time(backend):
    events = retry_and_continuation("wf-at").events
    await backend.write("wf-at", events)
    failed_seq = next(i for i, e in enumerate(events) if type(e).__name__ == "TaskFailed")
    out = ok(tool("at", "wf-at", str(failed_seq), *backend.args()))
    assert out.startswith(f"as of seq {failed_seq} of 0-{len(events) - 1} (task.failed)")
    assert "status     RUNNING" in out
    row_b = next(line for line in out.splitlines() if line.strip().startswith("b "))
    assert "FAILED" in row_b and "attempt 1 failed: ValueError: flaky network" in row_b
    assert "merge" not in out  # not scheduled yet at that point
    assert f"events     {failed_seq + 1}" in out
    err = clean_error(tool("at", "wf-at", "999", *backend.args()))
    assert "seq 999 is past the end" in err and f"last readable seq is {len(events) - 1}" in err


async def test_timeline_text_and_html(backend, tmp_path):
    await backend.write("wf-tl", retry_and_continuation("wf-tl").events)
    out = ok(tool("timeline", "wf-tl", *backend.args()))
    rows = {line.split()[0]: line for line in out.splitlines()[3:] if line.strip()}
    assert "xxx" in rows["b"] and "===" in rows["b"] and "#1 failed 750ms, #2 ok 500ms" in rows["b"]
    assert "~" in rows["merge"] and "#1 continued" in rows["merge"]
    assert "x failed" in out.splitlines()[-1]

    page = tmp_path / "timeline.html"
    assert f"wrote {page}" in ok(tool("timeline", "wf-tl", "--html", str(page), *backend.args()))
    parsed = _parse_html(page.read_text())
    assert {"a", "b", "merge", "top@1"} <= parsed.lane_tasks
    failed_bars = [a for a in parsed.rects if "failed" in a.get("class", "").split()]
    assert len(failed_bars) == 1 and failed_bars[0]["data-attempt"] == "1"
    assert "ValueError: flaky network" in failed_bars[0]["data-tip"]
    assert {a["data-attempt"] for a in parsed.rects if "ok" in a["class"].split()} >= {"1", "2"}
    assert "b" in parsed.failed_lanes and "a" not in parsed.failed_lanes
    assert not parsed.external, f"the page loads something from the network: {parsed.external}"


def test_timeline_of_running_and_resumed_workflows(local):
    import asyncio

    asyncio.run(write_log(local.url, {}, "wf-run", running("wf-run").events))
    asyncio.run(write_log(local.url, {}, "wf-res", resumed_after_failure("wf-res").events))
    out = ok(tool("timeline", "wf-run", *local.args()))
    assert "RUNNING" in out.splitlines()[0] and "#1 running" in out and ">" in out
    rows = {line.split()[0]: line for line in ok(tool("timeline", "wf-res", *local.args())).splitlines()[3:-2]
            if line.strip()}
    assert "#1 interrupted 260ms, #2 ok 600ms" in rows["c"]  # cut where run 1 failed, not at the resume
    assert "?" in rows["c"] and "#1 failed 250ms, #2 ok 500ms" in rows["a"]


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.lane_tasks, self.failed_lanes, self.rects, self.external = set(), set(), [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "div" and "lane" in classes and "data-task" in a:
            self.lane_tasks.add(a["data-task"])
            if a.get("data-failed") == "1":
                self.failed_lanes.add(a["data-task"])
        if tag == "div" and "attempt" in classes:
            self.rects.append(a)
        for name in ("src", "href"):
            if a.get(name) and not a[name].startswith("#"):
                self.external.append(a[name])


def _parse_html(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    page.close()
    return page


async def test_export_jsonl_and_chrome_trace(backend, tmp_path):
    events = resumed_after_failure("wf-x").events
    await backend.write("wf-x", events)
    lines = ok(tool("export", "wf-x", "--format", "jsonl", *backend.args())).splitlines()
    assert [json.loads(line)["type"] for line in lines] == [type(e).__struct_config__.tag for e in events]

    trace_file = tmp_path / "trace.json"
    proc = tool("export", "wf-x", "--format", "chrome-trace", "-o", str(trace_file), *backend.args())
    ok(proc)
    trace = json.loads(trace_file.read_text())
    complete = [e for e in trace["traceEvents"] if e["ph"] == "X" and "attempt" in e["cat"].split(",")]
    attempts = sorted((e["args"]["task_id"], e["args"]["attempt"], e["args"]["outcome"]) for e in complete)
    assert attempts == [("a", 1, "failed"), ("a", 2, "ok"), ("c", 1, "interrupted"), ("c", 2, "ok")]
    for e in complete:
        assert isinstance(e["ts"], int) and isinstance(e["dur"], int) and e["pid"] == 1 and e["tid"] >= 1
    a2 = next(e for e in complete if e["args"]["task_id"] == "a" and e["args"]["attempt"] == 2)
    assert a2["dur"] == 500_000  # microseconds
    names = {e["args"]["name"] for e in trace["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"a (tests.a)", "c (tests.c)"} <= names


async def test_diff(backend):
    await backend.write("run-a", retry_and_continuation("run-a").events)
    slower = retry_and_continuation("run-b")
    slower.schedule("extra").start("extra").complete("extra", 1)
    b_events = [e for e in slower.events if type(e).__name__ != "WorkflowSucceeded"]
    b_events.append(type(slower.events[17])(ts=slower.t + 1, output=payload("different")))
    await backend.write("run-b", b_events)
    proc = tool("diff", "run-a", "run-b", *backend.args())
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert "tasks only in run-b (added): extra" in out
    assert "workflow output digest:" in out
    assert "durations (changed beyond the threshold):" in out and "workflow: 2.110s -> " in out
    same = tool("diff", "run-a", "run-a", *backend.args())
    assert same.returncode == 0 and "same tasks, statuses, attempts and outputs" in same.stdout

    await backend.write("run-c", failed("run-c").events)
    out = tool("diff", "run-c", "run-a", *backend.args()).stdout
    assert "status: FAILED -> SUCCESSFUL" in out and "tasks only in run-c (removed): ok, flaky" in out


async def test_verify_clean(backend):
    await backend.write("wf-1", retry_and_continuation("wf-1").events)
    await backend.write("wf-2", failed("wf-2").events)
    out = ok(tool("verify", "--all", *backend.args()))
    assert "ok       wf-1" in out and "ok       wf-2" in out and "2 clean, 0 with problems" in out
    assert "1 clean" in ok(tool("verify", "wf-2", *backend.args()))
    assert "needs workflow ids or --all" in clean_error(tool("verify", *backend.args()))


async def test_verify_finds_a_corrupted_middle_record(backend, request):
    events = retry_and_continuation("wf-bad").events
    await backend.write("wf-good", retry_and_continuation("wf-good").events)
    await backend.write("wf-bad", events, batches=[6, 6, 6])
    if backend.name == "local":
        offset, seq = _flip_local_byte(backend.url, "wf-bad", batch=1)
        where = f"seq {seq}, byte offset {offset}"
    else:
        seq = _flip_s3_byte(request.getfixturevalue("s3_admin"), backend.url, "wf-bad", batch=1)
        where = f"seq {seq}, byte offset 0"
    proc = tool("verify", "--all", *backend.args())
    assert proc.returncode == 1, proc.stderr
    assert "ok       wf-good" in proc.stdout
    problem = next(line for line in proc.stdout.splitlines() if line.startswith("  - "))
    assert f"workflow 'wf-bad', {where}" in problem and "checksum mismatch" in problem
    assert "1 clean, 1 with problems" in proc.stdout

    # show: what is readable, then the damage, named.
    proc = tool("show", "wf-bad", *backend.args())
    err = clean_error(proc)
    assert "status     RUNNING" in proc.stdout and f"events     {seq}  (seq 0-{seq - 1})" in proc.stdout
    assert "the log is damaged" in err and f"workflow 'wf-bad', {where}" in err
    assert f"readable before the damage: seq 0-{seq - 1}" in err
    events_out = tool("events", "wf-bad", *backend.args())
    assert clean_error(events_out) and len(events_out.stdout.splitlines()) == seq


def _flip_local_byte(root: str, workflow_id: str, batch: int) -> tuple[int, int]:
    """Flip a byte inside batch number ``batch``; its (offset, first seq)."""
    path = os.path.join(root, workflow_id, "events.log")
    data = bytearray(open(path, "rb").read())
    offset, seq = 0, 0
    for _ in range(batch):
        length = int.from_bytes(data[offset + 4:offset + 8], "little")
        seq += int.from_bytes(data[offset + 16:offset + 20], "little")
        offset += HEADER_SIZE + length
    data[offset + HEADER_SIZE + 10] ^= 0xFF
    open(path, "wb").write(bytes(data))
    return offset, seq


def _flip_s3_byte(s3_admin, url: str, workflow_id: str, batch: int) -> int:
    bucket, prefix = url[len("s3://"):].split("/", 1)
    listing = s3_admin.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/logs/{workflow_id}/")
    key = sorted(o["Key"] for o in listing["Contents"])[batch]
    body = bytearray(s3_admin.get_object(Bucket=bucket, Key=key)["Body"].read())
    body[HEADER_SIZE + 10] ^= 0xFF
    s3_admin.put_object(Bucket=bucket, Key=key, Body=bytes(body))
    return int(key.rsplit("/", 1)[1])


async def test_verify_finds_a_sequence_gap(local):
    events = retry_and_continuation("wf-gap").events
    await local.write("wf-ok", retry_and_continuation("wf-ok").events)
    records = [encode_event(e) for e in events]
    os.makedirs(os.path.join(local.url, "wf-gap"))
    first = encode_batch(0, records[:2])
    with open(os.path.join(local.url, "wf-gap", "events.log"), "wb") as f:
        f.write(first + encode_batch(3, records[3:5]))  # seq 2 is missing
    proc = tool("verify", "--all", *local.args())
    assert proc.returncode == 1
    problem = next(line for line in proc.stdout.splitlines() if line.startswith("  - "))
    assert f"workflow 'wf-gap', seq 2, byte offset {len(first)}" in problem
    assert "sequence gap: expected seq 2" in problem
    assert "ok       wf-ok" in proc.stdout


async def test_verify_finds_illegal_and_undecodable_records(local):
    b = LogBuilder("wf-illegal").submit().run("r").schedule("a").start("a").complete("a", 1).complete("a", 1)
    await local.write("wf-illegal", b.events)
    storage = open_storage(local.url)
    good = [encode_event(e) for e in LogBuilder("wf-junk").submit().run("r").events]
    await storage.append("wf-junk", [good[0], b"\x01\xc1junk", good[1]], 0)
    await storage.close()
    await local.write("wf-copy", failed("wf-original").events)
    proc = tool("verify", "wf-illegal", "wf-junk", "wf-copy", *local.args())
    assert proc.returncode == 1
    assert "workflow 'wf-copy', seq 0, byte offset 0: misplaced: the submission names workflow " \
           "'wf-original', but the log is 'wf-copy'" in proc.stdout
    batch_offset = (await open_storage(local.url).read_all("wf-illegal"))[5].offset
    assert f"workflow 'wf-illegal', seq 5, byte offset {batch_offset}: illegal-transition: task 'a' completed " \
           "while SUCCESSFUL" in proc.stdout
    assert "workflow 'wf-junk', seq 1, byte offset 0: undecodable:" in proc.stdout


# --- payloads are opt-in -------------------------------------------------------------------------

class _Tripwire:
    """Unpickling this creates a directory: proof of whether a payload was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


async def test_payloads_are_never_unpickled_unless_asked(local, tmp_path):
    trip = str(tmp_path / "unpickled")
    b = LogBuilder("wf-p").submit().run("r").schedule("a").start("a").complete("a", 41)
    b.schedule("t").start("t").complete("t", ref=payload(_Tripwire(trip)))
    big = payload(list(range(5)), blob="out-big")
    b.schedule("big").start("big").complete("big", ref=big)
    b.succeed({"answer": 42})
    await local.write("wf-p", b.events)
    storage = open_storage(local.url)
    await storage.put_blob("wf-p", "out-big", pickle.dumps(list(range(5)), protocol=4))
    await storage.close()
    for args in (["show", "wf-p"], ["at", "wf-p", "8"], ["events", "wf-p", "--json"], ["timeline", "wf-p"],
                 ["export", "wf-p", "--format", "chrome-trace"], ["verify", "wf-p"]):
        ok(tool(*args, *local.args()))
    assert not os.path.exists(trip)

    proc = tool("show", "wf-p", "--load-payloads", *local.args())
    out = ok(proc)
    assert "runs arbitrary code" in proc.stderr or "run arbitrary code" in proc.stderr
    assert "value      {'answer': 42}" in out
    assert "  a    41" in out
    assert "  big  [0, 1, 2, 3, 4]" in out  # from the blob beside the log
    assert os.path.exists(trip)  # the warning was not idle talk


# --- errors are clear, exit 2, no traceback -----------------------------------------------------

async def test_unknown_workflow_lists_close_matches(backend):
    await backend.write("wordcount-2024", failed("wordcount-2024").events)
    await backend.write("wordcount-2025", failed("wordcount-2025").events)
    err = clean_error(tool("show", "wordcount-2026", *backend.args()))
    assert "no workflow 'wordcount-2026'" in err and "did you mean: wordcount-202" in err
    assert "wordcount-2024" in err and "wordcount-2025" in err
    err = clean_error(tool("show", "zzz", *backend.args()))
    assert "2 workflows there; none is close" in err
    err = clean_error(tool("show", "../etc", *backend.args()))
    assert "not allowed" in err


def test_unknown_scheme_and_unreadable_storage(tmp_path):
    err = clean_error(tool("show", "w", "--storage", "gopher://host/x"))
    assert "unknown storage URL scheme 'gopher'" in err
    err = clean_error(tool("show", "w", "--storage", str(tmp_path / "nothing-here")))
    assert "no workflow 'w'" in err and "holds no workflows" in err
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    err = clean_error(tool("verify", "--all", "--storage", str(a_file)))
    assert "error:" in err
    err = clean_error(tool("show", "w", "--storage", str(tmp_path), "--endpoint-url", "http://x"))
    assert "apply to s3:// storage only" in err


async def test_missing_bucket_is_a_clear_error(s3_options, s3_url):
    bucket = s3_url.split("/")[2]
    err = clean_error(tool("show", "w", "--storage", f"s3://no-{bucket}/p",
                           "--endpoint-url", s3_options["endpoint_url"]))
    assert "error:" in err and "bucket" in err.lower()


async def test_unknown_event_type_is_printed_not_fatal_to_events(local):
    known = [encode_event(e) for e in LogBuilder("wf-new").submit().run("r").events]
    import msgspec
    future = b"\x01" + msgspec.msgpack.encode({"type": "task.paused", "ts": 1_700_000_001.0, "task_id": "a"})
    storage = open_storage(local.url)
    await storage.append("wf-new", known + [future], 0)
    await storage.close()
    out = ok(tool("events", "wf-new", *local.args()))
    line = out.splitlines()[2]
    assert "task.paused" in line and "[unknown event type]" in line and 'task_id="a"' in line
    record = json.loads(ok(tool("events", "wf-new", "--json", *local.args())).splitlines()[2])
    assert record == {"seq": 2, "offset": 0, "type": "task.paused", "ts": 1_700_000_001.0, "task_id": "a",
                      "unknown": True}
    proc = tool("show", "wf-new", *local.args())
    err = clean_error(proc)
    assert "status     RUNNING" in proc.stdout
    assert "workflow 'wf-new', seq 2, byte offset 0: unknown-event: unknown event type 'task.paused'" in err


def test_default_storage_comes_from_the_environment(tmp_path):
    import asyncio

    root = str(tmp_path / "env-store")
    asyncio.run(write_log(root, {}, "wf-env", failed("wf-env").events))
    out = ok(tool("show", "wf-env", env={"RAY_DURABLE_STORAGE": root}))
    assert "workflow   wf-env" in out


# --- never imports ray ---------------------------------------------------------------------------

def test_the_tool_never_imports_ray(local, tmp_path):
    import asyncio

    asyncio.run(write_log(local.url, {}, "wf-r", retry_and_continuation("wf-r").events))
    asyncio.run(write_log(local.url, {}, "wf-s", failed("wf-s").events))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "replay", "show", "wf-r", *local.args()],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "replay._cli" in imported
    assert not {m for m in imported if m == "ray" or m.startswith("ray.")}

    script = f"""
import contextlib, io, sys
from replay._cli import main
commands = [["show", "wf-r"], ["events", "wf-r"], ["events", "wf-r", "--json"], ["at", "wf-r", "5"],
            ["timeline", "wf-r"], ["timeline", "wf-r", "--html", {str(tmp_path / "t.html")!r}],
            ["verify", "--all"], ["diff", "wf-r", "wf-s"], ["export", "wf-r", "--format", "jsonl"],
            ["export", "wf-r", "--format", "chrome-trace"], ["show", "wf-r", "--load-payloads"]]
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    codes = [main(["replay", *c, "--storage", {local.url!r}]) for c in commands]
print(codes)
print(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    codes, ray_modules = proc.stdout.splitlines()
    assert codes == "[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]"
    assert ray_modules == "[]"
