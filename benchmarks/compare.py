"""Summarise pytest-benchmark JSON files: a table per benchmark and the mfakit/pyotp ratio.

Usage, from the repository root::

    mkdir -p build
    .venv/bin/python -m pytest benchmarks --benchmark-enable --benchmark-json=build/bench.json
    .venv/bin/python benchmarks/compare.py build/bench.json [more.json ...] [--max-ratio 1.0]

With several files (several runs of the same benchmarks), each figure is the median of the
per-run figures, and the ratio is the median of the per-run ratios. ``--max-ratio`` makes
the exit status 1 when the ratio of medians ``mfakit / pyotp`` is above the given bound.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

MFAKIT: Final = "test_mfakit_verify_memorystore"
PYOTP: Final = "test_pyotp_verify"
FIELDS: Final = ("median", "mean", "stddev", "min", "iqr")

#: benchmark name -> statistic -> seconds (plus "rounds")
Run = dict[str, dict[str, float]]


def load(path: Path) -> Run:
    """The statistics of every benchmark in one pytest-benchmark JSON file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    run: Run = {}
    for bench in data["benchmarks"]:
        stats = bench["stats"]
        name = str(bench["name"])
        run[name] = {field: float(stats[field]) for field in (*FIELDS, "rounds")}
    return run


def ratio(run: Run) -> float:
    """Median time of mfakit's verification over pyotp's, in one run."""
    try:
        return run[MFAKIT]["median"] / run[PYOTP]["median"]
    except KeyError as exc:
        raise SystemExit(f"benchmark {exc.args[0]} missing from the JSON") from None


def summarise(runs: Sequence[Run]) -> Run:
    """Per benchmark and statistic, the median over the runs that have it."""
    names = sorted({name for run in runs for name in run})
    return {
        name: {
            field: statistics.median(run[name][field] for run in runs if name in run)
            for field in (*FIELDS, "rounds")
        }
        for name in names
    }


def render(runs: Sequence[Run]) -> str:
    summary = summarise(runs)
    width = max(len(name) for name in summary)
    head = f"{'benchmark':<{width}}  " + "  ".join(f"{f + ' (us)':>12}" for f in FIELDS)
    lines = [head, "-" * len(head)]
    for name, stats in sorted(summary.items(), key=lambda item: item[1]["median"]):
        cells = "  ".join(f"{stats[f] * 1e6:12.3f}" for f in FIELDS)
        lines.append(f"{name:<{width}}  {cells}")
    ratios = [ratio(run) for run in runs]
    lines.append("")
    if len(runs) > 1:
        lines.append("per-run ratios mfakit/pyotp: " + ", ".join(f"{r:.3f}" for r in ratios))
    lines.append(
        f"median ratio mfakit/pyotp ({MFAKIT} / {PYOTP}): {statistics.median(ratios):.3f}"
        f" over {len(runs)} run(s)"
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("json", nargs="+", type=Path, help="--benchmark-json output file(s)")
    parser.add_argument(
        "--max-ratio",
        type=float,
        default=None,
        help="exit with status 1 if the median ratio mfakit/pyotp exceeds this",
    )
    args = parser.parse_args(argv)
    runs = [load(path) for path in args.json]
    print(render(runs))
    median_ratio = statistics.median(ratio(run) for run in runs)
    if args.max_ratio is not None and median_ratio > args.max_ratio:
        print(f"FAIL: ratio {median_ratio:.3f} > {args.max_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
