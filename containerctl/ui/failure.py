"""A failed stage in one screen: the record's message, the first real error line of its log, the
log's last lines and its path. Uses containerctl.results.logerrors.summarize_failure when that
module exists; the small fallback here does the same job until then."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..logread import read_bounded
from ..results.logerrors import summarize_failure
from ..textsafe import one_line, printable
from .filters import is_protocol_line, is_shown

_ERR_RE = re.compile(
    r"(\berror\b|\bERROR\b|Error:|fatal|FATAL|No such file|not found|cannot |Cannot |"
    r"undefined reference|Segmentation fault|core dumped|Killed|Traceback|Aborted|"
    r"\*\*\* |exit code [1-9]|failed|FAILED|Permission denied)")


def _fallback(text: str, log_path: str, tail: int = 8) -> str:
    lines = [ln.rstrip() for ln in text.replace("\r", "\n").splitlines() if is_shown(ln)]
    first = next((ln for ln in lines if _ERR_RE.search(ln)), "")
    out = []
    if first:
        out.append(f"first error: {first.strip()}")
    last = lines[-tail:]
    if last:
        out.append(f"last {len(last)} lines of the log:")
        out += [f"  {ln}" for ln in last]
    out.append(f"log: {log_path}")
    return "\n".join(out)


def summarize(text: str, log_path: str) -> str:
    try:
        out = summarize_failure(text, log_path)
    except Exception:     # a helper's bug must not hide the failure itself
        return _fallback(text, log_path)
    # protocol lines and traces stay in the log, here too
    return "\n".join(ln for ln in out.splitlines() if not is_protocol_line(ln.strip()))


def failure_blocks(run: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(title, lines) for each failed/timed-out/interrupted stage of a loaded run."""
    out = []
    base = Path(run.get("dir") or "")
    for stage, rec in (run.get("records") or {}).items():
        if rec.get("status") not in ("failed", "timeout", "interrupted"):
            continue
        log = base / (rec.get("log") or f"logs/{stage}.log")
        try:
            text, _ = read_bounded(log)       # head and tail of a huge log, never all of it
        except OSError:
            text = ""
        title = f"{stage} {rec.get('status')}: {rec.get('message') or ''}".rstrip(": ")
        # the log stays raw; what reaches a screen, a CI log or a report cannot act on it
        out.append((one_line(title), printable(summarize(text, str(log))).splitlines()))
    return out
