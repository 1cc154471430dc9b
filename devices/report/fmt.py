"""Number formatting and table building shared by the Markdown and HTML reports.

Both renderers draw the same tables from the same cell strings, so a number can never read one
way in report.md and another in report.html. Every accessor is defensive: report.json is written
by several stages and older or partial reports may lack any optional key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .build import drop_unit, task_metrics

DASH = "—"
SMOKE_BANNER = "SMOKE RUN — numbers are not meaningful"


def num(x: Any) -> float | None:
    """``x`` as a finite-or-infinite float, or None for missing / NaN / non-numbers."""
    # bool is an int subclass: a stray True must not print as "1.00".
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    v = float(x)
    return None if math.isnan(v) else v


def fmt_sig(x: Any, digits: int = 3) -> str:
    """``digits`` significant figures, never scientific notation (0.0123, 1.23, 12.3, 1230)."""
    v = num(x)
    if v is None:
        return DASH
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if v == 0:
        return "0"
    decimals = digits - 1 - math.floor(math.log10(abs(v)))
    v = round(v, decimals)
    # Rounding can carry into a new digit (9.996 -> 10.0): recompute the decimals afterwards.
    decimals = digits - 1 - math.floor(math.log10(abs(v))) if v else 0
    return f"{v:.{max(decimals, 0)}f}"


fmt_ms = fmt_sig


def fmt_fixed(x: Any, decimals: int = 2) -> str:
    v = num(x)
    return DASH if v is None else f"{v:.{decimals}f}"


def fmt_count(x: Any, trim: bool = False) -> str:
    """Parameter / FLOP counts with an SI suffix: 1.70 M, 33.0 M, 512 k.

    trim drops trailing zeros (1 M rather than 1.00 M), for axis ticks.
    """
    v = num(x)
    if v is None:
        return DASH
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            mantissa = fmt_sig(v / scale)
            if trim and "." in mantissa:
                mantissa = mantissa.rstrip("0").rstrip(".")
            return f"{mantissa} {suffix}"
    return f"{v:.0f}"


def fmt_bytes(x: Any) -> str:
    v = num(x)
    if v is None:
        return DASH
    for scale, suffix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(v) >= scale:
            return f"{fmt_sig(v / scale)} {suffix}"
    return f"{v:.0f} B"


def fmt_rate(x: Any) -> str:
    """Throughput: thousands separators for big rates, significant figures for small ones."""
    v = num(x)
    if v is None:
        return DASH
    return f"{v:,.0f}" if abs(v) >= 1000 else fmt_sig(v)


def fmt_signed(x: Any, decimals: int = 2) -> str:
    v = num(x)
    return DASH if v is None else f"{v:+.{decimals}f}"


def fmt_times(x: Any) -> str:
    v = num(x)
    return DASH if v is None else f"{fmt_sig(v)}×"


def text(x: Any) -> str:
    return DASH if x is None or x == "" else str(x)


def is_estimated(rec: dict) -> bool:
    return bool(rec.get("estimated"))


def is_unstable(rec: dict) -> bool:
    # The measuring stage decides; only when it said nothing do we apply cv > threshold ourselves.
    flag = rec.get("unstable")
    if flag is not None:
        return bool(flag)
    cv, thr = num(rec.get("cv")), num(rec.get("cv_threshold"))
    return cv is not None and thr is not None and cv > thr


def unstable_flag(rec: dict) -> str:
    """'' for a stable record, else e.g. 'UNSTABLE (cv 0.31 > 0.15)'."""
    if not is_unstable(rec):
        return ""
    cv, thr = num(rec.get("cv")), num(rec.get("cv_threshold"))
    if cv is None or thr is None:
        return "UNSTABLE"
    return f"UNSTABLE (cv {cv:.2f} > {thr:.2f})"


def batch_sizes(report: dict) -> list[int]:
    sizes = {r.get("batch_size") for r in _records(report)}
    return sorted(b for b in sizes if isinstance(b, int) and not isinstance(b, bool))


def _records(report: dict) -> list[dict]:
    return [r for r in report.get("latency") or [] if isinstance(r, dict)]


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # column indices to right-align


def header_lines(report: dict) -> list[tuple[str, str]]:
    """(label, value) lines shown under the title: date, machine, versions, dataset."""
    machine = report.get("machine") or {}
    cpu = machine.get("cpu_model") or machine.get("processor")
    cores = machine.get("cores")
    parts = [
        str(cpu) if cpu else None,
        f"{cores} cores" if cores is not None else None,
        machine.get("platform"),
        f"Python {machine['python']}" if machine.get("python") else None,
    ]
    versions = report.get("versions") or {}
    lines = [
        ("Created", text(report.get("created"))),
        ("Report written on", " · ".join(str(p) for p in parts if p) or DASH),
        ("Latency measured on", measured_on(report)),
        ("Versions", " · ".join(f"{k} {v}" for k, v in versions.items()) or DASH),
    ]
    task = report.get("task") or {}
    primary = metrics_of(report)[0]
    lines.append(("Task", f"{text(task.get('name'))} — primary metric {metric_label(primary)}, "
                          f"{primary['direction']} is better"))  # fmt: skip
    ds = report.get("dataset") or {}
    if ds:
        split = " / ".join(f"{k} {ds[k]}" for k in ("train", "val", "test") if k in ds)
        extra = [split, f"input {ds['input_shape']}" if ds.get("input_shape") else ""]
        classes = ds.get("classes")  # a count, or the class names
        classes = len(classes) if isinstance(classes, list | tuple) else classes
        extra.append(f"{classes} classes" if classes is not None else "")
        lines.append(("Dataset", f"{text(ds.get('name'))} — " + ", ".join(e for e in extra if e)))
    return lines


def measured_on(report: dict) -> str:
    """Where the latency records were taken (each record carries its machine, read when it was
    measured) and the load average (1 min) around them: honest only if a reader sees the load."""
    machines = [r["machine"] for r in _records(report) if isinstance(r.get("machine"), dict)]
    if not machines:
        return DASH
    names = dict.fromkeys(f"{m.get('cpu_model')} · {m.get('cores')} cores" for m in machines)
    loads = [v for m in machines for key in ("load_before", "load_after")
             if isinstance(v := (m.get(key) or [None])[0], int | float)]  # fmt: skip
    load = f" · load average {min(loads):.2f}–{max(loads):.2f} (1 min)" if loads else ""
    return "; ".join(names) + load


def _parity_cell(artifacts: list[dict]) -> str:
    cells = []
    for art in artifacts:
        parity = art.get("parity")
        if not isinstance(parity, dict):
            continue
        verdict = {True: "ok", False: "FAIL"}.get(parity.get("passed"), "?")
        err = num(parity.get("max_abs_error"))
        cells.append(verdict if err is None else f"{verdict} (max abs {err:.1e})")
    return "; ".join(cells) or DASH


def _onnx_size(artifacts: list[dict]) -> str:
    for art in artifacts:
        if art.get("format") == "onnx" and art.get("size_bytes") is not None:
            return fmt_bytes(art.get("size_bytes"))
    return DASH


def metrics_of(report: dict) -> list[dict]:
    """The report's metric descriptions, primary first (accuracy (%) for reports without one)."""
    return task_metrics(report.get("task"))


def metric_label(metric: dict) -> str:
    """Column title of a metric: 'accuracy (%)', 'perplexity'."""
    return f"{metric['name']} ({metric['unit']})" if metric.get("unit") else metric["name"]


def fmt_value(x: Any) -> str:
    """A metric in its displayed unit."""
    return fmt_fixed(x, 2)


def fmt_stored(metric: dict, x: Any) -> str:
    """A stored metric value (0.9231) as displayed (92.31)."""
    v = num(x)
    return fmt_value(None if v is None else v * float(metric.get("scale") or 1.0))


def fmt_mean_std(stat: Any) -> str:
    """'91.31 ± 0.25'; the mean alone when there is no spread to show (one seed)."""
    stat = stat if isinstance(stat, dict) else {}
    mean, std = num(stat.get("mean")), num(stat.get("std"))
    if mean is None:
        return DASH
    return fmt_value(mean) if std is None else f"{mean:.2f} ± {std:.2f}"


def _artifact_metric(artifacts: list[dict], metric: dict) -> str:
    cells = [fmt_stored(metric, (a.get("metrics") or {}).get(metric["name"])) for a in artifacts]
    return "; ".join(cells) or DASH


def models_table(report: dict) -> Table:
    """One row per trained model, every seed its own row; metrics of the PyTorch model and of
    each exported artifact side by side, so an export that lost accuracy shows."""
    metrics = metrics_of(report)
    headers = ["Model", "Group", "Role", "Seed", "Arch", "Params", "FLOPs"]
    for mt in metrics:
        headers += [f"{metric_label(mt)} PyTorch", f"{metric_label(mt)} artifact"]
    headers += ["Artifact runtime", "Parity", "ONNX size"]
    models = [m for m in report.get("models") or [] if isinstance(m, dict)]
    # Seeds of one group next to each other, groups in the order the run made them.
    order = {
        g: i for i, g in enumerate(dict.fromkeys(m.get("group") or m.get("name") for m in models))
    }
    rows = []
    for m in sorted(models, key=lambda m: order[m.get("group") or m.get("name")]):
        arts = [a for a in m.get("artifacts") or [] if isinstance(a, dict)]
        pytorch = m.get("metrics_pytorch") or {}
        row = [text(m.get("name")), text(m.get("group") or m.get("name")), text(m.get("role")),
               text(m.get("seed")), text(m.get("arch")), fmt_count(m.get("params")),
               fmt_count(m.get("flops"))]  # fmt: skip
        for mt in metrics:
            row += [fmt_stored(mt, pytorch.get(mt["name"])), _artifact_metric(arts, mt)]
        runtimes = "; ".join(text(a.get("runtime") or a.get("format")) for a in arts) or DASH
        rows.append(row + [runtimes, _parity_cell(arts), _onnx_size(arts)])
    return Table(headers, rows, numeric=set(range(5, 7 + 2 * len(metrics))) | {len(headers) - 1})


def _source_tokens(record: dict) -> str:
    """A generation record's source length: its input shape is (batch, source tokens)."""
    shape = record.get("input_shape") or []
    return text(shape[1]) if record.get("ttft_ms") is not None and len(shape) == 2 else DASH


def latency_table(report: dict, estimated: bool) -> Table:
    """Measured records (estimated=False) or estimated ones (True); never the two mixed."""
    recs = [r for r in _records(report) if is_estimated(r) == estimated]
    # LLM columns appear only when some record carries them, so CNN reports stay narrow.
    llm = any(
        r.get("ttft_ms") is not None or r.get("decode_tokens_per_s") is not None for r in recs
    )
    headers = [
        "Model",
        "Target",
        "Precision",
        "Batch",
        "Median ms",
        "p90 ms",
        "p99 ms",
        "CV",
        "Throughput/s",
        "Load ms",
        "First-inference ms",
    ]
    headers += ["Source tokens", "TTFT ms", "Decode tok/s"] if llm else []
    headers.append("Flag")
    rows = []
    for r in recs:
        row = [
            text(r.get("model")),
            text(r.get("target")),
            text(r.get("precision")),
            text(r.get("batch_size")),
            fmt_ms(r.get("median_ms")),
            fmt_ms(r.get("p90_ms")),
            fmt_ms(r.get("p99_ms")),
            fmt_fixed(r.get("cv")),
            fmt_rate(r.get("throughput_per_s")),
            fmt_ms(r.get("load_ms")),
            fmt_ms(r.get("first_inference_ms")),
        ]
        if llm:
            row += [_source_tokens(r), fmt_ms(r.get("ttft_ms")),
                    fmt_rate(r.get("decode_tokens_per_s"))]  # fmt: skip
        flags = ["estimated"] if estimated else []
        flags += ["EMULATOR: not device latency"] if r.get("emulated") else []
        flags += [unstable_flag(r)] if is_unstable(r) else []
        if r.get("too_few_samples"):
            flags.append(f"TOO FEW SAMPLES ({r.get('iterations')} < {r.get('min_samples')})")
        rows.append(row + [", ".join(flags)])
    return Table(headers, rows, numeric=set(range(3, len(headers) - 1)))


GROUPS_NOTE = (
    "Per seed: the metrics of each seed's exported artifact (of its PyTorch model when it has "
    "none); mean ± std over seeds (sample std, none for one seed). Latency: median over the "
    "group's seeds of each seed's measured median, exported artifact."
)


def groups_table(report: dict) -> Table:
    """One row per model group: per-seed values and mean ± std for every task metric."""
    metrics = metrics_of(report)
    headers = ["Group", "Role", "Arch", "Params", "FLOPs", "Seeds"]
    for mt in metrics:
        headers += [f"{metric_label(mt)} per seed", f"{metric_label(mt)} mean ± std"]
    headers += ["Measured on", "b1 ms", "b64 ms"]
    rows = []
    for g in (g for g in report.get("groups") or [] if isinstance(g, dict)):
        seeds = [s for s in g.get("seeds") or [] if s is not None]
        row = [text(g.get("group")), text(g.get("role")), text(g.get("arch")),
               fmt_count(g.get("params")), fmt_count(g.get("flops")),
               ", ".join(map(str, seeds)) or DASH]  # fmt: skip
        for mt in metrics:
            stat = (g.get("metrics") or {}).get(mt["name"]) or {}
            row += [" / ".join(fmt_value(v) for v in stat.get("values") or []) or DASH,
                    fmt_mean_std(stat)]  # fmt: skip
        row += [text(g.get("metrics_source")), fmt_ms(g.get("latency_b1_ms")),
                fmt_ms(g.get("latency_b64_ms"))]  # fmt: skip
        rows.append(row)
    n = len(headers)
    return Table(headers, rows, numeric={3, 4, 5, n - 2, n - 1} | set(range(6, n - 3)))


def comparisons_table(report: dict) -> Table:
    """Every non-teacher group against the teacher; metric deltas are group mean − teacher."""
    metrics = metrics_of(report)
    headers = ["Group", "Role", "Teacher", "Params ratio", "FLOPs ratio"]
    headers += [f"{m['name']} Δ ({drop_unit(m)}, {m['direction']} is better)" for m in metrics]
    headers += ["Teacher eager b1 ms", "Group b1 ms", "Speed-up b1"]
    rows = []
    for c in (c for c in report.get("comparisons") or [] if isinstance(c, dict)):
        deltas = c.get("metrics") or {}
        row = [text(c.get("group")), text(c.get("role")), text(c.get("teacher")),
               fmt_sig(c.get("param_ratio")), fmt_sig(c.get("flops_ratio"))]  # fmt: skip
        row += [fmt_signed((deltas.get(m["name"]) or {}).get("delta")) for m in metrics]
        rows.append(row + [fmt_ms(c.get("latency_b1_teacher_eager_ms")),
                           fmt_ms(c.get("latency_b1_model_ms")),
                           fmt_times(c.get("speedup_b1"))])  # fmt: skip
    return Table(headers, rows, numeric=set(range(3, len(headers))))


def goal_result(goal: dict) -> str:
    return {True: "PASS", False: "FAIL"}.get(goal.get("passed"), DASH)


def goal_detail(goal: dict) -> str:
    """The interval behind a beat-baseline verdict, or why a goal could not be checked."""
    low, high, conf = num(goal.get("low")), num(goal.get("high")), num(goal.get("confidence"))
    if low is not None and high is not None and conf is not None:
        gains = ", ".join(fmt_signed(d) for d in goal.get("differences") or [])
        return f"{conf:.0%} CI [{low:+.2f}, {high:+.2f}], n={goal.get('n')}; per seed {gains}"
    return text(goal.get("reason"))


def goals_table(report: dict) -> Table:
    """Every goal with its verdict; the interval column is why a beat-baseline goal passed."""
    headers = ["Goal", "Description", "Measured", "Target", "Unit", "Interval / reason", "Result"]
    rows = [
        [text(g.get("name")), text(g.get("description")), fmt_sig(g.get("measured")),
         fmt_sig(g.get("target")), text(g.get("unit")), goal_detail(g), goal_result(g)]
        for g in report.get("goals") or []
        if isinstance(g, dict)
    ]  # fmt: skip
    return Table(headers, rows, numeric={2, 3})
