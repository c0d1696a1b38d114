"""The launcher model (containerctl/launch.py) as data: every MPI launch argv — one host with
OpenMPI or MPICH, no ssh client, the openib BTL present, many hosts from a hostfile, a Slurm step
with pmix or pmi2 — equals the list written out here. Then the bash side: common.sh's
mpi_launcher, run by real bash on the CCTL_LAUNCH_* values Python gives it, builds exactly
`Line.expand(environment)` (it adds nothing but what the launch-time environment holds), and
says what to do when deps has not written the facts. End to end (a real container, real
OpenMPI): tests/test_pipeline.py's perf and unittest stages, tests/test_slurm.py's steps."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

from containerctl.launch import (Line, LocalLaunch, MpiFacts, Segment, SrunLaunch, hetero_runs,
                                 launch_argv, local_line, mpich_mpmd, srun_line, srun_mpmd,
                                 stage_launch_env)
from containerctl.slurm.backend import ranks_argv
from containerctl.stages.render import render
from containerctl.stages.stagedef import StageDef
from containerctl.slurm.inventory import load

OMPI = MpiFacts("openmpi", "/usr/local/mpi/bin/mpirun", has_ssh=True, has_openib_btl=False)
ENV = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": "/f/build/lib:/usr/local/mpi/lib",
       "CUDA_VISIBLE_DEVICES": "0,1"}
NAMES = ("PATH", "LD_LIBRARY_PATH", "FLAGCX_DEBUG", "CUDA_VISIBLE_DEVICES")   # FLAGCX_DEBUG unset
OMPI_FLAGS = ["--allow-run-as-root", "--oversubscribe", "--bind-to", "none"]


# ---------------------------------------------------------------------------------------------
# the argv of each case

def test_openmpi_one_host():
    d = LocalLaunch(OMPI, 2, NAMES, ("--mca", "btl_tcp_if_include", "eth0"))
    assert launch_argv(d, ENV) == [
        "/usr/local/mpi/bin/mpirun", "-np", "2", *OMPI_FLAGS,
        "-x", "PATH", "-x", "LD_LIBRARY_PATH", "-x", "CUDA_VISIBLE_DEVICES",
        "--mca", "btl_tcp_if_include", "eth0"]


def test_openmpi_without_ssh_gets_no_rsh_agent():
    d = LocalLaunch(MpiFacts("openmpi", "/m/mpirun", has_ssh=False), 4)
    assert launch_argv(d, ENV) == ["/m/mpirun", "-np", "4", *OMPI_FLAGS,
                                   "--mca", "plm_rsh_agent", "false"]


def test_openmpi_with_the_openib_btl_turns_it_off():
    d = LocalLaunch(MpiFacts("openmpi", "/m/mpirun", has_ssh=True, has_openib_btl=True), 1,
                    ("PATH",))
    assert launch_argv(d, ENV) == ["/m/mpirun", "-np", "1", *OMPI_FLAGS,
                                   "--mca", "btl", "^openib", "-x", "PATH"]
    both = LocalLaunch(MpiFacts("openmpi", "/m/mpirun", has_ssh=False, has_openib_btl=True), 1)
    assert launch_argv(both, {}) == ["/m/mpirun", "-np", "1", *OMPI_FLAGS, "--mca",
                                     "plm_rsh_agent", "false", "--mca", "btl", "^openib"]


@pytest.mark.parametrize("flavour", ["mpich", "unknown"])
def test_mpich_one_host_passes_values(flavour):
    # Hydra: -genv NAME VALUE with the value at launch; no OpenMPI flags, whatever the facts say
    d = LocalLaunch(MpiFacts(flavour, "/usr/bin/mpirun", has_ssh=False, has_openib_btl=True), 3,
                    NAMES, ("-v",))
    assert launch_argv(d, {**ENV, "PATH": "/a b/bin"}) == [
        "/usr/bin/mpirun", "-np", "3", "-genv", "PATH", "/a b/bin",
        "-genv", "LD_LIBRARY_PATH", "/f/build/lib:/usr/local/mpi/lib",
        "-genv", "CUDA_VISIBLE_DEVICES", "0,1", "-v"]


def test_multi_host_from_a_hostfile():
    a = Segment("a", 2, "/f/perf_allreduce", ("-b", "1K"), "/f", {"CUDA_VISIBLE_DEVICES": "0,1"})
    b = Segment("b", 1, "/g/test_allreduce", (), "", {})
    assert mpich_mpmd("/opt/mpich/bin/mpirun", "/s/hostfile", [a, b]) == [
        "/opt/mpich/bin/mpirun", "-f", "/s/hostfile", "-genvnone",
        "-n", "2", "-wdir", "/f", "-env", "CUDA_VISIBLE_DEVICES", "0,1", "/f/perf_allreduce",
        "-b", "1K", ":", "-n", "1", "/g/test_allreduce"]


def test_mpich_mpmd_and_srun_argv():
    a = Segment("a", 2, "/f/perf_allreduce", ("-b", "1K"), "/f", {"CUDA_VISIBLE_DEVICES": "0,1"})
    b = Segment("b", 3, "/g/test_allreduce", ("-b", "1K", "-d", "float"), "/g",
                {"MACA_VISIBLE_DEVICES": "2", "X": "a b"}, image="reg/b:1")
    argv = mpich_mpmd("/opt/m/bin/mpirun", "/tmp/hf", [a, b])
    assert argv == ["/opt/m/bin/mpirun", "-f", "/tmp/hf", "-genvnone",
                    "-n", "2", "-wdir", "/f", "-env", "CUDA_VISIBLE_DEVICES", "0,1",
                    "/f/perf_allreduce", "-b", "1K", ":",
                    "-n", "3", "-wdir", "/g", "-env", "MACA_VISIBLE_DEVICES", "2",
                    "-env", "X", "a b", "/g/test_allreduce", "-b", "1K", "-d", "float"]
    s = srun_mpmd([a, b], "pmix")
    assert s[:2] == ["srun", "--mpi=pmix"] and s.count(":") == 1
    second = s[s.index(":") + 1:]
    assert second[:4] == ["--container-image=reg/b:1", "--container-workdir=/g", "--export=ALL",
                          "env"]
    assert "X=a b" in second and second[-4:] == ["-b", "1K", "-d", "float"]
    runs = hetero_runs("/m/mpirun", "/hf", {"allreduce": [a, b]}, "RID")
    assert runs[0]["coll"] == "allreduce"
    assert runs[0]["argv"].count("CCTL_HETERO_RUN") == 2           # every segment is marked
    assert runs[0]["command"].startswith("/m/mpirun -f /hf -genvnone -n 2 ")
    with pytest.raises(ValueError):
        srun_mpmd([a], "ssh")
    with pytest.raises(ValueError):
        mpich_mpmd("/m", "/hf", [])


@pytest.mark.parametrize("mpi", ["pmix", "pmi2"])
def test_slurm_step(mpi, tmp_path):
    text = (ROOT / "examples" / "slurm-ci.yaml").read_text().replace("mpi: pmix", f"mpi: {mpi}")
    inv = tmp_path / "slurm.yaml"
    inv.write_text(text)
    s = load(inv).slurm
    d = SrunLaunch(tuple(ranks_argv(s, "42", "perf")), s.ntasks, ("bash", "-c", "exec \"$@\"", "w"))
    step = {"SLURM_JOB_ID": "42", "SLURM_CONF": "/etc/slurm/slurm.conf", "SLURM_NTASKS": "1",
            "SLURM_STEP_ID": "3", "PATH": "/usr/bin"}
    assert launch_argv(d, step) == [
        "env", "-u", "SLURM_NTASKS", "-u", "SLURM_STEP_ID",
        "srun", "--jobid=42", "--overlap", f"--mpi={mpi}", "--nodes=2", "--ntasks-per-node=2",
        "--kill-on-bad-exit=1", "--job-name=perf-ranks",
        "-n", "4", "bash", "-c", "exec \"$@\"", "w"]


def test_bad_descriptions_are_refused():
    with pytest.raises(ValueError, match="at least 1 rank"):
        local_line(LocalLaunch(OMPI, 0))
    with pytest.raises(ValueError, match="starts with srun"):
        srun_line(SrunLaunch(("mpirun",), 2))
    with pytest.raises(ValueError, match="newline"):
        local_line(LocalLaunch(OMPI, 1, (), ("a\nb",))).stage_env()


# ---------------------------------------------------------------------------------------------
# the facts deps writes, and the stage's values

def test_facts_from_the_deps_file():
    f = MpiFacts.parse("flavour=openmpi\nmpirun=/usr/local/mpi/bin/mpirun\nssh=0\nopenib_btl=1\n")
    assert f == MpiFacts("openmpi", "/usr/local/mpi/bin/mpirun", False, True)
    assert MpiFacts.parse("flavour=mpich\n") is None            # no mpirun: no facts
    assert MpiFacts.parse("") is None


def test_stage_values_follow_the_final_rank_count_and_names():
    env = {"CCTL_NRANKS": "8", "CCTL_EXPORT_NAMES": "PATH FOO", "CCTL_MPIRUN_ARGS": "-v\n--tag-output"}
    got = stage_launch_env(env, OMPI)
    assert got == {"CCTL_LAUNCH_ARGV": "\n".join(["/usr/local/mpi/bin/mpirun", "-np", "8",
                                                  *OMPI_FLAGS, "-v", "--tag-output"]),
                   "CCTL_LAUNCH_AT": "7", "CCTL_LAUNCH_ENV": "-x",
                   "CCTL_LAUNCH_NAMES": "PATH FOO"}
    assert stage_launch_env(env, None) == {}                    # deps has not run: no line
    srun = SrunLaunch(("srun", "--mpi=pmix"), 99)
    s = stage_launch_env(env, OMPI, srun)                       # a Slurm step wins over facts
    assert s["CCTL_LAUNCH_ARGV"].split("\n") == ["env", "srun", "--mpi=pmix", "-n", "8"]
    assert s["CCTL_LAUNCH_ENV"] == "-u" and s["CCTL_LAUNCH_AT"] == "1"


# ---------------------------------------------------------------------------------------------
# the bash side builds exactly Line.expand(environment)

def _bash_launcher(line_env: dict[str, str], environ: dict[str, str], tmp: Path
                   ) -> subprocess.CompletedProcess:
    """A stage script as the runner renders it (Jinja, common.sh included, the values in the
    quoted prologue) that calls mpi_launcher and prints the array, run by bash."""
    sd = StageDef(name="t", script='{% include "common.sh" %}\nmpi_launcher\n'
                                   "printf '%s\\0' \"${launcher[@]}\"\n")
    script = render(sd, {"env": {**line_env, "CCTL_DIR": str(tmp / "cctl")}})
    env = dict(environ)
    env.setdefault("PATH", os.environ["PATH"])
    return subprocess.run(["bash", "-c", script], env=env, capture_output=True, timeout=30)


CASES = [
    LocalLaunch(OMPI, 2, NAMES, ("--mca", "x", "a b")),
    LocalLaunch(MpiFacts("openmpi", "/m/mpirun", False, True), 1, ("FLAGCX_DEBUG",)),
    LocalLaunch(MpiFacts("mpich", "/usr/bin/mpirun", True, False), 3, NAMES, ("-v",)),
    SrunLaunch(("srun", "--mpi=pmi2", "--job-name=perf-ranks"), 4, ("bash", "-c", "x y", "w")),
]


@pytest.mark.parametrize("d", CASES, ids=["openmpi", "openmpi-nossh-openib", "mpich", "srun"])
def test_bash_builds_the_python_argv(d, tmp_path):
    environ = {**ENV, "LD_LIBRARY_PATH": "/with space/lib:$HOME", "EMPTY": "",
               "SLURM_JOB_ID": "7", "SLURM_NTASKS": "1", "SLURM_STEP_ID": "0",
               "SLURM_CONF": "/c"}
    line = srun_line(d) if isinstance(d, SrunLaunch) else local_line(d)
    r = _bash_launcher(line.stage_env(), environ, tmp_path)
    assert r.returncode == 0, r.stderr.decode()
    got = r.stdout.decode().split("\0")[:-1]
    # what bash itself sets (PWD, SHLVL, _) is not SLURM_* and not an exported name
    assert got == line.expand(environ)


def test_bash_without_a_line_says_run_deps(tmp_path):
    r = _bash_launcher({}, {"PATH": os.environ["PATH"]}, tmp_path)
    assert r.returncode == 3
    err = r.stderr.decode()
    assert "no MPI launch line" in err and "run deps first" in err and "Traceback" not in err
    assert r.stdout == b""


def test_a_line_is_plain_data():
    line = Line(("a", "b"), 1, "-x", ("N",))
    assert line.expand({"N": "1"}) == ["a", "-x", "N", "b"]
    assert line.expand({}) == ["a", "b"]


# ---------------------------------------------------------------------------------------------
# the facts on the real engine: what deps writes is what the container has, and the line built
# from it starts ranks there

@pytest.mark.docker
@pytest.mark.slow
def test_deps_writes_the_containers_facts_and_the_line_runs(engine, selftest_image, run_cli,
                                                            unique_name):
    from containerctl.launch import read_facts
    from containerctl.profiles import load_profile
    from containerctl.stages.context import make_context
    r = run_cli("run", "--profile", "cpu-selftest", "--name", unique_name, "--only", "deps", "-q")
    assert r.returncode == 0, r.stdout + r.stderr
    ctx = make_context(load_profile("cpu-selftest", site=False), {"nranks": 2})
    facts = read_facts(engine, unique_name, ctx["env"]["CCTL_DIR"])
    assert facts is not None
    # each fact against the container itself, asked independently
    sh = lambda c: engine.exec_capture(unique_name, ["bash", "-c", c])   # noqa: E731
    assert facts.has_ssh is (sh("command -v ssh")[0] == 0)
    code, version = sh(f"{facts.mpirun} --version")
    ompi = "Open MPI" in version or "OpenRTE" in version     # OpenMPI 4's mpirun says OpenRTE
    assert code == 0 and facts.flavour == ("openmpi" if ompi else "mpich")
    cctl = ctx["env"]["CCTL_DIR"]
    assert facts.has_openib_btl is (sh(f'. {cctl}/mpi.env && ls "$MPI_HOME"/lib*/openmpi/'
                                       'mca_btl_openib.so')[0] == 0)
    assert read_facts(engine, unique_name, "/nonexistent") is None
    # a container whose deps ran with the containerctl before mpi.facts has only mpi.env: the
    # facts read then (asked of the container as that version did at launch) are the same
    assert sh(f"rm {cctl}/mpi.facts")[0] == 0
    assert read_facts(engine, unique_name, cctl) == facts
    # the line Python builds from those facts starts 2 ranks in the container
    line = local_line(LocalLaunch(facts, 2, ("CCTL_T",)))
    argv = line.expand({"CCTL_T": "x"}) + ["bash", "-c", 'echo "rank ${OMPI_COMM_WORLD_RANK:-${PMI_RANK}} $CCTL_T"']
    code, out = engine.exec_capture(unique_name, argv, env={"CCTL_T": "x"})
    assert code == 0, out
    assert sorted(ln for ln in out.splitlines() if ln.startswith("rank ")) == ["rank 0 x", "rank 1 x"]


@pytest.mark.docker
@pytest.mark.slow
def test_perf_after_an_older_deps_without_facts(engine, selftest_image, run_cli, unique_name):
    """Upgrade path: deps and build ran with the previous containerctl (mpi.env, no mpi.facts);
    `exec-stage perf` alone launches its ranks without the user running deps again."""
    from containerctl.profiles import load_profile
    from containerctl.stages.context import make_context
    r = run_cli("run", "--profile", "cpu-selftest", "--name", unique_name, "--until", "build", "-q")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    cctl = make_context(load_profile("cpu-selftest", site=False), {})["env"]["CCTL_DIR"]
    code, out = engine.exec_capture(unique_name, ["bash", "-c", f"test -f {cctl}/mpi.env && rm {cctl}/mpi.facts"])
    assert code == 0, out
    r = run_cli("exec-stage", "perf", "--name", unique_name, "-q", "--coll", "allgather")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    assert "no MPI launch line" not in r.stdout + r.stderr
