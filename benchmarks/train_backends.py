#!/usr/bin/env python3
"""The train stage with the FlagCX backend against the same run with NCCL, side by side.

    .venv/bin/python benchmarks/train_backends.py FLAGCX_LOG NCCL_LOG [--skip 2]

Each LOG is the train stage's output (containerctl's driver, stages/assets/flagscale_train.py:
the stage log of `containerctl exec-stage train`, or train-<backend>.log of
tests/fixtures/h100/train-device.sh). Both are judged by results/train.py (the stage's own
verdict); the table shows iterations, first and last loss, the median time per iteration over
the iterations after the first --skip (warm-up: the first one builds the kernels and the
communicators) and FlagCX's over NCCL's (> 1 = FlagCX slower). Nothing is timed here: the
numbers are the ones Megatron logged.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from containerctl.results.train import judge  # noqa: E402


def side(path: str, backend: str, skip: int) -> dict:
    m, checks, extra = judge(Path(path).read_text(errors="replace"), {"backend": backend})
    its = m.get("iterations") or []
    ms = [i["ms_per_iter"] for i in its[skip:] if i.get("ms_per_iter") is not None]
    failed = [c["name"] for c in checks if c["ok"] is False]
    return {"backend": backend, "n": len(its), "first": m.get("first_loss"),
            "last": m.get("last_loss"), "ms": statistics.median(ms) if ms else None,
            "tflops": m.get("tflops_per_gpu_median"), "verdict": "FAIL " + ", ".join(failed)
            if failed else "PASS", "flagscale": extra.get("flagscale", {})}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("flagcx_log")
    ap.add_argument("nccl_log")
    ap.add_argument("--skip", type=int, default=2, help="warm-up iterations left out (default 2)")
    a = ap.parse_args(argv)
    rows = [side(a.flagcx_log, "flagcx", a.skip), side(a.nccl_log, "nccl", a.skip)]
    fs = rows[0]["flagscale"]
    print(f"FlagScale {fs.get('version', '?')} ({fs.get('layout', '?')}, Megatron "
          f"{fs.get('megatron_source', '?')}); median over iterations after the first {a.skip}")
    print(f"{'backend':8} {'iters':>5} {'first loss':>10} {'last loss':>9} {'ms/iter':>8} "
          f"{'TFLOP/s':>7}  verdict")
    for r in rows:
        print(f"{r['backend']:8} {r['n']:>5} {r['first'] or float('nan'):>10.4f} "
              f"{r['last'] or float('nan'):>9.4f} {r['ms'] or float('nan'):>8.1f} "
              f"{r['tflops'] or float('nan'):>7.1f}  {r['verdict']}")
    if rows[0]["ms"] and rows[1]["ms"]:
        print(f"iteration time flagcx / nccl = {rows[0]['ms'] / rows[1]['ms']:.2f}")
    return 0 if all(r["verdict"] == "PASS" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
