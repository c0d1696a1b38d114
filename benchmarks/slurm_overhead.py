#!/usr/bin/env python3
"""The Slurm backend on the CI cluster (scripts/slurm-cluster.sh): what it costs, and whether it
measures what a local run measures.

    bash scripts/slurm-cluster.sh up            # once
    .venv/bin/python benchmarks/slurm_overhead.py [--name cctl-slurm] [--reps 5] [--no-local]

Prints
  1. allocation: sbatch → RUNNING (the allocation every run makes once);
  2. per step, median of --reps on ONE allocation: a bare `srun --overlap -N1 -n1 hostname`
     (through the same `docker exec` into the login container) against the backend's step for a
     one-line stage script (the executor's exec + srun step + the scheduler's judgement:
     scontrol show job/node, the rank file) — the difference is the backend's overhead per step;
  3. submit → verdict of `containerctl cluster exec-stage perf` (1K..64K, 4 ranks on 2 nodes),
     and of the whole `cluster run` (deps, build, unittest, perf);
  4. the same source run locally (`containerctl run`, one container, 4 ranks): the perf sizes and
     every stage's verdict side by side, and whether they match.
Everything runs in a throw-away CONTAINERCTL_HOME; the local container is removed afterwards."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXE = str(ROOT / ".venv" / "bin" / "containerctl")


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return time.monotonic() - t0, out


def cli(*args: str, home: str) -> subprocess.CompletedProcess:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=1800,
                          env=dict(os.environ, CONTAINERCTL_HOME=home))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="cctl-slurm")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--no-local", action="store_true")
    a = ap.parse_args()
    home = tempfile.mkdtemp(prefix="cctl-slurm-bench-")
    os.environ["CONTAINERCTL_HOME"] = home
    from containerctl.slurm.backend import SlurmCluster
    from containerctl.slurm.inventory import load
    from containerctl.stages.executor import exec_stage_script
    inv_file = Path(home) / "slurm.yaml"
    text = (ROOT / "examples" / "slurm-ci.yaml").read_text()
    inv_file.write_text(text.replace("docker://cctl-slurm-ctl", f"docker://{a.name}-ctl")
                        .replace("name: ci", "name: bench"))
    cl = SlurmCluster(load(inv_file))
    cl.check()
    ctl = cl.s.container
    name = f"cctl-bench-{uuid.uuid4().hex[:6]}"
    t_alloc, (job, _info) = timed(lambda: cl.allocate(name))
    bare, ours = [], []
    try:
        for _ in range(a.reps):
            t, ans = timed(lambda: cl.host.run(["srun", f"--jobid={job}", "--overlap", "-N1",
                                                "-n1", "--mpi=none", "hostname"]))
            assert ans.ok, ans.out
            bare.append(t)
        for i in range(a.reps):
            steps: list = []
            plug = cl.plug(job, name, f"bench{i}", steps)

            def step():
                code, outcome = exec_stage_script(cl.engine, ctl, "echo hello", f"bench{i}", 60,
                                                  lambda b: None, run=plug.run)
                said = plug.finish(code, outcome, "")
                return code, said
            t, (code, said) = timed(step)
            assert code == 0 and not [c for c in said["checks"] if c["ok"] is False], said
            ours.append(t)
    finally:
        end = cl.release(job, name)
    med_b, med_o = statistics.median(bare), statistics.median(ours)
    print(f"cluster {a.name}: 2 nodes x 2 CPUs, submit host docker://{ctl}")
    print(f"allocation (sbatch -> RUNNING):               {t_alloc:6.2f} s   (job {job}, {end})")
    print(f"bare srun hostname step (median of {a.reps}):     {med_b:6.3f} s")
    print(f"backend step, 1-line stage (median of {a.reps}):  {med_o:6.3f} s")
    print(f"backend overhead per step:                    {med_o - med_b:6.3f} s "
          f"({med_o / med_b:.2f}x the bare step)")

    r0 = cli("cluster", "exec-stage", "deps", "--hosts", str(inv_file), "-q", home=home)
    r1 = cli("cluster", "exec-stage", "build", "--hosts", str(inv_file), "-q", home=home)
    assert r0.returncode == 0 and r1.returncode == 0, r0.stderr + r1.stderr
    t_perf, rp = timed(lambda: cli("cluster", "exec-stage", "perf", "--hosts", str(inv_file),
                                   "-b", "1K", "-e", "64K", "-q", home=home))
    print(f"submit -> verdict, cluster exec-stage perf:   {t_perf:6.2f} s   (exit {rp.returncode})")
    t_run, rr = timed(lambda: cli("cluster", "run", "--hosts", str(inv_file), "-b", "1K", "-e",
                                  "64K", "-q", home=home))
    print(f"submit -> verdict, cluster run (4 stages):    {t_run:6.2f} s   (exit {rr.returncode})")
    runs = sorted((Path(home) / "results").glob("*-slurm"))
    slurm = {p.stem: json.loads(p.read_text()) for p in runs[-1].glob("*.json")
             if p.stem != "run"}
    if a.no_local:
        return 0
    cname = f"cctl-bench-local-{uuid.uuid4().hex[:6]}"
    try:
        t_local, rl = timed(lambda: cli("run", "--profile", "cpu-selftest", "--name", cname,
                                        "--only", "deps", "--only", "build", "--only",
                                        "unittest", "--only", "perf", "--set",
                                        "flagcx.nranks=4", "--set", "stages.perf.begin=1K",
                                        "--set", "stages.perf.end=64K", "-q", home=home))
    finally:
        subprocess.run([EXE, "down", "--name", cname, "--volumes"], capture_output=True,
                       env=dict(os.environ, CONTAINERCTL_HOME=home), timeout=300)
    local_runs = [p for p in sorted((Path(home) / "results").glob("*")) if p.is_dir()
                  and not p.name.endswith("-slurm")]
    local = {p.stem: json.loads(p.read_text()) for p in local_runs[-1].glob("*.json")
             if p.stem != "run"}
    print(f"local run (one container, 4 ranks):           {t_local:6.2f} s   (exit {rl.returncode})")
    print(f"{'stage':<10} {'slurm':<8} {'local':<8}")
    same = True
    for st in ("deps", "build", "unittest", "perf"):
        s_, l_ = slurm.get(st, {}).get("status"), local.get(st, {}).get("status")
        same &= s_ == l_
        print(f"{st:<10} {s_ or '-':<8} {l_ or '-':<8}")

    def sizes(rec):
        return [r["size"] for c in rec.get("metrics", {}).get("collectives", {}).values()
                for sw in c.get("sweeps", []) for r in sw.get("rows", [])]
    ss, ls = sizes(slurm.get("perf", {})), sizes(local.get("perf", {}))
    same &= ss == ls and bool(ss)
    print(f"perf sizes slurm: {ss}")
    print(f"perf sizes local: {ls}")
    print("same sizes, same verdicts: " + ("yes" if same else "NO"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
