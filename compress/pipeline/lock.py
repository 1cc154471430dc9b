"""One `compress run` per run directory at a time.

The lock is an advisory ``flock`` on ``<run dir>/.lock``: the kernel drops it when its process
dies, however it dies, so a lock can never outlive its holder. The file keeps the holder's pid:
a second run refuses at once naming it, and a run that finds the file of a holder that died
takes the directory over and says so.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from compress.errors import CompressError

LOCK_FILE = ".lock"


class RunDirBusy(CompressError):
    """Another process is running into the same run directory."""

    exit_code = 3  # not "your input is wrong" (2) nor "a check failed" (1): try again later


class RunLock:
    """Held from ``acquire`` until ``release`` (or the process's death)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self.fd: int | None = None
        self.took_over: str | None = None  # the previous holder's pid, when it had died

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirBusy(f"{self.path.parent} is in use by another `compress run` (pid "
                             f"{holder}); wait for it, or use another --out") from None  # fmt: skip
        previous = os.read(fd, 64).decode(errors="replace").strip()
        self.took_over = previous or None
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        """Remove the file, then let go: a finished run leaves no lock file behind."""
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None
