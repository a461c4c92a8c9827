"""The report: a table with one row per round, then what broke, in sentences."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from chaos.invariants import Figures


def _final(row: Figures) -> str:
    if row.not_final:
        return f"{row.not_final} pending"
    if row.final_seconds is None:
        return "-"
    # Hundredths below a second: a mesh that recovered at once shows its ordinary latency.
    return f"{row.final_seconds:.2f}" if row.final_seconds < 1 else f"{row.final_seconds:.1f}"


COLUMNS: tuple[tuple[str, Callable[[Figures], str]], ...] = (
    ("fault", lambda row: row.fault),
    ("orders", lambda row: str(row.placed)),
    ("retries", lambda row: str(row.retries)),
    ("final within s", _final),
    ("lost", lambda row: str(row.lost)),
    ("charged twice", lambda row: str(row.charged_twice)),
    ("stock diff", lambda row: str(row.stock_diff)),
    ("emails missing", lambda row: str(row.emails_missing)),
    ("duplicate emails", lambda row: str(row.duplicate_emails)),
    ("DLQ", lambda row: str(row.dead_letters)),
    ("result", lambda row: "PASS" if row.passed else "FAIL"),
)


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table, its columns padded to line up in a terminal too; the first column
    left-aligned, the others right-aligned."""
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(width) if index == 0 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    rule = [
        "-" * width if index == 0 else "-" * (width - 1) + ":" for index, width in enumerate(widths)
    ]
    return "\n".join([line(headers), line(rule), *(line(row) for row in rows)])


def figures_table(rows: Sequence[Figures]) -> str:
    return render_table(
        [name for name, _ in COLUMNS], [[cell(row) for _, cell in COLUMNS] for row in rows]
    )


def problems_text(rows: Sequence[Figures]) -> str:
    """What broke in each failing round; empty when every round passed."""
    lines = []
    for row in rows:
        if row.problems:
            lines.append(f"{row.fault}:")
            lines += [f"  - {problem}" for problem in row.problems]
    return "\n".join(lines)
