"""report.html: one self-contained file (inline CSS, plots as base64 PNG, no scripts, no links).

It has to open from a USB stick on an offline device, so nothing may be fetched from anywhere.
Every string from the report passes through html.escape.
"""

from __future__ import annotations

import base64
import html

from . import plots
from .fmt import (
    GROUPS_NOTE,
    SMOKE_BANNER,
    Table,
    batch_sizes,
    comparisons_table,
    goals_table,
    groups_table,
    header_lines,
    latency_table,
    metric_label,
    metrics_of,
    models_table,
    text,
)
from .quant_table import QUANT_NOTE, quantization_table
from .sections import sections_of, stage_table

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; }
h1 { margin-bottom: .2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .2em 1em; }
dl.meta dt { font-weight: 600; } dl.meta dd { margin: 0; }
table { border-collapse: collapse; font-size: .9em; margin: .5em 0; }
th, td { border: 1px solid #ccc; padding: .3em .6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.bad { color: #b00020; font-weight: 700; } td.good { color: #1b7a1b; font-weight: 700; }
td.est { color: #8a5a00; font-style: italic; } tr.unstable { background: #fff0f0; }
.banner { background: #b00020; color: #fff; font-weight: 700; font-size: 1.3em;
          padding: .6em 1em; border-radius: 4px; }
.estnote { color: #8a5a00; font-style: italic; } .note { color: #555; font-size: .9em; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .9em; color: #555; }
"""


def _cell_class(value: str, numeric: bool) -> str:
    if value.startswith("FAIL") or "UNSTABLE" in value:
        return "bad"
    if value == "PASS":
        return "good"
    if value.startswith("estimated"):
        return "est"
    return "num" if numeric else ""


def render_table(table: Table) -> str:
    """An HTML table; flagged cells (UNSTABLE, FAIL, estimated) get a visible style."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.headers)
    rows = []
    for row in table.rows:
        tds = []
        for i, value in enumerate(row):
            cls = _cell_class(value, i in table.numeric)
            attr = f' class="{cls}"' if cls else ""
            tds.append(f"<td{attr}>{html.escape(value)}</td>")
        tr_attr = ' class="unstable"' if any("UNSTABLE" in v for v in row) else ""
        rows.append(f"<tr{tr_attr}>{''.join(tds)}</tr>")
    return (
        f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody>\n</table>"
    )


def _section(sid: str, title: str, table: Table, empty: str, intro: str = "") -> str:
    body = render_table(table) if table.rows else f"<p><em>{html.escape(empty)}</em></p>"
    return f'<section id="{sid}">\n<h2>{html.escape(title)}</h2>\n{intro}{body}\n</section>'


def _figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    cap = html.escape(caption)
    return (
        f'<figure><img alt="{cap}" src="data:image/png;base64,{data}">'
        f"<figcaption>{cap}</figcaption></figure>"
    )


def _plots_section(report: dict) -> str:
    label = metric_label(metrics_of(report)[0])
    figures = []
    for bs in batch_sizes(report):
        png = plots.metric_vs_latency(report, bs)
        if png is not None:
            figures.append(_figure(png, f"{label} vs median latency, batch size {bs}"))
    png = plots.metric_vs_size(report)
    if png is not None:
        figures.append(_figure(png, f"{label} (artifact, mean over seeds) vs parameter count"))
    if not figures:
        return ""
    return '<section id="plots">\n<h2>Plots</h2>\n' + "\n".join(figures) + "\n</section>"


def _header(report: dict) -> str:
    title = html.escape(f"edge-compress report — {text(report.get('recipe'))}")
    parts = [f"<h1>{title}</h1>"]
    if report.get("smoke"):
        parts.append(
            f'<div class="banner">⚠ {html.escape(SMOKE_BANNER)} '
            "(made with --smoke on a sliver of the data)</div>"
        )
    items = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in header_lines(report)
    )
    parts.append(f'<dl class="meta">{items}</dl>')
    return "\n".join(parts)


def _target_sections(report: dict) -> list[str]:
    from .target_tables import (
        TARGETS_NOTE,
        operators_table,
        previous_note,
        previous_table,
        target_names,  # fmt: skip
        target_table,
    )

    note = f'<p class="note">{html.escape(TARGETS_NOTE)}</p>\n'
    out = []
    for i, target in enumerate(target_names(report)):
        out.append(_section(f"target-{i}", f"Target {target}", target_table(report, target),
                            "", note))  # fmt: skip
        ops = operators_table(report, target)
        if ops.rows:
            out.append(_section(f"ops-{i}", f"Top operators on {target}", ops, ""))
    moved = previous_table(report)
    if moved.rows:
        intro = f'<p class="note">{html.escape(previous_note(report))}</p>\n'
        out.append(_section("previous", "Since the previous report", moved, "", intro))
    return out


def _stage_sections(report: dict, figures: dict[str, bytes | None]) -> list[str]:
    """Each stage's own section, its figures embedded (``figures``: PNG bytes by path)."""
    out = []
    for i, section in enumerate(sections_of(report)):
        title = f"{text(section.get('title'))} (stage {text(section.get('stage'))})"
        parts = [f'<section id="stage-{i}">\n<h2>{html.escape(title)}</h2>']
        parts += [f"<p>{html.escape(str(p))}</p>" for p in section.get("text") or []]
        for table in section.get("tables") or []:
            parts += [f'<p class="note">{html.escape(text(table.get("caption")))}</p>',
                      render_table(stage_table(table))]  # fmt: skip
        for figure in section.get("figures") or []:
            png, caption = figures.get(str(figure.get("path"))), text(figure.get("caption"))
            parts.append(_figure(png, caption) if png else
                         f'<p class="note">Plot missing: {html.escape(caption)}</p>')  # fmt: skip
        out.append("\n".join(parts) + "\n</section>")
    return out


def _body_sections(report: dict, figures: dict[str, bytes | None]) -> list[str]:
    groups = groups_table(report)
    note = f'<p class="note">{html.escape(GROUPS_NOTE)}</p>\n' if groups.rows else ""
    sections = [
        _section("groups", "Model groups", groups, "No models.", note),
        _section("models", "Models", models_table(report), "No models."),
        _section("quantization", "Quantization", quantization_table(report), "",
                 f'<p class="note">{html.escape(QUANT_NOTE)}</p>\n'),
        _section(
            "latency",
            "Latency (measured)",
            latency_table(report, estimated=False),
            "No measured latency records.",
        ),
    ]
    estimated = latency_table(report, estimated=True)
    if estimated.rows:
        intro = (
            '<p class="estnote">Estimated, not measured: these numbers come from a model '
            "of the target, not from running on it.</p>\n"
        )
        sections.append(_section("estimated", "Estimated", estimated, "", intro))
    sections += _target_sections(report)
    sections += _stage_sections(report, figures)
    sections += [
        _section("comparisons", "Comparisons", comparisons_table(report), "No comparisons."),
        _section("goals", "Goals", goals_table(report), "No goals."),
    ]
    notes = [str(n) for n in report.get("notes") or []]
    if notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        sections.append(f'<section id="notes">\n<h2>Notes</h2>\n<ul>{items}</ul>\n</section>')
    return sections


def render_html(report: dict, figures: dict[str, bytes | None] | None = None) -> str:
    """The whole report as one self-contained HTML document; ``figures`` are the stage
    sections' PNGs by run-relative path (absent ones are named as missing)."""
    title = html.escape(f"edge-compress report — {text(report.get('recipe'))}")
    parts = [_header(report), *_body_sections(report, figures or {}), _plots_section(report)]
    body = "\n".join(p for p in parts if p)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{body}\n"
        "</body>\n</html>\n"
    )
