"""An optional dependency that is missing is a clear error naming the extra that installs it."""

from __future__ import annotations

import sys

import pytest

from compress.errors import CompressError, ModelError
from compress.extras import import_extra
from compress.prune.ray_executor import import_ray


def test_a_missing_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(CompressError, match=r"^n2n executor 'ray' needs ray, which is not "
                       r"installed: pip install 'edge-compress\[ray\]'$"):  # fmt: skip
        import_ray()


def test_an_installed_module_is_returned_and_the_error_type_is_the_callers():
    assert import_extra("json", "none", "reading").dumps([1]) == "[1]"
    with pytest.raises(ModelError, match=r"edge-compress\[x\]"):
        import_extra("no_such_module_here", "x", "a test", ModelError)
