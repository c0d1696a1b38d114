"""Tables as aligned columns, like `docker ps`: no boxes, nothing cut to `…`, the last column
as long as it needs. The same rows serve --json."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

BOLD, DIM, RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
STATUS_COLOURS = {"passed": "\x1b[32m", "PASS": "\x1b[32m", "running": "\x1b[32m",
                  "failed": "\x1b[31m", "FAIL": "\x1b[1;31m", "timeout": "\x1b[31m",
                  "interrupted": "\x1b[33m", "skipped": "\x1b[33m", "SKIP": "\x1b[33m",
                  "exited": "\x1b[33m"}


def cell(v: Any) -> str:
    if v is None or v == "":
        return "-"
    from ..textsafe import printable    # a label or message cannot act on the terminal
    return printable(" ".join(str(v).split("\n")).replace("\t", " "))


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


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "",
                file=None, title: str | None = None) -> None:
    from .mode import colour
    out = file or sys.stdout
    c = colour(out)
    if title:
        out.write((f"{BOLD}{title}{RESET}" if c else title) + "\n")
    for line in columns(headers, list(rows), align, colour=c):
        out.write(line + "\n")
    out.flush()


def print_json(obj: Any, file=None) -> None:
    out = file or sys.stdout
    from ..textsafe import json_text     # DEL/C1/bidi as \\u escapes: the same JSON, inert
    out.write(json_text(json.dumps(obj, indent=1, ensure_ascii=False, default=str)) + "\n")
    out.flush()
