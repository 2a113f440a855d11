"""What timelines draw (replay/_spans.py, _runs.py) and say (text, --json): queued time, runs and
resumes, cancel, retry backoff, a continued task's own work apart from its wait, attempt counts,
idle stretches drawn short, and wide fan-outs grouped. Pure: logs built in memory and folded."""

from __future__ import annotations

import json

from replay import TaskRetried, fold, runs_of
from replay._export import timeline_dict
from replay._render_text import render_state, render_timeline
from replay._spans import TimeScale, build_timeline, group_lanes, lanes
from tests.replay.logs import LogBuilder, resumed_after_failure, retry_and_continuation
from tests.replay.test_cli import ok, tool


def _timeline(builder: LogBuilder):
    return build_timeline(fold(builder.events), builder.events)


def test_queued_time_is_drawn_before_each_attempt():
    b = LogBuilder("q")
    b.submit().run("r1").schedule("a").start("a", dt=0.4).complete("a", 1, dt=0.1).succeed(1)
    [lane] = _timeline(b).lanes
    [gap] = [g for g in lane.gaps if g.kind == "queued"]
    assert round(gap.end - gap.start, 6) == 0.4 and gap.attempt == 1
    assert lane.attempts == 1 and round(lane.own_time, 6) == 0.1
    text = render_timeline(fold(b.events), b.events)
    row = next(line for line in text.splitlines() if line.startswith("a "))
    assert "-=" in row and row.endswith("#1 ok 100ms")


def test_runs_resumes_and_a_cancel_are_marked():
    b = resumed_after_failure("res")
    timeline = _timeline(b)
    assert [(r.outcome, r.resumed) for r in timeline.runs] == [("failed", False), ("succeeded", True)]
    assert [m.kind for m in timeline.marks] == ["submitted", "run", "failed", "resumed", "succeeded"]
    c = LogBuilder("c")
    c.submit().run("r1").schedule("a").start("a").cancel_requested(dt=0.3).canceled(dt=0.2)
    timeline = _timeline(c)
    assert [m.kind for m in timeline.marks][-2:] == ["cancel", "canceled"]
    assert [(r.outcome, round(r.duration, 6)) for r in timeline.runs] == [("canceled", 0.56)]
    text = render_timeline(fold(c.events), c.events)
    runs_row = next(line for line in text.splitlines() if line.startswith("(runs)"))
    assert "C" in runs_row and "run 1 canceled" in runs_row
    assert "+460ms  cancel requested" in text and "+660ms  canceled" in text


def test_an_interrupted_run_ends_at_its_last_event():
    b = LogBuilder("i")
    b.submit().run("r1").schedule("a").start("a").run("r2", resumed=True, dt=30.0)
    b.schedule("a", attempt=2).start("a", attempt=2).complete("a", 1, attempt=2).succeed(1)
    first, second = runs_of(b.events)
    assert first.outcome == "interrupted" and first.ended_at == b.events[3].ts  # a's start, r1's last word
    assert second.resumed and second.outcome == "succeeded"
    timeline = _timeline(b)
    assert len(timeline.scale.breaks) == 1  # the 30 s nobody drove it: drawn short
    a, b_ = timeline.scale.break_spans()[0][:2]
    assert b_ - a == TimeScale.BREAK_WIDTH


def test_attempts_count_only_attempts_that_ran():
    """A task scheduled by a run that died before starting it, then run once by the next run."""
    b = LogBuilder("n")
    b.submit().run("r1").schedule("a").run("r2", resumed=True, dt=1.0)
    b.schedule("a", attempt=2).start("a", attempt=2).complete("a", 1, attempt=2).succeed(1)
    state = fold(b.events)
    assert state.tasks["a"].attempt == 2
    [lane] = lanes(state, b.events)
    assert lane.attempts == 1
    table = render_state(state)
    row = next(line for line in table.splitlines() if line.strip().startswith("a "))
    assert row.split()[3] == "1"
    never = LogBuilder("never")
    never.submit().run("r1").schedule("a").workflow_failed("a", dt=0.1)
    assert "not started (SCHEDULED)" in render_timeline(fold(never.events), never.events)


def test_retry_backoff_is_drawn():
    b = LogBuilder("bo")
    b.submit().run("r1").schedule("a").start("a").fail("a", message="flaky")
    b.events.append(TaskRetried(ts=b.t + 0.01, task_id="a", attempt=2, delay_s=2.0))
    b.t += 2.01
    b.start("a", attempt=2).complete("a", 1, attempt=2).succeed(1)
    [lane] = _timeline(b).lanes
    backoff = [g for g in lane.gaps if g.kind == "backoff"]
    assert [(g.attempt, round(g.end - g.start, 6)) for g in backoff] == [(2, 2.0)]
    assert "_" in next(line for line in render_timeline(fold(b.events), b.events).splitlines()
                       if line.startswith("a "))


def test_a_continued_task_shows_its_own_work_apart_from_its_wait():
    b = retry_and_continuation("cont")
    lane = next(lane for lane in _timeline(b).lanes if lane.task.task_id == "merge")
    assert round(lane.own_time, 6) == 0.2
    start, end = lane.wait
    assert round(end - start, 6) == 0.36
    row = next(line for line in render_state(fold(b.events)).splitlines() if line.strip().startswith("merge"))
    assert "200ms (+360ms sub-DAG)" in row


def test_wide_fan_outs_are_grouped_and_expandable():
    b = LogBuilder("fan")
    b.submit().run("r1")
    for i in range(300):
        b.schedule(f"w{i}", name="m.work", dt=0.001)
    for i in range(300):
        b.start(f"w{i}", dt=0.001)
    for i in range(300):
        b.fail(f"w{i}", dt=0.001) if i < 2 else b.complete(f"w{i}", i, dt=0.001)
    b.workflow_failed("w0")
    rows = group_lanes(_timeline(b).lanes)
    [group] = rows
    assert group.label == "work \u00d7300" and group.outcomes() == {"ok": 298, "failed": 2}
    text = render_timeline(fold(b.events), b.events)
    assert len(text.splitlines()) < 20
    assert "work x300" in text and "300 tasks: 2 failed, 298 ok (2 failed attempts)" in text
    expanded = render_timeline(fold(b.events), b.events, expand=True)
    assert len(expanded.splitlines()) > 300
    assert group_lanes(_timeline(b).lanes[:20]) == _timeline(b).lanes[:20]  # few tasks: never grouped


def test_time_scale_is_monotonic_and_invertible():
    scale = TimeScale(0.0, 100.0, [(0.0, 5.0), (90.0, 100.0)])
    assert scale.breaks == [(5.0, 90.0)]
    points = [0.0, 2.5, 5.0, 40.0, 90.0, 95.0, 100.0]
    fracs = [scale.frac(t) for t in points]
    assert fracs == sorted(fracs) and fracs[0] == 0.0 and abs(fracs[-1] - 1.0) < 1e-9
    for t in points:
        assert abs(scale.time_at(scale.frac(t)) - t) < 1e-6 or 5.0 <= t <= 90.0


def test_timeline_and_show_json(tmp_path):
    import asyncio

    from tests.replay.logs import write_log

    root = str(tmp_path / "store")
    asyncio.run(write_log(root, {}, "res", resumed_after_failure("res").events))
    doc = json.loads(ok(tool("timeline", "res", "--json", "--storage", root)))
    assert [r["outcome"] for r in doc["runs"]] == ["failed", "succeeded"]
    a = next(t for t in doc["tasks"] if t["task_id"] == "a")
    assert [x["outcome"] for x in a["attempts"]] == ["failed", "ok"]
    assert {g["kind"] for g in a["gaps"]} == {"queued"} and len(doc["idle"]) == 1
    assert doc == timeline_dict(build_timeline(fold(resumed_after_failure("res").events),
                                               resumed_after_failure("res").events))
    show = json.loads(ok(tool("show", "res", "--json", "--storage", root)))
    assert show["status"] == "SUCCESSFUL" and [r["outcome"] for r in show["runs"]] == ["failed", "succeeded"]
    assert {t["task_id"]: t["attempts"] for t in show["tasks"]} == {"a": 2, "c": 2}
    verdicts = json.loads(ok(tool("verify", "res", "--json", "--storage", root)))
    assert verdicts == [{"workflow_id": "res", "events": 16, "problems": []}]
