"""Tables on a terminal or in a pipe: aligned columns (tabular.columns, bold header and
coloured status words on a capable terminal) and --json. The same rows serve both."""
from __future__ import annotations

import json
import sys
from typing import Any, Iterable, Sequence

from ..tabular import BOLD, RESET, columns
from ..textsafe import json_text
from .mode import colour


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str = "",
                file=None, title: str | None = None) -> None:
    out = file or sys.stdout
    c = colour(out)
    if title:
        out.write((f"{BOLD}{title}{RESET}" if c else title) + "\n")
    for line in columns(headers, list(rows), align, colour=c):
        out.write(line + "\n")
    out.flush()


def print_json(obj: Any, file=None) -> None:
    out = file or sys.stdout
    # DEL/C1/bidi as \\u escapes: the same JSON, inert
    out.write(json_text(json.dumps(obj, indent=1, ensure_ascii=False, default=str)) + "\n")
    out.flush()
