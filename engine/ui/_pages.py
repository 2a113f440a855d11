"""The UI's pages as HTML: the list of workflows and one page per workflow. Pure rendering.

Each page is whole on its own (inline CSS and JS, nothing from the network). The part that
changes while a workflow runs is one element, ``#live``, which the page's script fetches again
(``/fragment/...``) every :data:`REFRESH_MS` while anything shown may still change, and swaps
in place; it stops once everything shown has finished.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Sequence
from urllib.parse import quote, urlencode

from replay import WorkflowStatus
from replay._format import fmt_duration, fmt_payload, fmt_ts, short
from replay._inspect import Entry
from replay._render_html import CSS as TIMELINE_CSS
from replay._render_html import JS as TIMELINE_JS
from replay._render_html import tasks_table, timeline_html
from replay._render_text import event_fields
from replay._spans import Timeline

from ..store._status import Lease, WorkflowSummary

REFRESH_MS = 1000
LIST_LIMIT = 500  # rows on the list page (the newest); the filters reach the rest
_STATUSES = [s.value for s in WorkflowStatus]
_SETTLED = (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED, WorkflowStatus.FAILED)
e = html.escape

_CSS = TIMELINE_CSS + """
nav{margin:0 0 14px;font-size:13px} nav a{color:#1565c0;text-decoration:none}
form.filters{display:flex;gap:10px;align-items:center;margin:0 0 12px;flex-wrap:wrap}
form.filters input[type=search]{padding:4px 6px;width:240px}
table.workflows td a{color:#1565c0;text-decoration:none;font-family:ui-monospace,Menlo,Consolas,monospace}
.failure{border-left:4px solid #c62828;background:#fdecea;padding:8px 12px;margin:10px 0;max-width:1150px}
.failure pre{max-height:240px;overflow:auto}
.note{color:#555;font-size:13px} .warn{color:#8a4b00;font-size:13px}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 14px;margin:8px 0}
dl.facts dt{color:#555} dl.facts dd{margin:0}
h2{font-size:16px;margin:22px 0 6px}
table.events td.fields{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
.damage{border-left:4px solid #8a4b00;background:#fff4e5;padding:8px 12px}
"""

_REFRESH_JS = """
(function(){
  var live=document.getElementById('live');
  if(!live)return;
  function tick(){
    if(live.getAttribute('data-settled')==='1')return;
    fetch(live.getAttribute('data-src'),{cache:'no-store'}).then(function(r){return r.text();}).then(function(t){
      var box=document.createElement('div');box.innerHTML=t;var next=box.firstElementChild;
      if(next&&next.getAttribute('data-version')!==live.getAttribute('data-version')){
        live.replaceWith(next);live=next;bind();}
      else if(next){live.setAttribute('data-settled',next.getAttribute('data-settled'));}
      setTimeout(tick,REFRESH);
    }).catch(function(){setTimeout(tick,REFRESH*3);});
  }
  function bind(){__TIMELINE__}
  setTimeout(tick,REFRESH);
})();
"""


def _page(title: str, body: str) -> str:
    script = _REFRESH_JS.replace("REFRESH", str(REFRESH_MS)).replace("__TIMELINE__", TIMELINE_JS)
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{e(title)}</title><style>{_CSS}</style></head><body>\n{body}\n"
            f"<script>{TIMELINE_JS}</script><script>{script}</script></body></html>\n")


def _badge(status: WorkflowStatus | str | None) -> str:
    text = str(status)
    return f"<span class='status {e(text)}'>{e(text)}</span>"


def _when(ts: float | None) -> str:
    return "-" if ts is None else fmt_ts(ts)


# --- the list ---------------------------------------------------------------------------------

def list_page(rows: Sequence[WorkflowSummary], storage_url: str, statuses: Sequence[str], query: str) -> str:
    """Every workflow (filtered by status and an id search) with its times and failed task."""
    options = "".join(
        f"<label><input type='checkbox' name='status' value='{s}'{' checked' if s in statuses else ''}> "
        f"{s}</label>" for s in _STATUSES)
    body = (f"<h1>Workflows</h1><p class='meta'>in <code>{e(storage_url)}</code></p>"
            f"<form class='filters' method='get' action='/'>"
            f"<input type='search' name='q' value='{e(query)}' placeholder='search workflow ids' "
            f"aria-label='search workflow ids'>{options}<button type='submit'>filter</button>"
            f"<a href='/'>clear</a></form>"
            + list_fragment(rows, storage_url, statuses, query))
    return _page(f"ray-durable: {storage_url}", body)


def list_fragment(rows: Sequence[WorkflowSummary], storage_url: str, statuses: Sequence[str], query: str) -> str:
    """The ``#live`` part of the list: the table and a summary line."""
    params = urlencode([("status", s) for s in statuses] + ([("q", query)] if query else []))
    version = e(str(hash(tuple((r.workflow_id, str(r.status), r.end_time) for r in rows))))
    # never settled: new workflows may appear at any time
    out = [f"<div id='live' data-src='/fragment/list?{e(params)}' data-version='{version}' data-settled='0'>"]
    if not rows:
        out.append("<p class='note'>no workflows match</p></div>")
        return "".join(out)
    counts = Counter(str(r.status) for r in rows)
    shown = f"; the newest {LIST_LIMIT} are shown, filter to see others" if len(rows) > LIST_LIMIT else ""
    out.append(f"<p class='note'>{len(rows)} workflow{'s' if len(rows) != 1 else ''}: "
               + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + f"{shown}</p>")
    rows = rows[:LIST_LIMIT]
    out.append("<table class='workflows'><thead><tr><th>workflow</th><th>status</th><th>started</th>"
               "<th>ended</th><th>duration</th><th>failed task</th></tr></thead><tbody>")
    for r in rows:
        out.append(f"<tr data-workflow='{e(r.workflow_id)}' data-status='{e(str(r.status))}'>"
                   f"<td><a href='/workflows/{quote(r.workflow_id)}'>{e(r.workflow_id)}</a></td>"
                   f"<td>{_badge(r.status)}</td><td>{e(_when(r.start_time))}</td><td>{e(_when(r.end_time))}</td>"
                   f"<td>{e(fmt_duration(r.duration))}</td><td>{e(r.failed_task or '-')}</td></tr>")
    out.append("</tbody></table></div>")
    return "\n".join(out)


# --- one workflow -----------------------------------------------------------------------------

def workflow_page(timeline: Timeline, status: WorkflowStatus, lease: Lease | None, entries: Sequence[Entry],
                  damage: str | None, outputs: dict[str, str] | None, payloads_allowed: bool) -> str:
    """The workflow: status, failure, facts, timeline, tasks, events, and (opt-in) output values."""
    workflow_id = timeline.state.workflow_id
    body = (f"<nav><a href='/'>&larr; all workflows</a></nav>"
            f"<h1>Workflow <code>{e(workflow_id)}</code></h1>"
            + workflow_fragment(timeline, status, lease, entries, damage, outputs, payloads_allowed))
    return _page(f"ray-durable: {workflow_id}", body)


def workflow_fragment(timeline: Timeline, status: WorkflowStatus, lease: Lease | None, entries: Sequence[Entry],
                      damage: str | None, outputs: dict[str, str] | None, payloads_allowed: bool) -> str:
    state = timeline.state
    settled = int(state.status in _SETTLED)
    src = f"/fragment/workflows/{quote(state.workflow_id)}" + ("?payloads=1" if outputs is not None else "")
    out = [f"<div id='live' data-src='{e(src)}' data-version='{state.last_seq}' data-settled='{settled}'>"]
    logged = "" if status == state.status else (
        f" <span class='note'>(the log says {e(str(state.status))}, and no live lease shows a driver; "
        f"if none runs it, <code>ray-durable resume</code> continues it)</span>")
    out.append(f"<p class='meta'>{_badge(status)}{logged}</p>")
    if damage:
        out.append(f"<div class='damage'><b>The log is damaged:</b> {e(damage)} (shown: what is readable)</div>")
    out.append(_failure(timeline))
    out.append(_facts(timeline, lease))
    out.append("<h2>Timeline</h2>")
    out.append(timeline_html(timeline))
    out.append("<h2>Tasks</h2>")
    out.append(tasks_table(timeline))
    out.append(_outputs(state.workflow_id, outputs, payloads_allowed))
    out.append(_events(entries, state.start_time))
    out.append("</div>")
    return "\n".join(out)


def _failure(timeline: Timeline) -> str:
    state = timeline.state
    if state.failed_task_id is None:
        return ""
    task = state.tasks.get(state.failed_task_id)
    error = task.error if task is not None else None
    attempt = f", attempt {error.attempt}" if error is not None else ""
    trace = f"<details><summary>traceback</summary><pre>{e(error.traceback)}</pre></details>" \
        if error is not None and error.traceback else ""
    return (f"<div class='failure' role='alert'><b>Failed</b> at task <code>{e(state.failed_task_id)}</code>"
            f"{attempt}: <b>{e((state.error_type or '').removeprefix('builtins.'))}</b>: "
            f"{e(short(state.error_message or '', 500))}{trace}</div>")


def _facts(timeline: Timeline, lease: Lease | None) -> str:
    state = timeline.state
    facts = [("submitted", _when(state.start_time))]
    if state.end_time is not None:
        facts.append(("ended", f"{_when(state.end_time)} (took "
                               f"{fmt_duration(state.end_time - (state.start_time or state.end_time))})"))
    elif state.last_ts is not None:
        facts.append(("last event", _when(state.last_ts)))
    for number, run in enumerate(timeline.runs, start=1):
        text = f"{_when(run.started_at)}, {run.outcome}"
        if run.duration is not None:
            text += f" after {fmt_duration(run.duration)}"
        if run.resumed:
            text += " (resumed)"
        if run.owner is not None:
            text += f", on {getattr(run.owner, 'label', None) or run.owner}"
        facts.append((f"run {number}", text))
    if lease is not None:
        facts.append(("lease", f"held by {lease.cluster or lease.owner} until {_when(lease.expires_at)}"))
    if state.cancel_requested and state.status is not WorkflowStatus.CANCELED:
        facts.append(("cancel", "requested"))
    sub = state.submission
    if sub is not None:
        if state.user_metadata:
            facts.append(("metadata", str(state.user_metadata)))
        versions = ", ".join(f"{n} {v}" for n, v in (("ray-durable", sub.engine_version), ("ray", sub.ray_version),
                                                     ("python", sub.python_version)) if v)
        if versions:
            facts.append(("written by", versions))
    if state.output is not None:
        facts.append(("output", fmt_payload(state.output)))
    facts.append(("events", str(state.last_seq + 1)))
    return "<dl class='facts'>" + "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in facts) + "</dl>"


def _outputs(workflow_id: str, outputs: dict[str, str] | None, allowed: bool) -> str:
    if outputs is None:
        if not allowed:
            return ("<h2>Output values</h2><p class='note' id='payloads'>Values are not loaded: that means "
                    "unpickling data from storage. Start the UI with <code>--load-payloads</code> "
                    "(trusted storage only) to allow it.</p>")
        return (f"<h2>Output values</h2><p class='note' id='payloads'><a href='/workflows/{quote(workflow_id)}"
                f"?payloads=1'>load output values</a> (unpickles data from storage: trusted storage only)</p>")
    rows = "".join(f"<tr><td><code>{e(key or '(workflow)')}</code></td><td><pre>{e(text)}</pre></td></tr>"
                   for key, text in outputs.items())
    return ("<h2>Output values</h2><p class='warn'>unpickled from storage</p>"
            f"<table class='outputs' id='payloads'><tbody>{rows}</tbody></table>")


def _events(entries: Sequence[Entry], t0: float | None) -> str:
    out = [f"<h2>Events</h2><details class='events'><summary>{len(entries)} events (the raw log)</summary>",
           "<table class='events'><thead><tr><th>seq</th><th>time</th><th>+</th><th>type</th><th>fields</th>"
           "</tr></thead><tbody>"]
    for entry in entries:
        if entry.event is None:
            out.append(f"<tr><td>{entry.seq}</td><td>?</td><td></td><td>{e(entry.tag)}</td>"
                       f"<td class='fields'>{e(str(entry.error))}</td></tr>")
            continue
        ts = entry.event.ts
        offset = f"+{ts - t0:.3f}s" if t0 is not None else ""
        out.append(f"<tr><td>{entry.seq}</td><td>{e(fmt_ts(ts))}</td><td>{offset}</td><td>{e(entry.tag)}</td>"
                   f"<td class='fields'>{e(event_fields(entry.event))}</td></tr>")
    out.append("</tbody></table></details>")
    return "\n".join(out)


def not_found_page(workflow_id: str, storage_url: str, close: Sequence[str]) -> str:
    links = ", ".join(f"<a href='/workflows/{quote(w)}'>{e(w)}</a>" for w in close)
    body = (f"<nav><a href='/'>&larr; all workflows</a></nav><h1>No workflow <code>{e(workflow_id)}</code></h1>"
            f"<p>in <code>{e(storage_url)}</code>" + (f"; did you mean {links}?" if links else "") + "</p>")
    return _page("ray-durable: not found", body)
