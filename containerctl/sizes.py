"""Sizes, the one vocabulary: `128K`, `4G`, `8MiB`, `100gb`, 4096 ↔ bytes, and bytes → text.

Multiples are binary (K = 1024, as docker's --shm-size and FlagCX's -b/-e read them). The unit
letter (K, M, G or T, any case) may be followed by `i`, `b`, `B`, `ib`, `iB`, `IB` or `Ib`
(docker's spellings, less a lone `I`), and a number without a unit is bytes. Whitespace around
the number and between it and the unit is allowed.

    parse_size("4G") == 4 << 30            profiles (shm_size, ulimits, perf -b/-e), runspec,
    parse_size("1.5M", whole=True)         doctor; results.references (message-size keys)
    human_size(131072) == "128 KiB"        exact multiples only, else bytes
    short_size(131072) == "128K"           FlagCX's -b/-e spelling
    approx_size(1.5 * 2**30) == "1.5 GiB"  rounded to one decimal (free space, memory)

Callers keep their own policy: a profile takes 0 and truncates "1.5" to 1 byte, as docker does;
a message size must be positive and whole (`positive=True, whole=True`). Every refusal is a
SizeError (a ValueError, so pydantic validators turn it into a located error) whose str() is the
one-line cause, `hint` the fix and `kind` what was wrong: "type" (a bool), "negative" or "zero"
(an integer), "syntax" (not a size), "value" (a text that does not come to an allowed number).
"""
from __future__ import annotations

import re
from typing import Union

KiB = 1024
MiB = KiB ** 2
GiB = KiB ** 3
TiB = KiB ** 4

# the union of the two grammars this replaces (profiles: `i?[bB]?`, references: `(?:i?b)?` in any
# case): every spelling either accepted stays accepted, and a lone capital `I` stays refused
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i|[iI]?[bB])?\s*$")
_MULT = {"": 1, "k": KiB, "m": MiB, "g": GiB, "t": TiB}
_UNITS = ((TiB, "TiB", "T"), (GiB, "GiB", "G"), (MiB, "MiB", "M"), (KiB, "KiB", "K"))

SYNTAX_HINT = "use a number with K, M, G or T (e.g. 64G)"


class SizeError(ValueError):
    def __init__(self, message: str, kind: str, hint: str = SYNTAX_HINT):
        super().__init__(message)
        self.kind = kind
        self.hint = hint


def has_unit(text: str) -> bool:
    """Whether a text names a unit letter (K, M, G or T): `8M` is a size, `65535` a count."""
    return re.search(r"[kKmMgGtT]", text) is not None


def parse_size(value: Union[str, int, float], what: str = "size", *, positive: bool = False,
               whole: bool = False) -> int:
    """Bytes from an int (as is) or a text like '128G', '64g', '100gb', '8MiB', '1.5M', '4096'.

    A fractional result is truncated ('0.3K' → 307) unless `whole`; 0 is allowed unless
    `positive`. Raises SizeError."""
    if isinstance(value, bool):
        raise SizeError(f"{what} must be a size like 64G, got {value!r}", "type")
    if isinstance(value, int):
        if value < 0:
            raise SizeError(f"{what} must not be negative", "negative",
                            "a number of bytes, or a size like 64G")
        if positive and value == 0:
            raise SizeError(f"{what} must be above 0", "zero",
                            "a number of bytes, or a size like 64G")
        return value
    m = _SIZE_RE.match(str(value))
    if not m:
        raise SizeError(f"{what} {value!r} is not a size: {SYNTAX_HINT}", "syntax")
    n = float(m.group(1)) * _MULT[m.group(2).lower()]
    if (whole and n != int(n)) or (positive and n <= 0):
        raise SizeError(f"{what} {value!r} does not come to a positive whole number of bytes",
                        "value", "a whole number of bytes above 0, e.g. 1536K")
    return int(n)


def human_size(n: int) -> str:
    """131072 → "128 KiB", 4294967296 → "4 GiB", 1000 → "1000 B" (exact multiples only)."""
    for f, long, _ in _UNITS:
        if n >= f and n % f == 0:
            return f"{n // f} {long}"
    return f"{n} B"


def short_size(n: int) -> str:
    """131072 → "128K", 4294967296 → "4G" (FlagCX's -b/-e spelling), 1000 → "1000"."""
    for f, _, short in _UNITS:
        if n >= f and n % f == 0:
            return f"{n // f}{short}"
    return str(n)


def approx_size(n: Union[int, float]) -> str:
    """1610612736 → "1.5 GiB", 2**30 → "1 GiB", 1000 → "1000 B": the largest unit, one decimal."""
    n = float(n)
    for f, long, _ in _UNITS:
        if abs(n) >= f:
            v = n / f
            return f"{v:.0f} {long}" if v == int(v) else f"{v:.1f} {long}"
    return f"{int(n)} B"
