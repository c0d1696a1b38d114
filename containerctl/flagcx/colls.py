"""FlagCX's collectives: one list, one spelling, one place.

The spelling is FlagCX's own: a collective's perf test is `test/perf/test_<name>.cpp` (v0.10) or
`test/perf/host_api/test_<name>.cpp` (v0.13, main), built as `<prefix><name>` (`test_` or
`perf_`, as the checkout's probe found the prefix). Every list of collectives in containerctl —
what a perf sweep may name, the default sweep, the busbw factor the parser checks against, the
collectives a references table may key — is this table.

Aliases: `coresendrecv` and `ipcsendrecv` are how containerctl's records and references tables
spelled the two before issue 22 (every underscore dropped); they are read as the FlagCX name
wherever a user could have written them (a references table, `report|import --coll`).
"""
from __future__ import annotations

from dataclasses import dataclass


# busbw = algbw × factor(n ranks), as FlagCX's perf tests and nccl-tests define it
BUS_FACTORS = {
    "2(n-1)/n": lambda n: 2.0 * (n - 1) / n,
    "(n-1)/n": lambda n: (n - 1) / n,
    "1": lambda n: 1.0,
}


@dataclass(frozen=True)
class Coll:
    name: str          # FlagCX's name: test_<name>.cpp, binary <prefix><name>
    bus: str           # a key of BUS_FACTORS
    default: bool      # in the default sweep (`--all-colls`)

    @property
    def source(self) -> str:
        """The perf test's source file in a FlagCX checkout."""
        return f"test_{self.name}.cpp"

    def binary(self, prefix: str) -> str:
        """The perf binary's name, for the checkout's prefix (`test_`, `perf_`)."""
        return f"{prefix}{self.name}"

    def factor(self, nranks: int) -> float:
        return BUS_FACTORS[self.bus](nranks)


# FlagCX's order (test/perf/host_api); the default sweep is the nine the runbook runs
COLLS: dict[str, Coll] = {c.name: c for c in (
    Coll("allreduce", "2(n-1)/n", True),
    Coll("allgather", "(n-1)/n", True),
    Coll("reducescatter", "(n-1)/n", True),
    Coll("alltoall", "(n-1)/n", True),
    Coll("alltoallv", "(n-1)/n", False),
    Coll("broadcast", "1", True),
    Coll("reduce", "1", True),
    Coll("sendrecv", "1", True),
    Coll("gather", "(n-1)/n", True),
    Coll("scatter", "(n-1)/n", True),
    Coll("core_sendrecv", "1", False),
    Coll("ipc_sendrecv", "1", False),
    Coll("put", "1", False),
    Coll("get", "1", False),
)}
KNOWN_COLLS = tuple(COLLS)
DEFAULT_COLLS = tuple(n for n, c in COLLS.items() if c.default)

# containerctl's own earlier spelling (see the module's docstring) → FlagCX's
ALIASES = {"coresendrecv": "core_sendrecv", "ipcsendrecv": "ipc_sendrecv"}


def _squash(s: str) -> str:
    return s.replace("_", "").replace("-", "")


# a name with its underscores and dashes dropped (`all_reduce_perf`, `AllReduce`) → FlagCX's
_SQUASHED = {**{_squash(n): n for n in COLLS}, **ALIASES, "reducescat": "reducescatter"}


def normalize(coll: str) -> str:
    """'all_reduce_perf', 'test_allreduce', 'perf_core_sendrecv', 'AllReduce', 'coresendrecv' →
    FlagCX's name ('allreduce', 'core_sendrecv'). A name that is no known collective comes back
    lower-cased with its prefixes, `_perf`, underscores and dashes dropped (for the message that
    refuses it)."""
    c = coll.strip().lower()
    for p in ("test_", "perf_", "./"):
        if c.startswith(p):
            c = c[len(p):]
    if c.endswith("_perf"):
        c = c[: -len("_perf")]
    if c in COLLS:
        return c
    c = _squash(c)
    return _SQUASHED.get(c, c)


def lookup(coll: str) -> Coll | None:
    """The collective a user's or a tool's name means (any spelling normalize reads), or None."""
    return COLLS.get(normalize(coll))
