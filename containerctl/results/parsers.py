"""Parsers for what the FlagCX test stages print, and the checks we can derive from it.

Pure functions over text: no I/O, no heavy imports (only `re`, `math`, `dataclasses`). The
formats are the ones the programs print, as recorded in the runbook and the FlagCX sources:

* FlagCX perf tests (`test_<coll>` ≤ v0.11, `perf_<coll>` ≥ v0.12): rank 0 prints one line per size,
  `Comm size: %zu bytes; Elapsed time: %lf sec; Algo bandwidth: %lf GB/s; Bus bandwidth: %lf GB/s`;
  from v0.13 each (datatype, op) sweep is headed by `#\\n# datatype: %s, op: %s\\n#`. With `-p 1`
  the older tests print `sendbuff = ` / `recvbuff = ` and the first floats of each buffer.
* nccl-tests tables (`size count type redop root | time algbw busbw #wrong` ×2) and footer.
* plugin/torch/example.py `rank R before/after allreduce ...` lines.
* Megatron/FlagScale iteration lines.

Lines may carry launcher prefixes (`[1,0]<stdout>:` from OpenMPI --tag-output, `[default3]:` from
torchrun, `[0] ` from MPICH -prepend-rank) and may be interleaved with FLAGCX INFO debug lines;
every parser searches for its own pattern and ignores the rest.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable

from ..errors import UsageError

# --------------------------------------------------------------------------------------------
# Common pieces
# --------------------------------------------------------------------------------------------

_FLOAT = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|inf(?:inity)?|nan)"

_PREFIX_RE = re.compile(
    r"^(?:\s*\[\d+,\d+\]<std(?:out|err)>:"  # OpenMPI --tag-output
    r"|\s*\[default\d+\]:"  # torchrun --tee
    r"|\s*\[rank\d+\]:"  # torchrun on error
    r"|\s*\[\d+\] )"  # MPICH -prepend-rank
)


def strip_prefix(line: str) -> str:
    """Remove launcher prefixes (possibly several) from the start of one line."""
    prev = None
    while prev != line:
        prev = line
        line = _PREFIX_RE.sub("", line, count=1)
    return line


def _lines(text: str) -> list[str]:
    return [strip_prefix(l) for l in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]


def _float(s: str) -> float:
    return float(s)


@dataclass
class Check:
    """One verdict. ok: True = passed, False = failed, None = could not be decided (no data, or no
    way to derive an expectation) — reported as skipped, never as a pass."""

    name: str
    ok: bool | None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Check":
        return cls(str(d.get("name", "")), d.get("ok"), str(d.get("detail", "") or ""))


# --------------------------------------------------------------------------------------------
# FlagCX perf output
# --------------------------------------------------------------------------------------------


@dataclass
class PerfRow:
    size: int
    time_s: float
    algbw: float
    busbw: float


@dataclass
class PerfSweep:
    datatype: str | None
    op: str | None
    rows: list[PerfRow] = field(default_factory=list)


PERF_LINE_RE = re.compile(
    r"Comm size:\s*(\d+)\s*bytes;\s*Elapsed time:\s*(" + _FLOAT + r")\s*sec;\s*"
    r"Algo bandwidth:\s*(" + _FLOAT + r")\s*GB/s;\s*Bus bandwidth:\s*(" + _FLOAT + r")\s*GB/s",
    re.IGNORECASE,
)
_SWEEP_HDR_RE = re.compile(r"#\s*datatype:\s*([^,\s]+)\s*,\s*op:\s*(\S+)")


def parse_flagcx_perf(text: str) -> list[PerfSweep]:
    """All sweeps in a FlagCX perf output, in order.

    A `# datatype: X, op: Y` header (≥ v0.13) opens a new sweep. Without headers, a size that does
    not grow opens a new sweep too (two runs concatenated in one log). Empty sweeps (a header
    followed by nothing, e.g. a crash) are kept so the caller can see them.
    """
    sweeps: list[PerfSweep] = []
    cur: PerfSweep | None = None
    for line in _lines(text):
        h = _SWEEP_HDR_RE.search(line)
        if h:
            cur = PerfSweep(h.group(1), h.group(2), [])
            sweeps.append(cur)
            continue
        for m in PERF_LINE_RE.finditer(line):
            row = PerfRow(int(m.group(1)), _float(m.group(2)), _float(m.group(3)), _float(m.group(4)))
            if cur is None or (cur.rows and row.size <= cur.rows[-1].size):
                cur = PerfSweep(cur.datatype if cur else None, cur.op if cur else None, [])
                sweeps.append(cur)
            cur.rows.append(row)
    return sweeps


@dataclass
class BufferSample:
    size: int | None
    sendbuff: list[float]
    recvbuff: list[float]
    root: int | None = None


_BUF_RE = re.compile(r"(sendbuff|recvbuff)\s*=\s*((?:\s*" + _FLOAT + r")*)")
_ROOT_RE = re.compile(r"root rank is\s+(\d+)")


def parse_perf_buffers(text: str) -> list[BufferSample]:
    """`-p 1` buffer dumps, paired and tied to sizes.

    The ≤ v0.11 tests print `sendbuff` before the timed loop and `recvbuff` after the size line
    (allreduce, allgather), or per root before the size line (broadcast/reduce with `-r -1`, after a
    `root rank is R` line). A `sendbuff` opens a sample; a `recvbuff` closes the oldest open one
    (or makes a receive-only sample); a size line gives its size to every sample opened since the
    previous size line that has none yet.
    """
    samples: list[BufferSample] = []
    open_: list[BufferSample] = []  # waiting for a recvbuff
    unsized: list[BufferSample] = []  # waiting for a size
    root: int | None = None
    for line in _lines(text):
        r = _ROOT_RE.search(line)
        if r:
            root = int(r.group(1))
        for m in PERF_LINE_RE.finditer(line):
            size = int(m.group(1))
            for s in unsized:
                s.size = size
            unsized = []
        for m in _BUF_RE.finditer(line):
            values = [float(v) for v in m.group(2).split()]
            if m.group(1) == "sendbuff":
                s = BufferSample(None, values, [], root)
                samples.append(s)
                open_.append(s)
                unsized.append(s)
            else:
                if open_:
                    s = open_.pop(0)
                    s.recvbuff = values
                else:
                    s = BufferSample(None, [], values, root)
                    samples.append(s)
                    unsized.append(s)
    return samples


def _close(a: float, b: float, rel: float = 1e-5, abs_: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def _size_label(s: BufferSample) -> str:
    return f"size {s.size}" if s.size is not None else "size ?"


def _compare_samples(
    name: str,
    samples: list[BufferSample],
    expect,  # (sample) -> list[float] | None | str (reason it cannot be checked)
    what: str,
) -> Check:
    checked = 0
    bad: list[str] = []
    for s in samples:
        if not s.recvbuff:
            continue
        exp = expect(s)
        if exp is None or isinstance(exp, str):
            continue
        checked += 1
        if len(s.recvbuff) < len(exp):
            bad.append(f"{_size_label(s)}: {len(s.recvbuff)} recvbuff values, expected {len(exp)}")
            continue
        for i, (got, want) in enumerate(zip(s.recvbuff, exp)):
            if not _close(got, want):
                bad.append(f"{_size_label(s)}: recvbuff[{i}] = {got:g}, expected {want:g}")
                break
    if not checked:
        return Check(name, None, "no sendbuff/recvbuff pairs to check (run the test with -p 1)")
    if bad:
        more = f" (+{len(bad) - 3} more)" if len(bad) > 3 else ""
        return Check(name, False, f"{len(bad)}/{checked} buffers wrong: " + "; ".join(bad[:3]) + more)
    return Check(name, True, f"{checked} buffers checked: {what}")


def check_allreduce_sum(samples: list[BufferSample], nranks: int) -> Check:
    """Allreduce sum: every rank sends i%10, so rank 0 must receive sendbuff × nranks."""
    if nranks < 1:
        raise UsageError(f"nranks must be ≥ 1, got {nranks}")

    def expect(s: BufferSample):
        if not s.sendbuff:
            return "no sendbuff"
        return [v * nranks for v in s.sendbuff]

    return _compare_samples("allreduce sum buffers", samples, expect, f"recvbuff = sendbuff × {nranks}")


def _check_allgather(samples: list[BufferSample], nranks: int) -> Check:
    # ≤ v0.11 test_allgather: rank r puts r in the first element of its chunk; rank 0 prints the
    # first element of each of the nranks chunks of recvbuff → 0, 1, …, nranks-1.
    return _compare_samples(
        "allgather buffers",
        samples,
        lambda s: [float(r) for r in range(nranks)],
        f"recvbuff chunk heads = 0..{nranks - 1}",
    )


def _check_broadcast(samples: list[BufferSample], nranks: int) -> Check:
    # Two generations of test_broadcast exist: one fills every rank's buffer with i%10 (then rank 0
    # must receive what it printed as sendbuff), one fills it with the rank id (then sendbuff is
    # constant and rank 0 must receive the root's id).
    def expect(s: BufferSample):
        if not s.sendbuff:
            return "no sendbuff"
        if len(set(s.sendbuff)) == 1 and len(s.sendbuff) > 1:
            if s.root is None:
                return "constant sendbuff but no 'root rank is' line"
            return [float(s.root)] * len(s.recvbuff or s.sendbuff)
        return list(s.sendbuff)

    return _compare_samples("broadcast buffers", samples, expect, "recvbuff = root's data")


_NO_CHECK_WHY = {
    "reduce": "only the root receives the result and rank 0 prints its own buffer",
    "reducescatter": "rank 0 prints only its own shard; the expectation depends on the test version",
    "alltoall": "the printed slice does not identify the sender",
    "alltoallv": "the printed slice does not identify the sender",
    "gather": "only the root receives, and the printed buffer depends on the root",
    "scatter": "the printed slice depends on the root",
    "sendrecv": "the printed values do not identify the peer",
}


def check_collective(coll: str, samples: list[BufferSample], nranks: int) -> Check:
    """Buffer check for a collective: a real verdict for allreduce (sum), allgather and broadcast;
    `ok=None` ("no check for <coll>") for the others, where the printed slice does not determine the
    expected values."""
    c = normalize_coll(coll)
    if c == "allreduce":
        return check_allreduce_sum(samples, nranks)
    if c == "allgather":
        return _check_allgather(samples, nranks)
    if c == "broadcast":
        return _check_broadcast(samples, nranks)
    why = _NO_CHECK_WHY.get(c, "no expectation is known")
    return Check(f"{c} buffers", None, f"no check for {c}: {why}")


# --------------------------------------------------------------------------------------------
# Bus bandwidth factor
# --------------------------------------------------------------------------------------------

_BUS = {
    "allreduce": "2(n-1)/n",
    "allgather": "(n-1)/n",
    "reducescatter": "(n-1)/n",
    "alltoall": "(n-1)/n",
    "alltoallv": "(n-1)/n",
    "gather": "(n-1)/n",
    "scatter": "(n-1)/n",
    "broadcast": "1",
    "reduce": "1",
    "sendrecv": "1",
    "coresendrecv": "1",
    "ipcsendrecv": "1",
    "put": "1",
    "get": "1",
}
COLLECTIVES = tuple(_BUS)


def normalize_coll(coll: str) -> str:
    """'all_reduce_perf', 'test_allreduce', 'perf_allreduce', 'AllReduce' → 'allreduce'."""
    c = coll.strip().lower()
    for p in ("test_", "perf_", "./"):
        if c.startswith(p):
            c = c[len(p):]
    if c.endswith("_perf"):
        c = c[: -len("_perf")]
    c = c.replace("_", "").replace("-", "")
    if c == "reducescatter" or c == "reducescat":
        return "reducescatter"
    return c


def bus_factor(coll: str, nranks: int) -> float:
    """busbw / algbw as FlagCX and nccl-tests define it."""
    c = normalize_coll(coll)
    if nranks < 1:
        raise UsageError(f"nranks must be ≥ 1, got {nranks}")
    kind = _BUS.get(c)
    if kind is None:
        raise UsageError(f"unknown collective {coll!r}", hint="one of: " + ", ".join(COLLECTIVES))
    n = nranks
    if kind == "2(n-1)/n":
        return 2.0 * (n - 1) / n
    if kind == "(n-1)/n":
        return (n - 1) / n
    return 1.0


def check_bus_factor(sweeps: list[PerfSweep], coll: str, nranks: int) -> Check:
    """busbw/algbw must equal the collective's bus factor for nranks: catches a wrong --nranks on
    import and a perf binary that was not the collective we think it is."""
    f = bus_factor(coll, nranks)
    rows = [r for s in sweeps for r in s.rows if r.algbw and math.isfinite(r.algbw) and math.isfinite(r.busbw)]
    c = normalize_coll(coll)
    if not rows:
        return Check(f"{c} bus factor", None, "no rows with a non-zero algbw")
    bad = []
    for r in rows:
        # both values are printed with 6 decimals: allow that rounding plus 0.1 %
        if abs(r.busbw - r.algbw * f) > 1e-6 * (1 + f) + 1e-3 * abs(r.busbw):
            bad.append(r)
    if bad:
        r = bad[0]
        return Check(
            f"{c} bus factor",
            False,
            f"{len(bad)}/{len(rows)} rows have busbw/algbw ≠ {f:g} (the {c} factor for {nranks} ranks): "
            f"size {r.size} busbw {r.busbw:g} / algbw {r.algbw:g} = {r.busbw / r.algbw:.4f}",
        )
    return Check(f"{c} bus factor", True, f"busbw = algbw × {f:g} ({nranks} ranks) in all {len(rows)} rows")


# --------------------------------------------------------------------------------------------
# nccl-tests
# --------------------------------------------------------------------------------------------


@dataclass
class NcclTiming:
    time_us: float
    algbw: float
    busbw: float
    wrong: int | None  # None when the test ran with -c 0 ("N/A")


@dataclass
class NcclRow:
    size: int
    count: int
    type: str
    redop: str
    root: int | None
    oop: NcclTiming
    ip: NcclTiming


@dataclass
class NcclTestsResult:
    rows: list[NcclRow] = field(default_factory=list)
    out_of_bounds: int | None = None
    out_of_bounds_ok: bool | None = None
    avg_busbw: float | None = None
    test: str | None = None  # from "# Collective test starting: all_reduce_perf"

    @property
    def ok(self) -> bool | None:
        return self.out_of_bounds_ok


_NCCL_OOB_RE = re.compile(r"#\s*Out of bounds values\s*:\s*(\d+)\s+(OK|FAILED)", re.IGNORECASE)
_NCCL_AVG_RE = re.compile(r"#\s*Avg bus bandwidth\s*:\s*(" + _FLOAT + r")", re.IGNORECASE)
_NCCL_TEST_RE = re.compile(r"#\s*Collective test starting:\s*(\S+)")


def _wrong(tok: str) -> int | None:
    if tok.upper() == "N/A":
        return None
    return int(float(tok))


def _timing(toks: list[str]) -> NcclTiming:
    return NcclTiming(float(toks[0]), float(toks[1]), float(toks[2]), _wrong(toks[3]))


def parse_nccl_tests(text: str) -> NcclTestsResult:
    """nccl-tests (and rccl-tests) result table and footer."""
    res = NcclTestsResult()
    for line in _lines(text):
        m = _NCCL_TEST_RE.search(line)
        if m and res.test is None:
            res.test = m.group(1)
        m = _NCCL_OOB_RE.search(line)
        if m:
            res.out_of_bounds = int(m.group(1))
            res.out_of_bounds_ok = m.group(2).upper() == "OK"
            continue
        m = _NCCL_AVG_RE.search(line)
        if m:
            res.avg_busbw = float(m.group(1))
            continue
        toks = line.split()
        if len(toks) not in (12, 13) or not toks[0].isdigit() or not toks[1].isdigit():
            continue
        try:
            if len(toks) == 13:
                root: int | None = int(toks[4])
                rest = toks[5:]
            else:
                root, rest = None, toks[4:]
            res.rows.append(
                NcclRow(int(toks[0]), int(toks[1]), toks[2], toks[3], root, _timing(rest[:4]), _timing(rest[4:8]))
            )
        except ValueError:
            continue
    return res


def check_nccl_tests(res: NcclTestsResult) -> list[Check]:
    checks: list[Check] = []
    if res.out_of_bounds is None:
        checks.append(Check("nccl-tests out of bounds", None, "no '# Out of bounds values' footer (test cut short?)"))
    else:
        checks.append(
            Check(
                "nccl-tests out of bounds",
                bool(res.out_of_bounds_ok) and res.out_of_bounds == 0,
                f"Out of bounds values : {res.out_of_bounds} {'OK' if res.out_of_bounds_ok else 'FAILED'}",
            )
        )
    wrong = [(r.size, t.wrong) for r in res.rows for t in (r.oop, r.ip) if t.wrong]
    counted = [t for r in res.rows for t in (r.oop, r.ip) if t.wrong is not None]
    if not counted:
        checks.append(Check("nccl-tests #wrong", None, "no #wrong column values (ran with -c 0?)"))
    else:
        checks.append(
            Check(
                "nccl-tests #wrong",
                not wrong,
                "all #wrong = 0" if not wrong else f"{len(wrong)} results with #wrong > 0, first at size {wrong[0][0]}",
            )
        )
    return checks


# --------------------------------------------------------------------------------------------
# plugin/torch example.py
# --------------------------------------------------------------------------------------------


@dataclass
class TorchAfter:
    rank: int
    op: str  # min | max | sum
    tensor: str  # x | y
    values: list[float]
    group: str | None = None


@dataclass
class TorchExample:
    before: dict[int, dict[str, list[float]]] = field(default_factory=dict)  # rank -> {"x": [...], "y": [...]}
    after: list[TorchAfter] = field(default_factory=list)

    @property
    def ranks(self) -> list[int]:
        return sorted(set(self.before) | {a.rank for a in self.after})

    @property
    def nranks(self) -> int:
        return len(self.ranks)


_TENSOR = r"tensor\(\[([^\]]*)\]"
_BEFORE_RE = re.compile(r"rank\s+(\d+)\s+before allreduce:\s*((?:\w+\s*=\s*" + _TENSOR + r"[^)]*\)\s*,?\s*)+)")
_ASSIGN_RE = re.compile(r"(\w+)\s*=\s*" + _TENSOR)
_AFTER_RE = re.compile(
    r"rank\s+(\d+)\s+after allreduce\s+(min|max|sum|avg|prod)\s+with\s+(\w+)\s*:\s*(\w+)\s*=\s*" + _TENSOR
)


def _values(s: str) -> list[float]:
    return [float(v) for v in re.findall(_FLOAT, s.replace("\n", " "))]


def parse_torch_example(text: str) -> TorchExample:
    """`rank R before allreduce: x = tensor([...]), y = tensor([...])` and
    `rank R after allreduce min|max|sum with GROUP: x = tensor([...])` lines (tensors may wrap)."""
    joined = "\n".join(_lines(text))
    res = TorchExample()
    for m in _BEFORE_RE.finditer(joined):
        rank = int(m.group(1))
        res.before[rank] = {a.group(1): _values(a.group(2)) for a in _ASSIGN_RE.finditer(m.group(2))}
    for m in _AFTER_RE.finditer(joined):
        res.after.append(TorchAfter(int(m.group(1)), m.group(2), m.group(4), _values(m.group(5)), m.group(3)))
    return res


def _fmt(vs: Iterable[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in vs) + "]"


def check_torch_example(parsed: TorchExample, tol: float = 1e-3) -> list[Check]:
    """Verify example.py's allreduce: min of x, max of y, then sum of the (already min-reduced) x.

    example.py reduces x with MIN and then reduces the same x with SUM, so the sum step must give
    nranks × (elementwise min of the before-x values) — not the sum of the before-x values. Values
    are printed with 4 decimals: we allow `tol` absolute (plus the rounding carried by the sum).
    """
    checks: list[Check] = []
    if not parsed.before or not parsed.after:
        return [
            Check(
                "torch allreduce output",
                False,
                "no 'rank N before/after allreduce' lines: example.py printed nothing "
                "(it silently skips every test when no device is visible)",
            )
        ]
    ranks = parsed.ranks
    n = len(ranks)
    missing = [r for r in range(max(ranks) + 1) if r not in parsed.before]
    checks.append(
        Check(
            "torch allreduce ranks",
            not missing,
            f"ranks {ranks} printed their inputs" if not missing else f"no 'before' line from rank(s) {missing}",
        )
    )
    xs = [parsed.before[r].get("x") for r in sorted(parsed.before)]
    ys = [parsed.before[r].get("y") for r in sorted(parsed.before)]
    exp: dict[str, list[float] | None] = {"min": None, "max": None, "sum": None}
    if all(xs) and len({len(v) for v in xs}) == 1:
        exp["min"] = [min(col) for col in zip(*xs)]
    if all(ys) and len({len(v) for v in ys}) == 1:
        exp["max"] = [max(col) for col in zip(*ys)]
    if exp["min"] is not None:
        exp["sum"] = [v * n for v in exp["min"]]
    tols = {"min": tol, "max": tol, "sum": tol + n * 0.5e-4}
    what = {"min": "elementwise min of before-x", "max": "elementwise max of before-y",
            "sum": f"{n} × min(x): example.py sums the min-reduced x"}
    by_op: dict[str, list[TorchAfter]] = {}
    for a in parsed.after:
        by_op.setdefault(a.op, []).append(a)
    for op in ("min", "max", "sum"):
        name = f"torch allreduce {op}"
        got = by_op.get(op, [])
        if not got:
            checks.append(Check(name, False, f"no 'after allreduce {op}' line"))
            continue
        want = exp[op]
        if want is None:
            checks.append(Check(name, None, "before-values missing or of different lengths; cannot derive expectation"))
            continue
        bad = [a for a in got if len(a.values) != len(want) or any(abs(g - w) > tols[op] for g, w in zip(a.values, want))]
        seen = sorted(a.rank for a in got)
        if bad:
            a = bad[0]
            checks.append(Check(name, False, f"rank {a.rank} got {_fmt(a.values)}, expected {_fmt(want)} ({what[op]})"))
        elif set(seen) != set(range(n)):
            checks.append(Check(name, False, f"only rank(s) {seen} printed the {op} result, expected {n} ranks"))
        else:
            checks.append(Check(name, True, f"{_fmt(want)} on all {n} ranks ({what[op]})"))
    # every rank must print the same after-values for each op
    incons = []
    for op, items in by_op.items():
        vals = {tuple(a.values) for a in items}
        if len(vals) > 1:
            incons.append(op)
    checks.append(
        Check(
            "torch allreduce ranks agree",
            not incons,
            "every rank printed the same results" if not incons else f"ranks disagree on: {', '.join(sorted(incons))}",
        )
    )
    return checks


# --------------------------------------------------------------------------------------------
# FlagScale / Megatron training log
# --------------------------------------------------------------------------------------------

_ITER_RE = re.compile(r"iteration\s+(\d+)\s*/\s*(\d+)\s*\|")
_RANK_PREFIX_RE = re.compile(r"^\s*\[default(\d+)\]:")
_TS_RE = re.compile(r"\[(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)\]")

_ITER_KEYS = {
    "consumed samples": ("consumed_samples", int),
    "elapsed time per iteration (ms)": ("ms_per_iter", float),
    "throughput per gpu (tflop/s/gpu)": ("tflops_per_gpu", float),
    "learning rate": ("lr", float),
    "global batch size": ("global_batch_size", int),
    "lm loss": ("lm_loss", float),
    "loss scale": ("loss_scale", float),
    "grad norm": ("grad_norm", float),
    "number of skipped iterations": ("skipped", int),
    "number of nan iterations": ("nan", int),
}
ITERATION_FIELDS = ("iteration", "total", "consumed_samples", "ms_per_iter", "tflops_per_gpu", "lm_loss",
                    "lr", "global_batch_size", "skipped", "nan")


def parse_flagscale_iterations(text: str) -> list[dict[str, Any]]:
    """One dict per Megatron iteration line; every field in ITERATION_FIELDS is present (None when
    the line lacks it), plus loss_scale, grad_norm, timestamp and rank (from `[defaultN]:`)."""
    out: list[dict[str, Any]] = []
    for raw in text.replace("\r", "\n").split("\n"):
        rp = _RANK_PREFIX_RE.match(raw)
        line = strip_prefix(raw)
        m = _ITER_RE.search(line)
        if not m:
            continue
        d: dict[str, Any] = {k: None for k in ITERATION_FIELDS}
        d.update(loss_scale=None, grad_norm=None, timestamp=None, rank=int(rp.group(1)) if rp else None)
        d["iteration"], d["total"] = int(m.group(1)), int(m.group(2))
        ts = _TS_RE.search(line[: m.start()])
        if ts:
            d["timestamp"] = ts.group(1)
        for part in line[m.end():].split("|"):
            if ":" not in part:
                continue
            key, _, val = part.rpartition(":")
            spec = _ITER_KEYS.get(" ".join(key.split()).lower())
            if not spec:
                continue
            name, conv = spec
            try:
                d[name] = conv(float(val.strip())) if conv is int else float(val.strip())
            except ValueError:
                d[name] = None
        out.append(d)
    return out


def check_training(iters: list[dict[str, Any]]) -> list[Check]:
    if not iters:
        return [Check("train iterations", False, "no 'iteration N/M |' lines in the training log")]
    last = iters[-1]
    checks = [Check("train iterations", True, f"{len(iters)} iteration lines, last {last['iteration']}/{last['total']}")]
    nan = sum(i["nan"] or 0 for i in iters)
    checks.append(Check("train nan iterations", nan == 0, f"{nan} nan iterations reported"))
    losses = [i["lm_loss"] for i in iters if i["lm_loss"] is not None]
    if not losses:
        checks.append(Check("train lm loss", None, "no lm loss values"))
    else:
        finite = all(math.isfinite(v) for v in losses)
        checks.append(Check("train lm loss", finite, f"lm loss {losses[0]:.4g} → {losses[-1]:.4g}"))
    return checks


def as_dicts(items: Iterable[Any]) -> list[dict[str, Any]]:
    return [asdict(i) for i in items]
