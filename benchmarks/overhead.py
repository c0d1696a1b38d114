#!/usr/bin/env python3
"""What containerctl costs on top of Docker, measured side by side in one run.

    .venv/bin/python benchmarks/overhead.py [--runs 5] [--profile cpu-selftest]

  1. `containerctl --help`                               goal ≤ 0.25 s
  2. a no-op `containerctl up` (after a first up)        goal ≤ 0.5 s
  3. a cold `containerctl up` (after down) vs `docker run -itd` with the flags of
     `up --dry-run` and the same image                   goal ≤ docker run + 0.5 s
  4. `containerctl exec-stage noop` (a trivial stage) vs `docker exec <c> true`
                                                         goal overhead ≤ 0.3 s
  5. `containerctl status` vs `docker exec <c> true`     goal overhead ≤ 0.3 s

Each figure is the median of --runs timings (wall clock, the CLI started as a user starts it);
cold up and docker run alternate, as do exec-stage and docker exec, so drift on a busy machine
hits both sides. The trivial stage is ./stages/00-noop.yaml in a temporary working directory.
The profile's image must be buildable or built: the first `up` builds it when missing.
Everything the benchmark creates (two containers, their workspace volumes, a temporary state
home) is removed at the end.

Python bytecode: an installed tool runs from cached bytecode (pip compiles it at install time),
but an environment with PYTHONDONTWRITEBYTECODE=1 (some sandboxes set it) recompiles every
module without a fresh .pyc on every start — tens of milliseconds that are no cost of
containerctl's. So the timed commands get PYTHONPYCACHEPREFIX=<temporary dir> without
PYTHONDONTWRITEBYTECODE: the warm-up runs write the bytecode there, the repository is not
touched, and the line under the table says so. --bytecode-as-is keeps the environment as it is.
"""
from __future__ import annotations

import argparse
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

NOOP_STAGE = """\
name: noop
description: does nothing (benchmarks/overhead.py)
requires: []
timeout: 60
script: "true"
parse: null
"""


def cli_path() -> str:
    exe = Path(sys.executable).parent / "containerctl"
    if exe.exists():
        return str(exe)
    found = shutil.which("containerctl")
    if not found:
        sys.exit("containerctl is not installed (pip install -e . in the venv)")
    return found


def run(cmd: list[str], env: dict, cwd: str, check: bool = True, timeout: int = 3600
        ) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    dt = time.perf_counter() - t0
    if check and r.returncode != 0:
        sys.stderr.write(f"command failed ({r.returncode}): {shlex.join(cmd)}\n"
                         f"{r.stdout[-2000:]}{r.stderr[-2000:]}\n")
        raise SystemExit(1)
    return dt, r


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def docker_run_args(dry_line: str, image: str, name: str, cctl_name: str) -> list[str]:
    """`up --dry-run`'s `docker run` line, with our own name, workspace volume and image, and
    without the managed label (a raw container is not containerctl's)."""
    argv = shlex.split(dry_line)
    assert argv[:3] == ["docker", "run", "-itd"], dry_line
    out: list[str] = []
    i = 3
    image_at = None
    while i < len(argv):
        a = argv[i]
        if a in ("--name",):
            out += [a, name]
            i += 2
            continue
        if a == "--label":
            if not argv[i + 1].startswith("io.containerctl.managed="):
                out += [a, argv[i + 1].replace(cctl_name, name)]
            i += 2
            continue
        if a in ("-v", "-e", "-w", "--shm-size", "--ulimit", "--group-add", "--security-opt",
                 "--device", "--gpus", "--hostname"):
            out += [a, argv[i + 1].replace(f"{cctl_name}-workspace", f"{name}-workspace")]
            i += 2
            continue
        if a.startswith("-"):
            out.append(a)
            i += 1
            continue
        image_at = len(out)
        out.append(image)
        out += argv[i + 1:]
        break
    assert image_at is not None, f"no image in {dry_line}"
    return ["docker", "run", "-itd"] + out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="timings per measure (median reported)")
    ap.add_argument("--help-runs", type=int, default=10, help="timings of --help")
    ap.add_argument("--profile", default="cpu-selftest")
    ap.add_argument("--keep", action="store_true", help="keep the containers afterwards")
    ap.add_argument("--bytecode-as-is", action="store_true",
                    help="do not give the timed commands a bytecode cache (see above)")
    args = ap.parse_args()

    cctl = cli_path()
    docker = shutil.which("docker")
    if not docker:
        sys.exit("the docker CLI is needed for the side-by-side figures")
    tok = uuid.uuid4().hex[:6]
    name = f"cctl-bench-{tok}"
    raw = f"bench-raw-{tok}"
    work = tempfile.mkdtemp(prefix="cctl-bench-")
    (Path(work) / "stages").mkdir()
    (Path(work) / "stages" / "00-noop.yaml").write_text(NOOP_STAGE)
    env = dict(os.environ)
    env.setdefault("CONTAINERCTL_HOME", str(Path(work) / "home"))
    env.pop("CONTAINERCTL_DEBUG", None)
    if args.bytecode_as_is:
        bytecode = ("as the environment has it (PYTHONDONTWRITEBYTECODE="
                    f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})")
    else:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(Path(work) / "pycache")
        bytecode = "cached in a temporary PYTHONPYCACHEPREFIX, written by the warm-up runs"
    # the noop stage is not in cpu-selftest's stages.only; the stage list does not change the
    # container's config hash
    stage_set = ["--set", "stages.only=null"]
    results: dict[str, list[float]] = {}

    def note(msg: str):
        print(msg, file=sys.stderr, flush=True)

    try:
        # 1. --help
        run([cctl, "--help"], env, work)          # warm the page cache and .pyc files
        results["help"] = [run([cctl, "--help"], env, work)[0] for _ in range(args.help_runs)]

        # first up (may build the image), then the no-op ups
        note(f"first up of {args.profile} as {name} (builds the image if it is missing) …")
        t_first, r = run([cctl, "up", "--profile", args.profile, "--name", name], env, work)
        note(f"  {r.stdout.strip()}  [{t_first:.1f}s]")
        results["noop_up"] = []
        for _ in range(args.runs):
            dt, r = run([cctl, "up", "--profile", args.profile, "--name", name], env, work)
            assert "nothing changed" in r.stdout, r.stdout
            results["noop_up"].append(dt)

        image = subprocess.run([docker, "inspect", "-f", "{{.Config.Image}}", name],
                               capture_output=True, text=True, check=True).stdout.strip()
        _, r = run([cctl, "up", "--profile", args.profile, "--name", name, "--dry-run"], env,
                   work)
        dry = r.stdout.strip().splitlines()[-1]
        raw_cmd = docker_run_args(dry, image, raw, name)

        # 3. cold up vs docker run, alternating
        results["cold_up"], results["docker_run"] = [], []
        note(f"cold up vs docker run ×{args.runs} …")
        for _ in range(args.runs):
            run([cctl, "down", "--name", name], env, work)
            dt, r = run([cctl, "up", "--profile", args.profile, "--name", name], env, work)
            assert "created" in r.stdout, r.stdout
            results["cold_up"].append(dt)
            run([docker, "rm", "-f", raw], env, work, check=False)
            dt, _ = run(raw_cmd, env, work)
            results["docker_run"].append(dt)

        # 4. exec-stage noop vs docker exec true, alternating
        results["exec_stage"], results["docker_exec"] = [], []
        note(f"exec-stage noop vs docker exec ×{args.runs} …")
        run([cctl, "exec-stage", "noop", "--name", name, "-q"] + stage_set, env, work)  # warm
        for _ in range(args.runs):
            dt, r = run([cctl, "exec-stage", "noop", "--name", name, "-q"] + stage_set, env, work)
            assert "passed" in r.stdout, r.stdout
            results["exec_stage"].append(dt)
            dt, _ = run([docker, "exec", name, "true"], env, work)
            results["docker_exec"].append(dt)

        # 5. status (which stages passed) vs docker exec true, alternating
        results["status"], results["docker_exec2"] = [], []
        note(f"status vs docker exec ×{args.runs} …")
        run([cctl, "status", "--name", name], env, work)     # warm
        for _ in range(args.runs):
            dt, r = run([cctl, "status", "--name", name], env, work)
            assert "noop" in r.stdout and "passed" in r.stdout, r.stdout
            results["status"].append(dt)
            dt, _ = run([docker, "exec", name, "true"], env, work)
            results["docker_exec2"].append(dt)
    finally:
        if not args.keep:
            subprocess.run([cctl, "down", "--name", name, "--volumes"], capture_output=True,
                           env=env, cwd=work)
            subprocess.run([docker, "rm", "-f", raw], capture_output=True)
            subprocess.run([docker, "volume", "rm", "-f", f"{raw}-workspace",
                            f"{name}-workspace"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    h, n = med(results["help"]), med(results["noop_up"])
    cu, dr = med(results["cold_up"]), med(results["docker_run"])
    es, de = med(results["exec_stage"]), med(results["docker_exec"])
    st, de2 = med(results["status"]), med(results["docker_exec2"])
    rows = [
        ("containerctl --help", h, min(results["help"]), "", "≤ 0.25 s", h <= 0.25),
        ("no-op up", n, min(results["noop_up"]), "", "≤ 0.5 s", n <= 0.5),
        ("cold up", cu, min(results["cold_up"]),
         f"{cu / dr:.2f}× docker run, +{cu - dr:.2f} s", "≤ docker run + 0.5 s", cu <= dr + 0.5),
        ("  docker run -itd (same flags)", dr, min(results["docker_run"]), "", "", None),
        ("exec-stage noop", es, min(results["exec_stage"]),
         f"{es / de:.2f}× docker exec, +{es - de:.2f} s", "overhead ≤ 0.3 s", es - de <= 0.3),
        ("  docker exec <c> true", de, min(results["docker_exec"]), "", "", None),
        ("status", st, min(results["status"]),
         f"{st / de2:.2f}× docker exec, +{st - de2:.2f} s", "overhead ≤ 0.3 s", st - de2 <= 0.3),
        ("  docker exec <c> true", de2, min(results["docker_exec2"]), "", "", None),
    ]
    print(f"\ncontainerctl overhead ({args.profile}, image {image}; median of {args.runs} runs, "
          f"--help of {args.help_runs}; {os.cpu_count()} CPUs)")
    print(f"{'measure':32} {'median':>8} {'min':>8}  {'ratio / overhead':30} {'goal':22} ok")
    for label, m, lo, ratio, goal, ok in rows:
        mark = "" if ok is None else ("yes" if ok else "NO")
        print(f"{label:32} {m:7.3f}s {lo:7.3f}s  {ratio:30} {goal:22} {mark}")
    print(f"(first up, including any image build: {t_first:.1f} s; bytecode {bytecode}; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end)")
    return 0 if all(r[-1] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
