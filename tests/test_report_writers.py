"""Report writers: report.md / report.html content, plots, and the atomic three-file write."""

from __future__ import annotations

import base64
import copy
import json
import re

import pytest

from compress.devices.report import fmt, plots, render_html, render_markdown, write_reports

ESTIMATED_TARGET = "npu-sim-estimate"


def _lat(model, artifact, fmt_, target, bs, median, cv=0.05, **extra):
    rec = {
        "model": model,
        "artifact": artifact,
        "format": fmt_,
        "target": target,
        "runtime": "torch" if fmt_ == "pytorch-eager" else "onnxruntime",
        "runtime_version": "2.13.0" if fmt_ == "pytorch-eager" else "1.32.0",
        "precision": "fp32",
        "batch_size": bs,
        "input_shape": [bs, 1, 28, 28],
        "warmup": 20,
        "iterations": 200,
        "samples_ms": [median * 0.98, median, median * 1.03],
        "min_ms": median * 0.9,
        "mean_ms": median * 1.01,
        "median_ms": median,
        "p90_ms": median * 1.1,
        "p95_ms": median * 1.2,
        "p99_ms": median * 1.5,
        "max_ms": median * 2,
        "cv": cv,
        "cv_threshold": 0.15,
        "unstable": cv > 0.15,
        "throughput_per_s": bs * 1000.0 / median,
        "load_ms": 5.1,
        "first_inference_ms": 0.4,
        "threads": 2,
        "estimated": False,
        "ttft_ms": None,
        "decode_tokens_per_s": None,
    }
    rec.update(extra)
    return rec


def _model(name, role, arch, params, flops, acc_onnx, acc_pt, size):
    return {
        "name": name,
        "role": role,
        "arch": arch,
        "params": params,
        "flops": flops,
        "artifacts": [
            {
                "format": "onnx",
                "path": f"03-export/{name}.onnx",
                "size_bytes": size,
                "runtime": "onnxruntime 1.32.0",
                "accuracy": acc_onnx,
                "parity": {"max_abs_error": 1.2e-6, "max_rel_error": 3e-5, "passed": True},
            }
        ],
        "accuracy_pytorch": acc_pt,
    }


@pytest.fixture
def report() -> dict:
    latency = [
        _lat("teacher", "03-export/teacher.onnx", "onnx", "cpu-ort", 1, 0.23456),
        _lat("teacher", "pytorch-eager", "pytorch-eager", "cpu-torch-eager", 1, 0.5),
        _lat("student", "03-export/student.onnx", "onnx", "cpu-ort", 1, 0.0123456),
        _lat("student-scratch", "03-export/student-scratch.onnx", "onnx", "cpu-ort", 1, 0.0131),
        _lat("teacher", "03-export/teacher.onnx", "onnx", "cpu-ort", 32, 4.5678),
        _lat("student", "03-export/student.onnx", "onnx", "cpu-ort", 32, 0.3),
        # The one unstable record.
        _lat(
            "student-scratch",
            "03-export/student-scratch.onnx",
            "onnx",
            "cpu-ort",
            32,
            12.3456,
            cv=0.3149,
        ),
        # The one estimated record: it must only ever show up in the Estimated table.
        _lat(
            "student", "03-export/student.onnx", "onnx", ESTIMATED_TARGET, 1, 0.0042, estimated=True
        ),
    ]
    return {
        "recipe": "fashion-kd",
        "created": "2026-11-29T14:00:00+00:00",
        "smoke": False,
        "machine": {
            "platform": "Linux-6.8-x86_64",
            "processor": "x86_64",
            "cpu_model": "AMD EPYC 7B13",
            "cores": 2,
            "python": "3.11.7",
        },
        "versions": {
            "edge-compress": "0.1.0",
            "torch": "2.13.0",
            "onnx": "1.23.2",
            "onnxruntime": "1.32.0",
        },
        "dataset": {
            "name": "fashion-mnist",
            "train": 54000,
            "val": 6000,
            "test": 10000,
            "input_shape": [1, 28, 28],
            "classes": 10,
        },
        "models": [
            _model(
                "teacher", "teacher", "cnn-large", 1701354, 33_000_000, 0.9231, 0.9233, 6_806_000
            ),
            _model("student", "student", "cnn-tiny", 102_345, 1_650_000, 0.9141, 0.9140, 409_380),
            _model(
                "student-scratch",
                "baseline",
                "cnn-tiny",
                102_345,
                1_650_000,
                0.8912,
                0.8915,
                409_380,
            ),
        ],
        "latency": latency,
        "comparisons": [
            {
                "model": "student",
                "teacher": "teacher",
                "param_ratio": 0.06,
                "flops_ratio": 0.05,
                "accuracy_delta_points": -0.9,
                "latency_b1_teacher_eager_ms": 0.5,
                "latency_b1_model_ms": 0.0123456,
                "speedup_b1": 40.5,
            }
        ],
        "goals": [
            {
                "name": "student-params",
                "description": "student params <= 1/10 of teacher",
                "measured": 0.06,
                "target": 0.1,
                "passed": True,
            },
            {
                "name": "student-accuracy",
                "description": "student within 0.5 points of teacher",
                "measured": -0.9,
                "target": -0.5,
                "passed": False,
            },
        ],
        "notes": ["Run on a shared VM.", "<script>alert('x')</script> & friends"],
    }


def _md_section(md: str, heading: str) -> str:
    """Text of one '## heading' section, up to the next '## '."""
    start = md.index(f"## {heading}\n")
    end = md.find("\n## ", start + 1)
    return md[start:] if end == -1 else md[start:end]


def _html_section(page: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert match, f"no section {sid}"
    return match.group(1)


def _row(text: str, *needles: str) -> str:
    """The one line / <tr> containing all needles."""
    rows = [r for r in re.split(r"\n|</tr>", text) if all(n in r for n in needles)]
    assert len(rows) == 1, (needles, rows)
    return rows[0]


def test_formatters():
    assert fmt.fmt_ms(0.0123456) == "0.0123"
    assert fmt.fmt_ms(1.23456) == "1.23"
    assert fmt.fmt_ms(12.3456) == "12.3"
    assert fmt.fmt_ms(9.996) == "10.0"
    assert fmt.fmt_ms(1234.5) == "1230"
    assert fmt.fmt_ms(None) == fmt.DASH
    assert fmt.fmt_count(1701354) == "1.70 M"
    assert fmt.fmt_count(33_000_000) == "33.0 M"
    assert fmt.fmt_pct(0.9231) == "92.31"
    assert fmt.fmt_pct(92.31) == "92.31"
    assert fmt.fmt_bytes(6_806_000) == "6.81 MB"


def test_markdown_tables_hold_formatted_numbers(report):
    md = render_markdown(report)
    assert md.startswith("# edge-compress report — fashion-kd")
    assert "AMD EPYC 7B13" in md and "onnxruntime 1.32.0" in md
    teacher = _row(_md_section(md, "Models"), "| teacher |")
    for cell in ("1.70 M", "33.0 M", "92.33", "92.31 (onnxruntime 1.32.0)", "6.81 MB"):
        assert cell in teacher
    measured = _md_section(md, "Latency (measured)")
    row = _row(measured, "| student |", "| cpu-ort |", "| 1 |")
    assert "| 0.0123 |" in row and "| 0.0136 |" in row and "| 0.0185 |" in row  # median p90 p99
    assert "| 81,001 |" in row  # throughput
    assert "| 4.57 |" in _row(measured, "| teacher |", "| cpu-ort |", "| 32 |")
    comparison = _row(_md_section(md, "Comparisons"), "| student | teacher |")
    assert "| -0.90 |" in comparison and "| 40.5× |" in comparison


def test_unstable_record_is_flagged_in_md_and_html(report):
    md = render_markdown(report)
    measured = _md_section(md, "Latency (measured)")
    row = _row(measured, "| student-scratch |", "| 32 |")
    assert "UNSTABLE (cv 0.31 > 0.15)" in row
    assert measured.count("UNSTABLE") == 1  # stable records are not flagged

    latency = _html_section(render_html(report), "latency")
    tr = _row(latency, "student-scratch", '<td class="num">32</td>')
    assert '<tr class="unstable">' in tr
    assert '<td class="bad">UNSTABLE (cv 0.31 &gt; 0.15)</td>' in tr
    assert latency.count("UNSTABLE") == 1


def test_estimated_records_only_in_estimated_table(report):
    md = render_markdown(report)
    assert ESTIMATED_TARGET not in _md_section(md, "Latency (measured)")
    estimated = _md_section(md, "Estimated")
    assert "estimated" in _row(estimated, ESTIMATED_TARGET)

    page = render_html(report)
    assert ESTIMATED_TARGET not in _html_section(page, "latency")
    assert '<td class="est">estimated</td>' in _row(
        _html_section(page, "estimated"), ESTIMATED_TARGET
    )

    report["latency"] = [r for r in report["latency"] if not r["estimated"]]
    assert "## Estimated" not in render_markdown(report)
    assert 'id="estimated"' not in render_html(report)


def test_goals_show_pass_and_fail(report):
    goals = _md_section(render_markdown(report), "Goals")
    assert _row(goals, "student-params").rstrip().endswith("| PASS |")
    assert _row(goals, "student-accuracy").rstrip().endswith("| **FAIL** |")
    goals_html = _html_section(render_html(report), "goals")
    assert '<td class="good">PASS</td>' in _row(goals_html, "student-params")
    assert '<td class="bad">FAIL</td>' in _row(goals_html, "student-accuracy")


def test_html_is_self_contained(report):
    page = render_html(report)
    imgs = re.findall(r"<img\b[^>]*>", page)
    assert len(imgs) == 3  # accuracy-vs-latency at batch 1 and 32, plus accuracy-vs-size
    for img in imgs:
        data = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', img)
        assert data, img
        assert base64.b64decode(data.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "<link" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; friends" in page


def test_smoke_banner(report):
    assert fmt.SMOKE_BANNER not in render_markdown(report)
    assert fmt.SMOKE_BANNER not in render_html(report)
    report["smoke"] = True
    md = render_markdown(report)
    assert fmt.SMOKE_BANNER == "SMOKE RUN — numbers are not meaningful"
    assert fmt.SMOKE_BANNER in md.split("## ")[0]  # above every table
    assert f'<div class="banner">⚠ {fmt.SMOKE_BANNER}' in render_html(report)


def test_plots_return_png_or_none(report):
    assert plots.accuracy_vs_latency(report, 1).startswith(b"\x89PNG")
    assert plots.accuracy_vs_size(report).startswith(b"\x89PNG")
    assert plots.accuracy_vs_latency(report, 64) is None  # no records at that batch size
    assert plots.accuracy_vs_latency({}, 1) is None
    assert plots.accuracy_vs_size({"models": []}) is None
    assert plots.accuracy_vs_size({"models": [{"name": "x", "params": None}]}) is None


def test_minimal_report_renders():
    md = render_markdown({})
    assert "No measured latency records." in md
    page = render_html({"recipe": "r"})
    assert "<img" not in page and "</html>" in page


def test_write_reports_writes_three_files(report, tmp_path):
    out = tmp_path / "reports"
    paths = write_reports(copy.deepcopy(report), out)
    assert set(paths) == {"json", "md", "html"}
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "report.html"}
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    with open(paths["json"], encoding="utf-8") as f:
        assert json.load(f) == report
    assert paths["md"].read_text(encoding="utf-8") == render_markdown(report)
    assert paths["html"].read_text(encoding="utf-8").count("<img") == 3
