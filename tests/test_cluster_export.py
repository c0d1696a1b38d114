"""cluster export: the same heterogeneous job as an sbatch script (pyxis, heterogeneous-job
components) or a Kubeflow MPIJob. Pure: no engine needed; the outputs are parsed, not diffed."""
from __future__ import annotations

import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from conftest import ROOT, cli

HETERO = ROOT / "examples" / "hosts-a800-c550.yaml"
LOCAL = ROOT / "examples" / "hosts-local-selftest.yaml"


def _sbatch(text: str) -> tuple[list[str], list[list[str]]]:
    """(#SBATCH option lines, srun components as argv lists)."""
    assert text.startswith("#!/bin/bash\n")
    sb = [ln[len("#SBATCH "):].strip() for ln in text.splitlines() if ln.startswith("#SBATCH ")]
    body = text.replace("\\\n", " ")
    srun = [ln for ln in body.splitlines() if ln.startswith("srun ")]
    assert len(srun) == 1, text
    argv = shlex.split(srun[0])
    comps, cur = [], []
    for a in argv[1:]:
        if a == ":":
            comps.append(cur)
            cur = []
        else:
            cur.append(a)
    comps.append(cur)
    return sb, [argv[:1] + comps[0]] + comps[1:]


def test_slurm_heterogeneous_job_one_component_per_host():
    r = cli("cluster", "export", "--format", "slurm", "--hosts", str(HETERO), "-b", "128K",
            "-e", "4G", "--image", "a800=registry.local#flagcx/a800:1",
            "--image", "c550=registry.local#flagcx/c550:1")
    assert r.returncode == 0, r.stderr
    sb, comps = _sbatch(r.stdout)
    assert sb.count("hetjob") == 1
    # two components: --nodes=1 --ntasks-per-node=2 each, separated by `hetjob`
    groups = " ".join(sb).split("hetjob")
    assert len(groups) == 2
    for g in groups:
        assert "--nodes=1" in g and "--ntasks-per-node=2" in g
    assert any(s.startswith("--job-name=") for s in sb)
    assert comps[0][0] == "srun" and "--mpi=pmi2" in comps[0]
    assert len(comps) == 2
    imgs = [next(a for a in c if a.startswith("--container-image=")) for c in comps]
    assert imgs == ["--container-image=registry.local#flagcx/a800:1",
                    "--container-image=registry.local#flagcx/c550:1"]
    for c, own, other in ((comps[0], "CUDA_VISIBLE_DEVICES=0,1", "MACA_VISIBLE_DEVICES"),
                          (comps[1], "MACA_VISIBLE_DEVICES=0,1", "CUDA_VISIBLE_DEVICES")):
        assert own in c and not any(a.startswith(other) for a in c)
        assert "FLAGCX_IB_HCA=mlx5" in c
        i = c.index("env")
        binary = next(a for a in c[i + 1:] if "=" not in a)
        assert binary.endswith("/test/perf/test_allreduce")
        args = c[c.index(binary) + 1:]
        assert args[args.index("-b") + 1] == "128K" and args[args.index("-e") + 1] == "4G"
        assert args[args.index("-p") + 1] == "1"
        assert any(a.startswith("LD_LIBRARY_PATH=") and "/opt/mpich-4.2.3/lib" in a for a in c)
    if shutil.which("bash"):
        assert subprocess.run(["bash", "-n"], input=r.stdout, text=True).returncode == 0


def test_slurm_uniform_hosts_are_one_component_and_pmix(tmp_path):
    out = tmp_path / "job.sbatch"
    r = cli("cluster", "export", "-f", "slurm", "--hosts", str(LOCAL), "--mpi", "pmix",
            "-o", str(out))
    assert r.returncode == 0, r.stderr
    text = out.read_text()
    sb, comps = _sbatch(text)
    # same image, same slots, different env: still two components (env differs per host)
    assert "--mpi=pmix" in comps[0]
    assert len(comps) == 2 and sb.count("hetjob") == 1
    assert "containerctl/cpu-selftest" in text and "docker push" in text
    # a truly uniform inventory collapses to one component with --nodes=N
    inv = yaml.safe_load(LOCAL.read_text())
    for h in inv["hosts"]:
        h["env"] = {}
    f = tmp_path / "uniform.yaml"
    f.write_text(yaml.safe_dump(inv))
    r = cli("cluster", "export", "-f", "slurm", "--hosts", str(f))
    assert r.returncode == 0, r.stderr
    sb, comps = _sbatch(r.stdout)
    assert "hetjob" not in sb and "--nodes=2" in sb and "--ntasks-per-node=2" in sb
    assert len(comps) == 1


def test_mpijob_manifest_structure():
    r = cli("cluster", "export", "--format", "mpijob", "--hosts", str(LOCAL), "-b", "1K",
            "-e", "64K", "--image", "a=registry.local/cpu-selftest:1",
            "--image", "b=registry.local/cpu-selftest:1")
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    assert doc["apiVersion"] == "kubeflow.org/v2beta1" and doc["kind"] == "MPIJob"
    spec = doc["spec"]
    assert spec["slotsPerWorker"] == 2
    assert spec["mpiImplementation"] == "MPICH"
    reps = spec["mpiReplicaSpecs"]
    assert set(reps) == {"Launcher", "Worker"}
    assert reps["Launcher"]["replicas"] == 1 and reps["Worker"]["replicas"] == 2
    launcher = reps["Launcher"]["template"]["spec"]["containers"][0]
    worker = reps["Worker"]["template"]["spec"]["containers"][0]
    assert launcher["image"] == worker["image"] == "registry.local/cpu-selftest:1"
    cmd = launcher["command"]
    assert cmd[0].endswith("/bin/mpirun")
    assert cmd[cmd.index("-f") + 1] == "/etc/mpi/hostfile" and "-genvnone" in cmd
    segs = " ".join(cmd).split(" : ")
    assert len(segs) == 2
    assert "-n 2" in segs[0] and "-env CUDA_VISIBLE_DEVICES 0,1" in segs[0]
    assert "-n 2" in segs[1] and "-env MACA_VISIBLE_DEVICES 0,1" in segs[1]
    for s in segs:
        assert re.search(r"/(test|perf)_allreduce -b 1K -e 64K ", s)
    env = {e["name"]: e["value"] for e in launcher["env"]}
    assert env["HYDRA_LAUNCHER_EXTRA_ARGS"] == "-p 8010"
    assert "sshd" in " ".join(worker["command"]) and "-p 8010" in " ".join(worker["command"])


def test_mpijob_refuses_hosts_with_different_images():
    r = cli("cluster", "export", "--format", "mpijob", "--hosts", str(HETERO))
    assert r.returncode == 2
    err = r.stderr.splitlines()
    assert err[0].startswith("error: an MPIJob has one Worker template")
    assert err[1].startswith("  fix:") and "--format slurm" in err[1]


def test_export_bad_format_and_image_option():
    r = cli("cluster", "export", "--format", "pbs", "--hosts", str(LOCAL))
    assert r.returncode == 2 and "slurm or mpijob" in r.stderr
    r = cli("cluster", "export", "--format", "slurm", "--hosts", str(LOCAL), "--image", "zz=x")
    assert r.returncode == 2 and "no host named zz" in r.stderr
    r = cli("cluster", "export", "--format", "slurm", "--hosts", str(LOCAL), "--mpi", "ssh")
    assert r.returncode == 2 and "pmi2" in r.stderr


@pytest.mark.parametrize("fmt", ["slurm", "mpijob"])
def test_export_needs_no_engine(fmt, tmp_path):
    """Export is pure: it works when no host's Docker engine can be reached."""
    inv = yaml.safe_load(LOCAL.read_text())
    for h in inv["hosts"]:
        h["docker"] = f"unix://{tmp_path}/no-engine.sock"
    f = tmp_path / "hosts.yaml"
    f.write_text(yaml.safe_dump(inv))
    r = cli("cluster", "export", "--format", fmt, "--hosts", str(f))
    assert r.returncode == 0, r.stderr
    assert "hosts.yaml" in r.stdout


# ---------------------------------------------------------------------------------------------
# what the export names exists: the built image's content-hash tag, the checkout's perf binary

def _srun_binary(comp: list[str]) -> tuple[str, list[str]]:
    i = comp.index("env")
    binary = next(a for a in comp[i + 1:] if "=" not in a)
    return binary, comp[comp.index(binary) + 1:]


@pytest.mark.docker
def test_export_names_the_built_image_tag(selftest_image, tmp_path):
    """No --image: the image is the content-hash tag containerctl built (never :latest), with
    how to push it."""
    assert re.fullmatch(r"containerctl/cpu-selftest:[0-9a-f]{12}", selftest_image)
    r = cli("cluster", "export", "-f", "slurm", "--hosts", str(LOCAL))
    assert r.returncode == 0, r.stderr
    _sb, comps = _sbatch(r.stdout)
    assert {next(a for a in c if a.startswith("--container-image=")) for c in comps} == \
        {f"--container-image={selftest_image}"}
    assert ":latest" not in r.stdout
    assert f"docker tag {selftest_image} REGISTRY/" in r.stdout
    r = cli("cluster", "export", "-f", "mpijob", "--hosts", str(LOCAL))
    assert r.returncode == 0, r.stderr
    doc = yaml.safe_load(r.stdout)
    w = doc["spec"]["mpiReplicaSpecs"]["Worker"]["template"]["spec"]["containers"][0]
    assert w["image"] == selftest_image


def _checkout(root, layout: str):
    """A tiny FlagCX-shaped tree: ≤ v0.11 (test/perf/Makefile + test_allreduce.cpp whose getopt
    has no -d/-o) or ≥ v0.12 (test/perf/host_api/Makefile, getopt with -d/-o)."""
    if layout == "test_perf":
        d = root / "test" / "perf"
        opts = "b:e:f:w:n:p:"
    else:
        d = root / "test" / "perf" / "host_api"
        opts = "b:e:f:w:n:p:d:o:"
    d.mkdir(parents=True)
    (d / "Makefile").write_text("all:\n")
    (d / "test_allreduce.cpp").write_text(
        "int main(int argc, char **argv) {\n"
        f'  while (getopt(argc, argv, "{opts}") != -1) {{}}\n  return 0;\n}}\n')
    return root


@pytest.mark.parametrize("layout, rel, typed", [
    ("test_perf", "test/perf/test_allreduce", False),
    ("host_api", "test/perf/host_api/build/bin/perf_allreduce", True),
])
def test_export_binary_and_options_follow_the_checkout(tmp_path, layout, rel, typed):
    src = _checkout(tmp_path / "FlagCX", layout)
    common = ["--hosts", str(LOCAL), "--source", str(src), "-b", "1K", "-e", "64K",
              "--image", "a=reg/x:1", "--image", "b=reg/x:1"]
    r = cli("cluster", "export", "-f", "slurm", *common)
    assert r.returncode == 0, r.stderr
    assert f"FlagCX perf layout {layout}" in r.stdout and f"probed {src}" in r.stdout
    _sb, comps = _sbatch(r.stdout)
    for c in comps:
        binary, args = _srun_binary(c)
        assert binary == f"/workspace/FlagCX/{rel}"
        assert f"--container-workdir={binary.rsplit('/', 1)[0]}" in c
        assert (args[args.index("-d") + 1] == "float" and args[args.index("-o") + 1] == "sum") \
            if typed else ("-d" not in args and "-o" not in args)
        assert args[args.index("-b") + 1] == "1K"
    r = cli("cluster", "export", "-f", "mpijob", *common)
    assert r.returncode == 0, r.stderr
    cmd = yaml.safe_load(r.stdout)["spec"]["mpiReplicaSpecs"]["Launcher"]["template"]["spec"][
        "containers"][0]["command"]
    segs = " ".join(cmd).split(" : ")
    assert len(segs) == 2
    for seg in segs:
        a = seg.split()
        assert a[a.index("-wdir") + 1] == f"/workspace/FlagCX/{rel}".rsplit("/", 1)[0]
        assert f"/workspace/FlagCX/{rel}" in a
        assert ("-d" in a and "-o" in a) == typed


def test_export_takes_the_layout_from_the_last_passed_build(tmp_path):
    """No --source: the interface the first host's passed build stage recorded."""
    from containerctl.cluster.inventory import load_inventory
    from containerctl.cluster import Cluster
    from containerctl.flagcx import probe_local
    from containerctl.results import store
    iface = probe_local(_checkout(tmp_path / "FlagCX", "host_api"))
    container = Cluster(load_inventory(LOCAL)).hosts[0].container
    rid = store.new_run_id("cpu-selftest")
    store.write_run({"run_id": rid, "profile": "cpu-selftest", "platform": "cpu",
                     "container": container, "started": "2026-01-01T00:00:00+00:00",
                     "status": "passed", "stages": ["build"]})
    store.write_stage(rid, {"schema": "containerctl.stage/1", "run_id": rid, "stage": "build",
                            "status": "passed",
                            "started": "2026-01-01T00:00:00+00:00",
                            "finished": "2026-01-01T00:00:01+00:00", "duration_s": 1.0,
                            "exit_code": 0, "message": "ok", "profile": "cpu-selftest",
                            "platform": "cpu", "container": container,
                            "metrics": {"flagcx_interface": iface.to_dict()}, "checks": [],
                            "repro": {}, "log": "logs/build.log"})
    r = cli("cluster", "export", "-f", "slurm", "--hosts", str(LOCAL), "--image", "a=r/x:1",
            "--image", "b=r/x:1")
    assert r.returncode == 0, r.stderr
    assert f"the passed build of host a (run {rid})" in r.stdout
    _sb, comps = _sbatch(r.stdout)
    binary, args = _srun_binary(comps[0])
    assert binary.endswith("/test/perf/host_api/build/bin/perf_allreduce") and "-d" in args


def test_export_says_which_layout_it_assumed(tmp_path):
    """Nothing to read the layout from (no build record, the source is not here): the script
    says what it assumed and how to fix it."""
    inv = yaml.safe_load(LOCAL.read_text())
    for h in inv["hosts"]:
        h["set"] = [f"flagcx.source={tmp_path}/not-here"]
    f = tmp_path / "hosts.yaml"
    f.write_text(yaml.safe_dump(inv))
    r = cli("cluster", "export", "-f", "slurm", "--hosts", str(f), "--image", "a=r/x:1",
            "--image", "b=r/x:1")
    assert r.returncode == 0, r.stderr
    assert "FlagCX perf layout NOT KNOWN" in r.stdout and "--source DIR" in r.stdout
    _sb, comps = _sbatch(r.stdout)
    assert _srun_binary(comps[0])[0] == "/workspace/FlagCX/test/perf/test_allreduce"
    r = cli("cluster", "export", "-f", "slurm", "--hosts", str(f), "--source",
            str(tmp_path / "nope"))
    assert r.returncode == 2 and "--source" in r.stderr and "fix:" in r.stderr
