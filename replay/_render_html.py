"""``timeline --html`` (and the UI's workflow page): the timeline as HTML, no network needed.

The chart is rows of positioned bars (plain HTML and CSS, so that rows can be shown and
hidden): first the workflow's runs with its marks (cancel, the end), then one row per task,
or per group of a wide fan-out's siblings, which a click expands. Each attempt is a bar
coloured by how it ended (failed ones red, and their task's label marked); queued time,
retry backoff and a continued task's wait for its sub-DAG are lighter bars; idle stretches
drawn shorter than they were are hatched. Hovering shows times and errors. Below the chart, a
table of every task (its own time apart from its wait) with the full traceback of each failure.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from ._events import Event
from ._format import compact_json, fmt_duration, fmt_payload, fmt_ts, short
from ._spans import MAX_ROWS, LaneGroup, TaskLane, Timeline, build_timeline, group_lanes
from ._state import TaskStatus, WorkflowState
from ._waits import describe_wait

CROSS = "\u2717"  # the failed-attempt mark
OUTCOME_NAMES = ("ok", "failed", "continued", "running", "interrupted")

CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} .meta{color:#555;margin:0 0 12px}
.status{font-weight:600;padding:1px 6px;border-radius:3px;color:#fff;background:#777}
.status.SUCCESSFUL{background:#2e7d32}.status.FAILED{background:#c62828}.status.RUNNING{background:#ef6c00}
.status.CANCELED{background:#555}.status.PENDING{background:#1565c0}.status.RESUMABLE{background:#6a1b9a}
.tl{border:1px solid #ddd;background:#fcfcfc;max-width:1200px;padding:4px 0}
.tl-row{display:flex;align-items:center;height:22px}.tl-row.hidden{display:none}
.tl-label{flex:0 0 280px;padding:0 6px;font:12px ui-monospace,Menlo,Consolas,monospace;white-space:nowrap;
overflow:hidden;text-overflow:ellipsis}
.tl-label.failed{color:#c62828;font-weight:700}
.tl-track{position:relative;flex:1 1 auto;height:16px;margin-right:12px}
.tl-axis .tl-track{height:18px;border-bottom:1px solid #ddd}
.tick{position:absolute;top:0;font-size:11px;color:#666;transform:translateX(-50%);white-space:nowrap}
.tick:first-child{transform:none}.tick:last-child{transform:translateX(-100%)}
.bar{position:absolute;top:0;height:16px;min-width:2px;border-radius:2px;box-sizing:border-box}
.attempt{color:#fff;font-size:10px;line-height:16px;padding-left:3px;overflow:hidden;white-space:nowrap}
.attempt.ok{background:#43a047}.attempt.failed{background:#e53935;border:1.5px solid #8e0000}
.attempt.continued{background:#1e88e5}.attempt.running{background:#fb8c00}.attempt.interrupted{background:#9e9e9e}
.gap{top:5px;height:6px}.gap.queued{background:#cfd8dc}.gap.backoff{background:#ffcdd2}
.gap.subdag{background:none;border-top:2px dashed #1e88e5;top:7px;height:2px}
.gbar{opacity:.35}.gbar.ok{background:#43a047}.gbar.failed{background:#e53935;opacity:.9}
.gbar.continued{background:#1e88e5}.gbar.running{background:#fb8c00}.gbar.interrupted{background:#9e9e9e}
.run{background:#e8eaf6;border:1px solid #9fa8da;color:#283593;font-size:10px;line-height:14px;padding-left:3px;
overflow:hidden;white-space:nowrap}
.run.failed{background:#fdecea;border-color:#e57373;color:#b71c1c}.run.interrupted{background:#eee;border-color:#bbb;
color:#555}
.mark{position:absolute;top:-2px;width:2px;height:20px;background:#555}.mark.cancel,.mark.canceled{background:#000}
.mark.failed{background:#c62828}
.tl-idle{position:absolute;top:0;height:16px;background:repeating-linear-gradient(135deg,#eee 0 4px,#fff 4px 8px)}
button.toggle{font:inherit;border:0;background:none;padding:0;cursor:pointer;color:#1565c0}
tr.failed td{background:#fdecea} tr.hidden{display:none}
table{border-collapse:collapse;margin-top:10px}
td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f4f4f4} code,pre{font:12px ui-monospace,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;margin:4px 0;max-width:900px} .legend span{margin-right:14px}
.sw{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
.sw.ok{background:#43a047}.sw.failed{background:#e53935}.sw.continued{background:#1e88e5}
.sw.running{background:#fb8c00}.sw.interrupted{background:#9e9e9e}.sw.queued{background:#cfd8dc}
.sw.backoff{background:#ffcdd2}.sw.idle{background:repeating-linear-gradient(135deg,#ddd 0 3px,#fff 3px 6px)}
"""

JS = """
(function(){
  document.querySelectorAll('button.toggle').forEach(function(b){
    b.addEventListener('click',function(){
      var open=b.getAttribute('aria-expanded')!=='true';
      b.setAttribute('aria-expanded',open?'true':'false');
      b.textContent=(open?'\\u25be ':'\\u25b8 ')+b.getAttribute('data-label');
      document.querySelectorAll('[data-member-of="'+b.getAttribute('data-group')+'"]').forEach(function(r){
        r.classList.toggle('hidden',!open);});
    });
  });
  var only=document.getElementById('only-failed');
  if(only){only.addEventListener('change',function(){
    document.querySelectorAll('.tl-row[data-failed="0"],tr[data-failed="0"]').forEach(function(el){
      el.style.display=only.checked?'none':'';});});}
})();
"""


def render_html(state: WorkflowState, events: Sequence[Event] = ()) -> str:
    """A self-contained page: the header, the timeline and the tasks table."""
    e = html.escape
    timeline = build_timeline(state, events)
    title = f"ray-durable timeline: {state.workflow_id}"
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>Workflow <code>{e(state.workflow_id)}</code></h1>",
        f"<p class='meta'>{header(timeline)}</p>",
        timeline_html(timeline),
        tasks_table(timeline),
        f"<script>{JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def header(timeline: Timeline, status: str | None = None) -> str:
    """The status badge and one line of facts (HTML)."""
    e = html.escape
    state = timeline.state
    status = status or str(state.status)
    failed_tasks = sum(1 for lane in timeline.lanes if lane.failed_attempts)
    meta = [f"<span class='status {e(status)}'>{e(status)}</span>",
            f"submitted {e(fmt_ts(state.start_time))}",
            f"{fmt_duration(timeline.t1 - timeline.t0)} shown",
            f"{len(timeline.lanes)} tasks",
            f"{len(timeline.runs)} run{'s' if len(timeline.runs) != 1 else ''}",
            f"{failed_tasks} with failed attempts"]
    if state.failed_task_id:
        meta.append(f"failed at task <code>{e(state.failed_task_id)}</code>: "
                    f"{e(state.error_type or '')}: {e(short(state.error_message or '', 120))}")
    return " &middot; ".join(meta)


def timeline_html(timeline: Timeline, max_rows: int | None = None) -> str:
    """The legend and the chart (HTML); wide fan-outs are grouped (see :func:`group_lanes`)."""
    e = html.escape
    scale = timeline.scale
    rows = group_lanes(timeline.lanes) if max_rows is None else group_lanes(timeline.lanes, max_rows)

    def pos(t0: float, t1: float) -> str:
        left = scale.frac(t0) * 100
        return f"left:{left:.2f}%;width:{max(0.0, scale.frac(t1) * 100 - left):.2f}%"

    idle = "".join(f"<div class='tl-idle' style='left:{a * 100:.2f}%;width:{(b - a) * 100:.2f}%' "
                   f"title='{e(fmt_duration(length))} with nothing running (not to scale)'></div>"
                   for a, b, length in scale.break_spans())
    out = ["<p class='legend'>" + "".join(f"<span><i class='sw {k}'></i>{k}</span>" for k in OUTCOME_NAMES)
           + "<span><i class='sw queued'></i>queued</span><span><i class='sw backoff'></i>retry backoff</span>"
           + "<span>- - waiting for its sub-DAG</span><span><i class='sw idle'></i>idle (not to scale)</span>"
           + "<label><input type='checkbox' id='only-failed'> only tasks with failures</label></p>",
           "<div class='tl' role='figure' aria-label='timeline'>"]
    ticks = "".join(f"<span class='tick' style='left:{f * 100:.0f}%'>"
                    f"{e(fmt_duration(scale.time_at(f) - timeline.t0))}</span>" for f in (0, .25, .5, .75, 1))
    out.append(f"<div class='tl-row tl-axis'><div class='tl-label'>task</div><div class='tl-track'>{ticks}</div></div>")
    runs = []
    for number, run in enumerate(timeline.runs, start=1):
        end = run.ended_at if run.ended_at is not None else timeline.t1
        tip = (f"run {number}{' (resumed)' if run.resumed else ''}: {run.outcome}\n{fmt_ts(run.started_at)} .. "
               f"{fmt_ts(run.ended_at) if run.ended_at is not None else 'now'}" +
               (f"\non {run.owner}" if run.owner is not None else ""))
        runs.append(f"<div class='bar run {e(run.outcome)}' data-run='{number}' style='{pos(run.started_at, end)}' "
                    f"title='{e(tip)}'>run {number}</div>")
    marks = "".join(f"<div class='mark {e(m.kind)}' data-mark='{e(m.kind)}' "
                    f"style='left:{scale.frac(m.ts) * 100:.2f}%' title='{e(m.label)} at {e(fmt_ts(m.ts))}'></div>"
                    for m in timeline.marks if m.kind not in ("submitted", "run", "resumed"))
    out.append(f"<div class='tl-row tl-runs'><div class='tl-label'>runs</div>"
               f"<div class='tl-track'>{idle}{''.join(runs)}{marks}</div></div>")
    for index, row in enumerate(rows):
        if isinstance(row, LaneGroup):
            group = f"g{index}"
            out.append(_group_row(row, group, pos, idle))
            out.extend(_lane_row(lane, pos, idle, member_of=group) for lane in row.lanes)
        else:
            out.append(_lane_row(row, pos, idle))
    out.append("</div>")
    return "\n".join(out)


def _lane_row(lane: TaskLane, pos, idle: str, member_of: str | None = None) -> str:
    e = html.escape
    failed = lane.failed_attempts > 0
    label = "\u00a0\u00a0" * lane.depth + (f"{CROSS} " if failed else "") + lane.task.task_id
    bars = [idle]
    for gap in lane.gaps:
        tip = f"{gap.kind} {fmt_duration(gap.end - gap.start)}"
        bars.append(f"<div class='bar gap {gap.kind}' style='{pos(gap.start, gap.end)}' title='{e(tip)}'></div>")
    for s in lane.spans:
        tip = (f"{lane.task.task_id} attempt #{s.attempt}: {s.outcome}\n"
               f"{fmt_ts(s.start)} .. {fmt_ts(s.end)} ({fmt_duration(s.end - s.start)})")
        if s.error is not None:
            tip += f"\n{s.error.error_type}: {short(s.error.message, 200)}"
        bars.append(f"<div class='bar attempt {s.outcome}' data-attempt='{s.attempt}' data-outcome='{s.outcome}' "
                    f"data-tip='{e(tip)}' title='{e(tip)}' style='{pos(s.start, s.end)}'>#{s.attempt}"
                    f"{' ' + CROSS if s.outcome == 'failed' else ''}</div>")
    member = f" hidden' data-member-of='{member_of}" if member_of else ""
    return (f"<div class='tl-row lane{member}' data-task='{e(lane.task.task_id)}' data-failed='{int(failed)}'>"
            f"<div class='tl-label{' failed' if failed else ''}' title='{e(lane.task.task_id)} ({e(lane.task.name)}):"
            f" {e(str(lane.task.status))}'>{e(label)}</div><div class='tl-track'>{''.join(bars)}</div></div>")


def _group_row(group: LaneGroup, name: str, pos, idle: str) -> str:
    e = html.escape
    failed = group.failed_attempts > 0
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(group.outcomes().items()))
    bars = [idle]
    for lane in group.lanes:
        bars.extend(f"<div class='bar gbar {s.outcome}' style='{pos(s.start, s.end)}'></div>" for s in lane.spans)
    label = ("\u00a0\u00a0" * group.depth) + (f"{CROSS} " if failed else "") + group.label
    return (f"<div class='tl-row group' data-group='{name}' data-failed='{int(failed)}' data-count='{len(group.lanes)}'>"
            f"<div class='tl-label{' failed' if failed else ''}' title='{e(group.name)}: {e(counts)}'>"
            f"<button class='toggle' type='button' aria-expanded='false' data-group='{name}' "
            f"data-label='{e(label)}'>\u25b8 {e(label)}</button></div>"
            f"<div class='tl-track' title='{e(counts)}'>{''.join(bars)}</div></div>")


def tasks_table(timeline: Timeline) -> str:
    """Every task: status, attempts that ran, its own time and any wait, output, errors (HTML)."""
    e = html.escape
    state = timeline.state
    many = len(timeline.lanes) > MAX_ROWS  # a wide fan-out: the table opens on request
    out = [f"<details class='tasks'{'' if many else ' open'}><summary>tasks ({len(timeline.lanes)})</summary>",
           "<table class='tasks'><thead><tr><th>task</th><th>name</th><th>status</th><th>attempts</th>"
           "<th>own time</th><th>waited for sub-DAG</th><th>output</th><th>errors</th></tr></thead><tbody>"]
    for lane in timeline.lanes:
        task = lane.task
        failed = lane.failed_attempts > 0
        errors = "".join(
            f"<details><summary>attempt {err.attempt}: {e(err.error_type)}: {e(short(err.message, 100))}"
            f"</summary><pre>{e(err.traceback or err.message)}</pre></details>" for err in task.errors)
        output = fmt_payload(task.output) if task.status is TaskStatus.SUCCESSFUL else "-"
        if task.continuation_output_task_id:
            output = f"continued &rarr; <code>{e(task.continuation_output_task_id)}</code>; {e(output)}"
        else:
            output = e(output)
        if task.wait is not None:  # a timer or an event wait: what it waited for, and how it ended
            output = f"{e(describe_wait(state, task))}; {output}"
        wait = lane.wait
        options = f" title='{e(compact_json(task.task_options))}'" if task.task_options else ""
        out.append(f"<tr class='{'failed' if failed else 'ok'}' data-task='{e(task.task_id)}' "
                   f"data-failed='{int(failed)}'><td><code{options}>{e(task.task_id)}</code></td>"
                   f"<td>{e(task.name)}</td><td>{e(str(task.status))}</td><td>{lane.attempts}</td>"
                   f"<td>{e(fmt_duration(lane.own_time) if lane.spans else '-')}</td>"
                   f"<td>{e(fmt_duration(wait[1] - wait[0]) if wait else '-')}</td>"
                   f"<td>{output}</td><td>{errors}</td></tr>")
    out.append("</tbody></table></details>")
    if state.output is not None:
        out.append(f"<p>Workflow output: {e(fmt_payload(state.output))}, digest "
                   f"<code>{e(state.output.digest)}</code></p>")
    return "\n".join(out)
