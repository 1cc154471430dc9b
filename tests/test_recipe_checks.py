"""Bad input that used to be accepted or to crash: each is refused when the recipe is validated,
as one line ``error: FILE:LINE: KEY: message`` with exit code 2 and nothing started. Also the
one-step commands (``compress profile``, ``compress export``) on files that are not what they
claim to be."""

from __future__ import annotations

import copy
import gzip
import json
import os
import resource
import struct
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import ROOT, cli, digits_recipe, write_recipe

UINT32_MAX = 2**32 - 1


def one_line_error(result: subprocess.CompletedProcess, path: Path, *fragments: str) -> str:
    """The promise: exit 2, no traceback, exactly one line starting ``error: PATH:``."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}:"), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    assert result.stdout == ""
    return lines[0]


def line_of(text: str, *needles: str) -> int:
    """The 1-based line of the last needle, each searched for after the line of the one before
    (so ``line_of(text, "stages:", "- kind: profile", "- 8")`` finds one list item)."""
    lines, at = text.splitlines(), -1
    for needle in needles:
        at = next(i for i in range(at + 1, len(lines)) if needle in lines[i])
    return at + 1


# ---------------------------------------------------------------------------------------------
# A table of bad recipes: digits_recipe() with one change. Stages of digits_recipe():
# [0] distill (student cnn-small), [1] export, [2] profile (batch_sizes [1, 8]), [3] report.


def top(**fields: object) -> Callable[[dict], None]:
    return lambda r: r.update(fields)


def at(*path: str | int, value: object) -> Callable[[dict], None]:
    """Set one nested value: ``at("stages", 2, "warmup", value=10**9)``."""

    def change(r: dict) -> None:
        node = r
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value

    return change


def order(*kinds_at: int) -> Callable[[dict], None]:
    """Reorder digits_recipe()'s stages by their index."""

    def change(r: dict) -> None:
        r["stages"] = [r["stages"][i] for i in kinds_at]

    return change


def insert(i: int, stage: dict) -> Callable[[dict], None]:
    return lambda r: r["stages"].insert(i, stage)


def second_distill(name: str) -> Callable[[dict], None]:
    def change(r: dict) -> None:
        r["stages"].insert(1, {**copy.deepcopy(r["stages"][0]), "name": name})

    return change


# (case, change, key path in the message, fragments of the message, needles locating the line)
CASES = [
    ("name-too-long", top(name="n" * 101), "name:", ["at most 100 characters"], ["name:"]),
    ("student-name-too-long", at("stages", 0, "name", value="s" * 101), "stages[0].name:",
     ["at most 100 characters"], ["stages:", "name: sss"]),
    ("seed-too-big", top(seed=2**32), "seed:", [f"less than or equal to {UINT32_MAX}"],
     ["seed:"]),
    ("seed-negative", top(seed=-1), "seed:", ["greater than or equal to 0"], ["seed:"]),
    ("seeds-item-too-big", top(seeds=[0, 2**40]), "seeds[1]:",
     [f"less than or equal to {UINT32_MAX}"], ["seeds:", "- 0", f"- {2**40}"]),
    ("seeds-item-negative", top(seeds=[0, -3]), "seeds[1]:", ["greater than or equal to 0"],
     ["seeds:", "- 0", "- -3"]),
    ("seeds-duplicate", top(seeds=[0, 1, 0]), "seeds[2]:", ["seed 0 is listed twice"],
     ["seeds:", "- 0", "- 1", "- 0"]),
    ("data-batch-size", at("data", "batch_size", value=10**9), "data.batch_size:",
     ["at most 65536"], ["data:", "batch_size:"]),
    ("data-eval-batch-size", at("data", "eval_batch_size", value=10**9),
     "data.eval_batch_size:", ["at most 65536"], ["data:", "eval_batch_size:"]),
    ("profile-batch-size", at("stages", 2, "batch_sizes", value=[1, 10**9]),
     "stages[2].batch_sizes[1]:", ["less than or equal to 65536"],
     ["- kind: profile", "batch_sizes:", "- 1000000000"]),
    ("profile-batch-size-zero", at("stages", 2, "batch_sizes", value=[0]),
     "stages[2].batch_sizes[0]:", ["greater than or equal to 1"],
     ["- kind: profile", "batch_sizes:", "- 0"]),
    ("profile-batch-size-twice", at("stages", 2, "batch_sizes", value=[1, 8, 1]),
     "stages[2].batch_sizes[2]:", ["batch size 1 is listed twice"],
     ["- kind: profile", "batch_sizes:", "- 1", "- 8", "- 1"]),
    ("profile-target-twice", at("stages", 2, "targets", value=["cpu-ort", "cpu-ort"]),
     "stages[2].targets[1]:", ["target 'cpu-ort' is listed twice"],
     ["- kind: profile", "targets:", "- cpu-ort", "- cpu-ort"]),
    ("profile-iterations", at("stages", 2, "iterations", value=10**12),
     "stages[2].iterations:", ["less than or equal to 100000"], ["- kind: profile", "iterations:"]),
    ("profile-warmup", at("stages", 2, "warmup", value=10**9), "stages[2].warmup:",
     ["less than or equal to 10000"], ["- kind: profile", "warmup:"]),
    ("profile-max-seconds", at("stages", 2, "max_seconds", value=1e9), "stages[2].max_seconds:",
     ["less than or equal to 3600"], ["- kind: profile", "max_seconds:"]),
    ("parity-samples", at("stages", 1, "parity", value={"samples": 10**9}),
     "stages[1].parity.samples:", ["less than or equal to 65536"],
     ["- kind: export", "samples:"]),
    ("teacher-hidden-huge", at("teacher", "model", "hidden", value=10**12),
     "teacher.model.hidden:", ["less than or equal to 65536"], ["teacher:", "hidden:"]),
    ("student-hidden-huge", at("stages", 0, "student", "hidden", value=10**12),
     "stages[0].student.hidden:", ["less than or equal to 65536"], ["student:", "hidden:"]),
    ("student-width-huge", at("stages", 0, "student", "width", value=10**6),
     "stages[0].student.width:", ["less than or equal to 1024"], ["student:", "width:"]),
    ("student-width-zero", at("stages", 0, "student", "width", value=0),
     "stages[0].student.width:", ["greater than or equal to 1"], ["student:", "width:"]),
    ("mlp-hidden-zero", at("stages", 0, "student", value={"arch": "mlp", "hidden": [32, 0]}),
     "stages[0].student.hidden[1]:", ["greater than or equal to 1"],
     ["student:", "hidden:", "- 32", "- 0"]),
    ("mlp-hidden-huge", at("stages", 0, "student", value={"arch": "mlp", "hidden": [10**12]}),
     "stages[0].student.hidden[0]:", ["less than or equal to 65536"],
     ["student:", "hidden:", "- 1000000000000"]),
    ("mlp-too-many-layers", at("stages", 0, "student", value={"arch": "mlp", "hidden": [4] * 65}),
     "stages[0].student.hidden:", ["at most 64 items"], ["student:", "hidden:"]),
    ("resnet-width-huge", at("stages", 0, "student", value={"arch": "resnet-small",
                                                            "width": 4096}),
     "stages[0].student.width:", ["less than or equal to 1024"], ["student:", "width:"]),
    ("export-unknown-model", at("stages", 1, "models", value=["student", "nobody"]),
     "stages[1].models:", ["no model named 'nobody'"], ["- kind: export", "models:"]),
    ("student-named-teacher", at("stages", 0, "name", value="teacher"), "stages[0].name:",
     ["'teacher' is already made at teacher.model"], ["stages:", "name: teacher"]),
    ("two-students-one-name", second_distill("student"), "stages[1].name:",
     ["a model named 'student' is already made at stages"],
     ["stages:", "- kind: distill", "- kind: distill", "name: student"]),
    ("student-named-like-a-baseline", second_distill("student-scratch"), "stages[1].name:",
     ["a model named 'student-scratch' is already made at stages"],
     ["stages:", "- kind: distill", "- kind: distill", "name: student-scratch"]),
    ("report-before-export", order(0, 3, 1, 2), "stages[1].kind:",
     ["stages[2] (export) comes after this report stage"], ["stages:", "- kind: report"]),
    ("report-before-distill", order(3, 0, 1, 2), "stages[0].kind:",
     ["stages[1] (distill) comes after this report stage"], ["stages:", "- kind: report"]),
    ("report-before-profile", order(0, 1, 3, 2), "stages[2].kind:",
     ["stages[3] (profile) comes after this report stage"], ["stages:", "- kind: report"]),
    ("export-before-distill", order(1, 0, 2, 3), "stages[0].kind:",
     ["stages[1] (distill) makes models after this export stage"],
     ["stages:", "- kind: export"]),
    ("profile-before-an-export", insert(3, {"kind": "export", "opset": 18}), "stages[2].kind:",
     ["stages[3] (export) makes exports after this profile stage"],
     ["stages:", "- kind: profile"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "key", "fragments", "needles"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_bad_recipe_is_one_located_line(tmp_path, case, change, key, fragments, needles):
    recipe = digits_recipe()
    change(recipe)
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    line = line_of(path.read_text(), *needles)
    one_line_error(cli("validate", path), path, f"{path}:{line}: {key} ", *fragments)


def test_the_limits_themselves_are_valid(tmp_path):
    """Each bound is inclusive, the valid orders stay valid, and cnn-small's ``hidden: 0`` means
    "no hidden layer" (not a layer of width 0)."""
    recipe = digits_recipe(name="n" * 100, seed=UINT32_MAX, seeds=[0, UINT32_MAX])
    recipe["data"].update(batch_size=65536, eval_batch_size=65536)
    recipe["teacher"]["model"]["hidden"] = 0
    recipe["stages"][0]["student"]["hidden"] = 0
    recipe["stages"][2].update(batch_sizes=[1, 65536], warmup=10_000, iterations=100_000)
    second = {**copy.deepcopy(recipe["stages"][0]), "name": "student2"}
    # distill, export, profile, distill, export, profile, report, report
    recipe["stages"][3:3] = [second, {"kind": "export", "models": ["student2"]},
                             {"kind": "profile"}]  # fmt: skip
    recipe["stages"].append({"kind": "report"})
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    result = cli("validate", path)
    assert (result.returncode, result.stderr) == (0, "")


# ---------------------------------------------------------------------------------------------
# Models too big to build: each field within its bounds, the product beyond 2e9 parameters.
# The check must refuse them before they are built, so the CLI runs under a 4 GiB address-space
# limit: were they built (8+ GB of weights), the run would fail with an allocation error instead.

MEMORY_CAP = 4 * 2**30


def capped_cli(*args: str) -> subprocess.CompletedProcess:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))

    return subprocess.run([sys.executable, "-m", "compress", *map(str, args)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=os.environ.copy(), preexec_fn=cap)  # fmt: skip


@pytest.mark.parametrize(("where", "model", "key", "needles"), [
    ("teacher", {"arch": "mlp", "hidden": [65536, 65536]}, "teacher.model:",
     ["teacher:", "model:"]),
    ("student", {"arch": "resnet-small", "width": 1024, "stages": 5, "blocks": 8},
     "stages[0].student:", ["stages:", "student:"]),
    ("student", {"arch": "cnn-large", "width": 1024, "hidden": 65536}, "stages[0].student:",
     ["stages:", "student:"]),
], ids=["mlp-teacher", "resnet-student", "cnn-large-student-on-64x64-arrays"])  # fmt: skip
def test_a_model_too_big_to_build_is_refused_before_it_is_built(tmp_path, where, model, key,
                                                                 needles):  # fmt: skip
    recipe = digits_recipe()
    if model["arch"] == "cnn-large":  # its pooled features grow with the input: 3×64×64 images
        rng = np.random.default_rng(0)
        np.save(tmp_path / "x.npy", rng.random((20, 3, 64, 64), dtype=np.float32))
        np.save(tmp_path / "y.npy", np.arange(20) % 2)
        recipe["data"] = {"source": "arrays", "inputs": "x.npy", "labels": "y.npy"}
    if where == "teacher":
        recipe["teacher"]["model"] = model
    else:
        recipe["stages"][0]["student"] = model
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    line = line_of(path.read_text(), *needles)
    one_line_error(capped_cli("validate", path), path, f"{path}:{line}: {key} ",
                   "parameters; the limit is 2,000,000,000")  # fmt: skip


# ---------------------------------------------------------------------------------------------
# A user's builder module that fails in any way: one line naming the file, the exception type
# and its message, at the teacher's model.

NET = ("import torch\nfrom torch import nn\n"
       "class Net(nn.Module):\n"
       "    def __init__(self, info):\n"
       "        super().__init__()\n"
       "        self.fc = nn.Linear(64, info.num_classes)\n"
       "    def forward(self, x):\n"
       "        {forward}\n"
       "        return self.fc(x.flatten(1))\n"
       "def build(info):\n"
       "    return Net(info)\n")  # fmt: skip

BAD_BUILDERS = {
    "key-error-in-build": ("def build(info):\n    return {}['width']\n",
                           ["bad_models.py:2", "KeyError: 'width'"]),
    "zero-division-in-build": ("def build(info):\n    return 1 / 0\n",
                               ["bad_models.py:2", "ZeroDivisionError: division by zero"]),
    "multi-line-message": ("def build(info):\n    raise ValueError('first\\nsecond\\nthird')\n",
                           ["bad_models.py:2", "ValueError: first"]),
    "syntax-error": ("def build(info)\n    return None\n",
                     ["bad_models.py:1", "SyntaxError"]),
    "raises-on-import": ("import os\nraise KeyError('BAD_SETTING')\ndef build(info):\n    pass\n",
                         ["bad_models.py:2", "KeyError: 'BAD_SETTING'"]),
    "missing-dependency": ("import no_such_dependency_xyz\ndef build(info):\n    pass\n",
                           ["bad_models.py:1", "No module named 'no_such_dependency_xyz'"]),
    "no-such-function": ("def make(info):\n    pass\n",
                         ["bad_models.py", "has no attribute 'build'"]),
    "forward-zero-division": (NET.replace("{forward}", "1 / 0"),
                              ["bad_models.py:8", "ZeroDivisionError: division by zero"]),
    "forward-key-error": (NET.replace("{forward}", "{}['x']"),
                          ["bad_models.py:8", "KeyError: 'x'"]),
    "forward-assertion": (NET.replace("{forward}", "assert x.shape[1] == 3, 'want RGB'"),
                          ["bad_models.py:8", "AssertionError: want RGB"]),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_BUILDERS))
def test_a_failing_builder_module_is_one_located_line(tmp_path, case):
    source, fragments = BAD_BUILDERS[case]
    (tmp_path / "bad_models.py").write_text(source)
    recipe = digits_recipe()
    recipe["teacher"]["model"] = {"python": "bad_models:build"}
    path = write_recipe(tmp_path / "recipe.yaml", recipe)
    line = line_of(path.read_text(), "teacher:", "model:")
    one_line_error(cli("validate", path), path, f"{path}:{line}: teacher.model: ",
                   "bad_models:build", *fragments)  # fmt: skip


def test_a_working_builder_module_still_validates(tmp_path):
    (tmp_path / "good_models.py").write_text(NET.replace("{forward}", "pass"))
    recipe = digits_recipe()
    recipe["teacher"]["model"] = {"python": "good_models:build"}
    result = cli("validate", write_recipe(tmp_path / "recipe.yaml", recipe))
    assert (result.returncode, result.stderr) == (0, "")


# ---------------------------------------------------------------------------------------------
# Broken Fashion-MNIST files, found from their headers when the recipe is validated.

IMAGES, LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


def idx(magic: bytes, shape: tuple[int, ...], data: bytes) -> bytes:
    return magic + struct.pack(f">{len(shape)}I", *shape) + data


def images(n: int, size: int = 28, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)
    return idx(b"\x00\x00\x08\x03", (n, size, size), pixels.tobytes())


def labels(n: int) -> bytes:
    return idx(b"\x00\x00\x08\x01", (n,), (np.arange(n) % 10).astype(np.uint8).tobytes())


def fake_fashion(folder: Path, **raw: bytes) -> Path:
    """A tiny, well-formed Fashion-MNIST (40 + 20 images) with some files replaced by ``raw``
    bytes, written as they are (not gzipped)."""
    folder.mkdir()
    files = {IMAGES: images(40), LABELS: labels(40), TEST_IMAGES: images(20, seed=1),
             TEST_LABELS: labels(20)}  # fmt: skip
    for name, content in files.items():
        (folder / name).write_bytes(raw.get(name) or gzip.compress(content, mtime=0))
    return folder


def truncated(content: bytes) -> bytes:
    packed = gzip.compress(content, mtime=0)
    return packed[: len(packed) * 2 // 3]


def corrupt_middle(content: bytes) -> bytes:
    """A byte of the compressed stream flipped: the headers and the trailer still read."""
    packed = bytearray(gzip.compress(content, mtime=0))
    packed[len(packed) // 2] ^= 0xFF
    return bytes(packed)


BROKEN_FASHION = {
    "not-gzip": ({IMAGES: b"P5 28 28 255 not a gzip file"}, IMAGES, "not a gzip file"),
    "empty-file": ({LABELS: b"\x1f"}, LABELS, "not a gzip file"),
    "bad-magic": ({IMAGES: gzip.compress(labels(40))}, IMAGES, "magic number 0x00000801"),
    "wrong-image-size": ({TEST_IMAGES: gzip.compress(images(20, size=32))}, TEST_IMAGES,
                         "20×32×32 images; Fashion-MNIST's are 28×28"),
    "label-count": ({LABELS: gzip.compress(labels(39))}, LABELS,
                    "39 labels for the 40 images of train-images-idx3-ubyte.gz"),
    "truncated-gzip": ({IMAGES: truncated(images(40))}, IMAGES, "truncated"),
    "short-data": ({TEST_LABELS: gzip.compress(labels(20)[:-5])}, TEST_LABELS, "truncated"),
    "label-out-of-range": ({TEST_LABELS: gzip.compress(labels(20)[:-1] + b"\x0c")}, TEST_LABELS,
                           "label 12"),
}  # fmt: skip


def fashion_recipe(tmp_path: Path) -> Path:
    return write_recipe(tmp_path / "recipe.yaml",
                        digits_recipe(data={"source": "fashion-mnist", "batch_size": 64}))


@pytest.mark.parametrize("case", sorted(BROKEN_FASHION))
def test_broken_fashion_mnist_is_refused_at_validate(tmp_path, case):
    raw, bad, fragment = BROKEN_FASHION[case]
    folder = fake_fashion(tmp_path / "fashion", **raw)
    path = fashion_recipe(tmp_path)
    line = line_of(path.read_text(), "data:", "source: fashion-mnist")
    result = cli("validate", path, env={"COMPRESS_FASHION_MNIST_DIR": str(folder)})
    one_line_error(result, path, f"{path}:{line}: data.source: ", str(folder / bad), fragment)


def test_well_formed_fashion_mnist_files_validate(tmp_path):
    """Including a file of two gzip members (its trailer holds only the last one's length)."""
    two_members = gzip.compress(images(40)[:1000]) + gzip.compress(images(40)[1000:])
    folder = fake_fashion(tmp_path / "fashion", **{IMAGES: two_members})
    result = cli("validate", fashion_recipe(tmp_path),
                 env={"COMPRESS_FASHION_MNIST_DIR": str(folder)})  # fmt: skip
    assert (result.returncode, result.stderr) == (0, "")


def test_a_corrupt_stream_found_only_when_loaded_is_one_line_naming_the_file(tmp_path):
    """Headers and trailer intact, a byte of the deflate stream flipped: validate cannot see it
    without reading everything; loading it is a DataError naming the file, not a traceback."""
    folder = fake_fashion(tmp_path / "fashion", **{IMAGES: corrupt_middle(images(40))})
    path = fashion_recipe(tmp_path)
    env = {"COMPRESS_FASHION_MNIST_DIR": str(folder)}
    assert cli("validate", path, env=env).returncode == 0
    result = cli("run", path, "--smoke", "--quiet", "--out", tmp_path / "run", env=env)
    one_line_error(result, path, "data: ", str(folder / IMAGES))


# ---------------------------------------------------------------------------------------------
# The one-step commands on files that are missing or not what they claim to be.


def test_profile_a_missing_or_garbage_onnx_file(tmp_path):
    missing = tmp_path / "absent.onnx"
    one_line_error(cli("profile", missing), missing, "not found")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07 this is not a protobuf model" * 10)
    one_line_error(cli("profile", garbage), garbage, "not an ONNX model onnxruntime can load")
    folder = tmp_path / "folder.onnx"
    folder.mkdir()
    one_line_error(cli("profile", folder), folder, "not a file")


def tiny_onnx(path: Path, dtype: str = "float") -> Path:
    """A one-input ONNX model: input (batch, 4) → logits (batch, 4)."""
    import onnx
    from onnx import TensorProto, helper

    kind = {"float": TensorProto.FLOAT, "int64": TensorProto.INT64}[dtype]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["input"], ["logits"])], "tiny",
        [helper.make_tensor_value_info("input", kind, ["batch", 4])],
        [helper.make_tensor_value_info("logits", kind, ["batch", 4])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_profile_with_garbage_inputs_or_inputs_it_cannot_take(tmp_path):
    model = tiny_onnx(tmp_path / "tiny.onnx")
    ok = cli("profile", model, "--batch-sizes", "2", "--warmup", "1", "--iterations", "5")
    assert ok.returncode == 0, ok.stderr
    bad = tmp_path / "inputs.npy"
    bad.write_bytes(b"not an npy file")
    one_line_error(cli("profile", model, "--inputs", bad), bad, "not a .npy or .npz file")
    words = tmp_path / "words.npy"
    np.save(words, np.array(["a", "b"]))
    one_line_error(cli("profile", model, "--inputs", words), words, "expected numbers")
    ints = tiny_onnx(tmp_path / "ints.onnx", "int64")
    one_line_error(cli("profile", ints, "--warmup", "1", "--iterations", "5"), ints,
                   "takes int64")  # fmt: skip


def safetensors_with(path: Path, metadata: dict[str, str]) -> Path:
    from safetensors.numpy import save_file

    save_file({"w": np.zeros((2, 2), np.float32)}, str(path), metadata=metadata)
    return path


ARCH_KEY = "edge_compress.architecture"
TASK = {"task": "image-classification", "classes": [str(i) for i in range(10)],
        "signature": {"inputs": [{"name": "input", "dtype": "float32",
                                  "shape": ["batch", 1, 8, 8]}],
                      "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}]},
        "input_shape": [1, 8, 8], "vocab_size": None, "max_length": None}  # fmt: skip


BROKEN_METADATA = [
    ("bad-json", {ARCH_KEY: "{'model': not json"}, "metadata is not valid JSON"),
    ("not-an-object", {ARCH_KEY: "[1, 2, 3]"}, "not a JSON object"),
    ("no-model", {ARCH_KEY: json.dumps({"task": TASK})}, "no 'model'"),
    ("bad-spec", {ARCH_KEY: json.dumps({"model": {"arch": "cnn-small", "width": "wide"},
                                        "task": TASK})}, "model.width"),
    ("unknown-arch", {ARCH_KEY: json.dumps({"model": {"arch": "cnn-huge"}, "task": TASK})},
     "unknown architecture 'cnn-huge'"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "metadata", "fragment"), BROKEN_METADATA,
                         ids=[c[0] for c in BROKEN_METADATA])  # fmt: skip
def test_export_a_checkpoint_with_broken_metadata(tmp_path, case, metadata, fragment):
    path = safetensors_with(tmp_path / "model.safetensors", metadata)
    one_line_error(cli("export", path), path, fragment)


def test_export_a_file_that_is_not_safetensors(tmp_path):
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"PK\x03\x04 a zip, perhaps a pickle")
    one_line_error(cli("export", path), path, "not a readable safetensors checkpoint")
    missing = tmp_path / "absent.safetensors"
    one_line_error(cli("export", missing), missing, "not found")
