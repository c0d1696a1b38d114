"""Which lines of a stage's output are for people. Stage scripts speak a small line protocol to
containerctl (`DEP …`, `=== containerctl … ===`, `CCTL_…`, `FLAGCX_PROBE …`, `FLAGCX_COMMIT=…`:
stages/markers.py names them all) and bash traces their commands (`+ make …`, `++ nproc`); those
lines always go to the stage log and never to the screen (except with --verbose)."""
from __future__ import annotations

import re

from ..stages.markers import PROTOCOL_PREFIXES, parse_coll_marker, parse_dep

__all__ = ["PROTOCOL_PREFIXES", "is_protocol_line", "is_shown", "parse_coll_marker", "parse_dep"]
_TRACE_RE = re.compile(r"^\++ ")          # `+ cmd`, `++ nproc`, `+++ …` (nested set -x)
_BUFFER_RE = re.compile(r"^\s*(?:rank\s+\d+\s+)?(?:sendbuff|recvbuff)\s*=")
# FlagCX's own per-size verdict with -p 1 (`rank 0 all-reduce correctness = 1`): recorded as a
# check; only a wrong one (= 0) is worth a person's eye while it runs
_VERDICT_OK_RE = re.compile(r"^\s*(?:rank\s+\d+\s+)?[\w-]+ correctness\s*=\s*1\s*$")
_SWEEP_RE = re.compile(r"^\s*#(?:\s*$|\s*datatype:)")


def is_protocol_line(line: str) -> bool:
    """True for the stage protocol and bash traces: the one place that decides it."""
    s = line.rstrip("\r\n")
    return s.startswith(PROTOCOL_PREFIXES) or bool(_TRACE_RE.match(s))


def is_shown(line: str) -> bool:
    """A line worth a person's eye: not protocol, not blank, not a `-p 1` buffer dump
    (sendbuff = …/recvbuff = …, checked and recorded, never read off the screen) nor a passing
    per-size verdict (`rank 0 all-reduce correctness = 1`), not the `#`
    sweep header (the perf table shows datatype and op)."""
    from ..results.parsers import strip_prefix
    if not line.strip() or is_protocol_line(line):
        return False
    s = strip_prefix(line)
    return not (_BUFFER_RE.match(s) or _SWEEP_RE.match(s) or _VERDICT_OK_RE.match(s))

