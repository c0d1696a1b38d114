"""The cluster's hetero stage holds every host's run lock (stages/locks.py, the lock a single-host
run holds): "containerctl is not alone". Real engine, two cpu-selftest containers on their own
network (test_cluster.py's fixture), real sshd and MPICH 4.2.3 across them, the selftest stand-in
(NOT FlagCX); a second CONTAINERCTL_HOME plays the other person."""
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
from test_cluster import two_hosts  # noqa: F401 - the fixture

pytestmark = [pytest.mark.docker, pytest.mark.slow]
EXE = str(Path(sys.executable).parent / "containerctl")
SLOW_HETERO = ["-b", "1K", "-e", "1K", "-n", "500"]        # ~20 s, latency-bound: little CPU
HETERO_ARGV = "-b 1K -e 1K -f 2 -w 2 -n 500"
# (b)'s other person: a stage that holds host b's container for a fixed time, whatever the
# machine's speed (a perf run could end before the refusals were tried: seen on a loaded CI run)
HOLD_STAGE = """\
name: hold
description: holds the container for 30 s (tests/test_cluster_locks.py)
requires: []
timeout: 120
script: "sleep 30"
parse: null
"""


def _procs(engine, container: str) -> list[str]:
    """The MPI processes running in the container (ranks, launchers, Hydra proxies)."""
    _, out = engine.exec_capture(container, ["ps", "-eo", "stat=,args="])
    return [ln for ln in out.splitlines()
            if any(w in ln for w in ("perf_", "test_", "mpirun", "mpiexec", "hydra_pmi"))
            and not ln.lstrip().startswith("Z")]


def _start(args: list[str], home: Path | None = None, cwd: Path | None = None
           ) -> subprocess.Popen:
    env = dict(os.environ, **({"CONTAINERCTL_HOME": str(home)} if home else {}))
    return subprocess.Popen([EXE, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True, cwd=cwd)


def _wait_for_ranks(engine, container: str, p: subprocess.Popen, argv: str) -> None:
    """Until that run's own ranks (their argv holds `argv`) run in the container."""
    t0 = time.monotonic()
    while not [ln for ln in _procs(engine, container) if argv in ln]:
        if p.poll() is not None or time.monotonic() - t0 > 180:
            out, err = p.communicate()
            pytest.fail(f"the ranks never ran in {container} (rc {p.returncode}): "
                        f"{out[-1500:]}{err[-1500:]}")
        time.sleep(0.2)


def _runs(home: Path) -> list[dict]:
    return [json.loads(f.read_text()) for f in sorted((home / "results").glob("*/run.json"))]


def _perf_at_once(home2: Path, containers: list[str]) -> None:
    """No lock left: a perf from another home on every host starts and passes (a held lock
    would refuse it after 3 s with exit 2)."""
    for c in containers:
        t0 = time.monotonic()
        r = cli("exec-stage", "perf", "--name", c, "-q", "--set", "stages.perf.end=4K",
                env={"CONTAINERCTL_HOME": str(home2)})
        assert r.returncode == 0, f"{c}: " + r.stdout[-2000:] + r.stderr[-2000:]
        print(f"perf on {c} from another home right after: {time.monotonic() - t0:.1f}s")


def test_hetero_holds_every_hosts_lock(two_hosts, engine, tmp_path):  # noqa: F811
    name, hosts = two_hosts
    a, b = f"cctl_{name}_a", f"cctl_{name}_b"
    home1 = Path(os.environ["CONTAINERCTL_HOME"])
    home2 = tmp_path / "home2"
    from containerctl.stages.locks import busy_holder
    r = cli("cluster", "run", "--hosts", str(hosts), "-b", "1K", "-e", "1K", "-q",
            timeout=1200)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]

    # (c) after a passed run no lock is left: a perf on each host runs at once
    assert busy_holder(engine, a) is None and busy_holder(engine, b) is None
    _perf_at_once(home2, [a, b])

    # (a) while a hetero run holds the hosts, a perf on host b from another home is refused,
    # naming the cluster run; the hetero run still passes
    p = _start(["cluster", "exec-stage", "hetero", "--hosts", str(hosts), "-q", *SLOW_HETERO])
    try:
        _wait_for_ranks(engine, b, p, HETERO_ARGV)
        r = cli("exec-stage", "perf", "--name", b, "-q", env={"CONTAINERCTL_HOME": str(home2)})
        assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
        err = r.stderr
        assert f"container {b} is busy: cluster hetero of cluster {name} (host b) by " \
               f"pid {p.pid}" in err and f"(home {home1})" in err, err
        assert "Traceback" not in err
        for c, h in ((a, "a"), (b, "b")):    # any home, and lifecycle, find the holder
            assert f"hetero of cluster {name} (host {h}) by pid {p.pid}" in \
                (busy_holder(engine, c) or ""), c
        assert _procs(engine, b) and p.poll() is None, \
            "the hetero ranks must still be running on b (make the run slower)"
    finally:
        out, err = p.communicate(timeout=600)
    assert p.returncode == 0, out[-3000:] + err[-3000:]
    assert "hetero: passed" in out + err
    assert _runs(home1)[-1]["status"] == "passed"

    # (b) a hetero run while host b runs a stage from another home is refused before anything
    # starts, naming the holder; the locks already taken (host a's) are given back
    before = len(_runs(home1))
    hold = tmp_path / "hold"
    (hold / "stages").mkdir(parents=True)
    (hold / "stages" / "05-hold.yaml").write_text(HOLD_STAGE)
    p = _start(["exec-stage", "hold", "--name", b, "-q"], home=home2, cwd=hold)
    try:
        t0 = time.monotonic()
        while "exec-stage hold" not in (busy_holder(engine, b) or ""):
            if p.poll() is not None or time.monotonic() - t0 > 120:
                out, err = p.communicate()
                pytest.fail(f"the hold stage never held {b} (rc {p.returncode}): {out}{err}")
            time.sleep(0.2)
        t0 = time.monotonic()
        r = cli("cluster", "exec-stage", "hetero", "--hosts", str(hosts), "-q")
        refused_in = time.monotonic() - t0
        assert r.returncode == 2, (f"{refused_in:.1f}s, perf rc {p.poll()}: " +
                                   r.stdout[-2000:] + r.stderr[-2000:])
        err = r.stderr
        assert f"host b: container {b} is busy: exec-stage hold by pid {p.pid}" in err, err
        assert f"(home {home2})" in err and "nothing was started on any host" in err, err
        assert "Traceback" not in err
        assert len(_runs(home1)) == before, "a refused run leaves no record"
        assert busy_holder(engine, a) is None, "host a's lock must be given back"
        assert not _procs(engine, a), "nothing may have started on host a"
        print(f"hetero refused in {refused_in:.1f}s")
        # the cluster's deps/build likewise: refused on every host, host a's run not begun
        r = cli("cluster", "exec-stage", "deps", "--hosts", str(hosts), "-q")
        assert r.returncode == 2, r.stdout[-2000:] + r.stderr[-2000:]
        assert f"host b: container {b} is busy: exec-stage hold by pid {p.pid}" in r.stderr
        assert "Traceback" not in r.stderr
        assert len(_runs(home1)) == before and busy_holder(engine, a) is None
        assert p.poll() is None, "the hold stage must still be running"
    finally:
        out, err = p.communicate(timeout=600)
    assert p.returncode == 0, out[-3000:] + err[-3000:]
    assert _runs(home2)[-1]["status"] == "passed"

    # (c) a hetero run interrupted with SIGINT leaves no lock: a perf on each host runs at once
    p = _start(["cluster", "exec-stage", "hetero", "--hosts", str(hosts), "-q", *SLOW_HETERO])
    try:
        _wait_for_ranks(engine, b, p, HETERO_ARGV)
        time.sleep(1)
    finally:
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=180)
    assert p.returncode == 130, out[-3000:] + err[-3000:]
    assert _runs(home1)[-1]["status"] == "interrupted"
    assert busy_holder(engine, a) is None and busy_holder(engine, b) is None
    assert not _procs(engine, a) and not _procs(engine, b)
    _perf_at_once(home2, [a, b])


def test_hosts_are_locked_in_one_order(two_hosts, engine, tmp_path):  # noqa: F811
    """Whatever order an inventory lists the hosts in, their locks are taken in one order
    (engine URL, then container name): two cluster runs over the same hosts queue on the first
    instead of each holding a part. Host a held by someone else: a run whose inventory lists b
    first waits on a without having taken b, is refused naming a, and b stays free."""
    import threading
    import yaml
    from containerctl.cluster import Cluster
    from containerctl.cluster.inventory import load_inventory
    from containerctl.cluster.run import hold_hosts
    from containerctl.errors import UsageError
    from containerctl.stages.locks import ContainerLock, busy_holder
    name, hosts = two_hosts
    a, b = f"cctl_{name}_a", f"cctl_{name}_b"
    r = cli("cluster", "up", "--hosts", str(hosts))
    assert r.returncode == 0, r.stderr[-2000:]
    inv = yaml.safe_load(hosts.read_text())
    inv["hosts"].reverse()
    rev = tmp_path / "reversed.yaml"
    rev.write_text(yaml.safe_dump(inv, sort_keys=False))
    cl = Cluster(load_inventory(rev))
    assert [h.name for h in cl.hosts] == ["b", "a"]
    other = ContainerLock(engine, a, "exec-stage", "perf").acquire()   # someone's stage on a
    try:
        seen: dict = {}

        def probe() -> None:      # while the run waits (up to 3 s) for host a's lock
            time.sleep(1.5)
            seen["b"] = busy_holder(engine, b)
        t = threading.Thread(target=probe)
        t.start()
        with pytest.raises(UsageError) as ei:
            with hold_hosts(cl, "hetero"):
                pass
        t.join()
        assert ei.value.message.startswith(f"host a: container {a} is busy: exec-stage perf by "
                                           f"pid {os.getpid()}"), ei.value.message
        assert "nothing was started on any host" in ei.value.message
        assert seen["b"] is None, f"host b was taken before host a: {seen['b']}"
        assert busy_holder(engine, b) is None
        other.release()
        with hold_hosts(cl, "hetero") as locks:      # a free: both held, then both given back
            assert sorted(locks) == ["a", "b"]
            for c, h in ((a, "a"), (b, "b")):
                assert f"hetero of cluster {name} (host {h})" in (busy_holder(engine, c) or "")
        assert busy_holder(engine, a) is None and busy_holder(engine, b) is None
    finally:
        other.release()
