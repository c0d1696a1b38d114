"""The stage scripts' line protocol: every line a stage script prints for containerctl to read,
named once. The shell side is `cctl_mark KIND ARG…` (and `cctl_tag KIND [RANK]` for line tags)
in stages/defs/common.sh; this module is the Python side that reads them (stages/checks.py,
ui/filters.py, ui/model.py, cluster/run.py, the runner). tests/test_markers.py runs common.sh's
emitter for every kind and parses its output here, and fails when a stage def spells a marker by
hand.

Three shapes:
- block markers `=== containerctl <kind> k=v … ===` that cut a stage's output into parts
  (a collective's run, a unit-test binary's run and its XML);
- line markers `<PREFIX>…` that carry one fact (a dependency, the commit, a perf binary);
- line tags `<TAG>` put before every line of a file dumped into the output (a rank's output, a
  gtest XML), so the file's lines can be told from everything around them.
"""
from __future__ import annotations

import re

from ..flagcx.interface import PROBE_PREFIX   # flagcx/probe.sh: FLAGCX_PROBE <key> <value>

# -- block markers ---------------------------------------------------------------------------
BLOCK_OPEN = "=== containerctl "
BLOCK_CLOSE = " ==="
# `cctl_mark <kind> …` → `=== containerctl <kind> … ===`, except `begin`, whose line has no kind
# word (`=== containerctl coll=allreduce nranks=2 ===`, a collective's run starts)
BEGIN, END = "begin", "end"
UT_KINDS = ("ut-build", "ut-skip", "ut-run", "ut-end", "ut-xml", "ut-xml-end", "ut-missing")
UNITTEST = "unittest"                 # `=== containerctl unittest none ===`: no test/unittest
BLOCK_KINDS = (BEGIN, END, UNITTEST) + UT_KINDS
# the train asset (stages/assets/flagscale_train.py, Python) prints these two itself
TRAIN_LOG = "=== containerctl train log ==="
TRAIN_LOG_TAIL = "=== containerctl train log tail ==="

# -- line markers: kind → the line's prefix ----------------------------------------------------
LINE_PREFIX = {
    "dep": "DEP ",                    # DEP <name> status=found|missing|installed|absent|n/a k=v …
    "commit": "FLAGCX_COMMIT=",       # FLAGCX_COMMIT=<sha or source fingerprint>
    "nccl": "NCCL_VERSION=",          # NCCL_VERSION=<v> CCL_HOME=<dir>
    "torch": "TORCH_VERSION=",        # TORCH_VERSION=<torch.__version__>
    "mpich": "CCTL_MPICH ",           # hetero-build: CCTL_MPICH version=… home=…
    "bin": "CCTL_BIN ",               # hetero-build: CCTL_BIN coll=… layout=… wdir=… path=… | missing=…
    "stdbuf": "CCTL_STDBUF ",         # hetero-build: CCTL_STDBUF <path of stdbuf>
    "rankout": "CCTL_RANKOUT ",       # hetero-build: CCTL_RANKOUT <path of rankout.sh>
    "hostenv": "CCTL_HOSTENV ",       # hetero-build: CCTL_HOSTENV K=V (one of the ranks' environment)
}
# these two are facts for people as well: their lines stay on the screen (not protocol)
SHOWN_KINDS = ("nccl", "torch")
TRAIN_EVENT = "CCTL_TRAIN "           # the train asset: CCTL_TRAIN <what> k=v …

# -- line tags -----------------------------------------------------------------------------------
RANK_TAG = "CCTL_RANK{rank}| "        # dump_ranks: every line of rank <r>'s own output file
XML_TAG = "CCTL_XML| "                # the unittest stage: every line of a gtest XML
TRAIN_FLAGCX_TAG = "CCTL_FLAGCX| "    # the train asset: FlagCX's lines of the training log
TRAIN_TAIL_TAG = "CCTL_TAIL| "        # the train asset: the training log's tail

# every line that starts so is for containerctl, never for a person's screen (ui/filters.py);
# `CCTL_` covers the CCTL_* markers and tags above
PROTOCOL_PREFIXES = (LINE_PREFIX["dep"], BLOCK_OPEN, "CCTL_", PROBE_PREFIX, LINE_PREFIX["commit"])

_KV = re.compile(r"(\w+)=(\S+)")


def kv(text: str) -> dict[str, str]:
    """`a=1 b=x` → {"a": "1", "b": "x"} (what a marker's key=value words carry)."""
    return dict(_KV.findall(text))


def block_line(kind: str, *args: str) -> str:
    """What `cctl_mark KIND ARG…` prints for a block marker (tests and in-Python emitters)."""
    if kind not in BLOCK_KINDS:
        raise ValueError(f"not a block marker kind: {kind}")
    words = list(args) if kind == BEGIN else [kind, *args]
    return BLOCK_OPEN + " ".join(words) + BLOCK_CLOSE


def mark_line(kind: str, *args: str) -> str:
    """What `cctl_mark KIND ARG…` prints (without the newline)."""
    if kind in LINE_PREFIX:
        return LINE_PREFIX[kind] + " ".join(args)
    return block_line(kind, *args)


def rank_tag(rank: int | str) -> str:
    return RANK_TAG.format(rank=rank)


# -- the collective markers of the perf and hetero stages --------------------------------------
COLL_BEGIN_RE = re.compile(r"^=== containerctl coll=(\w+)(?: nranks=(\d+))?(?: missing=(\S+))? ===$",
                           re.M)
COLL_END_RE = re.compile(r"^=== containerctl end coll=(\w+) rc=(\d+) ===$", re.M)
# the live view's reading of one line: either marker, any key=value words
COLL_LINE_RE = re.compile(r"^=== containerctl (end )?coll=(\S+)((?:\s+\w+=\S*)*)\s*===\s*$")


def parse_coll_marker(line: str) -> tuple[str, str, dict[str, str]] | None:
    """`=== containerctl coll=allreduce nranks=2 ===` → ("start", "allreduce", {"nranks": "2"});
    `=== containerctl end coll=allreduce rc=0 ===` → ("end", "allreduce", {"rc": "0"})."""
    m = COLL_LINE_RE.match(line.strip())
    if not m:
        return None
    words = dict(p.split("=", 1) for p in m.group(3).split())
    return ("end" if m.group(1) else "start"), m.group(2), words


def split_colls(text: str) -> dict[str, str]:
    """Per-collective slices of a perf stage's output (from one begin marker to the next)."""
    out: dict[str, str] = {}
    marks = list(COLL_BEGIN_RE.finditer(text))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out[m.group(1)] = text[m.end():end]
    return out


def coll_ends(text: str) -> dict[str, int]:
    """collective → the launcher's exit code its end marker reports."""
    return {m.group(1): int(m.group(2)) for m in COLL_END_RE.finditer(text)}


def coll_missing(text: str) -> dict[str, str]:
    """collective → the perf binary that was not built (`coll=X missing=PATH`)."""
    return {m.group(1): m.group(3) for m in COLL_BEGIN_RE.finditer(text) if m.group(3)}


def strip_coll_ends(chunk: str) -> str:
    return COLL_END_RE.sub("", chunk)


# -- rank tags ---------------------------------------------------------------------------------
RANK_LINE_RE = re.compile(r"^CCTL_RANK(\d+)\| ?(.*)$", re.M)


def rank_lines(chunk: str) -> dict[int, list[str]]:
    """rank → its lines, from the `CCTL_RANK<r>| ` tagged dump (empty: no rank files dumped)."""
    ranks: dict[int, list[str]] = {}
    for m in RANK_LINE_RE.finditer(chunk):
        ranks.setdefault(int(m.group(1)), []).append(m.group(2))
    return ranks


# -- the unittest stage's markers --------------------------------------------------------------
UT_MARK_RE = re.compile(r"^=== containerctl (ut-[\w-]+|unittest)(.*?) ===$", re.M)
UT_NONE_RE = re.compile(r"^=== containerctl unittest none ===$", re.M)


def untag_xml(body: str) -> str:
    """A gtest XML dumped with `CCTL_XML| ` before every line → the XML."""
    return "\n".join(ln[len(XML_TAG):] if ln.startswith(XML_TAG) else ln for ln in body.splitlines())


# -- line markers ------------------------------------------------------------------------------
DEP_RE = re.compile(r"^DEP\s+(\S+)\s+status=(\S+)\s*(.*)$")


def parse_dep(line: str) -> tuple[str, str, str] | None:
    """`DEP mpi status=found home=/usr … flavour=openmpi` → ("mpi", "found", "home=/usr …")."""
    m = DEP_RE.match(line.strip())
    return (m.group(1), m.group(2), m.group(3).strip()) if m else None


def is_dep_line(line: str) -> bool:
    return line.startswith(LINE_PREFIX["dep"])


def split_dep(line: str) -> tuple[str, dict[str, str]]:
    """The deps parser's reading of a `DEP …` line: (name, its key=value words)."""
    _, name, rest = line.split(" ", 2) if line.count(" ") >= 2 else (line, line[4:], "")
    return name, kv(rest)


def _value_re(kind: str) -> re.Pattern[str]:
    return re.compile(r"^" + re.escape(LINE_PREFIX[kind]) + r"(\S+)", re.M)


COMMIT_RE = _value_re("commit")
NCCL_RE = _value_re("nccl")
TORCH_RE = _value_re("torch")


def first_value(kind: str, text: str) -> str | None:
    """The first word after a value marker's prefix (`FLAGCX_COMMIT=`, `NCCL_VERSION=`,
    `TORCH_VERSION=`) in a stage's output; None where it was not printed."""
    m = {"commit": COMMIT_RE, "nccl": NCCL_RE, "torch": TORCH_RE}[kind].search(text)
    return m.group(1) if m else None


def line_value(kind: str, line: str) -> str | None:
    """The rest of one line after a line marker's prefix; None when the line is not that marker."""
    p = LINE_PREFIX[kind]
    return line[len(p):] if line.startswith(p) else None
