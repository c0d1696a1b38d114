"""Turn a stage's output into metrics and checks. One function per `parse:` name in the stage
defs; each returns (metrics dict, list of check dicts {name, ok, detail}, repro extras)."""
from __future__ import annotations

from typing import Callable

from ..errors import ContainerctlError
from ..results import parsers as P
from . import markers as M
from .markers import split_colls

ParseFn = Callable[[str, dict], tuple[dict, list[dict], dict]]
_REG: dict[str, ParseFn] = {}


def parser(name: str):
    def deco(fn: ParseFn) -> ParseFn:
        _REG[name] = fn
        return fn
    return deco


def run_parser(name: str | None, text: str, ctx: dict) -> tuple[dict, list[dict], dict]:
    if not name:
        return {}, [], {}
    return _REG[name](text, ctx)


@parser("deps")
def parse_deps(text: str, ctx: dict):
    deps: dict[str, dict] = {}
    checks = []
    for line in text.splitlines():
        if M.is_dep_line(line):
            name, kv = M.split_dep(line)
            deps[name] = kv
            st = kv.get("status")
            if st == "missing":
                checks.append({"name": f"dep {name}", "ok": False,
                               "detail": kv.get("fix", "missing").replace("_", " ")})
            elif st in ("found", "installed"):
                checks.append({"name": f"dep {name}", "ok": True,
                               "detail": " ".join(f"{k}={v}" for k, v in kv.items()
                                                  if k != "status")})
    repro = {"deps": {k: {kk: vv for kk, vv in v.items() if kk != "status"}
                      for k, v in deps.items() if v.get("status") in ("found", "installed")}}
    return {"deps": deps}, checks, repro


@parser("build")
def parse_build(text: str, ctx: dict):
    commit = M.first_value("commit", text) or "unknown"
    ok = "libflagcx.so" in text and "was not produced" not in text
    return ({"flagcx_commit": commit},
            [{"name": "libflagcx.so built", "ok": ok,
              "detail": "build/lib/libflagcx.so present" if ok else "not produced"}],
            {"flagcx_commit": commit})


@parser("perf")
def parse_perf(text: str, ctx: dict):
    from ..results import references as R
    from ..results.store import perf_metrics_from_text
    nranks = int(ctx.get("nranks") or 2)
    colls: dict[str, dict] = {}
    checks: list[dict] = []
    fxi = ctx.get("flagcx")
    evidence = fxi.buffer_evidence(ctx.get("print_buffer", True)) if fxi is not None else "unknown"
    ends = M.coll_ends(text)
    missing = M.coll_missing(text)
    for coll, chunk in split_colls(text).items():
        chunk = M.strip_coll_ends(chunk)
        chunk = judged_text(chunk)
        rc = ends.get(coll)
        if coll in missing:
            checks.append({"name": f"{coll} built", "ok": False,
                           "detail": f"{missing[coll]} was not built (see the make output in "
                                     "the log)"})
            continue
        if rc is None:
            checks.append({"name": f"{coll} ran", "ok": False,
                           "detail": "the run was cut: no end marker (killed, timed out or the "
                                     "container stopped)"})
        elif rc != 0:
            checks.append({"name": f"{coll} ran", "ok": False,
                           "detail": f"the launcher exited {rc}"})
        m = perf_metrics_from_text(chunk, coll, nranks)
        part = m["collectives"].get(coll) or next(iter(m["collectives"].values()), None)
        rows = sum(len(s["rows"]) for s in (part or {}).get("sweeps", []))
        if not part or rows == 0:
            checks.append({"name": f"{coll} output", "ok": False,
                           "detail": "no 'Comm size: … Bus bandwidth' lines were printed"})
            continue
        colls[coll] = part
        # that lines were printed is no evidence the collective ran: plausibility and the
        # buffers are (results/verdict.py: no pass without evidence)
        checks.append({"name": f"{coll} output", "ok": True, "detail": f"{rows} sizes measured",
                       "evidence": False})
        checks.append(P.check_plausible(coll, part, max_busbw(ctx), nranks).to_dict())
        if evidence == "none":
            why = ("this FlagCX prints no buffers or verdict (-p 1 prints nothing): correctness "
                   "comes from the unittest stage" if ctx.get("print_buffer", True) else
                   "perf ran with -p 0: no buffers to check")
            checks.append({"name": f"{coll} correctness", "ok": None, "detail": why})
            continue
        for c in _oracle(coll, chunk, nranks, (ctx.get("perf") or {}).get("op")):
            checks.append(c)
    metrics = {"collectives": colls}
    refs = ctx.get("references")
    platform = ctx.get("platform_key")
    try:
        ref_table = R.load_references(platform, refs or None)
    except ContainerctlError as e:  # never drop every reference silently: say why, as a failed check
        ref_table = None
        checks.append({"name": "references", "ok": False,
                       "detail": e.message + (f" (fix: {e.hint})" if e.hint else "")})
    if ref_table:
        checks += [c.to_dict() for c in R.evaluate(metrics, ref_table)]
    if ctx.get("expect_hybrid"):   # a variant that splits the ranks into clusters (variants.py)
        from ..flagcx.interface import hybrid_evidence
        hyb, line = hybrid_evidence(text)
        checks.append({"name": "communicator hybrid", "ok": bool(hyb),
                       "detail": (f"FlagCX: {line}" if hyb else
                                  f"FlagCX stayed homogeneous: {line}" if hyb is False else line)})
        metrics["communicator"] = "hybrid" if hyb else "homogeneous" if hyb is False else "unknown"
    if not split_colls(text):
        checks.append({"name": "perf ran", "ok": False,
                       "detail": "no collective was run: the perf tests did not build or the "
                                 "launcher did not start (see the stage log)"})
    return metrics, checks, {}


def max_busbw(ctx: dict) -> float | None:
    """The profile's limits.max_busbw_gbps (None: no bound known for this platform)."""
    lim = getattr(ctx.get("profile"), "limits", None)
    v = lim.get("max_busbw_gbps") if isinstance(lim, dict) else getattr(lim, "max_busbw_gbps", None)
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 else None


def judged_text(chunk: str) -> str:
    """What one collective's run is judged on: every rank's own output file, rank after rank
    (the stage dumps them tagged `CCTL_RANK<r>| `), so ranks' lines can never interleave;
    the live stream (rank 0's copy) only when no rank files were dumped."""
    ranks = M.rank_lines(chunk)
    if not ranks:
        return chunk
    return "\n".join("\n".join(ranks[r]) for r in sorted(ranks)) + "\n"


def _oracle(coll: str, chunk: str, nranks: int, op: str | None = "sum") -> list[dict]:
    """The perf correctness checks for one collective's output (results/parsers.py)."""
    c = P.check_collective(coll, P.parse_perf_buffers(chunk), nranks, op=op or "sum")
    return [x.to_dict() for x in (c if isinstance(c, list) else [c])]


@parser("torch")
def parse_torch(text: str, ctx: dict):
    parsed = P.parse_torch_example(text)
    try:
        checks = [c.to_dict() for c in P.check_torch_example(parsed, nranks=int(ctx.get("nranks") or 0) or None)]
    except TypeError:  # older signature
        checks = [c.to_dict() for c in P.check_torch_example(parsed, int(ctx["nranks"]) if ctx.get("nranks") else None)]
    metrics = {"torch_example": P.as_dicts([parsed])[0] if hasattr(parsed, "__dataclass_fields__")
               else {}}
    return metrics, checks, {"torch": M.first_value("torch", text)}


@parser("train")
def parse_train(text: str, ctx: dict):
    from ..results.train import judge   # the train verdict (results/train.py)
    return judge(text, ctx)


@parser("unittest")
def parse_unittest(text: str, ctx: dict):
    """FlagCX's gtest suites: per-binary results from their XML (or console output when a
    binary died before writing it), components that did not build, known failures."""
    known = list(ctx.get("known_failures") or [])
    known_build = set(ctx.get("known_build_failures") or [])
    if M.UT_NONE_RE.search(text):
        return ({"unittest": {"binaries": {}, "layout": "none"}},
                [{"name": "unit tests", "ok": None,
                  "detail": "this checkout has no test/unittest: nothing to run"}], {})
    from ..results import gtest as G
    checks: list[dict] = []
    binaries: dict[str, dict] = {}
    missing: list[tuple[str, str]] = []
    marks = list(M.UT_MARK_RE.finditer(text))
    cur = None
    for i, m in enumerate(marks):
        kind, kv = m.group(1), M.kv(m.group(2))
        body = text[m.end():marks[i + 1].start() if i + 1 < len(marks) else len(text)]
        if kind == "ut-missing":
            missing.append((kv.get("comp", "?"), kv.get("want", "?")))
        elif kind == "ut-run":
            cur = kv.get("bin", "?")
            binaries[cur] = {"kind": kv.get("kind"), "console": body, "xml": [], "rc": None}
        elif kind == "ut-end" and kv.get("bin") in binaries:
            binaries[kv["bin"]]["rc"] = int(kv.get("rc", "1"))
        elif kind == "ut-xml" and kv.get("bin") in binaries:
            xml = M.untag_xml(body)
            binaries[kv["bin"]]["xml"].append(xml.strip())
    for comp, want in missing:
        name = f"unittest {comp} build"
        if comp in known_build:
            checks.append({"name": name, "ok": None,
                           "detail": f"the {want} tests did not build (a known build failure "
                                     "in this profile)"})
        else:
            checks.append({"name": name, "ok": False,
                           "detail": f"component {comp}: the {want} tests did not build (see "
                                     "the make output in the log)"})
    metrics_bins = {}
    for name, b in binaries.items():
        c, summary = _judge_binary(G, name, b, known)
        metrics_bins[name] = summary
        checks.append(c)
    excluded = list(ctx.get("excluded_tests") or [])
    if excluded:
        checks.append({"name": "unittest exclusions", "ok": None,
                       "detail": "not run on this profile (stages.unittest.exclude): "
                                 + ", ".join(excluded)})
    if not binaries and not missing:
        checks.append({"name": "unit tests", "ok": False,
                       "detail": "no unit-test binary was built or run (see the log)"})
    return {"unittest": {"binaries": metrics_bins, "missing": missing}}, checks, {}


def _judge_binary(G, name: str, b: dict, known: list[str]) -> tuple[dict, dict]:
    """One gtest binary: every rank's XML (a rank that wrote none is judged from the console),
    a timeout or crash named as such; FAIL when any rank failed a case that is not known."""
    rc = b["rc"]
    runs = []
    for x in b["xml"]:
        try:
            runs.append(G.parse_gtest_xml(x, binary=name))
        except Exception as exc:  # an unreadable XML is a crash, not a pass
            r = G.GtestRun(binary=name)
            r.crashed = f"unreadable XML ({exc})"
            runs.append(r)
    if not runs:
        r = G.parse_gtest_console(b["console"], binary=name)
        if rc in (124, 137):
            r.crashed = "timed out (the per-binary timeout killed it)" + (
                f"; {r.crashed}" if r.crashed else "")
        runs.append(r)
    elif rc in (124, 137):
        runs[0].crashed = "timed out (the per-binary timeout killed it)"
    checks = []
    for i, r in enumerate(runs):
        G.apply_known_failures(r, known)
        code = rc if i == 0 else None
        if code == 1 and r.count("known-failure") and not r.failed and not r.crashed:
            code = None   # gtest exits 1 for any failed case, known ones included
        if r.ran == 0 and not r.cases and not r.crashed and code in (None, 0):
            # no evidence either way: the binary registered no test here
            checks.append(P.Check(f"unittest {name}", None,
                                  "ran 0 tests: the binary registered none in this setting"))
            continue
        checks.append(G.check_gtest(r, name=f"unittest {name}", known_failures=known,
                                    exit_code=code))
    bad = [c for c in checks if c.ok is False]
    chosen = bad[0] if bad else checks[0]
    d = chosen.to_dict()
    if len(runs) > 1:
        d["detail"] += f" ({len(runs)} ranks reported)"
    summary = {"kind": b.get("kind"), "exit_code": rc, "ranks": len(runs),
               "cases": [{"name": c.name, "status": c.status, "time_s": c.time_s,
                          "message": c.message[:300]} for c in runs[0].cases]}
    for r in runs[1:]:
        for c in r.failed:
            summary["cases"].append({"name": c.name, "status": c.status, "rank_other": True,
                                     "message": c.message[:300]})
    return d, summary
