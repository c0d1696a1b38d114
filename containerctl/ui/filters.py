"""Which lines of a stage's output are for people. Stage scripts speak a small line protocol to
containerctl (`DEP …`, `=== containerctl … ===`, `CCTL_…`, `FLAGCX_PROBE …`, `FLAGCX_COMMIT=…`)
and bash traces their commands (`+ make …`, `++ nproc`); those lines always go to the stage log
and never to the screen (except with --verbose)."""
from __future__ import annotations

import re

PROTOCOL_PREFIXES = ("DEP ", "=== containerctl ", "CCTL_", "FLAGCX_PROBE ", "FLAGCX_COMMIT=")
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


_DEP_RE = re.compile(r"^DEP\s+(\S+)\s+status=(\S+)\s*(.*)$")


def parse_dep(line: str) -> tuple[str, str, str] | None:
    """`DEP mpi status=found home=/usr … flavour=openmpi` → ("mpi", "found", "home=/usr …")."""
    m = _DEP_RE.match(line.strip())
    return (m.group(1), m.group(2), m.group(3).strip()) if m else None


_COLL_RE = re.compile(r"^=== containerctl (end )?coll=(\S+)((?:\s+\w+=\S*)*)\s*===\s*$")


def parse_coll_marker(line: str) -> tuple[str, str, dict[str, str]] | None:
    """`=== containerctl coll=allreduce nranks=2 ===` → ("start", "allreduce", {"nranks": "2"});
    `=== containerctl end coll=allreduce rc=0 ===` → ("end", "allreduce", {"rc": "0"})."""
    m = _COLL_RE.match(line.strip())
    if not m:
        return None
    kv = dict(p.split("=", 1) for p in m.group(3).split())
    return ("end" if m.group(1) else "start"), m.group(2), kv
