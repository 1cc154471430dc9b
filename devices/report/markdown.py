"""report.md: the same tables as report.html, as GitHub-flavoured Markdown (no plots)."""

from __future__ import annotations

from .fmt import (
    GROUPS_NOTE,
    SMOKE_BANNER,
    Table,
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
from .target_tables import (
    TARGETS_NOTE,
    operators_table,
    previous_note,
    previous_table,
    target_names,
    target_table,
)


def _cell(value: str) -> str:
    # A '|' would split the cell and a newline would end the row.
    value = value.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    # Flags must stand out in a plain-text diff as much as in the rendered page.
    if value.startswith(("UNSTABLE", "FAIL")) or ", UNSTABLE" in value:
        return f"**{value}**"
    return value


def render_table(table: Table) -> list[str]:
    """A Markdown table; numeric columns are right-aligned."""
    align = ["---:" if i in table.numeric else "---" for i in range(len(table.headers))]
    lines = [
        "| " + " | ".join(_cell(h) for h in table.headers) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return lines


def _section(title: str, table: Table, empty: str, note: str = "") -> list[str]:
    body = render_table(table) if table.rows else [f"_{empty}_"]
    note_lines = [f"_{note}_", ""] if note and table.rows else []
    return [f"## {title}", "", *note_lines, *body, ""]


def target_sections(report: dict) -> list[str]:
    lines = []
    for target in target_names(report):
        lines += _section(f"Target {target}", target_table(report, target), "", TARGETS_NOTE)
        ops = operators_table(report, target)
        if ops.rows:
            lines += _section(f"Top operators on {target}", ops, "")
    moved = previous_table(report)
    if moved.rows:
        lines += _section("Since the previous report", moved, "", previous_note(report))
    return lines


def stage_sections(report: dict) -> list[str]:
    """Each stage's own section: its paragraphs, tables and links to its PNG figures (the
    figures are files of the run directory, where report.md lies)."""
    lines = []
    for section in sections_of(report):
        lines += [f"## {text(section.get('title'))} (stage {text(section.get('stage'))})", ""]
        for paragraph in section.get("text") or []:
            lines += [str(paragraph), ""]
        for table in section.get("tables") or []:
            lines += [f"_{text(table.get('caption'))}_", "", *render_table(stage_table(table)), ""]
        for figure in section.get("figures") or []:
            lines += [f"![{text(figure.get('caption'))}]({text(figure.get('path'))})", ""]
    return lines


def render_markdown(report: dict) -> str:
    """The whole report as Markdown text."""
    lines = [f"# edge-compress report — {text(report.get('recipe'))}", ""]
    if report.get("smoke"):
        lines += [f"> **⚠ {SMOKE_BANNER}** (made with `--smoke` on a sliver of the data)", ""]
    lines += [f"- **{label}:** {value}" for label, value in header_lines(report)]
    primary = metric_label(metrics_of(report)[0])
    lines += ["", f"Plots ({primary} vs latency, {primary} vs size) are in report.html.", ""]
    lines += _section("Model groups", groups_table(report), "No models.", GROUPS_NOTE)
    lines += _section("Models", models_table(report), "No models.")
    quantized = quantization_table(report)
    if quantized.rows:
        lines += _section("Quantization", quantized, "", QUANT_NOTE)
    lines += _section(
        "Latency (measured)", latency_table(report, estimated=False), "No measured latency records."
    )
    estimated = latency_table(report, estimated=True)
    if estimated.rows:
        lines += [
            "## Estimated",
            "",
            "_Estimated, not measured: these numbers come from a model of the target, "
            "not from running on it._",
            "",
            *render_table(estimated),
            "",
        ]
    lines += target_sections(report)
    lines += stage_sections(report)
    lines += _section("Comparisons", comparisons_table(report), "No comparisons.")
    lines += _section("Goals", goals_table(report), "No goals.")
    notes = [str(n) for n in report.get("notes") or []]
    if notes:
        lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines).rstrip("\n") + "\n"
