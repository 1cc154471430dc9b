"""The device side (compress.runtime, compress.devices) works on a machine without torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

BLOCK_TORCH = textwrap.dedent("""
    import sys
    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError("torch is blocked in this test", name=name)
    sys.meta_path.insert(0, BlockTorch())
""")


def run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK_TORCH + textwrap.dedent(code)],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)  # fmt: skip


def test_device_side_imports_without_torch():
    result = run_without_torch("""
        import compress.runtime, compress.devices, compress.devices.latency
        import compress.devices.targets, compress.devices.report, compress.devices.report.build
        from compress.devices.targets import TARGETS
        assert TARGETS.get("cpu-ort")().availability().present
        assert "torch" not in sys.modules
        print("ok")
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_the_block_really_blocks_torch():
    result = run_without_torch("import torch")
    assert result.returncode != 0 and "torch is blocked" in result.stderr


def test_report_rebuilds_from_a_run_directory_without_torch(tmp_path):
    from tests.conftest import cli, digits_recipe, write_recipe

    recipe = digits_recipe()
    recipe["stages"] = recipe["stages"][:1] + [{"kind": "export"}, {"kind": "report"}]
    recipe["teacher"]["train"]["epochs"] = 1
    recipe["stages"][0]["train"]["epochs"] = 1
    run = tmp_path / "run"
    assert cli("run", write_recipe(tmp_path / "r.yaml", recipe), "--out", run).returncode == 0
    (run / "report.md").unlink()
    result = run_without_torch(f"""
        from compress.cli import main
        code = main(["report", {str(run)!r}])
        assert "torch" not in sys.modules
        sys.exit(code)
    """)
    assert result.returncode == 0, result.stderr
    assert "| student" in (run / "report.md").read_text()


def test_targets_command_works_without_torch():
    result = run_without_torch("""
        from compress.cli import main
        sys.exit(main(["targets"]))
    """)
    assert result.returncode == 0, result.stderr
    assert "\ncpu-ort " in "\n" + result.stdout and "present" in result.stdout


def test_training_without_torch_names_the_extra_to_install():
    result = run_without_torch("""
        from compress.cli import main
        sys.exit(main(["validate", "examples/digits-kd.yaml"]))
    """)
    assert result.returncode == 2
    assert "pip install 'edge-compress[train]'" in result.stderr
    assert "Traceback" not in result.stderr
