"""The train stage's verdict: FlagScale/Megatron iterations with loss, throughput and memory, and
what the driver (stages/assets/flagscale_train.py) saw: the probe, the sizing, how the job ended,
the stop, and FlagCX's own log lines from inside the job.

PASS needs: the asked iterations, every loss finite, a last loss lower than the first (by at least
`stages.train.min_loss_drop`, a fraction of the first; default 0 = strictly lower), a job that
reached its iterations (not stalled, not exited early), action=stop run with nothing of the job
left on the GPU, and, for the flagcx backend, FlagCX's own log lines in the job's output.
Pure functions over text.
"""
from __future__ import annotations

import math
import re
import statistics
from typing import Any

from .parsers import Check, parse_flagscale_iterations

LOG_MARK = "=== containerctl train log ==="
_EVENT = re.compile(r"^CCTL_TRAIN (\w+)((?: \w+=\S*)*)\s*$", re.M)
_KV = re.compile(r"(\w+)=(\S*)")
# FlagCX's own logger lines (the driver, stages/assets/flagscale_train.py, prints only these as
# CCTL_FLAGCX| …; a line that merely contains "flagcx" — a path, the argument dump — is no evidence)
FLAGCX_LOG_RE = re.compile(r"\bFLAGCX (?:INFO|WARN|WARNING|TRACE|ERROR|ABORT)\b")
_COMM_DONE = re.compile(r"FLAGCX INFO rank \d+ nranks \d+ - DONE")
_MEM = re.compile(r"memory \(MB\)\s*\|(.*)$", re.M)
_MEM_KEYS = {"allocated": "allocated_mb", "max allocated": "max_allocated_mb",
             "reserved": "reserved_mb", "max reserved": "max_reserved_mb"}


def events(text: str) -> dict[str, list[dict[str, str]]]:
    """`CCTL_TRAIN <what> k=v …` lines, grouped by <what> (underscores stand for spaces)."""
    out: dict[str, list[dict[str, str]]] = {}
    for m in _EVENT.finditer(text):
        kv = {k: v.replace("_", " ") if k in ("why", "reason") else v
              for k, v in _KV.findall(m.group(2))}
        out.setdefault(m.group(1), []).append(kv)
    return out


def _merged(evs: dict, what: str) -> dict[str, str]:
    d: dict[str, str] = {}
    for kv in evs.get(what, []):
        d.update(kv)
    return d


def parse_memory(text: str) -> dict[str, float] | None:
    """Megatron's `(after N iterations) memory (MB) | allocated: … | max reserved: …` line;
    the largest value of each field over ranks."""
    best: dict[str, float] = {}
    for m in _MEM.finditer(text):
        for part in m.group(1).split("|"):
            k, _, v = part.partition(":")
            key = _MEM_KEYS.get(" ".join(k.split()).lower())
            try:
                val = float(v.strip())
            except ValueError:
                continue
            if key:
                best[key] = max(best.get(key, 0.0), val)
    return best or None


def unique_iterations(text: str) -> list[dict[str, Any]]:
    """One entry per iteration number (the line that carries a loss wins: with pipeline
    parallelism only the last stage prints it), in order."""
    by: dict[int, dict[str, Any]] = {}
    for it in parse_flagscale_iterations(text):
        cur = by.get(it["iteration"])
        if cur is None or (cur["lm_loss"] is None and it["lm_loss"] is not None):
            by[it["iteration"]] = it
    return [by[k] for k in sorted(by)]


def _num(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _min_loss_drop(opts: Any) -> float:
    """stages.train.min_loss_drop of the stage's profile; a log judged without one (results
    import, a test) gets the model's default, the one place it is set."""
    drop = _num(getattr(opts, "min_loss_drop", None)) if opts is not None else None
    if drop is None:
        from ..profiles.model import TrainOpts   # start-up: pydantic, only when no profile came
        drop = float(TrainOpts.model_fields["min_loss_drop"].default)
    return drop


def judge(text: str, ctx: dict | None = None) -> tuple[dict, list[dict], dict]:
    ctx = ctx or {}
    opts = ctx.get("train")
    evs = events(text)
    body = text.split(LOG_MARK, 1)[1] if LOG_MARK in text else text
    iters = unique_iterations(body)
    checks: list[Check] = []
    probe = _merged(evs, "probe")
    sized = _merged(evs, "sized")
    config = _merged(evs, "config")
    result = _merged(evs, "result")
    backend = config.get("backend")
    asked = _num(_merged(evs, "asked").get("iterations")) or _num(getattr(opts, "iterations", None)
                                                               if opts is not None else None)
    errors = re.findall(r"^error: (.*)$", text, re.M)
    metrics: dict[str, Any] = {"iterations": iters, "probe": probe, "sized": sized,
                               "backend": backend, "outcome": result.get("outcome")}

    if result.get("verdict") == "unusable" or (errors and not iters):
        checks.append(Check("train FlagScale", False, "; ".join(errors) or
                            "the driver found this FlagScale unusable"))
    elif probe:
        checks.append(Check("train FlagScale", True,
                            f"layout {probe.get('layout')} (version {probe.get('version')}, "
                            f"Megatron {probe.get('megatron_source')}), runner "
                            f"{probe.get('runner')}, config {probe.get('conf')}/"
                            f"{probe.get('config_name')}.yaml"))

    # iterations
    n = len(iters)
    if not iters:
        checks.append(Check("train iterations", False,
                            "no 'iteration N/M |' lines in the training log"
                            + (f" (asked {int(asked)})" if asked else "")))
    else:
        last = iters[-1]
        ok = asked is None or n >= asked
        checks.append(Check("train iterations", ok,
                            f"{n} iterations logged, last {last['iteration']}/{last['total']}"
                            + (f" (asked {int(asked)})" if asked else "")))
    # losses
    losses = [(i["iteration"], i["lm_loss"]) for i in iters if i["lm_loss"] is not None]
    nan_reported = sum(i["nan"] or 0 for i in iters)
    bad = [(it, v) for it, v in losses if not math.isfinite(v)]
    if iters and not losses:
        checks.append(Check("train loss finite", None, "no lm loss values in the iteration lines"))
    elif losses:
        if bad or nan_reported:
            where = (f"lm loss {bad[0][1]} at iteration {bad[0][0]}" if bad else
                     f"Megatron reported {nan_reported} nan iteration(s)")
            checks.append(Check("train loss finite", False, where))
        else:
            checks.append(Check("train loss finite", True,
                                f"{len(losses)} finite losses, no nan iterations"))
    drop = _min_loss_drop(opts)
    finite = [(it, v) for it, v in losses if math.isfinite(v)]
    if len(finite) >= 2 and not bad:
        (i0, l0), (i1, l1) = finite[0], finite[-1]
        need = l0 * (1 - drop)
        ok = l1 < need if drop == 0 else l1 <= need
        checks.append(Check("train loss decreased", ok,
                            f"lm loss {l0:.4g} at iteration {i0} -> {l1:.4g} at iteration {i1}"
                            + ("" if ok else f": not below {need:.4g}"
                               + (f" (min_loss_drop {drop:g})" if drop else " (must go down)"))))
    elif losses and not bad:
        checks.append(Check("train loss decreased", None, "fewer than two losses to compare"))
    metrics["loss_curve"] = [[it, v] for it, v in losses]
    if finite:
        metrics["first_loss"], metrics["last_loss"] = finite[0][1], finite[-1][1]
    # throughput (the first iteration carries start-up work: left out of the median)
    ms = [i["ms_per_iter"] for i in iters[1:] if i["ms_per_iter"] is not None] or \
         [i["ms_per_iter"] for i in iters if i["ms_per_iter"] is not None]
    if ms:
        metrics["ms_per_iter_median"] = round(statistics.median(ms), 3)
    tf = [i["tflops_per_gpu"] for i in iters[1:] if i["tflops_per_gpu"] is not None]
    if tf:
        metrics["tflops_per_gpu_median"] = round(statistics.median(tf), 3)
    mem = parse_memory(body)
    if mem:
        metrics["memory_mb"] = mem

    # how the job ended
    outcome = result.get("outcome")
    if outcome:
        st, ex, lim = (_merged(evs, "stalled"), _merged(evs, "exited"), _merged(evs, "time_limit"))
        tail = [ln[len("CCTL_TAIL| "):] for ln in text.splitlines() if ln.startswith("CCTL_TAIL| ")]
        bad_line = re.compile(r"\w(Error|Exception)\b|error:|Killed|CUDA error|NCCL error")
        # a rank's own error first (torchrun's ChildFailedError only says that a rank failed)
        err = next((ln.strip() for ln in reversed(tail)
                    if re.match(r"\s*\[default\d+\]:", ln) and bad_line.search(ln)),
                   next((ln.strip() for ln in reversed(tail) if bad_line.search(ln)),
                        next((ln.strip() for ln in reversed(tail) if ln.strip()), "")))
        if outcome == "reached":
            checks.append(Check("train job", True, f"reached the asked iterations in "
                                f"{result.get('seconds', '?')} s"))
        elif outcome == "stalled":
            checks.append(Check("train job", False,
                                f"stalled: no new iteration for {st.get('silent_s', '?')} s after "
                                f"{st.get('iterations', '?')} iteration(s) (bound "
                                f"{st.get('bound_s', '?')} s, stages.train.stall_seconds)"))
        elif outcome == "exited":
            checks.append(Check("train job", False,
                                f"the job exited after {ex.get('iterations', '?')} of "
                                f"{int(asked) if asked else '?'} iterations"
                                + (f"; its log ends: {err[:300]}" if err else "")))
        elif outcome == "time-limit":
            checks.append(Check("train job", False,
                                f"time limit: {lim.get('iterations', '?')} iterations in "
                                f"{lim.get('seconds', '?')} s (stages.train.time_limit)"))
        elif outcome.startswith("terminated-by-signal-"):
            checks.append(Check("train job", False,
                                f"terminated by signal {outcome.rsplit('-', 1)[1]} after {n} "
                                "iteration(s) (the stage's timeout or an interrupt)"))
        elif outcome == "launch-failed":
            checks.append(Check("train job", False, "FlagScale's run.py action=run failed"
                                + (f": {err[:300]}" if err else "")))
        else:
            checks.append(Check("train job", False, f"{outcome}"
                                + (f": {err[:300]}" if err else "")))
    # the stop
    if evs.get("stop"):
        s = _merged(evs, "stop")
        gpu = s.get("gpu_left", "unknown")
        killed = int(_num(s.get("killed")) or 0)
        ok = gpu in ("0", "unknown")
        detail = f"action=stop ran (rc {s.get('rc')})"
        detail += (f"; {killed} process(es) of the job outlived it and were killed" if killed
                   else "; no process of the job left")
        detail += {"0": ", none on the GPU", "unknown": " (GPU processes not readable)"}.get(
            gpu, f"; {gpu} of the job's processes still on the GPU")
        checks.append(Check("train stop", ok, detail))
    elif outcome or probe.get("layout"):
        checks.append(Check("train stop", False if outcome else None,
                            "action=stop did not run" if outcome else
                            "the job was never started: nothing to stop"))
    # evidence of the backend
    fx = [ln[len("CCTL_FLAGCX| "):] for ln in text.splitlines()
          if ln.startswith("CCTL_FLAGCX| ") and FLAGCX_LOG_RE.search(ln)]
    metrics["flagcx_evidence"] = fx[:5]
    if backend == "flagcx" and (iters or outcome):
        # the driver prints up to 40 of them and counts them all
        count = str(len(fx)) if len(fx) < 40 else _merged(evs, "flagcx_lines").get("count", "40+")
        comms = sum(1 for ln in fx if _COMM_DONE.search(ln))
        if fx:
            checks.append(Check("train backend flagcx", True,
                                f"{count} FlagCX log lines from inside the job"
                                + (f" ({comms} communicator(s) initialised)" if comms else "")
                                + f", e.g. {fx[0].strip()[:200]}"))
        else:
            checks.append(Check("train backend flagcx", False,
                                "no FlagCX log line in the job's output (FLAGCX_DEBUG=INFO was "
                                "set): nothing shows that FlagCX carried the communication"))
    elif backend and backend != "flagcx":
        checks.append(Check("train backend flagcx", None, f"backend {backend} (a baseline run)"))
    return metrics, [c.to_dict() for c in checks], {"flagscale": {
        k: probe.get(k) for k in ("layout", "version", "megatron_source", "root") if probe.get(k)}}


def loss_svg(curves: dict[str, list[list[float]]], width: int = 640, height: int = 280) -> str:
    """An inline SVG of lm loss against iteration, one line per run (label -> [[it, loss], …]);
    no plotting library needed. Non-finite losses are left out of the line and marked."""
    pts = {k: [(float(i), float(v)) for i, v in c if v is not None and math.isfinite(float(v))]
           for k, c in curves.items()}
    pts = {k: v for k, v in pts.items() if v}
    if not pts:
        return ""
    xs = [x for v in pts.values() for x, _ in v]
    ys = [y for v in pts.values() for _, y in v]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    L, R, T, B = 56, 12, 12, 36
    sx = lambda x: L + (x - x0) / (x1 - x0) * (width - L - R)          # noqa: E731
    sy = lambda y: T + (y1 - y) / (y1 - y0) * (height - T - B)         # noqa: E731
    colors = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bf8700"]
    out = [f'<svg class="loss-curve" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
           'aria-label="training loss vs iteration">',
           f'<rect x="{L}" y="{T}" width="{width - L - R}" height="{height - T - B}" '
           'fill="none" stroke="#d0d7de"/>']
    for frac in (0.0, 0.5, 1.0):
        y = y0 + frac * (y1 - y0)
        out.append(f'<text x="{L - 4}" y="{sy(y) + 4:.1f}" font-size="11" text-anchor="end">'
                   f'{y:.3g}</text>')
    for x in sorted({x0, x1, round((x0 + x1) / 2)}):
        out.append(f'<text x="{sx(x):.1f}" y="{height - B + 14}" font-size="11" '
                   f'text-anchor="middle">{x:g}</text>')
    out.append(f'<text x="{(L + width - R) / 2:.0f}" y="{height - 4}" font-size="11" '
               'text-anchor="middle">iteration</text>')
    out.append(f'<text x="12" y="{(T + height - B) / 2:.0f}" font-size="11" '
               f'transform="rotate(-90 12 {(T + height - B) / 2:.0f})" '
               'text-anchor="middle">lm loss</text>')
    for n, (label, v) in enumerate(pts.items()):
        c = colors[n % len(colors)]
        line = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in v)
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="2" points="{line}">'
                   f'<title>{label}</title></polyline>')
        out.append(f'<text x="{width - R - 4}" y="{T + 14 + 14 * n}" font-size="11" fill="{c}" '
                   f'text-anchor="end">{_xml(label)}: {v[0][1]:.4g} → {v[-1][1]:.4g}</text>')
    out.append("</svg>")
    return "".join(out)


def _xml(s: str) -> str:
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def html_section(run: dict[str, Any], esc=_xml) -> str:
    """The report's training section for one run: the loss curve and the iteration numbers."""
    rec = (run.get("records") or {}).get("train") or {}
    m = rec.get("metrics") or {}
    curve = m.get("loss_curve")
    if not curve:
        return ""
    label = f"{m.get('backend') or 'train'}"
    parts = ["<h3>training loss</h3>", loss_svg({label: curve})]
    facts = []
    for k, name in (("ms_per_iter_median", "ms / iteration (median)"),
                    ("tflops_per_gpu_median", "TFLOP/s per GPU (median)")):
        if m.get(k) is not None:
            facts.append(f"{name}: {m[k]}")
    mem = m.get("memory_mb") or {}
    if mem.get("max_allocated_mb") is not None:
        facts.append(f"max allocated: {mem['max_allocated_mb']} MB")
    if facts:
        parts.append("<p>" + esc(" · ".join(facts)) + "</p>")
    return "\n".join(parts)
