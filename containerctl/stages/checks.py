"""Turn a stage's output into metrics and checks. One function per `parse:` name in the stage
defs; each returns (metrics dict, list of check dicts {name, ok, detail}, repro extras)."""
from __future__ import annotations

import re
from typing import Callable

from ..results import parsers as P

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


_KV = re.compile(r"(\w+)=(\S+)")


@parser("deps")
def parse_deps(text: str, ctx: dict):
    deps: dict[str, dict] = {}
    checks = []
    for line in text.splitlines():
        if line.startswith("DEP "):
            _, name, rest = line.split(" ", 2) if line.count(" ") >= 2 else (line, line[4:], "")
            kv = dict(_KV.findall(rest))
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
    m = re.search(r"^FLAGCX_COMMIT=(\S+)", text, re.M)
    commit = m.group(1) if m else "unknown"
    ok = "libflagcx.so" in text and "was not produced" not in text
    return ({"flagcx_commit": commit},
            [{"name": "libflagcx.so built", "ok": ok,
              "detail": "build/lib/libflagcx.so present" if ok else "not produced"}],
            {"flagcx_commit": commit})


_MARK = re.compile(r"^=== containerctl coll=(\w+)(?: nranks=(\d+))?(?: missing=(\S+))? ===$", re.M)


def split_colls(text: str) -> dict[str, str]:
    """Per-collective slices of a perf stage's output (between containerctl's markers)."""
    out: dict[str, str] = {}
    marks = list(_MARK.finditer(text))
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        out[m.group(1)] = text[m.end():end]
    return out


@parser("perf")
def parse_perf(text: str, ctx: dict):
    from ..results import references as R
    from ..results.store import perf_metrics_from_text
    nranks = int(ctx.get("nranks") or 2)
    colls: dict[str, dict] = {}
    checks: list[dict] = []
    for coll, chunk in split_colls(text).items():
        m = perf_metrics_from_text(chunk, coll, nranks)
        part = m["collectives"].get(coll) or next(iter(m["collectives"].values()), None)
        rows = sum(len(s["rows"]) for s in (part or {}).get("sweeps", []))
        if not part or rows == 0:
            checks.append({"name": f"{coll} output", "ok": False,
                           "detail": "no 'Comm size: … Bus bandwidth' lines were printed"})
            continue
        colls[coll] = part
        checks.append({"name": f"{coll} output", "ok": True, "detail": f"{rows} sizes measured"})
        c = P.check_collective(coll, P.parse_perf_buffers(chunk), nranks)
        checks.append(c.to_dict())
    metrics = {"collectives": colls}
    refs = ctx.get("references")
    platform = ctx.get("platform_key")
    try:
        ref_table = R.load_references(platform, refs or None)
    except Exception:
        ref_table = None
    if ref_table:
        checks += [c.to_dict() for c in R.evaluate(metrics, ref_table)]
    if not split_colls(text):
        checks.append({"name": "perf ran", "ok": False,
                       "detail": "no collective was run: the perf tests did not build or the "
                                 "launcher did not start (see the stage log)"})
    return metrics, checks, {}


@parser("torch")
def parse_torch(text: str, ctx: dict):
    parsed = P.parse_torch_example(text)
    checks = [c.to_dict() for c in P.check_torch_example(parsed)]
    m = re.search(r"^TORCH_VERSION=(\S+)", text, re.M)
    metrics = {"torch_example": P.as_dicts([parsed])[0] if hasattr(parsed, "__dataclass_fields__")
               else {}}
    return metrics, checks, {"torch": m.group(1) if m else None}


@parser("train")
def parse_train(text: str, ctx: dict):
    iters = P.parse_flagscale_iterations(text)
    return {"iterations": iters}, [c.to_dict() for c in P.check_training(iters)], {}
