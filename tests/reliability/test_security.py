"""Security basics: private files, no escape from the storage root, secrets never stored or
printed, nothing unpickled without ``--load-payloads``.

Promises: directories 0700 and files 0600; an id or blob name can never name a path outside
its log's directory (or key prefix); a secret in the job's runtime env is in no stored byte
(local file, S3 object), in no tool's output, and a resume elsewhere gets it from the resuming
driver; planted S3 credentials appear in no error or output; a payload that would run code
when unpickled is never unpickled unless the user asks.
"""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
import uuid

import pytest
import ray

import engine as workflow
from engine.api._init import context
from storage_backends import InvalidIdError, open_storage
from tests.engine import tasks
from tests.reliability._figures import count
from tests.replay.logs import LogBuilder, payload, write_log

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "tok-" + uuid.uuid4().hex  # planted; must never be stored or printed


def _run(*argv: str, env: dict | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    environment = dict(os.environ, RAY_AUTH_MODE="disabled", **(env or {}))
    if "RAY_ADDRESS" not in (env or {}):
        environment.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, *argv], cwd=REPO, env=environment, capture_output=True, text=True,
                          timeout=timeout)


def test_files_are_private(ray_runtime, tmp_path, wid):
    root = tmp_path / "store"
    workflow.init(f"file://{root}")
    assert len(workflow.run(tasks.big_output.bind(100_000), workflow_id=wid)) == 100_000  # a blob too
    seen = 0
    for directory, dirs, files in os.walk(root):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
        for name in files:
            path = os.path.join(directory, name)
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
            seen += 1
    assert seen >= 3  # the log, the blob, the status index


# Escape attempts only (which other names are allowed is the id rules' business, tested with them).
BAD_IDS = ["..", ".", "../escape", "a/../../b", "/abs", "a/b", "a\\b", "", "a\x00b", "../../etc/passwd"]


@pytest.mark.parametrize("bad", BAD_IDS)
async def test_no_id_or_blob_name_escapes_the_root(tmp_path, bad):
    root = tmp_path / "root" / "store"
    storage = open_storage(f"file://{root}")
    try:
        calls = [lambda: storage.append(bad, [b"x"], 0), lambda: storage.read_all(bad),
                 lambda: storage.next_seq(bad), lambda: storage.delete(bad), lambda: storage.torn_tail(bad),
                 lambda: storage.put_blob(bad, "b", b"x"), lambda: storage.put_blob("ok", bad, b"x"),
                 lambda: storage.get_blob("ok", bad), lambda: storage.delete_blob("ok", bad)]
        for call in calls:
            with pytest.raises(InvalidIdError):
                await call()
    finally:
        await storage.close()
    outside = [p for p in (tmp_path / "root").rglob("*") if not str(p).startswith(str(root))]
    assert outside == []
    count("bad inputs tried", len(calls))


@pytest.mark.parametrize("backend", ["local", "s3"])
def test_a_secret_in_the_job_runtime_env_is_never_stored_or_printed(ray_runtime, tmp_path, backend, request):
    """Fault 3: ``ray.init(runtime_env={"env_vars": {"API_TOKEN": ...}})``."""
    if backend == "local":
        url, extra, options = f"file://{tmp_path}/store", [], {}
    else:
        admin, endpoint = request.getfixturevalue("s3_admin"), request.getfixturevalue("moto_server")
        bucket = f"sec-{uuid.uuid4().hex[:12]}"
        admin.create_bucket(Bucket=bucket)
        url, extra, options = f"s3://{bucket}/wf", [endpoint], {"endpoint_url": endpoint}
    wid, marker = f"secret-{backend}", str(tmp_path / "marker")
    address = ray.get_runtime_context().gcs_address
    first = _run("-m", "tests.reliability.secret_driver", "run", url, wid, marker, SECRET, *extra,
                 env={"RAY_ADDRESS": address})
    assert first.returncode == 0 and "FAILED" in first.stdout, first.stderr[-3000:]

    stored = _stored_bytes(url, options, request)
    assert stored and SECRET.encode() not in stored
    assert b"API_TOKEN" in stored  # the name is recorded

    workflow.init(url, storage_options=options)
    meta = workflow.get_metadata(wid)
    assert meta["runtime_env"] == {"env_vars": {"API_TOKEN": "<not recorded>"}}
    storage_args = ["--storage", url] + (["--endpoint-url", extra[0]] if extra else [])
    outputs = [
        _run("-m", "engine", "status", wid, "--json", *storage_args),  # (storage only: no Ray)
        _run("-m", "engine", "list", *storage_args),
        *[_run("-m", "replay", *storage_args, *command) for command in (
            ("events", wid), ("events", wid, "--json"), ("export", wid), ("show", wid), ("verify", wid),
            ("export", wid, "--format", "chrome-trace"), ("timeline", wid, "--html", str(tmp_path / "t.html")))],
    ]
    for out in outputs:
        assert out.returncode == 0, (out.args, out.stderr[-2000:])
        assert SECRET not in out.stdout + out.stderr, out.args
    assert SECRET not in (tmp_path / "t.html").read_text()
    assert "API_TOKEN" in outputs[0].stdout

    # A resume on another cluster runs the tasks with the value its own driver supplies.
    open(marker, "w").close()
    second = _run("-m", "tests.reliability.secret_driver", "resume", url, wid, "-", "resupplied", *extra)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "RESULT resupplied" in second.stdout
    assert SECRET.encode() not in _stored_bytes(url, options, request)
    count("secrets planted (none stored or printed)")


def _stored_bytes(url: str, options: dict, request) -> bytes:
    if url.startswith("file://"):
        root = url[len("file://"):]
        return b"".join(open(os.path.join(d, f), "rb").read() for d, _, fs in os.walk(root) for f in fs)
    admin = request.getfixturevalue("s3_admin")
    bucket = url[len("s3://"):].split("/")[0]
    keys = [o["Key"] for o in admin.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return b"".join(admin.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys)


def test_an_old_log_with_a_secret_value_never_prints_it(tmp_path):
    """A log written before values were left out still holds one: the tools never show it."""
    import asyncio

    url = f"file://{tmp_path}/store"
    builder = LogBuilder("old").submit(runtime_env={"env_vars": {"API_TOKEN": SECRET},
                                                    "pip": [f"--index-url https://me:{SECRET}@pypi.example/simple"]})
    builder.run("run-1").schedule("t").start("t")
    asyncio.run(write_log(url, {}, "old", builder.events))
    for command in (("events", "old"), ("events", "old", "--json"), ("export", "old"), ("show", "old")):
        out = _run("-m", "replay", "--storage", url, *command)
        assert out.returncode == 0, out.stderr
        assert SECRET not in out.stdout + out.stderr, command
        assert "API_TOKEN" in out.stdout or command[0] == "show"  # (show prints no runtime env)
    count("secrets planted (none stored or printed)")


def test_planted_s3_credentials_are_never_printed(moto_server, s3_url, tmp_path):
    planted_id, planted_secret = "AKIA" + "Q" * 16, "s3cr3t/" + uuid.uuid4().hex
    env = {"AWS_ACCESS_KEY_ID": planted_id, "AWS_SECRET_ACCESS_KEY": planted_secret,
           "AWS_SESSION_TOKEN": "session-" + uuid.uuid4().hex}
    quick = {**env, "AWS_MAX_ATTEMPTS": "2"}  # (the unreachable endpoint: no need to retry six times)
    runs = [
        _run("-m", "replay", "--storage", s3_url, "--endpoint-url", moto_server, "verify", "--all", env=env),
        _run("-m", "replay", "--storage", s3_url, "--endpoint-url", "http://127.0.0.1:9", "verify", "--all",
             env=quick, timeout=300),  # nothing listens there: an error that names the endpoint
        _run("-m", "replay", "--storage", "s3://no-such-bucket-here/x", "--endpoint-url", moto_server, "show", "w",
             env=env),
    ]
    for out in runs:
        text = out.stdout + out.stderr
        for planted in env.values():  # (AWS_MAX_ATTEMPTS is no secret)
            assert planted not in text, (out.args, text[-2000:])
    assert runs[1].returncode != 0 and runs[2].returncode != 0
    count("credentials planted (none printed)", len(env))


def test_nothing_is_unpickled_without_load_payloads(tmp_path):
    import asyncio

    booby = tmp_path / "unpickled"

    class Trap:
        def __reduce__(self):
            return (os.mkdir, (str(booby),))

    ref = payload(0)
    data = pickle.dumps(Trap(), protocol=4)
    ref.inline, ref.size, ref.type_name = data, len(data), "builtins.int"
    builder = LogBuilder("trap").submit().run("run-1").schedule("t").start("t").complete("t", ref=ref).succeed(ref=ref)
    url = f"file://{tmp_path}/store"
    asyncio.run(write_log(url, {}, "trap", builder.events))
    for command in (("show", "trap"), ("events", "trap"), ("events", "trap", "--json"), ("export", "trap"),
                    ("at", "trap", "3"), ("timeline", "trap"), ("verify", "trap")):
        out = _run("-m", "replay", "--storage", url, *command)
        assert out.returncode == 0, (command, out.stderr)
        assert not booby.exists(), f"{command} unpickled a payload"
    out = _run("-m", "replay", "--storage", url, "show", "trap", "--load-payloads")
    assert booby.exists(), "the trap never fires: this test could not fail"
    count("payload traps planted (none unpickled uninvited)")
