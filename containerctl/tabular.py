"""Plain-text tables and the numbers in them: aligned columns like `docker ps` (no boxes,
nothing cut to `…`, the last column as long as it needs) and the one spelling of a number and a
bandwidth. The layer below both `report` (stored runs) and `ui` (what a person sees while a
stage runs, `print_table`): each imports this, neither imports the other's internals.
Imports nothing heavy (it is on every fast path that prints a table)."""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from .textsafe import printable

BOLD, DIM, RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
STATUS_COLOURS = {"passed": "\x1b[32m", "PASS": "\x1b[32m", "running": "\x1b[32m",
                  "failed": "\x1b[31m", "FAIL": "\x1b[1;31m", "timeout": "\x1b[31m",
                  "interrupted": "\x1b[33m", "skipped": "\x1b[33m", "SKIP": "\x1b[33m",
                  "exited": "\x1b[33m"}


def fmt_num(v: Any, fmt: str) -> str:
    """`format(v, fmt)`, or `—` for a missing or non-finite value."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return format(v, fmt)


def fmt_bw(v: Any) -> str:
    """Bandwidth: 2 decimals (the runbook's 144.18), 4 significant digits below 1 GB/s."""
    if isinstance(v, (int, float)) and math.isfinite(v) and 0 < abs(v) < 1:
        return f"{v:.4f}"
    return fmt_num(v, ".2f")


def cell(v: Any) -> str:
    if v is None or v == "":
        return "-"
    return printable(" ".join(str(v).split("\n")).replace("\t", " "))  # inert on a terminal


def columns(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "",
            gap: int = 2, colour: bool = False, indent: str = "") -> list[str]:
    """Lines of an aligned table. `align` has one letter per column, `l` or `r` (default l).
    With colour, the header is bold and status words are coloured (widths are unchanged)."""
    body = [[cell(v) for v in r] for r in rows]
    n = len(headers)
    widths = [len(h) for h in headers]
    for r in body:
        for i, v in enumerate(r[:n]):
            widths[i] = max(widths[i], len(v))
    sep = " " * gap

    def fmt(vals: Sequence[str], head: bool = False) -> str:
        parts = []
        for i, v in enumerate(vals[:n]):
            right = (align[i:i + 1] or "l") == "r"
            last = i == n - 1
            text = v.rjust(widths[i]) if right else (v if last else v.ljust(widths[i]))
            if colour and head:
                text = f"{BOLD}{text}{RESET}"
            elif colour and v in STATUS_COLOURS:
                text = f"{STATUS_COLOURS[v]}{text}{RESET}"
            parts.append(text)
        return (indent + sep.join(parts)).rstrip()

    return [fmt(list(headers), head=True)] + [fmt(r) for r in body]
