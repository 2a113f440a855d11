"""``timeline --html``: one self-contained page (inline CSS, SVG and a little JS; no network).

Each task is a row; each attempt a bar coloured by how it ended, labelled
with its attempt number. Failed attempts are red and their task's label is
marked, so a failure and the retries after it stand out; hovering a bar
shows its times and error. Below the chart, a table with every task and the
full traceback of each failure.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from ._format import compact_json, fmt_duration, fmt_payload, fmt_ts, short
from ._spans import Span, TaskLane, bounds, lanes
from ._state import TaskStatus, WorkflowState

ROW_H = 26
BAR_H = 16
LABEL_W = 280
CHART_W = 900
TOP = 34
CROSS = " \u2717"  # the failed-attempt mark

_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} .meta{color:#555;margin:0 0 16px}
.status{font-weight:600;padding:1px 6px;border-radius:3px;color:#fff;background:#777}
.status.SUCCESSFUL{background:#2e7d32}.status.FAILED{background:#c62828}.status.RUNNING{background:#ef6c00}
.status.CANCELED{background:#555}.status.PENDING{background:#1565c0}
svg{border:1px solid #ddd;background:#fcfcfc}
.lane-label{font:12px ui-monospace,Menlo,Consolas,monospace;fill:#222}
.lane-label.failed{fill:#c62828;font-weight:700}
.axis{font:11px system-ui,sans-serif;fill:#666}.grid{stroke:#e4e4e4}
rect.attempt{stroke:#0003;rx:2}
rect.ok{fill:#43a047}rect.failed{fill:#e53935;stroke:#8e0000;stroke-width:1.5}
rect.continued{fill:#1e88e5}rect.running{fill:#fb8c00}rect.interrupted{fill:#9e9e9e}
line.wait{stroke:#1e88e5;stroke-dasharray:3 3;stroke-width:2}
text.attempt-label{font:10px system-ui,sans-serif;fill:#fff;pointer-events:none}
tr.failed td{background:#fdecea} tr.hidden, g.hidden{display:none}
table{border-collapse:collapse;margin-top:18px}
td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:left;vertical-align:top;font-size:13px}
th{background:#f4f4f4} code,pre{font:12px ui-monospace,Menlo,Consolas,monospace}
pre{white-space:pre-wrap;margin:4px 0;max-width:900px} .legend span{margin-right:14px}
.sw{display:inline-block;width:12px;height:10px;margin-right:4px;vertical-align:middle}
.sw.ok{background:#43a047}.sw.failed{background:#e53935}.sw.continued{background:#1e88e5}
.sw.running{background:#fb8c00}.sw.interrupted{background:#9e9e9e}
#tip{position:fixed;display:none;background:#222;color:#fff;padding:6px 8px;border-radius:4px;
font-size:12px;max-width:420px;white-space:pre-wrap;pointer-events:none}
"""

_JS = """
(function(){
  var tip=document.getElementById('tip');
  document.querySelectorAll('rect.attempt').forEach(function(r){
    r.addEventListener('mousemove',function(e){tip.textContent=r.getAttribute('data-tip');
      tip.style.display='block';tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';});
    r.addEventListener('mouseleave',function(){tip.style.display='none';});
  });
  var only=document.getElementById('only-failed');
  if(only){only.addEventListener('change',function(){
    document.querySelectorAll('[data-failed="0"]').forEach(function(el){
      el.classList.toggle('hidden',only.checked);});});}
})();
"""


def render_html(state: WorkflowState, boundaries: Sequence[float] = ()) -> str:
    rows = lanes(state, boundaries)
    e = html.escape
    title = f"ray-durable timeline: {state.workflow_id}"
    status = str(state.status)
    t0, t1 = bounds(state, rows)
    failed_tasks = sum(1 for r in rows if r.failed_attempts)
    meta = [f"<span class='status {e(status)}'>{e(status)}</span>",
            f"submitted {e(fmt_ts(state.start_time))}",
            f"{fmt_duration(t1 - t0)} shown",
            f"{len(rows)} tasks",
            f"{failed_tasks} with failed attempts"]
    if state.failed_task_id:
        meta.append(f"failed at task <code>{e(state.failed_task_id)}</code>: "
                    f"{e(state.error_type or '')}: {e(short(state.error_message or '', 120))}")
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>Workflow <code>{e(state.workflow_id)}</code></h1>",
        f"<p class='meta'>{' &middot; '.join(meta)}</p>",
        "<p class='legend'>" + "".join(
            f"<span><i class='sw {k}'></i>{k}</span>" for k in ("ok", "failed", "continued", "running",
                                                                   "interrupted"))
        + "<span>- - waiting for its sub-DAG</span>"
        + "<label><input type='checkbox' id='only-failed'> only tasks with failures</label></p>",
        _svg(rows, t0, t1),
        _table(state, rows),
        "<div id='tip'></div>",
        f"<script>{_JS}</script>",
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _svg(rows: list[TaskLane], t0: float, t1: float) -> str:
    e = html.escape
    span = t1 - t0
    height = TOP + ROW_H * max(1, len(rows)) + 10
    width = LABEL_W + CHART_W + 20

    def x(t: float) -> float:
        return LABEL_W + (t - t0) / span * CHART_W

    out = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
           f"viewBox='0 0 {width} {height}' role='img' aria-label='task timeline'>"]
    for i in range(5):
        gx = LABEL_W + CHART_W * i / 4
        out.append(f"<line class='grid' x1='{gx:.1f}' y1='{TOP - 8}' x2='{gx:.1f}' y2='{height - 6}'/>")
        anchor = "start" if i == 0 else ("end" if i == 4 else "middle")
        out.append(f"<text class='axis' x='{gx:.1f}' y='{TOP - 14}' text-anchor='{anchor}'>"
                   f"{e(fmt_duration(span * i / 4))}</text>")
    for row, lane in enumerate(rows):
        y = TOP + row * ROW_H
        failed = lane.failed_attempts > 0
        mark = "\u2717 " if failed else ""
        label = "\u00a0\u00a0" * lane.depth + mark + lane.task.task_id
        out.append(f"<g class='lane' data-task='{e(lane.task.task_id)}' data-failed='{int(failed)}'>")
        out.append(f"<text class='lane-label{' failed' if failed else ''}' x='6' y='{y + BAR_H - 3}'>"
                   f"<title>{e(lane.task.task_id)} ({e(lane.task.name)}): {e(str(lane.task.status))}</title>"
                   f"{e(_clip(label, 38))}</text>")
        if lane.wait is not None:
            out.append(f"<line class='wait' x1='{x(lane.wait[0]):.1f}' y1='{y + BAR_H / 2}' "
                       f"x2='{x(lane.wait[1]):.1f}' y2='{y + BAR_H / 2}'/>")
        for s in lane.spans:
            out.append(_bar(lane, s, x(s.start), x(s.end), y))
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


def _bar(lane: TaskLane, s: Span, x0: float, x1: float, y: float) -> str:
    e = html.escape
    w = max(x1 - x0, 3.0)
    tip = (f"{lane.task.task_id} attempt #{s.attempt}: {s.outcome}\n"
           f"{fmt_ts(s.start)} .. {fmt_ts(s.end)} ({fmt_duration(s.end - s.start)})")
    if s.error is not None:
        tip += f"\n{s.error.error_type}: {short(s.error.message, 200)}"
    text = f"<rect class='attempt {s.outcome}' data-attempt='{s.attempt}' data-outcome='{s.outcome}' " \
           f"data-tip='{e(tip)}' x='{x0:.1f}' y='{y}' width='{w:.1f}' height='{BAR_H}'>" \
           f"<title>{e(tip)}</title></rect>"
    if w >= 22:
        text += f"<text class='attempt-label' x='{x0 + 3:.1f}' y='{y + BAR_H - 4}'>#{s.attempt}" \
                f"{CROSS if s.outcome == 'failed' and w >= 34 else ''}</text>"
    return text


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _table(state: WorkflowState, rows: list[TaskLane]) -> str:
    e = html.escape
    out = ["<table><thead><tr><th>task</th><th>name</th><th>status</th><th>attempts</th>"
           "<th>duration</th><th>output</th><th>errors</th></tr></thead><tbody>"]
    for lane in rows:
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
        options = f" title='{e(compact_json(task.task_options))}'" if task.task_options else ""
        out.append(f"<tr class='{'failed' if failed else 'ok'}' data-failed='{int(failed)}'>"
                   f"<td><code{options}>{e(task.task_id)}</code></td><td>{e(task.name)}</td>"
                   f"<td>{e(str(task.status))}</td><td>{task.attempt}</td>"
                   f"<td>{e(fmt_duration(task.duration))}</td><td>{output}</td><td>{errors}</td></tr>")
    out.append("</tbody></table>")
    if state.output is not None:
        out.append(f"<p>Workflow output: {e(fmt_payload(state.output))}, digest "
                   f"<code>{e(state.output.digest)}</code></p>")
    return "\n".join(out)
