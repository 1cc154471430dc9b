"""Write a run's reports from what its stages recorded; needs no torch and no retraining."""

from __future__ import annotations

from pathlib import Path

from compress.devices.report import write_reports
from compress.devices.report.build import build_report
from compress.errors import CompressError
from compress.pipeline.artifacts import Artifacts
from compress.pipeline.manifest import Manifest


def write_run_report(
    run_dir: Path, artifacts: Artifacts, goals: dict | None, smoke: bool
) -> list[Path]:
    manifest = Manifest.read(run_dir)
    report = build_report(
        artifacts.model_dump(mode="json"), recipe=manifest.recipe_name, smoke=smoke,
        versions=manifest.versions, wanted_goals=goals, previous=previous_report(run_dir),
    )  # fmt: skip
    return list(write_reports(report, run_dir).values())


def previous_report(run_dir: Path) -> dict | None:
    """The report this run directory had before (to show what got faster or slower); an
    unreadable one is no comparison, not an error."""
    import json

    try:
        old = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return old if isinstance(old, dict) else None


def rebuild_report(run_dir: Path) -> list[Path]:
    """``compress report RUN_DIR``: the artifacts of every complete stage, the recipe's goals."""
    manifest = Manifest.read(run_dir)
    if manifest is None:
        raise CompressError(f"{run_dir} is not a run directory (no manifest.json)")
    artifacts = Artifacts()
    for entry in manifest.stages:
        if entry.status == "complete":
            artifacts = artifacts.merge(Artifacts.model_validate(entry.outputs))
    report_stage = next((s for s in manifest.recipe["stages"] if s["kind"] == "report"), {})
    # The goals as the manifest recorded them: validated when the run started.
    return write_run_report(run_dir, artifacts, report_stage.get("goals"), manifest.smoke)
