"""No orphans: whatever ends the CLI, the stage's processes die with it (at once, by the run's
watchdog in the container, or by the next command, which closes the old run's record); what a
stage forks is gone when the stage ends; a reader that goes away (`| head -1`) changes nothing
about the run. Real engine, real MPI (the cpu-selftest stand-in — NOT FlagCX), the CLI as a user
types it. Every wait is a bounded poll of the container's process table."""
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
EXE = str(Path(sys.executable).parent / "containerctl")
SLOW_PERF = ["--set", "stages.perf.end=1G", "--set", "stages.perf.iters=200"]


def hcli(home, *args, **kw):
    return cli(*args, env={"CONTAINERCTL_HOME": str(home)}, **kw)


def procs(engine, name) -> list[str]:
    """Every live (non-zombie) process's command line in the container."""
    _, out = engine.exec_capture(name, ["bash", "-c", """for p in /proc/[0-9]*; do
s=$(sed 's/.*) //' $p/stat 2>/dev/null | cut -d' ' -f1); [ -z "$s" ] || [ "$s" = Z ] && continue
echo "$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)"; done"""])
    return [ln for ln in out.splitlines() if ln.strip()]


def mpi_procs(engine, name) -> list[str]:
    return [p for p in procs(engine, name) if "mpirun" in p or "perf_" in p]


def wait_for(pred, limit: float, what: str, step: float = 0.3):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"{what}: not within {limit}s")


def runs(home) -> dict[str, dict]:
    d = Path(home) / "results"
    return {p.parent.name: json.loads(p.read_text()) for p in d.glob("*/run.json")} \
        if d.is_dir() else {}


@pytest.fixture(scope="module")
def built(selftest_image, tmp_path_factory):
    """A container of our own where deps and build passed (one home)."""
    from containerctl.engine import get_engine
    name = f"cctl-orph-{uuid.uuid4().hex[:6]}"
    home = tmp_path_factory.mktemp("orph-home")
    try:
        r = hcli(home, "run", "--profile", "cpu-selftest", "--name", name, "--until", "build",
                 "-q")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        yield SimpleNamespace(name=name, home=home, engine=get_engine())
    finally:
        get_engine().remove(name, force=True)
        get_engine().remove_volume(f"{name}-workspace")


def start_slow_perf(b, preexec=None) -> subprocess.Popen:
    env = dict(os.environ, CONTAINERCTL_HOME=str(b.home))
    p = subprocess.Popen([EXE, "exec-stage", "perf", "--name", b.name, "-q", *SLOW_PERF],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         start_new_session=True, preexec_fn=preexec)
    try:
        wait_for(lambda: any("perf_" in x for x in mpi_procs(b.engine, b.name))
                 and any("mpirun" in x for x in mpi_procs(b.engine, b.name)), 180,
                 "mpirun and its ranks never started")
    except BaseException:
        p.kill()
        p.communicate()
        raise
    return p


def new_run(home, before: set) -> tuple[str, dict]:
    new = {k: v for k, v in runs(home).items() if k not in before}
    assert len(new) == 1, new
    return next(iter(new.items()))


@pytest.mark.slow
def test_under_nohup_a_sighup_changes_nothing(built):
    """A CLI started with SIGHUP ignored (`nohup containerctl …`) was told to outlive its terminal:
    SIGHUP neither interrupts it nor its stage; Ctrl-C still does."""
    p = start_slow_perf(built, preexec=lambda: signal.signal(signal.SIGHUP, signal.SIG_IGN))
    try:
        p.send_signal(signal.SIGHUP)
        time.sleep(3)
        assert p.poll() is None, p.communicate()
        assert mpi_procs(built.engine, built.name), "the stage should run on under nohup"
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, out, err)
    wait_for(lambda: not mpi_procs(built.engine, built.name), 30, "ranks left after Ctrl-C")


@pytest.mark.slow
def test_sighup_is_an_interrupt_and_kills_the_stage(built):
    before = set(runs(built.home))
    p = start_slow_perf(built)
    p.send_signal(signal.SIGHUP)          # the terminal closed
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, (p.returncode, out, err)
    assert "Traceback" not in err
    assert mpi_procs(built.engine, built.name) == []     # at once: the CLI killed them
    rid, meta = new_run(built.home, before)
    assert meta["status"] == "interrupted" and meta["finished"], meta
    perf = json.loads((Path(built.home) / "results" / rid / "perf.json").read_text())
    assert perf["status"] == "interrupted"
    # the lock went with it: the next run takes the container and passes
    r = hcli(built.home, "exec-stage", "perf", "--name", built.name, "-q")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


@pytest.mark.slow
def test_sigkill_of_the_cli_leaves_no_orphan_and_the_next_command_closes_the_run(built):
    before = set(runs(built.home))
    p = start_slow_perf(built)
    p.kill()                              # SIGKILL: no handler runs in the CLI
    p.communicate(timeout=30)
    # the watchdog in the container saw the CLI's connection close and stopped the stage
    wait_for(lambda: mpi_procs(built.engine, built.name) == [], 30,
             "mpirun/ranks still running after the CLI was killed")
    rid, meta = new_run(built.home, before)
    assert meta["status"] == "running"    # nobody could write it yet
    # the next command touching the container says so and rewrites the old run.json
    r = hcli(built.home, "exec-stage", "perf", "--name", built.name, "-q")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    said = [ln for ln in r.stderr.splitlines() if rid in ln]
    assert len(said) == 1 and "did not end cleanly" in said[0] and "interrupted" in said[0], \
        r.stderr
    old = runs(built.home)[rid]
    assert old["status"] == "interrupted" and old["finished"] and old.get("error"), old
    assert mpi_procs(built.engine, built.name) == []


@pytest.mark.slow
def test_watchdog_killed_too_the_next_command_kills_the_orphans(built):
    """The CLI and the watchdog both gone (e.g. an OOM kill of both): the next command finds the
    run's processes by its token, kills them, and closes its record."""
    before = set(runs(built.home))
    p = start_slow_perf(built)
    # kill the watchdog first (SIGKILL: it cannot react), then the CLI
    built.engine.exec(built.name, ["bash", "-c", "for p in /proc/[0-9]*; do grep -qa "
                                   "'cctl-hold[e]r' $p/cmdline 2>/dev/null && "
                                   "kill -9 ${p#/proc/}; done; true"])
    p.kill()
    p.communicate(timeout=30)
    assert mpi_procs(built.engine, built.name), "the ranks should still run: nothing killed them"
    rid, _ = new_run(built.home, before)
    r = hcli(built.home, "exec-stage", "perf", "--name", built.name, "-q")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert any(rid in ln and "did not end cleanly" in ln for ln in r.stderr.splitlines()), r.stderr
    assert runs(built.home)[rid]["status"] == "interrupted"
    assert mpi_procs(built.engine, built.name) == []


DAEMON_STAGE = """name: forker
description: test stage - a Makefile that forks a daemon into a session of its own
requires: []
timeout: 120
script: |
  mkdir -p /tmp/forker && cd /tmp/forker
  printf 'all:\\n\\tsetsid bash -c "exec -a {tag} sleep 1000" </dev/null >/dev/null 2>&1 &\\n' > Makefile
  make
  for i in $(seq 50); do pgrep -f {tag} >/dev/null && break; sleep 0.1; done
  pgrep -f {tag} >/dev/null && echo "daemon running"
  exit {rc}
"""


@pytest.mark.parametrize("rc", [0, 1])
def test_a_daemon_forked_by_a_stage_is_gone_after_it(rc, run_cli, unique_name, selftest_image,
                                                     engine, tmp_path):
    tag = f"cctl-daemon-{uuid.uuid4().hex[:8]}"
    d = tmp_path / "cwd"
    (d / "stages").mkdir(parents=True)
    (d / "stages" / "90-forker.yaml").write_text(DAEMON_STAGE.format(tag=tag, rc=rc))
    assert run_cli("up", "--profile", "cpu-selftest", "--name", unique_name).returncode == 0
    r = run_cli("exec-stage", "forker", "--name", unique_name, "-v", cwd=str(d))
    assert r.returncode == rc, r.stdout + r.stderr
    assert "daemon running" in r.stdout, r.stdout       # it really was forked and ran
    assert not any(tag in x for x in procs(engine, unique_name))   # and is gone at the end


@pytest.mark.slow
def test_a_reader_that_goes_away_changes_nothing(built):
    """`containerctl run … | head -1`: the run goes on to its end, is recorded with its true
    status, prints no traceback, and exits with the run's code."""
    before = set(runs(built.home))
    env = dict(os.environ, CONTAINERCTL_HOME=str(built.home))
    errf = Path(built.home) / "epipe.err"
    r = subprocess.run(["bash", "-c", f'"{EXE}" run --profile cpu-selftest --name {built.name} '
                        f'--only perf --force 2>"{errf}" | head -1; '
                        'echo "rc=${PIPESTATUS[0]}"'],
                       capture_output=True, text=True, env=env, timeout=900)
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and lines[1] == "rc=0", r.stdout
    err = errf.read_text()
    assert "Traceback" not in err and "BrokenPipe" not in err and "internal error" not in err, err
    rid, meta = new_run(built.home, before)
    assert meta["status"] == "passed", meta
    perf = json.loads((Path(built.home) / "results" / rid / "perf.json").read_text())
    assert perf["status"] == "passed" and perf["finished"]


def test_the_old_record_is_rewritten_only_when_it_is_that_run_and_still_running(tmp_path):
    from containerctl.stages.locks import mark_interrupted
    d = tmp_path / "20261206-010101-x"
    d.mkdir()
    f = d / "run.json"
    base = {"schema": "containerctl.run/1", "run_id": d.name, "status": "running",
            "started": "2026-12-06T01:01:01+00:00", "finished": None, "stages": ["perf"]}
    m = {"token": "ab", "run_id": d.name, "results": str(d), "host": "h", "home": "x"}
    f.write_text(json.dumps(base))
    assert mark_interrupted(m, lost="lost 2026-12-06T01:02:03Z") == (str(f), "running")
    now = json.loads(f.read_text())
    assert now["status"] == "interrupted" and now["finished"] and "01:02:03" in now["error"]
    # a record its CLI finished is left as it is; another run's record is not touched
    f.write_text(json.dumps(dict(base, status="failed", finished="2026-12-06T01:05:00+00:00")))
    assert mark_interrupted(m) == (str(f), "failed")
    assert json.loads(f.read_text())["status"] == "failed"
    f.write_text(json.dumps(dict(base, run_id="other")))
    assert mark_interrupted(m) == (None, None)
    assert json.loads(f.read_text())["status"] == "running"
    # unreachable from here (another machine's path)
    assert mark_interrupted(dict(m, results=str(tmp_path / "nowhere"))) == (None, None)
