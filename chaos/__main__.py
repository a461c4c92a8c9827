"""`python -m chaos`: the faults, one at a time under load, then a table of what held."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
from collections.abc import Sequence
from pathlib import Path

import httpx

from chaos.faults import FAULTS, FAULTS_BY_NAME, Fault
from chaos.invariants import Figures
from chaos.report import figures_table, problems_text
from chaos.runner import Suite, run_round
from chaos.seed import open_shop
from chaos.soak import SoakReport, run_soak
from chaos.stack import chaos_stack
from meshkit.settings import PROJECT_ROOT

DEFAULT_LOG = PROJECT_ROOT / "var" / "chaos" / "mesh.log"


def _faults(value: str) -> list[Fault]:
    if value == "all":
        return list(FAULTS)
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in FAULTS_BY_NAME]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown fault(s) {', '.join(unknown)}; known: {', '.join(FAULTS_BY_NAME)}"
        )
    return [FAULTS_BY_NAME[name] for name in names]


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description="Inject faults into the mesh under load, one at a time, and check that no "
        "order is lost, charged twice or left pending, that stock is conserved, that every "
        "email goes out and that nothing is dead-lettered. Exits 1 when anything broke.",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        default=None,
        help="comma-separated names (see --list); default: all of them, or none with "
        "--soak-minutes",
    )
    parser.add_argument("--rate", type=float, default=5.0, help="orders per second (default 5)")
    parser.add_argument(
        "--soak-minutes",
        type=float,
        default=0.0,
        help="after the faults, this many minutes at half the rate with shoppers browsing",
    )
    parser.add_argument("--shoppers", type=int, default=20, help="browsing during the soak")
    parser.add_argument("--customers", type=int, default=8, help="people placing the orders")
    parser.add_argument("--seed", type=int, default=7, help="of the orders' random mix")
    parser.add_argument(
        "--log",
        type=Path,
        default=DEFAULT_LOG,
        help=f"where to keep the mesh's log ({DEFAULT_LOG})",
    )
    parser.add_argument("--list", action="store_true", help="list the faults and exit")
    args = parser.parse_args(list(argv))
    if args.faults is None:
        args.faults = [] if args.soak_minutes else list(FAULTS)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    return args


async def run(args: argparse.Namespace) -> tuple[list[Figures], SoakReport | None]:
    rows: list[Figures] = []
    soak: SoakReport | None = None
    async with chaos_stack(keep_log=args.log) as stack:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
        async with httpx.AsyncClient(
            base_url=stack.gateway_url, timeout=10.0, limits=limits
        ) as client:
            shop = await open_shop(client, args.customers)
            suite = Suite(stack, client, shop, args.rate, random.Random(args.seed))
            suite.say(f"mesh ready at {stack.gateway_url}; namespace {stack.namespace}")
            for fault in args.faults:
                rows.append(await run_round(suite, fault))
            if args.soak_minutes:
                soak = await run_soak(suite, args.soak_minutes, args.shoppers)
                rows.append(soak.figures)
    return rows, soak


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list:
        width = max(len(fault.name) for fault in FAULTS)
        for fault in FAULTS:
            print(f"{fault.name:{width}}  {fault.description}")
        return 0
    rows, soak = asyncio.run(run(args))
    print()
    print(figures_table(rows))
    if soak is not None:
        print()
        print(soak.memory_table())
        browsing = soak.browsing
        print(
            f"\nsoak: {browsing.requests} catalog reads, {browsing.errors} failed; "
            f"the shoppers' own process used {browsing.loadgen_cores:.2f} of a core"
        )
    problems = problems_text(rows)
    if problems:
        print(f"\nBroken invariants:\n{problems}")
    print(f"\nThe mesh's log: {args.log}")
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
