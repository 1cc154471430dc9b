"""Hostile or broken recipe files: one located line, exit code 2, no traceback, no hang.

Each case is a kind of file a user study broke the loader with (encodings, nesting, alias bombs,
size, misplaced error lines, YAML 1.1 booleans, non-finite floats), driven through the real CLI.
"""

from __future__ import annotations

import random
import time
from itertools import pairwise

import pytest
import yaml

from tests.conftest import cli, digits_recipe, write_recipe

BASE = yaml.safe_dump(digits_recipe(), sort_keys=False)
LINES = BASE.splitlines(keepends=True)


def _line(n: int, old: str, new: str) -> str:
    """BASE with ``old`` replaced by ``new`` on line ``n`` (1-based), which must hold it."""
    assert old in LINES[n - 1], (n, LINES[n - 1])
    return "".join(LINES[: n - 1] + [LINES[n - 1].replace(old, new)] + LINES[n:])


def _insert(n: int, text: str) -> str:
    """BASE with ``text`` inserted so that it starts on line ``n``."""
    return "".join(LINES[: n - 1]) + text + "".join(LINES[n - 1 :])


def _top_key(text: str) -> str:
    """BASE with a top-level ``text`` whose first line is line 7 (after a comment on line 6)."""
    return _insert(6, "# top level\n" + text)


def _alias_bomb() -> str:
    """Billion laughs in about 400 bytes: nine levels, each ten aliases of the one before."""
    names = "abcdefghi"
    lines = [f"{names[0]}: &{names[0]} [{', '.join('x' * 10)}]\n"]
    lines += [f"{n}: &{n} [{', '.join(['*' + p] * 10)}]\n" for p, n in pairwise(names)]
    return "".join(lines)


def _deep_alias() -> str:
    """Each alias nests one anchor 90 levels deep in another: shallow text, deep data."""
    deep = "[" * 90 + "1" + "]" * 90
    return f"a: &a {deep}\nb: &b {'[' * 60}*a{']' * 60}\n"


BOMB_START = len(LINES) + 1  # the bomb is appended to BASE
# (id, file bytes, line of the error or None, fragments of the message)
CASES = [
    ("latin-1", _line(5, "64", "64  # réduit").encode("latin-1"), 5, ["not UTF-8"]),
    ("utf-16-bom", BASE.encode("utf-16"), 1, ["not UTF-8", "UTF-16"]),
    ("utf-16-no-bom", BASE.encode("utf-16-le"), 1, ["U+0000", "binary"]),
    ("binary", random.Random(0).randbytes(4096), None, ["not UTF-8"]),
    ("nesting", _line(2, "0", "[" * 5000 + "]" * 5000).encode(), 2, ["more than 100 levels"]),
    ("alias-nesting", (BASE + _deep_alias()).encode(), BOMB_START + 1, ["*a", "100 levels"]),
    ("alias-bomb", (BASE + _alias_bomb()).encode(), BOMB_START + 4, ["alias *d", "100,000"]),
    ("alias-cycle", (BASE + "a: &a [1, *a]\n").encode(), BOMB_START, ["*a", "its own anchor"]),
    ("2-mb", (BASE + "# padding\n" * 200_000).encode(), None, ["larger than 1 MB"]),
    ("unclosed-double-quote", _line(4, "digits", '"digits').encode(), 4,
     ["malformed YAML", "quoted scalar", "starts on this line"]),
    ("unclosed-single-quote", _line(4, "digits", "'digits").encode(), 4, ["quoted scalar"]),
    ("unclosed-bracket", _line(4, "digits", "[digits").encode(), 5, ["flow sequence on line 4"]),
    ("int-key", _top_key("1: x\n").encode(), 7, [" 1: keys must be strings", "int"]),
    ("list-key", _top_key("[a]: b\n").encode(), 7, ["keys must be strings, not a list"]),
    ("complex-key", _top_key("? [x]\n: y\n").encode(), 7, ["keys must be strings"]),
    ("bool-key", _top_key("yes: 1\n").encode(), 7, ["yes: keys must be strings", "bool"]),
    ("bad-date", _line(1, "digits-test", "2024-13-01").encode(), 1, ["cannot read this value"]),
    ("epochs-yes", _line(12, "3", "yes").encode(), 12, ["teacher.train.epochs:", "boolean"]),
    ("seeds-no", _insert(3, "seeds: [1, no]\n").encode(), 3, ["seeds[1]:", "boolean"]),
    ("lr-inf", _line(13, "0.003", ".inf").encode(), 13, ["teacher.train.lr:", "finite"]),
    ("temperature-nan", _line(22, "4", ".nan").encode(), 22,
     ["stages[0].losses.kd.temperature:", "finite"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "content", "line", "fragments"), CASES, ids=[c[0] for c in CASES])
def test_bad_file_is_one_located_line(tmp_path, case, content, line, fragments):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(content)
    start = time.monotonic()
    result = cli("validate", path, env={"OMP_NUM_THREADS": "1"}, timeout=60)
    assert time.monotonic() - start < 10, "a bad file must be refused at once"
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    prefix = f"error: {path}:" + (f"{line}: " if line is not None else "")
    assert lines[0].startswith(prefix), lines[0]
    for fragment in fragments:
        assert fragment in lines[0]


def test_alias_bomb_is_refused_fast(tmp_path):
    """The bomb above expands to 10**9 values; only compose-time counting keeps it quick."""
    path = write_recipe(tmp_path / "recipe.yaml", BASE + _alias_bomb())
    assert len(path.read_bytes()) - len(BASE) < 1024
    start = time.monotonic()
    result = cli("validate", path, env={"OMP_NUM_THREADS": "1"}, timeout=30)
    assert result.returncode == 2 and "100,000 values" in result.stderr
    assert time.monotonic() - start < 5


SHARED_TRAIN = """\
name: shared-train
data: {source: digits, batch_size: 64}
teacher:
  model: {arch: cnn-large, width: 16, hidden: 64}
  train: &train {epochs: 3, lr: 3.0e-3}
stages:
  - kind: distill
    name: student-4
    student: {arch: cnn-small, width: 4}
    losses: {kd: {weight: 0.9, temperature: 4}, ce: {weight: 0.1}}
    train: *train
  - kind: distill
    name: student-8
    student: {arch: cnn-small, width: 8}
    losses: {kd: {weight: 0.9, temperature: 4}, ce: {weight: 0.1}}
    train: *train
  - kind: export
  - kind: report
"""


@pytest.mark.parametrize(
    "text",
    [
        SHARED_TRAIN,
        SHARED_TRAIN.replace(
            "train: *train\n  - kind: export", "train: {<<: *train, lr: 1}\n  - kind: export"
        ),  # a merge with an override, int for a float
        SHARED_TRAIN.replace("3.0e-3", "3e-3"),  # YAML 1.1 reads this as a string; still a float
        SHARED_TRAIN.replace(
            "  - kind: report", "  - kind: profile\n    teacher_eager: false\n  - kind: report"
        ),  # booleans stay booleans
    ],
    ids=["anchor-two-aliases", "merge-key", "exponent-without-dot", "bool-field"],
)
def test_legitimate_yaml_still_validates(tmp_path, text):
    path = write_recipe(tmp_path / "recipe.yaml", text)
    result = cli("validate", path, env={"OMP_NUM_THREADS": "1"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_error_inside_a_merge_points_at_the_override(tmp_path):
    """``<<`` puts the anchor's keys first; the mapping's own key is the one that counts."""
    text = SHARED_TRAIN.replace("train: *train\n  - kind: export",
                                "train: {<<: *train, epochs: yes}\n  - kind: export")  # fmt: skip
    path = write_recipe(tmp_path / "recipe.yaml", text)
    result = cli("validate", path, env={"OMP_NUM_THREADS": "1"})
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {path}:16: stages[1].train.epochs:"), result.stderr
