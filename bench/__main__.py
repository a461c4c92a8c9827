"""`python -m bench [--quick] [--scenarios 1,3,5]`: run the benchmark and print its table."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

from bench.profiles import FULL, PROFILES, QUICK
from bench.report import checks_text, costs_table, text_table, write
from bench.runner import ALL, run_bench
from bench.stack import PROCESSES

RESULTS = Path(__file__).parent / "results"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--quick", action="store_const", const=QUICK.name, dest="profile",
        help="a few seconds per scenario: under 5 minutes",
    )  # fmt: skip
    mode.add_argument(
        "--profile", choices=sorted(PROFILES), default=FULL.name,
        help="full (the default, about 20 minutes), quick, or smoke (seconds, for the tests)",
    )  # fmt: skip
    parser.add_argument(
        "--scenarios", default=",".join(ALL),
        help=f"comma-separated, of {','.join(ALL)} (baselines run when needed)",
    )  # fmt: skip
    # Both options write `profile`; the first one declared would otherwise default it to None.
    parser.set_defaults(profile=FULL.name)
    parser.add_argument("--out", type=Path, default=RESULTS, help="where JSON and Markdown go")
    parser.add_argument("--mesh-log", type=Path, help="keep the six processes' log here")
    parser.add_argument(
        "--py-spy", type=Path, metavar="DIR", help="profile every process during each scenario"
    )
    parser.add_argument(
        "--py-spy-only", metavar="NAMES", help="comma-separated processes to profile (default all)"
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    args.selected = [key.strip() for key in args.scenarios.split(",") if key.strip()]
    unknown = set(args.selected) - set(ALL)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    return args


def main() -> None:
    args = parse_args()
    if args.py_spy:
        args.py_spy.mkdir(parents=True, exist_ok=True)
    report = asyncio.run(
        run_bench(
            PROFILES[args.profile],
            args.selected,
            mesh_log=args.mesh_log,
            py_spy_dir=args.py_spy,
            py_spy_processes=args.py_spy_only.split(",") if args.py_spy_only else PROCESSES,
        )
    )
    print(text_table(report))
    print()
    if costs := costs_table(report):
        print(f"Where an order's work goes (the saga, all its phases):\n{costs}\n")
    print(checks_text(report))
    json_path, md_path = write(report, args.out)
    print(f"\nwritten: {json_path}, {md_path}")
    failed = any("failed" in result for result in report.results.values())
    sys.exit(1 if failed or (args.strict and not report.passed) else 0)


if __name__ == "__main__":
    main()
