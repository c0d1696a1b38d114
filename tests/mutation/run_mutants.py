#!/usr/bin/env python3
"""Mutation testing over containerctl's verdict code: apply each deliberate bug of mutants.py,
one at a time, to a temporary COPY of the package (the real files are never touched), run the
fast tests against the copy, and report per mutant whether a test failed (killed) or all passed
(survived).

    .venv/bin/python tests/mutation/run_mutants.py             # every unit-tier mutant
    .venv/bin/python tests/mutation/run_mutants.py --docker    # + convergence (real engine)
    .venv/bin/python tests/mutation/run_mutants.py -k oracle,gtest   # ids containing either
    .venv/bin/python tests/mutation/run_mutants.py --json out.json

Exit status: 0 when every mutant run was killed, 1 when one survived or is stale (its code moved:
update mutants.py), 2 on bad arguments or when the unmutated copy fails the tests.

How the copy is used: <tmp>/containerctl is the package, <tmp>/{profiles,images,…} link to the
repository's data, and the pytest subprocess runs with cwd=<tmp> and PYTHONPATH=<tmp>, so
`import containerctl` (and the `containerctl` command the docker tier runs) load the copy; the
baseline run checks that the copy is what gets imported."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PKG = ROOT / "containerctl"
DATA = ("profiles", "images", "Dockerfile.templates", "workloads")
sys.path.insert(0, str(HERE))
from mutants import MUTANTS  # noqa: E402

UNIT_TESTS = ["tests/test_verdict.py", "tests/test_mutants_killed.py",
              "tests/test_oracle.py", "tests/test_parsers.py", "tests/test_gtest.py",
              "tests/test_flagcx_probe.py", "tests/test_quoting.py", "tests/test_h200_fixtures.py",
              "tests/test_h200_releases.py", "tests/test_store.py", "tests/test_logerrors.py",
              "tests/test_ui_units.py", "tests/test_cluster_export.py", "tests/test_records.py",
              "tests/test_runner_verdicts.py::test_run_status_rules"]
UNIT_DESELECT = "not hostile_mpi_home and not real_engine"   # the real-engine tests of test_quoting, test_verdict
DOCKER_TESTS = ["tests/test_lifecycle.py::test_up_noop_recreate_down",
                "tests/test_lifecycle.py::test_noop_fast_path_sees_file_changes",
                "tests/test_lifecycle.py::test_noop_fast_path_after_a_set_recreates"]


def make_copy(dest: Path) -> Path:
    shutil.copytree(PKG, dest / "containerctl",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "_data"))
    for d in DATA:
        if not (ROOT / d).exists():
            continue
        if d == "profiles":     # small, and edited while a run goes on: judged as one snapshot
            shutil.copytree(ROOT / d, dest / d)
        else:
            (dest / d).symlink_to(ROOT / d)
    return dest / "containerctl"


def apply(text: str, edits: list[tuple[str, str]]) -> str | None:
    """The mutated text, or None when an edit's `old` does not occur exactly once (stale)."""
    for old, new in edits:
        if text.count(old) != 1:
            return None
        text = text.replace(old, new)
    return text


def pytest(copy_root: Path, tests: list[str], timeout: int, deselect: str | None = None,
           extra_env: dict | None = None) -> tuple[int, str, float]:
    env = dict(os.environ, PYTHONPATH=str(copy_root), PYTHONDONTWRITEBYTECODE="1")
    env.update(extra_env or {})
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
           "--rootdir", str(ROOT), "-c", str(ROOT / "pyproject.toml"),
           *[str(ROOT / t) for t in tests]]
    if deselect:
        cmd += ["-k", deselect]
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, cwd=copy_root, env=env, capture_output=True, text=True,
                           timeout=timeout)
        return r.returncode, r.stdout + r.stderr, time.monotonic() - t0
    except subprocess.TimeoutExpired as exc:
        return -1, f"timed out after {timeout}s: {exc}", time.monotonic() - t0


def first_failure(out: str) -> str:
    for ln in out.splitlines():
        if ln.startswith(("FAILED ", "ERROR ")):
            t = ln.split(" ", 1)[1].split(" - ")[0]
            return t[t.find("tests/"):] if "tests/" in t else t
    return "?"


def tests_for(m: dict, only: list[str] | None = None) -> tuple[list[str], str | None]:
    if only:
        return only, None
    tests = DOCKER_TESTS if m["tier"] == "docker" else UNIT_TESTS
    return ([t for t in tests if (ROOT / t.split("::")[0]).is_file()],
            None if m["tier"] == "docker" else UNIT_DESELECT)


def run(selected: list[dict], timeout: int, log=print, tests: list[str] | None = None) -> dict:
    """Apply each mutant in `selected` to a fresh copy and run the tests (`tests` overrides the
    tier's list: the CI smoke test uses a small one)."""
    results = []
    t_all = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cctl-mutants-") as tmp:
        root = Path(tmp)
        copy = make_copy(root)
        # baseline: the unmutated copy is the one imported, and it passes every test we use
        probe = subprocess.run([sys.executable, "-c", "import containerctl; print(containerctl.__file__)"],
                               cwd=root, env=dict(os.environ, PYTHONPATH=str(root)),
                               capture_output=True, text=True)
        if not probe.stdout.strip().startswith(str(root)):
            raise SystemExit(f"error: the copy is not what gets imported ({probe.stdout.strip()} "
                             f"{probe.stderr.strip()})")
        tiers = sorted({m["tier"] for m in selected})
        for tier in tiers:
            t, desel = tests_for({"tier": tier}, tests)
            code, out, dt = pytest(root, t, timeout, desel)
            log(f"baseline ({tier}): {'ok' if code == 0 else 'FAILED'} in {dt:.1f}s")
            if code != 0:
                log(out[-3000:])
                raise SystemExit(2)
        for m in selected:
            f = copy / m["file"]
            original = f.read_text()
            mutated = apply(original, m["edits"])
            if mutated is None:
                res = dict(id=m["id"], result="stale", by="", seconds=0.0, why=m["why"])
            else:
                f.write_text(mutated)
                try:
                    t, desel = tests_for(m, tests)
                    code, out, dt = pytest(root, t, timeout, desel)
                finally:
                    f.write_text(original)
                res = dict(id=m["id"], result="survived" if code == 0 else "killed",
                           by="" if code == 0 else first_failure(out), seconds=round(dt, 1),
                           why=m["why"])
            results.append(res)
            log(f"{res['result']:8}  {res['id']:38} {res['seconds']:5.1f}s  {res['by']}")
    total = time.monotonic() - t_all
    counts = {k: sum(1 for r in results if r["result"] == k) for k in ("killed", "survived", "stale")}
    log(f"{len(results)} mutants: {counts['killed']} killed, {counts['survived']} survived, "
        f"{counts['stale']} stale; {total:.0f}s")
    return {"results": results, "counts": counts, "seconds": round(total, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-k", dest="pattern", help="only mutants whose id contains this (several: "
                    "comma-separated)")
    ap.add_argument("--docker", action="store_true", help="include the real-engine tier")
    ap.add_argument("--timeout", type=int, default=300, help="seconds per test run")
    ap.add_argument("--json", dest="json_out", help="write the results to this file")
    a = ap.parse_args(argv)
    sel = [m for m in MUTANTS if (a.docker or m["tier"] == "unit")
           and (not a.pattern or any(p in m["id"] for p in a.pattern.split(",") if p))]
    if not sel:
        print("error: no mutant matches\n  fix: see tests/mutation/mutants.py for the ids",
              file=sys.stderr)
        return 2
    out = run(sel, a.timeout)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(out, indent=1))
    return 0 if out["counts"]["survived"] == 0 and out["counts"]["stale"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
