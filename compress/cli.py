"""The ``compress`` command. Every CompressError becomes one line on stderr and its exit code."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from compress.errors import CompressError
from compress.log import Log

# Optional dependencies → the extra that installs them (the device side needs none of these).
EXTRAS = {"torch": "train", "onnx": "train", "onnxscript": "train", "safetensors": "train",
          "sklearn": "train"}  # fmt: skip


def _run(args: argparse.Namespace) -> int:
    from compress.distributed import follower
    from compress.pipeline.runner import run_recipe

    log = Log(quiet=args.quiet, json_lines=args.json_logs)
    run_dir = run_recipe(args.recipe, args.out, smoke=args.smoke, fresh=args.fresh, log=log)
    if follower():  # a rank > 0 of a torchrun launch: rank 0 reports
        return 0
    if not (run_dir / "report.json").is_file():
        print(f"run directory: {run_dir}")
        return 0
    for line in _summary(json.loads((run_dir / "report.json").read_text())):
        print(line)
    print(f"report: {run_dir / 'report.html'}")
    return 0


def _summary(report: dict) -> list[str]:
    """A few lines for the terminal: each student group against the teacher, and the goals.

    Reads only report.json (groups, comparisons, goals, task), so it needs neither torch nor the
    report builder, and a report rebuilt elsewhere summarises the same way."""
    metric = ((report.get("task") or {}).get("metrics") or [{"name": "accuracy", "unit": "%"}])[0]
    name, unit = metric["name"], metric.get("unit") or ""
    diff_unit = "points" if unit == "%" else unit
    groups = {g["group"]: g for g in report.get("groups") or []}

    def shown(stat: dict) -> str:
        if stat.get("mean") is None:
            return "not measured"
        spread = f" ± {stat['std']:.2f}" if stat.get("std") is not None else ""
        return f"{stat['mean']:.2f}{spread}{'' if unit in ('', '%') else ' '}{unit}"

    lines = []
    for c in (c for c in report.get("comparisons") or [] if c["role"] == "student"):
        g, teacher = groups[c["group"]], groups[c["teacher"]]
        seeds = f"{len(g['models'])} seed{'s' * (len(g['models']) > 1)}"
        line = (f"{c['group']}: {name} {shown(g['metrics'][name])} ({g['metrics_source']}, "
                f"{seeds}; teacher {shown(teacher['metrics'][name])})")  # fmt: skip
        if c.get("param_ratio") is not None:
            line += f", {c['param_ratio']:.3f}× its params"
        if c.get("speedup_b1"):  # only when the run profiled both at batch 1
            line += f", {c['speedup_b1']:.1f}× faster at batch 1 than the teacher in eager PyTorch"
        for b in report.get("goals") or []:
            if b.get("kind") == "beats baseline" and b.get("group") == c["group"]:
                gain = "no gain measured" if b["measured"] is None else (
                    f"{b['measured']:+.2f} {diff_unit} over scratch")  # fmt: skip
                proof = (f"{b['confidence']:.0%} CI [{b['low']:+.2f}, {b['high']:+.2f}]"
                         if b.get("low") is not None else b.get("reason"))  # fmt: skip
                line += f"; {gain} ({proof})"
        lines.append(line)
    if report.get("goals"):
        failed = [g["name"] for g in report["goals"] if not g["passed"]]
        lines.append(f"goals: {len(report['goals']) - len(failed)}/{len(report['goals'])} passed"
                     + (f"; failed: {', '.join(failed)}" if failed else ""))  # fmt: skip
    return lines


def _validate(args: argparse.Namespace) -> int:
    from compress.pipeline.runner import plan
    from compress.recipe import load_recipe

    recipe, source = load_recipe(args.recipe)
    plan(recipe, source)
    return 0


def _schema(args: argparse.Namespace) -> int:
    from compress.recipe import json_schema
    from compress.recipe_docs import recipe_reference

    if args.markdown:
        text = recipe_reference() + "\n"
    else:
        text = json.dumps(json_schema(), indent=2) + "\n"
    if args.out:
        from compress.atomic import write_text

        write_text(args.out, text)
    else:
        sys.stdout.write(text)
    return 0


def _report(args: argparse.Namespace) -> int:
    from compress.pipeline.report import rebuild_report

    for path in rebuild_report(args.run_dir):
        print(path)
    return 0


def _targets(args: argparse.Namespace) -> int:
    from compress import eager_target  # noqa: F401  (registers cpu-torch-eager; torch-free)
    from compress.devices.targets import TARGETS

    for name, target in TARGETS.items():
        found = target().availability()
        state = "present" if found.present else "absent "
        print(f"{name:18} {state}  {target.hardware:11} {target.runtime:16} {found.detail}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from compress.cli_tools import add_tool_commands

    parser = argparse.ArgumentParser(prog="compress", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a recipe end to end")
    run.add_argument("recipe", type=Path)
    run.add_argument("--out", type=Path, help="run directory (default runs/<recipe name>/)")
    run.add_argument("--smoke", action="store_true", help="a sliver of data, one epoch each")
    run.add_argument("--fresh", action="store_true", help="delete the run directory first")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--json-logs", action="store_true", help="log lines as JSON objects")
    run.set_defaults(func=_run)
    validate = sub.add_parser("validate", help="check a recipe; print nothing but errors")
    validate.add_argument("recipe", type=Path)
    validate.set_defaults(func=_validate)
    schema = sub.add_parser("schema", help="print the recipe JSON Schema (for editors)")
    schema.add_argument("--out", type=Path)
    schema.add_argument("--markdown", action="store_true", help="the README's recipe reference")
    schema.set_defaults(func=_schema)
    report = sub.add_parser("report", help="rebuild a run directory's reports")
    report.add_argument("run_dir", type=Path)
    report.set_defaults(func=_report)
    sub.add_parser("targets", help="list targets and whether each is present").set_defaults(
        func=_targets
    )
    add_tool_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CompressError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except ModuleNotFoundError as e:
        extra = EXTRAS.get((e.name or "").split(".")[0])
        if extra is None:
            raise
        print(f"error: `compress {args.command}` needs {e.name}, which is not installed: "
              f"pip install 'edge-compress[{extra}]'", file=sys.stderr)  # fmt: skip
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
