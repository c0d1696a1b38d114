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
from typing import Any, Iterable, Iterator

from ..errors import UsageError
from ..flagcx.colls import COLLS as _COLLS
from ..flagcx.colls import normalize as _normalize_coll

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


_EOL = re.compile(r"\r\n|\r|\n")


def _lines(text: str) -> Iterator[str]:
    """The lines of `text` (split at \r\n, \r and \n), prefixes stripped, one at a time: no
    copy of the text and no list of all its lines is made (a stage may print gigabytes)."""
    pos = 0
    for m in _EOL.finditer(text):
        yield strip_prefix(text[pos:m.start()])
        pos = m.end()
    yield strip_prefix(text[pos:])


def _float(s: str) -> float:
    return float(s)


@dataclass
class Check:
    """One verdict. ok: True = passed, False = failed, None = could not be decided (no data, or no
    way to derive an expectation) — reported as skipped, never as a pass."""

    name: str
    ok: bool | None
    detail: str = ""
    compared: int | None = None  # how many (rank, size) buffers a buffer check held against an expectation

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "ok": self.ok, "detail": self.detail}
        if self.compared is not None:
            d["compared"] = self.compared
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Check":
        c = d.get("compared")
        return cls(str(d.get("name", "")), d.get("ok"), str(d.get("detail", "") or ""),
                   int(c) if isinstance(c, int) and not isinstance(c, bool) else None)


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


# --------------------------------------------------------------------------------------------
# -p 1 output: buffers and FlagCX's own verdict lines (the correctness oracle)
# --------------------------------------------------------------------------------------------
#
# What the perf tests print with -p 1 changed across releases (read from the tags):
#   FlagOpen ≤ v0.6 (the runbook's): allreduce rank 0 prints plain `sendbuff = ` / `recvbuff = `, every
#     rank sending i%10; allgather/broadcast/alltoall the first and last rank print plain lines.
#   v0.9 – v0.13: allreduce every rank prints `rank N sendbuff = `, `rank N recvbuff = `, optional
#     `rank N wrong output at offset O, expected E, got G` and `rank N all-reduce correctness = 0|1`
#     (`reduce`/`p2p` instead of `all-reduce` under FLAGCX_UNIRUNNER_USE_LOCRED/_RINGAG), input
#     (i%10)·2^rank; reduce `proc N (root rank) sendbuff|recvbuff|correctness`, reducescatter
#     `proc N sendbuff|recvbuff`, `rank N correctness = `, `rank N offset O wrong output V`.
#   main after v0.13: nothing.
# Lines of different ranks arrive in any order under mpirun (a real v0.13 allgather on 2×H200 printed
# rank 1's lines three sizes late), so nothing here trusts the position of a line relative to another
# rank's: a rank-labelled line is tied to a size by its index among that rank's lines of the same kind
# (the k-th `rank 1 recvbuff` belongs to the k-th size); unlabelled lines of several ranks are only
# ever used in size-independent ways (sets and counts).

_LBL = r"(?:\b(rank|proc)\s+(\d+)\s+(\(root rank\)\s+)?)?"
_BUF_RE = re.compile(_LBL + r"(?<![\w])(sendbuff|recvbuff)\s*=\s*((?:\s*" + _FLOAT + r"(?![\w.]))*)")
_VERDICT_RE = re.compile(_LBL + r"(?:(all-reduce|reduce|p2p)\s+)?correctness\s*=\s*(-?\d+)")
_WRONG_RE = re.compile(r"(?:\brank\s+(\d+)\s+)?wrong output at offset\s+(\d+),\s*expected\s+(" + _FLOAT
                       + r"),\s*got\s+(" + _FLOAT + r")")
_WRONG_RS_RE = re.compile(r"\brank\s+(\d+)\s+offset\s+(\d+)\s+wrong output\s+(" + _FLOAT + r")")
_ROOT_RE = re.compile(r"root rank is\s+(\d+)")

NO_BUFFERS = "this FlagCX prints no buffers: correctness comes from the unittest stage"


@dataclass
class BufLine:
    """One printed `sendbuff = …` / `recvbuff = …`."""

    kind: str  # "send" | "recv"
    rank: int | None  # from `rank N` / `proc N`; None for a plain line
    values: list[float]
    seq: int  # index among this rank's lines of this kind (plain lines count together)
    line: int  # 1-based line number
    after_size: int | None  # the last `Comm size` line printed before it (position only)


@dataclass
class Verdict:
    """One `… correctness = 0|1` line printed by FlagCX itself."""

    rank: int | None
    kind: str  # "all-reduce" | "reduce" | "p2p" | "root" (reduce) | "" (reducescatter)
    ok: bool
    seq: int
    line: int
    wrong: str | None = None  # the `wrong output …` line that went with it

    def what(self) -> str:
        k = {"root": "(root rank) ", "": ""}.get(self.kind, self.kind + " ")
        return f"{k}correctness = {int(self.ok)}"


@dataclass
class PerfPrints:
    """Everything a perf test printed about its data. Falsy when it printed nothing (≥ v0.14 or -p 0)."""

    sizes: list[int] = field(default_factory=list)
    lines: list[BufLine] = field(default_factory=list)
    roots: list[tuple[int, int]] = field(default_factory=list)  # (root, line number)
    verdicts: list[Verdict] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines) + len(self.verdicts)

    def size_of(self, seq: int) -> int | None:
        return self.sizes[seq] if 0 <= seq < len(self.sizes) else None

    def of(self, kind: str, labelled: bool | None = None) -> list[BufLine]:
        return [l for l in self.lines if l.kind == kind and (labelled is None or (l.rank is not None) == labelled)]


def _fmtv(v: float) -> str:
    return f"{v:g}"


def parse_perf_buffers(text: str) -> PerfPrints:
    """The `-p 1` prints of one perf run: buffers, `root rank is` lines, FlagCX's verdict lines, and
    the sizes in the order rank 0 printed them."""
    out = PerfPrints()
    seqs: dict[tuple[str, int | None], int] = {}
    vseq: dict[int | None, int] = {}
    pending: dict[int | None, list[str]] = {}
    for no, line in enumerate(_lines(text), 1):
        events: list[tuple[int, str, re.Match]] = []
        for rx, tag in ((PERF_LINE_RE, "size"), (_BUF_RE, "buf"), (_VERDICT_RE, "verdict"), (_WRONG_RE, "wrong"),
                        (_WRONG_RS_RE, "wrongrs"), (_ROOT_RE, "root")):
            events += [(m.start(), tag, m) for m in rx.finditer(line)]
        for _, tag, m in sorted(events, key=lambda e: e[0]):
            if tag == "size":
                out.sizes.append(int(m.group(1)))
            elif tag == "root":
                out.roots.append((int(m.group(1)), no))
            elif tag == "buf":
                values = [float(v) for v in m.group(5).split()]
                if not values:
                    continue
                rank = int(m.group(2)) if m.group(2) is not None else None
                kind = "send" if m.group(4) == "sendbuff" else "recv"
                k = seqs.get((kind, rank), 0)
                seqs[(kind, rank)] = k + 1
                out.lines.append(BufLine(kind, rank, values, k, no, out.sizes[-1] if out.sizes else None))
            elif tag in ("wrong", "wrongrs"):
                rank = int(m.group(1)) if m.group(1) is not None else None
                if tag == "wrong":
                    msg = f"wrong output at offset {m.group(2)}, expected {_fmtv(float(m.group(3)))}, got {_fmtv(float(m.group(4)))}"
                else:
                    msg = f"wrong output at offset {m.group(2)}: {_fmtv(float(m.group(3)))}"
                pending.setdefault(rank, []).append(msg)
            else:  # verdict
                rank = int(m.group(2)) if m.group(2) is not None else None
                kind = m.group(4) or ("root" if m.group(3) else "")
                ok = int(m.group(5)) == 1
                k = vseq.get(rank, 0)
                vseq[rank] = k + 1
                wrong = None
                own = pending.pop(rank, [])
                if not ok:
                    if own:
                        wrong = own[0]
                    elif pending.get(None):
                        wrong = pending[None].pop(0)
                out.verdicts.append(Verdict(rank, kind, ok, k, no, wrong))
    return out


def _close(a: float, b: float, rel: float = 1e-5, abs_: float = 1e-6) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


def _vec_fmt(vs: list[float], n: int = 4) -> str:
    return "[" + ", ".join(_fmtv(v) for v in vs[:n]) + (", …" if len(vs) > n else "") + "]"


def _first_mismatch(got: list[float], want: list[float], abs_: float = 1e-6) -> str | None:
    if len(got) < len(want):
        return f"{len(got)} values printed, expected {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        if not _close(g, w, abs_=abs_):
            return f"recvbuff[{i}] = {_fmtv(g)}, expected {_fmtv(w)}"
    return None


def _size_txt(size: int | None, seq: int) -> str:
    return f"size {size}" if size is not None else f"size #{seq + 1} (no 'Comm size' line for it)"


def _who(rank: int | None) -> str:
    return f"rank {rank}" if rank is not None else "a rank (the line names none)"


def _plain_where(l: BufLine) -> str:
    where = f"after the {l.after_size}-byte result line" if l.after_size is not None else "before any result line"
    return f"recvbuff on line {l.line} ({where}; the line names no rank)"


@dataclass
class _Derived:
    ok: bool | None
    detail: str
    compared: int = 0
    fails: list[str] = field(default_factory=list)


_OPS = {
    "sum": (lambda col: math.fsum(col), lambda v, n: v * n),
    "prod": (lambda col: math.prod(col), lambda v, n: v ** n),
    "min": (min, lambda v, n: v),
    "max": (max, lambda v, n: v),
    "avg": (lambda col: math.fsum(col) / len(col), lambda v, n: v),
}


def _derive_allreduce(p: PerfPrints, nranks: int | None, op: str) -> _Derived:
    if op not in _OPS:
        raise UsageError(f"unknown reduction op {op!r}", hint="one of: " + ", ".join(_OPS))
    modes = sorted({v.kind for v in p.verdicts if v.kind in ("reduce", "p2p")})
    if modes:
        return _Derived(None, f"FlagCX ran allreduce in its {'/'.join(modes)} mode (FLAGCX_UNIRUNNER_USE_LOCRED or "
                              "_RINGAG), whose output is not the allreduce of the inputs: no expectation derived")
    combine, repeat = _OPS[op]
    sends = p.of("send", True)
    recvs = p.of("recv", True)
    if sends or recvs:
        n = nranks
        note = ""
        if n is None:
            n = len({l.rank for l in sends})
            note = f" (rank count not given: assumed the {n} ranks that printed)"
        by_send: dict[int, dict[int, list[float]]] = {}
        for l in sends:
            by_send.setdefault(l.seq, {})[l.rank] = l.values
        by_recv: dict[int, dict[int, BufLine]] = {}
        for l in recvs:
            by_recv.setdefault(l.seq, {})[l.rank] = l
        d = _Derived(None, "")
        skipped: list[str] = []
        sizes_ok = 0
        for seq in sorted(set(by_send) | set(by_recv)):
            size = p.size_of(seq)
            s = by_send.get(seq, {})
            if set(s) != set(range(n)):
                skipped.append(f"{_size_txt(size, seq)}: sendbuff printed by rank(s) {sorted(s)} of {n}")
                continue
            width = min(len(v) for v in s.values())
            want = [combine([s[r][i] for r in range(n)]) for i in range(width)]
            got = by_recv.get(seq, {})
            missing = sorted(set(range(n)) - set(got))
            if missing:
                skipped.append(f"{_size_txt(size, seq)}: no recvbuff from rank(s) {missing}")
            for r in sorted(got):
                d.compared += 1
                bad = _first_mismatch(got[r].values, want, abs_=1e-6 * (n + 1))
                if bad:
                    d.fails.append(f"rank {r}, {_size_txt(size, seq)}: {bad} ({op} over the {n} ranks' sendbuffs)")
            if not missing:
                sizes_ok += 1
        if d.fails:
            d.ok = False
        elif skipped:
            d.detail = (f"not every rank printed its buffers, so the expectation ({op} over all ranks' sendbuffs) "
                        f"cannot be derived: " + "; ".join(skipped[:3]) + (f" (+{len(skipped) - 3} more)" if len(skipped) > 3 else "")
                        + note)
        else:
            d.ok = True
            d.detail = (f"recvbuff of every rank = element-wise {op} of the {n} ranks' printed sendbuffs at all "
                        f"{sizes_ok} sizes{note}")
        return d
    # plain lines: FlagOpen ≤ v0.6 prints only rank 0's buffers, every rank sending the same i%10
    psend, precv = p.of("send", False), p.of("recv", False)
    if not psend and not precv:
        return _Derived(None, NO_BUFFERS)
    if nranks is None:
        return _Derived(None, "only rank 0 printed its buffers (sendbuff/recvbuff without a rank): the expectation "
                              "needs the number of ranks, which was not given")
    n = nranks
    by_send = {l.seq: l.values for l in psend}
    d = _Derived(None, "")
    unpaired = 0
    for l in precv:
        s = by_send.get(l.seq)
        if s is None:
            unpaired += 1
            continue
        d.compared += 1
        bad = _first_mismatch(l.values, [repeat(v, n) for v in s], abs_=1e-6 * (n + 1))
        if bad:
            d.fails.append(f"rank 0, {_size_txt(p.size_of(l.seq), l.seq)}: {bad}")
    what = {"sum": f"sendbuff × {n}", "prod": f"sendbuff ^ {n}"}.get(op, "sendbuff")
    assumption = (f"equal inputs on all {n} ranks assumed: only rank 0 printed its buffers (no rank in the lines, "
                  f"as FlagCX ≤ v0.6 prints them)")
    if d.fails:
        d.ok = False
        d.detail = assumption
    elif not d.compared:
        d.detail = "recvbuff lines without a matching sendbuff line: nothing to compare"
    else:
        d.ok = True
        d.detail = f"rank 0's recvbuff = {what} at {d.compared} sizes ({assumption})"
    return d


def _value_rank_ids(lines: list[BufLine], nranks: int | None, whole: bool) -> dict[int, list[float]] | None:
    """For unlabelled sendbuff lines: FlagCX's allgather/broadcast tests fill a rank's buffer with its
    rank id (`hello[i] = proc`). When every printed line is consistent with that (constant, an integer
    rank id below nranks), the value names the rank; otherwise None."""
    if nranks is None or not lines:
        return None
    ids: dict[int, list[float]] = {}
    for l in lines:
        vals = l.values if whole else l.values[:1]
        v = vals[0]
        if any(x != v for x in vals) or v != int(v) or not 0 <= int(v) < nranks:
            return None
        ids.setdefault(int(v), vals)
    return ids


def _derive_allgather(p: PerfPrints, nranks: int | None) -> _Derived:
    sends, recvs = p.of("send"), p.of("recv")
    if not sends and not recvs:
        return _Derived(None, NO_BUFFERS)
    if nranks is None:
        return _Derived(None, "the number of ranks was not given: the printed chunk heads cannot be checked")
    n = nranks
    if not recvs:
        return _Derived(None, "no recvbuff lines")
    if any(len(l.values) != n for l in recvs):
        l = next(l for l in recvs if len(l.values) != n)
        return _Derived(None, f"recvbuff lines print {len(l.values)} values, not the {n} chunk heads FlagCX's "
                              f"test_allgather prints (one per rank): layout unknown, not checked")
    d = _Derived(None, "")
    labelled = [l for l in sends if l.rank is not None]
    if labelled and all(l.rank is not None for l in sends + recvs):
        # every line names its rank: chunk i of every rank's recvbuff = rank i's sendbuff, per size
        data: dict[int, dict[int, float]] = {}
        for l in labelled:
            data.setdefault(l.seq, {})[l.rank] = l.values[0]
        partial = 0
        for l in recvs:
            known = data.get(l.seq, {})
            if len(known) < n:
                partial += 1
            d.compared += 1
            for i in sorted(known):
                if not _close(l.values[i], known[i]):
                    d.fails.append(f"rank {l.rank}, {_size_txt(p.size_of(l.seq), l.seq)}: chunk {i} starts with "
                                   f"{_fmtv(l.values[i])}, expected {_fmtv(known[i])} (rank {i}'s sendbuff)")
                    break
        d.ok = False if d.fails else (None if partial else True)
        d.detail = (f"chunk i of every recvbuff = rank i's printed sendbuff ({d.compared} (rank, size) recvbuffs)"
                    if not partial else f"{partial} recvbuffs at sizes where not every rank printed its sendbuff")
        return d
    # unlabelled (every FlagCX release that prints them): the first and the last rank print; a line does
    # not say which rank or (reliably) which size it belongs to, so only size-independent facts are used.
    firsts = sorted({l.values[0] for l in sends})
    printers = 1 if n == 1 else 2
    if len(firsts) > printers:
        return _Derived(None, f"{len(firsts)} different sendbuff values from at most {printers} printing ranks: the "
                              "values change from size to size and the lines name no rank, so no line can be tied to "
                              "a size: not checked")
    ids = _value_rank_ids(sends, n, whole=False)
    d.compared = len(recvs)
    if ids is not None:
        pos = sorted(ids)
        for l in recvs:
            for i in pos:
                if not _close(l.values[i], ids[i][0]):
                    d.fails.append(f"{_plain_where(l)}: chunk {i} starts with {_fmtv(l.values[i])}, expected "
                                   f"{_fmtv(ids[i][0])} (rank {i}'s sendbuff)")
                    break
        if not d.fails and len(pos) == 1:
            d.detail = (f"only rank {pos[0]}'s input ({_fmtv(ids[pos[0]][0])}) is printed: an allgather that moved nothing "
                        f"could print the same, so {d.compared} matching recvbuffs prove nothing")
            return d
        d.ok = False if d.fails else True
        d.detail = (f"{d.compared} recvbuffs: the chunks of ranks {pos} hold those ranks' sendbuffs (the sendbuff lines "
                    f"name no rank; each holds its rank's id, as FlagCX's test_allgather fills it)"
                    + ("" if len(pos) == n else f"; the chunks of the {n - len(pos)} ranks that print nothing are not checked"))
        return d
    if len(firsts) == 2 and n >= 2:
        for l in recvs:
            if sorted([l.values[0], l.values[n - 1]]) != firsts:
                d.fails.append(f"{_plain_where(l)}: first/last chunk heads {_fmtv(l.values[0])}, {_fmtv(l.values[n - 1])}; "
                               f"expected the two printed sendbuffs {_fmtv(firsts[0])} and {_fmtv(firsts[1])}")
        d.ok = False if d.fails else True
        d.detail = (f"{d.compared} recvbuffs: first and last chunks hold the first and last ranks' printed sendbuffs "
                    "(the lines name no rank, so which of the two is whose is not checked)")
        return d
    d.detail = (f"one sendbuff value ({_fmtv(firsts[0])}) printed by lines that name no rank: whose chunk it is "
                f"cannot be told, not checked")
    return d


def _derive_broadcast(p: PerfPrints, nranks: int | None) -> _Derived:
    sends, recvs = p.of("send"), p.of("recv")
    if not sends and not recvs:
        return _Derived(None, NO_BUFFERS)
    if not p.roots:
        return _Derived(None, "no 'root rank is R' lines: which rank broadcast is unknown")
    rc: dict[int, int] = {}
    for r, _ in p.roots:
        rc[r] = rc.get(r, 0) + 1
    # the data each root sent
    data: dict[int, list[float]] = {}
    note = ""
    if sends and all(l.rank is not None for l in sends):
        per: dict[int, set[tuple[float, ...]]] = {}
        for l in sends:
            per.setdefault(l.rank, set()).add(tuple(l.values))
        data = {r: list(next(iter(v))) for r, v in per.items() if len(v) == 1}
    else:
        ids = _value_rank_ids(sends, nranks, whole=True)
        if ids is not None:
            data = ids
            note = (" (the sendbuff lines name no rank; each is constant and equal to a rank id, as FlagCX's "
                    "test_broadcast fills it)")
    known = sorted(r for r in rc if r in data)
    unknown = sorted(r for r in rc if r not in data)
    if not known:
        return _Derived(None, f"the data of root(s) {sorted(rc)} cannot be told from the printed lines (they name no "
                              "rank and their values do not identify one): not checked")
    d = _Derived(None, "")
    distinct: dict[tuple[float, ...], list[int]] = {}
    for r in known:
        distinct.setdefault(tuple(data[r]), []).append(r)
    got = {k: 0 for k in distinct}
    stray: list[BufLine] = []
    for l in recvs:
        for k in distinct:
            w = min(len(k), len(l.values))
            if w and all(_close(l.values[i], k[i]) for i in range(w)):
                got[k] += 1
                break
        else:
            stray.append(l)
    d.compared = len(recvs)
    allowed_stray = sum(rc[u] for u in unknown)
    if len(stray) > allowed_stray:
        l = stray[0]
        who = f"rank {l.rank}" if l.rank is not None else "its rank not named"
        d.fails.append(f"recvbuff on line {l.line} ({who}, after the {l.after_size}-byte result line) = "
                       f"{_vec_fmt(l.values)}: no root sent that (roots' data: "
                       + ", ".join(f"root {r} {_vec_fmt(data[r])}" for r in known) + ")")
    for k, roots in distinct.items():
        want = sum(rc[r] for r in roots)
        if got[k] != want:
            d.fails.append(f"root(s) {roots}' data {_vec_fmt(list(k))} was received {got[k]} times, expected {want} "
                           f"(one recvbuff per printing rank per size and root; a broadcast that moves nothing "
                           f"leaves the previous data)")
    all_same = len({tuple(l.values) for l in sends}) == 1
    if d.fails:
        d.ok = False
        d.detail = note.strip()
    elif unknown:
        d.detail = (f"{d.compared} recvbuffs: roots {known} delivered their data; the data of roots {unknown} is not "
                    f"printed, so their results are not checked{note}")
    elif all_same:
        d.detail = (f"every printed sendbuff is the same {_vec_fmt(sends[0].values)}: a broadcast that moved nothing "
                    f"would print the same, so {d.compared} matching recvbuffs prove nothing")
    else:
        d.ok = True
        d.detail = f"{d.compared} recvbuffs: every root's data ({', '.join(f'root {r}' for r in known)}) reached every printing rank at every size{note}"
    return d


_NO_CHECK_WHY = {
    "reduce": "only the root prints, and the inputs of the other ranks are not printed",
    "reducescatter": "each rank prints only its own slice of its input; the expectation depends on the test version",
    "alltoall": "the printed slice does not identify the sender",
    "alltoallv": "the printed slice does not identify the sender",
    "gather": "only the root receives, and the printed buffer depends on the root",
    "scatter": "the printed slice depends on the root",
    "sendrecv": "the printed values do not identify the peer",
}


def check_collective(coll: str, prints: "PerfPrints | str", nranks: int | None, *, op: str = "sum") -> Check:
    """The correctness verdict of one perf run from what it printed (`parse_perf_buffers`, or the raw text).

    False when FlagCX printed `correctness = 0` anywhere, or when a printed recvbuff differs from the
    expectation derived from the printed sendbuffs of all ranks (allreduce: element-wise `op`; allgather:
    chunk i = rank i's data; broadcast: each root's data reaches every printing rank); True only when
    that derived check covered the run; None (skipped, with the reason) otherwise — including when
    nothing was printed. `compared` counts the (rank, size) recvbuffs held against an expectation.
    """
    c = normalize_coll(coll)
    if nranks is not None and nranks < 1:
        raise UsageError(f"nranks must be ≥ 1, got {nranks}")
    p = prints if isinstance(prints, PerfPrints) else parse_perf_buffers(prints)
    name = f"{c} {op} buffers" if c == "allreduce" else f"{c} buffers"
    if c == "allreduce":
        d = _derive_allreduce(p, nranks, op)
    elif c == "allgather":
        d = _derive_allgather(p, nranks)
    elif c == "broadcast":
        d = _derive_broadcast(p, nranks)
    else:
        d = _Derived(None, f"no check for {c}: {_NO_CHECK_WHY.get(c, 'no expectation is known')}")
    vfails = [f"{_who(v.rank)}, {_size_txt(p.size_of(v.seq), v.seq)}: {v.what()}" + (f" ({v.wrong})" if v.wrong else "")
              for v in p.verdicts if not v.ok]
    vnote = ""
    if p.verdicts:
        vranks = sorted({v.rank for v in p.verdicts if v.rank is not None})
        vnote = f"FlagCX's own verdicts: {len(p.verdicts) - len(vfails)}/{len(p.verdicts)} lines say correct (ranks {vranks})"
    fails = vfails + d.fails
    if fails:
        more = f" (+{len(fails) - 3} more)" if len(fails) > 3 else ""
        detail = f"{len(fails)} wrong: " + "; ".join(fails[:3]) + more
        extra = "; ".join(x for x in (d.detail, vnote) if x and x != NO_BUFFERS)
        if d.compared:
            extra = f"{d.compared} (rank, size) recvbuffs compared" + ("; " + extra if extra else "")
        return Check(name, False, detail + (f" [{extra}]" if extra else ""), compared=d.compared)
    if not p and not d.detail.startswith("no check for"):
        return Check(name, None, NO_BUFFERS, compared=0)
    if d.ok is True:
        return Check(name, True, d.detail + (f"; {vnote}" if vnote else ""), compared=d.compared)
    reason = d.detail
    if p.verdicts and d.detail.startswith("no check for"):
        reason = f"{d.detail}; {vnote}, but the printed data gives no expectation of ours"
    elif vnote:
        reason = f"{d.detail}; {vnote}"
    return Check(name, None, reason, compared=d.compared)


# --------------------------------------------------------------------------------------------
# Bus bandwidth factor
# --------------------------------------------------------------------------------------------

# the busbw factor kind of every collective FlagCX names (flagcx/colls.py: one list, one spelling)
_BUS = {n: c.bus for n, c in _COLLS.items()}
COLLECTIVES = tuple(_BUS)


def normalize_coll(coll: str) -> str:
    """'all_reduce_perf', 'test_allreduce', 'perf_allreduce', 'AllReduce' → 'allreduce';
    'coresendrecv' (the earlier spelling) → 'core_sendrecv' (flagcx/colls.py)."""
    return _normalize_coll(coll)


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
# plausibility: numbers that cannot be true (a collective that never really ran)
# --------------------------------------------------------------------------------------------

FLAT_SPAN = 1000                 # sizes this many times apart …
FLAT_MIN_LARGE = 64 * 1024 ** 2  # … the larger at least 64 MiB (past any latency-bound plateau)
FLAT_GROWTH = 1.5                # … whose time grew less than this: the data never moved


def _hsize(n: int) -> str:
    for f, u in ((1024 ** 3, "GiB"), (1024 ** 2, "MiB"), (1024, "KiB")):
        if n >= f and n % f == 0:
            return f"{n // f} {u}"
    return f"{n} B"


def _us(t: float) -> str:
    return f"{t * 1e6:.3g} µs"


def check_plausible(coll: str, part: dict[str, Any] | None, max_busbw_gbps: float | None = None,
                    nranks: int | None = None) -> Check:
    """Could these numbers be true? FAIL naming the rows when a bandwidth is above what the
    hardware can move (`max_busbw_gbps`, the profile's limits.max_busbw_gbps: busbw, or algbw
    for 1 rank where busbw is 0 by definition), or when the time does not grow with the size
    (sizes ≥ FLAT_SPAN× apart, the larger ≥ 64 MiB, time grown < FLAT_GROWTH×: 2 µs for 1 KiB
    and for 4 GiB). PASS when a rule applied and held; SKIP when none could apply."""
    name = f"{normalize_coll(coll)} plausible"
    rows = [r for sw in (part or {}).get("sweeps") or [] for r in sw.get("rows") or []]
    rows = [r for r in rows if isinstance(r.get("size"), int) and r["size"] > 0]
    if not rows:
        return Check(name, None, "no rows to judge")
    judged: list[str] = []
    bad: list[str] = []
    if max_busbw_gbps:
        metric = "algbw" if nranks == 1 else "busbw"
        over = [r for r in rows if isinstance(r.get(metric), (int, float))
                and (not math.isfinite(r[metric]) or r[metric] > max_busbw_gbps)]
        if over:
            over.sort(key=lambda r: -r[metric] if math.isfinite(r[metric]) else -math.inf)
            shown = ", ".join(f"{r[metric]:,.2f} GB/s at {_hsize(r['size'])}" for r in over[:3])
            bad.append(f"{metric} above what this hardware can move (limits.max_busbw_gbps "
                       f"{max_busbw_gbps:g}) in {len(over)} of {len(rows)} rows: {shown}"
                       + (", …" if len(over) > 3 else ""))
        else:
            top = max((r.get(metric) or 0.0) for r in rows)
            judged.append(f"{metric} ≤ {max_busbw_gbps:g} GB/s (peak {top:,.2f})")
    for sw in (part or {}).get("sweeps") or []:
        rs = sorted((r for r in sw.get("rows") or [] if isinstance(r.get("time_s"), (int, float))
                     and isinstance(r.get("size"), int) and r["size"] > 0), key=lambda r: r["size"])
        if not rs:
            continue
        # each large size (≥ 64 MiB, ≥ FLAT_SPAN× the sweep's smallest) against the fastest
        # smaller size (the fastest, so a first size slowed by warm-up — 2.5 ms at 128 KiB on
        # 2×H200 — proves nothing)
        pairs = []
        for r in rs:
            if r["size"] >= FLAT_MIN_LARGE and rs[0]["size"] * FLAT_SPAN <= r["size"]:
                smaller = [q for q in rs if q["size"] < r["size"]]
                pairs.append((min(smaller, key=lambda q: q["time_s"]), r))
        if not pairs:
            continue
        flat = [(q, r) for q, r in pairs if r["time_s"] <= 0 or r["time_s"] < FLAT_GROWTH * q["time_s"]]
        if flat:
            q, r = flat[-1]
            bad.append(f"time does not grow with size: {_us(q['time_s'])} at "
                       f"{_hsize(q['size'])} and {_us(r['time_s'])} at {_hsize(r['size'])} "
                       f"({r['size'] // q['size']}× the data) in {len(flat)} row(s)")
        else:
            q, r = pairs[-1]
            judged.append(f"time grows with size ({_hsize(q['size'])} → {_hsize(r['size'])}: "
                          f"{r['time_s'] / q['time_s']:.0f}×)")
    if bad:
        return Check(name, False, "implausible, the collective cannot have run: " + "; ".join(bad))
    if not judged:
        return Check(name, None, "no bound for this platform (limits.max_busbw_gbps) and no sweep "
                                 f"spanning {FLAT_SPAN}× of size up to ≥ 64 MiB: not judged")
    return Check(name, True, "; ".join(judged))


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
    round: int = 0  # which run of example.py's allreduce test (a log may hold several)


@dataclass
class TorchExample:
    before: dict[int, dict[str, list[float]]] = field(default_factory=dict)  # rank -> {"x": [...], "y": [...]} (run 1)
    after: list[TorchAfter] = field(default_factory=list)
    rounds: list[dict[int, dict[str, list[float]]]] = field(default_factory=list)  # before-values of every run

    @property
    def ranks(self) -> list[int]:
        return sorted({r for rd in self.rounds for r in rd} | set(self.before) | {a.rank for a in self.after})

    @property
    def nranks(self) -> int:
        return len(self.ranks)


_TENSOR = r"tensor\(\[([^\]]*)\]"
# a tensor's repr may end with `, device='cuda:0')`; lines of two ranks may share one output line
# (v0.13.0 on 2×H200: `…device='cuda:0')rank 1 before allreduce: …`), so every pattern stops at `)`.
_BEFORE_RE = re.compile(r"rank\s+(\d+)\s+before allreduce:\s*((?:\w+\s*=\s*" + _TENSOR + r"[^)]*\)\s*,?\s*)+)")
_ASSIGN_RE = re.compile(r"(\w+)\s*=\s*" + _TENSOR)
_AFTER_RE = re.compile(
    r"rank\s+(\d+)\s+after allreduce\s+(min|max|sum|avg|prod)\s+with\s+(\w+)\s*:\s*(\w+)\s*=\s*" + _TENSOR
)


def _values(s: str) -> list[float]:
    return [float(v) for v in re.findall(_FLOAT, s.replace("\n", " "))]


def parse_torch_example(text: str) -> TorchExample:
    """`rank R before allreduce: x = tensor([...]), y = tensor([...])` and
    `rank R after allreduce min|max|sum with GROUP: x = tensor([...])` lines (tensors may wrap; other
    example.py lines — broadcast, reduce, all_reduce_coalesced … of v0.13 `-o all` — are ignored). A
    rank's k-th `before allreduce` line opens its k-th run; its `after` lines belong to that run."""
    joined = "\n".join(_lines(text))
    res = TorchExample()
    events = [(m.start(), "b", m) for m in _BEFORE_RE.finditer(joined)] + \
             [(m.start(), "a", m) for m in _AFTER_RE.finditer(joined)]
    count: dict[int, int] = {}
    for _, kind, m in sorted(events, key=lambda e: e[0]):
        rank = int(m.group(1))
        if kind == "b":
            k = count.get(rank, 0)
            count[rank] = k + 1
            while len(res.rounds) <= k:
                res.rounds.append({})
            res.rounds[k][rank] = {a.group(1): _values(a.group(2)) for a in _ASSIGN_RE.finditer(m.group(2))}
        else:
            k = max(count.get(rank, 0) - 1, 0)
            res.after.append(TorchAfter(rank, m.group(2), m.group(4), _values(m.group(5)), m.group(3), k))
    if res.rounds:
        res.before = res.rounds[0]
    return res


def _fmt(vs: Iterable[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in vs) + "]"


def check_torch_example(parsed: TorchExample, nranks: int | None = None, tol: float = 1e-3) -> list[Check]:
    """Verify example.py's allreduce on `nranks` ranks (the CONFIGURED count: a log of fewer ranks
    fails): min of x, max of y, then sum of the (already min-reduced) x, on every rank, every run.

    example.py reduces x with MIN and then reduces the same x with SUM, so the sum step must give
    nranks × (elementwise min of the before-x values) — not the sum of the before-x values. Values
    are printed with 4 decimals: we allow `tol` absolute (plus the rounding carried by the sum).
    Without `nranks` the ranks that printed are taken as the whole job (said in the detail).
    """
    if nranks is not None and nranks < 1:
        raise UsageError(f"nranks must be ≥ 1, got {nranks}")
    if not parsed.rounds and not parsed.after:
        return [Check("torch allreduce output", False, "example.py printed no result lines")]
    n = nranks if nranks is not None else max(parsed.ranks) + 1
    assumed = "" if nranks is not None else f" (rank count not given: {n} assumed from the output)"
    rounds = parsed.rounds or [{}]
    checks: list[Check] = []
    for k, before in enumerate(rounds):
        sfx = f" (run {k + 1})" if len(rounds) > 1 else ""
        missing = [r for r in range(n) if r not in before]
        extra = sorted(r for r in before if r >= n)
        if missing or extra:
            why = (f"{n} ranks configured, but no 'before allreduce' line from rank(s) {missing}" if missing
                   else f"{n} ranks configured, but rank(s) {extra} printed too")
            checks.append(Check(f"torch allreduce ranks{sfx}", False, why))
        else:
            checks.append(Check(f"torch allreduce ranks{sfx}", True, f"all {n} configured ranks printed their inputs{assumed}"))
        full = not missing
        xs = [before[r].get("x") for r in range(n) if r in before]
        ys = [before[r].get("y") for r in range(n) if r in before]
        exp: dict[str, list[float] | None] = {"min": None, "max": None, "sum": None}
        if full and xs and all(xs) and len({len(v) for v in xs}) == 1:
            exp["min"] = [min(col) for col in zip(*xs)]
            exp["sum"] = [v * n for v in exp["min"]]
        if full and ys and all(ys) and len({len(v) for v in ys}) == 1:
            exp["max"] = [max(col) for col in zip(*ys)]
        tols = {"min": tol, "max": tol, "sum": tol + n * 0.5e-4}
        what = {"min": "elementwise min of before-x", "max": "elementwise max of before-y",
                "sum": f"{n} × min(x): example.py sums the min-reduced x"}
        by_op: dict[str, list[TorchAfter]] = {}
        for a in parsed.after:
            if a.round == k:
                by_op.setdefault(a.op, []).append(a)
        for op in ("min", "max", "sum"):
            name = f"torch allreduce {op}{sfx}"
            got = by_op.get(op, [])
            if not got:
                checks.append(Check(name, False, f"no 'after allreduce {op}' line"))
                continue
            want = exp[op]
            if want is None:
                checks.append(Check(name, None if full else False,
                                    "before-values missing or of different lengths; cannot derive expectation" if full
                                    else f"inputs of rank(s) {missing} not printed: the {n}-rank result cannot be derived"))
                continue
            bad = [a for a in got if len(a.values) != len(want) or any(abs(g - w) > tols[op] for g, w in zip(a.values, want))]
            seen = sorted({a.rank for a in got})
            if bad:
                a = bad[0]
                checks.append(Check(name, False, f"rank {a.rank} got {_fmt(a.values)}, expected {_fmt(want)} ({what[op]})"))
            elif seen != list(range(n)):
                checks.append(Check(name, False, f"only rank(s) {seen} printed the {op} result, expected {n} ranks"))
            else:
                checks.append(Check(name, True, f"{_fmt(want)} on all {n} ranks ({what[op]})"))
        incons = sorted(op for op, items in by_op.items() if len({tuple(a.values) for a in items}) > 1)
        checks.append(
            Check(
                f"torch allreduce ranks agree{sfx}",
                not incons,
                "every rank printed the same results" if not incons else f"ranks disagree on: {', '.join(incons)}",
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
