"""The Slurm backend against a real Slurm cluster: scripts/slurm-cluster.sh starts slurmctld and
two slurmd nodes as containers (images/slurm-node.yaml: cpu-selftest + Debian's Slurm 22.05,
munge, libpmix2; one munge key; /workspace one volume on every node) for this session and
removes them after. Units: the inventory's refusals, Slurm's output readers, the pyxis lines
(golden) and the MPIJob export's fields. Integration: the stand-in's deps/build/unittest/perf as
job steps across the nodes, a planted fault, a slurmd killed mid-step, Ctrl-C, a pending job."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, cli

from containerctl.slurm.backend import alloc_argv, ranks_argv, render_lines, step_argv
from containerctl.slurm.inventory import load
from containerctl.slurm.submit import expand_nodelist, parse_kv, parse_sbatch, srun_failures

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
GOLDEN = ROOT / "tests" / "golden" / "slurm"
SCRIPT = ROOT / "scripts" / "slurm-cluster.sh"


def _inv(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "slurm.yaml"
    p.write_text(text)
    return p


BASE = """scheduler: slurm
name: t
slurm:
  submit: docker://{ctl}
  profile: cpu-selftest
  nodes: 2
  tasks_per_node: 2
  time_limit: "00:10:00"
  mpi: pmix
  pending_limit: {pending}
"""


# ---------------------------------------------------------------------------------------------
# units

@pytest.mark.parametrize("body,says", [
    ("  submit: ssh://login\n", "ssh:// submit hosts are not supported yet"),
    ("  submit: login\n", "write docker://CONTAINER"),
    ("  submit: docker://x\n  runtime: pyxis\n", "runtime pyxis needs `image`"),
    ("  submit: docker://x\n  image: a/b:1\n", "`image`/`mounts` are for runtime pyxis"),
    ("  submit: docker://x\n  time_limit: soon\n", "time_limit 'soon'"),
    ("  submit: docker://x\n  mpi: openmpi\n", "mpi"),
    ("  submit: docker://x\n  partiton: debug\n", "partiton"),
])
def test_bad_inventory_one_line_exit_2(tmp_path, body, says):
    p = _inv(tmp_path, "scheduler: slurm\nname: t\nslurm:\n" + body)
    r = cli("cluster", "run", "--hosts", str(p))
    assert r.returncode == 2, r.stdout + r.stderr
    assert says in r.stderr
    assert "Traceback" not in r.stderr
    assert str(p) in r.stderr                       # names the file (and line)


def test_up_down_refused_on_a_slurm_inventory(tmp_path):
    p = _inv(tmp_path, BASE.format(ctl="x", pending=5))
    for cmd in ("up", "down"):
        r = cli("cluster", cmd, "--hosts", str(p))
        assert r.returncode == 2 and "the scheduler owns the nodes" in r.stderr, r.stderr
        assert "scripts/slurm-cluster.sh" in r.stderr


def test_hetero_is_refused_on_slurm_with_the_fix(tmp_path):
    p = _inv(tmp_path, BASE.format(ctl="x", pending=5))
    r = cli("cluster", "exec-stage", "hetero", "--hosts", str(p))
    assert r.returncode == 2 and "ranks across the nodes" in r.stderr, r.stderr
    assert "cluster exec-stage perf" in r.stderr


def test_submit_host_not_running_is_refused(tmp_path):
    p = _inv(tmp_path, BASE.format(ctl=f"cctl-no-such-{uuid.uuid4().hex[:6]}", pending=5))
    r = cli("cluster", "run", "--hosts", str(p))
    assert r.returncode == 2, r.stderr
    assert "is not there" in r.stderr and "slurm-cluster.sh up" in r.stderr


def test_readers():
    assert parse_sbatch("12\n") == "12" and parse_sbatch("7;cl\n") == "7"
    assert parse_sbatch("sbatch: error: Batch job submission failed") is None
    kv = parse_kv("JobId=5 JobName=x y JobState=NODE_FAIL Reason=NodeDown NodeList=n[1-2]")
    assert kv["JobName"] == "x y" and kv["JobState"] == "NODE_FAIL"
    assert expand_nodelist("n[1-3,5],x") == ["n1", "n2", "n3", "n5", "x"]
    assert expand_nodelist("c-n[01-02]") == ["c-n01", "c-n02"]
    assert expand_nodelist("(null)") == []
    f = srun_failures("srun: error: c-n2: tasks 2-3: Killed\nok\n"
                      "srun: error: c-n1: task 0: Exited with exit code 3\n")
    assert [(x["node"], x["tasks"]) for x in f] == [("c-n2", "2-3"), ("c-n1", "0")]


def test_pyxis_lines_golden():
    text = render_lines(load(ROOT / "examples" / "slurm-pyxis.yaml"))
    golden = GOLDEN / "pyxis.txt"
    if os.environ.get("CCTL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert "--container-image=registry.example.com/flagcx/test:latest" in text
    assert "--container-mounts=/lustre/flagcx:/workspace" in text


def test_none_runtime_lines_golden():
    text = render_lines(load(ROOT / "examples" / "slurm-ci.yaml"))
    golden = GOLDEN / "none.txt"
    if os.environ.get("CCTL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text()
    assert "--container" not in text


# ---------------------------------------------------------------------------------------------
# the CI cluster

def _docker(*args, timeout=60, check=True):
    return subprocess.run([DOCKER, *args], capture_output=True, text=True, timeout=timeout,
                          check=check)


@pytest.fixture(scope="session")
def slurm_cluster(engine):
    name = f"cctl-slurm-t{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, CONTAINERCTL=str(Path(sys.executable).parent / "containerctl"))
    r = subprocess.run(["bash", str(SCRIPT), "up", "--name", name], capture_output=True,
                       text=True, timeout=600, env=env)
    if r.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "down", "--name", name], capture_output=True)
        pytest.fail(f"slurm-cluster.sh up failed: {r.stdout}{r.stderr}")
    try:
        yield {"name": name, "ctl": f"{name}-ctl", "env": env}
    finally:
        subprocess.run(["bash", str(SCRIPT), "down", "--name", name], capture_output=True,
                       timeout=120)


@pytest.fixture(scope="session")
def _slurm_home(tmp_path_factory):
    return tmp_path_factory.mktemp("cctl-slurm-home")


@pytest.fixture
def home(_slurm_home, monkeypatch) -> Path:
    """One home for the Slurm tests: the login container's stage state (build passed) is kept
    there, as a user's would be between commands."""
    monkeypatch.setenv("CONTAINERCTL_HOME", str(_slurm_home))
    return _slurm_home


_BUILT: dict = {}


@pytest.fixture
def built(slurm_cluster, home, tmp_path_factory) -> Path:
    """An inventory whose deps and build have passed on the cluster (once per session)."""
    if "inv" not in _BUILT:
        inv = _inv(tmp_path_factory.mktemp("inv"), BASE.format(ctl=slurm_cluster["ctl"],
                                                               pending=60))
        for st in ("deps", "build"):
            r = cli("cluster", "exec-stage", st, "--hosts", str(inv), "-q", timeout=600)
            assert r.returncode == 0, r.stdout + r.stderr
        _BUILT["inv"] = inv
    return _BUILT["inv"]


def _squeue(cl, *args):
    return _docker("exec", cl["ctl"], "squeue", "-h", *args).stdout


def _ready(cl):
    r = subprocess.run(["bash", str(SCRIPT), "up", "--name", cl["name"]], capture_output=True,
                       text=True, timeout=300, env=cl["env"])
    assert r.returncode == 0, r.stdout + r.stderr


def _run_meta(home: Path) -> dict:
    runs = sorted((home / "results").glob("*-slurm"))
    return json.loads((runs[-1] / "run.json").read_text())


def _rec(home: Path, stage: str) -> dict:
    runs = sorted((home / "results").glob("*-slurm"))
    return json.loads((runs[-1] / f"{stage}.json").read_text())


def test_stages_as_steps_across_nodes(slurm_cluster, home, tmp_path):
    cl = slurm_cluster
    inv = _inv(tmp_path, BASE.format(ctl=cl["ctl"], pending=60))
    r = cli("cluster", "run", "--hosts", str(inv), "-b", "1K", "-e", "64K", "-q", timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    meta = _run_meta(home)
    sl = meta["slurm"]
    assert meta["status"] == "passed"
    assert sl["job_state"] == "COMPLETED"                 # the job ended by itself
    names = [s["name"] for s in sl["steps"]]
    assert names[:3] == ["deps", "build", "unittest"] and "perf-ranks" in names
    assert all(s["state"] == "COMPLETED" for s in sl["steps"]), sl["steps"]
    perf = _rec(home, "perf")
    ranks = perf["metrics"]["slurm"]["ranks"]
    assert len(ranks) == 4 and len(set(ranks.values())) == 2       # distinct nodes
    rows = perf["metrics"]["collectives"]["allreduce"]["sweeps"][0]["rows"]
    assert [row["size"] for row in rows] == [1024 << i for i in range(7)]
    assert perf["status"] == "passed"
    assert any(c["name"] == "allreduce sum buffers" and c["ok"] for c in perf["checks"])
    assert _rec(home, "unittest")["status"] == "passed"
    assert f"slurm job {sl['job']} on" in r.stdout and "COMPLETED" in r.stdout
    # nothing left queued
    assert sl["job_name"] not in _squeue(cl, "-o", "%j")


def test_planted_fault_fails(slurm_cluster, built, home):
    cl = slurm_cluster
    inv = built
    fault = "/workspace/FlagCX/.selftest-fault"
    _docker("exec", cl["ctl"], "bash", "-c", f"echo corrupt > {fault}")
    try:
        r = cli("cluster", "exec-stage", "perf", "--hosts", str(inv), "-b", "1K", "-e", "8K",
                "-q", timeout=600)
    finally:
        _docker("exec", cl["ctl"], "rm", "-f", fault)
    assert r.returncode == 1, r.stdout + r.stderr
    perf = _rec(home, "perf")
    assert perf["status"] == "failed"
    assert "sum" in perf["message"] or "correct" in perf["message"], perf["message"]
    assert _run_meta(home)["slurm"]["job_state"] == "CANCELLED"   # a failed run's job is cancelled


def _start_long_perf(inv: Path) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "containerctl"
    return subprocess.Popen([str(exe), "cluster", "exec-stage", "perf", "--hosts", str(inv),
                             "-b", "1M", "-e", "64M", "-n", "400", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_step(cl, name: str, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if name in _squeue(cl, "-s", "-o", "%j"):
            return
        time.sleep(0.3)
    raise AssertionError(f"step {name} never ran")


def test_ctrl_c_leaves_no_job(slurm_cluster, built, home):
    cl = slurm_cluster
    inv = built
    p = _start_long_perf(inv)
    try:
        _wait_step(cl, "perf-ranks")
        ps = cli("cluster", "ps", "--hosts", str(inv), "--json")     # what squeue says
        rows = json.loads(ps.stdout)
        assert [r["state"] for r in rows] == ["RUNNING"] and rows[0]["name"].startswith("cctl-t-")
        # another home, same login container: refused by the container's run lock, nothing
        # submitted (one job of ours in squeue)
        other = cli("cluster", "exec-stage", "deps", "--hosts", str(inv),
                    env={"CONTAINERCTL_HOME": str(home / "other-home")})
        assert other.returncode == 2 and "busy" in other.stderr, other.stderr
        assert _squeue(cl, "-o", "%j").count("cctl-t-") == 1
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, err
    assert "scancel" in err
    assert "cctl-t-" not in _squeue(cl, "-o", "%j")          # no job of ours left
    meta = _run_meta(home)
    assert meta["status"] == "interrupted"
    assert meta["slurm"]["job_state"] == "CANCELLED"


def test_slurmd_killed_mid_step_fails_naming_the_node(slurm_cluster, built, home):
    cl = slurm_cluster
    inv = built
    victim = f"{cl['name']}-n2"
    p = _start_long_perf(inv)
    try:
        _wait_step(cl, "perf-ranks")
        time.sleep(1)
        _docker("exec", victim, "pkill", "-9", "-x", "slurmd", check=False)   # the node's slurmd
        out, err = p.communicate(timeout=180)
    finally:
        if p.poll() is None:
            p.kill()
        _ready(cl)                                  # the node back for the other tests
    assert p.returncode == 1, out + err
    perf = _rec(home, "perf")
    assert perf["status"] == "failed"
    assert victim in perf["message"], perf["message"]
    assert "NODE_FAIL" in perf["message"]
    meta = _run_meta(home)
    assert meta["slurm"]["job_state"] == "NODE_FAIL"          # not requeued, not COMPLETED
    assert {s["state"] for s in meta["slurm"]["steps"]} == {"NODE_FAIL"}
    assert "cctl-t-" not in _squeue(cl, "-o", "%j")


def test_pending_job_shows_its_reason_and_is_bounded(slurm_cluster, tmp_path):
    cl = slurm_cluster
    blocker = _docker("exec", cl["ctl"], "sbatch", "--parsable", "-N2", "--ntasks-per-node=2",
                      "-J", "blocker", "--wrap", "sleep 120").stdout.strip()
    try:
        inv = _inv(tmp_path, BASE.format(ctl=cl["ctl"], pending=4))
        t0 = time.monotonic()
        r = cli("cluster", "exec-stage", "deps", "--hosts", str(inv), "-q", timeout=120)
        took = time.monotonic() - t0
    finally:
        _docker("exec", cl["ctl"], "scancel", blocker, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "pended" in r.stderr and "reason: Resources" in r.stderr, r.stderr
    assert "(reason: Resources)" in r.stderr          # shown while it pended
    assert took < 60
    assert "cctl-t-" not in _squeue(cl, "-o", "%j")


def test_sbatch_test_only_accepts_the_pyxis_lines_minus_container_flags(slurm_cluster):
    cl = slurm_cluster
    inv = load(ROOT / "examples" / "slurm-pyxis.yaml")
    s = inv.slurm.model_copy(update={"partition": None, "account": None, "gpus_per_node": 0,
                                     "tasks_per_node": 2})
    argv = alloc_argv(s, "cctl-site-test", "/workspace/.containerctl-slurm/x/release")
    r = _docker("exec", cl["ctl"], argv[0], "--test-only", *argv[1:], check=False)
    assert r.returncode == 0 and "to start at" in r.stderr, r.stderr
    # the step lines, container flags dropped, are accepted as a job's srun (--test-only)
    for line in (step_argv(s, "1", "perf"), ranks_argv(s, "1", "perf")):
        bare = [a for a in line if not a.startswith("--container-") and
                not a.startswith("--jobid") and a != "--overlap"]
        r = _docker("exec", cl["ctl"], "sbatch", "--test-only", "--nodes=2",
                    "--ntasks-per-node=2", "--wrap", " ".join(bare) + " true", check=False)
        assert r.returncode == 0 and "to start at" in r.stderr, (bare, r.stderr)
    assert any(a.startswith("--container-image=") for a in ranks_argv(s, "1", "perf"))


def test_export_of_a_slurm_inventory_prints_the_backends_lines():
    r = cli("cluster", "export", "-f", "slurm", "--hosts", str(ROOT / "examples" / "slurm-pyxis.yaml"))
    assert r.returncode == 0, r.stderr
    assert r.stdout == (GOLDEN / "pyxis.txt").read_text()
    r = cli("cluster", "export", "-f", "mpijob", "--hosts", str(ROOT / "examples" / "slurm-pyxis.yaml"))
    assert r.returncode == 2 and "is a Slurm inventory" in r.stderr and "Traceback" not in r.stderr


def test_stage_timeout_cancels_the_job(slurm_cluster, built, home):
    cl = slurm_cluster
    exe = Path(sys.executable).parent / "containerctl"
    t0 = time.monotonic()
    r = subprocess.run([str(exe), "cluster", "exec-stage", "perf", "--hosts", str(built),
                        "-b", "1M", "-e", "64M", "-n", "400", "--timeout", "12", "-q"],
                       capture_output=True, text=True, timeout=180)
    took = time.monotonic() - t0
    assert r.returncode == 1, r.stdout + r.stderr
    perf = _rec(home, "perf")
    assert perf["status"] == "timeout", perf["message"]
    meta = _run_meta(home)
    assert meta["slurm"]["job_state"] == "CANCELLED"
    assert "cctl-t-" not in _squeue(cl, "-o", "%j")
    assert took < 90


def test_cluster_script_refuses_what_it_did_not_make(engine):
    """`up` next to a same-named volume it did not make refuses (exit 2) and leaves it; `down`
    removes only what carries its label."""
    name = f"cctl-slurm-x{uuid.uuid4().hex[:6]}"
    _docker("volume", "create", f"{name}-work")
    try:
        env = dict(os.environ, CONTAINERCTL=str(Path(sys.executable).parent / "containerctl"))
        r = subprocess.run(["bash", str(SCRIPT), "up", "--name", name], capture_output=True,
                           text=True, timeout=600, env=env)
        assert r.returncode == 2, r.stdout + r.stderr
        assert f"volume {name}-work exists and is not this cluster's" in r.stderr
        made = _docker("ps", "-aq", "--filter", f"label=io.containerctl.slurm-cluster={name}").stdout
        made += _docker("volume", "ls", "-q", "--filter",
                        f"label=io.containerctl.slurm-cluster={name}").stdout
        made += _docker("network", "ls", "-q", "--filter",
                        f"label=io.containerctl.slurm-cluster={name}").stdout
        assert made.strip() == ""                           # nothing half made
        r = subprocess.run(["bash", str(SCRIPT), "down", "--name", name], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0
        assert _docker("volume", "inspect", f"{name}-work", check=False).returncode == 0
    finally:
        _docker("volume", "rm", f"{name}-work", check=False)
        subprocess.run(["bash", str(SCRIPT), "down", "--name", name], capture_output=True)
    r = subprocess.run(["bash", str(SCRIPT), "up", "--name", "Bad_Name"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "--name Bad_Name" in r.stderr
