"""Issue 20: FlagCX's heterogeneous (cross-cluster) path on one host. FLAGCX_CLUSTER_SPLIT_LIST=2
splits the ranks into two clusters and makes the communicator hybrid; the verdict needs FlagCX's
own INIT line saying so (a run that stayed homogeneous is not a hybrid pass). The stand-in learns
the same switch (reduce inside each cluster, exchange between the cluster roots, spread back)
with a planted fault in the cross-cluster step, so this runs end to end on the real engine."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from containerctl.flagcx.interface import hybrid_evidence
from containerctl.stages import checks as C

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "workloads" / "flagcx-selftest"
MPI_HOME = "/usr/lib/x86_64-linux-gnu/openmpi"

# real FlagCX's format (flagcx/service/debug.cc: "%s:%d:%d [%d] FLAGCX INFO ", flagcx.cc's
# c2cSchedule line): two clusters, rank 2 in cluster 1
REAL_HYBRID = """\
h200:4711:4711 [2] FLAGCX INFO cluster 1 c2cSchedule[0] sendCluster 1 recvCluster 1
h200:4711:4711 [2] FLAGCX INFO cluster 1 c2cSchedule[1] sendCluster 0 recvCluster 0
"""
REAL_HOMO = "h200:4711:4711 [0] FLAGCX INFO cluster 0 c2cSchedule[0] sendCluster 0 recvCluster 0\n"


def test_evidence_from_flagcx_lines():
    ok, line = hybrid_evidence("noise\n" + REAL_HYBRID)
    assert ok is True and line == REAL_HYBRID.splitlines()[1]
    ok, line = hybrid_evidence(REAL_HOMO)
    assert ok is False and line == REAL_HOMO.strip()
    ok, why = hybrid_evidence("Comm size: 1024 bytes; ...\n")
    assert ok is None and "FLAGCX_DEBUG=INFO" in why


def test_perf_check_needs_the_hybrid_line():
    out = ("=== containerctl coll=allreduce nranks=2 ===\n"
           "Comm size: 1024 bytes; Elapsed time: 0.000010 sec; Algo bandwidth: 0.1 GB/s; "
           "Bus bandwidth: 0.1 GB/s\n=== containerctl end coll=allreduce rc=0 ===\n")
    ctx = {"nranks": 2, "expect_hybrid": True, "platform_key": "cpu-selftest"}
    for text, ok, comm in ((REAL_HYBRID + out, True, "hybrid"), (REAL_HOMO + out, False,
                                                                   "homogeneous"),
                           (out, False, "unknown")):
        metrics, checks, _ = C.run_parser("perf", text, ctx)
        c = next(c for c in checks if c["name"] == "communicator hybrid")
        assert c["ok"] is ok and metrics["communicator"] == comm, c
    _, checks, _ = C.run_parser("perf", out, {"nranks": 2, "platform_key": "cpu-selftest"})
    assert not any(c["name"] == "communicator hybrid" for c in checks)


@pytest.fixture(scope="module")
def standin_build(tmp_path_factory):
    """The stand-in built on this machine (real make, real mpicc)."""
    if not Path(MPI_HOME, "include", "mpi.h").exists():
        pytest.skip("no OpenMPI development files here")
    d = tmp_path_factory.mktemp("standin") / "s"
    subprocess.run(["cp", "-r", str(STANDIN), str(d)], check=True)
    for args in ([], ["-C", "test/perf"]):
        subprocess.run(["make", *args, "USE_CPU_SELFTEST=1", f"MPI_HOME={MPI_HOME}", "-j2"],
                       cwd=d, check=True, capture_output=True)
    return d


def mpirun(build: Path, np: int, env: dict) -> subprocess.CompletedProcess:
    e = dict(os.environ, FLAGCX_DEBUG="INFO", FLAGCX_DEBUG_SUBSYS="INIT",
             OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
             OMPI_MCA_btl_vader_single_copy_mechanism="none", **env)
    xs = [a for k in ("FLAGCX_DEBUG", "FLAGCX_DEBUG_SUBSYS", *env) for a in ("-x", k)]
    return subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(np),
                           *xs, str(build / "test/perf/host_api/build/bin/perf_allreduce"),
                           "-b", "1K", "-e", "4K", "-f", "2", "-w", "1", "-n", "2", "-p", "1"],
                          capture_output=True, text=True, timeout=300, env=e)


@pytest.mark.parametrize("np", [2, 3, 4])
def test_standin_hierarchical_allreduce_is_right_and_says_hybrid(standin_build, np):
    r = mpirun(standin_build, np, {"FLAGCX_CLUSTER_SPLIT_LIST": "2"})
    assert r.returncode == 0, r.stderr
    ok, line = hybrid_evidence(r.stdout)
    assert ok is True, r.stdout[:2000]
    # the last cluster takes the remainder (3 ranks: clusters {0}, {1, 2})
    assert f"[{np - 1}] FLAGCX INFO cluster 1 c2cSchedule[1] sendCluster 0" in r.stdout
    c = C._oracle("allreduce", r.stdout, np)
    assert all(x["ok"] for x in c), c
    assert "correctness = 0" not in r.stdout and "correctness = 1" in r.stdout


def test_planted_cross_cluster_fault_is_caught(standin_build):
    r = mpirun(standin_build, 4, {"FLAGCX_CLUSTER_SPLIT_LIST": "2",
                                  "SELFTEST_FAULT": "cross-cluster"})
    assert r.returncode == 0   # like FlagCX's perf tests: wrong results, exit 0
    assert hybrid_evidence(r.stdout)[0] is True
    c = C._oracle("allreduce", r.stdout, 4)
    assert not all(x["ok"] for x in c), c
    # the same fault without a split does nothing: it lives in the cross-cluster step only
    r = mpirun(standin_build, 4, {"SELFTEST_FAULT": "cross-cluster"})
    assert hybrid_evidence(r.stdout)[0] is False
    assert all(x["ok"] for x in C._oracle("allreduce", r.stdout, 4))


def test_a_split_the_ranks_cannot_take_is_refused(standin_build):
    r = mpirun(standin_build, 2, {"FLAGCX_CLUSTER_SPLIT_LIST": "3"})
    assert r.returncode != 0 and "Invalid cluster split info '3' for 2 ranks" in r.stderr


def test_hybrid_variant_end_to_end(selftest_image, run_cli, unique_name):
    """`exec-stage perf --variant hybrid` in a real container: a pass with FlagCX's line as
    evidence; the planted cross-cluster fault fails on the buffers; a split into one cluster
    (homogeneous) fails as not hybrid."""
    home = Path(os.environ["CONTAINERCTL_HOME"])
    r = run_cli("run", "--name", unique_name, "--until", "build", "-q")
    assert r.returncode == 0, r.stdout + r.stderr

    def hybrid(*sets):
        args = [a for s in sets for a in ("--set", s)]
        r = run_cli("exec-stage", "perf", "--name", unique_name, "--variant", "hybrid",
                    "--set", "stages.perf.end=16K", *args, "-q")
        run = sorted((home / "results").iterdir())[-1]
        return r, json.loads((run / "perf-hybrid.json").read_text())

    r, rec = hybrid()
    assert r.returncode == 0 and rec["status"] == "passed", rec["message"]
    c = next(c for c in rec["checks"] if c["name"] == "communicator hybrid")
    assert c["ok"] and "c2cSchedule[1] sendCluster 1" in c["detail"]
    assert rec["metrics"]["communicator"] == "hybrid"
    assert rec["metrics"]["variant"]["env"]["FLAGCX_CLUSTER_SPLIT_LIST"] == "2"

    r, rec = hybrid("flagcx.env.SELFTEST_FAULT=cross-cluster")
    assert r.returncode != 0 and rec["status"] == "failed"
    assert "allreduce sum buffers" in rec["message"] and "wrong" in rec["message"]

    r, rec = hybrid("stages.perf.variants.hybrid.env.FLAGCX_CLUSTER_SPLIT_LIST=1")
    assert rec["status"] == "failed" and "stayed homogeneous" in rec["message"]
