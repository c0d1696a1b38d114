#!/usr/bin/env python3
"""How `containerctl cluster` scales with the number of hosts: N = 1, 2, 4, 8 CPU "hosts"
(cpu-selftest containers shaped like examples/hosts-local-selftest.yaml, 2 slots each, on one
user-defined Docker network of this machine's engine, the FlagCX stand-in `selftest`), each
phase timed — up, mesh, mpich, deps, build, perf-build, launch — and T(N)/T(1) per phase.

    .venv/bin/python benchmarks/cluster_scale.py [--hosts 1,2,4,8] [--source DIR] [--keep]

The goal is T(8)/T(1) <= 1.5 for up + mesh + deps (the phases that wait on engines and
networks, which run on every host at once). Compiling (build, perf-build) is CPU work: on a
machine with C cores, N hosts compiling at once take about N/C times as long, which no
concurrency removes; launch runs 2N ranks on those cores. Everything runs in a throw-away
CONTAINERCTL_HOME and is removed afterwards (the image is reused)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PHASES = ["up", "mesh", "mpich", "deps", "build", "perf-build", "launch"]
GOAL = ["up", "mesh", "deps"]


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)


def one(n: int, tag: str, source: str | None, keep: bool, verbose: bool = False
        ) -> tuple[dict, str]:
    import yaml
    from containerctl.cluster import Cluster
    from containerctl.cluster.inventory import load_inventory
    name = f"bench{tag}n{n}"
    net = f"cctl-{name}"
    docker("network", "create", "--label", "io.containerctl.test=1", net)
    inv = {"cluster": {"name": name, "network": net},
           "hosts": [{"name": f"h{i}", "profile": "cpu-selftest", "slots": 2,
                      "env": {"CUDA_VISIBLE_DEVICES": "0,1"}} for i in range(n)]}
    f = Path(tempfile.mkdtemp(prefix="cctl-bench-")) / "hosts.yaml"
    f.write_text(yaml.safe_dump(inv, sort_keys=False))
    lines: list[str] = []
    t0 = time.monotonic()
    cl = Cluster(load_inventory(f), say=(lambda m: print(f"  {time.monotonic() - t0:6.2f} {m}",
                                                        file=sys.stderr)) if verbose
                 else lines.append)
    opts = {"begin": "1K", "end": "64K", "source": source}
    status = "?"
    try:
        cl.up()
        cl.ensure_mpich()
        cl.build(opts)
        _rid, rec = cl.hetero(opts, checked=True)
        status = rec["status"] + ("" if rec["status"] == "passed" else f" ({rec['message']})")
    except Exception as exc:          # the table still shows what was measured
        status = f"error: {getattr(exc, 'message', exc)}"
    finally:
        total = time.monotonic() - t0
        if not keep:
            try:
                cl.down(volumes=True)
            except Exception as exc:  # noqa: BLE001
                print(f"cleanup of {name} failed: {exc}", file=sys.stderr)
            docker("network", "rm", net)
    t = dict(cl.timings)
    t["total"] = round(total, 3)
    return t, status


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hosts", default="1,2,4,8", help="comma-separated host counts")
    ap.add_argument("--source", help="FlagCX checkout to build (default: the selftest stand-in)")
    ap.add_argument("--keep", action="store_true", help="leave the clusters up")
    ap.add_argument("-v", "--verbose", action="store_true", help="print the progress lines")
    a = ap.parse_args()
    ns = [int(x) for x in a.hosts.split(",")]
    os.environ.setdefault("CONTAINERCTL_HOME", tempfile.mkdtemp(prefix="cctl-bench-home-"))
    from containerctl import images
    from containerctl.engine import get_engine
    images.ensure_image(get_engine(), "cpu-selftest")      # built once, outside the timings
    tag = uuid.uuid4().hex[:4]
    res: dict[int, dict] = {}
    for n in ns:
        print(f"N={n} …", file=sys.stderr, flush=True)
        res[n], status = one(n, tag, a.source, a.keep, a.verbose)
        print(f"N={n}: {res[n]['total']:.1f}s, hetero {status}", file=sys.stderr, flush=True)
    base = ns[0]
    rows = PHASES + ["up+mesh+deps", "total"]
    for r in res.values():
        r["up+mesh+deps"] = round(sum(r.get(p, 0.0) for p in GOAL), 3)
    head = "| phase | " + " | ".join(f"T({n}) s" for n in ns) + " | " + \
        " | ".join(f"T({n})/T({base})" for n in ns[1:]) + " |"
    print(f"cpu cores: {os.cpu_count()}; hosts × 2 slots; sizes 1K..64K")
    print(head)
    print("|" + "---|" * (1 + 2 * len(ns) - 1))
    for p in rows:
        vals = [res[n].get(p) for n in ns]
        t1 = vals[0]
        cells = [f"{v:.2f}" if v is not None else "-" for v in vals]
        ratios = [f"{v / t1:.2f}" if v is not None and t1 else "-" for v in vals[1:]]
        print(f"| {p} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")
    last = res[ns[-1]]["up+mesh+deps"] / (res[base]["up+mesh+deps"] or 1)
    print(f"goal T({ns[-1]})/T({base}) <= 1.5 for up+mesh+deps: {last:.2f} "
          f"({'met' if last <= 1.5 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
