"""Helper of gpu-targets.sh: build the main example's student (cnn-small, width 8, 3 blocks,
28×28 grey images, 10 classes; untrained: latency does not depend on the weights), save it as a
checkpoint, export it to ONNX, and time it on the GPU targets that are present here.

    python3 scripts/device/gpu_student.py build OUT_DIR
    python3 scripts/device/gpu_student.py time OUT_DIR TARGET...   # -> OUT_DIR/times-*.json
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

BATCHES = (1, 64)
STUDENT = {"arch": "cnn-small", "width": 8, "blocks": 3}


def build(out: Path) -> None:
    import torch
    from pydantic import TypeAdapter

    from compress.models import model_spec
    from compress.models.checkpoint import architecture, save_checkpoint
    from compress.models.zoo import build_model
    from compress.tasks.classification import ImageClassification, ImageClassificationConfig

    task = ImageClassification(ImageClassificationConfig(name="image-classification"))
    info = task.info([str(i) for i in range(10)], (1, 28, 28))
    spec = TypeAdapter(model_spec()).validate_python(STUDENT)
    torch.manual_seed(0)
    net = build_model(spec, info).eval()
    save_checkpoint(out / "student.safetensors", net, architecture(spec, info))
    sample = torch.randn(2, 1, 28, 28)
    try:  # the project's exporter (dynamo, needs onnx + onnxscript)
        from compress.export.onnx import export_onnx

        export_onnx(net, info, {"input": sample}, out / "student.onnx")
        how = "compress.export (dynamo)"
    except Exception as e:  # noqa: BLE001  the legacy exporter needs no onnxscript
        print(f"dynamo export failed ({type(e).__name__}: {e}); trying the TorchScript exporter")
        torch.onnx.export(net, (sample,), str(out / "student.onnx"), input_names=["input"],
                          output_names=["logits"], dynamo=False, opset_version=17,
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
        how = "torch.onnx.export (TorchScript)"
    print(f"student: {sum(p.numel() for p in net.parameters())} parameters; ONNX by {how}")


def time_targets(out: Path, names: list[str]) -> None:
    import numpy as np

    from compress import eager_target  # noqa: F401  (registers gpu-torch*)
    from compress.devices.targets import TARGETS, Prepared, TimingSettings, time_together

    settings = TimingSettings(warmup=20, iterations=200, max_seconds=5.0, min_samples=30,
                              rounds=10)  # fmt: skip
    result: dict = {}
    present = []
    for name in names:
        found = TARGETS.get(name)().availability()
        result[name] = {"present": found.present, "detail": found.detail, "records": []}
        if found.present:
            present.append(TARGETS.get(name)())
    prepared = {}
    for t in present:
        try:
            source = out / ("student.safetensors" if "pytorch" in t.formats else "student.onnx")
            prepared[t.name] = (Prepared(source, "pytorch-eager", "fp32") if "pytorch" in t.formats
                                else t.prepare(source, "fp32", out))  # fmt: skip
        except Exception as e:  # noqa: BLE001
            result[t.name]["error"] = f"prepare: {type(e).__name__}: {e}"
    for batch in BATCHES:  # the present targets of this call timed together, interleaved
        x = {"input": np.random.default_rng(0).random((batch, 1, 28, 28), dtype=np.float32)}
        ready = [t for t in present if t.name in prepared]
        try:
            records = time_together([t.contender(prepared[t.name], "student", x, settings)
                                     for t in ready], settings, group=f"batch {batch}")
        except Exception as e:  # noqa: BLE001
            for t in ready:
                result[t.name]["error"] = f"batch {batch}: {type(e).__name__}: {e}"
            traceback.print_exc()
            continue
        for t, r in zip(ready, records, strict=True):
            result[t.name]["records"].append(r.model_dump())
            print(f"{t.name:20} batch {batch:3}: median {r.median_ms:.4f} ms  p99 "
                  f"{r.p99_ms:.4f}  cv {r.cv:.2f}  n {r.iterations}  ({r.clock})")
    tag = "-".join(names)
    (out / f"times-{tag}.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    folder = Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    build(folder) if sys.argv[1] == "build" else time_targets(folder, sys.argv[3:])
