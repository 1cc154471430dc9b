"""The report's Quantization table (report.md and report.html): quantized groups beside their
fp32 parents, from the rows ``quantized.quantization_rows`` puts in report.json."""

from __future__ import annotations

from .fmt import Table, fmt_bytes, fmt_ms, text


def quantization_table(report: dict) -> Table:
    """The quantized groups beside their fp32 parents (empty when nothing was quantized)."""
    headers = ["Group", "Method", "Bits", "Metric mean ± std", "File", "Smaller than fp32",
               "Formula k·32/(k·b+64)", "b1 ms", "b64 ms"]  # fmt: skip
    rows = []
    for r in report.get("quantization") or []:
        metric = next(iter(r["metric"].values()), {}) if r["metric"] else {}
        mean, std = metric.get("mean"), metric.get("std")
        shown = "—" if mean is None else f"{mean:.2f}" + ("" if std is None else f" ± {std:.2f}")
        rows.append([text(r["group"]), text(r["method"]), str(r["bits"]), shown,
                     fmt_bytes(r["file_bytes"]),
                     "—" if r["compression"] is None else f"{r['compression']:.2f}×",
                     "—" if r["formula"] is None else f"{r['formula']:.2f}×",
                     fmt_ms(r["b1_ms"]), fmt_ms(r["b64_ms"])])  # fmt: skip
    return Table(headers, rows, numeric={2, 3, 4, 5, 6, 7, 8})


QUANT_NOTE = ("Accuracy of each exported artifact in its runtime, mean ± std over seeds. "
              "File: median over seeds; smaller than fp32: the fp32 parent's artifact over this "
              "one (the whole file: unquantized layers, scales and graph included); the formula "
              "counts the quantized tensors alone. onnx-packed stores b-bit codes and computes in "
              "fp32; onnx-qdq computes in int8; onnx-qcdq (brevitas) computes in int8 but stores "
              "fp32 weights, so its file is not smaller and no formula applies. Latency on the "
              "primary target, median over seeds.")
