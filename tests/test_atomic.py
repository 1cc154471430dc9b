"""Atomic writes: all or nothing under the final name, with the usual file mode."""

from __future__ import annotations

import os

import pytest

from compress.atomic import atomic_path, write_json


def test_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("killed mid-write")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_replaces_whole_file_with_umask_mode(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    write_json(target, {"x": 1})
    assert target.read_text() == '{\n  "x": 1\n}\n'
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
