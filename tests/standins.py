"""FlagCX stand-ins for tests: the stand-in (workloads/flagcx-selftest) exported as one FlagCX
interface generation, and small helpers to build and run it with the host's OpenMPI.

    from standins import make_standin
    root = make_standin("v0.11", tmp_path / "flagcx", fault="corrupt")

Generations (workloads/flagcx-selftest/README.md says exactly what each prints):
  runbook  FlagOpen <= v0.6: test/perf/test_<coll>; rank 0 prints plain sendbuff/recvbuff
  v0.11    v0.9 - v0.11: test/perf/test_<coll>; every rank prints `rank N sendbuff = ` ... and
           `rank N all-reduce correctness = 0|1`; -d/-o rejected
  v0.13    v0.12 - v0.13: same prints, test/perf/host_api/build/bin/perf_<coll>, gtest components
  main     after v0.13: host_api layout, -d/-o sweeps, no buffers and no verdict
Faults (stand-in only): corrupt, corrupt-quiet, noexchange, exit0, crash-rank1, build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

WORKLOAD = Path(__file__).resolve().parents[1] / "workloads" / "flagcx-selftest"
EXPORT_SCRIPT = WORKLOAD / "tools" / "export-generation.sh"
GENERATIONS = ("runbook", "v0.11", "v0.13", "main")
FAULTS = ("corrupt", "corrupt-quiet", "noexchange", "exit0", "crash-rank1", "build")
HOST_API_GENERATIONS = ("v0.13", "main")


def make_standin(gen: str, dest: Path | str, fault: str | None = None) -> Path:
    """Export generation `gen` of the stand-in to `dest` (new or empty), optionally with a
    planted fault (DEST/.selftest-fault).  Returns dest; raises RuntimeError with the script's
    output when it refuses."""
    dest = Path(dest)
    cmd = ["bash", str(EXPORT_SCRIPT), gen, str(dest)] + ([fault] if fault else [])
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"export-generation.sh {gen} failed ({res.returncode}): {res.stderr.strip()}")
    return dest


def find_mpi_home() -> str | None:
    """The directory with include/mpi.h and lib/libmpi.so for the host's mpicc, or None."""
    if shutil.which("mpicc") is None:
        return None
    candidates: list[Path] = []
    try:
        out = subprocess.run(["mpicc", "--showme:incdirs"], capture_output=True, text=True, timeout=30).stdout
        candidates += [Path(d).parent for d in out.split()]
    except (OSError, subprocess.SubprocessError):
        pass
    candidates += [Path(p) for p in ("/usr/lib/x86_64-linux-gnu/openmpi", "/usr/lib/aarch64-linux-gnu/openmpi",
                                     "/usr/local/mpi", "/usr/lib64/openmpi", "/usr/local", "/usr")]
    for home in candidates:
        if (home / "include" / "mpi.h").is_file() and (home / "lib" / "libmpi.so").exists():
            return str(home)
    return None


def mpi_env(**extra: str) -> dict[str, str]:
    """Environment for OpenMPI runs as root in containers, plus `extra`."""
    env = dict(os.environ)
    for name in ("SELFTEST_FAULT", "SELFTEST_FAULT_FILE", "SELFTEST_FAULT_BUILD"):
        env.pop(name, None)
    env["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    env["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    env.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    if shutil.which("ssh") is None:
        env.setdefault("OMPI_MCA_plm_rsh_agent", shutil.which("false") or "/bin/false")
    env.update(extra)
    return env


def make(root: Path, *args: str, timeout: int = 300, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", *args], cwd=root, capture_output=True, text=True, timeout=timeout,
                          env=env if env is not None else mpi_env())


def perf_dir(gen: str, root: Path) -> Path:
    return root / ("test/perf/host_api" if gen in HOST_API_GENERATIONS else "test/perf")


def perf_binary(gen: str, root: Path, coll: str) -> Path:
    if gen in HOST_API_GENERATIONS:
        return root / "test/perf/host_api/build/bin" / f"perf_{coll}"
    return root / "test/perf" / f"test_{coll}"


def build(gen: str, root: Path, mpi_home: str, colls: tuple[str, ...] = ()) -> None:
    """The library, then the perf tests of `colls` (all when empty).  Raises on failure."""
    lib = make(root, "-j2", "USE_CPU_SELFTEST=1", f"MPI_HOME={mpi_home}")
    if lib.returncode != 0:
        raise RuntimeError(f"{gen}: library build failed:\n{lib.stdout}{lib.stderr}")
    targets = [str(perf_binary(gen, root, c)) for c in colls]
    perf = make(perf_dir(gen, root), "-j2", "USE_CPU_SELFTEST=1", f"MPI_HOME={mpi_home}", *targets)
    if perf.returncode != 0:
        raise RuntimeError(f"{gen}: perf build failed:\n{perf.stdout}{perf.stderr}")


def mpirun(binary: Path | str, *args: str, np: int = 2, cwd: Path | None = None, timeout: int = 120,
           **env: str) -> subprocess.CompletedProcess[str]:
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(np), str(binary), *args]
    return subprocess.run(cmd, cwd=cwd, env=mpi_env(**env), capture_output=True, text=True, timeout=timeout)
