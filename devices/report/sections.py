"""Stages' own report sections (``Artifacts.sections``): an N2N search log, an anytime
ensemble's curve, how a distributed stage ran. The report knows no stage in particular: a
section is text, tables and PNG figures, rendered the same way for every stage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .fmt import DASH, Table, fmt_sig


def cell(value: Any) -> str:
    """Counts with thousands separators, other numbers to 4 significant figures; stages pass
    text where they want another form (a percentage, a ratio with its unit)."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return fmt_sig(value, 4)
    return str(value)


def stage_table(table: dict) -> Table:
    """A stage's table as the renderers' Table; a column whose cells are all numbers (or
    empty) is right-aligned."""
    rows = table.get("rows") or []
    numeric = {
        i for i in range(len(table.get("columns") or []))
        if all(r[i] is None or isinstance(r[i], int | float) for r in rows if i < len(r))
    }  # fmt: skip
    return Table(list(table.get("columns") or []), [[cell(v) for v in r] for r in rows], numeric)


def sections_of(report: dict) -> list[dict]:
    return [s for s in report.get("sections") or [] if isinstance(s, dict)]


def read_figures(report: dict, run_dir: Path) -> dict[str, bytes | None]:
    """The PNG bytes of every section's figure, by its run-relative path; None where the file
    is gone (the report says so instead of failing)."""
    figures: dict[str, bytes | None] = {}
    for section in sections_of(report):
        for figure in section.get("figures") or []:
            path = Path(run_dir) / str(figure.get("path"))
            try:
                figures[str(figure.get("path"))] = path.read_bytes()
            except OSError:
                figures[str(figure.get("path"))] = None
    return figures
