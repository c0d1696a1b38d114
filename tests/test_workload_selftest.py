"""The embedded FlagCX stand-in (selftest) in workloads/flagcx-selftest builds and runs like FlagCX.

The embedded tree is the stand-in's `v0.13` interface generation (FlagCX v0.12 - v0.13: perf
tests in test/perf/host_api, every rank printing `rank N sendbuff/recvbuff = ` and its own
all-reduce verdict, no -d/-o).  These tests build it with the host's OpenMPI in a temporary copy
(never inside the repository tree) and check what containerctl relies on: the make flags, the
binary layout, FlagCX's exact perf-test output line and what each collective prints with -p 1
(workloads/flagcx-selftest/README.md).  The other generations: tests/test_standins.py.
They are skipped only when mpicc is missing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from standins import find_mpi_home, mpi_env

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
    r"Algo bandwidth: (\d+\.\d{6}) GB/s; Bus bandwidth: (\d+\.\d{6}) GB/s$", re.M
)
FLOATS = r"((?:-?\d+\.\d{6} )+)"
PLAIN_RE = re.compile(r"^(sendbuff|recvbuff) = " + FLOATS + "$", re.M)
ONE_RE = re.compile(r"^(sendbuff|recvbuff) = (-?\d+\.\d{6})$", re.M)
RANK_RE = re.compile(r"^rank (\d+) (sendbuff|recvbuff) = " + FLOATS + "$", re.M)
VERDICT_RE = re.compile(r"^rank (\d+) all-reduce correctness = (\d)$", re.M)
ROOT_RE = re.compile(r"^root rank is (\d+)$", re.M)

NRANKS = 2
TIMEOUT = 180
HOST_API = Path("test/perf/host_api")
BINDIR = HOST_API / "build" / "bin"

pytestmark = pytest.mark.skipif(
    shutil.which("mpicc") is None,
    reason="OpenMPI not installed on host; the Docker pipeline tests cover this",
)


def _find_mpi_home() -> str:
    """The directory with include/mpi.h and lib/libmpi.so for the host's mpicc."""
    home = find_mpi_home()
    if home is None:
        pytest.fail("mpicc is installed but no MPI_HOME with include/mpi.h and lib/libmpi.so")
    return home


_mpi_env = mpi_env


def _make(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT, env=_mpi_env()
    )


def _mpirun(binary: str, *args: str, cwd: Path, np: int = NRANKS) -> subprocess.CompletedProcess[str]:
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(np), binary, *args]
    return subprocess.run(cmd, cwd=cwd, env=_mpi_env(), capture_output=True, text=True, timeout=TIMEOUT)


def _copy_workload(dest: Path) -> Path:
    shutil.copytree(WORKLOAD, dest, ignore=shutil.ignore_patterns("build", "*.o", "*.d", ".selftest-fault"))
    return dest


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]


def _sizes_and_factors(stdout: str) -> list[tuple[int, float, float]]:
    return [(int(m[0]), float(m[2]), float(m[3])) for m in LINE_RE.findall(stdout)]


def _plain(stdout: str, kind: str) -> list[list[float]]:
    return [_floats(v) for k, v in PLAIN_RE.findall(stdout) if k == kind]


def _one(stdout: str, kind: str) -> list[float]:
    return [float(v) for k, v in ONE_RE.findall(stdout) if k == kind]


@pytest.fixture(scope="module")
def mpi_home() -> str:
    return _find_mpi_home()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, mpi_home: str) -> Path:
    root = _copy_workload(tmp_path_factory.mktemp("selftest") / "flagcx-selftest")
    lib = _make("-j2", "USE_CPU_SELFTEST=1", f"MPI_HOME={mpi_home}", cwd=root)
    assert lib.returncode == 0, lib.stdout + lib.stderr
    assert (root / "build" / "lib" / "libflagcx.so").is_file()
    # test/perf delegates to test/perf/host_api, as in FlagCX v0.12 - v0.13
    perf = _make("-C", "test/perf", "-j2", "USE_CPU_SELFTEST=1", f"MPI_HOME={mpi_home}", cwd=root)
    assert perf.returncode == 0, perf.stdout + perf.stderr
    for coll in COLLS:
        assert (root / BINDIR / f"perf_{coll}").is_file()
    return root


def test_allreduce_output_format_sizes_bandwidth_buffers_and_verdict(built: Path) -> None:
    res = _mpirun(str(BINDIR / "perf_allreduce"), "-b", "1K", "-e", "64K", "-f", "2", "-w", "1", "-n", "3",
                  "-p", "1", cwd=built)
    assert res.returncode == 0, res.stdout + res.stderr
    sizes = [1024 * 2**k for k in range(7)]
    factor = 2.0 * (NRANKS - 1) / NRANKS
    records = _sizes_and_factors(res.stdout)
    assert [r[0] for r in records] == sizes
    for _, algbw, busbw in records:
        assert algbw > 0
        assert abs(busbw - algbw * factor) <= 2e-6 + 1e-9 * busbw
    # every rank: (i % 10) * 2^rank in, (i % 10) * (2^n - 1) out, and its own verdict
    lines = RANK_RE.findall(res.stdout)
    assert len(lines) == 2 * NRANKS * len(sizes)
    for rank, kind, values in lines:
        base = [float(i % 10) for i in range(10)]
        want = [v * 2 ** int(rank) for v in base] if kind == "sendbuff" else [v * (2**NRANKS - 1) for v in base]
        assert _floats(values) == want, (rank, kind)
    assert sorted(VERDICT_RE.findall(res.stdout)) == sorted([(str(r), "1") for r in range(NRANKS)] * len(sizes))
    assert not PLAIN_RE.search(res.stdout)
    assert "# datatype" not in res.stdout  # no sweep banner before FlagCX's -d/-o


# The bus-bandwidth factor of each collective and a check of what -p 1 prints for 2 ranks and
# sizes 256..1K (README.md, "What every generation prints").
def _check_allgather(out: str) -> None:
    assert sorted(_one(out, "sendbuff")) == [0.0] * 3 + [1.0] * 3
    assert _plain(out, "recvbuff") == [[0.0, 1.0]] * 6


def _check_reducescatter(out: str) -> None:
    assert sorted(v[1] for v in _plain(out, "sendbuff")) == [1.0] * 3 + [2.0] * 3
    assert _plain(out, "recvbuff") == [[3.0 * (j % 10) for j in range(10)]] * 6


def _check_alltoall(out: str) -> None:
    assert sorted(map(tuple, _plain(out, "sendbuff"))) == [(0.0, 1.0)] * 3 + [(100.0, 101.0)] * 3
    assert sorted(map(tuple, _plain(out, "recvbuff"))) == [(0.0, 100.0)] * 3 + [(1.0, 101.0)] * 3


def _check_broadcast(out: str) -> None:
    assert sorted(ROOT_RE.findall(out)) == ["0"] * 6 + ["1"] * 6
    recv = _plain(out, "recvbuff")
    assert all(len(set(v)) == 1 for v in recv)
    assert sorted(v[0] for v in recv) == [0.0] * 6 + [1.0] * 6


def _check_reduce(out: str) -> None:
    assert _plain(out, "recvbuff") == [[3.0 * (i % 10) for i in range(10)]] * 6  # the root, per root


def _check_gather(out: str) -> None:
    assert _plain(out, "recvbuff") == [[0.0, 1.0]] * 6


def _check_scatter(out: str) -> None:
    assert sorted(_one(out, "recvbuff")) == [0.0] * 3 + [1.0] * 3 + [100.0] * 3 + [101.0] * 3


def _check_sendrecv(out: str) -> None:
    assert _plain(out, "sendbuff") == [[float(i % 10) for i in range(10)]] * 3
    assert _plain(out, "recvbuff") == [[100.0 + i % 10 for i in range(10)]] * 3


def _check_allreduce(out: str) -> None:
    assert [v for _, v in VERDICT_RE.findall(out)] == ["1"] * 6


EXPECTED = {
    "allreduce": (2.0 * (NRANKS - 1) / NRANKS, _check_allreduce),
    "allgather": ((NRANKS - 1) / NRANKS, _check_allgather),
    "reducescatter": ((NRANKS - 1) / NRANKS, _check_reducescatter),
    "alltoall": ((NRANKS - 1) / NRANKS, _check_alltoall),
    "broadcast": (1.0, _check_broadcast),
    "reduce": (1.0, _check_reduce),
    "sendrecv": (1.0, _check_sendrecv),
    "gather": ((NRANKS - 1) / NRANKS, _check_gather),
    "scatter": ((NRANKS - 1) / NRANKS, _check_scatter),
}


@pytest.mark.parametrize("coll", COLLS)
def test_every_collective_runs_with_its_bus_factor_and_prints(built: Path, coll: str) -> None:
    res = _mpirun(str(BINDIR / f"perf_{coll}"), "-b", "256", "-e", "1K", "-w", "1", "-n", "2", "-p", "1",
                  cwd=built)
    assert res.returncode == 0, res.stdout + res.stderr
    records = _sizes_and_factors(res.stdout)
    assert [r[0] for r in records] == [256, 512, 1024]
    factor, check = EXPECTED[coll]
    for _, algbw, busbw in records:
        assert abs(busbw - algbw * factor) <= 2e-6 + 1e-9 * busbw, (coll, algbw, busbw)
    check(res.stdout)


def test_default_size_sweep_uses_1024_multiples(built: Path) -> None:
    res = _mpirun(str(BINDIR / "perf_sendrecv"), "-b", "1M", "-e", "4M", "-f", "4", "-w", "0", "-n", "1",
                  cwd=built)
    assert res.returncode == 0, res.stdout + res.stderr
    assert [r[0] for r in _sizes_and_factors(res.stdout)] == [1 << 20, 1 << 22]
    assert "sendbuff" not in res.stdout and "correctness" not in res.stdout  # -p defaults to 0


def test_datatype_and_op_options_do_not_exist_yet(built: Path) -> None:
    # FlagCX v0.12 - v0.13 have no -d / -o: getopt rejects them, every rank prints the usage
    res = _mpirun(str(BINDIR / "perf_allreduce"), "-b", "1K", "-e", "1K", "-d", "float", "-o", "sum", cwd=built)
    assert res.returncode != 0
    assert res.stderr.count("invalid option -- 'd'") == NRANKS, res.stderr
    assert res.stdout.count("Usage:") == NRANKS
    assert not LINE_RE.search(res.stdout)
    bad = _mpirun(str(BINDIR / "perf_allreduce"), "-b", "8K", "-e", "1K", cwd=built)
    assert bad.returncode != 0 and "minbytes is larger than maxbytes" in bad.stderr


def test_binaries_find_the_library_from_anywhere(built: Path) -> None:
    # perf_<coll> carry the absolute <root>/build/lib as RUNPATH (test/make.inc)
    res = subprocess.run([str(built / BINDIR / "perf_allreduce"), "-b", "1K", "-e", "1K", "-n", "1"],
                         cwd="/", env=_mpi_env(), capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert LINE_RE.match(res.stdout.splitlines()[-1])


@pytest.mark.parametrize("vendor", ["NVIDIA", "ASCEND", "METAX", "AMD"])
def test_vendor_flag_fails_with_message(built: Path, mpi_home: str, vendor: str) -> None:
    for where in (".", "test/perf", "test/perf/host_api", "test/unittest"):
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
    shown = _make("print_var", f"MPI_LINK=-L{mpi_home}/lib -lmpi_cxx -lmpi", cwd=built / HOST_API)
    assert f"MPI_LINK: -L{mpi_home}/lib -lmpi_cxx -lmpi" in shown.stdout
    if not list(Path(mpi_home, "lib").glob("libmpi_cxx.so*")):
        pytest.skip("this MPI has no libmpi_cxx (OpenMPI >= 5); only the variable was checked")
    res = _make("-B", str(built / BINDIR / "perf_allreduce"), "USE_CPU_SELFTEST=1", f"MPI_HOME={mpi_home}",
                f"MPI_LINK=-L{mpi_home}/lib -lmpi_cxx -lmpi", cwd=built / HOST_API)
    assert res.returncode == 0, res.stdout + res.stderr
