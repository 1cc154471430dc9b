"""Report writers: report.md / report.html content, plots, and the atomic three-file write."""

from __future__ import annotations

import base64
import copy
import json
import re
import statistics

import pytest

from compress.devices.report import fmt, plots, render_html, render_markdown, write_reports
from compress.devices.report.build import build_report

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


ACCURACY = {"name": "accuracy", "unit": "%", "direction": "higher", "scale": 100.0}
NLL = {"name": "nll", "unit": "nats", "direction": "lower", "scale": 1.0}


def _model(name, group, role, seed, arch, params, flops, acc_pt, nll=0.30):
    return {
        "name": name,
        "group": group,
        "role": role,
        "seed": seed,
        "parent": None if role == "teacher" else "teacher",
        "transform": "trained" if role != "student" else "distill",
        "precision": "fp32",
        "checkpoint": f"02-train/{name}.safetensors",
        "arch": arch,
        "params": params,
        "flops": flops,
        "metrics_pytorch": {"accuracy": acc_pt, "nll": nll},
        "val_metrics": None,
    }


def _export(name, acc, size, nll=0.31):
    return {
        "model": name,
        "format": "onnx",
        "precision": "fp32",
        "path": f"03-export/{name}.onnx",
        "signature": f"03-export/{name}.signature.json",
        "size_bytes": size,
        "runtime": "onnxruntime 1.32.0",
        "metrics": {"accuracy": acc, "nll": nll},
        "parity": {"atol": 1e-4, "rtol": 1e-3, "passed": True, "max_abs_error": 1.2e-6,
                   "max_rel_error": 3e-5, "top1_agreement": 1.0, "inputs": 64, "outputs": []},
    }  # fmt: skip


# Artifact accuracies per seed: student 91.41 / 91.02 / 91.50, scratch 89.12 / 89.50 / 89.00;
# student nll 0.35 / 0.36 / 0.37 nats (mean 0.36) against the teacher's 0.31.
STUDENT = [0.9141, 0.9102, 0.9150]
SCRATCH = [0.8912, 0.8950, 0.8900]
STUDENT_NLL = [0.35, 0.36, 0.37]
WANTED = {"max_param_ratio": 0.1, "max_metric_drop": {"accuracy": 0.5, "nll": 0.1},
          "min_speedup_b1": 10, "beat_baseline": True, "confidence": 0.95}  # fmt: skip
# The goals build_report emits for WANTED, in its order.
GOAL_NAMES = ["student: params", "student: accuracy drop", "student: nll drop",
              "student: speed-up b1", "student: beats baseline"]  # fmt: skip
VERSIONS = {"edge-compress": "0.1.0", "torch": "2.13.0", "onnx": "1.23.2", "onnxruntime": "1.32.0"}


def _latency() -> list[dict]:
    """Batch 1 and 64 records: the teacher in ONNX and eager PyTorch, each student seed."""
    return [
        _lat("teacher", "03-export/teacher.onnx", "onnx", "cpu-ort", 1, 0.23456),
        _lat("teacher", "pytorch-eager", "pytorch-eager", "cpu-torch-eager", 1, 0.5),
        _lat("student@s0", "03-export/student@s0.onnx", "onnx", "cpu-ort", 1, 0.0123456),
        _lat("student@s1", "03-export/student@s1.onnx", "onnx", "cpu-ort", 1, 0.0119),
        _lat("student@s2", "03-export/student@s2.onnx", "onnx", "cpu-ort", 1, 0.0131),
        _lat(
            "student-scratch@s0", "03-export/student-scratch@s0.onnx", "onnx", "cpu-ort", 1, 0.0131
        ),  # fmt: skip
        _lat("teacher", "03-export/teacher.onnx", "onnx", "cpu-ort", 64, 4.5678),
        _lat("student@s0", "03-export/student@s0.onnx", "onnx", "cpu-ort", 64, 0.3),
        # The one unstable record.
        _lat(
            "student-scratch@s0",
            "03-export/student-scratch@s0.onnx",
            "onnx",
            "cpu-ort",
            64,
            12.3456,
            cv=0.3149,
        ),  # fmt: skip
        # The one estimated record: it must only ever show up in the Estimated table.
        _lat(
            "student@s0",
            "03-export/student@s0.onnx",
            "onnx",
            ESTIMATED_TARGET,
            1,
            0.0042,
            estimated=True,
        ),  # fmt: skip
    ]


def _artifacts() -> dict:
    """A run in the current artifact schema: a teacher, a student and its from-scratch twin
    trained over seeds 0, 1, 2, all exported to ONNX."""
    models = [
        _model("teacher", "teacher", "teacher", None, "cnn-large", 1701354, 33_000_000, 0.9233)
    ]
    exports = [_export("teacher", 0.9231, 6_806_000)]
    for seed, (acc, scratch, nll) in enumerate(zip(STUDENT, SCRATCH, STUDENT_NLL, strict=True)):
        twins = (("student", "student", acc, nll), ("student-scratch", "baseline", scratch, 0.40))
        for group, role, value, loss in twins:
            name = f"{group}@s{seed}"
            models.append(_model(name, group, role, seed, "cnn-tiny", 102_345, 1_650_000,
                                 value - 0.0001))  # fmt: skip
            exports.append(_export(name, value, 409_380, nll=loss))
    latency = _latency()
    return {
        "task": {"name": "image-classification", "metrics": [ACCURACY, NLL], "signature": {}},
        "dataset": {"name": "fashion-mnist", "task": "image-classification", "train": 54000,
                    "val": 6000, "test": 10000, "input_shape": [1, 28, 28], "classes": 10,
                    "preprocessing": {}},
        "models": models, "exports": exports, "latency": latency,
        "notes": ["Run on a shared VM.", "<script>alert('x')</script> & friends"],
    }  # fmt: skip


def _build(artifacts: dict, smoke: bool = False, wanted: dict | None = WANTED) -> dict:
    """The real build_report on ``artifacts``; only the creation time and the machine are
    pinned afterwards, so the rendered header does not depend on the machine running the tests."""
    built = build_report(artifacts, recipe="fashion-kd", smoke=smoke, wanted_goals=wanted,
                         versions=VERSIONS)  # fmt: skip
    built["created"] = "2026-11-29T14:00:00+00:00"
    built["machine"] = {"platform": "Linux-6.8-x86_64", "processor": "x86_64",
                        "cpu_model": "AMD EPYC 7B13", "cores": 2, "python": "3.11.7"}  # fmt: skip
    return built


@pytest.fixture
def artifacts() -> dict:
    return _artifacts()


@pytest.fixture
def report(artifacts) -> dict:
    return _build(artifacts)


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
    assert fmt.fmt_bytes(6_806_000) == "6.81 MB"
    # Displayed = stored × the metric's scale: no guessing from the size of the number.
    assert fmt.fmt_stored(ACCURACY, 0.9231) == "92.31"
    assert fmt.fmt_stored({**ACCURACY, "scale": 1.0}, 0.9231) == "0.92"
    assert fmt.fmt_stored(NLL, 2.5) == "2.50"
    assert fmt.fmt_mean_std({"mean": 91.3133, "std": 0.2581}) == "91.31 ± 0.26"
    assert fmt.fmt_mean_std({"mean": 91.3133, "std": None}) == "91.31"
    assert fmt.metric_label(ACCURACY) == "accuracy (%)"
    assert fmt.metric_label({**NLL, "unit": ""}) == "nll"


def test_markdown_tables_hold_formatted_numbers(report):
    md = render_markdown(report)
    assert md.startswith("# edge-compress report — fashion-kd")
    assert "AMD EPYC 7B13" in md and "onnxruntime 1.32.0" in md
    assert "primary metric accuracy (%), higher is better" in md
    models = _md_section(md, "Models")
    teacher = _row(models, "| teacher |")
    for cell in ("1.70 M", "33.0 M", "| 92.33 |", "| 92.31 |", "onnxruntime 1.32.0", "6.81 MB"):
        assert cell in teacher
    assert "| 91.41 |" in _row(models, "| student@s0 |")
    measured = _md_section(md, "Latency (measured)")
    row = _row(measured, "| student@s0 |", "| cpu-ort |", "| 1 |")
    assert "| 0.0123 |" in row and "| 0.0136 |" in row and "| 0.0185 |" in row  # median p90 p99
    assert "| 81,001 |" in row  # throughput
    assert "| 4.57 |" in _row(measured, "| teacher |", "| cpu-ort |", "| 64 |")
    comparison = _row(_md_section(md, "Comparisons"), "| student | student | teacher |")
    # Mean over seeds 91.31 − teacher 92.31; speed-up 0.5 ms / median(0.0123, 0.0119, 0.0131).
    assert "| -1.00 |" in comparison and "| 40.5× |" in comparison


def test_group_table_has_per_seed_values_and_mean_std_titled_by_metric(report):
    groups = _md_section(render_markdown(report), "Model groups")
    header = groups.split("\n")[4]
    for title in ("accuracy (%) per seed", "accuracy (%) mean ± std", "nll (nats) mean ± std"):
        assert title in header
    assert "Acc" not in header
    student = _row(groups, "| student | student |")
    assert "| 0, 1, 2 |" in student
    assert "| 91.41 / 91.02 / 91.50 |" in student and "| 91.31 ± 0.26 |" in student
    assert "| 0.0123 |" in student and "| 0.300 |" in student  # b1 (median of 3), b64
    assert "| 92.31 |" in _row(groups, "| teacher | teacher |")  # one model: no ± at all
    assert "| 89.21 ± 0.26 |" in _row(groups, "| student-scratch |")
    comparisons = _md_section(render_markdown(report), "Comparisons")
    assert "accuracy Δ (points, higher is better)" in comparisons
    assert "nll Δ (nats, lower is better)" in comparisons


def test_unstable_record_is_flagged_in_md_and_html(report):
    md = render_markdown(report)
    measured = _md_section(md, "Latency (measured)")
    row = _row(measured, "| student-scratch@s0 |", "| 64 |")
    assert "UNSTABLE (cv 0.31 > 0.15)" in row
    assert measured.count("UNSTABLE") == 1  # stable records are not flagged

    latency = _html_section(render_html(report), "latency")
    tr = _row(latency, "student-scratch@s0", '<td class="num">64</td>')
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


def test_goals_show_pass_and_fail_and_the_interval(report):
    assert [g["name"] for g in report["goals"]] == GOAL_NAMES
    goals = _md_section(render_markdown(report), "Goals")
    goals_html = _html_section(render_html(report), "goals")
    for name in GOAL_NAMES:  # every goal build_report emits is a row of its own, in both
        _row(goals, f"| {name} |")
        _row(goals_html, f"<td>{name}</td>")
    params = _row(goals, "student: params")  # 102 345 / 1 701 354 = 0.0602 ≤ 0.1
    assert "| 0.0602 | 0.100 | × |" in params and params.rstrip().endswith("| PASS |")
    drop = _row(goals, "student: accuracy drop")  # 92.31 − 91.31 = 1.00 points > 0.5
    assert "| 1.00 | 0.500 | points |" in drop and drop.rstrip().endswith("| **FAIL** |")
    assert "(higher is better)" in drop
    nll = _row(goals, "student: nll drop")  # mean 0.36 − 0.31 = 0.05 nats, lower is better
    assert "| 0.0500 | 0.100 | nats |" in nll and "(lower is better)" in nll
    assert nll.rstrip().endswith("| PASS |")
    speed = _row(goals, "student: speed-up b1")  # 0.5 ms / median(0.0123, 0.0119, 0.0131)
    assert "| 40.5 | 10.0 | × |" in speed and speed.rstrip().endswith("| PASS |")
    beat = _row(goals, "student: beats baseline")
    # Paired gains 2.29, 1.52, 2.50 points: mean 2.10, 95 % t interval [0.82, 3.39].
    assert "| 2.10 |" in beat and "95% CI [+0.82, +3.39], n=3" in beat
    assert "+2.29, +1.52, +2.50" in beat and beat.rstrip().endswith("| PASS |")
    assert '<td class="good">PASS</td>' in _row(goals_html, "student: params")
    assert '<td class="bad">FAIL</td>' in _row(goals_html, "student: accuracy drop")
    assert '<td class="good">PASS</td>' in _row(goals_html, "student: speed-up b1")
    assert "95% CI [+0.82, +3.39]" in _row(goals_html, "student: beats baseline")


def test_a_goal_that_was_not_measured_reads_as_fail(artifacts):
    # No eager PyTorch record of the teacher: the speed-up cannot be computed, so it must not
    # pass silently or vanish from the table.
    artifacts["latency"] = [r for r in artifacts["latency"] if r["format"] != "pytorch-eager"]
    report = _build(artifacts)
    speed = _row(_md_section(render_markdown(report), "Goals"), "student: speed-up b1")
    assert "| — | 10.0 | × | not measured |" in speed and speed.rstrip().endswith("| **FAIL** |")
    tr = _row(_html_section(render_html(report), "goals"), "student: speed-up b1")
    assert "<td>not measured</td>" in tr and '<td class="bad">FAIL</td>' in tr


def test_one_seed_shows_why_beating_the_baseline_is_unproven(artifacts):
    keep = {"teacher", "student@s0", "student-scratch@s0"}
    artifacts["models"] = [m for m in artifacts["models"] if m["name"] in keep]
    report = _build(artifacts)
    groups = _md_section(render_markdown(report), "Model groups")
    assert "| 91.41 |" in _row(groups, "| student | student |")  # one seed: no "±" at all
    assert "±" not in _row(groups, "| student | student |")
    beat = _row(_md_section(render_markdown(report), "Goals"), "student: beats baseline")
    assert "one seed: no interval; use seeds: [0, 1, 2]" in beat and "CI" not in beat
    assert beat.rstrip().endswith("| **FAIL** |")


def test_units_and_direction_come_from_the_tasks_metric(artifacts):
    # The same run with nll as the primary metric: beating the baseline is now measured in
    # nats, a fall counts as a gain (0.40 − 0.35, 0.40 − 0.36, 0.40 − 0.37), and the header and
    # table titles follow the task.
    artifacts["task"]["metrics"] = [NLL, ACCURACY]
    report = _build(artifacts)
    md = render_markdown(report)
    assert "primary metric nll (nats), lower is better" in md
    assert "Plots (nll (nats) vs latency, nll (nats) vs size)" in md
    beat = _row(_md_section(md, "Goals"), "student: beats baseline")
    assert "nll better than the same network trained from scratch" in beat
    assert "| 0.0400 | 0 | nats |" in beat and "per seed +0.05, +0.04, +0.03" in beat
    header = _md_section(md, "Model groups").split("\n")[4]
    assert header.index("nll (nats) per seed") < header.index("accuracy (%) per seed")
    page = render_html(report)
    assert "primary metric nll (nats), lower is better" in page
    assert "nll (nats) vs median latency, batch size 1" in page


def test_html_is_self_contained(report):
    page = render_html(report)
    imgs = re.findall(r"<img\b[^>]*>", page)
    assert len(imgs) == 3  # metric-vs-latency at batch 1 and 64, plus metric-vs-size
    for img in imgs:
        data = re.search(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', img)
        assert data, img
        assert base64.b64decode(data.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert "<script" not in page and "<link" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; friends" in page


def test_smoke_banner(artifacts, report):
    assert report["smoke"] is False
    assert fmt.SMOKE_BANNER not in render_markdown(report)
    assert fmt.SMOKE_BANNER not in render_html(report)
    smoke = _build(artifacts, smoke=True)
    assert smoke["smoke"] is True
    md = render_markdown(smoke)
    assert fmt.SMOKE_BANNER == "SMOKE RUN — numbers are not meaningful"
    assert fmt.SMOKE_BANNER in md.split("## ")[0]  # above every table
    page = render_html(smoke)
    assert f'<div class="banner">⚠ {fmt.SMOKE_BANNER}' in page
    assert page.index('class="banner"') < page.index('<section id="groups">')


def test_plots_return_png_or_none(artifacts, report):
    assert plots.metric_vs_latency(report, 1).startswith(b"\x89PNG")
    assert plots.metric_vs_size(report).startswith(b"\x89PNG")
    assert plots.metric_vs_latency(report, 32) is None  # no records at that batch size
    empty = _build({}, wanted=None)  # a run that made nothing yet
    assert plots.metric_vs_latency(empty, 1) is None and plots.metric_vs_size(empty) is None
    for m in artifacts["models"]:  # models whose size was never counted
        m["params"] = None
    assert plots.metric_vs_size(_build(artifacts)) is None


def test_plots_pool_seeds_and_label_axes_from_the_metric(report, monkeypatch):
    points = plots._latency_points(report, 1, ACCURACY)
    student = [p for p in points if p.model == "student" and p.target == "cpu-ort"]
    assert len(student) == 1  # three seeds, one point
    assert student[0].x == pytest.approx(0.0123456)  # median of the seeds' medians
    assert student[0].y == pytest.approx((91.41 + 91.02 + 91.50) / 3)
    assert student[0].yerr == pytest.approx(statistics.stdev([91.41, 91.02, 91.50]))
    labels = []
    monkeypatch.setattr(plots.plt.Axes, "set_ylabel", lambda ax, text, **kw: labels.append(text))
    report["task"]["metrics"] = [{**NLL, "name": "perplexity", "unit": ""}]
    for m in report["models"]:
        for art in m["artifacts"]:
            art["metrics"]["perplexity"] = 20.0
    assert plots.metric_vs_latency(report, 1) is not None
    assert labels == ["perplexity (mean over seeds)"]


def test_an_empty_run_renders():
    report = _build({}, wanted=WANTED)
    assert report["groups"] == [] and report["goals"] == []
    md = render_markdown(report)
    for empty in ("No models.", "No measured latency records.", "No comparisons.", "No goals."):
        assert f"_{empty}_" in md
    assert "primary metric accuracy (%), higher is better" in md  # the default metric
    page = render_html(report)
    assert "<img" not in page and "</html>" in page and "<em>No goals.</em>" in page


def test_write_reports_writes_three_files(artifacts, tmp_path):
    report = _build(artifacts, smoke=True)
    out = tmp_path / "reports"
    paths = write_reports(copy.deepcopy(report), out)
    assert set(paths) == {"json", "md", "html"}
    assert {p.name for p in paths.values()} == {"report.json", "report.md", "report.html"}
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "report.md"]
    with open(paths["json"], encoding="utf-8") as f:
        assert json.load(f) == report
    md = paths["md"].read_text(encoding="utf-8")
    assert md == render_markdown(report)
    assert fmt.SMOKE_BANNER in md.split("## ")[0]
    goals = _md_section(md, "Goals")
    assert _row(goals, "student: accuracy drop").rstrip().endswith("| **FAIL** |")
    assert _row(goals, "student: beats baseline").rstrip().endswith("| PASS |")
    assert "| 91.41 / 91.02 / 91.50 | 91.31 ± 0.26 |" in _md_section(md, "Model groups")
    assert "UNSTABLE (cv 0.31 > 0.15)" in _md_section(md, "Latency (measured)")
    page = paths["html"].read_text(encoding="utf-8")
    assert page == render_html(report) and page.count("<img") == 3
    assert f'<div class="banner">⚠ {fmt.SMOKE_BANNER}' in page
    assert '<td class="bad">FAIL</td>' in _row(_html_section(page, "goals"), "accuracy drop")
    student = _row(_html_section(page, "groups"), "<td>student</td>", "<td>student</td>")
    assert ">91.41 / 91.02 / 91.50</td>" in student and ">91.31 ± 0.26</td>" in student


def test_a_stages_section_renders_its_text_tables_and_figures(artifacts, tmp_path):
    png = plots.metric_vs_size(_build(artifacts))
    assert png is not None
    (tmp_path / "03-n2n").mkdir()
    (tmp_path / "03-n2n" / "rewards.png").write_bytes(png)
    artifacts = {**artifacts, "sections": [{
        "stage": "n2n", "title": "N2N search", "text": ["25 child trainings in 59.5 s."],
        "tables": [{"caption": "Reward per iteration.", "columns": ["iteration", "reward", "kept"],
                    "rows": [[1, 0.41234567, "a|b"], [2, None, True]]}],
        "figures": [{"path": "03-n2n/rewards.png", "caption": "Reward per iteration"},
                    {"path": "03-n2n/gone.png", "caption": "A deleted plot"}],
        "goals": [{"name": "n2n-1w: speed-up", "description": "2 workers ≥ 1.6× as fast as 1",
                   "measured": 1.7, "target": 1.6, "unit": "×", "passed": True},
                  {"name": "n2n-1w: same best child", "description": "both find one child",
                   "measured": None, "target": 1, "passed": True}],
    }]}  # fmt: skip
    report = _build(artifacts)
    paths = write_reports(report, tmp_path)
    section = _md_section(paths["md"].read_text(encoding="utf-8"), "N2N search (stage n2n)")
    assert "25 child trainings in 59.5 s." in section
    assert "| iteration | reward | kept |\n| ---: | ---: | --- |" in section
    assert "| 1 | 0.4123 | a\\|b |" in section and "| 2 | — | yes |" in section
    assert "![Reward per iteration](03-n2n/rewards.png)" in section
    html_section = _html_section(paths["html"].read_text(encoding="utf-8"), "stage-0")
    assert base64.b64encode(png).decode("ascii") in html_section
    assert "Plot missing: A deleted plot" in html_section
    goals = _md_section(paths["md"].read_text(encoding="utf-8"), "Goals")
    assert _row(goals, "n2n-1w: speed-up").rstrip().endswith("| 1.70 | 1.60 | × | — | PASS |")
    assert _row(goals, "same best child", "not measured").rstrip().endswith("| **FAIL** |")
