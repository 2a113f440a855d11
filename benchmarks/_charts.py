"""One PNG chart per benchmark, from its figures (``benchmarks._common.figure``), with matplotlib.

Every chart puts the engine next to its baseline from the same run: a line for the medians and
a shaded band (or error bars) from the min to the max of the repeats.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display

import matplotlib.pyplot as plt  # noqa: E402

_COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


def draw(name: str, figures: list[dict], path: str, settings: dict) -> None:
    """Draw benchmark ``name``'s chart to ``path`` (PNG). Unknown names get a plain bar chart."""
    drawer = _DRAWERS.get(name, _bars_of_medians)
    fig = drawer(figures, settings)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _pick(figures: list[dict], **params) -> list[dict]:
    return [f for f in figures if all(f["params"].get(k) == v for k, v in params.items())]


def _line(ax, figures: list[dict], x: str, label: str, color, dashed: bool = False) -> None:
    """Medians of ``figures`` against their ``params[x]``, with a min..max band."""
    points = sorted(figures, key=lambda f: f["params"][x])
    if not points:
        return
    xs = [f["params"][x] for f in points]
    ax.plot(xs, [f["median"] for f in points], "--" if dashed else "-", marker="o", color=color, label=label,
            markersize=4)
    ax.fill_between(xs, [f["min"] for f in points], [f["max"] for f in points], color=color, alpha=0.15)


def _spread(fig: dict) -> tuple[float, float]:
    """The error bar of a figure: min..max over a few repeats; p10..p90 over many samples (timers...)."""
    values = sorted(fig["samples"])
    if len(values) <= 20:
        return fig["min"], fig["max"]
    return values[len(values) // 10], values[(len(values) * 9) // 10]


def _label(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _bars(ax, groups: list[str], series: dict[str, list[dict | None]], unit: str,
          colors: dict[str, str] | None = None) -> None:
    """Grouped bars: one group per entry of ``groups``, one bar per series, with error bars
    (min..max over repeats, or p10..p90 over many samples)."""
    width = 0.8 / max(1, len(series))
    for k, (label, figs) in enumerate(series.items()):
        xs, heights, low, high = [], [], [], []
        for i, fig in enumerate(figs):
            if fig is None:
                continue
            xs.append(i + (k - (len(series) - 1) / 2) * width)
            lo, hi = _spread(fig)
            heights.append(fig["median"])
            low.append(fig["median"] - lo)
            high.append(hi - fig["median"])
        color = (colors or {}).get(label, _COLORS[k % len(_COLORS)])
        ax.bar(xs, heights, width, yerr=[low, high], capsize=3, label=label, color=color)
        for x, h in zip(xs, heights):
            ax.annotate(_label(h), (x, h), xytext=(3, 2), textcoords="offset points", ha="left", va="bottom",
                        fontsize=7)
    ax.set_xticks(range(len(groups)), groups, fontsize=8)
    ax.set_ylabel(unit)
    ax.legend(fontsize=8)


def _storage(figures, settings):
    gc = _pick(figures, role="grouped")
    fig, axes = plt.subplots(1, 2 if gc else 1, figsize=(13 if gc else 7, 5), squeeze=False)
    ax = axes[0][0]
    backends = sorted({f["params"]["backend"] for f in figures if "batch" in f["params"]})
    for i, backend in enumerate(backends):
        color = _COLORS[i % len(_COLORS)]
        _line(ax, _pick(figures, role="append", backend=backend, event_bytes=100), "batch",
              f"{backend}: append", color)
        raw = _pick(figures, role="raw", backend=backend, event_bytes=100)
        kind = "write+fsync" if backend in ("local", "storage") else "PutObject"
        _line(ax, raw, "batch", f"{backend}: raw {kind}", color, dashed=True)
    ax.set(xscale="log", yscale="log", xlabel="events per append (batch)", ylabel="events/s",
           title="Durable appends by batch size (100 B events) vs the raw baseline")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    if gc:
        ax = axes[0][1]
        for i, (role, label) in enumerate((("grouped", "engine's group commit (LogWriter)"),
                                           ("single", "one append per event"),
                                           ("raw_put", "raw PutObject per event"))):
            _line(ax, _pick(figures, role=role), "writers", label, _COLORS[i], dashed=role == "raw_put")
        ax.set(xscale="log", yscale="log", xlabel="concurrent writers of one log", ylabel="events/s",
               title=f"S3 at {settings['s3_latency_ms']:g} ms each way: what group commit buys")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    return fig


def _replay(figures, settings):
    fig, ax = plt.subplots(figsize=(7, 5))
    for i, backend in enumerate(sorted({f["params"]["backend"] for f in figures})):
        color = _COLORS[i % len(_COLORS)]
        _line(ax, _pick(figures, role="load", backend=backend), "events", f"{backend}: load_state", color)
        _line(ax, _pick(figures, role="read", backend=backend), "events", f"{backend}: raw read of the bytes",
              color, dashed=True)
    ax.set(xscale="log", yscale="log", xlabel="events in the log", ylabel="seconds",
           title="Load time (read + decode + fold) vs log length")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def _engine(figures, settings):
    fig, ax = plt.subplots(figsize=(8, 5))
    shapes = list(dict.fromkeys(f["params"]["shape"] for f in figures if "shape" in f["params"]))
    series = {label: [next(iter(_pick(figures, shape=s, role=role)), None) for s in shapes]
              for role, label in (("plain", "plain Ray tasks"), ("durable", "durable (ray-durable)"))}
    _bars(ax, shapes, series, "ms per task")
    ax.set_title("ms/task: durable workflows vs plain Ray, same run")
    return fig


def _throughput(figures, settings):
    lat = _pick(figures, shape="one-task latency")
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [2, 1]})
    ax = axes[0]
    backends = sorted({f["params"]["backend"] for f in figures if "concurrency" in f["params"]})
    for i, backend in enumerate(backends):
        color = _COLORS[i % len(_COLORS)]
        _line(ax, _pick(figures, role="durable", backend=backend, shape="one-task"), "concurrency",
              f"{backend}: durable", color)
        _line(ax, _pick(figures, role="plain", backend=backend, shape="one-task"), "concurrency",
              f"{backend}: plain Ray", color, dashed=True)
    ax.set(xscale="log", yscale="log", xlabel="one-task workflows submitted at once", ylabel="workflows/s",
           title="Workflows/s vs concurrency (plain Ray tasks: same count, same run)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    backends = sorted({f["params"]["backend"] for f in lat})
    series = {label: [next(iter(_pick(lat, backend=b, role=role)), None) for b in backends]
              for role, label in (("plain", "plain Ray task"), ("durable", "one-task workflow"))}
    _bars(axes[1], backends, series, "ms, one at a time")
    axes[1].set_yscale("log")
    axes[1].set_title("Latency of one")
    return fig


def _list_scale(figures, settings):
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for i, backend in enumerate(sorted({f["params"]["backend"] for f in figures})):
        color = _COLORS[i % len(_COLORS)]
        _line(axes[0], _pick(figures, role="list_all", backend=backend), "workflows", f"{backend}: list_all()",
              color)
        _line(axes[0], _pick(figures, role="list_logs", backend=backend), "workflows",
              f"{backend}: storage list_logs() alone", color, dashed=True)
        _line(axes[1], _pick(figures, role="get_status", backend=backend), "workflows",
              f"{backend}: get_status()", color)
    axes[0].set(xscale="log", yscale="log", xlabel="workflows stored", ylabel="seconds",
                title="list_all vs the storage's own listing")
    axes[1].set(xscale="log", yscale="log", xlabel="workflows stored", ylabel="ms", title="get_status of one workflow")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    return fig


def _pair_bars(title: str, pairs: list[tuple[str, str, str]], log: bool = False):
    """A drawer of bars for (group label, engine figure role, baseline figure role) pairs."""
    def drawer(figures, settings):
        fig, ax = plt.subplots(figsize=(8, 5))
        shown = [(g, e, b) for g, e, b in pairs if _pick(figures, role=e)]
        series = {"ray-durable": [_pick(figures, role=e)[0] for _, e, _ in shown],
                  "baseline (same run)": [next(iter(_pick(figures, role=b)), None) for _, _, b in shown]}
        _bars(ax, [g for g, _, _ in shown], series, _unit(figures, shown))
        if log:
            ax.set_yscale("log")
        ax.set_title(title)
        return fig

    return drawer


def _unit(figures, shown) -> str:
    return _pick(figures, role=shown[0][1])[0]["unit"] if shown else ""


def _peers(figures, settings):
    fig, axes = plt.subplots(1, 3, figsize=(16, 5), gridspec_kw={"width_ratios": [3, 1.3, 1.3]})
    systems = list(dict.fromkeys(f["params"]["system"] for f in figures if "system" in f["params"]
                                 and f["params"]["role"] != "ratio" and f["params"]["role"] != "bytes_ratio"))
    shapes = list(dict.fromkeys(f["params"]["shape"] for f in figures if f["unit"] == "ms/task"))
    series = {s: [next(iter(_pick(figures, system=s, shape=sh, role="ms_per_task")), None) for sh in shapes]
              for s in systems}
    colors = {s: _COLORS[i % len(_COLORS)] for i, s in enumerate(systems)}  # one colour per system
    _bars(axes[0], shapes, series, "ms per task", colors)
    axes[0].set_yscale("log")
    axes[0].set_title("ms/task on the same shapes (log scale)")
    for ax, role, unit, title in ((axes[1], "workflows_per_s", "workflows/s", "One-task workflows, many at once"),
                                  (axes[2], "bytes_per_task", "bytes", "Bytes stored per one-task workflow")):
        shown = [s for s in systems if _pick(figures, system=s, role=role)]
        _bars(ax, [""], {s: [_pick(figures, system=s, role=role)[0]] for s in shown}, unit, colors)
        ax.set_title(title, fontsize=10)
        if role == "workflows_per_s":
            ax.set_yscale("log")
    return fig


def _bars_of_medians(figures, settings):
    fig, ax = plt.subplots(figsize=(8, 5))
    shown = [f for f in figures if f.get("summary")] or figures[:10]
    _bars(ax, [f["name"] for f in shown], {"median": shown}, shown[0]["unit"] if shown else "")
    return fig


_DRAWERS = {
    "storage_throughput": _storage,
    "replay_speed": _replay,
    "engine_overhead": _engine,
    "throughput": _throughput,
    "list_scale": _list_scale,
    "events": _pair_bars("Timers and HTTP events (ms, median; bars p10..p90) vs plain baselines", [
        ("timer fires late (baseline: asyncio timer in an actor)", "timer_late", "plain_timer_late"),
        ("HTTP event -> task starts (baseline: Serve POST)", "event_to_task", "plain_serve_rtt"),
    ], log=True),
    "recovery": _pair_bars("Manager kill -9 -> workflow running again vs Ray's actor restart", [
        ("kill -9 -> running again", "engine_recovery", "ray_restart"),
    ]),
    "peers": _peers,
}
