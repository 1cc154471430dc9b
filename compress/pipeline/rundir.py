"""The run directory: opened under a lock, checked before reuse.

- ``open_run_dir`` refuses what is not a folder it can write, takes the lock (a second run into
  the same folder refuses at once), and only then clears it for ``--fresh``.
- A stage folder carries the key of the stage that wrote it (``.key``): a folder with another key,
  or none, is stale (an earlier recipe, a deleted manifest) and is emptied before the stage runs,
  so no resume state of another configuration can ever be picked up.
- Every file a stage wrote is hashed into the manifest; a stage is reused only while its files
  still hash the same.
- Under torchrun, ranks > 0 never take the lock nor write here: they run a training stage in a
  ``private_view`` of the folder, deleted afterwards.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from compress.atomic import sha256_file, write_text
from compress.errors import CompressError
from compress.log import Log
from compress.pipeline.lock import LOCK_FILE, RunLock
from compress.pipeline.manifest import MANIFEST

KEY_FILE = ".key"


def open_run_dir(run_dir: Path, fresh: bool, log: Log) -> RunLock:
    """Create (or reuse) ``run_dir`` and lock it; with ``fresh``, empty it under the lock."""
    if run_dir.exists() and not run_dir.is_dir():
        raise CompressError(f"--out {run_dir} is a file, not a folder")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock = RunLock(run_dir).acquire()
    except PermissionError as e:
        raise CompressError(f"cannot write in {run_dir}: {e.strerror}") from None
    except OSError as e:  # a name the file system refuses, a full disk, ...
        raise CompressError(f"cannot use {run_dir} as a run directory: {e.strerror}") from None
    if lock.took_over:
        log.info(f"{run_dir}: took over the lock of pid {lock.took_over}, which is gone")
    if fresh:
        _empty(run_dir, lock)
    return lock


def _empty(run_dir: Path, lock: RunLock) -> None:
    children = [p for p in run_dir.iterdir() if p.name != LOCK_FILE]
    if children and not (run_dir / MANIFEST).is_file():
        lock.release()
        raise CompressError(f"--fresh refuses to delete {run_dir}: it is not a run directory")
    for child in children:
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def enter_stage_dir(stage_dir: Path, key: str) -> bool:
    """Make ``stage_dir`` ready for the stage with ``key``; True when it holds that stage's own
    earlier work (a resume), False when it was empty or stale and has been emptied."""
    own = stage_dir.is_dir() and (stage_dir / KEY_FILE).is_file() and \
        (stage_dir / KEY_FILE).read_text().strip() == key  # fmt: skip
    if not own and stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    write_text(stage_dir / KEY_FILE, key + "\n")
    return own


def forget_stage_dir(stage_dir: Path) -> None:
    """Make the next ``enter_stage_dir`` empty the folder, whatever its key."""
    (stage_dir / KEY_FILE).unlink(missing_ok=True)


def file_hashes(run_dir: Path, paths: list[Path], memo: dict[Path, str]) -> dict[str, str]:
    """sha256 of each file, by its path relative to the run directory. ``memo`` holds the
    hashes taken in this invocation: the next stage's key hashes the same files again."""
    for p in paths:
        memo[p] = sha256_file(p)
    return {str(p.relative_to(run_dir)): memo[p] for p in sorted(set(paths))}


def stage_files(stage_dir: Path) -> list[Path]:
    """Every file a stage left in its folder, its key file included: a stage that writes
    nothing else (profile) still has a record to check, so an empty record can only be a
    manifest from before hashes were kept."""
    return [p for p in stage_dir.rglob("*") if p.is_file()]


def changed_files(run_dir: Path, hashes: dict[str, str], memo: dict[Path, str]) -> list[str]:
    """The recorded files that are gone or no longer hash the same (hashes kept in ``memo``)."""
    changed = []
    for rel, digest in hashes.items():
        path = run_dir / rel
        if not path.is_file():
            changed.append(rel)
            continue
        if path not in memo:
            memo[path] = sha256_file(path)
        if memo[path] != digest:
            changed.append(rel)
    return changed


def private_view(run_dir: Path, stage_name: str, rank: int) -> Path:
    """A rank > 0's own view of the run directory, in the temporary folder: every entry of
    ``run_dir`` linked (earlier stages' files, the data folder, read-only by use), and a copy of
    ``stage_name``'s folder as rank 0 found it (its resume state), where this rank's copy of
    the stage writes. Nothing it writes reaches the run directory. Its name is fixed by the run
    directory and the rank, so the view a killed run left behind is deleted by the next."""
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:12]
    view = Path(tempfile.gettempdir()) / f"compress-view-{digest}-rank{rank}"
    shutil.rmtree(view, ignore_errors=True)
    view.mkdir()
    for entry in run_dir.iterdir():
        if entry.name not in (stage_name, LOCK_FILE, MANIFEST):
            (view / entry.name).symlink_to(entry.resolve())
    shutil.copytree(run_dir / stage_name, view / stage_name, symlinks=True)
    return view
