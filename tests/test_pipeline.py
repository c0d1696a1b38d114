"""The whole pipeline on cpu-selftest in real Docker, through the CLI as a user types it:
deps → build → perf against the FlagCX stand-in; rerun skips; exec-stage; SIGINT and timeout
leave no stage process in the container; resume after a failed stage."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import cli

pytestmark = [pytest.mark.docker, pytest.mark.slow]
EXE = str(Path(sys.executable).parent / "containerctl")


@pytest.fixture(scope="module")
def pipe_home(tmp_path_factory):
    return str(tmp_path_factory.mktemp("pipe-home"))


@pytest.fixture(scope="module")
def pipe_name(selftest_image):
    import uuid
    name = f"cctl-pipe-{uuid.uuid4().hex[:6]}"
    yield name
    from containerctl.engine import get_engine
    get_engine().remove(name, force=True)
    get_engine().remove_volume(f"{name}-workspace")


def ccli(home, *args, **kw):
    return cli(*args, env={"CONTAINERCTL_HOME": home, "CONTAINERCTL_TEST_SHARED_HOME": "1"}, **kw)


def session_procs(engine, name, stage):
    from containerctl.stages.executor import session_alive
    from containerctl.stages.state import IN_CONTAINER_DIR
    return session_alive(engine, name, f"{IN_CONTAINER_DIR}/{stage}/session")


def latest_record(home, stage):
    runs = sorted((Path(home) / "results").iterdir(), key=lambda p: p.stat().st_mtime)
    for r in reversed(runs):
        f = r / f"{stage}.json"
        if f.is_file():
            return json.loads(f.read_text())
    raise AssertionError(f"no record for {stage}")


def test_run_full_pipeline(engine, pipe_home, pipe_name):
    r = ccli(pipe_home, "run", "--profile", "cpu-selftest", "--name", pipe_name)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    out = r.stdout
    # a per-size bandwidth table and a passed correctness check
    assert "busbw (GB/s)" in out and "1 MiB" in out
    assert "allreduce sum buffers" in out and "PASS" in out
    for st in ("deps", "build", "perf"):
        rec = latest_record(pipe_home, st)
        assert rec["status"] == "passed", rec
    perf = latest_record(pipe_home, "perf")
    rows = perf["metrics"]["collectives"]["allreduce"]["sweeps"][0]["rows"]
    assert [row["size"] for row in rows] == [1024 * 2 ** i for i in range(11)]
    assert all(row["busbw"] > 0 for row in rows)
    assert perf["repro"]["image_id"].startswith("sha256:")
    assert perf["repro"]["flagcx_source"].startswith("dir:")
    deps = latest_record(pipe_home, "deps")
    assert deps["metrics"]["deps"]["mpi"]["flavour"] == "openmpi"
    torch = latest_record(pipe_home, "torch")
    assert torch["status"] == "skipped" and "not applicable" in torch["message"]


def test_rerun_skips_done_stages(engine, pipe_home, pipe_name):
    r = ccli(pipe_home, "run", "--profile", "cpu-selftest", "--name", pipe_name, "-q")
    assert r.returncode == 0, r.stderr
    for st in ("deps", "build", "perf"):
        rec = latest_record(pipe_home, st)
        assert rec["status"] == "skipped" and "already passed" in rec["message"], rec


def test_exec_stage_perf_alone(engine, pipe_home, pipe_name):
    r = ccli(pipe_home, "exec-stage", "perf", "--name", pipe_name, "-q", "--coll", "allgather")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    rec = latest_record(pipe_home, "perf")
    assert rec["status"] == "passed"
    assert list(rec["metrics"]["collectives"]) == ["allgather"]


def test_exec_stage_names_missing_prerequisite(engine, selftest_image, tmp_path, unique_name):
    home = str(tmp_path)
    assert ccli(home, "up", "--profile", "cpu-selftest", "--name", unique_name).returncode == 0
    r = ccli(home, "exec-stage", "perf", "--name", unique_name)
    assert r.returncode == 2
    assert "needs build" in r.stderr and "exec-stage build" in r.stderr


def _start(home, *args):
    env = dict(os.environ, CONTAINERCTL_HOME=home, CONTAINERCTL_TEST_SHARED_HOME="1")
    return subprocess.Popen([EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env, start_new_session=True)


def _wait_for_mpirun(engine, name, stage="perf", limit=120):
    t0 = time.time()
    while time.time() - t0 < limit:
        procs = session_procs(engine, name, stage)
        if any("mpirun" in p for p in procs) and any("perf_" in p or "test_" in p for p in procs):
            return procs
        time.sleep(0.5)
    raise AssertionError("mpirun never started")


def test_sigint_mid_perf_leaves_no_process(engine, pipe_home, pipe_name):
    p = _start(pipe_home, "exec-stage", "perf", "--name", pipe_name, "-q",
               "--set", "stages.perf.end=1G", "--set", "stages.perf.iters=200")
    procs = _wait_for_mpirun(engine, pipe_name)
    assert procs
    os.kill(p.pid, signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 130, out
    assert session_procs(engine, pipe_name, "perf") == []
    code, ps = engine.exec_capture(pipe_name, ["ps", "-eo", "comm"])
    assert "mpirun" not in ps and "perf_allreduce" not in ps, ps
    rec = latest_record(pipe_home, "perf")
    assert rec["status"] == "interrupted"


def test_timeout_kills_the_stage(engine, pipe_home, pipe_name):
    r = ccli(pipe_home, "exec-stage", "perf", "--name", pipe_name, "-q", "--timeout", "4",
             "--set", "stages.perf.end=1G", "--set", "stages.perf.iters=200")
    assert r.returncode == 1
    rec = latest_record(pipe_home, "perf")
    assert rec["status"] == "timeout" and rec["exit_code"] == 124
    assert session_procs(engine, pipe_name, "perf") == []
    code, ps = engine.exec_capture(pipe_name, ["ps", "-eo", "comm"])
    assert "mpirun" not in ps


def test_resume_after_failed_stage(engine, pipe_home, pipe_name):
    # a collective the stand-in does not have fails perf; deps and build stay passed
    r = ccli(pipe_home, "run", "--profile", "cpu-selftest", "--name", pipe_name, "-q",
             "--coll", "nosuchcoll")
    assert r.returncode == 1
    assert latest_record(pipe_home, "perf")["status"] == "failed"
    st = json.loads(ccli(pipe_home, "status", "--name", pipe_name, "--json").stdout)
    assert st["stages"]["build"]["status"] == "passed"
    assert st["stages"]["perf"]["status"] == "failed"
    r = ccli(pipe_home, "run", "--profile", "cpu-selftest", "--name", pipe_name, "-q")
    assert r.returncode == 0, r.stdout[-2000:]
    assert latest_record(pipe_home, "build")["status"] == "skipped"
    assert latest_record(pipe_home, "perf")["status"] == "passed"
