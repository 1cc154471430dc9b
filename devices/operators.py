"""Per-operator profiles: where a model's time goes, per runtime.

- ONNX Runtime: its profiler (``SessionOptions.enable_profiling``) writes a Chrome trace with one
  ``Node`` event per operator per call (``dur`` in µs, ``args.op_name``, ``args.provider``).
- OpenVINO: per-layer performance counters of the infer request.
Both become the same rows: name, op, ms per call, share of the summed operator time, and where
it ran (execution provider or kernel), sorted by time.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

TOP = 10


def top_operators(rows: Iterable[dict[str, Any]], calls: int, top: int = TOP) -> list[dict]:
    """Per operator (``rows``: name, op, ms, where; one row per operator per call) the median
    time over the ``calls`` calls: a burst of outside load in one call would dominate a sum.
    Share: of the summed medians. The ``top`` largest."""
    times: dict[str, list[float]] = defaultdict(list)
    info: dict[str, tuple[str, str]] = {}
    for row in rows:
        times[row["name"]].append(row["ms"])
        info[row["name"]] = (row["op"], row["where"])
    # an operator absent from some calls (skipped) counts 0 ms in them
    typical = {name: statistics.median(ms + [0.0] * (calls - len(ms)))
               for name, ms in times.items()}  # fmt: skip
    overall = sum(typical.values()) or 1.0
    ranked = sorted(typical.items(), key=lambda kv: -kv[1])[:top]
    return [{"name": name, "op": info[name][0], "where": info[name][1],
             "ms": round(ms, 6), "share": round(ms / overall, 4)} for name, ms in ranked]


def ort_trace_rows(trace: Path) -> list[dict[str, Any]]:
    """Operator rows from an ONNX Runtime profile file (the file is removed afterwards)."""
    events = json.loads(trace.read_text(encoding="utf-8"))
    trace.unlink(missing_ok=True)
    # The first run pays for lazy initialisation: leave out everything up to its end.
    runs = sorted(e["ts"] + e["dur"] for e in events if e.get("name") == "model_run")
    after = runs[0] if len(runs) > 1 else -1
    return [{"name": e["name"].removesuffix("_kernel_time"), "op": e["args"].get("op_name", "?"),
             "where": e["args"].get("provider", "?"), "ms": e["dur"] / 1e3}
            for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")
            and e["ts"] > after]  # fmt: skip


def profile_ort(open_profiled: Callable[[str], Any], feed: dict, prefix: Path,
                calls: int) -> list[dict]:  # fmt: skip
    """Run ``calls`` calls on a session opened with profiling to ``prefix``; top operators."""
    session = open_profiled(str(prefix))
    names = [i.name for i in session.get_inputs()]
    for _ in range(calls + 1):  # the first call is left out of the rows
        session.run(None, {n: feed[n] for n in names})
    return top_operators(ort_trace_rows(Path(session.end_profiling())), calls)


def profile_openvino(model: Any, feed: dict, calls: int) -> list[dict]:
    """``model``: an OpenVinoModel compiled with perf counters; its per-layer counters."""
    rows: list[dict[str, Any]] = []
    model.run(feed)  # the first call pays for lazy initialisation
    for _ in range(calls):
        model.run(feed)
        rows += [{"name": r["name"], "op": r["op"], "where": r["kernel"], "ms": r["ms"]}
                 for r in model.layer_times()]  # fmt: skip
    return top_operators(rows, calls)
