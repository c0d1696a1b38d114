"""The run's verdict is derived from evidence: a cut, refused, or half-checked run is never
stored as passed; a stage's processes die with it even when they left its session; one run at
a time per container. Real engine, custom stages written by the tests (a stage is a YAML file in
./stages)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SLEEPER = """name: sleeper
description: test stage - a process that leaves the session and ignores SIGTERM, then waits
requires: []
timeout: 600
script: |
  setsid bash -c 'trap "" TERM; exec -a cctl-escapee sleep 1000' </dev/null >/dev/null 2>&1 &
  echo started
  sleep 1000
"""
QUIET_WRONG = """name: quietwrong
description: test stage - exits 0 but its output fails a check
requires: []
timeout: 60
script: |
  echo "=== containerctl coll=allreduce nranks=2 ==="
  echo "rank 0 all-reduce correctness = 0"
  echo "=== containerctl end coll=allreduce rc=0 ==="
  exit 0
parse: perf
"""


@pytest.fixture
def stage_dir(tmp_path):
    d = tmp_path / "cwd"
    (d / "stages").mkdir(parents=True)
    (d / "stages" / "90-sleeper.yaml").write_text(SLEEPER)
    (d / "stages" / "91-quietwrong.yaml").write_text(QUIET_WRONG)
    return d


def _exe() -> str:
    return str(Path(sys.executable).parent / "containerctl")


def _runs(home: str) -> list[dict]:
    root = Path(home) / "results"
    return [json.loads(p.read_text()) for p in sorted(root.glob("*/run.json"))] if root.is_dir() else []


def _procs(engine, name) -> str:
    _, out = engine.exec_capture(name, ["bash", "-c", "for p in /proc/[0-9]*; do "
                                        "tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done"])
    return out


def test_timeout_kills_processes_that_left_the_session(run_cli, unique_name, selftest_image,
                                                       engine, stage_dir):
    assert run_cli("up", "--profile", "cpu-selftest", "--name", unique_name).returncode == 0
    r = run_cli("exec-stage", "sleeper", "--name", unique_name, "--timeout", "4",
                cwd=str(stage_dir))
    assert r.returncode == 1, r.stdout + r.stderr
    time.sleep(1)
    procs = _procs(engine, unique_name)
    assert "cctl-escapee" not in procs and "sleep 1000" not in procs, procs
    run = _runs(os.environ["CONTAINERCTL_HOME"])[-1]
    assert run["status"] == "timeout"


def test_exit_zero_with_a_failed_check_is_failed(run_cli, unique_name, selftest_image, stage_dir):
    assert run_cli("up", "--profile", "cpu-selftest", "--name", unique_name).returncode == 0
    r = run_cli("exec-stage", "quietwrong", "--name", unique_name, cwd=str(stage_dir))
    assert r.returncode == 1, r.stdout + r.stderr
    run = _runs(os.environ["CONTAINERCTL_HOME"])[-1]
    assert run["status"] == "failed"
    rep = run_run = run["run_id"]
    s = run_cli("report", rep, "--strict")
    assert s.returncode == 1


def test_interrupt_is_recorded_and_second_run_is_refused(run_cli, unique_name, selftest_image,
                                                         engine, stage_dir):
    assert run_cli("up", "--profile", "cpu-selftest", "--name", unique_name).returncode == 0
    home = os.environ["CONTAINERCTL_HOME"]
    p = subprocess.Popen([_exe(), "exec-stage", "sleeper", "--name", unique_name],
                         cwd=str(stage_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and "cctl-escapee" not in _procs(engine, unique_name):
            time.sleep(0.3)
        # the second one is refused at once, naming the holder
        r = run_cli("exec-stage", "sleeper", "--name", unique_name, cwd=str(stage_dir))
        assert r.returncode == 2, r.stdout + r.stderr
        assert "busy" in r.stderr and f"pid {p.pid}" in r.stderr
        assert "Traceback" not in r.stderr
    finally:
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=60)
    assert p.returncode == 130, out
    runs = _runs(home)
    assert [r["status"] for r in runs] == ["interrupted"], runs
    assert "cctl-escapee" not in _procs(engine, unique_name)
    s = run_cli("report", runs[-1]["run_id"], "--strict")
    assert s.returncode == 1


def test_refused_runs_store_nothing(run_cli, unique_name, selftest_image):
    home = os.environ["CONTAINERCTL_HOME"]
    r = run_cli("run", "--profile", "cpu-selftest", "--name", unique_name, "--from", "perf",
                "--until", "deps")
    assert r.returncode == 2 and "error:" in r.stderr, r.stdout + r.stderr
    r = run_cli("run", "--profile", "cpu-selftest", "--name", unique_name, "--only", "torch")
    assert r.returncode == 2 and "does not apply" in r.stderr, r.stdout + r.stderr
    r = run_cli("run", "--profile", "cpu-selftest", "--name", unique_name, "--only", "perf")
    assert r.returncode == 2 and "needs build" in r.stderr, r.stdout + r.stderr
    r = run_cli("run", "--profile", "cpu-selftest", "--name", unique_name, "--source",
                "/nonexistent/FlagCX")
    assert r.returncode == 2, r.stdout + r.stderr
    assert _runs(home) == []


def test_corrupt_state_is_dropped_with_a_warning(run_cli, unique_name, selftest_image):
    from containerctl.stages.state import state_file
    assert run_cli("up", "--profile", "cpu-selftest", "--name", unique_name).returncode == 0
    for bad in ("[]", '"text"', '{"container_id": 3}', '{"container_id": "x", "stages": []}',
                "{not json"):
        f = state_file(unique_name)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(bad)
        r = run_cli("status", "--name", unique_name)
        assert r.returncode in (0, 1) and "Traceback" not in r.stderr, (bad, r.stderr)
        r = run_cli("run", "--profile", "cpu-selftest", "--name", unique_name, "--only", "deps",
                    "-q")
        assert r.returncode == 0, (bad, r.stdout + r.stderr)
        assert "ignoring the stage state" in r.stdout + r.stderr, bad


@pytest.mark.parametrize("outcomes,asked,crash,want", [
    ([("deps", "passed"), ("build", "passed")], ["deps", "build"], None, "passed"),
    ([("deps", "passed"), ("build", "failed")], ["deps", "build"], None, "failed"),
    ([("deps", "passed")], ["deps", "build"], None, "error"),
    ([("deps", "passed")], ["deps", "build"], "interrupted", "interrupted"),
    ([("deps", "skipped:already passed in run x")], ["deps"], None, "passed"),
    ([("torch", "skipped:not applicable: no adaptor")], ["torch"], None, "error"),
    ([("deps", "passed"), ("torch", "skipped:not applicable: x")], ["deps", "torch"], None,
     "passed"),
    ([("perf", "timeout")], ["perf"], None, "timeout"),
    ([], ["deps"], "error", "error"),
])
def test_run_status_rules(outcomes, asked, crash, want):
    from containerctl.stages.runner import StageOutcome, run_status
    ocs = []
    for name, st in outcomes:
        status, _, msg = st.partition(":")
        ocs.append(StageOutcome(name, status, msg))
    assert run_status(ocs, asked, crash) == want


@pytest.mark.parametrize("record", ["[]", '"text"', '{"schema": "other"}', "{truncated"])
def test_a_damaged_record_is_never_reported_as_passed(run_cli, tmp_path, record):
    """A run whose run.json says passed but one of whose stage files is damaged: `report` names
    the file, `report --strict` exits 1, `results list` still lists the run."""
    home = os.environ["CONTAINERCTL_HOME"]
    d = Path(home) / "results" / "20261130-000002-z"
    d.mkdir(parents=True)
    (d / "run.json").write_text(json.dumps({"schema": "containerctl.run/1", "run_id": d.name,
                                            "status": "passed", "stages": ["perf"]}))
    (d / "perf.json").write_text(record)
    r = run_cli("report", d.name, "--strict")
    assert r.returncode == 1 and "perf.json" in r.stdout + r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    bad = Path(home) / "results" / "20261130-000003-w"
    bad.mkdir()
    (bad / "run.json").write_text(record)
    r = run_cli("results", "list")
    assert r.returncode == 0 and bad.name in r.stdout, r.stdout + r.stderr


def test_down_then_down_volumes_removes_the_workspace(run_cli, unique_name, selftest_image, engine):
    assert run_cli("up", "--profile", "cpu-selftest", "--name", unique_name).returncode == 0
    r = run_cli("down", "--name", unique_name)
    assert r.returncode == 0 and engine.volume_exists(f"{unique_name}-workspace")
    r = run_cli("down", "--name", unique_name, "--volumes")
    assert r.returncode == 0, r.stdout + r.stderr
    assert not engine.volume_exists(f"{unique_name}-workspace")
    r = run_cli("down", "--name", unique_name, "--volumes")      # nothing left: said plainly
    assert r.returncode == 2 and "no container" in r.stderr
