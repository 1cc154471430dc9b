#!/usr/bin/env bash
# GPU check of the deployment targets (docs/targets.md), for a machine with one NVIDIA GPU,
# python3 with CUDA torch, no network, this repository as the working directory. Under 3 min:
#   1. the environment: what is importable, what is missing (nothing is downloaded);
#   2. `pip install --no-deps -e .` when compress is not importable;
#   3. pytest -k gpu on tests/test_targets.py (GPU targets run where present);
#   4. the main example's student (built from the zoo, exported to ONNX) timed on gpu-torch
#      (eager), gpu-torch-graphs (CUDA graphs), interleaved; gpu-torch-compiled alone (it
#      compiles); gpu-ort and gpu-tensorrt when importable (their wheels are too big to carry
#      here, so they are normally reported absent with the reason).
# Every part runs under its own timeout; a summary is always printed. JSON and logs go to $OUT.
set -u
OUT=${OUT:-$PWD/gpu-out}
mkdir -p "$OUT"
WORK=$(mktemp -d)
PY=${PYTHON:-python3}
declare -A STATUS

part() {  # part NAME SECONDS COMMAND...: run with a timeout, log to $OUT/NAME.log
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  STATUS[$name]=$([ $rc -eq 0 ] && echo ok || { [ $rc -eq 124 ] && echo "timed out" || echo "failed ($rc)"; })
}

part env 30 "$PY" - <<'PY'
import importlib, json, os, subprocess
mods = ["numpy", "yaml", "rich", "matplotlib", "pydantic", "PIL", "tokenizers", "onnx",
        "onnxscript", "safetensors", "onnxruntime", "pytest", "torch", "tensorrt", "cuda"]
found = {}
for m in mods:
    try:
        found[m] = getattr(importlib.import_module(m), "__version__", "present")
    except Exception as e:
        found[m] = f"MISSING ({type(e).__name__})"
import torch
found["cuda_available"] = torch.cuda.is_available()
found["gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() else None
try:
    import onnxruntime as ort
    found["ort_providers"] = ort.get_available_providers()
except Exception:
    pass
try:
    found["nvidia_smi"] = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True).stdout
except OSError as e:
    found["nvidia_smi"] = f"not runnable ({e})"
print(json.dumps(found, indent=1))
json.dump(found, open(os.path.join(os.environ.get("OUT", "."), "env.json"), "w"), indent=1)
print("missing:", [m for m, v in found.items() if str(v).startswith("MISSING")])
PY

if ! "$PY" -c "import compress.devices.targets" 2>/dev/null; then
  part install 60 "$PY" -m pip install --no-deps --no-build-isolation -e .
fi
part pytest_gpu 60 "$PY" -m pytest -q -x tests/test_targets.py -k gpu -p no:cacheprovider -rs
part build 40 "$PY" scripts/device/gpu_student.py build "$WORK"
part torch_eager_graphs 40 "$PY" scripts/device/gpu_student.py time "$WORK" gpu-torch gpu-torch-graphs
part torch_compiled 60 "$PY" scripts/device/gpu_student.py time "$WORK" gpu-torch-compiled
part ort_trt 40 "$PY" scripts/device/gpu_student.py time "$WORK" gpu-ort gpu-tensorrt
cp "$WORK"/times-*.json "$OUT"/ 2>/dev/null

echo "== summary"
for name in env install pytest_gpu build torch_eager_graphs torch_compiled ort_trt; do
  [ -n "${STATUS[$name]:-}" ] && printf '%-20s %s\n' "$name" "${STATUS[$name]}"
done
"$PY" - "$OUT" <<'PY' || true
import glob, json, sys
for f in sorted(glob.glob(f"{sys.argv[1]}/times-*.json")):
    for name, r in json.load(open(f)).items():
        if not r["records"]:
            print(f"{name:20} {'absent' if not r['present'] else 'error'}: {r.get('error') or r['detail']}")
        for rec in r["records"]:
            print(f"{name:20} b{rec['batch_size']:<3} median {rec['median_ms']:.4f} ms  cv {rec['cv']:.2f}")
PY
rm -rf "$WORK"
