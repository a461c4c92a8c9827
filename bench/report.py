"""The report of a run: one table (text and Markdown), the targets' PASS/MISS, and JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.coldstart import COLD_START
from bench.scenarios import BASELINES, SCENARIOS
from bench.targets import Check
from bench.tracing_cost import TRACING

COLUMNS = (
    "scenario",
    "req/s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "errors",
    "vs baseline",
    "result",
    "notes",
)


@dataclass
class Report:
    meta: dict[str, Any]
    results: dict[str, Any]
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "results": self.results,
            "checks": [check.to_json() for check in self.checks],
        }


def _num(value: float | None, digits: int = 1) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def cores_note(result: dict[str, Any]) -> str:
    """The load generator's CPU next to what it had, and the busiest server process."""
    parts = []
    if "loadgen_cpu_cores" in result:
        capacity = result.get("loadgen_capacity_cores")
        of = f"/{capacity}" if capacity else ""
        parts.append(f"{result['loadgen']}: {result['loadgen_cpu_cores']:.2f}{of} cores")
    if result.get("loadgen_late_s"):
        parts.append(
            f"a client process ready {result['loadgen_late_s']:.2f} s into its window "
            "(its rate is over the rest)"
        )
    servers = dict(result.get("server_cpu_cores") or {})
    machine = servers.pop("machine", None)
    stolen = servers.pop("stolen", None)
    if servers:
        name, cores = max(servers.items(), key=lambda item: item[1])
        parts.append(f"busiest {name} {cores:.2f} cores")
    if machine is not None:
        parts.append(f"machine {machine:.2f} cores busy")
    if stolen:
        parts.append(f"{stolen:.2f} cores stolen by the hypervisor")
    return "; ".join(parts)


def _database_work(result: dict[str, Any]) -> str:
    """Database transactions per request, per service that ran any (a warm cache runs none)."""
    requests = max(int(result.get("requests") or 0), 1)
    used = {s: n for s, n in (result.get("db_transactions") or {}).items() if n}
    return ", ".join(f"{s.split('_')[0]} DB {n / requests:.2f} txn/req" for s, n in used.items())


def _percentiles(figures: dict[str, Any]) -> dict[str, str]:
    return {f"{p} ms": _num(figures[f"{p}_ms"]) for p in ("p50", "p95", "p99")}


# A reference is named in its scenario's row as what it is to it.
_SHORT_NAMES = {
    "floor1": "floor",
    "floor3": "floor",
    "1-untraced": "its untraced twin",
    "3-untraced": "its untraced twin",
}


def _versus(result: dict[str, Any]) -> str:
    """The median ratio to the baseline, and to the reference where there is one."""
    parts = [
        f"{compared['ratio']:.0%} of {_SHORT_NAMES.get(compared['baseline'], compared['baseline'])}"
        for compared in (result, result.get("reference") or {})
        if compared.get("ratio") is not None
    ]
    return "; ".join(parts)


def _throughput_row(key: str, title: str, result: dict[str, Any]) -> dict[str, str]:
    return {
        "id": key,
        "scenario": title,
        "req/s": _num(result["rps"], 0),
        **_percentiles(result),
        "errors": str(result["errors"]),
        "vs baseline": _versus(result),
        "notes": "; ".join(
            part for part in (_slices(result), cores_note(result), _database_work(result)) if part
        ),
    }


def _slices(result: dict[str, Any]) -> str:
    """How the figures were pooled: a scenario's rounds against its baseline, a baseline's
    slices between its scenarios'."""
    ratios = [entry["ratio"] for entry in result.get("rounds") or [] if entry["ratio"]]
    seconds = f"{result['seconds'] / (result.get('slices') or 1):.0f} s"
    if len(ratios) == 1:
        return f"one round: a {seconds} slice beside one of the baseline"
    if ratios:
        return (
            f"median of {len(ratios)} rounds' ratios ({min(ratios):.0%} to {max(ratios):.0%}), "
            f"each a {seconds} slice beside one of the baseline"
        )
    slices = result.get("slices_rps") or []
    if len(slices) > 1:
        return (
            f"{len(slices)} slices between its scenarios' slices: "
            f"{_num(min(slices), 0)} to {_num(max(slices), 0)} req/s"
        )
    return ""


def _saga_rows(
    result: dict[str, Any], key: str = "5", name: str = "5 saga"
) -> Iterator[dict[str, str]]:
    for index, phase in enumerate(result["phases"]):
        label = "fixed rate" if index == 0 else "step"
        sustained = "sustained" if phase["sustained"] else "NOT sustained"
        yield {
            "id": f"{key}@{index}",
            "scenario": f"{name} {label} {phase['rate_per_s']:g} orders/s, {phase['seconds']:g} s",
            "req/s": _num(phase["completed_per_s"]),
            **_percentiles(phase),
            "errors": str(phase["post_errors"]),
            "notes": (
                f"POST to PAID; {phase['placed']} placed, {phase['lost']} lost, "
                f"{phase['cancelled']} cancelled; {sustained}; load gen "
                f"{phase['loadgen_cpu_cores']:.2f}/1 cores" + _machine_per_order(phase)
            ),
        }
    best = result["highest_sustained_rate"]
    per_order = result.get("cpu_ms_per_order") or {}
    yield {
        "id": key,
        "scenario": f"{name}: highest sustained step",
        "req/s": _num(best, 0) if best is not None else "none",
        "notes": "orders/s; "
        + cores_note({"server_cpu_cores": result.get("server_cpu_cores")})
        + (
            "; CPU ms per order: " + ", ".join(f"{k} {v:g}" for k, v in per_order.items())
            if per_order
            else ""
        ),
    }


def _machine_per_order(phase: dict[str, Any]) -> str:
    machine = (phase.get("cpu_ms_per_order") or {}).get("machine")
    return "" if machine is None else f"; machine CPU {machine:g} ms per order"


# The services in the cost table's order, with the short names of its columns.
_COST_COLUMNS = {
    "gateway": "gateway",
    "user_service": "user",
    "product_service": "product",
    "order_service": "order",
    "payment_service": "payment",
    "notification_service": "notification",
    # The servers (bench.procstat.INFRASTRUCTURE), CPU only.
    "postgresql": "postgresql",
    "rabbitmq": "rabbitmq",
    "redis": "redis",
}


def costs_table(report: Report) -> str:
    """The saga's work per order, by service: CPU and every kind of call it made, as a
    Markdown table; empty when the saga did not run."""
    saga = report.results.get("5") or {}
    costs = saga.get("costs_per_order")
    if not costs:
        return ""
    columns = [*_COST_COLUMNS.values(), "all"]
    rows: list[tuple[str, dict[str, float]]] = []
    cpu: dict[str, float] = dict(saga.get("cpu_ms_per_order") or {})
    machine = cpu.pop("machine", None)
    rows.append(("CPU, ms", {_COST_COLUMNS.get(name, name): v for name, v in cpu.items()}))
    if machine is not None:
        rows[-1][1]["all"] = machine
    for what, by_service in costs["rows"].items():
        values = {_COST_COLUMNS.get(name, name): v for name, v in by_service.items()}
        if "all" not in values:
            values["all"] = round(sum(values.values()), 2)
        rows.append((what, values))
    head = "| per order (" + f"{costs['orders']:,} orders) | " + " | ".join(columns) + " |"
    lines = [head, "|---|" + "---:|" * len(columns)]
    for what, values in rows:
        cells = [f"{values[c]:g}" if c in values else "" for c in columns]
        lines.append(f"| {what} | " + " | ".join(cells) + " |")
    notes = "".join(f"\n{note}" for note in costs.get("notes", []))
    return "\n".join(lines) + ("\n" + notes if notes else "")


def _cold_start_rows(result: dict[str, Any]) -> Iterator[dict[str, str]]:
    for name, seconds in result["seconds"].items():
        yield {
            "id": f"9:{name}",
            "scenario": f"9 cold start {name}",
            "notes": "did not serve" if seconds is None else f"serving after {seconds:.2f} s",
        }


def _shopper_rows(result: dict[str, Any]) -> Iterator[dict[str, str]]:
    yield {
        "id": "6",
        "scenario": f"6 shoppers: {result['users']} users, all requests",
        "req/s": _num(result["requests"] / result["seconds"], 0),
        "errors": f"{result['errors']} ({result['error_rate']:.2%})"
        if result["error_rate"] is not None
        else "",
        "notes": cores_note(result),
    }
    for kind, figures in result["kinds"].items():
        yield {
            "id": f"6:{kind}",
            "scenario": f"6 shoppers: {kind}",
            "req/s": _num(figures["rps"]),
            **_percentiles(figures),
            "errors": str(figures["errors"]),
            "notes": ", ".join(f"{k}: {v}" for k, v in figures["errors_by_kind"].items()),
        }


def _memory_rows(result: dict[str, Any]) -> Iterator[dict[str, str]]:
    idle, after = result.get("idle", {}), result.get("after", {})
    idle_own, after_own = result.get("idle_anonymous", {}), result.get("after_anonymous", {})
    idle_pss, after_pss = result.get("idle_proportional", {}), result.get("after_proportional", {})
    for name in idle or after:
        yield {
            "id": f"7:{name}",
            "scenario": f"7 RSS {name}",
            "notes": (
                f"idle {_num(idle.get(name))} MB ({_num(idle_own.get(name))} MB its own, "
                f"{_num(idle_pss.get(name))} MB proportional), after the load "
                f"{_num(after.get(name))} MB ({_num(after_own.get(name))} MB, "
                f"{_num(after_pss.get(name))} MB)"
            ),
        }


def _tracing_rows(result: dict[str, Any]) -> Iterator[dict[str, str]]:
    versus = result.get("versus_off") or {}
    for setting, figures in result["settings"].items():
        against = versus.get(setting, {})
        for key in ("1", "3"):
            row = _throughput_row(
                f"8:{setting}:{key}", f"8 tracing {setting}: {SCENARIOS[key].title}", figures[key]
            )
            if against.get(f"{key}_across_restart") is not None:
                row["notes"] += (
                    f"; against the untraced mesh's ratio to hello world, across the restart: "
                    f"{against[f'{key}_across_restart']:.0%}"
                )
            if against.get(f"{key}_from_the_ends") is not None:
                row["notes"] += (
                    f"; from 0% and 100%, time per request being linear in the share sampled: "
                    f"{against[f'{key}_from_the_ends']:.0%} of its untraced twin"
                )
            yield row
        phase = figures["5"]["phases"][0]
        machine = (figures["5"].get("cpu_ms_per_order") or {}).get("machine")
        cpu = f"machine CPU {machine:g} ms per order" if machine is not None else ""
        if against.get("5_cpu") is not None:
            cpu += f" ({against['5_cpu']:.0%} of off's)"
        yield {
            "id": f"8:{setting}:5",
            "scenario": f"8 tracing {setting}: 5 saga {phase['rate_per_s']:g} orders/s",
            "req/s": _num(phase["completed_per_s"]),
            **_percentiles(phase),
            "errors": str(phase["post_errors"]),
            "notes": "; ".join(
                part
                for part in (f"POST to PAID; {phase['placed']} placed, {phase['lost']} lost", cpu)
                if part
            ),
        }


def rows(report: Report) -> list[dict[str, str]]:
    table: list[dict[str, str]] = []
    titles = {
        key: d.title for key, d in {**BASELINES, **SCENARIOS, "8": TRACING, "9": COLD_START}.items()
    }
    for key, result in report.results.items():
        if "failed" in result:
            table.append({"id": key, "scenario": titles.get(key, key), "notes": result["failed"]})
        elif key == "5":
            table += _saga_rows(result)
        elif key == "6":
            table += _shopper_rows(result)
        elif key == "7":
            table += _memory_rows(result)
        elif key == "8":
            table += _tracing_rows(result)
        elif key == "9":
            table += _cold_start_rows(result)
        elif key == "10":
            table += _saga_rows(result, "10", "10 saga (2 replicas)")
        else:
            table.append(_throughput_row(key, titles[key], result))
    for row in table:
        own = [check for check in report.checks if check.row == row["id"]]
        row["result"] = ("PASS" if all(c.passed for c in own) else "MISS") if own else ""
    return table


def text_table(report: Report) -> str:
    table = rows(report)
    widths = {c: max([len(c)] + [len(r.get(c, "")) for r in table]) for c in COLUMNS[:-1]}

    def line(cells: dict[str, str]) -> str:
        return "  ".join(
            cells.get(c, "").ljust(widths[c]) if c != "notes" else cells.get(c, "") for c in COLUMNS
        ).rstrip()

    header = line({c: c for c in COLUMNS})
    return "\n".join([header, "-" * len(header), *(line(row) for row in table)])


def checks_text(report: Report) -> str:
    return "\n".join(
        f"{'PASS' if c.passed else 'MISS'}  {c.row:<14} {c.target}: {c.measured}"
        for c in report.checks
    )


def markdown(report: Report) -> str:
    meta = report.meta
    head = "| " + " | ".join(COLUMNS) + " |\n|" + "---|" * len(COLUMNS)
    body = "\n".join(
        "| " + " | ".join(row.get(c, "").replace("|", "\\|") for c in COLUMNS) + " |"
        for row in rows(report)
    )
    targets = "\n".join(
        f"- **{'PASS' if c.passed else 'MISS'}** {c.row}: {c.target} (measured {c.measured})"
        for c in report.checks
    )
    facts = ", ".join(f"{k}: {v}" for k, v in meta.items() if not isinstance(v, dict | list))
    costs = costs_table(report)
    costs = f"\n## Where an order's work goes\n\n{costs}\n" if costs else ""
    return (
        f"# Benchmark, {meta['profile']} run, {meta['started_at']}\n\n{facts}\n\n"
        f"{head}\n{body}\n{costs}\n## Targets\n\n{targets}\n"
    )


def write(report: Report, directory: Path) -> tuple[Path, Path]:
    """`<profile>-<UTC time>.json` and `.md`, and the same as `latest-<profile>.*`."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    stem = f"{report.meta['profile']}-{stamp}"
    data = json.dumps(report.to_json(), indent=2) + "\n"
    text = markdown(report)
    for name in (stem, f"latest-{report.meta['profile']}"):
        (directory / f"{name}.json").write_text(data)
        (directory / f"{name}.md").write_text(text)
    return directory / f"{stem}.json", directory / f"{stem}.md"
