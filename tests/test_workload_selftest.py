"""The embedded FlagCX stand-in (selftest) in workloads/flagcx-selftest builds and runs like FlagCX.

These tests build the workload with the host's OpenMPI in a temporary copy (never inside the
repository tree) and check what containerctl relies on: the make flags, the binary layouts and
FlagCX's exact perf-test output line. They are skipped only when mpicc is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

WORKLOAD = Path(__file__).resolve().parents[1] / "workloads" / "flagcx-selftest"

COLLS = (
    "allreduce",
    "allgather",
    "reducescatter",
    "alltoall",
    "broadcast",
    "reduce",
    "sendrecv",
    "gather",
    "scatter",
)

LINE_RE = re.compile(
    r"^Comm size: (\d+) bytes; Elapsed time: (\d+\.\d{6}) sec; "
    r"Algo bandwidth: (\d+\.\d{6}) GB/s; Bus bandwidth: (\d+\.\d{6}) GB/s$"
)
BUF_RE = re.compile(r"^(sendbuff|recvbuff) = ((?:-?\d+\.\d{6} )*)$")

NRANKS = 2
TIMEOUT = 180

pytestmark = pytest.mark.skipif(
    shutil.which("mpicc") is None,
    reason="OpenMPI not installed on host; the Docker pipeline tests cover this",
)


def _find_mpi_home() -> str:
    """The directory with include/mpi.h and lib/libmpi.so for the host's mpicc."""
    candidates: list[Path] = []
    try:
        out = subprocess.run(
            ["mpicc", "--showme:incdirs"], capture_output=True, text=True, timeout=30
        ).stdout
        candidates += [Path(d).parent for d in out.split()]
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += [
        Path(p)
        for p in (
            "/usr/lib/x86_64-linux-gnu/openmpi",
            "/usr/lib/aarch64-linux-gnu/openmpi",
            "/usr/local/mpi",
            "/usr/lib64/openmpi",
            "/usr/local",
            "/usr",
        )
    ]
    for home in candidates:
        if (home / "include" / "mpi.h").is_file() and (home / "lib" / "libmpi.so").exists():
            return str(home)
    pytest.fail(f"mpicc is installed but no MPI_HOME with include/mpi.h and lib/libmpi.so in {candidates}")


def _mpi_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    # Containers often forbid the ptrace-based single-copy path of the shared-memory transport.
    env.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    if shutil.which("ssh") is None:
        # Local runs never use it, but OpenMPI 4 refuses to start without an rsh agent.
        env.setdefault("OMPI_MCA_plm_rsh_agent", shutil.which("false") or "/bin/false")
    return env


def _make(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT
    )


def _mpirun(binary: str, *args: str, cwd: Path, np: int = NRANKS) -> subprocess.CompletedProcess[str]:
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(np), binary, *args]
    return subprocess.run(cmd, cwd=cwd, env=_mpi_env(), capture_output=True, text=True, timeout=TIMEOUT)


def _copy_workload(dest: Path) -> Path:
    ignore = shutil.ignore_patterns("build", *[f"test_{c}" for c in COLLS], "*.o", "*.d")
    shutil.copytree(WORKLOAD, dest, ignore=ignore)
    return dest


def _parse(stdout: str) -> list[dict]:
    """One record per size: the numbers of the result line and the buffer lines around it."""
    records: list[dict] = []
    pending: dict = {}
    for line in stdout.splitlines():
        m = LINE_RE.match(line)
        if m:
            pending.update(
                size=int(m.group(1)),
                elapsed=float(m.group(2)),
                algbw=float(m.group(3)),
                busbw=float(m.group(4)),
            )
            records.append(pending)
            pending = {}
            continue
        b = BUF_RE.match(line)
        if b:
            values = [float(v) for v in b.group(2).split()]
            if b.group(1) == "sendbuff":
                pending = {"send": values}
            else:
                assert records, f"recvbuff before any result line: {line!r}"
                records[-1]["recv"] = values
    return records


@pytest.fixture(scope="module")
def mpi_home() -> str:
    return _find_mpi_home()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, mpi_home: str) -> Path:
    root = _copy_workload(tmp_path_factory.mktemp("selftest") / "flagcx-selftest")
    lib = _make("-j2", "USE_CPU_SELFTEST=1", f"MPI_HOME={mpi_home}", cwd=root)
    assert lib.returncode == 0, lib.stdout + lib.stderr
    assert (root / "build" / "lib" / "libflagcx.so").is_file()
    perf = _make("-C", "test/perf", "-j2", "USE_CPU_SELFTEST=1", f"MPI_HOME={mpi_home}", cwd=root)
    assert perf.returncode == 0, perf.stdout + perf.stderr
    for coll in COLLS:
        assert (root / "test" / "perf" / f"test_{coll}").is_file()
    return root


def test_allreduce_output_format_sizes_bandwidth_and_buffers(built: Path) -> None:
    res = _mpirun("./test_allreduce", "-b", "1K", "-e", "64K", "-f", "2", "-w", "1", "-n", "3", "-p", "1",
                  cwd=built / "test" / "perf")
    assert res.returncode == 0, res.stdout + res.stderr
    result_lines = [ln for ln in res.stdout.splitlines() if ln.startswith("Comm size:")]
    assert result_lines and all(LINE_RE.match(ln) for ln in result_lines), res.stdout

    records = _parse(res.stdout)
    assert [r["size"] for r in records] == [1024 * 2**k for k in range(7)]
    factor = 2.0 * (NRANKS - 1) / NRANKS
    for r in records:
        assert r["algbw"] > 0
        assert abs(r["busbw"] - r["algbw"] * factor) <= 2e-6 + 1e-9 * r["busbw"], r
        assert r["send"] == [float(i % 10) for i in range(10)]
        assert r["recv"] == [v * NRANKS for v in r["send"]]


# What rank 0's recvbuff holds (first 10 floats) for sizes where every block has >= 10 floats,
# and the bus-bandwidth factor of each collective.
EXPECTED = {
    "allreduce": (lambda s: [v * NRANKS for v in s], 2.0 * (NRANKS - 1) / NRANKS),
    "allgather": (lambda s: s, (NRANKS - 1) / NRANKS),
    "reducescatter": (lambda s: [v * NRANKS for v in s], (NRANKS - 1) / NRANKS),
    "alltoall": (lambda s: s, (NRANKS - 1) / NRANKS),
    "broadcast": (lambda s: s, 1.0),
    "reduce": (lambda s: [v * NRANKS for v in s], 1.0),
    "sendrecv": (lambda s: s, 1.0),
    "gather": (lambda s: s, (NRANKS - 1) / NRANKS),
    "scatter": (lambda s: s, (NRANKS - 1) / NRANKS),
}


@pytest.mark.parametrize("coll", COLLS)
def test_every_collective_runs_with_its_bus_factor(built: Path, coll: str) -> None:
    res = _mpirun(f"./test_{coll}", "-b", "256", "-e", "1K", "-w", "1", "-n", "2", "-p", "1",
                  cwd=built / "test" / "perf")
    assert res.returncode == 0, res.stdout + res.stderr
    records = _parse(res.stdout)
    assert [r["size"] for r in records] == [256, 512, 1024]
    expect_recv, factor = EXPECTED[coll]
    for r in records:
        assert abs(r["busbw"] - r["algbw"] * factor) <= 2e-6 + 1e-9 * r["busbw"], (coll, r)
        assert r["send"] == [float(i % 10) for i in range(10)]
        assert r["recv"] == expect_recv(r["send"]), (coll, r)


def test_default_size_sweep_uses_1024_multiples(built: Path) -> None:
    res = _mpirun("./test_sendrecv", "-b", "1M", "-e", "4M", "-f", "4", "-w", "0", "-n", "1",
                  cwd=built / "test" / "perf")
    assert res.returncode == 0, res.stdout + res.stderr
    assert [r["size"] for r in _parse(res.stdout)] == [1 << 20, 1 << 22]
    assert "sendbuff" not in res.stdout  # -p defaults to 0


def test_datatype_and_op_other_than_float_sum_fail_clearly(built: Path) -> None:
    perf = built / "test" / "perf"
    ok = _mpirun("./test_allreduce", "-b", "1K", "-e", "1K", "-w", "0", "-n", "1", "-d", "float", "-o", "sum",
                 cwd=perf)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad_type = _mpirun("./test_allreduce", "-b", "1K", "-e", "1K", "-d", "half", cwd=perf)
    assert bad_type.returncode != 0
    assert "unsupported datatype 'half'" in bad_type.stderr
    bad_op = _mpirun("./test_allreduce", "-b", "1K", "-e", "1K", "-o", "max", cwd=perf)
    assert bad_op.returncode != 0
    assert "unsupported op 'max'" in bad_op.stderr


def test_binaries_find_the_library_through_ld_library_path(built: Path) -> None:
    # The run path is the relative ../../build/lib (as in FlagCX): from elsewhere the library is
    # found only through LD_LIBRARY_PATH.
    env = _mpi_env()
    env["LD_LIBRARY_PATH"] = str(built / "build" / "lib")
    res = subprocess.run([str(built / "test" / "perf" / "test_allreduce"), "-b", "1K", "-e", "1K", "-n", "1"],
                         cwd=built.parent, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert LINE_RE.match(res.stdout.splitlines()[-1])


@pytest.mark.parametrize("vendor", ["NVIDIA", "ASCEND", "METAX", "AMD"])
def test_vendor_flag_fails_with_message(built: Path, mpi_home: str, vendor: str) -> None:
    for where in (".", "test/perf", "test/perf/host_api"):
        res = _make("-C", where, f"USE_{vendor}=1", f"MPI_HOME={mpi_home}", cwd=built)
        assert res.returncode != 0, (where, res.stdout)
        assert f"this is the containerctl selftest stand-in; it has no {vendor} backend" in res.stderr, (
            where, res.stderr)


def test_missing_device_flag_fails(tmp_path: Path, mpi_home: str) -> None:
    root = _copy_workload(tmp_path / "flagcx-selftest")
    res = _make(f"MPI_HOME={mpi_home}", cwd=root)
    assert res.returncode != 0
    assert "USE_CPU_SELFTEST=1" in res.stderr
    assert not (root / "build").exists()
    assert _make("clean", cwd=root).returncode == 0


def test_mpi_link_is_overridable(built: Path, mpi_home: str) -> None:
    perf = built / "test" / "perf"
    shown = _make("print_var", 'MPI_LINK=-lmpi_cxx -lmpi', cwd=perf)
    assert "MPI_LINK: -lmpi_cxx -lmpi" in shown.stdout
    if not list(Path(mpi_home, "lib").glob("libmpi_cxx.so*")):
        pytest.skip("this MPI has no libmpi_cxx (OpenMPI >= 5); only the variable was checked")
    res = _make("-B", "test-allreduce", "USE_CPU_SELFTEST=1", f"MPI_HOME={mpi_home}",
                "MPI_LINK=-lmpi_cxx -lmpi", cwd=perf)
    assert res.returncode == 0, res.stdout + res.stderr


def test_host_api_layout_builds_perf_binaries(built: Path, mpi_home: str) -> None:
    res = _make("-C", "test/perf/host_api", "-j2", "USE_CPU_SELFTEST=1", f"MPI_HOME={mpi_home}", cwd=built)
    assert res.returncode == 0, res.stdout + res.stderr
    binary = built / "build" / "bin" / "perf_allreduce"
    assert binary.is_file()
    run = _mpirun(str(binary), "-b", "1K", "-e", "4K", "-w", "1", "-n", "2", "-p", "1", "-d", "float", "-o", "sum",
                  cwd=built.parent)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "#\n# datatype: float, op: sum\n#\n" in run.stdout
    records = _parse(run.stdout)
    assert [r["size"] for r in records] == [1024, 2048, 4096]
    assert all(r["recv"] == [v * NRANKS for v in r["send"]] for r in records)

