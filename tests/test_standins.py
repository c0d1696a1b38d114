"""The FlagCX stand-in's interface generations (tools/export-generation.sh) look and behave like
the FlagCX releases they stand for, and their fault switches do what they say.

Real make, real OpenMPI (2 ranks), real googletest; skipped only when mpicc is missing.
Each generation is exported and built once (library + allreduce/allgather/broadcast).
"""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from standins import (EXPORT_SCRIPT, GENERATIONS, HOST_API_GENERATIONS, WORKLOAD, build, find_mpi_home,
                      make, make_standin, mpi_env, mpirun, perf_binary, perf_dir)

MPI_HOME = find_mpi_home()
pytestmark = pytest.mark.skipif(MPI_HOME is None, reason="OpenMPI (mpicc) not installed on host")

COLLS = ("allreduce", "allgather", "broadcast")
RUN_ARGS = ("-b", "1K", "-e", "8K", "-w", "1", "-n", "2", "-p", "1")
SIZES = [1024, 2048, 4096, 8192]
NP = 2

FLOATS = r"((?:-?\d+\.\d{6} )+)"
COMM_RE = re.compile(r"^Comm size: (\d+) bytes; Elapsed time: \d+\.\d{6} sec; "
                     r"Algo bandwidth: \d+\.\d{6} GB/s; Bus bandwidth: \d+\.\d{6} GB/s$", re.M)
PLAIN_RE = re.compile(r"^(sendbuff|recvbuff) = " + FLOATS + "$", re.M)
PLAIN_ONE_RE = re.compile(r"^(sendbuff|recvbuff) = (-?\d+\.\d{6})$", re.M)
RANK_RE = re.compile(r"^rank (\d+) (sendbuff|recvbuff) = " + FLOATS + "$", re.M)
VERDICT_RE = re.compile(r"^rank (\d+) all-reduce correctness = (\d)$", re.M)
WRONG_RE = re.compile(r"^rank (\d+) wrong output at offset (\d+), expected (\S+), got (\S+)$", re.M)
ROOT_RE = re.compile(r"^root rank is (\d+)$", re.M)
BANNER = "#\n# datatype: float, op: sum\n#\n"

GETOPT_RE = re.compile(r'getopt(?:_long)?\s*\(\s*argc\s*,\s*argv\s*,\s*"([^"]*)"')
CLASSIC_GETOPT = "b:e:f:w:n:p:r:s:R:h"
MAIN_GETOPT = "b:e:f:w:n:p:r:s:R:o:d:h"


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]


def sources(root: Path) -> dict[str, str]:
    """Every C/C++ source and header of a tree's test/ directory, by relative path."""
    return {str(p.relative_to(root)): p.read_text() for p in sorted((root / "test").rglob("*"))
            if p.suffix in (".c", ".cc", ".cpp", ".h", ".hpp")}


TRIPLET = subprocess.run(["gcc", "-dumpmachine"], capture_output=True, text=True).stdout.strip() or "x86_64-linux-gnu"
UNIT_MAKE = {  # what each unit-test test builds (the single-binary one with the gtest overrides)
    "v0.13": ("-k", "-j2", "runner", "USE_CPU_SELFTEST=1", f"MPI_HOME={MPI_HOME}"),
    "v0.11": ("-j2", "USE_CPU_SELFTEST=1", f"MPI_HOME={MPI_HOME}", "GTEST_INCLUDE=-I/usr/include",
              f"GTEST_LIB=/usr/lib/{TRIPLET}"),
}


@pytest.fixture(scope="module")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every generation exported and built (library + the perf tests of COLLS; the unit tests of
    v0.11 and v0.13 too when googletest is there), the generations side by side."""
    base = tmp_path_factory.mktemp("standins")
    have_gtest = Path(f"/usr/lib/{TRIPLET}/libgtest.a").exists()

    def one(gen: str) -> Path:
        root = make_standin(gen, base / gen)
        build(gen, root, MPI_HOME, COLLS)
        if gen in UNIT_MAKE and have_gtest:  # the tests run the same make again and check it
            make(root / "test/unittest", *UNIT_MAKE[gen])
        return root

    with ThreadPoolExecutor(max_workers=len(GENERATIONS)) as pool:
        return dict(zip(GENERATIONS, pool.map(one, GENERATIONS)))


TAG_RE = re.compile(r"^\[\d+,(\d+)\]<(?:stdout|stderr)>: ?")


def _untag(text: str, ranks: dict[int, list[str]] | None = None) -> str:
    """mpirun --tag-output's text without the `[job,rank]<stdout>:` prefixes; each rank's own
    lines, in its own order, collected in `ranks`."""
    out = []
    for line in text.splitlines(keepends=True):
        m = TAG_RE.match(line)
        if m:
            line = line[m.end():]
            if ranks is not None:
                ranks.setdefault(int(m.group(1)), []).append(line)
        out.append(line)
    return "".join(out)


class RankRun(subprocess.CompletedProcess):
    ranks: dict[int, str]    # every rank's own stdout: lines of different ranks never interleave


def run(trees: dict[str, Path], gen: str, coll: str, *args: str, **env: str) -> RankRun:
    """mpirun with --tag-output: `.stdout` is the merged text as a user sees it (ranks' lines
    in any order), `.ranks[r]` rank r's own lines — what a check about one rank's output reads
    (rank 1's `I am 1 of 2` may land inside rank 0's three-line banner in the merged text)."""
    # from the perf directory: the <= v0.11 binaries find the library through ../../build/lib
    binary = perf_binary(gen, trees[gen], coll)
    cmd = ["mpirun", "--allow-run-as-root", "--oversubscribe", "--tag-output", "-np", str(NP), str(binary),
           *(args or RUN_ARGS)]
    res = subprocess.run(cmd, cwd=perf_dir(gen, trees[gen]), env=mpi_env(**env), capture_output=True, text=True,
                         timeout=120)
    ranks: dict[int, list[str]] = {}
    out = RankRun(res.args, res.returncode, _untag(res.stdout, ranks), _untag(res.stderr))
    out.ranks = {r: "".join(ls) for r, ls in ranks.items()}
    return out


# ---------------------------------------------------------------- the exported trees' files

@pytest.mark.parametrize("gen", GENERATIONS)
def test_tree_holds_only_its_generations_interface(tmp_path: Path, gen: str) -> None:
    root = make_standin(gen, tmp_path / gen)
    src = sources(root)
    every = "\n".join(src.values())
    getopts = set(GETOPT_RE.findall(every))
    assert getopts == {MAIN_GETOPT if gen == "main" else CLASSIC_GETOPT}, getopts
    host_api = gen in HOST_API_GENERATIONS
    assert (root / "test/perf/host_api/Makefile").is_file() == host_api
    assert (root / "test/perf/Makefile").is_file()
    perf = root / ("test/perf/host_api" if host_api else "test/perf")
    assert sorted(p.name for p in perf.glob("test_*.cpp")) == sorted(
        f"test_{c}.cpp" for c in ("allreduce", "allgather", "reducescatter", "alltoall", "broadcast",
                                  "reduce", "sendrecv", "gather", "scatter"))
    allreduce = (perf / "test_allreduce.cpp").read_text()
    others = "\n".join(p.read_text() for p in perf.glob("test_*.cpp") if p.name != "test_allreduce.cpp")
    assert ('"rank %d sendbuff = "' in allreduce) == (gen in ("v0.11", "v0.13"))
    assert ("correctness = %d" in every) == (gen in ("v0.11", "v0.13"))
    assert ('"sendbuff = "' in allreduce) == (gen == "runbook")
    assert ('"sendbuff = "' in others) == (gen != "main")
    assert "rank %d sendbuff" not in others
    assert ("# datatype: %s, op: %s" in every) == (gen == "main")
    # unit tests: the single binary up to v0.11, components after
    unit_mk = (root / "test/unittest/Makefile").read_text()
    assert bool(re.search(r"^COMPONENTS\s*:?=", unit_mk, re.M)) == host_api
    assert (root / "test/unittest/main.cpp").is_file() != host_api
    # as a release tarball: empty submodules; JSON from the submodule from v0.11 on
    for sub in ("json", "googletest"):
        assert (root / "third-party" / sub).is_dir() and not any((root / "third-party" / sub).iterdir())
    includes_json = any("nlohmann/json.hpp" in p.read_text() for p in (root / "src").iterdir())
    assert includes_json == (gen != "runbook")
    top = (root / "Makefile").read_text()
    assert f"SELFTEST_GENERATION := {gen}\n" in top
    assert bool(re.search(r"^JSON_INCLUDE_DIR *\?=", top, re.M)) == (gen == "main")
    assert not (root / "tools").exists() and not (root / ".selftest-fault").exists()
    # the single sources' generation conditionals are resolved away (tools/src; README.md tells of them)
    assert not [p for p in root.rglob("*") if p.is_file() and p.suffix != ".md"
                and "CCTL_GEN_" in p.read_text(errors="replace")]


def test_embedded_tree_is_v013_without_json() -> None:
    src = sources(WORKLOAD)
    assert set(GETOPT_RE.findall("\n".join(src.values()))) == {CLASSIC_GETOPT}
    assert (WORKLOAD / "test/perf/host_api/Makefile").is_file()
    assert '"rank %d sendbuff = "' in (WORKLOAD / "test/perf/host_api/test_allreduce.cpp").read_text()
    assert "SELFTEST_GENERATION := v0.13\n" in (WORKLOAD / "Makefile").read_text()
    assert "CCTL_GEN_" not in "\n".join(src.values())  # its copies of tools/src are resolved for v0.13
    everything = [p for p in WORKLOAD.rglob("*") if p.is_file() and "tools" not in p.relative_to(WORKLOAD).parts]
    assert not [p for p in everything if p.suffix in (".c", ".cc", ".h", ".cpp", ".hpp")
                and "nlohmann" in p.read_text()], "the embedded tree must build without nlohmann-json3-dev"


def test_export_refuses_bad_input_and_makes_nothing(tmp_path: Path) -> None:
    for args, cause in ((["v0.12", str(tmp_path / "a")], "unknown generation 'v0.12'"),
                        (["main", str(tmp_path / "b"), "explode"], "unknown fault 'explode'")):
        res = subprocess.run(["bash", str(EXPORT_SCRIPT), *args], capture_output=True, text=True, timeout=60)
        assert res.returncode == 2
        assert res.stderr.startswith(f"error: {cause}\n  fix: "), res.stderr
        assert not Path(args[1]).exists()
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("")
    with pytest.raises(RuntimeError, match="exists and is not an empty directory"):
        make_standin("v0.13", busy)
    assert sorted(p.name for p in busy.iterdir()) == ["x"]
    assert (make_standin("runbook", tmp_path / "f", fault="noexchange") / ".selftest-fault").read_text() == "noexchange\n"


# ---------------------------------------------------------------- what -p 1 prints

@pytest.mark.parametrize("gen", GENERATIONS)
def test_allreduce_prints_per_generation(trees: dict[str, Path], gen: str) -> None:
    res = run(trees, gen, "allreduce")
    assert res.returncode == 0, res.stdout + res.stderr
    out = res.stdout
    assert [int(s) for s in COMM_RE.findall(out)] == SIZES
    assert sorted(re.findall(r"^I am (\d) of 2$", out, re.M)) == ["0", "1"]
    pattern = [float(i % 10) for i in range(10)]
    if gen == "runbook":
        lines = PLAIN_RE.findall(out)
        assert [k for k, _ in lines] == ["sendbuff", "recvbuff"] * len(SIZES)  # rank 0 alone, in order
        for kind, vals in lines:
            assert floats(vals) == (pattern if kind == "sendbuff" else [v * NP for v in pattern])
        assert not RANK_RE.search(out) and "correctness" not in out
    elif gen in ("v0.11", "v0.13"):
        lines = RANK_RE.findall(out)
        assert sorted((r, k) for r, k, _ in lines) == sorted(
            [(str(r), k) for r in range(NP) for k in ("sendbuff", "recvbuff")] * len(SIZES))
        for rank, kind, vals in lines:
            want = [v * 2 ** int(rank) for v in pattern] if kind == "sendbuff" else [v * (2 ** NP - 1) for v in pattern]
            assert floats(vals) == want, (rank, kind)
        assert sorted(VERDICT_RE.findall(out)) == sorted([(str(r), "1") for r in range(NP)] * len(SIZES))
        assert not PLAIN_RE.search(out) and not WRONG_RE.search(out)
    else:
        assert "sendbuff" not in out and "recvbuff" not in out and "correctness" not in out
    # rank 0 announces the sweep; judged on its own lines (another rank's may interleave)
    assert (BANNER in res.ranks[0]) == (gen == "main")
    assert not any(BANNER in res.ranks[r] for r in range(1, NP))


@pytest.mark.parametrize("gen", GENERATIONS)
def test_allgather_and_broadcast_print_plain_buffers(trees: dict[str, Path], gen: str) -> None:
    printers = 1 if gen == "runbook" else NP   # rank 0, or the first and the last rank
    ag = run(trees, gen, "allgather")
    bc = run(trees, gen, "broadcast")
    for res in (ag, bc):
        assert res.returncode == 0, res.stdout + res.stderr
        assert [int(s) for s in COMM_RE.findall(res.stdout)] == SIZES
        assert not RANK_RE.search(res.stdout)
    if gen == "main":
        for res in (ag, bc):
            assert "sendbuff" not in res.stdout and "recvbuff" not in res.stdout and "root rank" not in res.stdout
        return
    # allgather: each rank sends its rank; everyone gets 0 1
    sends = [float(v) for k, v in PLAIN_ONE_RE.findall(ag.stdout) if k == "sendbuff"]
    recvs = [floats(v) for k, v in PLAIN_RE.findall(ag.stdout) if k == "recvbuff"]
    assert sorted(sends) == sorted([float(r) for r in range(printers)] * len(SIZES))
    assert recvs == [[0.0, 1.0]] * (printers * len(SIZES))
    # broadcast: per root R, a "root rank is R" line, sendbuff = own rank, recvbuff = R
    roots = ROOT_RE.findall(bc.stdout)
    assert sorted(roots) == sorted([str(r) for r in range(NP)] * printers * len(SIZES))
    b_send = [floats(v) for k, v in PLAIN_RE.findall(bc.stdout) if k == "sendbuff"]
    b_recv = [floats(v) for k, v in PLAIN_RE.findall(bc.stdout) if k == "recvbuff"]
    assert sorted(v[0] for v in b_send) == sorted([float(r) for r in range(printers)] * NP * len(SIZES))
    assert all(len(set(v)) == 1 and len(v) == 10 for v in b_send + b_recv)
    assert sorted(v[0] for v in b_recv) == sorted([float(r) for r in range(NP)] * printers * len(SIZES))


@pytest.mark.parametrize("gen", GENERATIONS)
def test_datatype_option_only_after_v013(trees: dict[str, Path], gen: str) -> None:
    res = run(trees, gen, "allreduce", "-b", "1K", "-e", "1K", "-w", "0", "-n", "1", "-d", "float", "-o", "sum")
    if gen == "main":
        assert res.returncode == 0, res.stdout + res.stderr
        assert sum(res.ranks[r].count(BANNER) for r in range(NP)) == 1 and len(COMM_RE.findall(res.stdout)) == 1
        # one rank: mpirun forwards a rank's output in chunks (4 KiB) and can put another
        # rank's line inside one of this many lines
        sweep = mpirun(perf_binary(gen, trees[gen], "allreduce"), "-b", "1K", "-e", "1K", "-w", "0", "-n", "1",
                       "-d", "all", "-o", "all", np=1)
        banners = re.findall(r"^# datatype: (\w+), op: (\w+)$", sweep.stdout, re.M)
        assert len(banners) == 8 * 4 and ("double", "min") in banners
        assert len(COMM_RE.findall(sweep.stdout)) == len(banners)
        return
    assert res.returncode != 0
    assert res.stderr.count("invalid option -- 'd'") == NP, res.stderr
    assert res.stdout.count("Usage:") == NP
    assert not COMM_RE.search(res.stdout)


# ---------------------------------------------------------------- fault injection

def test_corrupt_shows_in_buffers_and_in_an_honest_verdict(trees: dict[str, Path]) -> None:
    res = run(trees, "v0.13", "allreduce", SELFTEST_FAULT="corrupt")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "fault injection active: corrupt (from SELFTEST_FAULT)" in res.stderr
    assert sorted(VERDICT_RE.findall(res.stdout)) == sorted([("0", "0"), ("1", "1")] * len(SIZES))
    assert WRONG_RE.findall(res.stdout) == [("0", "1", "3.000000", "4.000000")] * len(SIZES)
    recv0 = [floats(v) for r, k, v in RANK_RE.findall(res.stdout) if (r, k) == ("0", "recvbuff")]
    assert recv0 == [[0.0, 4.0] + [3.0 * i for i in range(2, 10)]] * len(SIZES)


def test_corrupt_quiet_lies_in_the_verdict_only(trees: dict[str, Path], tmp_path: Path) -> None:
    fault_file = tmp_path / "fault"
    fault_file.write_text("corrupt-quiet\n")
    res = run(trees, "v0.11", "allreduce", SELFTEST_FAULT_FILE=str(fault_file))
    assert res.returncode == 0, res.stdout + res.stderr
    assert sorted(VERDICT_RE.findall(res.stdout)) == sorted([(str(r), "1") for r in range(NP)] * len(SIZES))
    assert not WRONG_RE.search(res.stdout)
    recv0 = [floats(v) for r, k, v in RANK_RE.findall(res.stdout) if (r, k) == ("0", "recvbuff")]
    assert recv0 and all(v[1] == 4.0 for v in recv0)  # 3 is right: only the buffers tell


def test_noexchange_from_a_file_in_the_tree_leaves_recvbuff_untouched(trees: dict[str, Path]) -> None:
    root = trees["runbook"]
    (root / ".selftest-fault").write_text("noexchange\n")
    try:
        ag = run(trees, "runbook", "allgather")
        ar = run(trees, "runbook", "allreduce")
    finally:
        (root / ".selftest-fault").unlink()
    assert ag.returncode == 0 and ar.returncode == 0, ag.stderr + ar.stderr
    assert [floats(v) for k, v in PLAIN_RE.findall(ag.stdout) if k == "recvbuff"] == [[-1.0, -1.0]] * len(SIZES)
    assert [floats(v) for k, v in PLAIN_RE.findall(ar.stdout) if k == "recvbuff"] == [[-1.0] * 10] * len(SIZES)
    clean = run(trees, "runbook", "allgather")
    assert [floats(v) for k, v in PLAIN_RE.findall(clean.stdout) if k == "recvbuff"] == [[0.0, 1.0]] * len(SIZES)


def test_noexchange_broadcast_shows_minus_one(trees: dict[str, Path]) -> None:
    res = run(trees, "v0.13", "broadcast", SELFTEST_FAULT="noexchange")
    recvs = [floats(v) for k, v in PLAIN_RE.findall(res.stdout) if k == "recvbuff"]
    assert res.returncode == 0 and len(recvs) == NP * NP * len(SIZES)
    assert all(v == [-1.0] * 10 for v in recvs)


def test_crash_rank1_aborts_after_the_first_size(trees: dict[str, Path]) -> None:
    res = run(trees, "main", "allreduce", SELFTEST_FAULT="crash-rank1")
    assert res.returncode != 0
    assert [int(s) for s in COMM_RE.findall(res.stdout)] == SIZES[:1]
    assert "rank 1 aborts now" in res.stderr


# ---------------------------------------------------------------- unit tests (gtest)

def _need_gtest() -> None:
    if not Path(f"/usr/lib/{TRIPLET}/libgtest.a").exists() or not Path("/usr/include/gtest/gtest.h").exists():
        pytest.fail("googletest missing (Debian libgtest-dev): CONTAINERCTL_SETUP_TEST_DEPS=1 bash scripts/setup-host.sh")


def _gtest_run(binary: Path, xml_base: Path, np: int = NP, **env: str) -> tuple[int, list[dict]]:
    """Run a gtest binary under mpirun, one XML per rank; returns (rc, [per rank {case: failed}])."""
    res = subprocess.run(
        ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(np), "bash", "-c",
         'exec "$0" --gtest_output="xml:$1.${OMPI_COMM_WORLD_RANK}.xml"', str(binary), str(xml_base)],
        env=mpi_env(**env), capture_output=True, text=True, timeout=120)
    reports = []
    for rank in range(np):
        cases = {}
        for case in ET.parse(f"{xml_base}.{rank}.xml").getroot().iter("testcase"):
            cases[f"{case.get('classname')}.{case.get('name')}"] = case.find("failure") is not None
        reports.append(cases)
    return res.returncode, reports


def test_component_unit_tests_build_pass_and_fail_with_the_fault(trees: dict[str, Path], tmp_path: Path) -> None:
    _need_gtest()
    root = trees["v0.13"]
    built = make(root / "test/unittest", *UNIT_MAKE["v0.13"])
    assert built.returncode == 0, built.stdout + built.stderr
    bindir = root / "test/unittest/runner/build/bin"
    unit = subprocess.run([str(bindir / "runner_unit_tests"), f"--gtest_output=xml:{tmp_path}/u.xml"],
                          env=mpi_env(), capture_output=True, text=True, timeout=60)  # no mpirun needed
    assert unit.returncode == 0, unit.stdout
    assert 'failures="0"' in (tmp_path / "u.xml").read_text()

    rc, reports = _gtest_run(bindir / "runner_mpi_tests", tmp_path / "ok")
    assert rc == 0
    assert all(len(r) >= 8 and not any(r.values()) for r in reports), reports
    rc, reports = _gtest_run(bindir / "runner_mpi_tests", tmp_path / "bad", SELFTEST_FAULT="corrupt")
    assert rc != 0
    for r in reports:  # every rank reports the same failures: the allreduce cases only
        assert {c for c, failed in r.items() if failed} == {
            "SelftestCommTest.AllReduceSumFloat", "SelftestCommTest.AllReduceInt32EveryOp",
            "SelftestCommTest.AllReduceDoubleAndUint8Sum"}
    rc, reports = _gtest_run(bindir / "runner_mpi_tests", tmp_path / "lie", SELFTEST_FAULT="exit0")
    assert rc == 0 and all(r["SelftestCommTest.AllReduceSumFloat"] for r in reports)

    # a component that does not compile is a make failure naming the missing identifier
    broken = make(root / "test/unittest", "-k", "p2p", "USE_CPU_SELFTEST=1", f"MPI_HOME={MPI_HOME}",
                  "SELFTEST_FAULT_BUILD=1")
    assert broken.returncode != 0
    assert "FLAGCX_SELFTEST_P2P_REQUIREMENTS_INITIALIZER" in broken.stderr
    assert not (root / "test/unittest/p2p/build/bin/p2p_unit_tests").exists()


def test_single_binary_unit_tests_with_gtest_overrides(trees: dict[str, Path], tmp_path: Path) -> None:
    _need_gtest()
    root = trees["v0.11"]
    built = make(root / "test/unittest", *UNIT_MAKE["v0.11"])
    assert built.returncode == 0, built.stdout + built.stderr
    main = root / "test/unittest/build/bin/main"
    rc, reports = _gtest_run(main, tmp_path / "ok")
    assert rc == 0 and all(len(r) >= 15 and not any(r.values()) for r in reports)
    assert "CoreErrors.EveryResultHasItsOwnString" in reports[0]
    rc, reports = _gtest_run(main, tmp_path / "bad", SELFTEST_FAULT="noexchange")
    assert rc != 0
    assert reports[0]["SelftestCommTest.AllGatherPutsEveryRanksBlockInPlace"]
    assert not reports[0]["CoreVersion.ReportsTheHeaderVersion"]


# ---------------------------------------------------------------- the JSON submodule

def test_json_comes_from_the_submodule_path(tmp_path: Path) -> None:
    """v0.11 takes nlohmann/json.hpp from third-party/json/single_include first; main from
    JSON_INCLUDE_DIR.  A decoy header there that does not compile proves which one is used."""
    decoy = "#error decoy json header from the submodule path\n"
    root = make_standin("v0.11", tmp_path / "v011")
    hdr = root / "third-party/json/single_include/nlohmann/json.hpp"
    hdr.parent.mkdir(parents=True)
    hdr.write_text(decoy)
    res = make(root, "USE_CPU_SELFTEST=1", f"MPI_HOME={MPI_HOME}", str(root / "build/obj/build_info.o"))
    assert res.returncode != 0 and "decoy json header" in res.stderr, res.stderr
    main = make_standin("main", tmp_path / "main")
    other = tmp_path / "elsewhere/nlohmann/json.hpp"
    other.parent.mkdir(parents=True)
    other.write_text(decoy)
    res = make(main, "USE_CPU_SELFTEST=1", f"MPI_HOME={MPI_HOME}", f"JSON_INCLUDE_DIR={tmp_path / 'elsewhere'}",
               str(main / "build/obj/build_info.o"))
    assert res.returncode != 0 and "decoy json header" in res.stderr, res.stderr
    if Path("/usr/include/nlohmann/json.hpp").is_file():  # the empty submodule falls back on the system copy
        ok = make(main, "USE_CPU_SELFTEST=1", f"MPI_HOME={MPI_HOME}", str(main / "build/obj/build_info.o"))
        assert ok.returncode == 0, ok.stderr


def test_build_info_names_the_generation(trees: dict[str, Path]) -> None:
    """The library reports its generation; the JSON build (nlohmann) and the hand-written one agree."""
    prog = "import ctypes,sys; l=ctypes.CDLL(sys.argv[1]); f=l.flagcxSelftestGetBuildInfo; " \
           "f.restype=ctypes.c_char_p; print(f().decode())"
    for gen in ("runbook", "main"):
        lib = trees[gen] / "build/lib/libflagcx.so"
        out = subprocess.run(["python3", "-c", prog, str(lib)], capture_output=True, text=True, timeout=30)
        assert out.stdout.strip() == (
            f'{{"generation":"{gen}","name":"FlagCX stand-in (selftest)","version":200}}'), out.stderr
