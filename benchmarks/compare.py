"""Summarise pytest-benchmark JSON files: a table per benchmark and the peer ratios.

Usage, from the repository root::

    mkdir -p build
    .venv/bin/python -m pytest benchmarks --benchmark-enable --benchmark-json=build/bench.json
    .venv/bin/python benchmarks/compare.py build/bench.json [more.json ...] [--max-ratio 1.0]

With several files (several runs of the same benchmarks), each figure is the median of the
per-run figures, and each ratio is the median of the per-run ratios of medians. The ratios
printed are those of :data:`RATIOS` whose two benchmarks are in every file: mfakit over
pyotp (in memory), mfakit over django-otp on SQLite and on PostgreSQL (same engine, same
run), and the scale benchmark's large population over its small one. ``--max-ratio`` makes
the exit status 1 when the ratio ``mfakit / pyotp`` is above the given bound.

The SQL benchmarks record in ``extra_info`` how many statements, transactions and pool
checkouts one round sends, and the scale benchmark its subject count; a second table
shows them.
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
#: extra_info keys shown in the second table, in this order.
EXTRA: Final = ("engine", "subjects", "statements", "transactions", "pool_checkouts")

#: (label, numerator benchmark, denominator benchmark): the ratios of medians printed.
RATIOS: Final = (
    ("mfakit/pyotp", MFAKIT, PYOTP),
    *(
        ratio
        for engine in ("sqlite", "postgresql")
        for ratio in (
            (
                f"mfakit verify_totp / django-otp, {engine}",
                f"test_mfakit_verify_totp[{engine}]",
                f"test_djotp_verify[{engine}]",
            ),
            (
                f"mfakit verify_totp wrong code / django-otp wrong code, {engine}",
                f"test_mfakit_verify_totp_wrong_code[{engine}]",
                f"test_djotp_verify_wrong_code[{engine}]",
            ),
            (
                f"mfakit sign-in / django-otp, {engine}",
                f"test_mfakit_signin[{engine}]",
                f"test_djotp_verify[{engine}]",
            ),
            (
                f"mfakit verify only / django-otp, {engine}",
                f"test_mfakit_verify_only[{engine}]",
                f"test_djotp_verify[{engine}]",
            ),
            (
                f"mfakit wrong code / django-otp wrong code, {engine}",
                f"test_mfakit_signin_wrong_code[{engine}]",
                f"test_djotp_verify_wrong_code[{engine}]",
            ),
            (
                f"large / small population, {engine}",
                f"test_scale_signin[{engine}-large]",
                f"test_scale_signin[{engine}-small]",
            ),
            (
                f"large / small population, verify_totp, {engine}",
                f"test_scale_verify_totp[{engine}-large]",
                f"test_scale_verify_totp[{engine}-small]",
            ),
        )
    ),
)

#: benchmark name -> statistic -> seconds (plus "rounds")
Run = dict[str, dict[str, float]]
#: benchmark name -> extra_info
Extras = dict[str, dict[str, object]]


def load_with_extras(path: Path) -> tuple[Run, Extras]:
    """The statistics and the ``extra_info`` of every benchmark in one JSON file."""
    data = json.loads(path.read_text(encoding="utf-8"))
    run: Run = {}
    extras: Extras = {}
    for bench in data["benchmarks"]:
        stats = bench["stats"]
        name = str(bench["name"])
        run[name] = {field: float(stats[field]) for field in (*FIELDS, "rounds")}
        extras[name] = dict(bench.get("extra_info") or {})
    return run, extras


def load(path: Path) -> Run:
    """The statistics of every benchmark in one pytest-benchmark JSON file."""
    return load_with_extras(path)[0]


def pair_ratio(run: Run, numerator: str, denominator: str, field: str = "median") -> float:
    """``field`` (the median) of ``numerator`` over that of ``denominator``, in one run."""
    try:
        return run[numerator][field] / run[denominator][field]
    except KeyError as exc:
        raise SystemExit(f"benchmark {exc.args[0]} missing from the JSON") from None


def ratio(run: Run) -> float:
    """Median time of mfakit's verification over pyotp's, in one run."""
    return pair_ratio(run, MFAKIT, PYOTP)


def present_ratios(runs: Sequence[Run]) -> list[tuple[str, list[float], list[float]]]:
    """Each ratio of :data:`RATIOS` whose benchmarks are in every run: per-run ratios of
    medians, and per-run ratios of minimums (the least disturbed rounds, on a busy host)."""
    found = []
    for label, numerator, denominator in RATIOS:
        if all(numerator in run and denominator in run for run in runs):
            medians = [pair_ratio(run, numerator, denominator) for run in runs]
            minimums = [pair_ratio(run, numerator, denominator, "min") for run in runs]
            found.append((label, medians, minimums))
    return found


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


def render_extras(extras: Sequence[Extras]) -> list[str]:
    """The extra_info table (first run that has each benchmark), or nothing."""
    merged: Extras = {}
    for extra in extras:
        for name, info in extra.items():
            if any(key in info for key in EXTRA):
                merged.setdefault(name, info)
    if not merged:
        return []
    width = max(len(name) for name in merged)
    head = f"{'benchmark':<{width}}  " + "  ".join(f"{key:>14}" for key in EXTRA)
    lines = ["", "per round (extra_info):", head, "-" * len(head)]
    for name in sorted(merged):
        cells = "  ".join(f"{merged[name].get(key, '')!s:>14}" for key in EXTRA)
        lines.append(f"{name:<{width}}  {cells}")
    return lines


def render(runs: Sequence[Run], extras: Sequence[Extras] = ()) -> str:
    summary = summarise(runs)
    width = max(len(name) for name in summary)
    head = f"{'benchmark':<{width}}  " + "  ".join(f"{f + ' (us)':>12}" for f in FIELDS)
    lines = [head, "-" * len(head)]
    for name, stats in sorted(summary.items(), key=lambda item: item[1]["median"]):
        cells = "  ".join(f"{stats[f] * 1e6:12.3f}" for f in FIELDS)
        lines.append(f"{name:<{width}}  {cells}")
    lines.extend(render_extras(extras))
    lines.append("")
    found = present_ratios(runs)
    if not found:
        lines.append("no ratio: no pair of compared benchmarks is in every file")
    for label, ratios, minimums in found:
        per_run = ""
        if len(runs) > 1:
            per_run = " (per run: " + ", ".join(f"{r:.3f}" for r in ratios) + ")"
        lines.append(
            f"median ratio {label}: {statistics.median(ratios):.3f}"
            f" over {len(runs)} run(s){per_run}; ratio of minimums"
            f" {statistics.median(minimums):.3f}"
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
    loaded = [load_with_extras(path) for path in args.json]
    runs = [run for run, _ in loaded]
    print(render(runs, [extras for _, extras in loaded]))
    if args.max_ratio is None:
        return 0
    median_ratio = statistics.median(ratio(run) for run in runs)
    if median_ratio > args.max_ratio:
        print(f"FAIL: ratio {median_ratio:.3f} > {args.max_ratio}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
