"""Performance references, ReFrame style: per platform, per collective, per message size, a value
with relative tolerances — (value, lower, upper, unit), e.g. (144.18, -0.10, None, "GB/s") means
"at least 144.18 × 0.90 GB/s, no upper bound".

The defaults are the runbook's own measurements (§三.1(7), 2 ranks, FlagCX allreduce bus
bandwidth). A profile may pass its own dict of the same shape to override or extend them:

    {"allreduce": {"4G": [150.0, -0.05, null, "GB/s"], "1G": 140.0, "16M": null}}

A size key is an int or a string like "128K", "4G", "4GiB" (K/M/G = 1024ⁿ, as FlagCX's -b/-e). A
value may be a number (tolerance -10 %, no upper bound), a list [value, lower, upper, unit], or a
dict {value, lower, upper, unit, metric, nranks}; null removes a default.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import difflib

from .. import sizes
from ..errors import ProfileError, UsageError
from .parsers import COLLECTIVES, Check, normalize_coll

DEFAULT_LOWER = -0.10


# each metric's direction and unit: a bandwidth is better higher (GB/s), a time lower (s)
METRICS: dict[str, tuple[str, str]] = {"busbw": ("higher", "GB/s"), "algbw": ("higher", "GB/s"),
                                       "time_s": ("lower", "s")}
DEFAULT_UPPER_TIME = 0.10


@dataclass(frozen=True)
class Reference:
    value: float
    lower: float | None = DEFAULT_LOWER
    upper: float | None = None
    unit: str = "GB/s"
    metric: str = "busbw"  # busbw | algbw | time_s
    nranks: int | None = None  # the rank count the value was measured with (None: any)

    @property
    def direction(self) -> str:
        """"higher" (bandwidth: a smaller value is worse) or "lower" (time: a larger one is)."""
        return METRICS.get(self.metric, ("higher", ""))[0]

    def bounds(self) -> tuple[float | None, float | None]:
        lo = self.value * (1 + self.lower) if self.lower is not None else None
        hi = self.value * (1 + self.upper) if self.upper is not None else None
        return lo, hi


def _r(v: float) -> Reference:
    return Reference(v, DEFAULT_LOWER, None, "GB/s", "busbw", 2)


M, G = sizes.MiB, sizes.GiB
# Runbook §三.1(7): `mpirun -np 2 ./test_allreduce -b 128K -e 4G -f 2 -p 1`, busbw rounded to 0.01.
DEFAULTS: dict[str, dict[str, dict[int, Reference]]] = {
    "nvidia-a800": {"allreduce": {16 * M: _r(98.39), 256 * M: _r(132.23), 1 * G: _r(141.31), 4 * G: _r(144.18)}},
    "metax-c550": {"allreduce": {16 * M: _r(35.21), 256 * M: _r(47.19), 1 * G: _r(47.31), 4 * G: _r(47.33)}},
    "kunlunxin-p800": {"allreduce": {16 * M: _r(19.64), 256 * M: _r(20.01), 1 * G: _r(20.02), 4 * G: _r(20.03)}},
}
ALIASES = {
    "a800": "nvidia-a800",
    "nvidia_a800": "nvidia-a800",
    "c550": "metax-c550",
    "muxi-c550": "metax-c550",
    "metax_c550": "metax-c550",
    "p800": "kunlunxin-p800",
    "kunlunxin_p800": "kunlunxin-p800",
    "kunlunxin-p800-devices": "kunlunxin-p800",
}

# sizes: the one vocabulary (sizes.py); a message size must be positive and whole
human_size, short_size = sizes.human_size, sizes.short_size
_SIZE_HINTS = {"negative": "a positive number of bytes, or 128K / 4M / 1G",
               "zero": "a positive number of bytes, or 128K / 4M / 1G",
               "syntax": "a number of bytes, or 128K / 4M / 1G (1024-based)",
               "value": "it must come to a positive whole number of bytes"}


def parse_size(s: int | str) -> int:
    """4096, "4096", "128K", "4G", "4GiB", "1.5M" → bytes (K/M/G/T = 1024ⁿ)."""
    try:
        return sizes.parse_size(s, "message size", positive=True, whole=True)
    except sizes.SizeError as e:
        raise UsageError(f"bad message size {s!r}", hint=_SIZE_HINTS.get(e.kind)) from None


def canonical_platform(platform: str | None) -> str | None:
    if not platform:
        return None
    p = platform.strip().lower()
    return ALIASES.get(p, p)


_REF_HINT = "use a number (GB/s, at most 10 % below), [value, lower, upper, unit] or {value: …, lower: …, upper: …}"


def _coerce(v: Any, where: str, exc: type = UsageError) -> Reference | None:
    if v is None:
        return None
    given: set[str] = set()
    try:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            ref = Reference(float(v))
        elif isinstance(v, (list, tuple)):
            if not 1 <= len(v) <= 4:
                raise ValueError("a list must be [value, lower, upper, unit]")
            ref = Reference(*v)
            given = set(("value", "lower", "upper", "unit")[:len(v)])
        elif isinstance(v, dict):
            unknown = set(v) - {"value", "lower", "upper", "unit", "metric", "nranks"}
            if unknown:
                raise ValueError(f"unknown keys {sorted(unknown)}")
            if "value" not in v:
                raise ValueError("missing 'value'")
            ref = Reference(**v)
            given = set(v)
        else:
            raise ValueError(f"{v!r} is not a number, a list or a mapping")
        for k in ("value", "lower", "upper"):
            x = getattr(ref, k)
            if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float))):
                raise ValueError(f"{k} {x!r} is not a number")
        if ref.nranks is not None and (isinstance(ref.nranks, bool) or not isinstance(ref.nranks, int) or ref.nranks < 1):
            raise ValueError(f"nranks {ref.nranks!r} is not a positive whole number")
        ref = replace(ref, value=float(ref.value),
                      lower=None if ref.lower is None else float(ref.lower),
                      upper=None if ref.upper is None else float(ref.upper))
    except (TypeError, ValueError) as e:
        raise exc(f"bad reference at {where}: {e}", hint=_REF_HINT) from None
    if ref.metric not in METRICS:
        raise exc(f"bad reference at {where}: metric {ref.metric!r} must be busbw, algbw or time_s",
                  hint="metric: busbw (the default), algbw or time_s")
    direction, unit = METRICS[ref.metric]
    if "unit" not in given:
        ref = replace(ref, unit=unit)
    elif ref.unit != unit:
        raise exc(f"bad reference at {where}: unit {ref.unit!r} does not fit metric {ref.metric} "
                  f"(measured in {unit})", hint=f"write unit: {unit}, or leave it out")
    if direction == "lower":
        # a time: lower is better, so the bound that can fail is the upper one
        if "lower" not in given:
            ref = replace(ref, lower=None)
        if "upper" not in given:
            ref = replace(ref, upper=DEFAULT_UPPER_TIME)
    for k in ("lower", "upper"):
        x = getattr(ref, k)
        if x is not None and not math.isfinite(x):
            raise exc(f"bad reference at {where}: {k} {x} is not a finite number",
                      hint="a relative fraction such as -0.10 (lower) or 0.20 (upper), or null")
    if not math.isfinite(ref.value) or ref.value <= 0:
        raise exc(f"bad reference at {where}: value must be a positive number", hint=_REF_HINT)
    if ref.lower is not None and not (-1.0 <= ref.lower <= 0.0):
        raise exc(f"bad reference at {where}: lower {ref.lower} must be a relative fraction in [-1, 0]",
                  hint="e.g. -0.10 for 'at most 10 % below'")
    if ref.upper is not None and ref.upper < 0:
        raise exc(f"bad reference at {where}: upper {ref.upper} must be ≥ 0 (a relative fraction)",
                  hint="e.g. 0.20 for 'at most 20 % above', or null for no upper bound")
    worse = "lower" if direction == "higher" else "upper"
    if getattr(ref, worse) is None:
        raise exc(f"bad reference at {where}: {ref.metric} is better {direction}, so it needs a "
                  f"{worse} bound (without one it can never fail)",
                  hint=("e.g. lower: -0.10 (at most 10 % below)" if worse == "lower" else
                        "e.g. upper: 0.10 (at most 10 % slower)"))
    return ref


def _validated(obj: Any, where: str, exc: type) -> dict[str, dict[int, Reference | None] | None]:
    """{collective: {size: Reference | None (removes a default)} | None (removes the collective)}; every
    key and value checked — one bad entry raises `exc` naming it, never drops the table."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise exc(f"{where} must be a mapping {{collective: {{size: reference}}}}, got {type(obj).__name__}",
                  hint="e.g. references: {allreduce: {4G: 144.18, 1G: [141.3, -0.05]}}")
    out: dict[str, dict[int, Reference | None] | None] = {}
    for coll, table in obj.items():
        c = normalize_coll(str(coll))
        if c not in COLLECTIVES:
            near = difflib.get_close_matches(c, COLLECTIVES, n=1)
            raise exc(f"{where}.{coll}: unknown collective",
                      hint=(f"did you mean {near[0]}? " if near else "") + "one of: " + ", ".join(COLLECTIVES))
        if table is None:
            out[c] = None
            continue
        if not isinstance(table, dict):
            raise exc(f"{where}.{coll} must be a mapping {{size: reference}}, got {type(table).__name__}",
                      hint="e.g. {4G: 144.18, 128K: [4.0, -0.1, null, GB/s]}")
        if out.get(c) is None:
            out[c] = {}
        cur = out[c]
        assert cur is not None
        for size, v in table.items():
            try:
                n = parse_size(size)
            except UsageError as e:
                raise exc(f"{where}.{coll}.{size}: {e.message}", hint=e.hint) from None
            cur[n] = _coerce(v, f"{where}.{coll}.{size}", exc)
    return out


def validate_references(obj: Any, where: str = "references") -> dict[str, dict[int, Reference | None] | None]:
    """Check a profile's `references:` block entry by entry; raise ProfileError (exit 2) naming the
    first bad key (`<where>.allreduce.2K`) and the fix. Returns the normalised table (None = remove)."""
    return _validated(obj, where, ProfileError)


def load_references(platform: str | None, overrides: dict[str, Any] | None = None) -> dict[str, dict[int, Reference]]:
    """The platform's defaults (none for an unknown platform) with `overrides` applied on top. A bad
    entry raises UsageError naming it (the whole table is refused, never partly applied)."""
    base = DEFAULTS.get(canonical_platform(platform) or "", {})
    refs: dict[str, dict[int, Reference]] = {c: dict(t) for c, t in base.items()}
    if overrides is None:
        return refs
    for c, table in _validated(overrides, "references", UsageError).items():
        if table is None:
            refs.pop(c, None)
            continue
        cur = refs.setdefault(c, {})
        for n, ref in table.items():
            if ref is None:
                cur.pop(n, None)
            else:
                cur[n] = ref
        if not cur:
            refs.pop(c)
    return refs


def primary_sweep(sweeps: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The sweep references and plots use: float/sum (or the header-less one), else the first with rows."""
    with_rows = [s for s in sweeps or [] if s.get("rows")]
    for s in with_rows:
        if s.get("datatype") in (None, "float", "float32") and s.get("op") in (None, "sum", "none"):
            return s
    return with_rows[0] if with_rows else None


def _fmt(v: float, metric: str) -> str:
    return f"{v:.2f}" if metric != "time_s" else f"{v:.6g}"


def evaluate(perf_metrics: dict[str, Any], refs: dict[str, dict[int, Reference]]) -> list[Check]:
    """One Check per (collective, size) reference for every collective the metrics hold: False
    when outside the tolerance, None when the size was not measured or the reference was taken
    with another rank count."""
    checks: list[Check] = []
    colls = (perf_metrics or {}).get("collectives") or {}
    for coll, table in refs.items():
        c = colls.get(coll)
        if c is None:
            if table:
                sizes = ", ".join(short_size(s) for s in sorted(table))
                checks.append(Check(f"ref {coll}", None, f"{coll} was not run: its {len(table)} reference(s) ({sizes}) not checked"))
            continue
        sweep = primary_sweep(c.get("sweeps") or [])
        rows = {r["size"]: r for r in (sweep or {}).get("rows", [])}
        n = c.get("nranks")
        for size in sorted(table):
            ref = table[size]
            hs = human_size(size)
            name = f"ref {coll} {ref.metric} {short_size(size)}"
            if ref.nranks and n and ref.nranks != n:
                checks.append(Check(name, None, f"reference is for {ref.nranks} ranks, this run had {n}"))
                continue
            row = rows.get(size)
            v = row.get(ref.metric) if row else None
            if v is None:
                checks.append(Check(name, None, f"{coll} {hs} not measured"))
                continue
            lo, hi = ref.bounds()
            what = f"{coll} {hs} {ref.metric} {_fmt(v, ref.metric)} {ref.unit}"
            if lo is not None and v < lo:
                checks.append(Check(name, False, f"{what} < {ref.value:g} × {1 + ref.lower:.2f}"))
            elif hi is not None and v > hi:
                checks.append(Check(name, False, f"{what} > {ref.value:g} × {1 + ref.upper:.2f}"))
            else:
                lo_s = f"{ref.value:g} × {1 + ref.lower:.2f}" if ref.lower is not None else (
                    "0" if ref.direction == "lower" else "-∞")
                hi_s = f"{ref.value:g} × {1 + ref.upper:.2f}" if ref.upper is not None else "∞"
                checks.append(Check(name, True, f"{what} within [{lo_s}, {hi_s}]"))
    return checks
