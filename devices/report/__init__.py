"""Report writers: report.json (the data), report.md and report.html (for people).

This package must never import torch: it runs on the device side.
"""

from __future__ import annotations

from pathlib import Path

from compress.atomic import write_json, write_text

from .html import render_html
from .markdown import render_markdown
from .sections import read_figures

__all__ = ["render_html", "render_markdown", "write_reports"]


def write_reports(report: dict, out_dir: Path) -> dict[str, Path]:
    """Write report.json, report.md and report.html into ``out_dir``, each atomically.

    Returns {"json": ..., "md": ..., "html": ...}.
    """
    out_dir = Path(out_dir)
    # Render everything before writing anything: a renderer that raises must not leave a fresh
    # report.json next to a stale report.md/html from an earlier run.
    markdown = render_markdown(report)
    page = render_html(report, read_figures(report, out_dir))
    paths = {
        "json": out_dir / "report.json",
        "md": out_dir / "report.md",
        "html": out_dir / "report.html",
    }
    write_json(paths["json"], report)
    write_text(paths["md"], markdown)
    write_text(paths["html"], page)
    return paths
