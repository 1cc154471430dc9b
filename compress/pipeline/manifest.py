"""manifest.json: the recipe, the versions, and each stage's key, status, timings and outputs.

It is rewritten atomically after every change of state, so whatever kills a run, the manifest
on disk tells the truth about which stages are complete.
"""

from __future__ import annotations

import json
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from compress.atomic import write_text
from compress.errors import CompressError

MANIFEST = "manifest.json"
VERSIONED = ("edge-compress", "torch", "onnx", "onnxscript", "onnxruntime", "numpy")


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for dist in VERSIONED:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class StageEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Folder name, e.g. '02-distill'.")
    kind: str = Field(description="Stage kind.")
    key: str = Field(description="Cache key: hash of config, inputs and versions.")
    status: str = Field(description="'running', 'complete' or 'failed'.")
    started: float | None = None
    finished: float | None = None
    seconds: float | None = None
    outputs: dict[str, Any] = Field(default_factory=dict, description="Artifacts it added.")
    hashes: dict[str, str] = Field(
        default_factory=dict, description="sha256 of every file it wrote, checked before reuse."
    )
    error: str | None = None
    world_size: int = Field(1, description="Processes that ran it: more than one under torchrun "
                            "for a training stage (DistributedDataParallel), else 1.")  # fmt: skip
    backend: str | None = Field(None, description="Process group backend ('gloo', 'nccl') "
                                "when it ran on several processes.")  # fmt: skip
    nodes: int = Field(1, description="Machines its processes ran on.")


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipe_name: str
    recipe_file: str
    recipe: dict[str, Any]
    seed: int
    smoke: bool
    versions: dict[str, str | None]
    git_commit: str | None
    stages: list[StageEntry] = Field(default_factory=list)

    @classmethod
    def read(cls, run_dir: Path) -> Manifest | None:
        """The run directory's manifest; None when there is none. One that cannot be read is
        an error that says how to start over, never a traceback."""
        path = run_dir / MANIFEST
        if not path.is_file():
            return None
        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError) as e:  # ValidationError is a ValueError
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CompressError(f"{path} is not a manifest written by edge-compress ({first}); "
                                "--fresh starts this run directory over") from None  # fmt: skip

    def save(self, run_dir: Path) -> None:
        write_text(run_dir / MANIFEST, self.model_dump_json(indent=2) + "\n")

    def entry(self, name: str) -> StageEntry | None:
        return next((s for s in self.stages if s.name == name), None)

    def set_entry(self, entry: StageEntry) -> None:
        self.stages = [s for s in self.stages if s.name != entry.name] + [entry]
        self.stages.sort(key=lambda s: s.name)

    def start(self, name: str, kind: str, key: str, how: dict[str, Any] | None = None) -> None:
        """A stage begins; ``how`` says on how many processes (world_size, backend, nodes)."""
        self.set_entry(StageEntry(name=name, kind=kind, key=key, status="running",
                                  started=time.time(), **(how or {})))  # fmt: skip

    def finish(self, name: str, outputs: dict | None = None, error: str | None = None,
               hashes: dict[str, str] | None = None) -> None:  # fmt: skip
        entry = self.entry(name)
        now = time.time()
        self.set_entry(entry.model_copy(update={
            "status": "failed" if error else "complete", "finished": now,
            "seconds": round(now - entry.started, 3), "outputs": outputs or {}, "error": error,
            "hashes": hashes or {},
        }))  # fmt: skip
