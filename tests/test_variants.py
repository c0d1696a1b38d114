"""Issue 20: stage variants (FlagCX's CI steps as profile data, each probed against the checkout
before it runs, each its own record and verdict) and `nranks: auto` from the devices a container
sees. The probe runs on real trees (the stand-in's exported generations, small checkouts written
here); the end-to-end tests use the real Docker engine, the stand-in and OpenMPI."""
from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from containerctl.errors import UsageError
from containerctl.flagcx import probe_local
from containerctl.flagcx.variants import Variant, device_plan, parse_count, resolve, select
from containerctl.profiles import load_profile

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "workloads" / "flagcx-selftest"


def export(gen: str, dest: Path) -> Path:
    subprocess.run(["bash", str(STANDIN / "tools" / "export-generation.sh"), gen, str(dest)],
                   check=True, capture_output=True)
    return dest


@pytest.fixture(scope="module")
def v013(tmp_path_factory):
    return probe_local(export("v0.13", tmp_path_factory.mktemp("gen") / "t"))


@pytest.fixture(scope="module")
def runbook(tmp_path_factory):
    return probe_local(export("runbook", tmp_path_factory.mktemp("gen") / "t"))


def kernel_checkout(root: Path, reads: bool) -> Path:
    """A checkout whose top and unit-test Makefiles read COMPILE_KERNEL as FlagCX's do (or not)."""
    (root / "test" / "unittest" / "kernel").mkdir(parents=True)
    cond = "ifeq ($(COMPILE_KERNEL), 1)\n  FLAGS += -DCOMPILE_KERNEL\nendif\n" if reads else ""
    (root / "Makefile").write_text("USE_NVIDIA ?= 0\n" + cond)
    (root / "test" / "unittest" / "Makefile").write_text(
        "COMPONENTS := core runner\n" +
        ("ifeq ($(COMPILE_KERNEL), 1)\nCOMPONENTS += kernel device_api\nendif\n" if reads else ""))
    return root


def test_probe_reads_compile_kernel_and_the_optional_suites(tmp_path):
    yes = probe_local(kernel_checkout(tmp_path / "a", True))
    no = probe_local(kernel_checkout(tmp_path / "b", False))
    assert "COMPILE_KERNEL" in yes.make_vars_read and yes.unittest_components_optional == \
        ["kernel", "device_api"] and yes.unittest_components == ["core", "runner"]
    assert no.make_vars_read == [] and no.unittest_components_optional == []
    v = Variant(components=["kernel"], make_vars=["COMPILE_KERNEL=1"],
                needs={"make_var": "COMPILE_KERNEL", "components": ["kernel"]})
    assert resolve("unittest", "kernel", v, yes, [], 2).skip is None
    r = resolve("unittest", "kernel", v, no, [], 2)
    assert r.skip == "no Makefile of this checkout reads COMPILE_KERNEL"


def test_options_are_probed_from_getopt(v013, runbook):
    reg = Variant(extra_args=["-R", "1"], colls=["allreduce"], needs={"options": ["R"]})
    assert resolve("perf", "reg", reg, v013, ["allreduce"], 2).skip is None
    dtype = Variant(extra_args=["-d", "all"], needs={"options": ["d"]})
    r = resolve("perf", "dtypes", dtype, v013, ["allreduce"], 2)
    assert r.skip and "-d" in r.skip and v013.perf_getopt in r.skip
    # the runbook generation has -R too, but its getopt string (and binaries) differ
    assert resolve("perf", "reg", reg, runbook, ["allreduce"], 2).skip is None


def test_a_perf_test_runs_only_where_its_source_exists(v013):
    rma = Variant(colls=["put", "get"], nranks=2)
    r = resolve("perf", "rma", rma, v013, ["allreduce"], 2)
    assert r.skip == "none of its perf tests exist in this checkout (put, get)"
    mixed = Variant(colls=["alltoallv", "allreduce"])
    r = resolve("perf", "m", mixed, v013, [], 2)
    assert r.skip is None and r.colls == ["allreduce"] and "perf_alltoallv" in r.notes[0]


def test_rank_needs_and_caps():
    hyb = Variant(needs={"min_ranks": 2}, expect_hybrid=True)
    assert resolve("perf", "hybrid", hyb, None, [], 1).skip.startswith("needs 2 ranks, this run has 1")
    assert resolve("perf", "hybrid", hyb, None, [], 2).skip is None
    assert resolve("perf", "rma", Variant(nranks=2), None, [], 8).nranks == 2
    assert "2 logical nodes" in resolve("perf", "n", Variant(hosts=2), None, [], 1).skip
    assert resolve("perf", "n", Variant(hosts=2), None, [], 2).skip is None


def test_select_and_unknown_names():
    t = {"a": Variant(), "b": Variant()}
    assert [n for n, _ in select("perf", t, ["all"])] == ["a", "b"]
    assert [n for n, _ in select("perf", t, ["b", "b"])] == ["b"]
    with pytest.raises(UsageError) as e:
        select("perf", t, ["c"])
    assert "variants: a, b, or all" in e.value.hint


def test_shipped_profiles_declare_ci_variants():
    h = load_profile("nvidia-h200", site=False)
    assert h.flagcx.nranks == "auto" and h.flagcx.visible_devices == "auto"
    pv, uv = h.stages.perf.variants, h.stages.unittest.variants
    assert {"homo", "uni", "reg-homo", "reg-uni-p2p", "reg-uni-net", "rma", "p2p-engine",
            "hybrid"} <= set(pv)
    assert len(pv["homo"].colls) == 10 and pv["uni"].env == {"FLAGCX_MEM_ENABLE": "1",
                                                             "FLAGCX_USE_HETERO_COMM": "1"}
    assert pv["hybrid"].env["FLAGCX_CLUSTER_SPLIT_LIST"] == "2" and pv["hybrid"].expect_hybrid
    assert {"runner-split", "runner-split-net", "kernel", "device-api"} <= set(uv)
    assert all(v.ci for v in list(pv.values()) + list(uv.values()))   # where each comes from


@pytest.mark.parametrize("bad,needle", [
    ("stages.perf.variants.x.env.A-B=1", "not a variable name"),
    ("stages.unittest.variants.k.make_vars=[COMPILE_KERNEL]", "COMPILE_KERNEL=1"),
    ("stages.perf.variants.X_Y.colls=[allreduce]", "variant name"),
    ("stages.perf.variants.x.nope=1", "nope"),
    ("flagcx.nranks=0", "or auto"),
    ("flagcx.nranks=many", "flagcx.nranks"),
])
def test_bad_variant_or_nranks_is_refused(bad, needle):
    from containerctl.errors import ContainerctlError
    with pytest.raises(ContainerctlError) as e:
        load_profile("cpu-selftest", [bad], site=False)
    assert needle in e.value.message, e.value.message


def test_device_plan_auto_and_refusal():
    h = load_profile("nvidia-h200", site=False)
    plan = device_plan(h, 1, "device nodes /dev/nvidia[0-9]*")
    assert plan["nranks"] == 1 and plan["visible_devices"] == "0"
    assert device_plan(h, 4, "nvidia-smi -L")["visible_devices"] == "0,1,2,3"
    with pytest.raises(UsageError) as e:
        device_plan(load_profile("nvidia-h200", ["flagcx.nranks=2"], site=False), 1, "x")
    assert "nranks is 2" in e.value.message and "sees 1 device" in e.value.message
    assert "--set flagcx.nranks=1" in e.value.hint
    with pytest.raises(UsageError) as e:
        device_plan(h, None, "no device nodes or vendor tool counted")
    assert "auto" in e.value.message and "--set flagcx.nranks=N" in e.value.hint
    assert parse_count("x\nDEVICES 2 device nodes /dev/nvidia[0-9]*\n") == (
        2, "device nodes /dev/nvidia[0-9]*")
    assert parse_count("DEVICES - none")[0] is None


# ---------------------------------------------------------------------------------------------
# end to end: the real engine, the stand-in, OpenMPI

def fake_gpu_profile(tmp: Path) -> Path:
    """cpu-selftest seen as a two-device machine: /dev/null passed in as /dev/accel0 and 1
    (the container then has two numbered device nodes to count)."""
    p = tmp / "twodev.yaml"
    p.write_text(textwrap.dedent("""\
        extends: cpu-selftest
        name: twodev
        platform: generic
        container:
          devices: ["/dev/null:/dev/accel0", "/dev/null:/dev/accel1"]
        flagcx:
          nranks: auto
          visible_devices: auto
          visible_devices_env: SELFTEST_VISIBLE
        """))
    return p


def results(home: Path) -> list[dict]:
    runs = sorted((home / "results").iterdir())
    return [json.loads(f.read_text()) for f in sorted(runs[-1].glob("*.json"))]


def test_variants_end_to_end(selftest_image, run_cli, unique_name, tmp_path):
    home = Path(os.environ["CONTAINERCTL_HOME"])
    prof = fake_gpu_profile(tmp_path)
    r = run_cli("run", "--profile", str(prof), "--name", unique_name, "--until", "build", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    run = json.loads(sorted((home / "results").glob("*/run.json"))[-1].read_text())
    assert run["devices"]["devices"] == 2 and run["devices"]["nranks"] == 2
    assert "device nodes" in run["devices"]["counted_by"]
    # an explicit rank count above the devices: refused before anything runs, nothing recorded
    before = len(list((home / "results").iterdir()))
    r = run_cli("exec-stage", "perf", "--name", unique_name, "--profile", str(prof),
                "--set", "flagcx.nranks=3", "-q")
    assert r.returncode == 2 and "nranks is 3" in r.stderr and "sees 2 devices" in r.stderr
    assert "--set flagcx.nranks=2" in r.stderr and "Traceback" not in r.stderr
    assert len(list((home / "results").iterdir())) == before
    # every variant: each probed, each its own record and verdict
    r = run_cli("exec-stage", "perf", "--name", unique_name, "--profile", str(prof),
                "--variant", "all", "--set", "stages.perf.end=16K", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    recs = {x["stage"]: x for x in results(home) if "stage" in x}
    assert set(recs) == {"perf-homo", "perf-uni", "perf-reg-homo", "perf-rma", "perf-hybrid",
                         "perf-two-nodes"}
    assert recs["perf-rma"]["status"] == "skipped" and "put, get" in recs["perf-rma"]["message"]
    for n in ("perf-homo", "perf-uni", "perf-reg-homo", "perf-hybrid", "perf-two-nodes"):
        assert recs[n]["status"] == "passed", (n, recs[n]["message"])
        assert recs[n]["metrics"]["variant"]["nranks"] == 2
    assert recs["perf-uni"]["metrics"]["variant"]["env"]["FLAGCX_USE_HETERO_COMM"] == "1"
    run = json.loads(sorted((home / "results").glob("*/run.json"))[-1].read_text())
    assert run["status"] == "passed" and run["outcomes"]["perf"] == "passed", run
    r = run_cli("report", recs["perf-homo"]["run_id"], "--format", "markdown")
    assert "### variants" in r.stdout and "| perf | hybrid | passed | 2 |" in r.stdout, r.stdout
    assert "| perf | rma | skipped |" in r.stdout and "hybrid | run_unit_test.sh" in r.stdout
    homo = recs["perf-homo"]["metrics"]["collectives"]
    assert set(homo) == {"alltoall", "sendrecv", "allreduce", "allgather", "reducescatter",
                         "broadcast", "gather", "scatter", "reduce"}   # alltoallv: not built here
    log = (home / "results" / recs["perf-reg-homo"]["run_id"] / "logs" /
           "perf-reg-homo.log").read_text()
    assert "-R 1" in log
    log = (home / "results" / recs["perf-two-nodes"]["run_id"] / "logs" /
           "perf-two-nodes.log").read_text()   # one MPMD segment per logical node
    assert "-np 1 -x FLAGCX_HOSTID=node0 " in log and " : -np 1 -x FLAGCX_HOSTID=node1 " in log
    # an unknown variant: exit 2, the names there are
    r = run_cli("exec-stage", "perf", "--name", unique_name, "--variant", "nope", "-q")
    assert r.returncode == 2 and "homo, hybrid, reg-homo, rma, two-nodes, uni, or all" in r.stderr


def test_device_api_mpi_output_becomes_gtest_xml(tmp_path):
    """FlagCX's device-API MPI tests print `[rank R] NAME PASS|FAIL` (test_device_api_intra.cpp);
    the unittest stage turns that into gtest XML, a case failed on any rank failing."""
    import re

    from containerctl.results.gtest import parse_gtest_xml
    script = (ROOT / "containerctl/stages/defs/25-unittest.yaml").read_text()
    awk = re.search(r"(      awk -v suite=.*?\}')\s+\"\$out/\$t.log\"", script, re.S).group(1)
    log = tmp_path / "t.log"
    log.write_text("# FlagCX Device API Intra-Node Test\n"
                   "[rank 0] intra put/signal                    PASS\n"
                   "[rank 1] intra put/signal                    FAIL\n"
                   "[rank 0] barrier                             PASS\n"
                   "[rank 1] barrier                             PASS\n"
                   "[rank 0] === Overall: FAIL ===\n")
    out = subprocess.run(["bash", "-c", f"t=test_device_api_intra; {awk} {log}"],
                         capture_output=True, text=True, check=True).stdout
    run = parse_gtest_xml(out, "test_device_api_intra")
    by = {c.name: c for c in run.cases}
    assert set(by) == {"test_device_api_intra.intra_put_signal", "test_device_api_intra.barrier"} \
        or {c.split(".")[-1] for c in by} == {"intra_put_signal", "barrier"}, by
    failed = [n for n, c in by.items() if c.status == "failed"]
    assert len(failed) == 1 and failed[0].endswith("intra_put_signal"), by
    # v0.13.0's test_device_api prints "  NAME   PASS|FAIL" (no rank prefix)
    log.write_text("# FlagCX Device API Test\n  K1 Put                          PASS\n"
                   "  K5 Signal                       FAIL\n#\n")
    out = subprocess.run(["bash", "-c", f"t=test_device_api; {awk} {log}"],
                         capture_output=True, text=True, check=True).stdout
    cases = {c.name.split(".")[-1]: c.status for c in parse_gtest_xml(out, "x").cases}
    assert cases == {"K1_Put": "passed", "K5_Signal": "failed"}, cases
