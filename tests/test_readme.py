"""The README stays true: its commands, and a recipe reference generated from the schema."""

from __future__ import annotations

from compress.recipe_docs import BEGIN, END, recipe_reference
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_recipe_reference_matches_the_schema():
    start, end = README.index(BEGIN), README.index(END) + len(END)
    assert README[start:end] == recipe_reference(), "run `make readme` and commit README.md"


def test_ci_runs_the_readme_test_command():
    assert "make test" in README and "make demo" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
