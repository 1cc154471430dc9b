"""Tables of the per-target part of the report (report["targets"]), shared by report.md and
report.html: one table per target, its top operators, and the change since the last report."""

from __future__ import annotations

from .fmt import DASH, Table, fmt_fixed, fmt_ms, fmt_value, metric_label, metrics_of, text


def _flags(row: dict) -> str:
    flags = ["EMULATOR: not device latency"] if row.get("emulated") else []
    flags += [f"UNSTABLE (cv {row['cv']:.2f})"] if row.get("unstable") else []
    flags += [f"TOO FEW SAMPLES ({row.get('samples')})"] if row.get("too_few_samples") else []
    return ", ".join(flags)


def _placement(p: dict | None) -> str:
    if not p:
        return DASH
    cpu = f" ({', '.join(p.get('cpu_ops') or [])})" if p.get("cpu") else ""
    return f"NPU {p.get('npu')}, CPU {p.get('cpu')}{cpu}"


def target_table(report: dict, target: str) -> Table:
    label = metric_label(metrics_of(report)[0])
    headers = ["Model", "Format", "Precision", "Batch", "Median ms", "CV", "Samples", "Threads",
               f"{label} on this target", f"{label} of its source on cpu-ort", "Placement",
               "Front", "Flag"]  # fmt: skip
    rows = []
    for r in ((report.get("targets") or {}).get("per_target") or {}).get(target) or []:
        rows.append([text(r.get("model")), text(r.get("format")), text(r.get("precision")),
                     text(r.get("batch")), fmt_ms(r.get("b1_ms")), fmt_fixed(r.get("cv")),
                     text(r.get("samples")), text(r.get("threads")), fmt_value(r.get("metric")),
                     fmt_value(r.get("metric_reference")), _placement(r.get("placement")),
                     "on front" if r.get("on_front") else "", _flags(r)])  # fmt: skip
    return Table(headers, rows, numeric={3, 4, 5, 6, 7, 8, 9})


def operators_table(report: dict, target: str) -> Table:
    headers = ["Model", "Operator", "Op", "Ran on", "ms per call", "Share"]
    rows = []
    for r in ((report.get("targets") or {}).get("per_target") or {}).get(target) or []:
        for op in (r.get("operators") or [])[:5]:
            rows.append([text(r.get("model")), text(op.get("name")), text(op.get("op")),
                         text(op.get("where")), fmt_ms(op.get("ms")),
                         f"{100 * (op.get('share') or 0):.1f}%"])  # fmt: skip
    return Table(headers, rows, numeric={4, 5})


def previous_table(report: dict) -> Table:
    headers = ["Model", "Target", "Batch", "Before ms", "Now ms", "Change"]
    rows = []
    for c in (report.get("targets") or {}).get("versus_previous") or []:
        word = "slower" if c["change"] > 0 else "faster"
        rows.append([text(c.get("model")), text(c.get("target")), text(c.get("batch")),
                     fmt_ms(c.get("before_ms")), fmt_ms(c.get("now_ms")),
                     f"{abs(c['change']):.1%} {word}"])  # fmt: skip
    return Table(headers, rows, numeric={2, 3, 4})


def target_names(report: dict) -> list[str]:
    return list(((report.get("targets") or {}).get("per_target") or {}).keys())


def previous_note(report: dict) -> str:
    found = (report.get("targets") or {}).get("versus_previous") or []
    when = found[0].get("previous_created") if found else None
    return f"Against the previous report of this run directory ({text(when)})." if found else ""


TARGETS_NOTE = ("Per target: batch 1 (or its smallest batch); metrics as that target's runtime "
                "computes them. Front: no other artifact on the target is both faster and better. "
                "Emulator timings are not device latency.")  # fmt: skip
