"""One container, two CONTAINERCTL_HOMEs (two people, or two shells with different homes): the
truth about a container lives in it, never only in a home. A stage from one home while another
home's stage runs is refused naming the holder; a record names the source the container really
holds; a rebuild from another home invalidates this home's "already passed". Real engine, the
cpu-selftest stand-in (NOT FlagCX) with a planted fault where a test needs one."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import cli

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parent.parent
EXE = str(Path(sys.executable).parent / "containerctl")
EXPORT = ROOT / "workloads" / "flagcx-selftest" / "tools" / "export-generation.sh"


def hcli(home, *args, **kw):
    return cli(*args, env={"CONTAINERCTL_HOME": str(home)}, **kw)


def export(dest: Path, fault: str | None = None) -> Path:
    subprocess.run(["bash", str(EXPORT), "v0.13", str(dest)] + ([fault] if fault else []),
                   check=True, capture_output=True, text=True)
    return dest


def last_run(home) -> tuple[dict, dict[str, dict]]:
    d = sorted((Path(home) / "results").glob("*/run.json"))[-1].parent
    return (json.loads((d / "run.json").read_text()),
            {p.stem: json.loads(p.read_text()) for p in d.glob("*.json") if p.stem != "run"})


def mpi_procs(engine, name) -> list[str]:
    _, out = engine.exec_capture(name, ["ps", "-eo", "stat=,args="])
    return [ln for ln in out.splitlines()
            if ("mpirun" in ln or "perf_" in ln) and not ln.lstrip().startswith("Z")]


@pytest.fixture(scope="module")
def two(selftest_image, tmp_path_factory):
    from containerctl.engine import get_engine
    name = f"cctl-2h-{uuid.uuid4().hex[:6]}"
    t = tmp_path_factory.mktemp("two-homes")
    ns = SimpleNamespace(name=name, h1=t / "home1", h2=t / "home2", engine=get_engine(),
                         good=export(t / "FlagCX-good"), bad=export(t / "FlagCX-bad", "corrupt"))
    try:
        yield ns
    finally:
        get_engine().remove(name, force=True)
        get_engine().remove_volume(f"{name}-workspace")


def test_a_record_names_the_source_the_container_holds(two):
    # home 1 builds a faulty tree: its perf fails (the fault is real)
    r = hcli(two.h1, "run", "--profile", "cpu-selftest", "--name", two.name, "--source",
             str(two.bad), "--only", "deps", "--only", "build", "--only", "perf", "-q")
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    meta, recs = last_run(two.h1)
    assert recs["build"]["status"] == "passed" and recs["perf"]["status"] == "failed", meta
    fp_bad = recs["build"]["repro"]["flagcx_source"]

    # home 2 rebuilds the same container from a correct tree
    r = hcli(two.h2, "run", "--profile", "cpu-selftest", "--name", two.name, "--source",
             str(two.good), "--only", "deps", "--only", "build", "-q")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    _, recs2 = last_run(two.h2)
    fp_good = recs2["build"]["repro"]["flagcx_source"]
    assert fp_good != fp_bad

    # home 1's perf now runs against home 2's build: its record says so, and it passes
    # because the tree really built is the correct one
    r = hcli(two.h1, "exec-stage", "perf", "--name", two.name, "-q")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    _, recs = last_run(two.h1)
    assert recs["perf"]["status"] == "passed"
    assert recs["perf"]["repro"]["flagcx_source"] == fp_good, recs["perf"]["repro"]

    # home 1's "already passed" build (the faulty tree) no longer counts: it runs again
    r = hcli(two.h1, "run", "--profile", "cpu-selftest", "--name", two.name, "--source",
             str(two.bad), "--only", "build", "-q")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    _, recs = last_run(two.h1)
    assert recs["build"]["status"] == "passed", recs["build"]      # built, not skipped
    assert recs["build"]["repro"]["flagcx_source"] == fp_bad
    # and home 2's perf, against home 1's faulty tree, fails — naming that tree
    r = hcli(two.h2, "exec-stage", "perf", "--name", two.name, "-q")
    assert r.returncode == 1, r.stdout[-2000:] + r.stderr[-2000:]
    _, recs = last_run(two.h2)
    assert recs["perf"]["status"] == "failed"
    assert recs["perf"]["repro"]["flagcx_source"] == fp_bad


def test_a_home_whose_build_was_replaced_is_told(two):
    """A home whose state says build passed with a tree the container no longer holds (and no
    state in the container vouches for it) must not run perf on that word."""
    two.engine.exec(two.name, ["rm", "-f", "/var/tmp/containerctl/state.json"])
    two.engine.exec(two.name, ["bash", "-c", "f=$(ls -d /workspace/*/.containerctl-source "
                               "2>/dev/null | head -1); [ -n \"$f\" ] && echo 0123456789abcdef > $f"])
    r = hcli(two.h2, "exec-stage", "perf", "--name", two.name, "-q")
    assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
    assert "needs build" in r.stderr and "0123456789abcdef" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr


def test_perf_from_two_homes_at_once_the_second_is_refused(two):
    r = hcli(two.h1, "run", "--profile", "cpu-selftest", "--name", two.name, "--source",
             str(two.good), "--only", "build", "-q")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    env = dict(os.environ, CONTAINERCTL_HOME=str(two.h1))
    p = subprocess.Popen([EXE, "exec-stage", "perf", "--name", two.name, "-q",
                          "--set", "stages.perf.end=1G", "--set", "stages.perf.iters=200"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True)
    try:
        t0 = time.monotonic()
        while not mpi_procs(two.engine, two.name):
            assert time.monotonic() - t0 < 180 and p.poll() is None, "perf never started"
            time.sleep(0.3)
        for args in (["exec-stage", "perf", "--name", two.name],
                     ["run", "--profile", "cpu-selftest", "--name", two.name, "--only", "perf"]):
            r = hcli(two.h2, *args, "-q")
            assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
            assert "busy" in r.stderr and f"pid {p.pid}" in r.stderr \
                and str(two.h1) in r.stderr, r.stderr
            assert "Traceback" not in r.stderr
        # the holder is found by any home, and by lifecycle's question
        from containerctl.stages.locks import busy_holder
        assert f"pid {p.pid}" in (busy_holder(two.engine, two.name) or "")
        assert mpi_procs(two.engine, two.name), "the first perf must still be running"
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=120)
    assert p.returncode == 130
    from containerctl.stages.locks import busy_holder
    assert busy_holder(two.engine, two.name) is None
    assert mpi_procs(two.engine, two.name) == []
